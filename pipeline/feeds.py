"""RSS/Atom bytes to feed items (pure: no I/O).

feedparser only ever sees bytes wrapped in ``io.BytesIO``: given a ``str`` that looks like
a path or URL it would open it. Entity declarations are refused before parsing (billion
laughs). Items feedparser recovers from a malformed feed are kept.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import feedparser

from .reasons import ItemError
from .urls import BadURL, absolute, canonical_url

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_FEED_ROOT = re.compile(rb"<(rss|feed|rdf:RDF|RDF)[\s>]", re.IGNORECASE)
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class FeedItem:
    key: str  # stable identity within its feed: guid, else the canonical link
    guid: str | None
    link: str | None  # canonical absolute URL, None when missing or unusable
    link_error: str | None  # why ``link`` is None
    title: str | None
    published_at: datetime | None


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    items: list[FeedItem]
    warning: str | None  # feedparser's complaint about a malformed but usable feed


def _date(entry: dict) -> datetime | None:
    for field in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(field)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
            if when > datetime.now(UTC) + FUTURE_TOLERANCE:
                return None  # a date in the future is a publisher's mistake, not a fact
            return when
    return None


def item_key(guid: str | None, link: str | None, title: str | None) -> str:
    basis = guid or link or title or ""
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def parse_feed(body: bytes, feed_url: str, max_items: int = 10_000) -> ParsedFeed:
    """Parse feed bytes; ``ItemError('feed_malformed')`` when there is no feed in them."""
    if not isinstance(body, bytes | bytearray):
        raise TypeError("parse_feed takes bytes")
    head = bytes(body[:65536])
    if _ENTITY_DECL.search(head):
        raise ItemError("feed_malformed", "feed declares XML entities; refused before parsing")
    if not body.strip():
        raise ItemError("feed_malformed", "empty feed body")
    parsed = feedparser.parse(io.BytesIO(bytes(body)), sanitize_html=False)
    if not parsed.entries and (parsed.bozo or not _FEED_ROOT.search(head)):
        reason = parsed.get("bozo_exception")
        detail = f": {reason}" if reason else ""
        raise ItemError("feed_malformed", f"not an RSS/Atom feed{detail}"[:500])
    base = parsed.feed.get("link") or feed_url
    items: list[FeedItem] = []
    seen: set[str] = set()
    for entry in parsed.entries[:max_items]:
        guid = (entry.get("id") or "").strip() or None
        raw_link = (entry.get("link") or "").strip()
        link = link_error = None
        if raw_link:
            try:
                link = canonical_url(absolute(raw_link, feed_url if raw_link.startswith("/") else base))
            except BadURL as exc:
                link_error = str(exc)
        elif guid and guid.startswith(("http://", "https://")):
            try:
                link = canonical_url(guid)
            except BadURL as exc:
                link_error = str(exc)
        else:
            link_error = "feed item has no link"
        title = (entry.get("title") or "").strip() or None
        key = item_key(guid, link or raw_link or None, title)
        if key in seen:
            continue  # duplicate guid inside one feed document
        seen.add(key)
        items.append(FeedItem(key, guid, link, link_error, title, _date(entry)))
    warning = None
    if parsed.bozo:
        warning = f"malformed feed, {len(items)} items recovered: {parsed.get('bozo_exception')}"[:500]
    return ParsedFeed(
        title=(parsed.feed.get("title") or "").strip() or None,
        site_url=parsed.feed.get("link"),
        items=items,
        warning=warning,
    )
