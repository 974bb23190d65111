"""Sitemaps, sitemap indexes, Google News sitemaps and robots.txt ``Sitemap:`` lines (pure).

No I/O here: ``pipeline.backfill`` fetches the documents and hands over bytes. lxml parses
with entity resolution, DTD loading and network access off and its huge-tree guard on, so a
hostile sitemap cannot expand entities or make the parser fetch anything; a gzipped sitemap
is inflated under a size cap.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from lxml import etree

MAX_ENTRIES = 50_000  # the sitemaps.org limit for one file
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_YEAR_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


class SitemapError(ValueError):
    """The bytes are not a usable sitemap (the message says why)."""


@dataclass(frozen=True)
class SitemapEntry:
    """One ``<url>`` of a urlset, or one ``<sitemap>`` of an index."""

    loc: str
    lastmod: datetime | None = None
    published_at: datetime | None = None  # news:publication_date
    title: str | None = None  # news:title

    @property
    def when(self) -> datetime | None:
        """The date a backfill window is checked against: publication if known, else lastmod."""
        return self.published_at or self.lastmod


@dataclass(frozen=True)
class Sitemap:
    is_index: bool
    entries: list[SitemapEntry]


def parse_w3c_datetime(text: str | None) -> datetime | None:
    """A sitemap date (W3C Datetime, an ISO 8601 profile) as an aware UTC datetime.

    ``YYYY``, ``YYYY-MM`` and ``YYYY-MM-DD`` mean the start of that period; a time without a
    zone is taken as UTC. Anything unparsable gives None (the entry counts as undated).
    """
    if not text:
        return None
    text = text.strip()
    match = _YEAR_MONTH.match(text)
    try:
        when = datetime(int(match[1]), int(match[2] or 1), 1) if match else datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def inflate(body: bytes, max_bytes: int) -> bytes:
    """Gunzip ``body`` when it is gzip (``sitemap.xml.gz``), refusing more than ``max_bytes``."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise SitemapError(f"bad gzip data: {exc}") from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise SitemapError(f"gzipped sitemap inflates beyond {max_bytes} bytes")
    return out


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _child_text(element: etree._Element, name: str) -> str | None:
    for child in element:
        if _local(child) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _news(element: etree._Element) -> tuple[datetime | None, str | None]:
    for child in element:
        if _local(child) == "news":
            return parse_w3c_datetime(_child_text(child, "publication_date")), _child_text(child, "title")
    return None, None


def parse_sitemap(body: bytes, url: str, max_entries: int = MAX_ENTRIES) -> Sitemap:
    """Parse a ``<urlset>`` or ``<sitemapindex>``; ``loc`` values are made absolute against ``url``.

    Entries whose ``loc`` is not http(s) are dropped. Raises ``SitemapError`` for anything that
    is not a sitemap (an HTML error page, a feed, broken XML, entity declarations).
    """
    if not isinstance(body, bytes | bytearray):
        raise TypeError("parse_sitemap takes bytes")
    if not body.strip():
        raise SitemapError("empty sitemap")
    if _ENTITY_DECL.search(body[:65536]):
        raise SitemapError("sitemap declares XML entities; refused before parsing")
    try:
        root = etree.fromstring(bytes(body), _parser())
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not XML: {exc}"[:300]) from exc
    kind = _local(root)
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"root element <{kind}> is not a sitemap")
    item_name = "url" if kind == "urlset" else "sitemap"
    entries: list[SitemapEntry] = []
    for element in root:
        if _local(element) != item_name:
            continue
        loc = _child_text(element, "loc")
        if not loc:
            continue
        loc = urljoin(url, loc)
        if urlsplit(loc).scheme.lower() not in ("http", "https"):
            continue
        published_at, title = _news(element) if kind == "urlset" else (None, None)
        entries.append(
            SitemapEntry(
                loc=loc,
                lastmod=parse_w3c_datetime(_child_text(element, "lastmod")),
                published_at=published_at,
                title=title,
            )
        )
        if len(entries) >= max_entries:
            break
    return Sitemap(is_index=kind == "sitemapindex", entries=entries)


def robots_sitemaps(robots_txt: bytes, robots_url: str) -> list[str]:
    """The ``Sitemap:`` URLs a robots.txt lists (absolute, in order, without repeats)."""
    parser = RobotFileParser()
    parser.parse(robots_txt.decode("utf-8", "replace").splitlines())
    out: list[str] = []
    for url in parser.site_maps() or []:
        absolute = urljoin(robots_url, url.strip())
        if urlsplit(absolute).scheme.lower() in ("http", "https") and absolute not in out:
            out.append(absolute)
    return out
