"""The ingest job: feeds in, articles with entities and statements out.

Stages run per batch of items: fetch pages concurrently (per-host politeness in the
fetcher), extract text, run spaCy over the batch with ``nlp.pipe``, then store each article
in its own transaction. Every item ends in the ledger as stored, duplicate or quarantined
with a reason; one bad item or feed never stops the others (RELIABILITY.md I1, I2).
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from . import db, store
from .analyse import Analysis, analyse_doc, needs_nlp
from .config import Settings
from .extract import extract_article, looks_like_html
from .feeds import FeedItem, parse_feed
from .fetch import AddressGuard, Fetcher
from .nlp import clip_text, load_model
from .reasons import ItemError
from .urls import host_of

log = logging.getLogger(__name__)

BATCH = 32
FEED_POLL_SECONDS = 3600.0
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
class _Work:
    feed_id: int
    item: FeedItem
    page: store.Page | None = None
    error: ItemError | None = None


class RunAborted(RuntimeError):
    """The run cannot go on (the database went away); the ledger keeps what was done."""


def _fetch_page(fetcher: Fetcher, work: _Work, timeout: float) -> _Work:
    assert work.item.link is not None
    try:
        response = fetcher.get(work.item.link, timeout=timeout)
        if not looks_like_html(response.body, response.content_type):
            raise ItemError(
                "not_html", f"content type {response.content_type or 'unknown'} is not an HTML page"
            )
        extracted = extract_article(response.body, work.item.link)
        work.page = store.Page(
            url=work.item.link,
            html=response.body,
            content_type=response.content_type,
            fetched_at=datetime.now(UTC),
            extracted=extracted,
        )
    except ItemError as exc:
        work.error = exc
    except Exception as exc:  # any other crash on one page must not stop the batch
        log.exception("unexpected failure on %s", work.item.link)
        work.error = ItemError("extraction_failed", f"{type(exc).__name__}: {exc}"[:500], transient=True)
    return work


def _analyse(settings: Settings, pages: Sequence[_Work]) -> list[Analysis | ItemError]:
    """NLP over a batch; one bad document fails alone (C6)."""
    results: list[Analysis | ItemError] = []
    todo: list[tuple[int, str]] = []
    for i, work in enumerate(pages):
        assert work.page is not None
        skip = needs_nlp(work.page.extracted.language)
        results.append(Analysis(skipped=skip))
        if skip is None:
            todo.append((i, clip_text(work.page.extracted.text, settings.limits.nlp_max_chars)))
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
) -> list[_Work]:
    """Fetch and parse one feed; return its items that still need processing."""
    try:
        response = fetcher.get(
            feed.url,
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
                poll_seconds=FEED_POLL_SECONDS,
            )
            return []
        parsed = parse_feed(response.body, feed.url, settings.limits.max_items_per_feed)
    except ItemError as exc:
        summary.feeds_failed[feed.url] = f"{exc.reason}: {exc.message}"
        store.feed_failed(
            conn,
            feed.id,
            exc.reason,
            exc.message,
            disable_after=settings.limits.feed_disable_after,
            poll_seconds=FEED_POLL_SECONDS,
        )
        return []
    store.feed_fetched(
        conn,
        feed.id,
        title=parsed.title,
        site_url=parsed.site_url,
        etag=response.etag,
        last_modified=response.last_modified,
        warning=parsed.warning,
        poll_seconds=FEED_POLL_SECONDS,
    )
    known = store.known_items(conn, feed.id, [i.key for i in parsed.items])
    todo: list[_Work] = []
    done: list[str] = []
    for item in parsed.items:
        state = known.get(item.key)
        if state is not None and not (state[0] == "quarantined" and state[1]):
            done.append(item.key)
            continue
        todo.append(_Work(feed.id, item))
    store.touch_items(conn, feed.id, done)
    summary.unchanged += len(done)
    return todo


def _process_batch(
    conn: psycopg.Connection,
    fetcher: Fetcher,
    pool: ThreadPoolExecutor,
    settings: Settings,
    run_id: int,
    batch: list[_Work],
    summary: RunSummary,
) -> None:
    to_fetch: list[_Work] = []
    for work in batch:
        item = work.item
        if item.link is None:
            work.error = ItemError("bad_url", item.link_error or "feed item has no link")
            continue
        existing = store.article_for_url(conn, item.link)
        if existing is not None:
            store.mark_duplicate(conn, run_id, work.feed_id, item, existing)
            summary.count("duplicate")
            continue
        to_fetch.append(work)
    list(pool.map(lambda w: _fetch_page(fetcher, w, settings.limits.page_timeout), to_fetch))
    fetched = [w for w in to_fetch if w.page is not None]
    analyses = _analyse(settings, fetched)
    for work, analysis in zip(fetched, analyses, strict=True):
        if isinstance(analysis, ItemError):
            work.error = analysis
            continue
        assert work.page is not None
        published = work.item.published_at or work.page.extracted.published_at
        try:
            state, _ = store.store_article(
                conn, run_id, work.feed_id, work.item, work.page, analysis, published
            )
        except psycopg.OperationalError as exc:
            raise RunAborted(f"database connection lost: {db._first_line(exc)}") from exc
        except psycopg.Error as exc:
            work.error = ItemError("db_rejected", f"{type(exc).__name__}: {db._first_line(exc)}")
            continue
        summary.count(state)
    for work in batch:
        if work.error is not None:
            store.quarantine(
                conn,
                run_id,
                work.feed_id,
                work.item,
                work.error.reason,
                work.error.message,
                work.error.transient,
            )
            summary.count("quarantined", work.error.reason)


def ingest(
    settings: Settings,
    feed_urls: Iterable[str],
    *,
    progress: Progress | None = None,
    kind: str = "ingest",
) -> RunSummary:
    """Ingest the given feeds into the configured database and return the run's summary."""
    urls = list(dict.fromkeys(u.strip() for u in feed_urls if u.strip()))
    conn = db.connect(db.database_url(settings))
    try:
        db.upgrade(conn)
        run_id = store.start_run(conn, kind)
        summary = RunSummary(run_id=run_id)
        guard = AddressGuard()
        guard.allow(host_of(u) for u in urls)
        try:
            with (
                Fetcher(settings.limits, guard) as fetcher,
                ThreadPoolExecutor(max_workers=settings.fetch_workers) as pool,
            ):
                work: list[_Work] = []
                for url in urls:
                    feed = store.register_feed(conn, url)
                    summary.feeds += 1
                    work += _load_feed(conn, fetcher, settings, feed, summary)
                total = len(work)
                if progress:
                    progress(0, total)
                for start in range(0, total, BATCH):
                    _process_batch(
                        conn, fetcher, pool, settings, run_id, work[start : start + BATCH], summary
                    )
                    if progress:
                        progress(min(start + BATCH, total), total)
        except (RunAborted, psycopg.OperationalError) as exc:
            summary.status = "failed"
            summary.message = str(exc)
            with contextlib.suppress(psycopg.Error):
                store.finish_run(
                    conn, run_id, status="failed", counts=summary.counts(), message=summary.message
                )
            raise RunAborted(summary.message) from exc
        _reconcile(conn, summary)
        store.finish_run(
            conn, run_id, status=summary.status, counts=summary.counts(), message=summary.message
        )
        return summary
    finally:
        conn.close()


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
