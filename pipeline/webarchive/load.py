"""WARC and ARC files into the ledger: filters, the per-file ledger, resumable reads.

A file is a source of its own (a ``feeds`` row of kind ``warc``, never polled) and a unit of
work in ``archive_files``: how far reading got (the byte offset before which every record is
settled, the records seen) and whether it is done. Records are read in order and settled in
batches through ``ingest.process_items``, the one processing path: the page bytes travel
with the work item, so nothing is fetched. After each batch the offset is saved; a run
killed in the middle of a file resumes at that offset, finds the records it had settled
since in the ledger, and goes on; a finished file is never read again.

Filters cost nothing they need not: a record ruled out by its type, its URL (``--domains``),
its WARC-Date (a page is published no later than it was captured) or its HTTP headers is
counted and its payload never copied; the page's own metadata (its declared language, its
publication date read by htmldate) is looked at only when a language or window was asked
for, and only for records of the listed domains. Nothing ruled out is extracted.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from .. import db, store
from ..config import Settings
from ..extract import looks_like_html
from ..feeds import FeedItem
from ..fetch import Fetcher, Response
from ..ingest import RunSummary, WorkItem, item_run, process_items
from ..urls import BadURL, canonical_url, host_of
from .reader import ArchiveError, Record, Source, Unreadable, detect_format, records, source_for

log = logging.getLogger(__name__)

BATCH_ITEMS = 1000  # work items settled together; the offset is saved after each batch
BATCH_BYTES = 64 << 20  # page bytes held for one batch, at most (never the whole file)
CHECKPOINT_RECORDS = 5000  # records read between two saves of the offset when nothing is loaded
READ_ATTEMPTS = 4  # a file whose connection breaks is reopened at the last offset this often
LOCK_WAIT_SECONDS = 900.0

# Not a page whatever the body says: ruled out on the header, the payload is never read.
_NOT_PAGE_TYPES = ("image/", "video/", "audio/", "font/", "application/pdf", "application/zip")
_TRUNCATED_REASON = {"length": "too_large", "time": "timeout", "disconnect": "connection"}
_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)
_META_LANG = re.compile(
    rb"<meta\b[^>]*?http-equiv\s*=\s*[\"']?content-language[\"']?[^>]*?content\s*=\s*[\"']?([A-Za-z]{2,3})",
    re.IGNORECASE,
)
_TAGS = re.compile(rb"<[^<>]{0,4000}>")  # linear: a page of unclosed tags cannot make it backtrack
_PARAGRAPH = re.compile(rb"<p\b[^<>]{0,500}>([^<]{20,5000})", re.IGNORECASE)
PAGE_SNIFF_BYTES = 1 << 20  # the page's date and language are looked for in its first megabyte


# --- filters ---------------------------------------------------------------------------------


def _bare(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


@dataclass(frozen=True)
class Filters:
    """Which records to load: their domains, a publication window, a language (None: any)."""

    domains: frozenset[str] | None = None
    window: object | None = None  # backfill.Window
    language: str | None = None

    def host_listed(self, host: str) -> bool:
        """``host`` is a listed domain or a subdomain of one (``www.`` ignored)."""
        if self.domains is None:
            return True
        labels = _bare(host).split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels)))


def domain_set(entries: Iterable[str]) -> frozenset[str]:
    """Domains from hosts or URLs (``www.`` dropped); blank entries and ``#`` comments ignored."""
    out = set()
    for line in entries:
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        host = host_of(entry) if "://" in entry else entry.split("/", 1)[0]
        if host:
            out.add(_bare(host))
    return frozenset(out)


def filters_from(
    domains: Iterable[str] | None, since: str | None, until: str | None, language: str | None
) -> Filters:
    """Filters from small values (DAG params, XCom): domains, a window, a language."""
    from ..backfill import Window

    window = Window.parse(since, until) if since else None
    return Filters(domain_set(domains) if domains else None, window, language.strip().lower() if language else None)


def read_domains(path: str | Path) -> frozenset[str]:
    """Domains (or URLs) one a line; ``#`` starts a comment."""
    return domain_set(Path(path).read_text(encoding="utf-8").splitlines())


def feed_domains(conn: psycopg.Connection) -> frozenset[str]:
    """The hosts of the feeds newsflow follows and of the sites they name."""
    hosts = set()
    for url, site in conn.execute("SELECT url, site_url FROM feeds WHERE kind = 'feed'"):
        for value in (url, site):
            host = host_of(value) if value else ""
            if host:
                hosts.add(_bare(host))
    return frozenset(hosts)


def declared_language(record: Record, body: bytes) -> str | None:
    """The language the page declares: Content-Language, ``<html lang>``, a meta tag."""
    if record.language:
        return record.language.split(",")[0].strip()[:3].split("-")[0].lower() or None
    head = body[:32768]
    for pattern in (_HTML_LANG, _META_LANG):
        found = pattern.search(head)
        if found:
            return found.group(1).decode("ascii").lower()
    return None


def page_language(record: Record, body: bytes) -> str | None:
    declared = declared_language(record, body)
    if declared:
        return declared
    from ..extract import detect_language

    head = body[:200_000]
    # the paragraphs' text, where the article is (menus and ads are in the site's language
    # too, but a template's boilerplate often is not); the whole page's text if it has none
    paragraphs = b" ".join(_PARAGRAPH.findall(head))
    text = (paragraphs if len(paragraphs) >= 200 else _TAGS.sub(b" ", head)).decode("utf-8", "replace")
    return detect_language(" ".join(text.split())[:5000])


def page_date(body: bytes) -> datetime | None:
    """The publication time the page's metadata gives (htmldate, fast mode), else None."""
    import htmldate

    try:
        found = htmldate.find_date(body, extensive_search=False, original_date=True, outputformat="%Y-%m-%dT%H:%M:%S%z")
    except Exception:  # noqa: BLE001 - htmldate on hostile markup: no date, not a failure
        return None
    if not found:
        return None
    try:
        when = datetime.fromisoformat(found)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# --- the per-file ledger ---------------------------------------------------------------------


@dataclass
class FileState:
    feed_id: int
    location: str
    state: str
    records_seen: int
    offset_reached: int
    skipped: Counter[str]
    format: str | None


_SOURCE_ROW = """
INSERT INTO feeds (url, kind, enabled, title) VALUES (%(url)s, 'warc', false, %(title)s)
ON CONFLICT (url_key) DO UPDATE SET url = EXCLUDED.url
RETURNING id, kind
"""
_FILE_ROW = """
INSERT INTO archive_files (feed_id, location, listing, position)
VALUES (%(feed_id)s, %(location)s, %(listing)s, %(position)s)
ON CONFLICT (feed_id) DO UPDATE SET listing = coalesce(EXCLUDED.listing, archive_files.listing),
                                    position = coalesce(EXCLUDED.position, archive_files.position)
RETURNING feed_id, location, state, records_seen, offset_reached, skipped, format
"""
_CHECKPOINT = """
UPDATE archive_files SET records_seen = %(seen)s, offset_reached = %(offset)s, skipped = %(skipped)s,
       state = %(state)s, format = %(format)s, last_run_id = %(run_id)s, last_error = %(error)s,
       started_at = coalesce(started_at, now()),
       finished_at = CASE WHEN %(state)s = 'done' THEN now() ELSE finished_at END
WHERE feed_id = %(feed_id)s
"""
_FAILED = "UPDATE archive_files SET last_error = %(error)s, last_run_id = %(run_id)s WHERE feed_id = %(feed_id)s"
_ITEM_SOURCE = """
INSERT INTO item_sources (feed_id, item_key, kind, location, record_offset, record_id, captured_at)
VALUES (%(feed_id)s, %(item_key)s, %(kind)s, %(location)s, %(record_offset)s, %(record_id)s, %(captured_at)s)
ON CONFLICT (feed_id, item_key) DO NOTHING
"""
_UNLOCK = "SELECT pg_advisory_unlock(%(cls)s, %(id)s)"


def file_state(
    conn: psycopg.Connection, location: str, listing: str | None = None, position: int | None = None
) -> FileState:
    """The file's ledger row, made (with its source row) on first sight."""
    with conn.transaction():
        row = conn.execute(_SOURCE_ROW, {"url": location, "title": Path(location).name[:200]}).fetchone()
        assert row is not None
        if row[1] != "warc":
            raise ArchiveError(f"{location[:200]} is registered as a {row[1]}, not an archive file")
        state = conn.execute(
            _FILE_ROW, {"feed_id": row[0], "location": location, "listing": listing, "position": position}
        ).fetchone()
    assert state is not None
    return FileState(state[0], state[1], state[2], state[3], state[4], Counter(state[5] or {}), state[6])


def save_item_sources(conn: psycopg.Connection, rows: list[dict]) -> None:
    if rows:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_ITEM_SOURCE, rows)


# --- reading one file ------------------------------------------------------------------------


@dataclass
class _Entry:
    item: FeedItem
    work: WorkItem | None = None
    reason: str | None = None  # quarantined with this reason
    message: str = ""
    source: dict = field(default_factory=dict)


@dataclass
class FileResult:
    location: str
    state: str  # done, reading (left to resume), failed, busy, already done
    records: int = 0
    loaded: int = 0  # work items handed to the processing path this run
    error: str | None = None


@dataclass
class ArchiveTotals:
    """What a run read, over its files: records by outcome, skipped ones by why."""

    files: list[FileResult] = field(default_factory=list)
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        done = sum(1 for f in self.files if f.state in ("done", "already done"))
        parts = [f"{len(self.files)} files ({done} done)", f"{self.records} records read"]
        if self.skipped:
            parts.append("skipped: " + ", ".join(f"{k} {n}" for k, n in sorted(self.skipped.items())))
        return "; ".join(parts)


class _FileReader:
    """One file through filters and batches into the ledger (see the module docstring)."""

    def __init__(
        self,
        conn: psycopg.Connection,
        fetcher: Fetcher,
        pool: ThreadPoolExecutor,
        settings: Settings,
        summary: RunSummary,
        filters: Filters,
        totals: ArchiveTotals,
    ):
        self.conn, self.fetcher, self.pool, self.settings = conn, fetcher, pool, settings
        self.summary, self.filters, self.totals = summary, filters, totals
        self.cap = settings.limits.max_body_bytes

    def read(self, location: str, listing: str | None = None, position: int | None = None) -> FileResult:
        try:
            source = source_for(location, self.fetcher)
        except ArchiveError as exc:
            return self._failed(location, None, str(exc))
        state = file_state(self.conn, source.location, listing, position)
        result = FileResult(source.location, state.state)
        if state.state == "done":
            result.state = "already done"
            return result
        if not store.lock_feed(self.conn, state.feed_id, LOCK_WAIT_SECONDS):
            result.state = "busy"
            self.summary.feeds_failed[source.location] = "busy: another newsflow run is reading this file"
            return result
        try:
            self.summary.feeds += 1
            for attempt in range(READ_ATTEMPTS):
                try:
                    return self._read(source, state, result)
                except ArchiveError as exc:
                    last_try = attempt == READ_ATTEMPTS - 1 or not exc.transient
                    state = file_state(self.conn, source.location)  # the last saved offset
                    if last_try:
                        return self._failed(source.location, state, str(exc), result)
                    log.warning("%s: %s; reading on from offset %s", source.location, exc, state.offset_reached)
                    time.sleep(min(30.0, 2.0**attempt))
            raise AssertionError("unreachable")
        finally:
            with self.conn.transaction():
                self.conn.execute(_UNLOCK, {"cls": store.FEED_LOCK_CLASS, "id": state.feed_id % 2_147_483_647})

    def _failed(
        self, location: str, state: FileState | None, message: str, result: FileResult | None = None
    ) -> FileResult:
        self.summary.feeds_failed[location] = message[:500]
        if state is not None:
            with self.conn.transaction():
                self.conn.execute(
                    _FAILED, {"error": message[:2000], "run_id": self.summary.run_id, "feed_id": state.feed_id}
                )
        result = result or FileResult(location, "failed")
        result.state, result.error = "failed", message[:500]
        self.totals.files.append(result)
        return result

    def _read(self, source: Source, state: FileState, result: FileResult) -> FileResult:
        fmt = state.format or detect_format(source)
        kind = "arc" if fmt.startswith("arc") else "warc"
        seen, skipped = state.records_seen, Counter(state.skipped)
        offset = state.offset_reached
        batch: list[_Entry] = []
        batch_bytes = 0
        since_checkpoint = 0
        previous_offset = -1

        def checkpoint(at: int, done: bool = False) -> None:
            with self.conn.transaction():
                self.conn.execute(
                    _CHECKPOINT,
                    {
                        "seen": seen,
                        "offset": at,
                        "skipped": json.dumps(dict(skipped)),
                        "state": "done" if done else "reading",
                        "format": fmt,
                        "run_id": self.summary.run_id,
                        "error": None,
                        "feed_id": state.feed_id,
                    },
                )

        checkpoint(offset)
        wanted = self._wanted()
        for record in records(source, fmt, offset, wanted, self.cap):
            if record.offset != previous_offset:  # a boundary: every record before it is settled once the batch is
                if len(batch) >= BATCH_ITEMS or batch_bytes >= BATCH_BYTES:
                    self._settle(batch)
                    result.loaded += len(batch)
                    batch, batch_bytes = [], 0
                    checkpoint(record.offset)
                    since_checkpoint = 0
                elif not batch and since_checkpoint >= CHECKPOINT_RECORDS:
                    checkpoint(record.offset)
                    since_checkpoint = 0
                previous_offset = record.offset
            seen += 1
            since_checkpoint += 1
            self.totals.records += 1
            result.records += 1
            entry = self._entry(record, source.location, kind, state.feed_id, skipped)
            if entry is not None:
                batch.append(entry)
                if entry.work is not None and entry.work.response is not None:
                    batch_bytes += len(entry.work.response.body)
        self._settle(batch)
        result.loaded += len(batch)
        checkpoint(max(previous_offset, offset), done=True)
        result.state = "done"
        self.totals.skipped.update(skipped - state.skipped)
        self.totals.files.append(result)
        return result

    def _wanted(self) -> Callable[[Record], bool]:
        """Whether a record's payload is needed; a record ruled out on its headers says why."""
        filters = self.filters

        def wanted(record: Record) -> bool:
            why = None
            if record.type != "response":
                why = record.type
            elif not record.uri:
                why = "bad_url"
            elif not filters.host_listed(host_of(record.uri)):
                why = "off_domain"
            elif filters.window is not None and record.date is not None and record.date >= filters.window.end:
                why = None  # captured after the window: its page may still be dated inside it
            elif filters.window is not None and record.date is not None and record.date < filters.window.start:
                why = "out_of_window"  # published no later than captured
            if why is None and record.status is not None and not (200 <= record.status < 300):
                why = "http_status"
            if why is None and record.truncated:
                return False  # quarantined, its payload is of no use
            if why is None and record.content_type.startswith(_NOT_PAGE_TYPES):
                return False  # quarantined as not_html
            if why is not None:
                record.skip = why  # counted when the record comes out of the reader, in order
                return False
            return True

        return wanted

    def _entry(
        self, record: Record | Unreadable, location: str, kind: str, feed_id: int, skipped: Counter[str]
    ) -> _Entry | None:
        """The record as a ledger entry (a work item or a quarantine), or None when skipped."""
        if isinstance(record, Unreadable):
            item = FeedItem(f"offset:{record.offset}", None, None, "unreadable archive bytes", None, None)
            entry = _Entry(item, reason="connection", message=f"{record.message} (at byte {record.offset})")
            entry.source = self._source(feed_id, item.key, kind, location, record.offset, None, None)
            return entry
        if record.skip is not None:
            skipped[record.skip] += 1
            return None
        if record.type != "response" or not record.uri:  # counted by ``wanted`` unless it never saw it
            skipped[record.type if record.type != "response" else "bad_url"] += 1
            return None
        try:
            link = canonical_url(record.uri)
        except BadURL:
            skipped["bad_url"] += 1
            return None
        key = record.record_id or f"offset:{record.offset}"
        body = record.payload
        published = None
        reason, message = None, ""
        if record.truncated:
            reason = _TRUNCATED_REASON.get(record.truncated.strip().lower(), "connection")
            message = f"the archive holds a truncated capture (WARC-Truncated: {record.truncated[:40]})"
        elif record.too_large:
            reason, message = "too_large", f"payload exceeds {self.cap} bytes"
        elif body is None or not looks_like_html(body, record.content_type):
            reason = "not_html"
            message = f"content type {record.content_type or 'unknown'} is not an HTML page"
        else:
            filters = self.filters
            if filters.language and page_language(record, body) not in (filters.language, None):
                skipped["language"] += 1
                return None
            if filters.window is not None:
                published = page_date(body)
                when = published or record.date
                if when is None or not filters.window.contains(when):
                    skipped["out_of_window" if when else "undated"] += 1
                    return None
        # The capture date stands where a feed's item date would: a page date the page states
        # wins over it, one inferred from the text yields to it (``dates.settle``).
        item = FeedItem(key, record.record_id, link, None, None, published or record.date)
        entry = _Entry(item, reason=reason, message=message)
        if reason is None:
            assert body is not None
            response = Response(
                url=record.uri, status=record.status or 200, headers={"content-type": record.content_type}, body=body
            )
            entry.work = WorkItem(feed_id, item, response=response, fetched_at=record.date or datetime.now(UTC))
        entry.source = self._source(feed_id, key, kind, location, record.offset, record.record_id, record.date)
        return entry

    @staticmethod
    def _source(
        feed_id: int, key: str, kind: str, location: str, offset: int, record_id: str | None, date: datetime | None
    ) -> dict:
        return {
            "feed_id": feed_id,
            "item_key": key,
            "kind": kind,
            "location": location,
            "record_offset": offset,
            "record_id": record_id,
            "captured_at": date,
        }

    def _settle(self, batch: list[_Entry]) -> None:
        """Every entry of ``batch`` into the ledger; those already there are left as they are."""
        if not batch:
            return
        feed_id = batch[0].source["feed_id"]
        known = store.known_items(self.conn, feed_id, [e.item.key for e in batch])
        save_item_sources(self.conn, [e.source for e in batch])
        work: list[WorkItem] = []
        for entry in batch:
            state = known.get(entry.item.key)
            if state is not None and not (state[0] == "quarantined" and state[1]):
                self.summary.unchanged += 1
                continue
            if entry.work is not None:
                work.append(entry.work)
                continue
            assert entry.reason is not None
            store.quarantine(
                self.conn, self.summary.run_id, feed_id, entry.item, entry.reason, entry.message, transient=False
            )
            self.summary.count("quarantined", entry.reason)
        if work:
            process_items(self.conn, self.fetcher, self.pool, self.settings, self.summary.run_id, work, self.summary)


# --- runs ------------------------------------------------------------------------------------

Body = Callable[[psycopg.Connection, Fetcher, ThreadPoolExecutor, RunSummary], None]


def run_archive(settings: Settings, kind: str, body: Body, trusted: Iterable[str] = ()) -> RunSummary:
    """One recorded run (``ingest.item_run``) whose ``body`` settles its items batch by batch
    through ``ingest.process_items``, so that the whole file is never in memory."""
    with item_run(settings, kind, trusted) as (conn, fetcher, pool, summary):
        body(conn, fetcher, pool, summary)
    return summary


@dataclass
class ArchiveResult:
    summary: RunSummary
    totals: ArchiveTotals

    def table(self) -> str:
        lines = [self.summary.table(), f"  {self.totals.describe()}"]
        for f in self.totals.files:
            if f.state not in ("done", "already done"):
                lines.append(f"  {f.state}: {f.location}" + (f" ({f.error})" if f.error else ""))
        return "\n".join(lines)


def prepare(settings: Settings, filters: Filters, all_domains: bool) -> Filters:
    """Migrations applied, and the domains: ``--domains`` when given, else the feeds' hosts.

    No domains at all is an error (before any run starts), not a load of the whole archive.
    """
    if filters.domains is not None or all_domains:
        with db.connect(db.database_url(settings)) as conn:
            db.upgrade(conn)
        return filters
    with db.connect(db.database_url(settings)) as conn:
        db.upgrade(conn)
        domains = feed_domains(conn)
    if not domains:
        raise ValueError("no domains to load: give --domains FILE (or --all-domains), or register feeds first")
    return Filters(domains, filters.window, filters.language)


def load_warc(
    settings: Settings,
    locations: Iterable[str],
    filters: Filters = Filters(),
    *,
    all_domains: bool = False,
    kind: str = "backfill_warc",
) -> ArchiveResult:
    """Read WARC/ARC files (paths or URLs) into the ledger; finished files are not read again."""
    paths = list(dict.fromkeys(p.strip() for p in locations if p.strip()))
    if not paths:
        raise ValueError("no WARC files given")
    chosen = prepare(settings, filters, all_domains)
    totals = ArchiveTotals()

    def body(conn: psycopg.Connection, fetcher: Fetcher, pool: ThreadPoolExecutor, summary: RunSummary) -> None:
        reader = _FileReader(conn, fetcher, pool, settings, summary, chosen, totals)
        for path in paths:
            result = reader.read(path)
            if result.state in ("already done", "busy"):
                totals.files.append(result)
        summary.message = totals.describe()

    summary = run_archive(settings, kind, body)
    return ArchiveResult(summary, totals)
