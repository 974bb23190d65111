"""Who wrote an article: its authors as a list of people's names (pure: no I/O).

Sources, first that names someone wins: JSON-LD ``author`` of the article object (people
only, ``@id`` references followed into the page's graph), then the author meta tags, then
trafilatura's byline. Each candidate is cut down to a person's name: "By TOM KRISHER, AP
Auto Writer" is "Tom Krisher", "Amy Kuperinsky | NJ Advance Media" is "Amy Kuperinsky",
"Malcolm Owen Monday, November 18" is "Malcolm Owen". What is not a person's full name
("Admin", "Reuters", "Condé Nast", "Detroit News wire services") is not an author: a
publisher is the site, not a byline. Names are parsed by ``pipeline.names`` (nameparser),
the parser entities use, so an author's ``key`` matches a PERSON entity's key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import names

_META_KEYS = ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator", "dcterms.creator", "byl")
_SPLIT = re.compile(r"\s*(?:;|,|\||&|\band\b|\bund\b|\bet\b|\by\b|\bwith\b|/|\n)\s*", re.IGNORECASE)
_BY = re.compile(r"^\s*(?:by|von|par|por|door|di|av|text|текст|autor|author|written by|posted by)\s*[:\-]?\s+", re.I)
_STOP_WORDS = {
    # a byline's date or role follows the name: cut there
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "published",
    "updated",
    "posted",
    "last",
}
_NOT_PEOPLE = {
    "admin",
    "administrator",
    "staff",
    "editor",
    "editors",
    "editorial",
    "team",
    "desk",
    "news",
    "newsroom",
    "bureau",
    "reporter",
    "reporters",
    "correspondent",
    "writer",
    "writers",
    "contributor",
    "contributors",
    "columnist",
    "wire",
    "wires",
    "services",
    "service",
    "press",
    "associated",
    "reuters",
    "afp",
    "agency",
    "agencies",
    "media",
    "group",
    "inc",
    "ltd",
    "llc",
    "com",
    "online",
    "digital",
    "international",
    "times",
    "post",
    "daily",
    "herald",
    "journal",
    "tribune",
    "magazine",
    "network",
    "channel",
    "radio",
    "tv",
    "web",
    "guest",
    "sponsored",
    "partner",
    "content",
    "photo",
    "photos",
    "video",
    "nast",
    "the",
    "ministry",
    "ministries",
    "department",
    "office",
    "government",
    "university",
    "business",
    "sport",
    "sports",
    "politics",
    "opinion",
    "tech",
    "science",
    "health",
    "entertainment",
    "world",
    "weather",
    "cnn",
    "bbc",
    "ap",
    "upi",
    "dpa",
    "editor-at-large",
}
_PARTICLES = {
    "de",
    "van",
    "von",
    "der",
    "den",
    "da",
    "di",
    "du",
    "del",
    "la",
    "le",
    "bin",
    "ibn",
    "al",
    "dos",
    "das",
    "ter",
    "ten",
    "y",
}
_LETTERS = re.compile(r"^[^\W\d_][\w'’.\-]*$")


@dataclass(frozen=True)
class Author:
    name: str  # as shown: "Sarah E. Needleman"
    key: str  # names.parse_person(name).key(): "sarah e needleman"


def _person_nodes(value, by_id: dict[str, dict]) -> list[str]:  # noqa: ANN001 - JSON
    out: list[str] = []
    values = value if isinstance(value, list) else [value]
    for item in values[:20]:
        if isinstance(item, list):
            out += _person_nodes(item, by_id)
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            node = by_id.get(item.get("@id"), item) if "name" not in item else item
            kind = str(node.get("@type") or "Person")
            if "Organization" in kind or "Organisation" in kind:
                continue
            name = node.get("name")
            if isinstance(name, str):
                out.append(name)
    return out


def candidates(tree, articles: list[dict], jsonld_nodes: list[dict], byline: str | None) -> list[str]:  # noqa: ANN001
    """Raw author strings from the first source that has any."""
    by_id = {n["@id"]: n for n in jsonld_nodes if isinstance(n.get("@id"), str)}
    for node in articles:
        if node.get("author"):
            found = _person_nodes(node["author"], by_id)
            if found:
                return found
    metas = []
    if tree is not None:
        for meta in tree.iterfind(".//meta"):
            key = (meta.get("name") or meta.get("property") or "").strip().lower()
            content = (meta.get("content") or "").strip()
            if key in _META_KEYS and content and "://" not in content and "@" not in content[:1]:
                metas.append(content)
    if metas:
        return metas
    return [byline] if byline else []


def _title_case(word: str) -> str:
    if word.isupper() and len(word) > 2 and "." not in word:
        return "-".join(part.capitalize() for part in word.split("-"))
    return word


def person_name(raw: str) -> str | None:
    """One candidate cut down to a person's full name, or None."""
    text = _BY.sub("", raw.strip())
    words: list[str] = []
    for word in text.split():
        bare = word.strip(".,:;()[]\"'“”").lower()
        if bare in _STOP_WORDS or any(ch.isdigit() for ch in word):
            break
        words.append(word.strip(',:;()[]"“”'))
    words = [w for w in words if w]
    if not 2 <= len(words) <= 5:
        return None
    lowered = [w.lower().strip(".") for w in words]
    if any(w in _NOT_PEOPLE for w in lowered):
        return None
    if any(not _LETTERS.match(w) or "@" in w for w in words):
        return None
    if any(w[:1].islower() and w.lower() not in _PARTICLES for w in words):
        return None
    if any(len(w) > 40 for w in words):  # no name has a 40-letter word; an index row must stay small
        return None
    name = " ".join(_title_case(w) for w in words)
    if not names.parse_person(name).is_full:
        return None
    return names.clean(name)


def authors(raw: list[str]) -> tuple[Author, ...]:
    """People's names from raw author strings, each once, in order."""
    seen: dict[str, Author] = {}
    for item in raw[:20]:
        for part in _SPLIT.split(item.strip())[:20]:
            name = person_name(part) if part else None
            if not name:
                continue
            key = names.parse_person(name).key()
            if key and not any(
                key == k or names.compatible(names.parse_person(name), names.parse_person(a.name))
                for k, a in seen.items()
            ):
                seen[key] = Author(name, key)
    return tuple(seen.values())
