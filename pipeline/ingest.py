"""The ingest job: feeds in, articles with entities and statements out.

The stages run as a pipeline (``_Flow``): threads fetch pages ahead, taking hosts in turn
so per-host politeness does not stall the run; worker processes extract and analyse
chunks of fetched pages (``nlp.pipe`` over each chunk); this thread stores each article in
its own transaction while the workers go on with the next chunks. Every item ends in the
ledger as stored, duplicate or quarantined with a reason; one bad item or feed never stops
the others (RELIABILITY.md I1, I2). docs/performance.md has the measurements behind it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from . import db, runs, store
from .clean import clean_text
from .config import Settings
from .extract import looks_like_html
from .feeds import FeedItem
from .feedwork import parse_bounded
from .fetch import AddressGuard, Fetcher, Origin, Response, origin_of
from .pagework import Chunk, ChunkResult, PageOutcome, PageTask, page_pool
from .reasons import ItemError
from .runs import RunAborted
from .schedule import failure_interval, failure_weight, next_interval
from .urls import BadURL, fetchable_url, host_of
from .workers import WorkerFailure

log = logging.getLogger(__name__)

BATCH = 32
CHUNK = 8  # pages per worker task: spaCy batches them (nlp.pipe)
AHEAD = 3  # chunks per worker fetched ahead of the analysis
FEED_LOCK_WAIT_SECONDS = 900.0
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"

Progress = Callable[[int, int], None]


@dataclass
class RunSummary:
    run_id: int
    feeds: int = 0
    feeds_failed: dict[str, str] = field(default_factory=dict)
    seen: int = 0
    stored: int = 0
    duplicate: int = 0
    unchanged: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    analysis_failed: int = 0  # stored with their text, entity and statement extraction pending
    dropped: int = 0  # listed past a feed's item cap: counted on the feed, not read
    # seconds per stage (fetch, extract, nlp, statements, store), summed over the threads and
    # worker processes doing it: the stages overlap, so the sum exceeds the run's wall time
    stages: Counter[str] = field(default_factory=Counter)
    validators: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    status: str = "succeeded"
    message: str | None = None

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def count(self, state: str, reason: str | None = None) -> None:
        self.seen += 1
        if state == "stored":
            self.stored += 1
        elif state == "duplicate":
            self.duplicate += 1
        else:
            self.quarantined[reason or "unknown"] += 1

    def counts(self) -> dict[str, int]:
        return {
            "feeds": self.feeds,
            "seen": self.seen,
            "stored": self.stored,
            "duplicate": self.duplicate,
            "quarantined": self.quarantined_total,
            "unchanged": self.unchanged,
        }

    def table(self) -> str:
        rows = [
            ("feeds", self.feeds),
            ("feeds failed", len(self.feeds_failed)),
            ("items processed", self.seen),
            ("  stored", self.stored),
            ("    analysis pending (nlp_failed)", self.analysis_failed),
            ("  duplicate", self.duplicate),
            ("  quarantined", self.quarantined_total),
        ]
        rows += [(f"    {reason}", n) for reason, n in sorted(self.quarantined.items())]
        rows.append(("items already done", self.unchanged))
        if self.dropped:
            rows.append(("items past a feed's cap, not read", self.dropped))
        width = max(len(label) for label, _ in rows)
        lines = [f"run {self.run_id}: {self.status}"]
        lines += [f"  {label.ljust(width)}  {n:>7}" for label, n in rows]
        for url, error in self.feeds_failed.items():
            lines.append(f"  feed failed: {url} ({error})")
        return "\n".join(lines)


@dataclass
class WorkItem:
    """A feed item on its way through the stages; ``page`` or ``error`` is set by the fetch."""

    feed_id: int
    item: FeedItem
    response: Response | None = None
    fetched_at: datetime | None = None
    page: store.Page | None = None
    error: ItemError | None = None
    article_id: int | None = None  # the article stored (or matched as a duplicate) for it
    origin: Origin | None = None  # its feed's origin: the one private origin it may be fetched from
    nlp_error: str | None = None  # NLP killed its worker: the page is extracted again without it


def _log_bug(message: str, *args: object) -> None:
    """An unexpected error recorded against one item or feed: one line; the traceback with --debug."""
    exc = sys.exc_info()[1]
    log.warning(f"{message}: %s", *args, f"{type(exc).__name__}: {exc}"[:300], exc_info=log.isEnabledFor(logging.DEBUG))


def _fetch_page(fetcher: Fetcher, work: WorkItem, timeout: float) -> WorkItem:
    """The I/O half of an item (runs in a thread): fetch the page and check it is HTML."""
    assert work.item.link is not None
    try:
        response = fetcher.get(work.item.fetch_link, timeout=timeout, robots=True, trusted_origin=work.origin)
        if not looks_like_html(response.body, response.content_type):
            raise ItemError("not_html", f"content type {response.content_type or 'unknown'} is not an HTML page")
        work.response = response
        work.fetched_at = datetime.now(UTC)
    except ItemError as exc:
        work.error = exc
    except Exception as exc:  # any other crash on one page must not stop the batch
        _log_bug("unexpected failure on %s", work.item.link)
        work.error = ItemError("connection", f"{type(exc).__name__}: {exc}"[:500], transient=True)
    return work


def _worker_failure(failure: WorkerFailure) -> ItemError:
    """A killed or crashed worker's task as a quarantine reason: the stage it was in."""
    reason = "nlp_failed" if failure.stage == "nlp" else "extraction_failed"
    # A page that hung or blew the memory cap will do it again: not worth an automatic retry.
    return ItemError(reason, f"{failure.kind}: {failure.message}", transient=failure.kind in {"crashed", "error"})


def _load_feed(
    conn: psycopg.Connection,
    fetcher: Fetcher,
    settings: Settings,
    feed: store.FeedRow,
    summary: RunSummary,
    retry_after: float = 0.0,
) -> list[WorkItem]:
    """Fetch and parse one feed; return its items that still need processing.

    Whatever goes wrong with one feed is recorded against that feed (a reason, its failure
    count, in time its disabling) and the run goes on with the others; only a lost database
    connection ends the run.
    """
    try:
        return _poll_feed(conn, fetcher, settings, feed, summary, retry_after)
    except psycopg.OperationalError:
        if db.connection_lost(conn):
            raise
        _log_bug("the database refused a write for feed %s", feed.url)
        try:
            _feed_failed(conn, settings, feed, summary, ItemError("db_rejected", "the database refused a write"))
        except psycopg.Error:
            if db.connection_lost(conn):
                raise
        return []
    except Exception as exc:  # noqa: BLE001 - a bug met on one feed is that feed's failure (I2)
        _log_bug("unexpected failure on feed %s", feed.url)
        _feed_failed(conn, settings, feed, summary, ItemError("internal_error", f"{type(exc).__name__}: {exc}"))
        return []


def _feed_failed(
    conn: psycopg.Connection, settings: Settings, feed: store.FeedRow, summary: RunSummary, exc: ItemError
) -> None:
    summary.feeds_failed[feed.url] = f"{exc.reason}: {exc.message}"
    store.feed_failed(
        conn,
        feed.id,
        exc.reason,
        exc.message,
        disable_after=settings.limits.feed_disable_after,
        poll_seconds=failure_interval(
            feed.poll_interval_seconds, feed.consecutive_failures + 1, settings.poll_bounds
        ),
        weight=failure_weight(exc.reason, exc.transient),
    )


def _poll_feed(
    conn: psycopg.Connection,
    fetcher: Fetcher,
    settings: Settings,
    feed: store.FeedRow,
    summary: RunSummary,
    retry_after: float,
) -> list[WorkItem]:
    """The body of ``_load_feed``.

    Transiently quarantined items come back once ``retry_after`` seconds times their
    attempts have passed (0 for batch runs: every run retries them once).

    The run holds the feed's advisory lock from here to its end, so a second loader on the
    same feed waits for the first and then finds its items done (no doubles, no refetch).
    """
    if not store.lock_feed(conn, feed.id, FEED_LOCK_WAIT_SECONDS):
        summary.feeds_failed[feed.url] = "busy: another newsflow run kept this feed locked"
        return []
    bounds = settings.poll_bounds
    try:
        response = fetcher.get(
            feed.fetch_url,
            timeout=settings.limits.feed_timeout,
            etag=feed.etag,
            last_modified=feed.last_modified,
            accept=FEED_ACCEPT,
            trusted_origin=feed.url,
        )
        if response.not_modified:
            store.feed_fetched(
                conn,
                feed.id,
                title=None,
                site_url=None,
                etag=None,
                last_modified=None,
                warning=None,
                poll_seconds=next_interval(feed.poll_interval_seconds, 0, bounds),
                moved_to=response.moved_to,
            )
            return []
        parsed = parse_bounded(settings.limits, response.body, response.url or feed.fetch_url)
    except ItemError as exc:
        _feed_failed(conn, settings, feed, summary, exc)
        return []
    known = store.known_items(conn, feed.id, [i.key for i in parsed.items], retry_after)
    todo: list[WorkItem] = []
    done: list[str] = []
    for item in parsed.items:
        state = known.get(item.key)
        if state is not None and not (state[0] == "quarantined" and state[1]):
            done.append(item.key)
            continue
        todo.append(WorkItem(feed.id, item, origin=origin_of(feed.url)))
    store.feed_fetched(
        conn,
        feed.id,
        title=parsed.title,
        site_url=parsed.site_url,
        etag=None,  # the validators are saved once this poll's items are all processed
        last_modified=None,
        warning=parsed.warning,
        # a malformed feed is the graver warning; a feed past the item cap is only that
        warning_reason="too_many_items" if parsed.dropped and "malformed feed" not in (parsed.warning or "") else None,
        poll_seconds=next_interval(feed.poll_interval_seconds, len(todo), bounds),
        new_items=len(todo),
        moved_to=response.moved_to,
    )
    store.touch_items(conn, feed.id, done)
    summary.dropped += parsed.dropped
    if response.etag or response.last_modified:
        summary.validators[feed.id] = (response.etag, response.last_modified)
    summary.unchanged += len(done)
    return todo


def _by_host(work: Iterable[WorkItem]) -> deque[deque[WorkItem]]:
    """Items grouped by the host they are fetched from, each host's in feed order."""
    hosts: dict[str | None, deque[WorkItem]] = {}
    for w in work:
        hosts.setdefault(host_of(w.item.link) if w.item.link else None, deque()).append(w)
    return deque(hosts.values())


class _Flow:
    """Items through fetch, analysis and store as a pipeline; every item ends in the ledger.

    Fetching runs ahead in ``threads``, taking hosts in turn, so one host's politeness
    delay holds up only that host. Fetched pages go to the worker processes in chunks of
    ``CHUNK``; a chunk a worker could not finish (time or memory limit, crash) is retried
    page by page, so only the page that caused it is quarantined for it. Between results
    this thread stores articles, one transaction each, while the workers go on.

    Outcomes are written in the order items were taken up (each host's items in feed
    order), whatever order the stages finish them in: of two items with the same text the
    first listed is stored and the other is its duplicate, as in a run one item at a time.
    An item whose link an earlier item of this run is fetching waits for that one's outcome.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        fetcher: Fetcher,
        threads: ThreadPoolExecutor,
        settings: Settings,
        run_id: int,
        summary: RunSummary,
        progress: Progress | None,
        total: int,
    ):
        self.conn, self.fetcher, self.threads, self.settings = conn, fetcher, threads, settings
        self.run_id, self.summary, self.progress, self.total = run_id, summary, progress, total
        self.workers = page_pool(settings)
        self.fetched: queue.SimpleQueue[tuple[WorkItem, float]] = queue.SimpleQueue()
        self.fetching = 0  # fetches handed to the threads and not yet taken back
        self.ready: deque[WorkItem] = deque()  # fetched, waiting for a worker
        self.singles: deque[WorkItem] = deque()  # from chunks that failed: retried one page a task
        self.owner: dict[str, WorkItem] = {}  # link -> the item fetching it
        self.followers: dict[str, list[WorkItem]] = {}  # link -> items waiting for its owner
        self.seq: dict[int, int] = {}  # id(owner) -> the order it was taken up in
        self.taken = 0
        self.active = 0  # owners being fetched or analysed
        self.outcomes: dict[int, tuple[WorkItem, PageOutcome | None]] = {}  # seq -> outcome waiting for earlier ones
        self.next_seq = 0
        self.done = 0
        self.last = False  # every item has been taken up: the run's tail

    def run(self, work: list[WorkItem]) -> None:
        hosts = _by_host(work)
        limit = max(BATCH, CHUNK * self.workers.size * (AHEAD + 1))
        if work:
            for _ in range(self.workers.start()):  # fresh workers load the model while the first pages arrive
                self.workers.submit(Chunk((), self.settings.spacy_model), None)
        try:
            while hosts or self.active:
                self._admit(hosts, limit)
                self._take_fetched(0)
                self.last = not hosts
                self._dispatch()
                if self.workers.busy:
                    # short waits while a worker is idle for want of pages, so new ones reach it soon
                    self._take_results(0.02 if self.workers.idle and self.fetching else 0.2)
                else:
                    self._take_results(0)  # a task whose hand-over failed has its result already
                    if self.fetching:
                        self._take_fetched(0.2)
            assert not self.outcomes and not self.owner, "items left unsettled"
        except BaseException:
            self.workers.abandon()  # a pooled worker must not come back to the next run busy
            raise

    def _admit(self, hosts: deque[deque[WorkItem]], limit: int) -> None:
        """Take up items while the pipeline has room, one host after another in turn."""
        while hosts and self.active < limit:
            pending = hosts.popleft()
            self._start(pending.popleft())
            if pending:
                hosts.append(pending)

    def _start(self, work: WorkItem) -> None:
        link = work.item.link
        if link is None:
            work.error = ItemError("bad_url", work.item.link_error or "feed item has no link")
            self._finish(work)
            return
        if link in self.owner:
            self.followers.setdefault(link, []).append(work)
            return
        started = time.perf_counter()
        existing = store.article_for_url(self.conn, link)
        if existing is not None:
            store.mark_duplicate(self.conn, self.run_id, work.feed_id, work.item, existing)
            self.summary.count("duplicate")
            self.summary.stages["store"] += time.perf_counter() - started
            self._finish(work, recorded=True)
            return
        self.summary.stages["store"] += time.perf_counter() - started
        self.owner[link] = work
        self.seq[id(work)] = self.taken
        self.taken += 1
        self.active += 1
        if work.response is not None:  # an archive record carries its page: nothing to fetch
            self.ready.append(work)
            return
        self.fetching += 1
        self.threads.submit(self._fetch, work)

    def _fetch(self, work: WorkItem) -> None:
        """In a fetch thread."""
        started = time.perf_counter()
        try:
            _fetch_page(self.fetcher, work, self.settings.limits.page_timeout)
        finally:
            self.fetched.put((work, time.perf_counter() - started))

    def _take_fetched(self, timeout: float) -> None:
        while True:
            try:
                work, seconds = self.fetched.get(timeout=timeout) if timeout else self.fetched.get_nowait()
            except queue.Empty:
                return
            timeout = 0
            self.fetching -= 1
            self.summary.stages["fetch"] += seconds
            if work.response is None:
                self._settle(work, None)
            else:
                self.ready.append(work)

    def _dispatch(self) -> None:
        """Hand fetched pages to idle workers."""
        while self.workers.idle:
            if self.singles:
                chunk = [self.singles.popleft()]
            elif self.ready and (len(self.ready) >= CHUNK or not self.fetching or not self.workers.busy):
                size = CHUNK
                if self.last and not self.fetching:  # the run's tail: share what is left between the workers
                    size = max(1, min(CHUNK, -(-len(self.ready) // self.workers.size)))
                chunk = [self.ready.popleft() for _ in range(min(size, len(self.ready)))]
            else:
                return
            model, max_chars = self.settings.spacy_model, self.settings.limits.nlp_max_chars
            tasks = tuple(
                PageTask(w.response.body, w.item.link or "", model, max_chars, nlp_error=w.nlp_error)
                for w in chunk
                if w.response
            )
            self.workers.submit(Chunk(tasks, model), chunk)

    def _take_results(self, timeout: float) -> None:
        """Settle finished chunks; the freed workers get their next chunk before anything is stored."""
        done: list[tuple[list[WorkItem], ChunkResult]] = []
        for chunk, outcome in self.workers.poll(timeout):
            if chunk is None:  # a warm-up
                continue
            if isinstance(outcome, WorkerFailure):
                # the page the worker was on when it stopped, when it said which
                culprit = outcome.item if len(chunk) > 1 else 0
                for i, work in enumerate(chunk):
                    if i != culprit:
                        self.singles.append(work)
                    elif outcome.stage == "nlp" and work.nlp_error is None:
                        # NLP hung or blew up on this page: store it without analysis (I1)
                        work.nlp_error = f"nlp_failed: {outcome.kind}: {outcome.message}"[:500]
                        self.singles.append(work)
                    else:
                        work.error = _worker_failure(outcome)
                        self._settle(work, None)
                continue
            assert isinstance(outcome, ChunkResult)
            done.append((chunk, outcome))
        if done:
            self._take_fetched(0)
            self._dispatch()  # storing a chunk takes a while: a worker must not wait for it
        for chunk, outcome in done:
            for stage, seconds in outcome.seconds.items():
                self.summary.stages[stage] += seconds
            for work, result in zip(chunk, outcome.results, strict=True):
                self._settle(work, result)

    def _settle(self, work: WorkItem, result: PageOutcome | None) -> None:
        """``work`` is through fetch and analysis; write outcomes that are next in order."""
        self.active -= 1
        self.outcomes[self.seq.pop(id(work))] = (work, result)
        while self.next_seq in self.outcomes:
            work, result = self.outcomes.pop(self.next_seq)
            self.next_seq += 1
            if result is None:
                self._finish(work)
            else:
                self._store(work, result)

    def _store(self, work: WorkItem, result: PageOutcome) -> None:
        assert work.response is not None and work.item.link is not None
        if result.error is not None:
            work.error = result.error
            self._finish(work)
            return
        extracted, analysis = result.extracted, result.analysis
        assert extracted is not None and analysis is not None
        work.page = store.Page(
            url=work.item.link,
            html=work.response.body,
            content_type=work.response.content_type,
            fetched_at=work.fetched_at or datetime.now(UTC),
            extracted=extracted,
        )
        published = work.item.published_at or extracted.published_at
        started = time.perf_counter()
        try:
            state, work.article_id = store.store_article(
                self.conn, self.run_id, work.feed_id, work.item, work.page, analysis, published
            )
        except psycopg.Error as exc:
            if db.connection_lost(self.conn):
                raise RunAborted(f"database connection lost: {db._first_line(exc)}") from exc
            work.error = ItemError("db_rejected", f"{type(exc).__name__}: {db._first_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - a bug met on one item is that item's failure (I2)
            _log_bug("unexpected failure storing %s", work.item.link)
            work.error = ItemError("internal_error", f"{type(exc).__name__}: {exc}")
        else:
            self.summary.count(state)
            if state == "stored" and analysis.error:
                self.summary.analysis_failed += 1
        finally:
            self.summary.stages["store"] += time.perf_counter() - started
        self._finish(work, recorded=work.error is None)

    def _finish(self, work: WorkItem, *, recorded: bool = False) -> None:
        """Record ``work``'s error unless its outcome is ``recorded``; then settle its followers."""
        if not recorded:
            assert work.error is not None
            started = time.perf_counter()
            store.quarantine(
                self.conn,
                self.run_id,
                work.feed_id,
                work.item,
                work.error.reason,
                work.error.message,
                work.error.transient,
            )
            self.summary.count("quarantined", work.error.reason)
            self.summary.stages["store"] += time.perf_counter() - started
        self.done += 1
        work.response = work.page = None  # the page's bytes are stored: a long run must not keep them
        link = work.item.link
        if link is not None and self.owner.get(link) is work:
            del self.owner[link]
            for follower in self.followers.pop(link, []):
                if work.article_id is not None:
                    store.mark_duplicate(self.conn, self.run_id, follower.feed_id, follower.item, work.article_id)
                    self.summary.count("duplicate")
                    self._finish(follower, recorded=True)
                else:
                    follower.error = work.error or ItemError(
                        "extraction_failed", "the same link failed earlier in this run", transient=True
                    )
                    self._finish(follower)
        if self.progress:
            self.progress(self.done, self.total)


Collector = Callable[[psycopg.Connection, Fetcher, RunSummary], list[WorkItem]]


def process_items(
    conn: psycopg.Connection,
    fetcher: Fetcher,
    pool: ThreadPoolExecutor,
    settings: Settings,
    run_id: int,
    work: list[WorkItem],
    summary: RunSummary,
    progress: Progress | None = None,
) -> None:
    """Fetch, extract, analyse and store ``work``; every item ends in the ledger.

    The one processing path for items, whoever found them (a feed poll, a backfill).
    """
    if progress:
        progress(0, len(work))
    _Flow(conn, fetcher, pool, settings, run_id, summary, progress, len(work)).run(work)


@contextlib.contextmanager
def item_run(
    settings: Settings, kind: str, trusted_origins: Iterable[str] = ()
) -> Iterator[tuple[psycopg.Connection, Fetcher, ThreadPoolExecutor, RunSummary]]:
    """One recorded run of items: ``with item_run(...) as (conn, fetcher, pool, summary): ...``.

    Owns what every kind of item run shares (ingest, backfill, retry, archives): migrations,
    the run's lifecycle (``runs.recorded``: start, fail, reconcile, finish), the fetcher with
    its address guard (``trusted_origins``: for a run of one feed, see ``AddressGuard``) and
    the fetch threads. The body hands its items to ``process_items``, in one list or in batches.
    """
    conn = db.connect(db.database_url(settings))
    try:
        db.upgrade(conn)
        with runs.recorded(conn, kind, RunSummary) as summary:
            guard = AddressGuard()
            guard.allow(trusted_origins)
            with (
                Fetcher(settings.limits, guard) as fetcher,
                ThreadPoolExecutor(max_workers=settings.fetch_workers) as pool,
            ):
                yield conn, fetcher, pool, summary
    finally:
        conn.close()


def run_items(
    settings: Settings,
    *,
    kind: str,
    trusted_origins: Iterable[str] = (),
    collect: Collector,
    progress: Progress | None = None,
) -> RunSummary:
    """One recorded run: ``collect`` finds the items, ``process_items`` does them."""
    with item_run(settings, kind, trusted_origins) as (conn, fetcher, pool, summary):
        work = collect(conn, fetcher, summary)
        process_items(conn, fetcher, pool, settings, summary.run_id, work, summary, progress)
        # Only now may a feed answer "304 Not Modified": every item it listed is in the
        # ledger. A run that dies earlier leaves the old validators, and the rerun sees
        # the full feed again (nothing lost).
        for feed_id, (etag, last_modified) in summary.validators.items():
            store.save_validators(conn, feed_id, etag, last_modified)
    return summary


def ingest(
    settings: Settings,
    feed_urls: Iterable[str],
    *,
    progress: Progress | None = None,
    kind: str = "ingest",
) -> RunSummary:
    """Ingest the given feeds into the configured database and return the run's summary."""
    urls = list(dict.fromkeys(u.strip() for u in feed_urls if u.strip()))

    def collect(conn: psycopg.Connection, fetcher: Fetcher, summary: RunSummary) -> list[WorkItem]:
        work: list[WorkItem] = []
        for url in urls:
            summary.feeds += 1
            try:  # the operator's text is outside input too: a bad one fails alone
                feed = store.register_feed(conn, fetchable_url(url))
            except BadURL as exc:
                summary.feeds_failed[clean_text(url, 300) or "(empty)"] = f"bad_url: {exc}"
                continue
            work += _load_feed(conn, fetcher, settings, feed, summary)
        return work

    return run_items(settings, kind=kind, collect=collect, progress=progress)
