"""Named-entity mentions grouped into one canonical entity per real-world thing.

Pure: a spaCy ``Doc`` in, mentions and in-article clusters out. Linking clusters to the
``entities`` table across articles happens in ``store``; the rules for which names may be
merged live here (``entity_key``, ``surname_of``).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace

from spacy.tokens import Doc, Span

from . import names
from .first_names import is_first_name

MAX_NAME_CHARS = 200
KEPT_LABELS = {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC"}

# Words that precede a person's name without being part of it.
TITLES = {
    "president",
    "former",
    "prime",
    "minister",
    "foreign",
    "defence",
    "defense",
    "deputy",
    "vice",
    "secretary",
    "general",
    "chancellor",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "senator",
    "sen",
    "sen.",
    "rep",
    "rep.",
    "representative",
    "governor",
    "gov",
    "gov.",
    "mayor",
    "judge",
    "justice",
    "chief",
    "executive",
    "ceo",
    "chairman",
    "chairwoman",
    "chair",
    "director",
    "king",
    "queen",
    "prince",
    "princess",
    "pope",
    "mr",
    "mr.",
    "mrs",
    "mrs.",
    "ms",
    "ms.",
    "dr",
    "dr.",
    "sir",
    "dame",
    "lord",
    "lady",
    "professor",
    "prof",
    "prof.",
    "coach",
    "captain",
    "capt",
    "capt.",
    "col",
    "col.",
    "gen",
    "gen.",
    "lt",
    "lt.",
    "sgt",
    "sgt.",
    "officer",
    "ambassador",
    "envoy",
    "leader",
    "head",
    "speaker",
    "premier",
    "economy",
    "finance",
    "interior",
    "kremlin",
    "white",
    "house",
    "state",
    "the",
    "u.s.",
    "us",
    "russian",
    "american",
    "british",
    "chinese",
    "ukrainian",
    "french",
    "german",
    "incumbent",
    "acting",
    "late",
    "new",
    "top",
    "senior",
    "central",
    "bank",
    "governor's",
}
_POSSESSIVE = re.compile(r"(?:'s|’s|'|’)$")
_LEADING_THE = re.compile(r"^(?:the|The|THE)\s+")
_SPACE = re.compile(r"\s+")


@dataclass
class Cluster:
    """One real-world entity as seen in one article."""

    id: int
    label: str
    name: str
    aliases: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return entity_key(self.name)


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    text: str
    label: str
    cluster: int


def entity_key(name: str) -> str:
    """The normalised form two names must share to be the same entity."""
    name = _POSSESSIVE.sub("", name.strip())
    name = _LEADING_THE.sub("", name)
    return _SPACE.sub(" ", name).casefold().replace("’", "'")


def surname_of(name: str) -> str:
    return entity_key(name).split(" ")[-1] if name.strip() else ""


_NAME_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


def _family_name(name: str) -> str:
    """The surname within one article: "James P. Kennedy Jr." is "Kennedy" ("kennedy")."""
    words = entity_key(name).rstrip(",").split(" ")
    while len(words) > 1 and words[-1].strip(",") in _NAME_SUFFIXES:
        words.pop()
    return words[-1].strip(",") if words else ""


def _display_name(text: str) -> str:
    if text.isupper() and len(text) > 4:
        return text.title()
    return text


# Lowercase words that start a clause and never belong inside a name; the small model
# sometimes runs an entity across them.
_CLAUSE_WORDS = {"after", "before", "when", "while", "because", "since", "until"}


def _trim(span: Span, label: str) -> tuple[int, int] | None:
    """Token bounds of the name inside an entity span: no titles, articles or possessives.

    A royal or noble title that is how a person is named stays ("Prince Andrew"). Recogniser
    debris goes: headline words glued to a name ("Obama Focused"), a team and position before
    it ("Browns DL Sheldon Richardson"), a score or percentage after it ("Uchiyama 6-2").
    """
    start, end = span.start, span.end
    doc = span.doc
    for tok in doc[start + 1 : end]:
        if tok.text in _CLAUSE_WORDS:
            end = tok.i  # "American Music Awards after Swift": the name ends before the clause
            break
    for tok in doc[start + 1 : end]:
        if tok.text in {"(", "["}:
            end = tok.i  # "World Health Organization (WHO": the name ends before the bracket
            break
    for tok in doc[start:end] if label in {"PERSON", "ORG"} else ():
        if _is_number(tok.text):
            end = tok.i  # "Uchiyama 6-2", "Trump 43 percent to": the name ends before the number
            break
    while end > start and (doc[end - 1].is_punct or doc[end - 1].lower_ in {"'s", "’s", "'"}):
        end -= 1
    while end > start and doc[start].is_punct:
        start += 1
    if label == "PERSON":
        while end - start > 1 and doc[start].lower_.strip(".") in _TITLE_WORDS:
            if doc[start].lower_.strip(".") in names.KEPT_TITLES and _names_one_person(doc[start + 1 : end]):
                break
            start += 1
        start, end = _without_headline_words(doc, start, end)
        if end - start >= 3 and names.is_place_word(doc[start].text):
            start += 1  # "(Senator from) Vermont Bernie Sanders": the state is not his name
        caps = [t.i for t in doc[start : end - 1] if _is_position_code(t.text)]
        if caps and end - (caps[-1] + 1) >= 2:
            start = caps[-1] + 1  # "Browns DL Sheldon Richardson": the name follows the position
    elif doc[start].lower_ == "the" and end - start > 1:
        start += 1
    elif (
        label == "ORG"
        and end - start in (3, 4)
        and names.is_place_word(doc[start].text)
        and is_first_name(doc[start + 1].text)
        and all(t.is_title for t in doc[start + 1 : end])
    ):
        start += 1  # "(Senator from) Vermont Bernie Sanders" tagged ORG: a place, then a person
    return (start, end) if end > start else None


_TITLE_WORDS = TITLES | {t.strip(".") for t in TITLES}


_NUMBER = re.compile(r"[\d.,:/%–-]*\d[\d.,:/%–-]*")


def _is_number(text: str) -> bool:
    """A score, count or percentage; "3M" and "G20" are names, "6-2" and "43" are not."""
    return bool(_NUMBER.fullmatch(text)) or text.lower() in {"%", "percent", "per", "cent"}


def _names_one_person(rest: Span) -> bool:
    """The words after a royal title are one given name, maybe with a regnal number."""
    words = [t.text for t in rest if not t.is_punct]
    return len(words) == 1 or (len(words) == 2 and words[1].rstrip(".").lower() in _NAME_SUFFIXES | {"v", "vi"})


def _is_position_code(text: str) -> bool:
    return 2 <= len(text) <= 4 and text.isalpha() and text.isupper() and text not in {"II", "III", "IV", "JR", "SR"}


def _without_headline_words(doc: Doc, start: int, end: int) -> tuple[int, int]:
    """Bounds of the name among headline words: the run at the end the span ends on."""
    if end - start < 2 or not any(doc[i].lower_ in names.HEADLINE_WORDS for i in range(start, end)):
        return start, end
    runs: list[tuple[int, int]] = []
    run_start = None
    for i in range(start, end):
        if doc[i].lower_ in names.HEADLINE_WORDS:
            if run_start is not None:
                runs.append((run_start, i))
            run_start = None
        elif run_start is None:
            run_start = i
    if run_start is not None:
        runs.append((run_start, end))
    if not runs:
        return start, start
    return runs[-1] if doc[end - 1].lower_ not in names.HEADLINE_WORDS else runs[0]


def find_mentions(doc: Doc) -> tuple[list[Mention], dict[int, Cluster]]:
    """Entity mentions of ``doc`` and the clusters they belong to.

    Persons: a full name (two tokens or more) heads a cluster; a surname alone joins the
    cluster of the full name that ends with it. spaCy's small model sometimes labels a
    surname ORG or GPE; a mention whose text is the surname of a person named in the same
    article is taken as that person.
    """
    raw: list[tuple[int, int, str, str]] = []
    for ent in doc.ents:
        if ent.label_ not in KEPT_LABELS:
            continue
        label = ent.label_
        if label == "PERSON" and len(ent) >= 2 and ent[-1].lower_ in _ORG_ENDINGS:
            label = "ORG"  # "Dick Clark Productions", "U.S. Attorney's Office": not people
        if label == "PERSON" and ent.start > 0 and _names_one_person(ent):
            before = doc[ent.start - 1]
            if before.is_title and before.lower_.strip(".") in names.KEPT_TITLES:
                ent = doc[ent.start - 1 : ent.end]  # "Prince Andrew": the title is how he is named
        bounds = _trim(ent, label)
        if bounds is None:
            continue
        s, e = bounds
        span = doc[s:e]
        text = span.text
        if not any(ch.isalpha() for ch in text) or len(text) > MAX_NAME_CHARS:
            continue  # no letters, or a run-on "name" that would only bloat the index
        if label == "ORG" and _looks_like_person(span):
            label = "PERSON"
        if label == "PERSON" and names.is_not_a_person(text):
            continue  # Twitter, MacBook Pro tagged PERSON: platforms and products are not people
        raw.append((span.start_char, span.end_char, text, label))
        if e < ent.end and doc[e].text in _CLAUSE_WORDS:
            tail = doc[e + 1 : ent.end]  # the name after the clause word is a mention of its own
            if len(tail) and all(t.pos_ == "PROPN" for t in tail):
                raw.append((tail.start_char, tail.end_char, tail.text, "PERSON"))

    # "Montell Figgins" (ORG) is a person when "Figgins" alone was tagged PERSON.
    person_words = {entity_key(text) for _s, _e, text, label in raw if label == "PERSON" and " " not in text}
    raw = [
        (s, e, text, "PERSON")
        if label == "ORG"
        and 2 <= len(text.split()) <= 3
        and _family_name(text) in person_words
        and all(w[:1].isupper() for w in text.split())
        else (s, e, text, label)
        for s, e, text, label in raw
    ]

    full_names: dict[str, str] = {}  # surname key -> full name key
    given_names: dict[str, str] = {}  # first word -> full name key ("Liu" of "Liu Xiaoming")
    for _s, _e, text, label in raw:
        if label == "PERSON" and len(text.split()) >= 2:
            full_names.setdefault(_family_name(text), entity_key(text))
            given_names.setdefault(entity_key(text).split(" ")[0], entity_key(text))
    for first, full in given_names.items():
        full_names.setdefault(first, full)  # a surname match, when there is one, wins
    # "Van Der Beek" of "James Van Der Beek", "Hawk Sawyer" of "Kathleen Hawk Sawyer".
    tail_names: dict[str, str] = {}
    for full in list(full_names.values()):
        words = full.split(" ")
        for i in range(1, len(words) - 1):
            tail_names.setdefault(" ".join(words[i:]), full)

    clusters: dict[tuple[str, str], Cluster] = {}
    mentions: list[Mention] = []

    def cluster_for(label: str, key: str, name: str) -> Cluster:
        c = clusters.get((label, key))
        if c is None:
            c = clusters[(label, key)] = Cluster(id=len(clusters), label=label, name=name)
        return c

    # "Ford" beside "Ford Motor Company" is the company, whoever else is named Ford.
    org_heads = {entity_key(text).split(" ")[0] for _s, _e, text, label in raw if label == "ORG" and " " in text}
    # Full names first so a surname seen before its full name still finds it.
    ordered = sorted(raw, key=lambda r: not (r[3] == "PERSON" and len(r[2].split()) >= 2))
    resolved: dict[tuple[int, int], Mention] = {}
    for start, end, text, label in ordered:
        key = entity_key(names.clean(text) or text)
        if key in full_names.values() and label != "PERSON":
            label = "PERSON"
        if len(key.split()) == 1 and key in full_names and not (label == "ORG" and key in org_heads):
            label = "PERSON"
            key = full_names[key]
        elif label == "PERSON" and key in tail_names:
            key = tail_names[key]
        name = _display_name(names.clean(text) or text)
        cluster = cluster_for(label, key, name)
        if len(name) > len(cluster.name):
            cluster.name = name
        cluster.aliases.add(name)
        resolved[(start, end)] = Mention(start, end, text, label, cluster.id)
    by_id = {c.id: c for c in clusters.values()}
    merged = _merge_acronyms(by_id, doc.text)
    mentions = sorted(
        (
            replace(m, cluster=merged.get(m.cluster, m.cluster), label=by_id[merged.get(m.cluster, m.cluster)].label)
            for m in resolved.values()
        ),
        key=lambda m: m.start,
    )
    for gone in merged:
        by_id.pop(gone, None)
    return mentions, by_id


def _looks_like_person(span: Span) -> bool:
    """An ORG-tagged name that the text treats as a person.

    The small model tags some unfamiliar personal names ORG ("executive chair Marcelo
    Claure", "Montell Figgins, who represents ..."). Two or three capitalised words after a
    person's title, or followed by ", who", are taken as a person.
    """
    doc = span.doc
    if not 2 <= len(span) <= 3 or not all(t.pos_ == "PROPN" and t.is_title for t in span):
        return False
    before = doc[span.start - 1].lower_.rstrip(".") if span.start > 0 else ""
    after = [t.lower_ for t in doc[span.end : span.end + 2]]
    return before in _PERSON_CUES or after == [",", "who"]


# Last words of company and institution names; no personal name ends with one.
_ORG_ENDINGS = {
    "office",
    "productions",
    "records",
    "inc",
    "inc.",
    "corp",
    "corp.",
    "corporation",
    "company",
    "group",
    "holdings",
    "partners",
    "capital",
    "media",
    "news",
    "bank",
    "university",
    "institute",
    "foundation",
    "association",
    "agency",
    "ministry",
    "department",
    "committee",
    "council",
    "party",
    "airlines",
    "studios",
    "entertainment",
    "ltd",
    "ltd.",
    "llc",
}


# Words that come right before a person's name and never before an organisation's.
_PERSON_CUES = {
    "chair",
    "chairman",
    "chairwoman",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "mr",
    "mrs",
    "ms",
    "dr",
    "sen",
    "rep",
    "gov",
    "attorney",
    "lawyer",
    "executive",
    "ceo",
    "coach",
    "senator",
    "minister",
    "secretary",
    "president",
}


_MINOR_WORDS = {"and", "of", "the", "for", "de", "la", "&"}


def _initials(name: str) -> str:
    return "".join(w[0] for w in name.replace("-", " ").split() if w.lower() not in _MINOR_WORDS and w[:1].isupper())


def _merge_acronyms(clusters: dict[int, Cluster], text: str = "") -> dict[int, int]:
    """Map acronym clusters ("CBP", "U.S.") onto the spelled-out name in the same article.

    An organisation's acronym whose spelled-out name is in ``text`` but not an entity takes
    that name.
    """
    merged: dict[int, int] = {}
    spelled_out: dict[str, str] | None = None
    # Linear: the clusters that can spell an acronym are indexed by their initials once, in
    # the clusters' order, so each acronym takes the first that spells it without a scan.
    order = {c.id: i for i, c in enumerate(clusters.values())}
    by_id = {c.id: c for c in clusters.values()}
    by_initials: dict[str, list[tuple[int, int]]] = {}

    def index(cluster: Cluster) -> None:
        if cluster.label != "PERSON" and len(cluster.name.split()) >= 2:
            bisect.insort(by_initials.setdefault(_initials(cluster.name), []), (order[cluster.id], cluster.id))

    for cluster in clusters.values():
        index(cluster)
    for short in clusters.values():
        letters = short.name.replace(".", "")
        if not (2 <= len(letters) <= 6 and letters.isupper() and letters.isalpha()):
            continue
        long_id = next((cid for _, cid in by_initials.get(letters, ()) if cid != short.id), None)
        if long_id is not None:
            long = by_id[long_id]
            merged[short.id] = long.id
            long.aliases |= short.aliases | {short.name}
        elif text and short.label == "ORG" and len(letters) >= 3:
            if spelled_out is None:
                spelled_out = _spelled_out(text)
            if letters in spelled_out:
                # "Customs and Border Protection" that the recogniser split in two.
                short.aliases.add(short.name)
                short.name = spelled_out[letters]
                index(short)  # as spelled out, it may spell a later acronym
    return merged


_CAPITALISED_RUN = re.compile(r"[A-Z][\w'’-]*(?:\s+(?:and|of|for|the|&|[A-Z][\w'’-]*))*")


def _spelled_out(text: str) -> dict[str, str]:
    """Initials -> the first run of 3 to 6 capitalised words (minor words between) spelling them.

    Linear in the text: each start word looks at most a few words ahead.
    """
    out: dict[str, str] = {}
    for m in _CAPITALISED_RUN.finditer(text):
        words = m.group(0).split()
        for i, first in enumerate(words):
            if not first[0].isupper() or first.lower() in _MINOR_WORDS:
                continue
            for j in range(i + 3, min(len(words), i + 12) + 1):
                if not words[j - 1][0].isupper():
                    continue
                initials = _initials(" ".join(words[i:j]))
                if len(initials) > 6:
                    break
                out.setdefault(initials, " ".join(words[i:j]))
    return out
