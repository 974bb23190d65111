"""The jobs the Airflow DAGs run, as plain functions the CLI and the tests call too.

Each takes a database URL and small values and returns small values (run ids, counts,
URLs): Airflow passes results through XCom, which is no place for article bodies. The
database URL is never passed between tasks (it may hold a password); every task looks it
up with ``airflow_database_url``.

Politeness across tasks: mapped tasks run in separate processes, each with its own
fetcher, so the per-host limiter alone would let two feeds of one site be fetched at
once. ``host_lock`` serialises the work of one host across processes and machines with a
PostgreSQL advisory lock; different hosts still run in parallel.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from . import db, store
from . import queries as q
from .config import Settings
from .urls import host_of

if TYPE_CHECKING:
    from .reprocess import Selection

log = logging.getLogger(__name__)

# Connection extras that are libpq parameters; others (Airflow's "cursor", "iam" ...) are not.
LIBPQ_EXTRAS = {
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslpassword",
    "connect_timeout",
    "application_name",
    "options",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "target_session_attrs",
    "gssencmode",
    "channel_binding",
}


class LedgerMismatch(RuntimeError):
    """A run's counts do not add up with its ledger rows, or the run did not succeed."""


class NoDatabase(RuntimeError):
    """Neither the Airflow connection nor NEWSFLOW_DATABASE_URL names a database."""


def libpq_url(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    database: str | None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A ``postgresql://`` URL libpq (and psycopg) understand, from connection fields.

    Names and the password are percent-encoded; only libpq parameters of ``extra`` are kept.
    """
    auth = ""
    if login:
        auth = quote(login, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        auth += "@"
    netloc = host or ""
    if ":" in netloc and not netloc.startswith("["):
        netloc = f"[{netloc}]"  # an IPv6 address
    if port:
        netloc += f":{int(port)}"
    path = "/" + quote(database, safe="") if database else ""
    params = {k: str(v) for k, v in (extra or {}).items() if k in LIBPQ_EXTRAS and v not in (None, "")}
    query = "?" + urlencode(params, quote_via=quote) if params else ""
    return f"postgresql://{auth}{netloc}{path}{query}"


def airflow_database_url(conn_id: str | None = None) -> str:
    """The newsflow database for a task: the Airflow connection, else ``NEWSFLOW_DATABASE_URL``.

    The connection (``AIRFLOW_CONN_NEWSFLOW_DB`` or one made in the UI) is read through the
    Postgres provider's hook, so secrets backends work; its fields become a libpq URL.
    Called inside tasks only: looking up a connection at parse time would hit the
    metadata database every time the scheduler parses the file.
    """
    from .dagconfig import conn_id as default_conn_id

    conn_id = conn_id or default_conn_id()
    try:
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = PostgresHook(postgres_conn_id=conn_id).connection
        except AirflowNotFoundException:
            conn = None
    except ImportError:  # the CLI and tests without Airflow
        conn = None
    if conn is not None and conn.host:
        return libpq_url(
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            database=conn.schema,
            extra=conn.extra_dejson,
        )
    url = os.environ.get("NEWSFLOW_DATABASE_URL", "").strip()
    if not url:
        raise NoDatabase(
            f"no newsflow database: define the Airflow connection {conn_id!r} "
            "(e.g. AIRFLOW_CONN_NEWSFLOW_DB=postgresql://user:pass@host:5432/newsflow) "
            "or set NEWSFLOW_DATABASE_URL"
        )
    return url


def settings_for(db_url: str) -> Settings:
    """The environment's settings (``NEWSFLOW_*`` limits, model) with this database."""
    return Settings.from_env().with_(database_url=db_url)


def prepare_database(db_url: str) -> int:
    """Apply pending migrations once, before mapped tasks start; return the schema version."""
    with db.connect(db_url) as conn:
        db.upgrade(conn)
        return db.current_version(conn)


def enabled_feeds(db_url: str) -> list[str]:
    with db.connect(db_url) as conn:
        return [row[0] for row in conn.execute(q.ENABLED_FEEDS)]


def due_feeds(db_url: str) -> list[str]:
    """Enabled feeds whose adaptive ``next_poll_at`` has come (or that were never polled).

    The same selection ``newsflow run`` polls from, so a frequent Airflow schedule polls busy
    feeds often and quiet or failing ones rarely; each poll sets the feed's next time.
    """
    with db.connect(db_url) as conn:
        return [store.FeedRow(*row).url for row in conn.execute(q.DUE_FEEDS)]


@contextlib.contextmanager
def host_lock(db_url: str, host: str) -> Iterator[None]:
    """Hold a session advisory lock for ``host`` while the block runs.

    The lock lives on its own connection, so it is released even if the task is killed
    (the server drops the session's locks when the connection goes).
    """
    with db.connect(db_url) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%(key)s, 0))", {"key": f"newsflow-host:{host}"})
        yield


def prepare_task_process() -> None:
    """Let an Airflow task start page-worker processes as a fresh interpreter would.

    Two things an Airflow task process inherits break ``multiprocessing`` for it:

    * Under Celery, the task is forked from a prefork pool process, and billiard installs its
      own daemonic process object as the current process: multiprocessing refuses children of a
      daemonic process and cannot pickle billiard's auth key for a spawned child. The task owns
      its page workers (``pipeline.workers`` stops them itself), so the flag is dropped and a
      standard auth key put in.
    * Its ``__main__`` is the ``airflow`` command, which every spawned child would run again
      (importing Airflow, which fails there: a task process's database URL is blocked). The
      page workers need nothing from it, so the task's ``__main__`` becomes an empty module.

    A no-op outside Airflow (the CLI, the tests).
    """
    import sys
    import types
    from multiprocessing import process

    config = process.current_process()._config  # what every child inherits; no public handle on it
    if config.get("daemon") or not isinstance(config.get("authkey"), process.AuthenticationString):
        config["daemon"] = False
        config["authkey"] = process.AuthenticationString(os.urandom(32))
    main = sys.modules.get("__main__")
    spec = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if spec.partition(".")[0] == "airflow" or Path(getattr(main, "__file__", None) or "").name == "airflow":
        sys.modules["__main__"] = types.ModuleType("__main__")


def ingest_feed(db_url: str, feed_url: str) -> int:
    """Ingest one feed; return its run id for ``reconcile``."""
    from .ingest import ingest

    prepare_task_process()
    with host_lock(db_url, host_of(feed_url)):
        summary = ingest(settings_for(db_url), [feed_url])
    log.info("feed %s: %s", feed_url, summary.counts())
    for url, error in summary.feeds_failed.items():
        log.warning("feed failed: %s (%s)", url, error)
    return summary.run_id


def stored_articles_extra(run_ids: Iterable[int], totals: dict[str, int]) -> dict[str, Any] | None:
    """The extra of a stored-articles asset event: run ids and counts (never rows), or None when
    the runs stored nothing, so consumers are not woken for nothing."""
    if not totals.get("stored"):
        return None
    keys = ("stored", "duplicate", "quarantined", "seen")
    return {"run_ids": sorted({int(i) for i in run_ids}), **{k: int(totals.get(k, 0)) for k in keys}}


def report_dir() -> Path:
    """Where ``refresh_report`` writes: ``NEWSFLOW_REPORT_DIR``, else ``report`` in newsflow's home.
    With several workers, make it a shared volume so every run replaces the same report."""
    explicit = os.environ.get("NEWSFLOW_REPORT_DIR", "").strip()
    return Path(explicit).expanduser() if explicit else Settings.from_env().home / "report"


def refresh_report(db_url: str, out_dir: Path, days: int = 7) -> dict[str, Any]:
    """Rebuild the analyst report over the last ``days`` days into ``out_dir``.

    Written to a sibling directory first and then swapped in, so a reader (or a web server)
    never sees a half-written report. Returns the path and headline counts (small: XCom).
    """
    from .analyst import totals
    from .report import build_report

    since = datetime.now(UTC) - timedelta(days=days)
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        with db.connect(db_url) as conn:
            db.upgrade(conn)
            build_report(conn, fresh, since)
            counts = totals(conn, since)
        fresh.chmod(0o755)  # mkdtemp makes it private; the report is meant to be read
        old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(old)
        fresh.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return {
        "path": str(out_dir / "index.html"),
        "days": days,
        "articles": counts.articles,
        "statements": counts.statements,
    }


def backfill_plan(db_url: str, feed: str | None, since: str, until: str) -> list[dict[str, str]]:
    """One ``backfill_feed`` call per feed: the given one, or every enabled feed."""
    from .backfill import Window, check_feed_url

    window = Window.parse(since, until)  # fail here, once, on a bad range
    feeds = [check_feed_url(feed)] if feed else enabled_feeds(db_url)
    return [{"feed_url": url, "since": window.start.isoformat(), "until": window.end.isoformat()} for url in feeds]


def backfill_feed(db_url: str, feed_url: str, since: str, until: str) -> int:
    """Backfill one feed over ``[since, until)``; return its run id."""
    from .backfill import Window, backfill

    prepare_task_process()
    with host_lock(db_url, host_of(feed_url)):
        result = backfill(settings_for(db_url), feed_url, Window.parse(since, until))
    log.info("backfill %s %s: %s; %s", feed_url, result.window, result.summary.counts(), result.discovery.describe())
    for url, error in result.summary.feeds_failed.items():
        log.warning("history source failed: %s (%s)", url, error)
    return result.summary.run_id


def reprocess_selection(
    since: str | None,
    until: str | None,
    by: str,
    outdated_only: bool,
    first_id: int | None = None,
    last_id: int | None = None,
) -> Selection:
    """The reprocess ``Selection`` for CLI/DAG values (dates inclusive, as for backfill)."""
    from .backfill import parse_bound
    from .reprocess import MAX_ID, Selection

    return Selection(
        since=parse_bound(since, end=False) if since else None,
        until=parse_bound(until, end=True) if until else None,
        by=by,
        outdated_only=outdated_only,
        first_id=first_id or 1,
        last_id=last_id or MAX_ID,
    )


def reprocess_plan(
    db_url: str, since: str | None, until: str | None, by: str, outdated_only: bool, chunk_size: int = 500
) -> list[dict[str, Any]]:
    """Id ranges to reprocess in parallel, each with the selection repeated (small XCom values)."""
    from .reprocess import plan_chunks

    selection = reprocess_selection(since, until, by, outdated_only)
    with db.connect(db_url) as conn:
        db.upgrade(conn)
        chunks = plan_chunks(conn, selection, chunk_size=chunk_size)
    common = {"since": since, "until": until, "by": by, "outdated_only": outdated_only}
    return [{**common, "first_id": first, "last_id": last} for first, last in chunks]


def reprocess_chunk(
    db_url: str, since: str | None, until: str | None, by: str, outdated_only: bool, first_id: int, last_id: int
) -> int:
    """Reprocess one id range of the selection; return its run id."""
    from .reprocess import reprocess

    selection = reprocess_selection(since, until, by, outdated_only, first_id, last_id)
    prepare_task_process()
    summary = reprocess(settings_for(db_url), selection)
    log.info("%s: %s", selection.describe(), summary.counts())
    return summary.run_id


def reconcile(db_url: str, run_ids: Iterable[int]) -> dict[str, int]:
    """Check every run: it succeeded, seen = stored + duplicate + quarantined, and the ledger agrees.

    Returns the totals; raises ``LedgerMismatch`` naming each run that does not add up
    (an out-of-memory kill or a lost write must never pass as a success, C5.33).
    """
    from . import runs

    ids = sorted({int(i) for i in run_ids})
    totals = {"runs": len(ids), "seen": 0, "stored": 0, "duplicate": 0, "quarantined": 0}
    problems: list[str] = []
    with db.connect(db_url) as conn:
        rows = conn.execute(q.RUN_COUNTS, {"ids": ids}).fetchall()
        missing = set(ids) - {row[0] for row in rows}
        problems += [f"run {run_id} is not in ops.runs" for run_id in sorted(missing)]
        for run_id, kind, status, seen, stored, duplicate, quarantined, message in rows:
            counts = {"seen": seen, "stored": stored, "duplicate": duplicate, "quarantined": quarantined}
            for key, value in counts.items():
                totals[key] += value
            if status != "succeeded":
                problems.append(f"run {run_id} ({kind}) is {status}: {message or 'no message'}")
                continue
            problems += [f"run {run_id} ({kind}): {p}" for p in runs.reconcile(conn, run_id, counts)]
    if problems:
        raise LedgerMismatch("ledger does not reconcile:\n" + "\n".join(problems))
    return totals


def archive_plan(
    db_url: str,
    month: str | None,
    paths: list[str] | None,
    base: str | None,
    domains: list[str] | None,
    all_domains: bool,
    since: str | None,
    until: str | None,
    language: str | None,
) -> list[dict[str, Any]]:
    """One ``archive_load`` call per WARC file: the CC-NEWS month's files (listed into the
    ledger in their order), or the given paths/URLs. Bad params fail here, once."""
    from .webarchive.ccnews import plan_month
    from .webarchive.load import filters_from, prepare

    if bool(month) == bool(paths):
        raise ValueError("give either a CC-NEWS month or a list of WARC paths/URLs")
    settings = settings_for(db_url)
    prepare(settings, filters_from(domains, since, until, language), all_domains)  # no domains at all: fail now
    files = plan_month(settings, month, base) if month else list(dict.fromkeys(p.strip() for p in paths or []))
    common = {
        "domains": list(domains) if domains else None,
        "all_domains": all_domains,
        "since": since,
        "until": until,
        "language": language,
    }
    return [{"location": location, **common} for location in files]


def archive_load(
    db_url: str,
    location: str,
    domains: list[str] | None,
    all_domains: bool,
    since: str | None,
    until: str | None,
    language: str | None,
) -> int:
    """Load one WARC/ARC file (resuming where an earlier try stopped); return its run id."""
    from .webarchive.load import filters_from, load_warc

    prepare_task_process()
    result = load_warc(
        settings_for(db_url), [location], filters_from(domains, since, until, language), all_domains=all_domains
    )
    log.info("archive %s: %s; %s", location, result.summary.counts(), result.totals.describe())
    for url, error in result.summary.feeds_failed.items():
        log.warning("archive file failed: %s (%s)", url, error)
    if result.summary.feeds_failed:
        raise RuntimeError(f"{location}: {'; '.join(result.summary.feeds_failed.values())[:500]}")
    return result.summary.run_id
