"""What a name says about who it names: parsed person names, organisation and place keys.

Pure functions, one owner for each matching rule (STYLE: "name matching lives with
entities; every caller asks it"). The libraries do the linguistics:

- ``nameparser`` splits a person's name into title, first, middle, last and suffix;
- ``nicknames`` says Joe may be Joseph and Bill William;
- ``cleanco`` strips legal forms from organisation names (Apple Inc. = Apple);
- ``pycountry`` with the short alias table of ``entity_tables.json`` names countries
  (U.S., US, USA, America and United States are one place).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_TABLES = json.loads((Path(__file__).with_name("entity_tables.json")).read_text(encoding="utf-8"))
KEPT_TITLES: frozenset[str] = frozenset(_TABLES["kept_titles"])
NOT_PEOPLE: frozenset[str] = frozenset(_TABLES["not_people"])
HEADLINE_WORDS: frozenset[str] = frozenset(_TABLES["headline_words"])
PARTICLES: frozenset[str] = frozenset(_TABLES["name_particles"])
ORG_GENERIC_TAILS: frozenset[str] = frozenset(_TABLES["org_generic_tails"])
ORG_GENERIC_HEADS: frozenset[str] = frozenset(_TABLES["org_generic_heads"])
_PLACE_ALIASES: dict[str, str] = {
    alias: code for code, aliases in _TABLES["place_aliases"].items() for alias in aliases
}
GENERATIONAL = {
    "jr": "jr",
    "jr.": "jr",
    "sr": "sr",
    "sr.": "sr",
    "ii": "ii",
    "iii": "iii",
    "iv": "iv",
    "2nd": "ii",
    "3rd": "iii",
}

_DEBRIS = re.compile(r"^[\s\"'`“”‘’\[\](){}<>*_,;:|/\\-]+|[\s\"`“”‘\[\](){}<>*_,;:|/\\-]+$")
_POSSESSIVE = re.compile(r"(?:'s|’s|'|’)$")
_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Case-folded, accents removed, one space between words, curly apostrophes straight."""
    text = unicodedata.normalize("NFKD", text.replace("’", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _SPACE.sub(" ", text).strip().casefold()


def clean(name: str) -> str:
    """A name without punctuation debris around it or a possessive ("Vladimir] Putin's" -> "Vladimir Putin")."""
    name = name.replace("]", " ").replace("[", " ") if "]" in name or "[" in name else name
    name = _SPACE.sub(" ", name).strip()
    name = _DEBRIS.sub("", name)
    name = _POSSESSIVE.sub("", name).strip()
    return name.rstrip(",;:").strip()


@dataclass(frozen=True)
class PersonName:
    """A person's name in parts, every part folded. ``title`` is kept only when it names the
    person (a royal or noble title: "Prince Andrew"); ``first`` is empty for a surname alone."""

    title: str
    first: str
    middle: str
    last: str
    suffix: str

    @property
    def middle_initial(self) -> str:
        return self.middle[:1]

    @property
    def is_full(self) -> bool:
        return bool(self.first and self.last)

    @property
    def surname(self) -> str:
        """What a lone mention of this person would say: "trump", "van der beek", "prince andrew"."""
        if self.title and not self.last:
            return f"{self.title} {self.first}".strip()
        return self.last

    def key(self) -> str:
        parts = [self.title, self.first, self.middle_initial, self.last, self.suffix]
        return " ".join(p for p in parts if p)


@cache
def parse_person(name: str) -> PersonName:
    """Parse a person's name; titles other than royal or noble ones are dropped.

    A single word is a surname ("Trump"), as news writes people after their first mention.
    """
    from nameparser import HumanName

    text = clean(name)
    words = text.split()
    if not words:
        return PersonName("", "", "", "", "")
    lowered = [fold(w).rstrip(".") for w in words]
    kept = ""
    if len(words) >= 2 and lowered[0] in KEPT_TITLES:
        two = f"{lowered[0]} {lowered[1]}"
        if two in KEPT_TITLES and len(words) >= 3:
            kept, words = two, words[2:]
        else:
            kept, words = lowered[0], words[1:]
        if len(words) == 1 or (len(words) == 2 and fold(words[1]).rstrip(".") in GENERATIONAL):
            # "Prince Andrew", "King Charles III": the title and given name are the name.
            suffix = GENERATIONAL.get(fold(words[-1]).rstrip("."), "") if len(words) == 2 else ""
            return PersonName(kept, fold(words[0]), "", "", suffix)
    if len(words) == 1:
        return PersonName(kept, "", "", fold(words[0]).rstrip("."), "")
    if fold(words[0]) in PARTICLES:  # "Van Der Beek": a surname with its particles
        return PersonName(kept, "", "", fold(" ".join(words)).rstrip("."), "")
    parsed = HumanName(" ".join(words), constants=_nameparser_constants())
    first, middle, last = fold(parsed.first), fold(parsed.middle), fold(parsed.last)
    suffix = " ".join(GENERATIONAL.get(fold(s).rstrip(".").rstrip(","), "") for s in parsed.suffix.split(",") if s)
    suffix = suffix.strip()
    if not last and first:  # "Mr. Trump": nameparser calls a lone word a first name
        first, last = "", first
    if not first and parsed.title and not last:
        last = fold(parsed.title)
    return PersonName(kept, first.rstrip("."), middle.replace(".", ""), last.rstrip("."), suffix)


@cache
def _nameparser_constants():
    """nameparser's vocabulary plus the news titles it lacks ("Chairperson Donna Brazile")."""
    from nameparser.config import Constants

    constants = Constants()
    constants.titles.add(*_TABLES["extra_titles"])
    return constants


@cache
def _first_name_group(first: str) -> frozenset[str]:
    """The first name and every name it may be a nickname of, or have as a nickname."""
    from nicknames import NickNamer

    namer = _namer(NickNamer)
    return frozenset({first} | namer.canonicals_of(first) | namer.nicknames_of(first))


_NAMER = None


def _namer(cls):
    global _NAMER
    if _NAMER is None:
        _NAMER = cls()
    return _NAMER


def same_first_name(a: str, b: str) -> bool:
    """Joe = Joseph, Bill = William, Rudy = Rudolph; "J" (an initial) = any name starting with it."""
    if not a or not b or a == b:
        return True
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return b in _first_name_group(a) or a in _first_name_group(b)


def compatible(a: PersonName, b: PersonName) -> bool:
    """Whether two full names may name one person.

    Same last name, same or nickname-equal first name, no conflicting middle initial, and no
    conflicting generational suffix: "Donald Trump Jr." is not "Donald Trump", but "Joseph R.
    Biden Jr." is "Joseph R. Biden" (the shared middle initial vouches for the suffix-less form).
    """
    if a.title != b.title or a.last != b.last or not a.is_full or not b.is_full:
        return a == b
    if not same_first_name(a.first, b.first):
        return False
    if a.middle_initial and b.middle_initial and a.middle_initial != b.middle_initial:
        return False
    if a.suffix != b.suffix:
        if a.suffix and b.suffix:
            return False
        return bool(a.middle_initial and b.middle_initial)
    return True


def looks_like_fragment(text: str) -> bool:
    """Recogniser debris, not a name: digits, percentages, or made of headline words."""
    if any(ch.isdigit() for ch in text) or "%" in text:
        return True
    words = [fold(w) for w in text.split()]
    return bool(words) and all(w in HEADLINE_WORDS for w in words)


def strip_headline_words(text: str) -> str:
    """ "Obama Focused" -> "Obama", "Washington Post Trump" -> "Trump": words of a headline
    glued to a name by the recogniser; the name is the part on the side it ends."""
    words = text.split()
    if len(words) < 2 or not any(fold(w) in HEADLINE_WORDS for w in words):
        return text
    segments: list[list[str]] = [[]]
    for w in words:
        if fold(w) in HEADLINE_WORDS:
            segments.append([])
        else:
            segments[-1].append(w)
    segments = [s for s in segments if s]
    if not segments:
        return text
    chosen = segments[-1] if fold(words[-1]) not in HEADLINE_WORDS else segments[0]
    return " ".join(chosen)


def is_not_a_person(name: str) -> bool:
    """Platforms, products and brands the recogniser tags PERSON (Twitter, MacBook Pro)."""
    return fold(clean(name)) in NOT_PEOPLE


@cache
def place_code(name: str) -> str | None:
    """ISO 3166 alpha-2 code of a country name or alias ("U.S." -> "US", "Britain" -> "GB")."""
    import pycountry

    text = clean(name)
    key = fold(text)
    if key in _PLACE_ALIASES:
        return _PLACE_ALIASES[key]
    key = key.removeprefix("the ")
    if key in _PLACE_ALIASES:
        return _PLACE_ALIASES[key]
    if len(key) <= 3 and not (text.isupper() and len(text) == 3):
        return None  # "IN", "IT", "DE" are words before they are country codes
    try:
        country = pycountry.countries.lookup(key)
    except LookupError:
        return None
    return country.alpha_2


@cache
def is_place_word(word: str) -> bool:
    """A country or a country's state or province ("Vermont"), so not the start of a person's name."""
    import pycountry

    if not (word[:1].isupper() and word.isalpha()):
        return False
    if place_code(word):
        return True
    try:
        pycountry.subdivisions.lookup(word)
    except LookupError:
        return False
    return True


@cache
def place_name(code: str) -> str:
    import pycountry

    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    return getattr(country, "common_name", None) or country.name


_MINOR = {"and", "of", "the", "for", "de", "la", "&", "on", "in", "at"}


@cache
def org_key(name: str) -> str:
    """An organisation's name without legal form, leading article or punctuation: Apple Inc. -> "apple"."""
    from cleanco import basename

    text = clean(name)
    text = re.sub(r"^(?:the|The|THE)\s+", "", text)
    base = basename(text) or text
    key = _SPACE.sub(" ", fold(base).replace("&", " and ").replace(".", "").replace(",", "")).strip()
    words = key.split(" ")
    # "Ford Motor Company" is Ford, "Apple Computer" Apple; "General Motors" stays itself.
    while (
        len(words) > 1
        and words[-1] in ORG_GENERIC_TAILS
        and " ".join(words[:-1]) not in ORG_GENERIC_HEADS
        and not place_code(" ".join(words[:-1]))  # "Singapore Airlines" is not Singapore
    ):
        words.pop()
    return " ".join(words)


def acronym_of(name: str) -> str:
    """Initials of a name of two or more significant words ("General Motors" -> "GM"), else ""."""
    words = [w for w in re.split(r"[\s-]+", clean(name)) if w and fold(w) not in _MINOR]
    if len(words) < 2 or not all(w[:1].isupper() for w in words):
        return ""
    return "".join(w[0] for w in words).upper()


def as_acronym(name: str) -> str:
    """The letters of a name written as an acronym ("U.N." -> "UN"), else ""."""
    letters = clean(name).replace(".", "")
    return letters if 2 <= len(letters) <= 6 and letters.isalpha() and letters.isupper() else ""
