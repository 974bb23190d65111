"""Quote marks to quoted spans: pairing, paragraphs, unbalanced marks.

Pure text processing, no NLP. A quote that runs over several paragraphs repeats its
opening mark at the start of each paragraph and closes only at the end of the last; it is
one span made of several parts. An opening mark that never closes ends at its paragraph's
end, so one stray mark cannot swallow the rest of the article.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

OPENING = {"“": "”", "„": "”", "«": "»", "‘": "’"}
CLOSING = {"”", "»", "’"}
DOUBLE = {'"', "“", "”", "„", "«", "»"}
SINGLE_STRAIGHT = "'"


@dataclass(frozen=True)
class Quote:
    """A quoted passage: ``parts`` are (start, end) character spans inside the marks."""

    parts: tuple[tuple[int, int], ...]
    open_at: int  # offset of the first opening mark
    close_at: int  # offset just past the closing mark (or the paragraph end)
    closed: bool

    @property
    def start(self) -> int:
        return self.parts[0][0]

    @property
    def end(self) -> int:
        return self.parts[-1][1]

    def text(self, source: str) -> str:
        return "\n".join(source[s:e].strip() for s, e in self.parts).strip()

    def words(self, source: str) -> int:
        return len(self.text(source).split())


def paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each non-empty line."""
    pos = 0
    for line in text.split("\n"):
        end = pos + len(line)
        if line.strip():
            yield pos, end
        pos = end + 1


def _is_opening_straight(text: str, i: int, start: int, end: int) -> bool:
    before = text[i - 1] if i > start else " "
    after = text[i + 1] if i + 1 < end else " "
    if before.isspace() or before in "([{—–-:;,/" or i == start:
        return not after.isspace()
    return False


def _marks(text: str, start: int, end: int, single: bool) -> list[tuple[int, str]]:
    """Quote marks in one paragraph as (offset, 'open'|'close')."""
    out: list[tuple[int, str]] = []
    skip = -1
    for i in range(start, end):
        ch = text[i]
        if i == skip:
            continue
        if not single and ch in "’'" and i + 1 < end and text[i + 1] == ch and i > start and not text[i - 1].isspace():
            out.append((i, "close"))  # ’’ typed for ”, as some wires do
            skip = i + 1
            continue
        if single:
            if ch in "‘’":
                out.append((i, "open" if ch == "‘" else "close"))
            elif ch == SINGLE_STRAIGHT:
                before = text[i - 1] if i > start else " "
                after = text[i + 1] if i + 1 < end else " "
                if (before.isspace() or before in "([—–") and after.isalnum():
                    out.append((i, "open"))
                elif (before.isalnum() or before in ".,!?") and not after.isalnum():
                    out.append((i, "close"))
            continue
        if ch in DOUBLE:
            if ch == '"':
                kind = "open" if _is_opening_straight(text, i, start, end) else "close"
            else:
                kind = "open" if ch in OPENING else "close"
            out.append((i, kind))
    return out


def find_quotes(text: str) -> list[Quote]:
    """Every quoted span in ``text``, in order.

    Double quote marks are the primary level. In a paragraph with no double marks, single
    marks are tried (headline style: relations 'are bad'). Marks inside an open quote that
    are not its closing kind are nested quotes and stay part of the outer quote.
    """
    quotes: list[Quote] = []
    pending: list[tuple[int, int]] | None = None  # parts of a quote continuing across paragraphs
    pending_open = 0
    paras = list(paragraphs(text))
    for index, (p_start, p_end) in enumerate(paras):
        has_double = any(ch in DOUBLE for ch in text[p_start:p_end])
        marks = _marks(text, p_start, p_end, single=not has_double)
        if pending is not None and not (marks and marks[0] == (p_start, "open")):
            # The previous paragraph's quote was left open and this one does not continue it.
            quotes.append(Quote(tuple(pending), pending_open, pending[-1][1], closed=False))
            pending = None
        open_at: int | None = None
        parts_so_far: list[tuple[int, int]] = []
        for offset, kind in marks:
            if open_at is None:
                if kind == "open":
                    open_at = offset
                    if pending is not None and offset == p_start:
                        parts_so_far = pending
                        pending = None
                    else:
                        pending_open = offset
                continue
            if kind == "close":
                part = (open_at + 1, offset)
                parts = [*parts_so_far, part]
                first_open = pending_open if parts_so_far else open_at
                if part[1] > part[0] or parts_so_far:
                    quotes.append(Quote(tuple(parts), first_open, offset + 1, closed=True))
                open_at = None
                parts_so_far = []
        if open_at is not None:
            if not parts_so_far:
                pending_open = open_at
            # Extended in place, not copied: a quote open over thousands of paragraphs stays linear.
            parts = parts_so_far
            parts.append((open_at + 1, p_end))
            continues = index + 1 < len(paras) and text[paras[index + 1][0]] in (DOUBLE | {"‘"})
            if continues:
                pending = parts
            else:
                quotes.append(Quote(tuple(parts), pending_open, p_end, closed=False))
    if pending is not None:
        quotes.append(Quote(tuple(pending), pending_open, pending[-1][1], closed=False))
    return [q for q in quotes if q.end > q.start and re.search(r"\w", text[q.start : q.end])]
