"""Page bytes to clean article text and metadata (pure: no I/O).

The page is parsed once (trafilatura's ``load_html`` decodes the bytes: htmldate called on
raw bytes fails to decode most pages) and the tree serves every pass:

- ``pipeline.dates``: the publication time from the page's structured data, else from
  htmldate's extensive search, run inside trafilatura's metadata pass, else the URL; with
  the source that gave it;
- ``pipeline.bylines``: the authors as a list, from JSON-LD, meta tags and bylines;
- trafilatura: the text; of a live blog, only the post the URL points at or the blog's
  lead (``pipeline.liveblog``); ``pipeline.boilerplate`` removes repeated blocks, lines
  the page's own JSON-LD ``articleBody`` lacks when the two agree, promo lines, widget
  labels, embedded posts and author bios, and gives each line's fingerprint for the
  per-host boilerplate table the parent keeps;
- py3langid names the language.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import py3langid
import trafilatura

from . import boilerplate, bylines, dates, liveblog
from .reasons import ItemError

# -3: date cascade with its source, authors as a list, repeated blocks kept once, leftovers
# out, live blogs
EXTRACTOR_VERSION = f"trafilatura-{trafilatura.__version__}-3"
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
    # Extensive search costs only on pages whose URL, meta tags and JSON-LD give no date.
    "date_extraction_params": {"original_date": True, "extensive_search": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"},
}


@dataclass(frozen=True)
class Extracted:
    title: str | None
    text: str
    published_at: datetime | None  # the page's own publication time (= page_published_at)
    author: str | None  # the authors joined by "; " (the articles.author column)
    language: str | None
    site_name: str | None
    description: str | None
    published_at_source: str | None = None  # jsonld, meta, itemprop, time, htmldate, url
    authors: tuple[str, ...] = ()
    line_fingerprints: tuple[str, ...] = ()  # one per line of ``text`` (pipeline.boilerplate)

    @property
    def page_published_at(self) -> datetime | None:
        return self.published_at


def looks_like_html(body: bytes, content_type: str) -> bool:
    """HTML by its content type, or by sniffing when the server lies."""
    body = _narrow(body[:16384])
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


def detect_language(text: str) -> str | None:
    if len(text) < 20:
        return None
    lang, _score = py3langid.classify(text[:5000])
    return lang


def _page_date(live, tree, articles, htmldate_found, url):  # noqa: ANN001, ANN202 - internal
    """The date cascade; a date the calendar cannot hold (year 9999 plus an offset) is no date."""
    try:
        return (live.published if live is not None else None) or dates.page_date(
            dates.local_day(dates.structured_date(tree, articles), htmldate_found, url, tree),
            dates.from_htmldate(htmldate_found, url),
            dates.url_date(url),
        )
    except (OverflowError, ValueError):
        return None


# Character references to what no text holds (C0 controls but tab and newlines, DEL,
# noncharacters): lxml drops the whole text node around one, so they go before parsing.
_BAD_CHARREF = re.compile(
    rb"&#(?:0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|127|6497[6-9]|649[89][0-9]|6500[0-7]|6553[45])"
    rb"|[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[fF][dD][dDeE][0-9a-fA-F]|[fF]{3}[eEfF]));"
)
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _narrow(html: bytes) -> bytes:
    """A UTF-16/32 page (its byte order mark says so) as UTF-8, which the parsers read."""
    for bom, codec in _WIDE_BOMS:
        if html.startswith(bom):
            return b"\xef\xbb\xbf" + html[len(bom) :].decode(codec, "replace").encode("utf-8")
    return html


def extract_article(html: bytes, url: str) -> Extracted:
    """Clean text and metadata of an article page; ``ItemError`` when there is no article."""
    html = _BAD_CHARREF.sub(b" ", _narrow(html))
    try:
        tree = trafilatura.load_html(html)
        doc = trafilatura.bare_extraction(tree, url=url, **TRAFILATURA_OPTIONS) if tree is not None else None
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
    nodes = dates.jsonld_objects(tree)
    articles = dates.jsonld_articles(tree, nodes)
    live = liveblog.article_text(text, url, articles, clean_text)
    if live is not None:
        text = live.text  # one post of a live blog, or its lead: not the other posts
    text = boilerplate.drop_repeated_blocks(text)
    bodies = [a["articleBody"] for a in articles if isinstance(a.get("articleBody"), str)]
    if bodies and live is None:
        text = boilerplate.agree_with_body(text, clean_text(max(bodies, key=len)))
    people = bylines.authors(bylines.candidates(tree, articles, nodes, clean_text(doc.author or "")))
    text = boilerplate.drop_leftovers(text, tuple(a.name for a in people))
    text = boilerplate.drop_link_paragraphs(text, boilerplate.link_paragraphs(tree))
    found = _page_date(live, tree, articles, doc.date, url)
    return Extracted(
        title=title,
        text=text,
        published_at=found.when if found else None,
        published_at_source=found.source if found else None,
        author="; ".join(a.name for a in people) or None,
        authors=tuple(a.name for a in people),
        language=detect_language(text),
        site_name=clean_text(doc.sitename or "") or None,
        description=clean_text(doc.description or "") or None,
        line_fingerprints=boilerplate.fingerprints(text),
    )
