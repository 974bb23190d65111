"""Leftovers in an article's text: blocks repeated within the page, lines repeated across a host.

Pure functions. Within one page, a paragraph that comes again (a page that carries its
story twice or three times over: print and screen versions, an AMP copy) is kept once.

Across a host's pages, a line that recurs on many of them ("Sign up for our newsletter",
a standards note, a widget label) is the site's, not the story's. Extraction, which runs
in worker processes without a database, gives each line a fingerprint; the parent records
them per host in PostgreSQL (``host_line_fingerprints``) and, with what the table already
knows, drops the lines seen on at least ``HOST_MIN_PAGES`` other pages of the host
(``recurring_lines``). A line found on this page only is never dropped, and extraction's
output stays the same for the same page.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

_NORMAL = re.compile(r"[\W_]+")
MIN_BLOCK_LINES = 3
MIN_BLOCK_WORDS = 100
MIN_PARAGRAPH_WORDS = 20
HOST_MIN_PAGES = 5  # other pages of the host that must carry a line before it is boilerplate
HOST_MAX_WORDS = 40  # a long paragraph is story text even when it recurs (a syndicated boxout is rare)


def fingerprint(line: str) -> str:
    """16 hex digits naming a line whatever its case, spacing and punctuation."""
    normal = _NORMAL.sub(" ", line.casefold()).strip()
    return hashlib.blake2b(normal.encode("utf-8"), digest_size=8).hexdigest()


def _is_prose(line: str) -> bool:
    return len(line.split()) >= MIN_PARAGRAPH_WORDS and line.rstrip("”’\"')").endswith((".", "!", "?"))


def drop_repeated_blocks(text: str) -> str:
    """The text with every later copy of a block (a run of lines) it already holds removed.

    A block is at least ``MIN_BLOCK_LINES`` consecutive lines of prose (15 words a line on
    average) and ``MIN_BLOCK_WORDS`` words that came earlier in the same order, or one
    paragraph of prose (``MIN_PARAGRAPH_WORDS`` words or more, ending as a sentence ends)
    word for word again. Short lines that recur are kept, even in runs: an interview's
    repeated question, a meal plan's repeated steps are the story's own.
    """
    lines = text.split("\n")
    prints = [fingerprint(line) for line in lines]
    where: dict[str, list[int]] = {}
    kept: list[str] = []
    i = 0
    while i < len(lines):
        best = 0
        for j in where.get(prints[i], ()):
            run = 0
            while i + run < len(lines) and j + run < i and prints[j + run] == prints[i + run]:
                run += 1
            if run > best:
                best = run
        words = sum(len(line.split()) for line in lines[i : i + best])
        if best >= MIN_BLOCK_LINES and words >= MIN_BLOCK_WORDS and words >= MIN_PARAGRAPH_WORDS * best * 0.75:
            i += best
            continue
        if best and _is_prose(lines[i]):
            i += 1
            continue
        where.setdefault(prints[i], []).append(i)
        kept.append(lines[i])
        i += 1
    return "\n".join(kept)


def fingerprints(text: str) -> tuple[str, ...]:
    return tuple(fingerprint(line) for line in text.split("\n"))


def recurring_lines(text: str, prints: tuple[str, ...], pages_seen: dict[str, int]) -> list[int]:
    """Indexes of the lines to drop: short lines other pages of the host carry too.

    ``pages_seen`` maps a fingerprint to the number of *other* pages of the host it was
    recorded on. At least one line is always kept.
    """
    lines = text.split("\n")
    drop = [
        i
        for i, (line, key) in enumerate(zip(lines, prints, strict=False))
        if pages_seen.get(key, 0) >= HOST_MIN_PAGES and len(line.split()) <= HOST_MAX_WORDS
    ]
    return drop if len(drop) < len(lines) else []


def cut_lines(text: str, drop: list[int]) -> tuple[str, list[tuple[int, int, int]]]:
    """The text without lines ``drop``, and the cut ranges as (start, end, shift after end).

    ``shift after end`` is how many characters were removed up to that range's end, so an
    offset ``o`` past a range maps to ``o - shift`` (see ``moved``).
    """
    lines = text.split("\n")
    gone = set(drop)
    kept, cuts, at, removed = [], [], 0, 0
    for i, line in enumerate(lines):
        size = len(line) + (1 if i < len(lines) - 1 else 0)
        if i in gone:
            start, end = at, at + size
            if i == len(lines) - 1 and kept:  # the last line: remove the newline before it instead
                start, end = at - 1, at + len(line)
            removed += end - start
            cuts.append((start, end, removed))
        else:
            kept.append(line)
        at += size
    return "\n".join(kept), cuts


def moved(offset: int, end: bool, cuts: list[tuple[int, int, int]]) -> int | None:
    """Where ``offset`` of the old text is in the new one; None when it was cut."""
    probe = offset - 1 if end else offset
    shift = 0
    for start, stop, removed in cuts:
        if probe < start:
            break
        if probe < stop:
            return None
        shift = removed
    return offset - shift


def span_survives(start: int, end: int, cuts: list[tuple[int, int, int]]) -> bool:
    """Whether a span lies wholly outside every cut."""
    return all(end <= c_start or start >= c_stop for c_start, c_stop, _ in cuts)


_WORDS = re.compile(r"\w+")
BODY_COVERS = 0.9  # share of the page's own articleBody words the extraction must hold
BODY_SIZE = 0.6  # the articleBody must be at least this share of the extraction's length
LINE_SUPPORT = 0.5  # share of a line's words the articleBody must hold to keep the line


def agree_with_body(text: str, body: str | None) -> str:
    """The text without the lines the page's own ``articleBody`` does not carry, when the two agree.

    JSON-LD ``articleBody`` is what the publisher says the story is, but many sites give a
    teaser or an older version there: it is used only when the extraction holds nearly all
    of it (``BODY_COVERS``) and it is nearly as long (``BODY_SIZE``). Then an extracted
    line it does not carry (a related headline, a promo, a widget label) is left out.
    """
    if not body:
        return text
    body_words = Counter(w.casefold() for w in _WORDS.findall(body))
    text_words = Counter(w.casefold() for w in _WORDS.findall(text))
    total_body = sum(body_words.values())
    if not total_body or total_body < BODY_SIZE * sum(text_words.values()):
        return text
    if sum((body_words & text_words).values()) < BODY_COVERS * total_body:
        return text
    kept = []
    for line in text.split("\n"):
        words = [w.casefold() for w in _WORDS.findall(line)]
        if not words or sum(1 for w in words if w in body_words) >= LINE_SUPPORT * len(words):
            kept.append(line)
    return "\n".join(kept) if kept else text


# Lines that are the page's furniture, not the story's: what they look like, as data.
_PROMO = re.compile(
    r"^(?:read more|related|also read|see also|more|watch|listen|recommended|trending|most read|"
    r"click here|sign up|subscribe|don't miss|dont miss|editor's picks?|top stories|you may also like)"
    r"\s*(?::|\||»|›|>|→|-|–|—)\s*\S",
    re.IGNORECASE,
)
_WIDGET_LABELS = frozenset(
    {
        "advertisement",
        "advertisements",
        "ad",
        "sponsored",
        "sponsored content",
        "popular",
        "most popular",
        "most read",
        "trending",
        "trending now",
        "related",
        "related articles",
        "related stories",
        "related coverage",
        "read more",
        "read next",
        "share",
        "share this",
        "share this article",
        "swipe",
        "swipe →",
        "swipe for more",
        "scroll to continue",
        "continue reading",
        "show comments",
        "comments",
        "newsletter",
        "sign up",
        "subscribe",
        "more from",
        "recommended",
        "loading",
        "loading...",
        "image",
        "photo",
        "video",
        "getty images",
        "follow us",
        "top stories",
    }
)
_EMBED = re.compile(
    r"(?:pic\.twitter\.com/\w+|^https?://t\.co/\w+$|^a post shared by .{1,80}\(@[\w.]+\)|^— .{1,80}\(@\w{1,20}\) "
    r"\w+ \d{1,2}, \d{4}$)",
    re.IGNORECASE,
)
# Standards, credits, app and newsletter promos, copyright: the publisher's lines, any story.
_FURNITURE = re.compile(
    r"^(?:our standards\s*:|reporting by |editing by |additional reporting by |writing by |compiled by |"
    r"(?:get|download) the .{0,40}\bapp\b|click here to (?:subscribe|sign up|get the|download the)|"
    r"follow .{0,60}\bon (?:facebook|twitter|instagram|x|threads|bluesky|tiktok|youtube)\b|"
    r"sign up (?:for|to) |subscribe (?:to|for) |copyright ©|© \d{4}|all rights reserved)",
    re.IGNORECASE,
)
# The signature line under an embedded post: "— Name (@handle) November 3, 2019".
_EMBED_SIGNATURE = re.compile(r"^[—–-]{1,2} .{1,80}\(@\w{1,20}\) \w+\.? \d{1,2}, \d{4}$")
_BIO_VERB = re.compile(r"^(?:is|was|covers|has been|writes|reports|joined)\b")
_BIO_NOUN = re.compile(
    r"\b(?:reporter|correspondent|writer|editor|journalist|contributor|columnist|producer|author|"
    r"fellow|intern|analyst|photographer)\b",
    re.IGNORECASE,
)
_BIO_TAIL = re.compile(r"^(?:follow|contact|email|reach) .{0,80}(?:@|twitter|on x\b|at )", re.IGNORECASE)


def _is_bio(line: str, authors: tuple[str, ...]) -> bool:
    """An author's bio: "Jane Roe is a reporter with …", "Follow Jane on Twitter @jroe"."""
    if len(line.split()) > 60:
        return False
    if _BIO_TAIL.match(line):
        return True
    for name in authors:
        for start in (name, name.split()[-1]):
            if line.startswith(start + " ") and _BIO_VERB.match(line[len(start) + 1 :]) and _BIO_NOUN.search(line):
                return True
    return False


_DATELINE_WORDS = re.compile(
    r"\b[ap]\.m\.|\b(?:by|and|updated|published|posted|last|on|at|am|pm|"
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|"
    r"fri(?:day)?|sat(?:urday)?|sun(?:day)?|[a-z]{1,2}[sd]t|utc|gmt|[a-z]mt|cet|cest|bst|ist|et|pt|ct)\b|[\d:/.,|•·–—-]+",
    re.IGNORECASE,
)


def _is_byline(line: str, authors: tuple[str, ...]) -> bool:
    """A byline or dateline set as a paragraph: "5:45 AM PST 11/19/2019 by Jane Roe"."""
    if len(line.split()) > 20 or not any(ch.isdigit() for ch in line) and not line.lower().startswith("by "):
        return False
    rest = line
    for name in authors:
        rest = rest.replace(name, " ")
    rest = _DATELINE_WORDS.sub(" ", rest)
    has_date = bool(re.search(r"\b(?:19|20)\d\d\b", line))  # a time alone ("10 p.m.") may head a live post
    return not rest.split() and (has_date or any(name in line for name in authors))


def drop_leftovers(text: str, authors: tuple[str, ...] = ()) -> str:
    """The text without promo and standards lines, credits, widget labels, embedded posts and author bios.

    Each rule looks at one line alone; a bio is only recognised in the last three lines and
    by the article's own author's name, a byline or dateline only in the first three.
    """
    lines = text.split("\n")
    last = len(lines) - 3
    # An embedded post is its text and the signature line under it.
    posts = {i for i, line in enumerate(lines) if _EMBED_SIGNATURE.match(line)}
    posts |= {i - 1 for i in posts if i > 0 and len(lines[i - 1].split()) <= 60}
    kept = []
    for i, line in enumerate(lines):
        bare = line.strip().rstrip(":").casefold()
        if i in posts or bare in _WIDGET_LABELS or _PROMO.match(line) or _EMBED.search(line):
            continue
        if _FURNITURE.match(line) and len(line.split()) <= 40:
            continue
        if i >= last and _is_bio(line, authors):
            continue
        if i < 3 and _is_byline(line, authors):
            continue
        kept.append(line)
    return "\n".join(kept) if kept else text


def link_paragraphs(tree) -> frozenset[str]:  # noqa: ANN001 - an lxml element
    """Fingerprints of the page's paragraphs that are one link and nothing else.

    A paragraph that is all link, set between a story's paragraphs, is a related story's
    headline ("SEAN SPICER ELIMINATED FROM 'DANCING WITH THE STARS'"), not the story.
    """
    found = set()
    if tree is None:
        return frozenset()
    for paragraph in tree.iterfind(".//p"):
        anchors = paragraph.findall(".//a")
        if len(anchors) != 1:
            continue
        whole = " ".join(paragraph.text_content().split())
        if len(whole.split()) >= 3 and whole == " ".join(anchors[0].text_content().split()):
            found.add(fingerprint(whole))
    return frozenset(found)


def drop_link_paragraphs(text: str, links: frozenset[str]) -> str:
    if not links:
        return text
    kept = [line for line in text.split("\n") if fingerprint(line) not in links]
    return "\n".join(kept) if kept else text
