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
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from . import db, store
from .analyse import Analysis, analyse_doc, needs_nlp
from .config import Settings
from .extract import Extracted, looks_like_html
from .feeds import FeedItem, parse_feed
from .fetch import AddressGuard, Fetcher, Response
from .nlp import clip_text, load_model
from .pagework import Chunk, ChunkResult, PageTask, page_pool
from .reasons import ItemError
from .schedule import failure_interval, failure_weight, next_interval
from .urls import host_of
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
            ("  duplicate", self.duplicate),
            ("  quarantined", self.quarantined_total),
        ]
        rows += [(f"    {reason}", n) for reason, n in sorted(self.quarantined.items())]
        rows.append(("items already done", self.unchanged))
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


class RunAborted(RuntimeError):
    """The run cannot go on (the database went away); the ledger keeps what was done."""


def _fetch_page(fetcher: Fetcher, work: WorkItem, timeout: float) -> WorkItem:
    """The I/O half of an item (runs in a thread): fetch the page and check it is HTML."""
    assert work.item.link is not None
    try:
        response = fetcher.get(work.item.link, timeout=timeout, robots=True)
        if not looks_like_html(response.body, response.content_type):
            raise ItemError("not_html", f"content type {response.content_type or 'unknown'} is not an HTML page")
        work.response = response
        work.fetched_at = datetime.now(UTC)
    except ItemError as exc:
        work.error = exc
    except Exception as exc:  # any other crash on one page must not stop the batch
        log.exception("unexpected failure on %s", work.item.link)
        work.error = ItemError("connection", f"{type(exc).__name__}: {exc}"[:500], transient=True)
    return work


def _worker_failure(failure: WorkerFailure) -> ItemError:
    """A killed or crashed worker's task as a quarantine reason: the stage it was in."""
    reason = "nlp_failed" if failure.stage == "nlp" else "extraction_failed"
    # A page that hung or blew the memory cap will do it again: not worth an automatic retry.
    return ItemError(reason, f"{failure.kind}: {failure.message}", transient=failure.kind in {"crashed", "error"})


def analyse_texts(settings: Settings, texts: Sequence[Extracted]) -> list[Analysis | ItemError]:
    """NLP over a batch of extracted articles; one bad document fails alone (C6).

    Shared by ingest and reprocessing so both stamp the same versions on what they store.
    """
    results: list[Analysis | ItemError] = []
    todo: list[tuple[int, str]] = []
    for i, extracted in enumerate(texts):
        skip = needs_nlp(extracted.language)
        results.append(Analysis(skipped=skip))
        if skip is None:
            todo.append((i, clip_text(extracted.text, settings.limits.nlp_max_chars)))
    if not todo:
        return results
    try:
        nlp = load_model(settings.spacy_model)
    except Exception as exc:
        error = ItemError("nlp_failed", str(exc), transient=True)
        return [error if isinstance(r, Analysis) and r.skipped is None else r for r in results]
    try:
        docs = list(nlp.pipe([text for _, text in todo], batch_size=16))
    except Exception:
        docs = []
        for _, text in todo:
            try:
                docs.append(nlp(text))
            except Exception as exc:  # noqa: BLE001 - recorded as the item's reason
                docs.append(ItemError("nlp_failed", f"{type(exc).__name__}: {exc}"[:500], transient=True))
    for (i, _text), doc in zip(todo, docs, strict=True):
        if isinstance(doc, ItemError):
            results[i] = doc
            continue
        try:
            results[i] = analyse_doc(doc)
        except Exception as exc:
            log.exception("statement/entity extraction failed")
            results[i] = ItemError("nlp_failed", f"{type(exc).__name__}: {exc}"[:500], transient=True)
    return results


def _load_feed(
    conn: psycopg.Connection,
    fetcher: Fetcher,
    settings: Settings,
    feed: store.FeedRow,
    summary: RunSummary,
    retry_after: float = 0.0,
) -> list[WorkItem]:
    """Fetch and parse one feed; return its items that still need processing.

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
        parsed = parse_feed(response.body, feed.fetch_url, settings.limits.max_items_per_feed)
    except ItemError as exc:
        summary.feeds_failed[feed.url] = f"{exc.reason}: {exc.message}"
        store.feed_failed(
            conn,
            feed.id,
            exc.reason,
            exc.message,
            disable_after=settings.limits.feed_disable_after,
            poll_seconds=failure_interval(feed.poll_interval_seconds, feed.consecutive_failures + 1, bounds),
            weight=failure_weight(exc.reason, exc.transient),
        )
        return []
    known = store.known_items(conn, feed.id, [i.key for i in parsed.items], retry_after)
    todo: list[WorkItem] = []
    done: list[str] = []
    for item in parsed.items:
        state = known.get(item.key)
        if state is not None and not (state[0] == "quarantined" and state[1]):
            done.append(item.key)
            continue
        todo.append(WorkItem(feed.id, item))
    store.feed_fetched(
        conn,
        feed.id,
        title=parsed.title,
        site_url=parsed.site_url,
        etag=None,  # the validators are saved once this poll's items are all processed
        last_modified=None,
        warning=parsed.warning,
        poll_seconds=next_interval(feed.poll_interval_seconds, len(todo), bounds),
        new_items=len(todo),
        moved_to=response.moved_to,
    )
    store.touch_items(conn, feed.id, done)
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
        self.outcomes: dict[int, tuple[WorkItem, tuple | None]] = {}  # seq -> outcome waiting for earlier ones
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
            tasks = tuple(PageTask(w.response.body, w.item.link or "", model, max_chars) for w in chunk if w.response)
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
                    if i == culprit:
                        work.error = _worker_failure(outcome)
                        self._settle(work, None)
                    else:
                        self.singles.append(work)
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

    def _settle(self, work: WorkItem, result: tuple | None) -> None:
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

    def _store(self, work: WorkItem, result: tuple) -> None:
        assert work.response is not None and work.item.link is not None
        if result[0] == "error":
            _tag, reason, message, transient = result
            work.error = ItemError(reason, message, transient=transient)
            self._finish(work)
            return
        _tag, extracted, analysis = result
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
        except psycopg.OperationalError as exc:
            raise RunAborted(f"database connection lost: {db._first_line(exc)}") from exc
        except psycopg.Error as exc:
            work.error = ItemError("db_rejected", f"{type(exc).__name__}: {db._first_line(exc)}")
        else:
            self.summary.count(state)
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


def run_items(
    settings: Settings,
    *,
    kind: str,
    allowed_hosts: Iterable[str],
    collect: Collector,
    progress: Progress | None = None,
) -> RunSummary:
    """One recorded run: ``collect`` finds the items, ``process_items`` does them.

    Owns what every kind of run shares: migrations, the ``ops.runs`` row, the fetcher with
    its address guard (``allowed_hosts`` are the operator's feeds), the worker pool, a clean
    failure when the database goes away, and the ledger reconciliation at the end.
    """
    conn = db.connect(db.database_url(settings))
    try:
        db.upgrade(conn)
        run_id = store.start_run(conn, kind)
        summary = RunSummary(run_id=run_id)
        guard = AddressGuard()
        guard.allow(allowed_hosts)
        try:
            with (
                Fetcher(settings.limits, guard) as fetcher,
                ThreadPoolExecutor(max_workers=settings.fetch_workers) as pool,
            ):
                work = collect(conn, fetcher, summary)
                process_items(conn, fetcher, pool, settings, run_id, work, summary, progress)
                # Only now may a feed answer "304 Not Modified": every item it listed is in the
                # ledger. A run that dies earlier leaves the old validators, and the rerun sees
                # the full feed again (nothing lost).
                for feed_id, (etag, last_modified) in summary.validators.items():
                    store.save_validators(conn, feed_id, etag, last_modified)
        except (RunAborted, psycopg.OperationalError) as exc:
            summary.status = "failed"
            summary.message = str(exc)
            with contextlib.suppress(psycopg.Error):
                store.finish_run(conn, run_id, status="failed", counts=summary.counts(), message=summary.message)
            raise RunAborted(summary.message) from exc
        _reconcile(conn, summary)
        store.finish_run(conn, run_id, status=summary.status, counts=summary.counts(), message=summary.message)
        return summary
    finally:
        conn.close()


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
            feed = store.register_feed(conn, url)
            summary.feeds += 1
            work += _load_feed(conn, fetcher, settings, feed, summary)
        return work

    return run_items(settings, kind=kind, allowed_hosts=[host_of(u) for u in urls], collect=collect, progress=progress)


def _reconcile(conn: psycopg.Connection, summary: RunSummary) -> None:
    """Check the run's counts against what the ledger recorded for it (C5.33)."""
    ledger = store.run_ledger(conn, summary.run_id)
    by_state = Counter()
    for (state, _reason), n in ledger.items():
        by_state[state] += n
    expected = {
        "stored": summary.stored,
        "duplicate": summary.duplicate,
        "quarantined": summary.quarantined_total,
    }
    if dict(by_state) != {k: v for k, v in expected.items() if v}:
        summary.status = "failed"
        summary.message = f"ledger does not reconcile: counted {expected}, ledger has {dict(by_state)}"
