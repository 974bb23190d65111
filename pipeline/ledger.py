"""The item ledger seen from the operator's side: status tables and retries.

``status_report`` answers "what happened lately": recent runs, failing feeds, quarantine
counts by reason. ``retry`` sends quarantined items back through the one processing path
(``ingest.process_items``) as a recorded run of kind ``retry``; ``retry_analyses`` completes
the articles stored with their analysis pending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from . import db, store
from . import queries as q
from .config import Settings
from .feeds import FeedItem
from .fetch import Fetcher, origin_of
from .ingest import FEED_LOCK_WAIT_SECONDS, RunSummary, WorkItem, run_items
from .reasons import REASONS

if TYPE_CHECKING:
    from .reprocess import ReprocessSummary


def _table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _short(value: object, width: int = 60) -> object:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def status_report(conn: psycopg.Connection, runs: int = 10) -> str:
    """Recent runs, failing feeds and quarantine counts by reason, as terminal tables."""
    run_rows = [
        [
            r[0],
            r[1],
            r[2],
            r[3].strftime("%Y-%m-%d %H:%M:%S") if r[3] else None,
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            _short(r[11], 50),
        ]
        for r in conn.execute(q.RECENT_RUNS, {"limit": runs})
    ]
    feeds = [
        [_short(r[0], 50), r[1], r[2], r[3], _short(r[4], 50), r[5].strftime("%Y-%m-%d %H:%M") if r[5] else "never"]
        for r in conn.execute(q.FAILING_FEEDS)
    ]
    quarantine = [
        [reason, "yes" if transient else "no", n, REASONS.get(reason, "")]
        for reason, transient, n in conn.execute(q.QUARANTINE_BY_REASON)
    ]
    parts = [
        "recent runs",
        _table(
            ["run", "kind", "status", "started", "feeds", "seen", "stored", "dup", "quar", "done", "message"], run_rows
        )
        if run_rows
        else "  no runs yet",
        "",
        "failing feeds",
        _table(["feed", "status", "failures", "reason", "last error", "last success"], feeds) if feeds else "  none",
        "",
        "quarantined items by reason",
        _table(["reason", "retried", "items", "meaning"], quarantine) if quarantine else "  none",
    ]
    return "\n".join(parts)


def retry(
    settings: Settings, reason: str | None = None, *, include_permanent: bool = False, limit: int = 100_000
) -> RunSummary:
    """Process quarantined items again; by default only those whose reason is transient.

    ``include_permanent`` also retries permanent reasons (after fixing a rule, say).
    """
    if reason is not None and reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}; reasons are: {', '.join(sorted(REASONS))}")
    params = {"reason": reason, "include_permanent": include_permanent, "limit": limit}
    with db.connect(db.database_url(settings)) as conn:
        db.upgrade(conn)

    def collect(conn: psycopg.Connection, fetcher: Fetcher, summary: RunSummary) -> list[WorkItem]:
        current = conn.execute(q.RETRYABLE_ITEMS, params).fetchall()
        feeds = sorted({r[0] for r in current})
        summary.feeds = len(feeds)
        locked = {f for f in feeds if store.lock_feed(conn, f, FEED_LOCK_WAIT_SECONDS)}
        return [
            WorkItem(
                feed_id,
                FeedItem(
                    key=key,
                    guid=guid,
                    link=url,
                    link_error=None if url else "feed item has no link",
                    title=title,
                    published_at=published_at,
                ),
                origin=origin_of(feed_url),
            )
            for feed_id, key, guid, url, title, published_at, feed_url in current
            if feed_id in locked
        ]

    return run_items(settings, kind="retry", collect=collect)


def retry_analyses(settings: Settings) -> ReprocessSummary | None:
    """Complete the stored articles whose entity and statement extraction failed (``nlp_failed``).

    They are redone from their stored HTML by a reprocess run; None when there are none.
    """
    from .reprocess import Selection, reprocess

    with db.connect(db.database_url(settings)) as conn:
        db.upgrade(conn)
        pending = conn.execute(q.ANALYSIS_PENDING_COUNT).fetchone()
    if not pending or not pending[0]:
        return None
    return reprocess(settings, Selection(analysis_failed_only=True))
