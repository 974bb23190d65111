"""Who said what: direct, indirect and mixed statements with their speakers.

A pure function of the text and its spaCy parse: no database, no network. The rules:

* Quoted spans come from ``quotes.find_quotes`` (paragraph-spanning quotes are one span).
* A reporting verb (``SPEECH_VERBS``) outside any quote, with a subject, attributes either
  the quote its content clause is made of (direct), the clause itself (indirect) or the
  clause with a quoted fragment in it (mixed). "according to X" works the same way.
* A quote with no verb in its clause is attributed by the nearest reporting verb beside it
  in the paragraph; a quote interrupted by its attribution is one statement; a paragraph
  that is all quote, right after a quote by a speaker, continues that speaker.
* Speakers resolve to canonical in-article entities (``_Focus``): names through entity
  clusters, pronouns to the last speaker of a compatible gender unless a newer person became
  the subject of a main clause, roles ("the spokesman", "the ministry") through titles and
  appositives seen in the text, documents ("the statement said") to whoever issued them.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy
from spacy.attrs import DEP, HEAD, IDX, IS_PUNCT, IS_QUOTE, IS_SPACE, LOWER
from spacy.strings import get_string_id
from spacy.tokens import Doc, Token

from .entities import TITLES, Cluster, Mention
from .first_names import gender as first_name_gender
from .quotes import DOUBLE, Quote, find_quotes

EXTRACTOR_VERSION = "statements-3"

SPEECH_VERBS = {
    "say",
    "tell",
    "add",
    "state",
    "write",
    "post",
    "tweet",
    "announce",
    "claim",
    "argue",
    "explain",
    "note",
    "warn",
    "insist",
    "deny",
    "confirm",
    "reply",
    "respond",
    "acknowledge",
    "admit",
    "complain",
    "predict",
    "urge",
    "suggest",
    "recall",
    "declare",
    "assert",
    "stress",
    "emphasise",
    "emphasize",
    "maintain",
    "contend",
    "allege",
    "report",
    "reiterate",
    "remark",
    "comment",
    "continue",
    "observe",
    "concede",
    "caution",
    "promise",
    "vow",
    "pledge",
    "testify",
    "retort",
    "counter",
    "quip",
    "joke",
    "boast",
    "ask",
    "answer",
    "describe",
    "point",
    "underline",
    "highlight",
    "tout",
    "signal",
    "indicate",
    "reveal",
    "disclose",
    "acknowledged",
    "agree",
    "accuse",
    "denounce",
    "slam",
    "blast",
    "assail",
    "recount",
    "call",
    "beg",
    "plead",
    "implore",
    "read",
    "cite",
    "demand",
    "recommend",
}
# Verbs that report speech only with a content clause or a quote, never on their own.
WEAK_VERBS = {"continue", "point", "report", "describe", "signal", "indicate", "agree", "ask"}
MEDIA_WORDS = {
    "statement",
    "interview",
    "post",
    "tweet",
    "telegram",
    "twitter",
    "x",
    "facebook",
    "instagram",
    "linkedin",
    "television",
    "tv",
    "radio",
    "podcast",
    "video",
    "letter",
    "message",
    "blog",
    "email",
    "e-mail",
    "address",
    "speech",
    "op-ed",
    "column",
    "truth",
    "social",
    "substack",
    "youtube",
    "tiktok",
    "threads",
    "bluesky",
    "weibo",
    "vk",
}
DEFINITE = {"the", "this", "that"}
ORG_NOUNS = {
    "company",
    "group",
    "firm",
    "agency",
    "utility",
    "organisation",
    "organization",
    "ministry",
    "department",
    "office",
    "government",
    "campaign",
    "union",
    "club",
    "team",
    "bank",
    "coalition",
    "committee",
    "network",
    "label",
    "studio",
    "retailer",
    "council",
    "party",
    "board",
    "airline",
    "administration",
    "military",
    "army",
    "police",
    "embassy",
    "court",
    "commission",
    "authority",
    "regulator",
    "university",
    "school",
    "hospital",
    "charity",
    "foundation",
    "association",
    "corporation",
    "business",
    "operator",
    "manufacturer",
    "carrier",
    "lab",
    "laboratory",
    "prosecutor",
    "management",
    "league",
    "federation",
    "service",
}
PERSON_ROLE_NOUNS = {
    "president",
    "governor",
    "analyst",
    "minister",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "chairman",
    "chairwoman",
    "chair",
    "ceo",
    "executive",
    "coach",
    "manager",
    "senator",
    "mayor",
    "lawyer",
    "attorney",
    "judge",
    "secretary",
    "ambassador",
    "chancellor",
    "premier",
    "leader",
    "founder",
    "director",
    "economist",
    "strategist",
    "official",
    "commander",
    "general",
    "captain",
    "striker",
    "quarterback",
    "defender",
    "forward",
    "goalkeeper",
    "agent",
    "candidate",
    "congressman",
    "congresswoman",
    "lawmaker",
    "legislator",
    "diplomat",
    "envoy",
    "negotiator",
    "researcher",
    "scientist",
    "professor",
    "author",
    "singer",
    "actor",
    "actress",
    "star",
    "player",
    "veteran",
}
# Verbs whose object (with the prepositions named) is the reported content.
OBJECT_CONTENT_VERBS: dict[str, set[str]] = {
    "accuse": {"of"},
    "urge": set(),
    "ask": set(),
    "call": {"for", "on"},
    "deny": set(),
    "claim": set(),
    "predict": set(),
    "announce": set(),
    "report": set(),
    "demand": set(),
    "dismiss": {"as"},
    "describe": {"as"},
    "criticize": {"for"},
    "criticise": {"for"},
    "slam": {"as", "for"},
    "blast": {"as", "for"},
    "denounce": {"as"},
    "warn": {"of", "against"},
    "promise": set(),
    "pledge": set(),
    "vow": set(),
    "propose": set(),
    "recommend": set(),
    "request": set(),
    "confirm": set(),
    "acknowledge": set(),
    "admit": set(),
    "assail": {"as", "for"},
    "cite": set(),
    "note": set(),
    "complain": {"of", "about"},
}
# "after accusing them": a participle after these shares its main verb's subject ("known
# for telling others", "pressure him into announcing" do not).
TIME_PREPOSITIONS = {"after", "before", "while", "when", "upon", "since", "by"}
# What "citing X" names when X is where the words came from rather than what was said.
SOURCE_NOUNS = ORG_NOUNS | PERSON_ROLE_NOUNS | {"source", "report", "data", "document", "person", "people", "study"}
ADDRESSEE_VERBS = {"tell", "ask", "inform", "assure", "remind", "warn", "urge"}
NOT_SPEAKERS = {"DATE", "TIME", "CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY", "EVENT", "LAW", "WORK_OF_ART"}
PRONOUNS = {"he": "m", "she": "f", "him": "m", "her": "f", "it": "n", "they": "p"}
ROLE_PERSON_PRONOUNS = {"he", "she"}
# Nouns for what was issued rather than who issued it: "the statement said".
DOCUMENT_NOUNS = {
    "statement",
    "letter",
    "release",
    "memo",
    "email",
    "filing",
    "announcement",
    "message",
    "post",
    "tweet",
}
TITLE_ABBREVIATIONS = {
    "gov": "governor",
    "sen": "senator",
    "rep": "representative",
    "gen": "general",
    "col": "colonel",
    "capt": "captain",
    "sgt": "sergeant",
    "prof": "professor",
    "pres": "president",
    "atty": "attorney",
    "adm": "admiral",
    "amb": "ambassador",
}
WRITINGS = DOCUMENT_NOUNS | {"manual", "report", "website", "guidance", "guideline", "study", "survey", "paper"}
# Gender evidence; spaCy has none. Kept small on purpose: a missing entry means "unknown".
TITLE_GENDERS = {
    "mr": "m",
    "sir": "m",
    "lord": "m",
    "king": "m",
    "prince": "m",
    "mrs": "f",
    "ms": "f",
    "miss": "f",
    "dame": "f",
    "lady": "f",
    "queen": "f",
    "princess": "f",
}
ROLE_GENDERS = {
    "spokesman": "m",
    "chairman": "m",
    "congressman": "m",
    "businessman": "m",
    "actor": "m",
    "spokeswoman": "f",
    "chairwoman": "f",
    "congresswoman": "f",
    "businesswoman": "f",
    "actress": "f",
}
PRONOUN_GENDERS = {"he": "m", "him": "m", "his": "m", "himself": "m", "she": "f", "her": "f", "herself": "f"}
# A first name's gender: US Social Security baby-name counts (pipeline/first_names.py).
MIN_UNATTRIBUTED_WORDS = 4
ATTRIBUTION_WINDOW = 14  # tokens after a quote in which its reporting verb may stand
# Words looked at around one person's name for role words ("the Browns' defensive lineman"):
# at most 83 in the development set and Wikinews; a run-on appositive is not a role.
MAX_ROLE_WORDS = 256
# A reported clause longer than this is the parser running a long sentence together (the
# longest in the development set and Wikinews is 392 characters), not what someone said: it
# makes no statement. In one long sentence each reporting verb's clause runs to its end, and
# the statements alone would hold the sentence once per verb (issue 13).
MAX_REPORT_CHARS = 2_000
# Name endings indexed per entity for "a qualified name must match whole" (longer ones are
# compared with every entity's name, as they are rare).
_INDEXED_ENDING = 64


@dataclass(frozen=True)
class Statement:
    kind: str
    quote: str
    quote_start: int
    quote_end: int
    speaker: str | None
    speaker_mention: str | None
    speaker_start: int | None
    speaker_end: int | None
    speaker_cluster: int | None
    cue: str | None
    cue_start: int | None
    cue_end: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "quote": self.quote,
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
            "speaker": self.speaker,
            "speaker_mention": self.speaker_mention,
            "speaker_start": self.speaker_start,
            "speaker_end": self.speaker_end,
            "cue": self.cue,
            "cue_start": self.cue_start,
            "cue_end": self.cue_end,
        }


@dataclass
class _Attribution:
    verb: Token
    subject: Token | None


@dataclass
class _Candidate:
    kind: str
    start: int
    end: int
    text: str
    attribution: _Attribution | None
    anchor: int  # offset used for document order and pronoun resolution
    inherit_from_previous: bool = False
    cut: bool = False  # ``text`` is still to be cut from the document


class _Index:
    """Offset lookups over a document: tokens, quotes, mentions, by bisection.

    Everything here is computed once per document (lazily where only some documents need
    it), so that no question asked per reporting verb, quote or mention scans the document,
    a paragraph or a sentence: one long paragraph full of reporting verbs stays linear
    (issue 13).
    """

    def __init__(self, doc: Doc, quotes: list[Quote], mentions: list[Mention]):
        self.doc = doc
        self.text = doc.text
        self.token_starts = doc.to_array(IDX).tolist()
        self.quotes = quotes
        self.quoted: list[tuple[int, int]] = [(q.open_at, q.close_at) for q in quotes]
        self.mentions = mentions
        self.mention_starts = [m.start for m in mentions]
        self.quote_opens = [q.open_at for q in quotes]
        self.quote_starts = [q.start for q in quotes]
        self.quote_ends = [q.end for q in quotes]
        # find_quotes gives quotes in order, apart, each made of parts in order: bisection
        # answers exactly what a scan of every quote would. Checked, not assumed.
        self.quotes_ordered = all(a.close_at <= b.open_at for a, b in pairwise(quotes)) and all(
            q.open_at < q.start
            and q.end <= q.close_at
            and all(s1 <= e1 < s2 - 1 for (s1, e1), (s2, _e2) in pairwise(q.parts))
            for q in quotes
        )
        self._tree: _Tree | None = None
        self._newlines: list[int] | None = None
        self._sentence_ends: list[int] | None = None
        self._words: tuple[list[int], list[int]] | None = None
        self._gap_words: list[int] | None = None
        self._double_marks: list[int] | None = None
        self._trim_runs: tuple[tuple[list[int], list[int]], ...] | None = None

    @property
    def tree(self) -> _Tree:
        if self._tree is None:
            self._tree = _Tree(self.doc, self.text)
        return self._tree

    def in_quote(self, offset: int) -> Quote | None:
        if not self.quotes_ordered:
            for q in self.quotes:
                if q.open_at <= offset < q.close_at:
                    for s, e in q.parts:
                        if s - 1 <= offset <= e:
                            return q
            return None
        # Quotes are apart: only the last one opening at or before ``offset`` can hold it.
        i = bisect.bisect_right(self.quote_opens, offset) - 1
        if i < 0 or offset >= self.quotes[i].close_at:
            return None
        q = self.quotes[i]
        j = bisect.bisect_right(q.parts, (offset + 1, len(self.text) + 1)) - 1  # the last part with s - 1 <= offset
        return q if j >= 0 and offset <= q.parts[j][1] else None

    def quotes_within(self, start: int, end: int) -> Sequence[int]:
        """Indexes of the quotes whose text overlaps ``[start, end)``: a range of consecutive ones."""
        if not self.quotes_ordered:
            return [i for i, q in enumerate(self.quotes) if q.start < end and start < q.end]
        return range(bisect.bisect_right(self.quote_ends, start), bisect.bisect_left(self.quote_starts, end))

    def newline_after(self, offset: int) -> int:
        """``text.find("\\n", offset)``, or the text's length when there is none."""
        newlines = self.newlines
        i = bisect.bisect_left(newlines, offset)
        return newlines[i] if i < len(newlines) else len(self.text)

    def paragraph_start(self, offset: int) -> int:
        """``text.rfind("\\n", 0, offset) + 1``."""
        i = bisect.bisect_left(self.newlines, offset) - 1
        return self.newlines[i] + 1 if i >= 0 else 0

    @property
    def newlines(self) -> list[int]:
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return self._newlines

    def sentence_end_between(self, start: int, end: int) -> bool:
        """Whether ``re.search(r"[.!?]\\s", text[start:end])`` finds a sentence end."""
        if self._sentence_ends is None:
            # Two characters, the second never one of the first: the matches cannot overlap,
            # so finditer lists every place a search in any slice could match.
            self._sentence_ends = [m.start() for m in _SENTENCE_END.finditer(self.text)]
        i = bisect.bisect_left(self._sentence_ends, start)
        return i < len(self._sentence_ends) and self._sentence_ends[i] + 2 <= end

    def words_between(self, start: int, end: int) -> int:
        """``len(re.findall(r"\\w+", text[start:end]))``: the word runs overlapping the span."""
        if end <= start:
            return 0
        if self._words is None:
            runs = [m.span() for m in re.finditer(r"\w+", self.text)]
            self._words = [s for s, _e in runs], [e for _s, e in runs]
        starts, ends = self._words
        return max(0, bisect.bisect_left(starts, end) - bisect.bisect_right(ends, start))

    def words_outside(self, start: int, end: int, inside: Sequence[int]) -> int:
        """Words of ``text[start:end]`` outside the quotes ``inside`` (``_words_outside``)."""
        if not self.quotes_ordered or not isinstance(inside, range) or end - start <= _SHORT_SPAN:
            return _words_outside(self.text, start, end, [self.quotes[i] for i in inside])
        if not inside:
            return self.words_between(start, end)
        if self._gap_words is None:
            # gap[i]: words between quote i-1 and quote i, summed over the quotes before.
            self._gap_words = [0]
            for a, b in pairwise(self.quotes):
                self._gap_words.append(self._gap_words[-1] + self.words_between(a.close_at, b.open_at))
        first, last = self.quotes[inside[0]], self.quotes[inside[-1]]
        words = self.words_between(start, min(end, first.open_at))
        words += self._gap_words[inside[-1]] - self._gap_words[inside[0]]
        words += self.words_between(max(start, last.close_at), end)
        return words

    def trim(self, start: int, end: int) -> tuple[int, int]:
        """A span without surrounding space, quote marks and the punctuation that joined it to its attribution."""
        text = self.text
        # Mostly a character or two: trimmed here. A long run is skipped by lookup below.
        for _ in range(_SHORT_TRIM):
            if start < end and (text[start].isspace() or text[start] in DOUBLE or text[start] in "‘’',;:"):
                start += 1
            elif end > start and (text[end - 1].isspace() or text[end - 1] in _TRIM_END_MARKS):
                end -= 1
            else:
                return start, end
        if self._trim_runs is None:
            # Maximal runs of what is trimmed at each end, found once: trimming is then a
            # lookup, however long the run (many spans of a long sentence end at the same one).
            self._trim_runs = tuple(
                ([m.start() for m in runs], [m.end() for m in runs])
                for runs in (list(_TRIM_START.finditer(self.text)), list(_TRIM_END.finditer(self.text)))
            )
        (start_runs, start_run_ends), (end_runs, end_run_ends) = self._trim_runs
        if start < end:
            i = bisect.bisect_right(start_runs, start) - 1
            if i >= 0 and start < start_run_ends[i]:
                start = min(start_run_ends[i], end)
        if end > start:
            i = bisect.bisect_right(end_runs, end - 1) - 1
            if i >= 0 and end - 1 < end_run_ends[i]:
                end = max(end_runs[i], start)
        return start, end

    def double_mark_between(self, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` holds a double quote mark."""
        if self._double_marks is None:
            self._double_marks = [i for i, ch in enumerate(self.text) if ch in DOUBLE]
        i = bisect.bisect_left(self._double_marks, max(0, start))
        return i < len(self._double_marks) and self._double_marks[i] < end

    def mention_at(self, start: int, end: int) -> Mention | None:
        i = bisect.bisect_right(self.mention_starts, start) - 1
        for j in (i, i + 1):
            if 0 <= j < len(self.mentions):
                m = self.mentions[j]
                if m.start < end and start < m.end:
                    return m
        return None

    def token_at(self, offset: int) -> Token | None:
        i = bisect.bisect_right(self.token_starts, offset) - 1
        return self.doc[i] if i >= 0 else None


_SENTENCE_END = re.compile(r"[.!?]\s")
_SHORT_TRIM = 16
_SHORT_SPAN = 500  # characters: a span this short is counted by hand, a longer one by lookup
_TRIM_END_MARKS = ",;:—–-" + "".join(DOUBLE)
# String hashes as ``Doc.to_array`` gives them, read as int64 like the rest of ``_Tree``'s columns.
_MARK, _THAT, _WHETHER, _RELCL = (
    numpy.array([get_string_id(w) for w in ("mark", "that", "whether", "relcl")], dtype=numpy.uint64)
    .astype(numpy.int64)
    .tolist()
)
# What a statement's span loses at its start and at its end: space (``str.isspace``, as
# ``\s``), quote marks, and the punctuation that joined it to its attribution.
_TRIM_START = re.compile("[\\s" + re.escape("".join(sorted(DOUBLE)) + "‘’',;:") + "]+")
_TRIM_END = re.compile("[\\s" + re.escape(",;:—–-" + "".join(sorted(DOUBLE))) + "]+")


class _Tree:
    """The parse as arrays, computed once per document: children, subtree sizes, sentences.

    spaCy finds a token's children by scanning its whole edge span, and walks a subtree
    through one nested generator per level, so asking per reporting verb about a clause that
    runs to the end of a long sentence costs the sentence, or worse (issue 13). These arrays
    answer the same questions exactly, for any parse: ``kids`` are the tokens spaCy's
    ``children`` yields, in that order; a subtree is read as the run of tokens from its
    lowest to its highest index only where spaCy's walk yields exactly that run, in order
    (``inorder``); elsewhere spaCy walks it.
    """

    def __init__(self, doc: Doc, text: str):
        n = len(doc)
        self.doc = doc
        self.text = text  # doc.text, which spaCy joins anew on every call
        columns = doc.to_array([HEAD, IS_PUNCT, IS_SPACE, IS_QUOTE, LOWER, DEP]).astype(numpy.int64)
        self._columns = columns
        heads = (columns[:, 0] + numpy.arange(n)).tolist() if n else []
        # spaCy's children of a token: the tokens with it as head (between its edges, which
        # spaCy always widens to hold every child), in order.
        kids: list[list[int]] = [[] for _ in range(n)]
        parent = [-1] * n
        for j, h in enumerate(heads):
            if h != j:
                kids[h].append(j)
                parent[j] = h
        self.kids = kids
        # Size, lowest and highest index of each subtree walk, children before parents.
        order = [i for i in range(n) if parent[i] < 0]
        for i in order:
            order.extend(kids[i])
        size = [1] * n
        low = list(range(n))
        high = list(range(n))
        inorder = [True] * n
        for i in reversed(order):
            if inorder[i] and high[i] - low[i] + 1 != size[i]:
                inorder[i] = False
            p = parent[i]
            if p >= 0:
                size[p] += size[i]
                if low[i] < low[p]:
                    low[p] = low[i]
                if high[i] > high[p]:
                    high[p] = high[i]
                if not inorder[i]:
                    inorder[p] = False
        self.size = size
        self.low = low
        self.high = high
        self.inorder = inorder
        self._prev_kept: list[int] | None = None
        self._next_clause_word: list[int] | None = None
        self._quote_marks: list[int] | None = None
        self._line_breaks: list[int] | None = None
        self._that_clauses: list[int] | None = None
        self._sentences: tuple[list[int], list[tuple[int, int]]] | None = None

    def children(self, tok: Token) -> list[Token]:
        """``list(tok.children)``."""
        doc = self.doc
        return [doc[k] for k in self.kids[tok.i]]

    def lefts(self, tok: Token) -> list[Token]:
        """``list(tok.lefts)``."""
        doc, i = self.doc, tok.i
        return [doc[k] for k in self.kids[i] if k < i]

    def rights(self, tok: Token) -> list[Token]:
        """``list(tok.rights)``."""
        doc, i = self.doc, tok.i
        return [doc[k] for k in self.kids[i] if k > i]

    def walk(self, tok: Token) -> Iterator[Token]:
        """``tok.subtree``, lazily, without a generator per level where the subtree is its span."""
        i = tok.i
        if not self.inorder[i]:
            yield from tok.subtree
            return
        doc = self.doc
        for j in range(self.low[i], self.high[i] + 1):
            yield doc[j]

    def subtree(self, tok: Token) -> list[Token]:
        """``list(tok.subtree)``, without a generator per level."""
        i = tok.i
        if self.inorder[i]:
            return list(self.doc[self.low[i] : self.high[i] + 1])
        return list(tok.subtree)

    def last_kept(self, i: int) -> int:
        """The last token at or before ``i`` that is neither punctuation nor space (-1: none)."""
        if self._prev_kept is None:
            columns = self._columns
            kept = (columns[:, 1] == 0) & (columns[:, 2] == 0)
            self._prev_kept = numpy.maximum.accumulate(numpy.where(kept, numpy.arange(len(kept)), -1)).tolist()
        return self._prev_kept[i]

    def first_clause_word(self, i: int) -> int:
        """The first token at or after ``i`` that is neither punctuation nor a "that"/"whether" mark."""
        if self._next_clause_word is None:
            columns = self._columns
            mark = (columns[:, 5] == _MARK) & ((columns[:, 4] == _THAT) | (columns[:, 4] == _WHETHER))
            word = (columns[:, 1] == 0) & ~mark
            n = len(word)
            first = numpy.where(word, numpy.arange(n), n)
            self._next_clause_word = numpy.minimum.accumulate(first[::-1])[::-1].tolist()
        return self._next_clause_word[i]

    def quote_mark_between(self, start: int, end: int) -> bool:
        """Whether a token in ``doc[start:end]`` is a quote mark."""
        if self._quote_marks is None:
            self._quote_marks = [0, *numpy.cumsum(self._columns[:, 3] != 0).tolist()]
        return end > start and self._quote_marks[end] > self._quote_marks[start]

    def line_break_between(self, start: int, end: int) -> bool:
        """Whether a token in ``doc[start:end]`` is a space holding a line break."""
        if self._line_breaks is None:
            doc = self.doc
            starts = doc.to_array(IDX).astype(numpy.int64)
            newlines = [m.start() for m in re.finditer("\n", self.text)]
            holders = sorted(set((numpy.searchsorted(starts, newlines, side="right") - 1).tolist()))
            breaks = [i for i in holders if i >= 0 and doc[i].is_space and "\n" in doc[i].text]
            self._line_breaks = breaks
        k = bisect.bisect_left(self._line_breaks, start)
        return k < len(self._line_breaks) and self._line_breaks[k] < end

    def is_that_clause(self, i: int) -> bool:
        """A relative clause opened by a "that" that is not its subject, with a subject of its own."""
        tok = self.doc[i]
        first = tok.left_edge
        return first.lower_ == "that" and first.dep_ != "nsubj" and any(c.dep_ == "nsubj" for c in self.children(tok))

    def first_that_clause(self, start: int, end: int) -> int | None:
        """The first ``relcl`` token in ``[start, end]`` that ``is_that_clause``."""
        if self._that_clauses is None:
            relative = numpy.flatnonzero(self._columns[:, 5] == _RELCL).tolist()
            self._that_clauses = [i for i in relative if self.is_that_clause(i)]
        j = bisect.bisect_left(self._that_clauses, start)
        return self._that_clauses[j] if j < len(self._that_clauses) and self._that_clauses[j] <= end else None

    def sentence_bounds(self, tok: Token) -> tuple[int, int]:
        """``tok.sent``'s start and end characters."""
        doc = self.doc
        if "sent" in doc.user_token_hooks or "sent" in doc.user_span_hooks or "sents" in doc.user_hooks:
            return _sentence_bounds(tok)
        if self._sentences is None:
            of_token: list[int] = []
            bounds: list[tuple[int, int]] = []
            for sent in doc.sents:
                of_token.extend([len(bounds)] * len(sent))
                bounds.append((sent.start_char, sent.end_char))
            self._sentences = of_token, bounds
        of_token, bounds = self._sentences
        return bounds[of_token[tok.i]]


def _is_speech_verb(tok: Token, tree: _Tree) -> bool:
    if tok.lemma_.lower() not in SPEECH_VERBS or tok.pos_ not in {"VERB", "AUX"}:
        return False
    children = tree.children(tok)
    if tok.lemma_.lower() == "point" and not any(c.dep_ == "prt" for c in children):
        return False
    if tok.lemma_.lower() == "call" and not _calls_something(tok, tree):
        return False
    if tok.lemma_.lower() == "read" and not any(
        c.dep_ == "nsubj" and c.lemma_.lower() in DOCUMENT_NOUNS for c in children
    ):
        return False  # "the statement read": only a document reads out
    if tok.dep_ in {"amod", "acl"} and tok.tag_ == "VBN":
        return False  # "the said agreement", "a deal announced on Monday"
    if tok.dep_ == "xcomp" and tok.head.lemma_.lower() not in SPEECH_VERBS:
        return False  # "declined to say", "wants to add"
    if tok.lemma_.lower() != "deny" and any(
        c.dep_ == "neg" and not tree.quote_mark_between(min(c.i, tok.i), max(c.i, tok.i)) for c in children
    ):
        return False  # "did not say"; a "not" inside the quote before it is not the verb's
    return not any(c.dep_ == "auxpass" for c in children)


def _calls_something(verb: Token, tree: _Tree) -> bool:
    """ "called it a disgrace", "called for talks", "called on X to Y": speech; "called the police": not.

    Only a named or human speaker calls something in speech ("the recipe called for sugar",
    "we still call it the Sylphy" name or require, they do not report).
    """
    subject = next((c for c in tree.children(verb) if c.dep_ == "nsubj"), None)
    if subject is not None and not (
        subject.pos_ == "PROPN"
        or subject.lower_ in {"he", "she", "they", "it"}
        or subject.lemma_.lower() in PERSON_ROLE_NOUNS | ORG_NOUNS
    ):
        return False
    for child in tree.children(verb):
        if child.dep_ == "oprd":
            return True
        if (
            child.dep_ == "prep"
            and child.lower_ in {"for", "on"}
            and any(c.dep_ == "pobj" and c.ent_type_ not in {"DATE", "TIME"} for c in tree.children(child))
        ):
            return True
    return False


def _subject(verb: Token, tree: _Tree) -> Token | None:
    """The speaker token of a reporting verb, following participles to their main verb."""
    seen = 0
    tok: Token | None = verb
    if verb.tag_ == "VBG" and verb.dep_ == "advcl":
        # "Pompeo said Washington had concluded X, saying he trusted the courts": the parser
        # hangs "saying" inside the report; it belongs to the one reporting.
        clause = verb.head
        while clause.dep_ == "conj" and clause.head is not clause:
            clause = clause.head
        if clause.dep_ == "ccomp" and clause.head.lemma_.lower() in SPEECH_VERBS:
            tok = clause.head
    while tok is not None and seen < 4:
        subjects = [c for c in tree.children(tok) if c.dep_ in {"nsubj", "nsubjpass"} and c.pos_ != "SCONJ"]
        if subjects:
            real = [c for c in subjects if not _is_dateline(c)]
            return real[-1] if real else _past_dateline(subjects[0], tree)
        if (
            tok.dep_ == "conj"
            and tok.head.dep_ == "ccomp"
            and tok.head.head.lemma_.lower() in SPEECH_VERBS
            and _is_speech_verb(tok, tree)
        ):
            # "The group said the contract confused employees, and demanded an extension":
            # the second report shares the reporter, not the subject of the first report.
            tok = tok.head.head
            seen += 1
            continue
        if tok.dep_ in {"advcl", "conj", "xcomp", "ccomp"} and tok.head is not tok:
            if tok.dep_ == "ccomp" and tok.head.lemma_.lower() not in SPEECH_VERBS:
                return None
            tok = tok.head
            seen += 1
            continue
        # "after accusing them", "posted on Twitter accusing X": the participle shares the
        # subject of the verb its preposition hangs from.
        if (
            tok.dep_ == "pcomp"
            and tok.head.lower_ in TIME_PREPOSITIONS
            and tok.head.dep_ == "prep"
            and tok.head.head.pos_ in {"VERB", "AUX"}
        ):
            tok = tok.head.head
            seen += 1
            continue
        if tok.dep_ == "acl" and tok.tag_ == "VBG" and tok.head.dep_ == "pobj" and tok.head.head.dep_ == "prep":
            tok = tok.head.head.head
            seen += 1
            continue
        if tok.dep_ == "acl" and tok.head.pos_ in {"NOUN", "PROPN"} and tok is not verb:
            # "a group, formed in recent weeks, sent a letter stating ...": the group.
            return tok.head
        break
    # Inverted attribution: "..., said Peskov." Not for verbs whose object is the content
    # ("accusing Big Machine of ...": Big Machine is accused, not speaking).
    if verb.lemma_.lower() in OBJECT_CONTENT_VERBS:
        return None
    for child in tree.rights(verb):
        if child.dep_ in {"dobj", "attr", "appos"} and child.pos_ == "PROPN" and child.ent_type_ not in NOT_SPEAKERS:
            return child
    return None


def _is_dateline(tok: Token) -> bool:
    """A capitalised place opening a paragraph and set off by a dash: where the story was filed.

    "HANOI, Vietnam (AP) — Mark Esper accused ...": the parser often makes "HANOI" a subject.
    """
    doc = tok.doc
    first = tok.left_edge
    if not (tok.is_upper and len(tok.text) > 2 and tok.i == first.i):
        return False
    if first.i > 0 and "\n" not in doc[first.i - 1].whitespace_ + doc[first.i - 1].text:
        return False
    return any(t.text in {"—", "–"} for t in doc[tok.i + 1 : tok.i + 10])


def _past_dateline(subject: Token, tree: _Tree) -> Token:
    """The name in apposition after a dateline's dash, when the parser hung the sentence on the dateline."""
    if not _is_dateline(subject):
        return subject
    dash = next(t for t in subject.doc[subject.i + 1 : subject.i + 10] if t.text in {"—", "–"})
    after = [c for c in tree.children(subject) if c.dep_ == "appos" and c.i > dash.i]
    return after[-1] if after else subject


def _content_span(verb: Token, index: _Index) -> tuple[int, int] | None:
    """Character span of the clause a reporting verb reports, without "that"."""
    tree = index.tree
    comps = [c for c in tree.children(verb) if c.dep_ in {"ccomp", "parataxis"} and c.pos_ != "PUNCT"]
    if not comps and verb.lemma_.lower() in ADDRESSEE_VERBS:
        comps = _that_clause_after_addressee(verb, tree)
    if not comps:
        return _object_span(verb, tree) or _parenthetical_span(verb, index)
    comp = max(comps, key=lambda c: tree.size[c.i])  # the largest subtree
    left, right = comp.left_edge.i, comp.right_edge.i
    # "said he had watched the testimony and slammed the hearings": the second report is
    # the speaker's own act, not part of the first.
    for child in tree.rights(comp):
        if (
            child.dep_ == "conj"
            and _is_speech_verb(child, tree)
            and not any(c.dep_ == "nsubj" for c in tree.children(child))
        ):
            right = min(right, child.left_edge.i - 1)
            while right > left and verb.doc[right].dep_ == "cc":
                right -= 1
            break
    if comp.i > verb.i:
        for child in tree.rights(verb):
            if child.i <= right or child.dep_ not in {"advcl", "prep", "npadvmod", "advmod"}:
                continue
            if child.tag_ == "VBG" or _is_speech_verb(child, tree):
                break
            right = max(right, child.right_edge.i)
    doc = verb.doc
    if left <= right:
        left = min(tree.first_clause_word(left), right + 1)  # past punctuation and "that"
    if right >= left:
        right = max(tree.last_kept(right), left - 1)  # before punctuation and space
    if right < left:
        return None
    return doc[left].idx, doc[right].idx + len(doc[right].text)


def _that_clause_after_addressee(verb: Token, tree: _Tree) -> list[Token]:
    """ "told the paper that he fought ...": the parser reads the clause as a relative one on
    the addressee ("the paper that ..."); when "that" is not the clause's own subject, it is
    the content.
    """
    doc = verb.doc
    if tree.inorder[verb.i]:
        # The subtree is the span between its edges, walked in order: the first such clause after the verb.
        found = tree.first_that_clause(verb.i + 1, tree.high[verb.i])
        return [doc[found]] if found is not None else []
    for tok in verb.subtree:
        if tok.i <= verb.i or tok.dep_ != "relcl":
            continue
        if tree.is_that_clause(tok.i):
            return [tok]
    return []


def _parenthetical_span(verb: Token, index: _Index) -> tuple[int, int] | None:
    """The sentence around an attribution set off by commas: "The landers, he said, could deliver tools."

    The parser hangs such a "he said" on the main verb; the whole sentence is the report.
    """
    if verb.dep_ != "parataxis" or verb.head.pos_ not in {"VERB", "AUX"}:
        return None
    doc = verb.doc
    left, right = verb.left_edge.i, verb.right_edge.i
    before = doc[left - 1] if left > 0 else None
    after = doc[right + 1] if right + 1 < len(doc) else None
    if not (before is not None and before.text == "," or doc[left].text == ","):
        return None
    if not (after is not None and after.text == "," or doc[right].text == ","):
        return None
    if index.double_mark_between(max(0, doc[left].idx - 3), doc[right].idx + len(doc[right].text) + 3):
        return None  # '"We are ready," he said, "to talk."': an interrupted quote, handled with quotes
    head = verb.head
    start, end = head.left_edge.i, head.right_edge.i
    if end > start:
        end = max(index.tree.last_kept(end), start)  # before punctuation and space
    if end - start < 4:
        return None
    return doc[start].idx, doc[end].idx + len(doc[end].text)


def _object_span(verb: Token, tree: _Tree) -> tuple[int, int] | None:
    """Reported content given as an object: "accused X of Y", "urged X to Y", "denied Z".

    Only for verbs whose object carries the content (``OBJECT_CONTENT_VERBS``); an object
    that is a bare pronoun or a single word says nothing and makes no statement.
    """
    lemma = verb.lemma_.lower()
    if lemma not in OBJECT_CONTENT_VERBS:
        return None
    rights = tree.rights(verb)
    parts = [c for c in rights if c.dep_ in {"dobj", "xcomp", "oprd"}]
    parts += [c for c in rights if c.dep_ == "prep" and c.lower_ in OBJECT_CONTENT_VERBS[lemma]]
    if not parts:
        return None
    if lemma in {"urge", "ask", "call"} and not any(p.dep_ in {"xcomp", "oprd", "prep"} for p in parts):
        return None
    if lemma == "cite" and any(p.pos_ == "PROPN" or p.lemma_.lower() in SOURCE_NOUNS for p in parts):
        return None  # "citing an anonymous source", "citing the health commission": a source, not a claim
    left = min(p.left_edge.i for p in parts)
    right = max(p.right_edge.i for p in parts)
    doc = verb.doc
    if right >= left:
        right = max(tree.last_kept(right), left - 1)  # before punctuation and space
    if right - left < 2 or tree.line_break_between(left, right):
        return None
    return doc[left].idx, doc[right].idx + len(doc[right].text)


# Where a story was filed, opening its first paragraph: "CALGARY, Alberta, Oct 27 (Newsflow) - ".
# A place in capitals, then a comma part or an agency in brackets, then a dash.
_DATELINE = re.compile(
    r"[A-Z][A-Z.'’ ]{1,30}[A-Z.](?:(?:,\s*[A-Z][\w.'’ ]{0,30}){1,3}(?:\s*\([^()\n]{1,40}\))?|\s*\([^()\n]{1,40}\))"
    r"\s*[-–—]+\s+"
)


def _cue(verb: Token, tree: _Tree) -> tuple[int, int]:
    start = verb.idx
    end = verb.idx + len(verb.text)
    lemma = verb.lemma_.lower()
    rights = tree.rights(verb)  # in order
    for child in rights:
        if child.dep_ == "prt" and child.i == verb.i + 1:
            end = child.idx + len(child.text)
    for child in rights:
        if (
            child.dep_ in {"dobj", "dative"}
            and lemma in ADDRESSEE_VERBS
            and child.left_edge.idx - end <= 1
            and child.ent_type_ != "DATE"
        ):
            end = child.right_edge.idx + len(child.right_edge.text)
            continue
        if child.dep_ == "prep" and child.lower_ in {"on", "in", "via", "through"}:
            pobj = [c for c in tree.children(child) if c.dep_ == "pobj"]
            if (
                pobj
                and child.idx - end <= 1
                and pobj[0].lower_ in MEDIA_WORDS | {"telegram"}
                and pobj[0].ent_type_ not in {"DATE", "TIME"}
            ):
                end = pobj[0].right_edge.idx + len(pobj[0].right_edge.text)
                continue
        if child.i > verb.i + 1 and child.idx > end + 1:
            break
    return start, end


def _sentence_bounds(tok: Token) -> tuple[int, int]:
    sent = tok.sent
    return sent.start_char, sent.end_char


class _Resolver:
    """Turns speaker tokens into (mention span, canonical cluster)."""

    def __init__(self, doc: Doc, index: _Index, clusters: dict[int, Cluster]):
        self.doc = doc
        self.index = index
        self.clusters = clusters
        self.roles = self._roles()
        self.new_mentions: list[Mention] = []
        # Lookups over the clusters, so that no speaker costs a pass over every entity. The
        # clusters only grow, through ``_add``, and no name changes while statements are made.
        self._next_id = max(clusters, default=-1) + 1
        self._order = {cluster_id: n for n, cluster_id in enumerate(clusters)}
        self._endings: dict[str, int] | None = None  # casefolded name ending -> first cluster
        self._by_surname: dict[str, int] | None = None  # last word -> the best cluster (``named_cluster``)
        self._org_names: dict[str, int] = {}  # casefolded ORG name -> first cluster
        self._person_names: dict[str, int] = {}  # PERSON name -> first cluster
        for cluster in clusters.values():
            self._index_names(cluster)
        self._full_names: dict[str, str] | None = None
        # role -> the one cluster holding it, or (starts, clusters) of the mentions of those tied
        self._role_holders: dict[str, int | tuple[list[int], list[int]]] = {}
        self._org_words: dict[str, tuple[list[int], list[int]]] | None = None

    def _add(self, cluster: Cluster) -> None:
        self.clusters[cluster.id] = cluster
        self._next_id = max(self._next_id, cluster.id + 1)
        self._order.setdefault(cluster.id, len(self._order))
        self._index_names(cluster)
        if self._endings is not None:
            self._index_endings(cluster)
        if self._by_surname is not None:
            self._index_surname(cluster)

    def _index_names(self, cluster: Cluster) -> None:
        if cluster.label == "ORG":
            self._org_names.setdefault(cluster.name.casefold(), cluster.id)
        if cluster.label == "PERSON":
            self._person_names.setdefault(cluster.name, cluster.id)

    def _index_endings(self, cluster: Cluster) -> None:
        name = cluster.name.casefold()
        for n in range(max(0, len(name) - _INDEXED_ENDING), len(name) + 1):
            self._endings.setdefault(name[n:], cluster.id)  # type: ignore[union-attr]

    def _index_surname(self, cluster: Cluster) -> None:
        words = cluster.name.casefold().split()
        if not words:
            return
        best = self._by_surname.get(words[-1])  # type: ignore[union-attr]
        if best is None or _surname_rank(cluster, self._order) < _surname_rank(self.clusters[best], self._order):
            self._by_surname[words[-1]] = cluster.id  # type: ignore[index]

    def _ending_with(self, key: str) -> int | None:
        """The first cluster whose casefolded name ends with ``key``."""
        if len(key) > _INDEXED_ENDING:
            return next((c.id for c in self.clusters.values() if c.name.casefold().endswith(key)), None)
        if self._endings is None:
            self._endings = {}
            for cluster in self.clusters.values():
                self._index_endings(cluster)
        return self._endings.get(key)

    def _surnamed(self, key: str) -> int | None:
        """The cluster whose name's last word is ``key``: a person first, then the longest name, then the first."""
        if self._by_surname is None:
            self._by_surname = {}
            for cluster in self.clusters.values():
                self._index_surname(cluster)
        return self._by_surname.get(key)

    def _roles(self) -> dict[str, Counter[int]]:
        """Role words ("spokesman", "minister", "Gov.") seen next to each person's name, counted."""
        roles: dict[str, Counter[int]] = {}
        tree = self.index.tree
        for m in self.index.mentions:
            if m.label != "PERSON":
                continue
            span = self.doc.char_span(m.start, m.end, alignment_mode="expand")
            if span is None:
                continue
            root = span.root
            words = [t for t in tree.children(root) if t.dep_ in {"compound", "amod", "appos"}]
            if root.dep_ == "appos":
                words += [t for t in tree.children(root.head) if t.dep_ == "appos"]
                words.append(root.head)
            if span.start > 0:
                words.append(self.doc[span.start - 1])  # a title the entity left out: "Gov. Eric Holcomb"
            seen: set[str] = set()
            looked_at = 0
            for w in words:
                for t in tree.walk(w) if w.dep_ == "appos" else [w]:
                    looked_at += 1
                    if looked_at > MAX_ROLE_WORDS:
                        break
                    if t.pos_ == "NOUN" or t.pos_ == "PROPN" and t.i < span.start:
                        role = t.lemma_.lower().rstrip(".")
                        role = TITLE_ABBREVIATIONS.get(role, role)
                        if role not in ORG_NOUNS and role not in seen:
                            seen.add(role)
                            roles.setdefault(role, Counter())[m.cluster] += 1
                if looked_at > MAX_ROLE_WORDS:
                    break
        return roles

    def mention_span(self, tok: Token) -> tuple[int, int]:
        m = self.index.mention_at(tok.idx, tok.idx + len(tok.text))
        if m is not None:
            return m.start, m.end
        if tok.pos_ == "PRON":
            return tok.idx, tok.idx + len(tok.text)
        left = tok
        for child in self.index.tree.lefts(tok):
            if child.dep_ in {"det", "compound", "amod", "poss", "nmod", "nummod"}:
                left = child.left_edge if child.left_edge.i < left.i else left
                break
        start = left.idx
        end = tok.idx + len(tok.text)
        return start, end

    def named_cluster(self, tok: Token, as_name: bool = False) -> int | None:
        """The entity a name token stands for; ``as_name`` takes a capitalised noun as a name."""
        m = self.index.mention_at(tok.idx, tok.idx + len(tok.text))
        if m is not None and m.label in {"PERSON", "ORG", "GPE", "NORP"}:
            return m.cluster
        if tok.pos_ != "PROPN" and not as_name or tok.ent_type_ in NOT_SPEAKERS:
            return None
        key = tok.text.casefold()
        qualifiers = [
            c
            for c in self.index.tree.lefts(tok)
            if c.dep_ in {"compound", "nmod"} and c.pos_ == "PROPN" and c.lower_.rstrip(".") not in TITLES
        ]
        if qualifiers:
            # "E! News" is not "Fox News": a qualified name must match whole.
            key = self.index.text[qualifiers[0].left_edge.idx : tok.idx + len(tok.text)].casefold()
            found = self._ending_with(key)
            return found if found is not None else self._new_speaker(tok)
        found = self._surnamed(key)
        if found is not None:
            return found
        named = [tok, *(c for c in self.index.tree.lefts(tok) if c.dep_ in {"compound", "nmod"} and c.pos_ == "PROPN")]
        if not any(t.text[:1].isupper() for t in named):  # "the ministry" tagged PROPN: a role, not a name
            return None
        return self._new_speaker(tok)

    def organisation(self, start: int, end: int) -> int:
        """The organisation named by ``text[start:end]``, made an entity if it is not one yet."""
        name = self.index.text[start:end]
        found = self._org_names.get(name.casefold())
        if found is not None:
            return found
        cluster = Cluster(id=self._next_id, label="ORG", name=name, aliases={name})
        self._add(cluster)
        self.new_mentions.append(Mention(start, end, name, "ORG", cluster.id))
        return cluster.id

    def new_organisation(self, head: Token) -> int:
        """An organisation named by a phrase ("the US military") becomes an entity."""
        left = head.left_edge
        while left.i < head.i and left.lower_ in DEFINITE:
            left = left.nbor(1)
        name = self.index.text[left.idx : head.idx + len(head.text)]
        found = self._org_names.get(name.casefold())
        if found is not None:
            return found
        cluster = Cluster(id=self._next_id, label="ORG", name=name, aliases={name})
        self._add(cluster)
        self.new_mentions.append(Mention(left.idx, head.idx + len(head.text), name, "ORG", cluster.id))
        return cluster.id

    def _new_speaker(self, tok: Token) -> int:
        """A named speaker the entity recogniser missed becomes an entity of its own."""
        start = tok
        while start.i > 0 and start.nbor(-1).pos_ == "PROPN" and start.nbor(-1).dep_ in {"compound", "nmod"}:
            start = start.nbor(-1)
        name = self.index.text[start.idx : tok.idx + len(tok.text)]
        if start is tok:
            name = self._full_name(tok) or name
        found = self._person_names.get(name)
        if found is not None:
            self.clusters[found].aliases.add(tok.text)
            self.new_mentions.append(Mention(start.idx, tok.idx + len(tok.text), tok.text, "PERSON", found))
            return found
        cluster = Cluster(id=self._next_id, label="PERSON", name=name, aliases={name, tok.text})
        self._add(cluster)
        mention_text = self.index.text[start.idx : tok.idx + len(tok.text)]
        self.new_mentions.append(Mention(start.idx, tok.idx + len(tok.text), mention_text, "PERSON", cluster.id))
        return cluster.id

    def _full_name(self, surname: Token) -> str | None:
        """'Ana Ruiz' for a lone 'Ruiz' when the text names her in full somewhere (first such place)."""
        if self._full_names is None:
            self._full_names = {}
            for other in self.doc[1:]:
                given = other.nbor(-1)
                if (
                    given.pos_ == "PROPN"
                    and given.is_title
                    and given.ent_type_ not in NOT_SPEAKERS | {"GPE", "ORG", "NORP"}
                ):
                    self._full_names.setdefault(other.text, f"{given.text} {other.text}")
        return self._full_names.get(surname.text)

    def role_cluster(self, tok: Token, before: int) -> int | None:
        lemma = tok.lemma_.lower()
        people = self.roles.get(lemma) if tok.tag_ != "NNS" else None
        if people:
            # The one person with that role, or the one named with it most often ("President
            # Trump" many times beats "John Williams, the president of the New York Fed" once).
            # Worked out once per role: the roles are counted before any statement.
            if lemma not in self._role_holders:
                ranked = people.most_common(2)
                if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
                    self._role_holders[lemma] = ranked[0][0]
                else:
                    # A tie: where each of those tied is named, for the one named last before the attribution.
                    top = {c for c, n in people.items() if n == ranked[0][1]}
                    named = [m for m in self.index.mentions if m.cluster in top]
                    self._role_holders[lemma] = [m.start for m in named], [m.cluster for m in named]
            holder = self._role_holders[lemma]
            if isinstance(holder, int):
                return holder
            starts, clusters = holder
            k = bisect.bisect_left(starts, before) - 1
            if k >= 0:
                return clusters[k]
        # "the ministry said": the organisation most recently named with that word in it.
        if self._org_words is None:
            self._org_words = {}
            for m in self.index.mentions:
                if m.label == "ORG":
                    for word in set(m.text.casefold().split()):
                        starts, clusters = self._org_words.setdefault(word, ([], []))
                        starts.append(m.start)
                        clusters.append(m.cluster)
        starts, clusters = self._org_words.get(lemma, ([], []))
        k = bisect.bisect_left(starts, before) - 1
        return clusters[k] if k >= 0 else None


class _Verbs:
    """The reporting verbs outside quotes, in text order, with their subjects."""

    def __init__(self, verbs: list[Token], tree: _Tree):
        self.tokens = verbs
        self.offsets = [v.idx for v in verbs]
        self.subjects = [_subject(v, tree) for v in verbs]
        # Those with a subject, the only ones that attribute a quote beside them.
        self.spoken = [k for k, subject in enumerate(self.subjects) if subject is not None]
        self.spoken_offsets = [self.offsets[k] for k in self.spoken]


class _QuoteMarks:
    """Per quote: the attribution a content clause made of it gave it first, and whether it is a
    fragment of a mixed statement. Marked a range of quotes at a time, at no cost per quote
    marked twice: a long sentence of nested reports holds the same quotes many times over.
    """

    def __init__(self, count: int):
        self.attributions: list[_Attribution | None] = [None] * count
        self._unmarked = list(range(count + 1))  # the next quote at or after i with no attribution yet
        self._consumed = [0] * (count + 1)  # +1 where a consumed range starts, -1 past its end
        self._consumed_at: list[bool] | None = None

    def _next_unmarked(self, i: int) -> int:
        root = i
        while self._unmarked[root] != root:
            root = self._unmarked[root]
        while self._unmarked[i] != root:
            self._unmarked[i], i = root, self._unmarked[i]
        return root

    def attribute(self, inside: Sequence[int], attribution: _Attribution) -> None:
        """Give the quotes ``inside`` this attribution, where they have none yet."""
        if not isinstance(inside, range):
            for i in inside:
                if self.attributions[i] is None:
                    self.attributions[i] = attribution
                    self._unmarked[i] = i + 1
            return
        i = self._next_unmarked(inside.start)
        while i < inside.stop:
            self.attributions[i] = attribution
            self._unmarked[i] = i + 1
            i = self._next_unmarked(i + 1)

    def consume(self, inside: Sequence[int]) -> None:
        """Mark the quotes ``inside`` fragments of a mixed statement."""
        self._consumed_at = None
        ranges = [inside] if isinstance(inside, range) else [range(i, i + 1) for i in inside]
        for r in ranges:
            if r:
                self._consumed[r.start] += 1
                self._consumed[r.stop] -= 1

    def consumed(self, i: int) -> bool:
        if self._consumed_at is None:
            self._consumed_at, running = [], 0
            for delta in self._consumed[:-1]:
                running += delta
                self._consumed_at.append(running > 0)
        return self._consumed_at[i]


def _candidates(doc: Doc, index: _Index) -> list[_Candidate]:
    text = index.text
    tree = index.tree
    marks = _QuoteMarks(len(index.quotes))  # attributions of quotes, fragments of mixed statements
    out: list[_Candidate] = []
    verbs = _Verbs([t for t in doc if _is_speech_verb(t, tree) and index.in_quote(t.idx) is None], tree)

    for verb, subject in zip(verbs.tokens, verbs.subjects, strict=True):
        span = _content_span(verb, index)
        if span is None or subject is None:
            continue
        start, end = index.trim(*span)
        if (dateline := _DATELINE.match(text, start, end)) is not None:
            start = dateline.end()  # the dateline is not what the speaker said
        if end <= start or end - start > MAX_REPORT_CHARS:
            continue
        inside = index.quotes_within(start, end)
        if inside:
            if index.words_outside(start, end, inside) < 3:
                marks.attribute(inside, _Attribution(verb, subject))
                continue
            marks.consume(inside)
            kind = "mixed"
        else:
            kind = "indirect"
            if verb.lemma_.lower() in WEAK_VERBS and verb.lemma_.lower() != "ask":
                kind = "indirect"
        # The text is cut once the candidates that stay are known: nested reports in a long
        # sentence overlap, and cutting each would copy the sentence once per verb.
        out.append(_Candidate(kind, start, end, "", _Attribution(verb, subject), verb.idx, cut=True))

    for tok in doc:
        if tok.lower_ == "according" and tok.i + 1 < len(doc) and doc[tok.i + 1].lower_ == "to":
            if index.in_quote(tok.idx) is not None:
                continue
            to = doc[tok.i + 1]
            pobj = [c for c in tree.children(to) if c.dep_ == "pobj"]
            if not pobj:
                continue
            s_start, s_end = tree.sentence_bounds(tok)
            phrase_start, phrase_end = tok.left_edge.idx, tok.right_edge.idx + len(tok.right_edge.text)
            if phrase_start - s_start > 2:
                start, end = index.trim(s_start, phrase_start)
                if (dateline := _DATELINE.match(text, start, end)) is not None:
                    start = dateline.end()
            else:
                start, end = index.trim(phrase_end, s_end)
            end = end - 1 if end > start and text[end - 1] == "." else end
            if end - start < 10 or end - start > MAX_REPORT_CHARS:
                continue
            attribution = _Attribution(tok, pobj[0])
            inside = index.quotes_within(start, end)
            marks.consume(inside)
            kind = "mixed" if inside else "indirect"
            out.append(_Candidate(kind, start, end, "", attribution, tok.idx, cut=True))

    merged_into: dict[int, int] = {}
    for qi, quote in enumerate(index.quotes):
        if marks.consumed(qi) or qi in merged_into:
            continue
        attribution = marks.attributions[qi] or _adjacent_attribution(quote, qi, index, verbs)
        parts = list(quote.parts)
        # An interrupted quote: "We are ready," he said, "to talk." / "..." he said. "..."
        if attribution is not None and qi + 1 < len(index.quotes):
            nxt = index.quotes[qi + 1]
            between = text[quote.close_at : nxt.open_at]
            if (
                "\n" not in between
                and quote.close_at < attribution.verb.idx < nxt.open_at
                and len(between.split()) <= 15
                and marks.attributions[qi + 1] is None
                and not _has_own_attribution(nxt, qi + 1, index, verbs, attribution)
            ):
                parts += list(nxt.parts)
                merged_into[qi + 1] = qi
        start, end = parts[0][0], parts[-1][1]
        start, end = index.trim(start, end)
        if end <= start:
            continue
        body = "\n".join(_strip_edge(text[s:e]) for s, e in parts if text[s:e].strip())
        body = body.rstrip(",;: ")
        words = len(body.split())
        if attribution is None:
            if words < MIN_UNATTRIBUTED_WORDS:
                continue
            inherit = _starts_paragraph(text, quote.open_at)
            out.append(_Candidate("direct", start, end, body, None, quote.open_at, inherit))
        else:
            if words < 2:
                continue
            out.append(_Candidate("direct", start, end, body, attribution, quote.open_at))
    out.sort(key=lambda c: c.start)
    kept = _dedupe(out)
    for cand in kept:
        if cand.cut:
            cand.text = _strip_marks(text[cand.start : cand.end])
            cand.cut = False
    return kept


def _has_own_attribution(quote: Quote, qi: int, index: _Index, verbs: _Verbs, previous: _Attribution) -> bool:
    """Whether the quote after an attribution has a reporting verb of its own after it."""
    found = _adjacent_attribution(quote, qi, index, verbs)
    return found is not None and found.verb.i != previous.verb.i


def _dedupe(cands: list[_Candidate]) -> list[_Candidate]:
    """Drop a candidate whose span lies inside another one with the same attribution."""
    keep: list[_Candidate] = []
    # Candidates come sorted by start, so every kept one starts at or before the next: it
    # overlaps that one only if it ends after its start, and one that ends at or before it
    # overlaps no later candidate either. Only the rest (``live``, in keep order) are compared.
    in_order = all(a.start <= b.start for a, b in pairwise(cands))
    live: list[int] = []
    for c in cands:
        if in_order:
            live = [j for j in live if keep[j].end > c.start]
        clash = False
        for j in live:
            k = keep[j]
            if c.start < k.end and k.start < c.end:
                same_verb = (
                    c.attribution is not None
                    and k.attribution is not None
                    and c.attribution.verb.i == k.attribution.verb.i
                )
                if same_verb or (c.start >= k.start and c.end <= k.end and c.kind == k.kind):
                    clash = True
                    if (c.end - c.start) > (k.end - k.start):
                        keep[j] = c
                    break
        if not clash:
            keep.append(c)
            live.append(len(keep) - 1)
    return keep


def _words_outside(text: str, start: int, end: int, quotes: list[Quote]) -> int:
    chars = list(text[start:end])
    for q in quotes:
        for s, e in [(q.open_at, q.close_at)]:
            for i in range(max(s, start), min(e, end)):
                chars[i - start] = " "
    return len(re.findall(r"\w+", "".join(chars)))


def _strip_marks(s: str) -> str:
    return re.sub(r"[\"“”„«»]", "", s).strip()


def _strip_edge(s: str) -> str:
    return s.strip().strip("".join(DOUBLE)).strip()


def _starts_paragraph(text: str, offset: int) -> bool:
    return offset == 0 or text[offset - 1] == "\n"


def _adjacent_attribution(quote: Quote, qi: int, index: _Index, verbs: _Verbs) -> _Attribution | None:
    """The reporting verb right after a quote, or right before it, in the same paragraph."""
    text = index.text
    para_end = index.newline_after(quote.close_at)
    next_open = index.quotes[qi + 1].open_at if qi + 1 < len(index.quotes) else len(text)
    limit = min(para_end, next_open)
    window = index.token_at(quote.close_at)
    k = bisect.bisect_left(verbs.offsets, quote.close_at)
    while k < len(verbs.tokens) and verbs.offsets[k] < limit:
        verb = verbs.tokens[k]
        if window is not None and verb.i - window.i > ATTRIBUTION_WINDOW:
            break
        if index.sentence_end_between(quote.close_at, verb.idx):
            break
        subject = verbs.subjects[k]
        if subject is not None:
            return _Attribution(verb, subject)
        k += 1
    para_start = index.paragraph_start(quote.open_at)
    prev_close = index.quotes[qi - 1].close_at if qi > 0 else 0
    floor = max(para_start, prev_close)
    # Back from the quote, the first verb with a subject, unless a sentence ends between the
    # two: the gap only grows going back, so the nearest such verb is the only one to check.
    k = bisect.bisect_left(verbs.spoken_offsets, quote.open_at) - 1
    if k >= 0 and verbs.spoken_offsets[k] >= floor:
        n = verbs.spoken[k]
        verb = verbs.tokens[n]
        if not index.sentence_end_between(verb.idx, quote.open_at):
            return _Attribution(verb, verbs.subjects[n])
    return None


def extract_statements(doc: Doc, mentions: list[Mention], clusters: dict[int, Cluster]) -> list[Statement]:
    """All statements in ``doc``, speakers resolved to ``clusters`` where possible.

    A named speaker the entity recogniser missed is added to ``clusters`` and ``mentions``
    (both are updated in place) so every named speaker is an entity.
    """
    quotes = find_quotes(doc.text)
    index = _Index(doc, quotes, mentions)  # doc.text joins every token on each call: use index.text
    resolver = _Resolver(doc, index, clusters)
    candidates = _candidates(doc, index)
    content_spans = [(c.start, c.end) for c in candidates] + [(q.open_at, q.close_at) for q in quotes]
    focus = _Focus(doc, index, clusters, content_spans)

    statements: list[Statement] = []
    previous: Statement | None = None
    for cand in sorted(candidates, key=lambda c: c.anchor):
        if cand.attribution is None:
            speaker = None
            if previous is not None and previous.speaker_cluster is not None:
                gap = index.text[previous.quote_end : cand.start]
                same_paragraph = "\n" not in gap
                # A paragraph all quote goes on from the quote before it, or from a paragraph
                # that ends reporting the same speaker ("Erekat said it was the latest move.")
                follows_quote = cand.inherit_from_previous and gap.count("\n") <= 3
                if previous.kind != "direct":
                    follows_quote = follows_quote and re.fullmatch(r"[\s.,;:\"'”’]*", gap) is not None
                if same_paragraph or follows_quote:
                    speaker = previous
            statement = Statement(
                "direct",
                cand.text,
                cand.start,
                cand.end,
                speaker.speaker if speaker else None,
                None,
                None,
                None,
                speaker.speaker_cluster if speaker else None,
                None,
                None,
                None,
            )
        else:
            statement = _attribute(cand, doc, index, resolver, focus)
        if statement.speaker_cluster is not None:
            focus.record(cand.anchor, statement)
        statements.append(statement)
        previous = statement
    statements.sort(key=lambda s: s.quote_start)
    if resolver.new_mentions:
        mentions.extend(resolver.new_mentions)
        mentions.sort(key=lambda m: m.start)
    return statements


def _attribute(cand: _Candidate, doc: Doc, index: _Index, resolver: _Resolver, focus: _Focus) -> Statement:
    assert cand.attribution is not None
    verb, subject = cand.attribution.verb, cand.attribution.subject
    if verb.lower_ == "according":
        cue_start, cue_end = verb.idx, doc[verb.i + 1].idx + len(doc[verb.i + 1].text)
    else:
        cue_start, cue_end = _cue(verb, index.tree)
    cluster: int | None = None
    mention: tuple[int, int] | None = None
    if subject is not None:
        mention = resolver.mention_span(subject)
        lower = subject.lower_
        if _coordinated(subject, index.tree):
            # "Volker and Morrison said": several speakers, none of them alone.
            mention = subject.left_edge.idx, subject.right_edge.idx + len(subject.right_edge.text)
        elif lower in {"who", "that"} and subject.head.dep_ == "relcl":
            # "Alexander Vindman, a career Army officer who described ...": the antecedent speaks.
            antecedent = subject.head.head
            if antecedent.dep_ == "appos" and antecedent.pos_ == "NOUN":
                antecedent = antecedent.head
            mention = resolver.mention_span(antecedent)
            cluster = resolver.named_cluster(antecedent)
        elif subject.pos_ == "PRON" or lower in PRONOUNS:
            cluster = focus.pronoun(lower, verb.idx)
        else:
            cluster = resolver.named_cluster(subject)
            if cluster is None and subject.pos_ == "NOUN" and subject.is_title and _has_who_clause(subject, index.tree):
                cluster = resolver.named_cluster(subject, as_name=True)  # "Scissors, who consults ..."
            if cluster is None and (subject.pos_ == "NOUN" or subject.lower_ == "old"):
                cluster = focus.noun_phrase(subject, verb, resolver)
    mention_text = index.text[mention[0] : mention[1]] if mention else None
    speaker = focus.clusters[cluster].name if cluster is not None else mention_text
    return Statement(
        cand.kind,
        cand.text,
        cand.start,
        cand.end,
        speaker,
        mention_text,
        mention[0] if mention else None,
        mention[1] if mention else None,
        cluster,
        index.text[cue_start:cue_end],
        cue_start,
        cue_end,
    )


def _surname_rank(cluster: Cluster, order: dict[int, int]) -> tuple[bool, int, int]:
    """How ``named_cluster`` ranks clusters sharing a last word: persons, longer names, earlier ones first."""
    return cluster.label != "PERSON", -len(cluster.name), order[cluster.id]


def _has_who_clause(tok: Token, tree: _Tree) -> bool:
    return any(c.dep_ == "relcl" and any(g.lower_ == "who" for g in tree.children(c)) for c in tree.children(tok))


def _coordinated(subject: Token, tree: _Tree) -> bool:
    """A subject joined by "and" to another speaker ("Volker and Morrison", "he and his wife").

    "the singer and guitarist" is one person: a bare second noun shares the first's article.
    """
    return any(
        c.dep_ == "conj" and (c.pos_ in {"PROPN", "PRON"} or any(d.dep_ in {"det", "poss"} for d in tree.children(c)))
        for c in tree.children(subject)
    ) and any(c.dep_ == "cc" and c.lower_ in {"and", "&"} for c in tree.children(subject))


class _Focus:
    """Who the narration is about: the speakers so far, the people named, their genders.

    Pronouns and definite descriptions ("he", "the company") resolve against it.
    """

    def __init__(self, doc: Doc, index: _Index, clusters: dict[int, Cluster], content_spans: list[tuple[int, int]]):
        self.doc = doc
        self.index = index
        self.clusters = clusters
        self.content_spans = _merged(content_spans)
        self.content_starts = [s for s, _e in self.content_spans]
        # "CALGARY (Newsflow) - ": the agency that filed the story is no organisation in focus
        self.datelines = [
            m.span() for p in re.finditer(r"(?:^|\n)", index.text) if (m := _DATELINE.match(index.text, p.end()))
        ]
        self.dateline_starts = [start for start, _end in self.datelines]
        self.history: list[tuple[int, Statement]] = []  # (anchor, statement) with a resolved speaker
        self.genders = _genders(doc, index, clusters, self._narrated)
        self._unnamed_roles: dict[str, int] | None = None  # noun -> token index of "a <noun>"
        self._issued: dict[str, list[tuple[int, Token]]] | None = None  # document noun -> (index, verb)
        self._groups: dict[str, list[tuple[int, int]]] = {}  # "Doctors" -> spans of group names
        self.spoke_at: dict[int, int | None] = {}  # cue offset -> speaker cluster
        # Searches back through the narration and the speakers so far, kept linear over a
        # long article: per label its narration mentions, and per question the places ruled
        # out for good (a gender, once known, never changes; nor does a label).
        self._last: dict[str | None, tuple[int, int]] = {}  # label (None: any) -> newest (anchor, cluster)
        self._narration_mentions: dict[str, tuple[list[Mention], list[int]]] = {}
        self._named_with: dict[str, tuple[list[int], list[int]]] | None = None  # word -> ORG mention starts, clusters
        self._ruled_out: dict[tuple[str, str, str | None], dict[int, int]] = {}
        self._subjects: dict[Mention, bool] = {}

    def record(self, anchor: int, statement: Statement) -> None:
        self.history.append((anchor, statement))
        if statement.cue_start is not None:
            self.spoke_at[statement.cue_start] = statement.speaker_cluster
        if statement.speaker_cluster is not None:
            self._last[None] = anchor, statement.speaker_cluster
            self._last[self.clusters[statement.speaker_cluster].label] = anchor, statement.speaker_cluster

    def _narrated(self, offset: int) -> bool:
        """Whether ``offset`` is in the narration, not inside reported content."""
        i = bisect.bisect_right(self.content_starts, offset) - 1
        return i < 0 or offset >= self.content_spans[i][1]

    def _in_dateline(self, offset: int) -> bool:
        i = bisect.bisect_right(self.dateline_starts, offset) - 1  # sorted, apart: one can hold it
        return i >= 0 and offset < self.datelines[i][1]

    def _narration(self, label: str) -> tuple[list[Mention], list[int]]:
        """The narration mentions of ``label`` entities in text order, and their starts."""
        found = self._narration_mentions.get(label)
        if found is None:
            mentions = [
                m
                for m in self.index.mentions
                if self.clusters[m.cluster].label == label
                and self._narrated(m.start)
                and not self._in_dateline(m.start)
            ]
            found = self._narration_mentions[label] = mentions, [m.start for m in mentions]
        return found

    def mentions_before(self, label: str, before: int, after: int = -1) -> Iterator[Mention]:
        """Narration mentions of ``label`` entities between ``after`` and ``before``, newest first."""
        mentions, starts = self._narration(label)
        for k in range(bisect.bisect_left(starts, before) - 1, -1, -1):
            if mentions[k].start <= after:
                return
            yield mentions[k]

    def _newest(self, question: tuple[str, str, str | None], last: int, fits: Callable[[int], bool]) -> int:
        """The highest place at or below ``last`` that ``fits`` the question (-1: none).

        A place that does not fit is ruled out for good, and skipped by every later search
        for the same question: each place is looked at once per question, however many
        pronouns search back past it.
        """
        skips = self._ruled_out.setdefault(question, {})
        k = _unskipped(skips, last)
        while k >= 0:
            if fits(k):
                return k
            skips[k] = k - 1
            k = _unskipped(skips, k - 1)
        return -1

    def last_speaker(self, label: str | None = None) -> tuple[int, int] | None:
        """(anchor, cluster) of the newest statement whose speaker has ``label`` (any label for None)."""
        return self._last.get(label)

    def compatible(self, cluster: int, gender: str | None) -> bool:
        known = self.genders.get(cluster)
        return gender is None or known is None or known == gender

    def pronoun(self, pronoun: str, at: int, gender: str | None = None) -> int | None:
        """He/she: the last speaker of that gender, unless a person became the subject of narration since.

        "they" stands for an organisation only when an organisation spoke last.
        """
        if pronoun == "they":
            last = self.last_speaker()
            return last[1] if last and self.clusters[last[1]].label == "ORG" else None
        if pronoun in ROLE_PERSON_PRONOUNS:
            label, gender = "PERSON", PRONOUNS[pronoun]
        elif pronoun == "it":
            label = "ORG"
        elif pronoun == "person":  # a role noun ("the spokesman"): a person of the gender given
            label = "PERSON"
        else:
            return None
        found = self._antecedent(label, at, gender)
        if found is not None and gender is not None:
            self.genders.setdefault(found, gender)  # once "she", not later "he"
        return found

    def _antecedent(self, label: str, at: int, gender: str | None) -> int | None:
        # The newest person (or organisation) made the subject of narration since the last
        # speaker of that label; else the newest such speaker; else the newest one named.
        # Whether a place fits never changes but from fitting to not (a gender gets known).
        since = self.last_speaker(label)
        mentions, starts = self._narration(label)
        before = bisect.bisect_left(starts, at) - 1
        k = self._newest(
            ("subject", label, gender),
            before,
            lambda k: self.compatible(mentions[k].cluster, gender) and self._is_subject(mentions[k]),
        )
        if k >= 0 and mentions[k].start > (since[0] if since else -1):
            return mentions[k].cluster
        history = self.history

        def spoke(k: int) -> bool:
            cluster = history[k][1].speaker_cluster
            return cluster is not None and self.clusters[cluster].label == label and self.compatible(cluster, gender)

        k = self._newest(("history", label, gender), len(history) - 1, spoke)
        if k >= 0:
            return history[k][1].speaker_cluster
        k = self._newest(("named", label, gender), before, lambda k: self.compatible(mentions[k].cluster, gender))
        return mentions[k].cluster if k >= 0 else None

    def _is_subject(self, mention: Mention) -> bool:
        found = self._subjects.get(mention)
        if found is None:
            found = self._subjects[mention] = _is_subject(self.doc, mention)
        return found

    def _org_named_with(self, word: str, before: int) -> int | None:
        """The newest narration organisation before ``before`` with ``word`` in its name."""
        if self._named_with is None:
            self._named_with = {}
            for m in self._narration("ORG")[0]:
                for name_word in set(m.text.casefold().split()):
                    starts, clusters = self._named_with.setdefault(name_word, ([], []))
                    starts.append(m.start)
                    clusters.append(m.cluster)
        starts, clusters = self._named_with.get(word, ([], []))
        k = bisect.bisect_left(starts, before) - 1
        return clusters[k] if k >= 0 else None

    def noun_phrase(self, head: Token, verb: Token, resolver: _Resolver) -> int | None:
        """A common-noun speaker: "the spokeswoman", "the company", "the US military", "the statement".

        An indefinite or bare plural phrase ("a senior official", "analysts") names nobody and
        stays unresolved. A definite phrase resolves through its apposition ("the group that
        owns her music, Big Machine"), titles seen in the text, then by kind: organisation
        nouns to the organisation in focus, documents to whoever issued them, person nouns
        like a pronoun.
        """
        lemma = head.lemma_.lower()
        tree = self.index.tree
        named = [c for c in tree.children(head) if c.dep_ == "appos" and c.pos_ == "PROPN"]
        # "The company that runs the AMAs, Dick Clark Productions, denies": a name closing the
        # subject phrase between commas, wherever the parser hung it.
        end = head.right_edge.i
        named += [
            t
            for t in tree.subtree(head)
            if t.dep_ == "appos"
            and t.pos_ == "PROPN"
            and t.ent_type_ not in {"GPE", "LOC", "FAC", "DATE"}  # "in Greenbelt, Maryland," is a place
            and t.i > head.i
            and t.right_edge.i in {end, end - 1}
        ]
        # "Another diplomat, former envoy Kurt Volker, ...": the name inside a descriptive apposition.
        named += [
            t
            for c in tree.children(head)
            if c.dep_ == "appos" and c.pos_ == "NOUN"
            for t in tree.children(c)
            if t.dep_ in {"compound", "appos"} and t.pos_ == "PROPN" and t.ent_type_ == "PERSON"
        ]
        # "a new report by E! News", "a statement from the ministry", "the policy manual of the
        # immigration service": the author speaks. Only writings take "of" ("members of
        # Congress", "friends of Mike Ford" are not Congress or Ford).
        authors = {"by", "from", "of"} if lemma in WRITINGS else {"by", "from"}
        named += [
            p
            for c in tree.rights(head)
            if c.dep_ == "prep" and c.lower_ in authors
            for p in tree.children(c)
            if p.dep_ == "pobj" and p.pos_ == "PROPN"
        ]
        if named:
            found = resolver.named_cluster(named[0])
            if found is not None:
                return found
        determiners = [c.lower_ for c in tree.lefts(head) if c.dep_ in {"det", "nummod", "quantmod"}]
        owners = [c for c in tree.lefts(head) if c.dep_ == "poss"]
        modifiers = [c for c in tree.lefts(head) if c.pos_ == "PROPN" or c.ent_type_ in {"GPE", "NORP", "ORG"}]
        org_compound = lemma in ORG_NOUNS and any(
            c.dep_ == "compound" and c.lemma_.lower() in ORG_NOUNS for c in tree.lefts(head)
        )  # "Company management said": the company in focus
        if not owners and not modifiers and not org_compound and (not determiners or determiners[0] not in DEFINITE):
            return None
        if lemma in DOCUMENT_NOUNS:
            return self._issuer(head, verb.idx, resolver)
        if head.tag_ == "NNS":
            # "the companies said": several speakers. "the doctors said", after the group
            # "Doctors for Camp Closure" was named: the group.
            named_with = self._org_named_with(head.lower_, verb.idx)
            if named_with is not None:
                return named_with
            group = self._group_named_after(head, verb.idx)
            if group is not None:
                return resolver.organisation(*group)
            if lemma in ORG_NOUNS:
                return None
        if lemma in PERSON_ROLE_NOUNS and any(self._is_person(o) for o in owners):
            return None  # "Morrison's lawyer": someone of Morrison's, not named here
        role = resolver.role_cluster(head, verb.idx)
        if role is not None:
            return role
        if lemma in ORG_NOUNS:
            if owners or modifiers:
                return resolver.new_organisation(head)
            since = self.last_speaker("ORG")
            recent = next(self.mentions_before("ORG", verb.idx), None)
            if since and (recent is None or recent.start <= since[0]):
                return since[1]
            return recent.cluster if recent else (since[1] if since else None)
        aged = lemma.endswith("-old") or lemma == "old" and any(c.lemma_ == "year" for c in tree.children(head))
        if not aged and (head.tag_ != "NN" or lemma not in PERSON_ROLE_NOUNS):
            return None  # "the 56-year-old" is a person, parsed as a noun or as "old"
        if modifiers and determiners and determiners[0] in {"a", "an"}:
            # "a WeWork spokesperson" is nobody in particular speaking for WeWork ("the Kremlin
            # spokesman" is one person, who may be named elsewhere).
            found = resolver.named_cluster(modifiers[-1])
            if found is not None and self.clusters[found].label == "ORG":
                return found
        if owners and any(o.pos_ == "PRON" for o in owners):
            return None  # "his lawyer": someone else, unnamed
        if any(c.dep_ == "prep" and c.lower_ == "of" for c in tree.rights(head)):
            return None  # "the chairman of the party", named nowhere
        if self._introduced_unnamed(head):
            return None  # "A spokesperson who did not wish to be named ... the spokesperson said"
        return self.pronoun("person", verb.idx, ROLE_GENDERS.get(lemma))

    def _is_person(self, tok: Token) -> bool:
        m = self.index.mention_at(tok.idx, tok.idx + len(tok.text))
        return tok.ent_type_ == "PERSON" or m is not None and self.clusters[m.cluster].label == "PERSON"

    def _issuer(self, head: Token, at: int, resolver: _Resolver) -> int | None:
        """Who issued "the statement": whoever last "issued a statement" or spoke "in a statement".

        Failing both, the last speaker: a document quoted right after its author's words.
        Only the few latest mentions of the document are looked at, so long articles stay fast.
        """
        if self._issued is None:
            self._issued = {}
            for tok in self.doc:
                if tok.lemma_.lower() not in DOCUMENT_NOUNS or not self._narrated(tok.idx):
                    continue
                if tok.dep_ == "dobj":
                    self._issued.setdefault(tok.lemma_.lower(), []).append((tok.i, tok.head))
                elif tok.dep_ == "pobj" and tok.head.lower_ in {"in", "via", "through"}:
                    self._issued.setdefault(tok.lemma_.lower(), []).append((tok.i, tok.head.head))
        issued = self._issued.get(head.lemma_.lower(), [])
        i = bisect.bisect_left(issued, (head.i,))
        for _i, verb in reversed(issued[max(0, i - 5) : i]):
            if self.spoke_at.get(verb.idx) is not None:
                return self.spoke_at[verb.idx]
            subject = _subject(verb, self.index.tree)
            found = resolver.named_cluster(subject) if subject is not None else None
            if found is not None:
                return found
        last = self.last_speaker()
        return last[1] if last else None

    def _group_named_after(self, head: Token, before: int) -> tuple[int, int] | None:
        """Where the text names a group after its members ("the doctors": "Doctors for Camp Closure").

        The recogniser often misses such names; a capitalised run that starts with the plural
        noun and goes on past a connecting word is taken as the group's name. Each noun's
        names are found once per article.
        """
        if not head.text.isalpha() or not any(c.lower_ == "the" for c in self.index.tree.lefts(head)):
            return None
        word = head.text.capitalize()
        if word not in self._groups:
            pattern = (
                rf"\b{re.escape(word)}(?:\s+(?:for|of|and|the|against|without|&|[A-Z][\w'’-]*))*\s+[A-Z][\w'’-]*\b"
            )
            self._groups[word] = [
                (m.start(), m.end())
                for m in re.finditer(pattern, self.index.text)
                if self._narrated(m.start()) and re.search(r"\s[a-z&]", m.group(0))
            ]
        return next(((s, e) for s, e in self._groups[word] if e <= before), None)

    def _introduced_unnamed(self, head: Token) -> bool:
        """Whether the role was introduced earlier with an indefinite article ("a spokesperson")."""
        if self._unnamed_roles is None:
            # First indefinite introduction of each noun, computed once: one pass over the doc.
            self._unnamed_roles = {}
            for tok in self.doc:
                if tok.pos_ != "NOUN" or not self._narrated(tok.idx):
                    continue
                children = self.index.tree.children(tok)
                det = [c.lower_ for c in children if c.dep_ == "det"]
                if det and det[0] in {"a", "an", "another"} and not any(c.pos_ == "PROPN" for c in children):
                    self._unnamed_roles.setdefault(tok.lemma_.lower(), tok.i)
        first = self._unnamed_roles.get(head.lemma_.lower())
        return first is not None and first < head.i


def _unskipped(skips: dict[int, int], k: int) -> int:
    """Follow ``skips`` (place -> a lower place) down from ``k`` to a place not skipped, shortening the path."""
    root = k
    while root in skips:
        root = skips[root]
    while k in skips and skips[k] != root:
        skips[k], k = root, skips[k]
    return root


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined, sorted: lookups by bisection stay fast on long articles."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _is_subject(doc: Doc, mention: Mention) -> bool:
    """Whether a mention is the subject of a main clause, or owns it ("Mr. Trump's embrace ... He")."""
    span = doc.char_span(mention.start, mention.end, alignment_mode="expand")
    if span is None:
        return False
    root = span.root
    if root.dep_ == "poss":
        root = root.head
    if root.dep_ not in {"nsubj", "nsubjpass"}:
        return False
    # The subject of the sentence's main verb: "the night Epstein died" does not move the focus.
    verb = root.head
    return verb.dep_ == "ROOT" or verb.dep_ == "conj" and verb.head.dep_ == "ROOT"


def _genders(doc: Doc, index: _Index, clusters: dict[int, Cluster], narrated: Callable[[int], bool]) -> dict[int, str]:
    """A gender for each person whose text shows one: titles, role words, first names, pronouns.

    spaCy gives no gender. "Ms Smith", "the spokeswoman Ana Ruiz" or a name from
    the baby-name table (``first_names``) is strong evidence; "his"/"her" in a sentence that names one person
    before it is weak evidence. Unknown stays unknown (compatible with either pronoun).
    """
    votes: dict[int, dict[str, int]] = {}

    def vote(cluster: int, gender: str, weight: int) -> None:
        votes.setdefault(cluster, {"m": 0, "f": 0})[gender] += weight

    for cluster in clusters.values():
        if cluster.label == "PERSON":
            first = cluster.name.split()[0].casefold() if cluster.name.split() else ""
            sex = first_name_gender(first) if first else None
            if sex is not None:
                vote(cluster.id, sex, 3)
    for m in index.mentions:
        if clusters[m.cluster].label != "PERSON":
            continue
        tok = index.token_at(m.start)
        if tok is None:
            continue
        for prev in tok.doc[max(0, tok.i - 3) : tok.i]:
            word = prev.lower_.rstrip(".")
            if word in TITLE_GENDERS:
                vote(m.cluster, TITLE_GENDERS[word], 3)
            elif word in ROLE_GENDERS:
                vote(m.cluster, ROLE_GENDERS[word], 3)
    for sent in doc.sents:
        people: set[int] = set()
        for tok in sent:
            if not narrated(tok.idx):
                continue
            m = index.mention_at(tok.idx, tok.idx + len(tok.text))
            if m is not None and clusters[m.cluster].label == "PERSON":
                people.add(m.cluster)
            elif tok.lower_ in PRONOUN_GENDERS and len(people) == 1:
                vote(next(iter(people)), PRONOUN_GENDERS[tok.lower_], 1)
    out: dict[int, str] = {}
    for cluster, counts in votes.items():
        if counts["m"] > 2 * counts["f"]:
            out[cluster] = "m"
        elif counts["f"] > 2 * counts["m"]:
            out[cluster] = "f"
    return out
