"""The life of one recorded run: start, fail, reconcile, finish. Every kind of run uses it.

A run is a row of ``ops.runs``. Whatever happens to the process, the row ends
``succeeded``, ``failed`` or ``aborted``:

* a run that completes is reconciled against its ledger (``ops.run_items`` for feed items,
  ``ops.run_articles`` for reprocessed articles) and ends ``succeeded``, or ``failed`` when
  the counts disagree;
* a run whose database goes away, or that hits an error it cannot record against one item
  or feed, ends ``failed`` with the error;
* a run stopped by SIGTERM, Ctrl-C or ``sys.exit`` ends ``aborted``;
* a run killed outright (``kill -9``, a lost machine) cannot write anything. Its process
  held a session-level advisory lock keyed on the run id, on the connection that records the
  run; PostgreSQL releases that lock the moment the connection ends. The next run to start
  marks every ``running`` row whose lock is free as ``aborted``, at once: no heartbeat
  to age.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import psycopg

from . import db
from . import queries as q

log = logging.getLogger(__name__)

# High 32 bits of a run's advisory lock key; the low 32 bits are the run id.
RUN_LOCK_CLASS = 7_431_020


class RunAborted(RuntimeError):
    """The run cannot go on (the database went away); the ledger keeps what was done."""


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so the run's record ends ``aborted``."""


class Summary(Protocol):
    run_id: int
    status: str
    message: str | None

    def counts(self) -> dict[str, int]: ...


S = TypeVar("S", bound=Summary)


def lock_key(run_id: int) -> int:
    return (RUN_LOCK_CLASS << 32) | (run_id & 0xFFFFFFFF)


def start(conn: psycopg.Connection, kind: str) -> int:
    """Record a new run, held alive by this connection's lock; end the runs whose process died."""
    with conn.transaction():
        orphans = conn.execute(q.ABORT_ORPHANED_RUNS, {"lock_class": RUN_LOCK_CLASS}).fetchall()
        row = conn.execute(q.START_RUN, {"kind": kind}).fetchone()
        assert row is not None
        run_id = row[0]
        # Session-level, taken before the row is visible: no other process can see the run
        # without its lock.
        conn.execute(q.LOCK_RUN, {"key": lock_key(run_id)})
    for (orphan,) in orphans:
        log.warning("run %s had no live process: marked aborted", orphan)
    return run_id


def reconcile(conn: psycopg.Connection, run_id: int, counts: dict[str, int]) -> list[str]:
    """How the run's counts disagree with its ledger rows (empty when they agree).

    Feed items count by their state; reprocessed articles count as stored, failed ones as
    quarantined.
    """
    ledger: Counter[str] = Counter()
    for state, n in conn.execute(q.RUN_LEDGER_STATES, {"run_id": run_id}).fetchall():
        ledger[state] += n
    expected = {k: counts.get(k, 0) for k in ("stored", "duplicate", "quarantined")}
    problems = []
    if {k: v for k, v in ledger.items() if v} != {k: v for k, v in expected.items() if v}:
        problems.append(f"ledger does not reconcile: counted {expected}, ledger has {dict(ledger)}")
    ended = sum(expected.values())
    if counts.get("seen", ended) != ended:
        problems.append(f"{counts['seen']} items seen but {ended} ended")
    return problems


def finish(conn: psycopg.Connection, run_id: int, *, status: str, counts: dict[str, int], message: str | None) -> None:
    """Write the run's end and release its liveness lock."""
    with conn.transaction():
        conn.execute(q.FINISH_RUN, {"id": run_id, "status": status, "message": message, **_counts(counts)})
    with contextlib.suppress(psycopg.Error):
        conn.execute(q.UNLOCK_RUN, {"key": lock_key(run_id)})


def fail(conn: psycopg.Connection, summary: Summary, status: str, message: str) -> None:
    """End the run ``failed`` or ``aborted``; never raises (the connection may be gone)."""
    summary.status, summary.message = status, message[:2000]
    try:
        finish(conn, summary.run_id, status=status, counts=summary.counts(), message=summary.message)
    except psycopg.Error as exc:
        # The connection is gone: its lock went with it, and the next run marks this one aborted.
        log.warning("could not record the end of run %s: %s", summary.run_id, db._first_line(exc))


@contextlib.contextmanager
def recorded(conn: psycopg.Connection, kind: str, summary_for: Callable[[int], S]) -> Iterator[S]:
    """One run from start to end: ``with recorded(conn, "ingest", RunSummary) as summary: ...``.

    The body fills ``summary``; on leaving, the run is reconciled and finished. A lost
    database raises ``RunAborted``; every other way out still ends the record first.
    """
    run_id = start(conn, kind)
    summary = summary_for(run_id)
    try:
        yield summary
    except (RunAborted, psycopg.OperationalError) as exc:
        message = str(exc) if isinstance(exc, RunAborted) else f"database connection lost: {db._first_line(exc)}"
        fail(conn, summary, "failed", message)
        raise RunAborted(message) from exc
    except (KeyboardInterrupt, Terminated, SystemExit) as exc:
        fail(conn, summary, "aborted", f"stopped by {_stopped_by(exc)}")
        raise
    except BaseException as exc:
        fail(conn, summary, "failed", f"unexpected error: {type(exc).__name__}: {exc}")
        raise
    problems = reconcile(conn, run_id, summary.counts())
    if problems:
        summary.status = "failed"
        summary.message = "; ".join(problems)
    finish(conn, run_id, status=summary.status, counts=summary.counts(), message=summary.message)


def _stopped_by(exc: BaseException) -> str:
    if isinstance(exc, Terminated):
        return "SIGTERM"
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    return f"exit {getattr(exc, 'code', '')}".strip()


def _counts(counts: dict[str, int]) -> dict[str, int]:
    return {k: int(counts.get(k, 0)) for k in ("feeds", "seen", "stored", "duplicate", "quarantined", "unchanged")}


def raise_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into ``Terminated`` in the main thread; returns a function that undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
