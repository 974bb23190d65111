"""Re-derive stored articles from their raw HTML with the current extractor and NLP rules.

When trafilatura, the spaCy model or the statement rules change, the stored text,
entities and statements are stale; the raw page bytes kept in ``articles.raw_html`` are
enough to redo them, so nothing is fetched again (RELIABILITY.md C5.34). Extraction and NLP
run in the page workers, the same path and the same time and memory limits as ingest.
Each article is redone in one transaction that locks its row, updates the text columns and
replaces its mentions and statements; the raw HTML and the article's identity (id, URL)
never change.
An article that can no longer be extracted, or whose new text would duplicate another
article, is left exactly as it was and recorded as failed with a reason code.

Every run is recorded in ``ops.runs`` (kind ``reprocess``) with a row per article in
``ops.run_articles``, so its counts reconcile like an ingest run's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from . import analyse, dates, db, runs, store
from . import queries as q
from .config import Settings
from .extract import EXTRACTOR_VERSION, Extracted, content_hash
from .pagework import PageTask, page_pool
from .reasons import ItemError
from .runs import RunAborted
from .urls import host_of
from .workers import WorkerFailure

log = logging.getLogger(__name__)

BATCH = 16  # raw pages held in memory at once (each up to the body cap)
DATE_COLUMNS = {"published": "published_at", "fetched": "fetched_at"}
MAX_ID = 2**63 - 1

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Selection:
    """Which stored articles to redo.

    ``since``/``until`` bound ``published_at`` or ``fetched_at`` (``by``), half-open;
    ``outdated_only`` keeps those whose extractor or NLP version is not the current one;
    ``first_id``/``last_id`` cut the selection into chunks for parallel workers.
    """

    since: datetime | None = None
    until: datetime | None = None
    by: str = "published"
    outdated_only: bool = False
    analysis_failed_only: bool = False  # stored articles whose NLP failed (``newsflow retry``)
    first_id: int = 1
    last_id: int = MAX_ID

    def __post_init__(self) -> None:
        if self.by not in DATE_COLUMNS:
            raise ValueError(f"--by must be one of {', '.join(DATE_COLUMNS)}, not {self.by!r}")
        if self.since is None and self.until is None and not (self.outdated_only or self.analysis_failed_only):
            raise ValueError("say what to reprocess: a date range (--since), or --outdated-only")

    def describe(self) -> str:
        parts = []
        if self.since or self.until:
            since = self.since.isoformat() if self.since else "-inf"
            until = self.until.isoformat() if self.until else "now"
            parts.append(f"{DATE_COLUMNS[self.by]} in [{since}, {until})")
        if self.analysis_failed_only:
            parts.append("analysis failed (nlp_failed)")
        if self.outdated_only:
            parts.append(f"outdated (current: {EXTRACTOR_VERSION}, {analyse.NLP_VERSION})")
        if self.first_id > 1 or self.last_id < MAX_ID:
            parts.append(f"ids {self.first_id}..{self.last_id}")
        return "reprocess " + ", ".join(parts)


@dataclass
class ReprocessSummary:
    run_id: int
    seen: int = 0
    reprocessed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    status: str = "succeeded"
    message: str | None = None

    def counts(self) -> dict[str, int]:
        """The ``ops.runs`` columns: stored means reprocessed, quarantined means failed."""
        return {
            "feeds": 0,
            "seen": self.seen,
            "stored": self.reprocessed,
            "duplicate": 0,
            "quarantined": sum(self.failed.values()),
            "unchanged": 0,
        }

    def table(self) -> str:
        lines = [f"run {self.run_id}: {self.status}", f"  articles selected  {self.seen:>7}"]
        lines.append(f"    reprocessed      {self.reprocessed:>7}")
        lines.append(f"    failed           {sum(self.failed.values()):>7}")
        lines += [f"      {reason:<14} {n:>7}" for reason, n in sorted(self.failed.items())]
        if self.message:
            lines.append(f"  {self.message}")
        return "\n".join(lines)


def select_ids(conn: psycopg.Connection, selection: Selection) -> list[int]:
    query = sql.SQL(q.REPROCESS_IDS).format(date_column=sql.Identifier(DATE_COLUMNS[selection.by]))
    rows = conn.execute(
        query,
        {
            "since": selection.since,
            "until": selection.until,
            "outdated_only": selection.outdated_only,
            "analysis_failed_only": selection.analysis_failed_only,
            "extractor_version": EXTRACTOR_VERSION,
            "nlp_version": analyse.NLP_VERSION,
            "first_id": selection.first_id,
            "last_id": selection.last_id,
        },
    ).fetchall()
    return [row[0] for row in rows]


def plan_chunks(
    conn: psycopg.Connection, selection: Selection, *, chunk_size: int = 500, max_chunks: int = 256
) -> list[tuple[int, int]]:
    """Cut the selection into at most ``max_chunks`` id ranges of about ``chunk_size`` articles.

    Small values for Airflow to map over (never the ids themselves); each chunk applies the
    same selection again, so a retried chunk in outdated-only mode skips what it finished.
    """
    ids = select_ids(conn, selection)
    if not ids:
        return []
    size = max(chunk_size, -(-len(ids) // max_chunks))
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def _record(conn: psycopg.Connection, run_id: int, article_id: int, error: ItemError | None) -> None:
    conn.execute(
        q.INSERT_RUN_ARTICLE,
        {
            "run_id": run_id,
            "article_id": article_id,
            "state": "failed" if error else "reprocessed",
            "reason": error.reason if error else None,
            "message": error.message[:2000] if error else None,
        },
    )


def _save(
    conn: psycopg.Connection,
    run_id: int,
    source: tuple[int, str, object, datetime | None],
    ex: Extracted,
    analysis: analyse.Analysis,
) -> None:
    """Replace one article's derived columns and rows atomically, as ``store.store_article``
    derives them: the host's boilerplate lines out, the page's date settled against the
    feed's (kept from the first store), the authors list."""
    article_id, url, _raw, feed_published_at = source
    ex, analysis = store.host_boilerplate(conn, host_of(url), ex, analysis)
    settled, date_source = dates.settle(ex.published_at, ex.published_at_source, feed_published_at)
    with conn.transaction():
        conn.execute(q.LOCK_ARTICLE, {"id": article_id})
        conn.execute(
            q.UPDATE_REPROCESSED,
            {
                "id": article_id,
                "title": ex.title,
                "text": ex.text,
                "published_at": settled,
                "page_published_at": ex.published_at,
                "published_at_source": date_source if settled is not None else None,
                "author": ex.author,
                "language": ex.language,
                "site_name": ex.site_name,
                "description": ex.description,
                "content_hash": content_hash(ex.text),
                "word_count": len(ex.text.split()),
                "extractor_version": EXTRACTOR_VERSION,
                "nlp_version": None if analysis.skipped else analysis.version,
                "nlp_skipped": analysis.skipped,
            },
        )
        store.write_analysis(conn, article_id, analysis)
        store.write_authors(conn, article_id, ex.authors)
        conn.execute(q.CLEAR_ANALYSIS_PENDING, {"article_id": article_id})
        _record(conn, run_id, article_id, None)


def _redo_batch(
    conn: psycopg.Connection, settings: Settings, run_id: int, ids: list[int], summary: ReprocessSummary
) -> None:
    """Extract and analyse a batch again in the page workers, under ingest's limits (I3)."""
    rows = conn.execute(q.REPROCESS_SOURCES, {"ids": ids}).fetchall()
    model, max_chars = settings.spacy_model, settings.limits.nlp_max_chars
    outcomes = page_pool(settings).map([PageTask(bytes(raw), url, model, max_chars) for _id, url, raw, _ in rows])
    for source, outcome in zip(rows, outcomes, strict=True):
        article_id = source[0]
        error: ItemError | None
        if isinstance(outcome, WorkerFailure):  # hung, out of memory or crashed: the worker was replaced
            reason = "nlp_failed" if outcome.stage == "nlp" else "extraction_failed"
            transient = outcome.kind in {"crashed", "error"}
            error = ItemError(reason, f"{outcome.kind}: {outcome.message}", transient=transient)
        elif outcome.error is not None:
            error = outcome.error
        elif outcome.analysis is not None and outcome.analysis.error:
            error = ItemError("nlp_failed", outcome.analysis.error)  # the article stays as it was
        else:
            assert outcome.extracted is not None and outcome.analysis is not None
            error = _saved(conn, run_id, source, outcome.extracted, outcome.analysis)
        summary.seen += 1
        if error is None:
            summary.reprocessed += 1
            continue
        with conn.transaction():
            _record(conn, run_id, article_id, error)
        summary.failed[error.reason] += 1


def _saved(
    conn: psycopg.Connection, run_id: int, source: tuple, ex: Extracted, analysis: analyse.Analysis
) -> ItemError | None:
    """Save one article's new derivation; the reason when the database refuses it."""
    try:
        _save(conn, run_id, source, ex, analysis)
    except psycopg.errors.UniqueViolation:
        return ItemError("db_rejected", "the re-extracted text duplicates another stored article")
    except psycopg.Error as exc:
        if db.connection_lost(conn):
            raise RunAborted(f"database connection lost: {db._first_line(exc)}") from exc
        return ItemError("db_rejected", f"{type(exc).__name__}: {db._first_line(exc)}")
    return None


def reprocess(settings: Settings, selection: Selection, *, progress: Progress | None = None) -> ReprocessSummary:
    """Redo extraction and NLP for the selected articles from their stored raw HTML."""
    conn = db.connect(db.database_url(settings))
    try:
        db.upgrade(conn)
        with runs.recorded(
            conn, "reprocess", lambda run_id: ReprocessSummary(run_id=run_id, message=selection.describe())
        ) as summary:
            ids = select_ids(conn, selection)
            if progress:
                progress(0, len(ids))
            for start in range(0, len(ids), BATCH):
                _redo_batch(conn, settings, summary.run_id, ids[start : start + BATCH], summary)
                if progress:
                    progress(min(start + BATCH, len(ids)), len(ids))
        return summary
    finally:
        conn.close()
