"""When a page says it was published, and how it says so (pure: no I/O).

The cascade, first answer wins:

1. what the page states about itself in structured data: JSON-LD ``datePublished``
   (``jsonld``), ``article:published_time`` and kin (``meta``), ``itemprop="datePublished"``
   (``itemprop``), ``<time pubdate>`` (``time``);
2. htmldate's extensive search (``htmldate``), run inside trafilatura's metadata pass so
   the page is parsed once, with the URL's date used only after the page's own markup
   (``deferred_url_extractor``): a URL date has no time of day;
3. the date in the URL, ``/2022/11/09/`` (``url``).

Modified dates are never publication dates: ``dateModified``, ``article:modified_time``
and ``og:updated_time`` are not read, and htmldate is asked for the original date.
``settle`` then puts the page's date next to the feed's (see its docstring) for
``articles.published_at``; both are kept.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

PAGE_SOURCES = ("jsonld", "meta", "itemprop", "time", "htmldate", "url")
FEED = "feed"

# <meta> names and properties that state the publication time (lower case).
_META_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "datepublished",
    "parsely-pub-date",
    "sailthru.date",
    "publish-date",
    "publishdate",
    "pubdate",
    "publication_date",
    "dc.date.issued",
    "dcterms.issued",
    "dcterms.created",
    "dc.date.created",
    "article.published",
    "published_time",
    "cxenseparse:recs:publishtime",
)
_ARTICLE_TYPES = re.compile(r"(?:Article|Posting|Report|BlogPosting|LiveBlogPosting|NewsArticle|WebPage)$", re.I)
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/_-]?(0[1-9]|1[0-2])[/_-]?(0[1-9]|[12]\d|3[01])(?:/|[_-]|\.html?|$)")
_URL_DATE_SEP = re.compile(r"/((?:19|20)\d{2})/(0?[1-9]|1[0-2])/(0?[1-9]|[12]\d|3[01])/")
_MIN_YEAR = 1995
_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s?[+-]\d{2}:?\d{2}$")
# Zone abbreviations that datelines use, as UTC offsets in seconds (dateutil knows none).
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "BST": 3600,
    "CET": 3600,
    "CEST": 7200,
    "EET": 7200,
    "EEST": 10800,
    "EST": -18000,
    "EDT": -14400,
    "CST": -21600,
    "CDT": -18000,
    "MST": -25200,
    "MDT": -21600,
    "PST": -28800,
    "PDT": -25200,
    "IST": 19800,
    "JST": 32400,
    "AEST": 36000,
    "AEDT": 39600,
}


@dataclass(frozen=True)
class Found:
    when: datetime
    source: str
    has_time: bool  # False when only the day is known (a URL, a bare date)


def parse_when(text: str | None) -> tuple[datetime, bool] | None:
    """An ISO 8601-ish timestamp or date as (aware datetime, has a time of day); naive is UTC."""
    if not text or not isinstance(text, str):
        return None
    text = text.strip()
    if len(text) < 8 or len(text) > 64:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        has_time = "T" in text or " " in text.strip()
    except ValueError:
        try:
            from dateutil import parser as dateutil_parser

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an unknown zone name leaves the time naive: UTC below
                when = dateutil_parser.parse(text, default=datetime(2000, 1, 1), tzinfos=_ZONES)
        except (ValueError, OverflowError, TypeError):
            return None
        has_time = bool(re.search(r"\d:\d\d", text))
    if when.year < _MIN_YEAR:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when, has_time


def jsonld_objects(tree) -> list[dict]:  # noqa: ANN001 - an lxml element
    found: list[dict] = []
    for script in tree.iterfind('.//script[@type="application/ld+json"]'):
        raw = (script.text or "").strip()
        if not raw or len(raw) > 2_000_000:
            continue
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # a block nested 100,000 deep is not metadata
            continue
        stack = [data]
        while stack and len(found) < 200:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(reversed(node))
            elif isinstance(node, dict):
                found.append(node)
                graph = node.get("@graph")
                if isinstance(graph, list):
                    stack.extend(reversed(graph))
                main = node.get("mainEntity")
                if isinstance(main, dict | list):
                    stack.append(main)
    return found


def jsonld_articles(tree, nodes: list[dict] | None = None) -> list[dict]:  # noqa: ANN001 - an lxml element
    """The page's JSON-LD objects that describe an article (NewsArticle, BlogPosting …), in page order."""
    out = []
    for node in jsonld_objects(tree) if nodes is None else nodes:
        kinds = node.get("@type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if any(isinstance(k, str) and _ARTICLE_TYPES.search(k) for k in kinds):
            out.append(node)
    return out


def structured_date(tree, articles: list[dict] | None = None) -> Found | None:  # noqa: ANN001
    """The publication time the page states in structured data, with where it said it."""
    articles = jsonld_articles(tree) if articles is None else articles
    # An article object before a WebPage object: the WebPage date is the page's, often the same.
    ranked = sorted(articles, key=lambda n: "WebPage" in str(n.get("@type")))
    for node in ranked:
        parsed = parse_when(node.get("datePublished") or node.get("dateCreated"))
        if parsed:
            return Found(parsed[0], "jsonld", parsed[1])
    for meta in tree.iterfind(".//meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if key in _META_KEYS:
            parsed = parse_when(meta.get("content"))
            if parsed:
                return Found(parsed[0], "meta", parsed[1])
    for element in tree.xpath('.//*[@itemprop="datePublished"]'):
        parsed = parse_when(element.get("datetime") or element.get("content") or (element.text or "").strip())
        if parsed:
            return Found(parsed[0], "itemprop", parsed[1])
    for element in tree.xpath(".//time[@pubdate]"):
        parsed = parse_when(element.get("datetime") or (element.text or "").strip())
        if parsed:
            return Found(parsed[0], "time", parsed[1])
    return None


def url_date(url: str | None) -> Found | None:
    """The day a URL's path carries (``/2022/11/09/``, ``/20221109/``), at midnight UTC."""
    if not url:
        return None
    path = url.split("?", 1)[0].split("#", 1)[0]
    match = _URL_DATE_SEP.search(path) or _URL_DATE.search(path)
    if not match:
        return None
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return Found(datetime.combine(day, time(), UTC), "url", False)


def from_htmldate(found: str | None, url: str | None) -> Found | None:
    """htmldate's answer, named ``url`` when it is only the URL's day."""
    parsed = parse_when(found)
    if not parsed:
        return None
    when, _ = parsed
    has_time = (when.hour, when.minute, when.second) != (0, 0, 0)
    from_url = url_date(url)
    if from_url and not has_time and from_url.when.date() == when.date():
        return from_url
    return Found(when, "htmldate", has_time)


def _day_of(found: str | None) -> date | None:
    parsed = parse_when(found)
    return parsed[0].date() if parsed else None


def local_day(structured: Found | None, htmldate_found: str | None, url: str | None, tree=None) -> Found | None:  # noqa: ANN001
    """The structured instant written on the publisher's local day, when the page says which.

    Structured data often gives the instant in UTC: a story published at 9 pm in New York
    is dated the next day there. The URL's day (else htmldate's, which reads the URL and
    the page's own datelines) is the day the reader sees. The same instant written elsewhere
    on the page with the publisher's offset (``<time datetime="…-0500">``) settles it best:
    the instant is written in that offset. Otherwise, when the instant falls within a time
    zone's width of the URL's (or htmldate's) day, it is written in the whole-hour offset
    nearest UTC that puts it on that day: the same instant (PostgreSQL keeps only the
    instant), on the day the reader sees. An instant the page wrote with an offset of its
    own is left as written.
    """
    if structured is None or not structured.has_time or structured.when.utcoffset():
        return structured
    if tree is not None:
        for element in tree.xpath(".//time[@datetime]|.//meta[@content]")[:400]:
            value = element.get("datetime") or element.get("content") or ""
            if not _WITH_OFFSET.match(value.strip()):
                continue
            parsed = parse_when(value)
            if (
                parsed
                and parsed[1]
                and parsed[0].utcoffset()
                and abs(parsed[0] - structured.when) <= timedelta(minutes=1)
            ):
                return Found(structured.when.astimezone(parsed[0].tzinfo), structured.source, True)
    hint = url_date(url)
    day = hint.when.date() if hint else _day_of(htmldate_found)
    if day is None or day == structured.when.date():
        return structured
    start = datetime.combine(day, time(), UTC)
    delta = structured.when - start
    if delta >= timedelta(days=1):
        hours = -(int((delta - timedelta(days=1)) / timedelta(hours=1)) + 1)
    elif delta < timedelta(0):
        hours = int(-delta / timedelta(hours=1)) + (0 if (-delta) % timedelta(hours=1) == timedelta(0) else 1)
    else:
        return structured
    if not -12 <= hours <= 14:
        return structured
    return Found(structured.when.astimezone(timezone(timedelta(hours=hours))), structured.source, True)


def page_date(
    structured: Found | None, htmldate: Found | None, url: Found | None, *, now: datetime | None = None
) -> Found | None:
    """The first of the cascade that is not in the future (a day's slack for time zones)."""
    limit = (now or datetime.now(UTC)) + timedelta(days=1)
    for found in (structured, htmldate, url):
        if found is not None and found.when <= limit:
            return found
    return None


AGREE_WITHIN = timedelta(hours=36)  # one calendar day either side of a page date without a time
STATED = frozenset({"jsonld", "meta", "itemprop", "time", "url"})  # the publisher's own statement


def settle(page: datetime | None, page_source: str | None, feed: datetime | None) -> tuple[datetime | None, str | None]:
    """``published_at`` and its source, from the page's date and the feed item's.

    - A date the publisher states on the page (structured data, or the day in the URL) wins
      over the feed's: a feed's date is often when the item entered the feed, was updated,
      or was listed in an archive or sitemap.
    - But a stated date known only to the day (a URL, a date without a time) that the feed's
      time falls on or next to (``AGREE_WITHIN``) is the same date said less precisely:
      the feed's time is taken (source ``feed``).
    - A date htmldate inferred from the page's text yields to the feed's date, agreeing or
      not: the feed states it, the page only suggested it.
    - With no page date, the feed's date (``feed``); with neither, none.

    Both dates are stored whatever wins (``page_published_at``, ``feed_published_at``).
    """
    if feed is not None and feed.tzinfo is None:
        feed = feed.replace(tzinfo=UTC)
    if page is None or page_source is None:
        return (feed, FEED) if feed is not None else (None, None)
    if feed is None:
        return page, page_source
    if page_source not in STATED:
        return feed, FEED
    day_only = page_source == "url" or (page.hour, page.minute, page.second, page.microsecond) == (0, 0, 0, 0)
    if day_only and abs(feed - page) <= AGREE_WITHIN:
        return feed, FEED
    return page, page_source
