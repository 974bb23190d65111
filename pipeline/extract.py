"""Page bytes to clean article text and metadata (pure: no I/O).

trafilatura does the extraction on the fetched bytes, and its metadata pass has htmldate
find the publication time, with its hour when the page gives one (htmldate called on the
bytes directly fails to decode most pages: trafilatura decodes them first, and parsing once
saves a second pass over the page); py3langid names the language.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

import py3langid
import trafilatura

from .reasons import ItemError

EXTRACTOR_VERSION = f"trafilatura-{trafilatura.__version__}-2"  # -2: publication times found again
MIN_WORDS = 25
HTML_TYPES = {"text/html", "application/xhtml+xml", "application/xml", "text/xml", ""}
_SNIFF = re.compile(rb"<(!doctype\s+html|html|head|body|article|p|div)[\s>]", re.IGNORECASE)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BLANKS = re.compile(r"[ \t\u00a0]+")
# What newsflow asks of trafilatura (the throughput benchmark's floor makes the same call).
TRAFILATURA_OPTIONS: dict[str, object] = {
    "with_metadata": True,
    "include_comments": False,
    "include_tables": False,
    "include_images": False,
    "deduplicate": False,
    "date_extraction_params": {"original_date": True, "extensive_search": False, "outputformat": "%Y-%m-%dT%H:%M:%S%z"},
}


@dataclass(frozen=True)
class Extracted:
    title: str | None
    text: str
    published_at: datetime | None
    author: str | None
    language: str | None
    site_name: str | None
    description: str | None


def looks_like_html(body: bytes, content_type: str) -> bool:
    """HTML by its content type, or by sniffing when the server lies."""
    if content_type in HTML_TYPES and _SNIFF.search(body[:4096]):
        return True
    return bool(_SNIFF.search(body[:4096])) and not body[:5].startswith(b"%PDF")


def clean_text(text: str) -> str:
    """Text PostgreSQL accepts and analysts can read: no NUL, no lone surrogates."""
    text = _SURROGATE.sub("\ufffd", text)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    lines = [_BLANKS.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def content_hash(text: str) -> str:
    normal = re.sub(r"\W+", " ", text.casefold()).strip()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def _published(found: str | None) -> datetime | None:
    """The page's publication time from trafilatura's date string; naive times are UTC."""
    if not found:
        return None
    try:
        when = datetime.fromisoformat(found)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def detect_language(text: str) -> str | None:
    if len(text) < 20:
        return None
    lang, _score = py3langid.classify(text[:5000])
    return lang


def extract_article(html: bytes, url: str) -> Extracted:
    """Clean text and metadata of an article page; ``ItemError`` when there is no article."""
    try:
        doc = trafilatura.bare_extraction(html, url=url, **TRAFILATURA_OPTIONS)
    except Exception as exc:  # trafilatura has no narrow error type for bad markup
        raise ItemError("extraction_failed", f"trafilatura failed: {type(exc).__name__}: {exc}"[:500]) from exc
    text = clean_text(doc.text or "") if doc is not None else ""
    if len(text.split()) < MIN_WORDS:
        raise ItemError(
            "extraction_empty",
            f"no article text found ({len(text.split())} words; paywall, consent page or index?)",
        )
    title = clean_text(doc.title or "") or None
    if title and text.startswith(title + "\n"):
        text = text[len(title) + 1 :]  # trafilatura sometimes repeats the headline as paragraph 1
    return Extracted(
        title=title,
        text=text,
        published_at=_published(doc.date),
        author=clean_text(doc.author or "") or None,
        language=detect_language(text),
        site_name=clean_text(doc.sitename or "") or None,
        description=clean_text(doc.description or "") or None,
    )
