"""Continuous ingestion: poll feeds when they are due and stream new items through.

`newsflow run` keeps two threads, each with its own database connection:

* the **poller** takes the feeds whose adaptive ``next_poll_at`` has come, fetches them
  and puts their new items on a bounded queue (a full queue blocks it: back-pressure);
* the **processor** takes items off the queue in small batches and runs them through the
  same path as a batch ingest (fetch, extract and NLP in worker processes, store).

A feed's HTTP validators are saved only when every item its poll queued is in the ledger,
so stopping (SIGINT/SIGTERM) or crashing never hides unprocessed items behind a
"304 Not Modified": on restart they are seen again and processed, and what was stored is
recognised, so nothing is lost or doubled. Stored articles are announced on the
``newsflow_articles`` channel (see ``store.notify_stored``), which `newsflow tail` follows.
"""

from __future__ import annotations

import json
import logging
import queue
import select
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import psycopg

from . import db, runs, store
from . import queries as q
from .clean import clean_text
from .config import Settings
from .fetch import AddressGuard, Fetcher
from .ingest import BATCH, RunSummary, WorkItem, _load_feed, process_items
from .urls import BadURL, fetchable_url

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
SUMMARY_EVERY = 10.0
IDLE_SLEEP_MAX = 5.0
RETRY_AFTER_SECONDS = 300.0  # a transient failure is retried after 5 min, 10 min, ... not at every poll


@dataclass
class StreamStats:
    """What `newsflow run` prints while it runs."""

    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    polls: int = 0
    lag_median: float | None = None
    lag_p95: float | None = None
    stored_with_date: int = 0

    def line(self, summary: RunSummary, queued: int) -> str:
        minutes = max((datetime.now(UTC) - self.started).total_seconds() / 60, 1e-9)
        quarantine = ", ".join(f"{r} {n}" for r, n in sorted(summary.quarantined.items())) or "none"
        lag = (
            f"lag p50 {self.lag_median:.0f} s, p95 {self.lag_p95:.0f} s"
            if self.lag_median is not None and self.lag_p95 is not None
            else "lag n/a"
        )
        return (
            f"[{datetime.now(UTC):%H:%M:%S}] polls {self.polls} | stored {summary.stored} "
            f"({summary.stored / minutes:.1f}/min), duplicate {summary.duplicate}, "
            f"quarantined {summary.quarantined_total} ({quarantine}) | {lag} | queued {queued}"
        )


class Stream:
    """One long-running streaming run; ``stop()`` (or a signal) ends it cleanly."""

    def __init__(
        self,
        settings: Settings,
        feed_urls: Iterable[str] = (),
        *,
        out: Callable[[str], None] = print,
        summary_every: float = SUMMARY_EVERY,
    ):
        self.settings = settings
        self.feed_urls = list(dict.fromkeys(u.strip() for u in feed_urls if u.strip()))
        self.out = out
        self.summary_every = summary_every
        self.queue: queue.Queue[WorkItem] = queue.Queue(maxsize=QUEUE_SIZE)
        self.stopping = threading.Event()
        self.pending: Counter[int] = Counter()  # feed id -> items queued and not yet stored
        self.validators: dict[int, tuple[str | None, str | None]] = {}
        self.lock = threading.Lock()
        self.stats = StreamStats()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self.stopping.set()

    def run(self, duration: float | None = None) -> RunSummary:
        url = db.database_url(self.settings)
        poll_conn = db.connect(url)
        work_conn = db.connect(url)
        try:
            db.upgrade(poll_conn)
            for feed_url in self.feed_urls:
                try:  # the operator's text is outside input too: a bad one is reported, the others run
                    store.register_feed(poll_conn, fetchable_url(feed_url))
                except BadURL as exc:
                    self.out(f"feed skipped: {clean_text(feed_url, 300)!r}: {exc}")
            with runs.recorded(work_conn, "stream", RunSummary) as summary:
                self._run(poll_conn, work_conn, summary, duration)
            return summary
        finally:
            poll_conn.close()
            work_conn.close()

    def _run(
        self,
        poll_conn: psycopg.Connection,
        work_conn: psycopg.Connection,
        summary: RunSummary,
        duration: float | None,
    ) -> None:
        """The body of a run: poller thread, processing loop, clean stop."""
        guard = AddressGuard()
        deadline = time.monotonic() + duration if duration else None
        with (
            Fetcher(self.settings.limits, guard) as fetcher,
            ThreadPoolExecutor(max_workers=self.settings.fetch_workers) as pool,
        ):
            poller = threading.Thread(
                target=self._guard, args=(self._poll, poll_conn, fetcher, summary), name="poller", daemon=True
            )
            poller.start()
            last_line = time.monotonic()
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop()
                if self.error is not None:
                    self.stop()
                if self.stopping.is_set():
                    break
                batch = self._take_batch()
                if batch:
                    process_items(work_conn, fetcher, pool, self.settings, summary.run_id, batch, summary)
                    self._done(work_conn, batch)
                if time.monotonic() - last_line >= self.summary_every:
                    self._report(work_conn, summary)
                    last_line = time.monotonic()
            poller.join(timeout=self.settings.limits.feed_timeout + 5)
        released = self.queue.qsize()
        self._report(work_conn, summary)
        if released:
            self.out(f"released {released} queued items; they are processed on the next start")
        if self.error is not None:
            raise self.error

    def _guard(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which stops the run
            self.error = exc
            self.stop()

    def _poll(self, conn: psycopg.Connection, fetcher: Fetcher, summary: RunSummary) -> None:
        while not self.stopping.is_set():
            due = [store.FeedRow(*row) for row in conn.execute(q.DUE_FEEDS).fetchall()]
            for feed in due:
                if self.stopping.is_set():
                    return
                with self.lock:
                    busy = self.pending[feed.id] > 0
                if busy:
                    continue  # its last poll's items are still on their way
                items = _load_feed(conn, fetcher, self.settings, feed, summary, retry_after=RETRY_AFTER_SECONDS)
                self.stats.polls += 1
                found = summary.validators.pop(feed.id, None)
                if not items:
                    if found:
                        store.save_validators(conn, feed.id, *found)
                    continue
                with self.lock:
                    self.pending[feed.id] += len(items)
                    if found:
                        self.validators[feed.id] = found
                for item in items:
                    while not self.stopping.is_set():
                        try:
                            self.queue.put(item, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    else:
                        return
            row = conn.execute(q.NEXT_DUE).fetchone()
            next_due = row[0] if row else None
            wait = IDLE_SLEEP_MAX
            if next_due is not None:
                wait = min(IDLE_SLEEP_MAX, max(0.2, (next_due - datetime.now(UTC)).total_seconds()))
            self.stopping.wait(wait)

    def _take_batch(self) -> list[WorkItem]:
        try:
            first = self.queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _done(self, conn: psycopg.Connection, batch: list[WorkItem]) -> None:
        finished: list[tuple[int, tuple[str | None, str | None]]] = []
        with self.lock:
            for work in batch:
                self.pending[work.feed_id] -= 1
                if self.pending[work.feed_id] <= 0:
                    del self.pending[work.feed_id]
                    found = self.validators.pop(work.feed_id, None)
                    if found:
                        finished.append((work.feed_id, found))
        for feed_id, (etag, last_modified) in finished:
            store.save_validators(conn, feed_id, etag, last_modified)

    def _report(self, conn: psycopg.Connection, summary: RunSummary) -> None:
        row = conn.execute(q.STORED_SINCE, {"since": self.stats.started}).fetchone()
        if row:
            self.stats.stored_with_date, self.stats.lag_median, self.stats.lag_p95 = row
        self.out(self.stats.line(summary, self.queue.qsize()))


def run_stream(
    settings: Settings,
    feed_urls: Iterable[str] = (),
    *,
    poll_min: float | None = None,
    poll_max: float | None = None,
    duration: float | None = None,
    out: Callable[[str], None] = print,
    stream: Stream | None = None,
) -> RunSummary:
    """Run the stream until stopped (or for ``duration`` seconds) and return its summary."""
    if poll_min is not None or poll_max is not None:
        settings = replace(
            settings,
            poll_min_seconds=poll_min if poll_min is not None else settings.poll_min_seconds,
            poll_max_seconds=poll_max if poll_max is not None else settings.poll_max_seconds,
        )
    stream = stream or Stream(settings, feed_urls, out=out)
    stream.settings = settings
    return stream.run(duration)


def tail(
    settings: Settings,
    *,
    speaker: str | None = None,
    entity: str | None = None,
    limit: int | None = None,
    timeout: float | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Print statements as their articles are stored; return how many were printed.

    Any role that may connect can send a notification on the channel (the NOTIFY statement
    needs no privilege), so a payload that is not what ``store.notify_stored`` sends is logged
    and ignored, and tail goes on with the next one.
    """

    def announced_statements(payload: str) -> list[int]:
        try:
            message = json.loads(payload)
        except (ValueError, RecursionError):
            message = None
        if isinstance(message, dict):
            article_id, feed_id = message.get("article_id"), message.get("feed_id")
            ids = message.get("statement_ids")
            if (
                is_id(article_id)
                and (feed_id is None or is_id(feed_id))
                and isinstance(ids, list)
                and all(is_id(i) for i in ids)
            ):
                return ids
        log.warning("tail: ignored a malformed notification on %s: %.100r", store.NOTIFY_CHANNEL, payload)
        return []

    def is_id(value: object) -> bool:  # a bigint primary key; bool is an int subclass
        return type(value) is int and 0 < value < 2**63

    conn = db.connect(db.database_url(settings))
    printed = 0
    deadline = time.monotonic() + timeout if timeout else None
    try:
        conn.execute(f"LISTEN {store.NOTIFY_CHANNEL}")
        while limit is None or printed < limit:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            if not select.select([conn.fileno()], [], [], min(remaining or 1.0, 1.0))[0]:
                continue
            # Drain first: the notifies() generator holds the connection until it ends.
            payloads = [note.payload for note in conn.notifies(timeout=0, stop_after=100)]
            for payload in payloads:
                ids = announced_statements(payload)
                if not ids:
                    continue
                rows = conn.execute(q.TAIL_STATEMENTS, {"ids": ids, "speaker": speaker, "entity": entity}).fetchall()
                for _sid, article_id, title, who, kind, cue, quote in rows:
                    text = " ".join(quote.split())
                    out(f"[{article_id}] {who or '(unknown)'} ({kind}, {cue or '-'}): {text[:200]}  — {title}")
                    printed += 1
                    if limit is not None and printed >= limit:
                        return printed
    finally:
        conn.close()
    return printed
