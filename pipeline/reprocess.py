"""Re-derive stored articles from their raw HTML with the current extractor and NLP rules.

When trafilatura, the spaCy model or the statement rules change, the stored text,
entities and statements are stale; the raw page bytes kept in ``articles.raw_html`` are
enough to redo them, so nothing is fetched again (RELIABILITY.md C5.34). Extraction runs
in worker processes under ingest's time and memory limits; NLP runs here on clipped text.
Each article is redone in one transaction that locks its row, updates the text columns and
replaces its mentions and statements; the raw HTML and the article's identity (id, URL)
never change.
An article that can no longer be extracted, or whose new text would duplicate another
article, is left exactly as it was and recorded as failed with a reason code.

Every run is recorded in ``ops.runs`` (kind ``reprocess``) with a row per article in
``ops.run_articles``, so its counts reconcile like an ingest run's.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from . import analyse, db, store
from . import queries as q
from .config import Settings
from .extract import EXTRACTOR_VERSION, Extracted, content_hash, extract_article
from .ingest import RunAborted, analyse_texts
from .pagework import shared_pool
from .reasons import ItemError
from .workers import WorkerFailure, WorkerPool, report_stage

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
    first_id: int = 1
    last_id: int = MAX_ID

    def __post_init__(self) -> None:
        if self.by not in DATE_COLUMNS:
            raise ValueError(f"--by must be one of {', '.join(DATE_COLUMNS)}, not {self.by!r}")
        if self.since is None and self.until is None and not self.outdated_only:
            raise ValueError("say what to reprocess: a date range (--since), or --outdated-only")

    def describe(self) -> str:
        parts = []
        if self.since or self.until:
            since = self.since.isoformat() if self.since else "-inf"
            until = self.until.isoformat() if self.until else "now"
            parts.append(f"{DATE_COLUMNS[self.by]} in [{since}, {until})")
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


def _save(conn: psycopg.Connection, run_id: int, article_id: int, ex: Extracted, analysis: analyse.Analysis) -> None:
    """Replace one article's derived columns and rows atomically."""
    with conn.transaction():
        conn.execute(q.LOCK_ARTICLE, {"id": article_id})
        conn.execute(
            q.UPDATE_REPROCESSED,
            {
                "id": article_id,
                "title": ex.title,
                "text": ex.text,
                "published_at": ex.published_at,
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
        _record(conn, run_id, article_id, None)


def extract_in_worker(task: tuple[bytes, str]) -> tuple:
    """One page's extraction, run inside a worker process; the result travels back as plain data."""
    html, url = task
    report_stage("extraction")
    try:
        return ("ok", extract_article(html, url))
    except ItemError as exc:
        return ("error", exc.reason, exc.message, exc.transient)


def extraction_pool(settings: Settings) -> WorkerPool:
    """Worker processes for re-extraction, under the same time and memory limits as ingest (I3).

    NLP then runs in this process on text already clipped to the NLP cap, as
    ``ingest.analyse_texts`` does.
    """
    return shared_pool(extract_in_worker, settings, {"extraction": settings.limits.extraction_timeout})


def _redo_batch(
    conn: psycopg.Connection, settings: Settings, run_id: int, ids: list[int], summary: ReprocessSummary
) -> None:
    rows = conn.execute(q.REPROCESS_SOURCES, {"ids": ids}).fetchall()
    failures: dict[int, ItemError] = {}
    extracted: list[tuple[int, Extracted]] = []
    outcomes = extraction_pool(settings).map([(bytes(raw_html), url) for _id, url, raw_html in rows])
    for (article_id, _url, _raw), outcome in zip(rows, outcomes, strict=True):
        if isinstance(outcome, WorkerFailure):  # hung, out of memory or crashed: the worker was replaced
            transient = outcome.kind in {"crashed", "error"}
            failures[article_id] = ItemError(
                "extraction_failed", f"{outcome.kind}: {outcome.message}"[:500], transient=transient
            )
        elif outcome[0] == "error":
            _tag, reason, message, transient = outcome
            failures[article_id] = ItemError(reason, message, transient=transient)
        else:
            extracted.append((article_id, outcome[1]))
    analyses = analyse_texts(settings, [ex for _, ex in extracted])
    for (article_id, ex), analysis in zip(extracted, analyses, strict=True):
        if isinstance(analysis, ItemError):
            failures[article_id] = analysis
            continue
        try:
            _save(conn, run_id, article_id, ex, analysis)
        except psycopg.OperationalError as exc:
            raise RunAborted(f"database connection lost: {db._first_line(exc)}") from exc
        except psycopg.errors.UniqueViolation:
            failures[article_id] = ItemError("db_rejected", "the re-extracted text duplicates another stored article")
            continue
        except psycopg.Error as exc:
            failures[article_id] = ItemError("db_rejected", f"{type(exc).__name__}: {db._first_line(exc)}")
            continue
        summary.seen += 1
        summary.reprocessed += 1
    for article_id, error in failures.items():
        with conn.transaction():
            _record(conn, run_id, article_id, error)
        summary.seen += 1
        summary.failed[error.reason] += 1


def reprocess(settings: Settings, selection: Selection, *, progress: Progress | None = None) -> ReprocessSummary:
    """Redo extraction and NLP for the selected articles from their stored raw HTML."""
    conn = db.connect(db.database_url(settings))
    try:
        db.upgrade(conn)
        run_id = store.start_run(conn, "reprocess")
        summary = ReprocessSummary(run_id=run_id, message=selection.describe())
        try:
            ids = select_ids(conn, selection)
            if progress:
                progress(0, len(ids))
            for start in range(0, len(ids), BATCH):
                _redo_batch(conn, settings, run_id, ids[start : start + BATCH], summary)
                if progress:
                    progress(min(start + BATCH, len(ids)), len(ids))
        except (RunAborted, psycopg.OperationalError) as exc:
            summary.status = "failed"
            summary.message = str(exc)
            with contextlib.suppress(psycopg.Error):
                store.finish_run(conn, run_id, status="failed", counts=summary.counts(), message=summary.message)
            raise RunAborted(summary.message) from exc
        problems = ledger_problems(conn, run_id, summary.counts())
        if problems:
            summary.status = "failed"
            summary.message = "; ".join(problems)
        store.finish_run(conn, run_id, status=summary.status, counts=summary.counts(), message=summary.message)
        return summary
    finally:
        conn.close()


def ledger_problems(conn: psycopg.Connection, run_id: int, counts: dict[str, int]) -> list[str]:
    """How a reprocess run's counts disagree with its ``ops.run_articles`` rows (empty when they agree)."""
    rows = conn.execute(q.RUN_ARTICLES_LEDGER, {"run_id": run_id}).fetchall()
    by_state: Counter[str] = Counter()
    for state, _reason, n in rows:
        by_state[state] += n
    problems = []
    if by_state["reprocessed"] != counts["stored"] or by_state["failed"] != counts["quarantined"]:
        problems.append(
            f"run {run_id}: counted {counts['stored']} reprocessed and {counts['quarantined']} failed, "
            f"ledger has {by_state['reprocessed']} and {by_state['failed']}"
        )
    if counts["seen"] != counts["stored"] + counts["quarantined"]:
        problems.append(f"run {run_id}: {counts['seen']} selected but {counts['stored'] + counts['quarantined']} ended")
    return problems
