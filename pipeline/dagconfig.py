"""What the DAG files need at parse time: schedules, retry policy, concurrency, from the environment.

The scheduler parses every DAG file every few seconds, so this module imports nothing
but the standard library: no Airflow, no database driver, no spaCy. The DAG files import it
at the top and import ``pipeline.tasks`` only inside their tasks.

Environment (all optional):

``NEWSFLOW_INGEST_SCHEDULE``      cron or preset for ``newsflow_ingest`` (default every 15 minutes; each
                                  run only polls the feeds that are due, see ``tasks.due_feeds``);
                                  ``none``: manual only (e.g. when ``newsflow run`` streams instead)
``NEWSFLOW_BACKFILL_SCHEDULE``    cron or preset whose data intervals ``newsflow_backfill`` covers
                                  (default ``@daily``; ``airflow backfill create`` walks the same)
``NEWSFLOW_REPROCESS_SCHEDULE``   schedule for ``newsflow_reprocess`` (default none: manual)
``NEWSFLOW_AIRFLOW_RETRIES``      retries per task (default 3, at least 2)
``NEWSFLOW_AIRFLOW_RETRY_DELAY``  first retry delay in seconds (default 120, then doubling, capped at 1 h)
``NEWSFLOW_AIRFLOW_TASK_TIMEOUT`` seconds before a task is killed (default 14400)
``NEWSFLOW_AIRFLOW_FEED_CONCURRENCY`` mapped feed tasks at once per run (default 8)
``NEWSFLOW_AIRFLOW_POOL``         Airflow pool for tasks that fetch (default ``default_pool``)
``NEWSFLOW_AIRFLOW_CONN_ID``      connection id of the newsflow database (default ``newsflow_db``)
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

# Early on purpose: a run (a backfill of 2019, a manual test run) gets no tasks for a logical date
# before its DAG's start_date. catchup=False on every DAG keeps the scheduler from creating past runs.
START_DATE = datetime(2000, 1, 1, tzinfo=UTC)
TAGS = ["newsflow"]
INGEST_SCHEDULE = "*/15 * * * *"

# The Airflow asset `newsflow_ingest` updates when a run stored new articles (name, URI); the
# DAG files build the Asset from these, since this module must not import Airflow.
STORED_ARTICLES_ASSET = "newsflow_stored_articles"
STORED_ARTICLES_URI = "newsflow://articles/stored"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _seconds(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number of seconds, not {raw!r}") from exc


def ingest_schedule() -> str | None:
    """Frequent by default: a run with no feed due costs one query, and a due feed waits at most
    15 minutes past its adaptive next-poll time (``schedule.py``) instead of until tomorrow."""
    value = _env("NEWSFLOW_INGEST_SCHEDULE", INGEST_SCHEDULE)
    return None if value.lower() == "none" else value


def backfill_schedule() -> str:
    return _env("NEWSFLOW_BACKFILL_SCHEDULE", "@daily")


def reprocess_schedule() -> str | None:
    value = _env("NEWSFLOW_REPROCESS_SCHEDULE", "none")
    return None if value.lower() == "none" else value


def feed_concurrency() -> int:
    return max(1, _seconds("NEWSFLOW_AIRFLOW_FEED_CONCURRENCY", 8))


def fetch_pool() -> str:
    return _env("NEWSFLOW_AIRFLOW_POOL", "default_pool")


def conn_id() -> str:
    return _env("NEWSFLOW_AIRFLOW_CONN_ID", "newsflow_db")


def default_args() -> dict[str, Any]:
    """Retries with exponential backoff for every task: transient faults (a database restart,
    a host that timed out) heal on a later try, and the ledger makes a retry safe."""
    return {
        "owner": "newsflow",
        "retries": max(2, _seconds("NEWSFLOW_AIRFLOW_RETRIES", 3)),
        "retry_delay": timedelta(seconds=_seconds("NEWSFLOW_AIRFLOW_RETRY_DELAY", 120)),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
        "execution_timeout": timedelta(seconds=_seconds("NEWSFLOW_AIRFLOW_TASK_TIMEOUT", 4 * 3600)),
    }
