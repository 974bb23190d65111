"""A feed's history from the Wayback Machine: its archived copies, then each item's raw capture.

The CDX API lists the captures of the feed URL (``output=json``, HTTP 200 only, identical
consecutive copies collapsed by digest) from the window's start to a little after its end
(an item published on the last day is listed by copies made days later). Every copy is read
raw (``/web/<timestamp>id_/<url>``: the bytes as archived, without the archive's banner) and
parsed like a live feed; the items are collected once each (``backfill.Discovery``) and kept
when dated inside the window (an undated item is dated by the first copy that lists it).

Each kept item's page is read from the archive's raw capture nearest the item's date: the
Wayback Machine answers ``/web/<date>id_/<page>`` with a redirect to its nearest capture.
The items then go, page bytes attached, through ``ingest.process_items`` into the feed's own
ledger (so a Wayback backfill, a live backfill and the daily runs never double an item), with
the capture that served the page kept in ``item_sources``.

One request at a time to the archive (the fetcher's per-host politeness applies on top); a
transient failure is retried with exponential backoff, and a ``Retry-After`` is honoured.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import psycopg

from .. import store
from ..backfill import Discovery, Window
from ..config import Settings
from ..extract import looks_like_html
from ..feedwork import parse_bounded
from ..fetch import Fetcher, Response
from ..ingest import FEED_ACCEPT, FEED_LOCK_WAIT_SECONDS, RunSummary, WorkItem, process_items
from ..reasons import ItemError
from .load import run_archive, save_item_sources

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://web.archive.org"
CAPTURE_SLACK = timedelta(days=14)  # copies this long after the window still list its items
ATTEMPTS = 5
BACKOFF_START = 2.0
BACKOFF_MAX = 300.0  # the longest wait between two tries, Retry-After included
BATCH = 64  # pages fetched, then settled, at a time
_CAPTURE = re.compile(r"/web/(\d{14})id_/")


def base_url(base: str | None = None) -> str:
    return (base or os.environ.get("NEWSFLOW_WAYBACK_BASE") or DEFAULT_BASE).rstrip("/")


def timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def parse_timestamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class Capture:
    timestamp: str
    original: str

    @property
    def when(self) -> datetime | None:
        return parse_timestamp(self.timestamp)

    def raw_url(self, base: str) -> str:
        return f"{base}/web/{self.timestamp}id_/{self.original}"


def cdx_url(base: str, feed_url: str, window: Window) -> str:
    query = {
        "url": feed_url,
        "from": timestamp(window.start),
        "to": timestamp(window.end + CAPTURE_SLACK),
        "output": "json",
        "filter": "statuscode:200",
        "collapse": "digest",
    }
    return f"{base}/cdx/search/cdx?{urlencode(query)}"


def parse_cdx(body: bytes) -> list[Capture]:
    """Captures from CDX JSON output: a header row naming the fields, then one row per capture."""
    try:
        rows = json.loads(body.decode("utf-8") or "[]")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ItemError("feed_malformed", f"the CDX answer is not JSON: {exc}") from exc
    if not isinstance(rows, list) or not rows:
        return []
    header = rows[0]
    if not isinstance(header, list) or "timestamp" not in header or "original" not in header:
        raise ItemError("feed_malformed", "the CDX answer has no timestamp/original header row")
    at, original = header.index("timestamp"), header.index("original")
    out = []
    for row in rows[1:]:
        if isinstance(row, list) and len(row) > max(at, original) and parse_timestamp(str(row[at])):
            out.append(Capture(str(row[at]), str(row[original])))
    return sorted(out, key=lambda c: c.timestamp)


def patient_get(fetcher: Fetcher, url: str, *, trusted: str, accept: str, timeout: float) -> Response:
    """``fetcher.get`` with tries beyond the fetcher's own: backoff, and a long Retry-After waited out."""
    delay = BACKOFF_START
    for attempt in range(ATTEMPTS):
        try:
            return fetcher.get(url, timeout=timeout, accept=accept, trusted_origin=trusted)
        except ItemError as exc:
            if not exc.transient or attempt == ATTEMPTS - 1:
                raise
            wait = min(BACKOFF_MAX, max(delay, exc.retry_after or 0.0))
            log.info("%s: %s; trying again in %.0f s", url, exc.message, wait)
            time.sleep(wait)
            delay *= 2
    raise AssertionError("unreachable")


@dataclass
class WaybackResult:
    summary: RunSummary
    discovery: Discovery
    window: Window
    captures: int = 0

    def table(self) -> str:
        return (
            f"{self.summary.table()}\n  window {self.window}\n"
            f"  {self.captures} archived copies of the feed; {self.discovery.describe()}"
        )


def discover(fetcher: Fetcher, base: str, feed_url: str, window: Window, settings: Settings) -> tuple[Discovery, int]:
    """The feed's items dated in ``window``, from every archived copy, each item once."""
    found = Discovery()
    limits = settings.limits
    listing = cdx_url(base, feed_url, window)
    try:
        response = patient_get(fetcher, listing, trusted=base, accept="application/json", timeout=limits.feed_timeout)
        captures = parse_cdx(response.body)
    except ItemError as exc:
        found.problem(listing, exc)
        return found, 0
    found.documents += 1
    for capture in captures:
        url = capture.raw_url(base)
        try:
            response = patient_get(fetcher, url, trusted=base, accept=FEED_ACCEPT, timeout=limits.feed_timeout)
            parsed = parse_bounded(limits, response.body, capture.original)
        except ItemError as exc:
            found.problem(url, exc)
            continue
        found.documents += 1
        for item in parsed.items:
            found.offer(item, "feed", window, item.published_at or capture.when)
    return found, len(captures)


def backfill_wayback(settings: Settings, feed_url: str, window: Window, *, base: str | None = None) -> WaybackResult:
    """Load the feed's items dated in ``window`` from the Wayback Machine (see the module docstring)."""
    root = base_url(base)
    result = WaybackResult(RunSummary(0), Discovery(), window)

    def body(conn: psycopg.Connection, fetcher: Fetcher, pool: ThreadPoolExecutor, summary: RunSummary) -> None:
        feed = store.register_feed(conn, feed_url)
        summary.feeds += 1
        if not store.lock_feed(conn, feed.id, FEED_LOCK_WAIT_SECONDS):
            summary.feeds_failed[feed_url] = "busy: another newsflow run kept this feed locked"
            return
        result.discovery, result.captures = discover(fetcher, root, feed_url, window, settings)
        summary.feeds_failed.update(result.discovery.problems)
        summary.message = f"wayback: {result.captures} copies; {result.discovery.describe()}"
        todo = _pending(conn, feed.id, result.discovery, summary)
        for start in range(0, len(todo), BATCH):
            _load_batch(conn, fetcher, pool, settings, summary, feed.id, todo[start : start + BATCH], root)

    result.summary = run_archive(settings, "backfill_wayback", body, trusted=[root])
    return result


def _pending(conn: psycopg.Connection, feed_id: int, found: Discovery, summary: RunSummary) -> list:
    """The discovered items not in the feed's ledger yet (by key or URL), as backfill decides."""
    from ..backfill import _pending as pending

    return [w.item for w in pending(conn, feed_id, found.items, summary)]


def _load_batch(
    conn: psycopg.Connection,
    fetcher: Fetcher,
    pool: ThreadPoolExecutor,
    settings: Settings,
    summary: RunSummary,
    feed_id: int,
    items: list,
    base: str,
) -> None:
    """Read each item's nearest raw capture, one request at a time; then settle the batch."""
    work: list[WorkItem] = []
    sources: list[dict] = []
    for item in items:
        if item.link is None:
            work.append(WorkItem(feed_id, item))  # quarantined as bad_url by the processing path
            continue
        when = item.published_at or datetime.now(UTC)
        asked = f"{base}/web/{timestamp(when)}id_/{item.link}"
        source = {
            "feed_id": feed_id,
            "item_key": item.key,
            "kind": "wayback",
            "location": asked,
            "record_offset": None,
            "record_id": None,
            "captured_at": None,
        }
        sources.append(source)
        try:
            response = patient_get(
                fetcher, asked, trusted=base, accept="text/html,*/*;q=0.5", timeout=settings.limits.page_timeout
            )
            if not looks_like_html(response.body, response.content_type):
                raise ItemError("not_html", f"content type {response.content_type or 'unknown'} is not an HTML page")
        except ItemError as exc:
            exc.transient = False  # a later run of the same window asks the archive again
            store.quarantine(conn, summary.run_id, feed_id, item, exc.reason, f"{asked}: {exc.message}", False)
            summary.count("quarantined", exc.reason)
            continue
        served = _CAPTURE.search(response.url)
        captured = parse_timestamp(served.group(1)) if served else None
        source["location"], source["captured_at"] = response.url, captured
        response.url = item.link
        work.append(WorkItem(feed_id, item, response=response, fetched_at=captured or datetime.now(UTC)))
    save_item_sources(conn, sources)
    process_items(conn, fetcher, pool, settings, summary.run_id, work, summary)
