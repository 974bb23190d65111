"""Recover a feed's history for a date range: RFC 5005 archives, ``?paged=N`` pages, sitemaps.

A feed document lists only its latest items. Older ones are still reachable through the
feed's archive links (RFC 5005 ``prev-archive``, paged feeds' ``next``), through WordPress's
``?paged=N`` feed pages, and through the site's sitemaps (robots.txt ``Sitemap:`` lines and
``/sitemap.xml``, indexes and Google News sitemaps). Discovery fetches those documents with
the run's ``Fetcher`` (bounds, politeness, the address guard trusting only the feed's
origin) and reads them with the pure parsers in ``archives``, ``sitemaps`` and ``feeds``.

Items dated inside the window then go through the same batch path as ingest
(``ingest.process_items``), so they land in the ledger the same way; items this feed already
stored (by item key or by URL) are counted as already done and never fetched again, which
makes a backfill that overlaps daily runs, or a rerun of the same window, change nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg

from . import store
from .archives import feed_links, older_pages, paged_url
from .config import Limits, Settings
from .feeds import FeedItem, ParsedFeed, item_key
from .feedwork import parse_bounded
from .fetch import Fetcher
from .ingest import FEED_ACCEPT, FEED_LOCK_WAIT_SECONDS, Progress, RunSummary, WorkItem, run_items
from .reasons import ItemError
from .sitemaps import SitemapError, inflate, parse_sitemap, robots_sitemaps
from .urls import BadURL, canonical_url, fetchable_url, host_of

SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, application/x-gzip;q=0.8, */*;q=0.5"
SOURCES = ("feed", "archive", "paged", "sitemap")


@dataclass(frozen=True)
class Window:
    """A half-open time range ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.start >= self.end:
            raise ValueError(f"empty window: {self.start.isoformat()} is not before {self.end.isoformat()}")

    @classmethod
    def parse(cls, since: str, until: str | None = None, *, now: datetime | None = None) -> Window:
        """A window from the command line or DAG params.

        A date means a whole UTC day, and ``until`` as a date is included (``--since 2026-10-01
        --until 2026-10-31`` is all of October); a date-time is an exact bound. No ``until``
        means up to now.
        """
        start = parse_bound(since, end=False)
        end = parse_bound(until, end=True) if until else (now or datetime.now(UTC))
        return cls(start, end)

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def parse_bound(text: str, *, end: bool) -> datetime:
    """A range bound: ``YYYY-MM-DD`` is the start of that UTC day, or of the next one for an
    inclusive ``end``; an ISO date-time is exact (UTC when it has no zone)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a date (YYYY-MM-DD) or ISO date-time: {text!r}") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass
class Discovery:
    """What a history walk found: the in-window items, once each, and what it skipped."""

    items: list[FeedItem] = field(default_factory=list)
    found: Counter[str] = field(default_factory=Counter)
    out_of_range: int = 0
    undated: int = 0
    documents: int = 0
    problems: dict[str, str] = field(default_factory=dict)
    _keys: set[str] = field(default_factory=set, repr=False)
    _links: set[str] = field(default_factory=set, repr=False)
    # item key -> (source kind, the document it was found in), for items not from the feed itself
    located: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def is_new(self, item: FeedItem) -> bool:
        return item.key not in self._keys and (item.link is None or item.link not in self._links)

    def offer(
        self, item: FeedItem, source: str, window: Window, when: datetime | None, document: str | None = None
    ) -> None:
        """Keep ``item`` if it is new and dated inside ``window``; count it otherwise.

        ``document``: the archive page or sitemap it was found in, kept as the item's source."""
        if not self.is_new(item):
            return
        self._keys.add(item.key)
        if item.link:
            self._links.add(item.link)
        if when is None:
            self.undated += 1
        elif not window.contains(when):
            self.out_of_range += 1
        else:
            self.items.append(item)
            self.found[source] += 1
            if document is not None and source != "feed":
                self.located[item.key] = (source, document)

    def problem(self, url: str, exc: ItemError | SitemapError) -> None:
        reason = exc.reason if isinstance(exc, ItemError) else "feed_malformed"
        self.problems[url] = f"{reason}: {exc}"[:500]

    def describe(self) -> str:
        by_source = ", ".join(f"{s} {self.found[s]}" for s in SOURCES if self.found[s])
        return (
            f"found {len(self.items)} items in the window"
            + (f" ({by_source})" if by_source else "")
            + f"; {self.out_of_range} outside it, {self.undated} undated; {self.documents} documents read"
        )


def _older_than(items: list[FeedItem], window: Window) -> bool:
    """True when every item of a page is dated before the window: pages past it are older still."""
    return bool(items) and all(i.published_at is not None and i.published_at < window.start for i in items)


def _gone(exc: ItemError) -> bool:
    """A 4xx answer: the page is not there, which ends a walk without being a failure."""
    return exc.reason == "http_status" and not exc.transient


def _read_feed(
    fetcher: Fetcher, url: str, limits: Limits, found: Discovery, *, robots: bool = False
) -> tuple[ParsedFeed, list[str]]:
    response = fetcher.get(url, timeout=limits.feed_timeout, accept=FEED_ACCEPT, robots=robots)
    found.documents += 1
    parsed = parse_bounded(limits, response.body, url)
    return parsed, older_pages(feed_links(response.body, url))


def _walk_archives(
    fetcher: Fetcher, start: list[str], window: Window, limits: Limits, found: Discovery, visited: set[str]
) -> None:
    """Follow archive and paged-feed links breadth first until the pages predate the window."""
    queue = list(start)
    pages = 0
    while queue and pages < limits.backfill_max_pages:
        url = queue.pop(0)
        if url in visited:
            continue
        visited.add(url)
        pages += 1
        try:
            parsed, older = _read_feed(fetcher, url, limits, found)
        except ItemError as exc:
            found.problem(url, exc)
            continue
        for item in parsed.items:
            found.offer(item, "archive", window, item.published_at, url)
        if not _older_than(parsed.items, window):
            queue += older


def _walk_paged(
    fetcher: Fetcher, feed_url: str, window: Window, limits: Limits, found: Discovery, visited: set[str]
) -> None:
    """``?paged=2, 3 ...`` until a page is missing, empty, repeats what was seen, or predates the window."""
    for page in range(2, limits.backfill_max_pages + 2):
        url = paged_url(feed_url, page)
        if url in visited:
            return
        visited.add(url)
        try:
            parsed, _older = _read_feed(fetcher, url, limits, found, robots=True)  # a guessed URL
        except ItemError as exc:
            if not (_gone(exc) or exc.reason == "feed_malformed"):
                found.problem(url, exc)
            return  # a 404, or an HTML page: the site has no (more) feed pages
        if not parsed.items or not any(found.is_new(i) for i in parsed.items):
            return  # empty, or a server that ignores ?paged and repeats the feed
        for item in parsed.items:
            found.offer(item, "paged", window, item.published_at, url)
        if _older_than(parsed.items, window):
            return


def _sitemap_item(loc: str, title: str | None, published_at: datetime | None) -> FeedItem | None:
    try:
        link = canonical_url(loc)
    except BadURL:
        return None
    return FeedItem(item_key(None, link, None), None, link, None, title, published_at)


def _walk_sitemaps(fetcher: Fetcher, feed_url: str, window: Window, limits: Limits, found: Discovery) -> None:
    """robots.txt ``Sitemap:`` lines and ``/sitemap.xml``, through indexes, entries by date.

    Only the feed's own host is read (the sitemaps protocol keeps a sitemap's URLs on its
    host). A child sitemap last modified before the window holds nothing newer, so it is skipped.
    """
    parts = urlsplit(feed_url)
    host = host_of(feed_url)
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    robots_url = origin + "/robots.txt"
    listed: list[str] = []
    try:
        response = fetcher.get(robots_url, timeout=limits.feed_timeout, accept="text/plain, */*;q=0.5")
        found.documents += 1
        listed = robots_sitemaps(response.body, robots_url)
    except ItemError as exc:
        if not _gone(exc):
            found.problem(robots_url, exc)
    guessed = origin + "/sitemap.xml"
    queue = [u for u in listed if host_of(u) == host]
    if guessed not in queue:
        queue.append(guessed)
    visited: set[str] = set()
    while queue and len(visited) < limits.backfill_max_pages:
        url = queue.pop(0)
        if url in visited:
            continue
        visited.add(url)
        try:
            response = fetcher.get(url, timeout=limits.feed_timeout, accept=SITEMAP_ACCEPT, robots=True)
            found.documents += 1
            sitemap = parse_sitemap(inflate(response.body, limits.max_body_bytes), url)
        except (ItemError, SitemapError) as exc:
            quiet = url == guessed and (isinstance(exc, SitemapError) or _gone(exc))
            if not quiet:  # a guessed /sitemap.xml that is not there is no failure
                found.problem(url, exc)
            continue
        for entry in sitemap.entries:
            if host_of(entry.loc) != host:
                continue
            if sitemap.is_index:
                if entry.lastmod is None or entry.lastmod >= window.start:
                    queue.append(entry.loc)
                continue
            item = _sitemap_item(entry.loc, entry.title, entry.published_at)
            if item is not None:
                found.offer(item, "sitemap", window, entry.when, url)


def discover(fetcher: Fetcher, feed_url: str, window: Window, limits: Limits) -> Discovery:
    """Every item of ``feed_url``'s history dated inside ``window``, each once.

    Sources in order of trust: the feed document, its archive/paged chain, ``?paged=N``
    pages, then sitemaps; an item found twice keeps its first (richest) form. A failing
    source is recorded in ``problems`` and the others still run.
    """
    found = Discovery()
    visited = {feed_url}
    feed_ok = False
    try:
        parsed, older = _read_feed(fetcher, feed_url, limits, found)
        feed_ok = True
        for item in parsed.items:
            found.offer(item, "feed", window, item.published_at)
        if not _older_than(parsed.items, window):
            _walk_archives(fetcher, older, window, limits, found, visited)
    except ItemError as exc:
        found.problem(feed_url, exc)
    if feed_ok:
        _walk_paged(fetcher, feed_url, window, limits, found, visited)
    _walk_sitemaps(fetcher, feed_url, window, limits, found)
    return found


def _pending(conn: psycopg.Connection, feed_id: int, items: list[FeedItem], summary: RunSummary) -> list[WorkItem]:
    """The discovered items still to do: not in the ledger under their key or their URL.

    A transiently quarantined item is tried again, as ingest does.
    """
    known = store.known_items(conn, feed_id, [i.key for i in items])
    done_urls = store.done_urls(conn, feed_id, [i.link for i in items if i.link])
    todo: list[WorkItem] = []
    for item in items:
        state = known.get(item.key)
        retry = state is not None and state[0] == "quarantined" and state[1]
        done = (state is not None and not retry) or (state is None and item.link in done_urls)
        if done:
            summary.unchanged += 1
        else:
            todo.append(WorkItem(feed_id, item))
    return todo


@dataclass
class BackfillResult:
    summary: RunSummary
    discovery: Discovery
    window: Window

    def table(self) -> str:
        return f"{self.summary.table()}\n  window {self.window}\n  {self.discovery.describe()}"


def check_feed_url(feed_url: str) -> str:
    """The feed URL as given, if it is one to fetch; ``BadURL`` (a ValueError) otherwise."""
    try:
        return fetchable_url(feed_url)
    except BadURL as exc:
        raise BadURL(f"not an http(s) feed URL: {exc}") from exc


def backfill(settings: Settings, feed_url: str, window: Window, *, progress: Progress | None = None) -> BackfillResult:
    """Load the items of ``feed_url`` dated inside ``window`` that are not stored yet.

    Registers the feed if it is new. Recorded in ``ops.runs`` as kind ``backfill``; the run's
    message says what discovery found. Discovery does not touch the feed's cache validators
    (ETag, Last-Modified): a backfill must not make the next poll skip items.
    """
    url = check_feed_url(feed_url)
    found = Discovery()

    def collect(conn: psycopg.Connection, fetcher: Fetcher, summary: RunSummary) -> list[WorkItem]:
        nonlocal found
        feed = store.register_feed(conn, url)
        summary.feeds += 1
        # The feed's loader lock, as ingest takes it: a daily run and a backfill of one feed
        # take turns, so neither fetches or stores what the other is doing.
        if not store.lock_feed(conn, feed.id, FEED_LOCK_WAIT_SECONDS):
            summary.feeds_failed[url] = "busy: another newsflow run kept this feed locked"
            return []
        found = discover(fetcher, url, window, settings.limits)
        summary.feeds_failed.update(found.problems)
        summary.message = found.describe()
        todo = _pending(conn, feed.id, found.items, summary)
        _keep_sources(conn, feed.id, found, todo)
        return todo

    summary = run_items(settings, kind="backfill", trusted_origins=[url], collect=collect, progress=progress)
    return BackfillResult(summary, found, window)


# --- web archives (pipeline/webarchive): the same ledger, the same processing path ----------


def _keep_sources(conn: psycopg.Connection, feed_id: int, found: Discovery, todo: list[WorkItem]) -> None:
    """Where each item to load was found, when not in the feed itself: an archive page, a
    ``?paged=N`` page, a sitemap (``item_sources``, shown by ``v_article_sources``)."""
    from .webarchive.load import save_item_sources

    rows = []
    for work in todo:
        located = found.located.get(work.item.key)
        if located is not None:
            kind, document = located
            rows.append(
                {
                    "feed_id": feed_id,
                    "item_key": work.item.key,
                    "kind": kind,
                    "location": document,
                    "record_offset": None,
                    "record_id": None,
                    "captured_at": None,
                }
            )
    save_item_sources(conn, rows)


def archive_filters(domains_file: str | None, window: Window | None, language: str | None):  # noqa: ANN201
    """The record filters of an archive backfill, from the command line or DAG params."""
    from .webarchive.load import Filters, read_domains

    domains = read_domains(domains_file) if domains_file else None
    return Filters(domains, window, language.strip().lower() if language else None)


def backfill_warc(settings: Settings, locations: list[str], filters, *, all_domains: bool = False):  # noqa: ANN001, ANN201
    """Load WARC/ARC files (paths or URLs); see ``webarchive.load``."""
    from .webarchive.load import load_warc

    return load_warc(settings, locations, filters, all_domains=all_domains)


def backfill_cc_news(  # noqa: ANN201
    settings: Settings, month: str, filters, *, base: str | None = None, all_domains: bool = False  # noqa: ANN001
):
    """Load a month of CC-NEWS, file after file, resuming at the first unfinished one."""
    from .webarchive.ccnews import load_month

    return load_month(settings, month, filters, base=base, all_domains=all_domains)


def backfill_wayback(settings: Settings, feed_url: str, window: Window, *, base: str | None = None):  # noqa: ANN201
    """Load a feed's items dated in ``window`` from its captures in the Wayback Machine."""
    from .webarchive.wayback import backfill_wayback as run

    return run(settings, check_feed_url(feed_url), window, base=base)
