"""Database connections, the embedded PostgreSQL, and migrations.

Without ``NEWSFLOW_DATABASE_URL`` newsflow starts a real PostgreSQL from the ``pgserver``
wheel under ``$NEWSFLOW_HOME/pgdata``, so a bare machine needs no set-up. Migrations are the
numbered files in ``sql/``, applied in order under an advisory lock and recorded in
``ops.schema_version``; applying them twice is a no-op.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg

from .config import Settings

log = logging.getLogger(__name__)

MIGRATION_LOCK = 7_431_002  # pg_advisory_xact_lock key shared by every newsflow process
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_embedded_servers: dict[Path, object] = {}


class DatabaseUnavailable(RuntimeError):
    """No database could be reached or started; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def embedded_url(home: Path) -> str:
    """Start (or join) the embedded PostgreSQL under ``home`` and return its URL."""
    pgdata = home / "pgdata"
    server = _embedded_servers.get(pgdata)
    if server is None:
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
            raise DatabaseUnavailable("pgserver is not installed") from exc
        pgdata.mkdir(parents=True, exist_ok=True)
        try:
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise DatabaseUnavailable(f"could not start embedded PostgreSQL in {pgdata}: {exc}") from exc
        _embedded_servers[pgdata] = server
    return server.get_uri()  # type: ignore[attr-defined]


def database_url(settings: Settings) -> str:
    return settings.database_url or embedded_url(settings.home)


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection:
    """A connection in autocommit mode: every unit of work opens its own ``transaction()``."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {_first_line(exc)}") from exc


def connection_lost(conn: psycopg.Connection) -> bool:
    """Whether ``conn`` is gone, as opposed to having refused one statement.

    psycopg files errors like "index row size exceeds maximum" or a statement timeout under
    ``OperationalError`` too: those reject one article, while the run goes on.
    """
    return conn.closed or conn.broken


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _sql_dir() -> Path | None:
    source = Path(__file__).resolve().parent.parent / "sql"
    return source if source.is_dir() else None


def migrations() -> list[Migration]:
    """The migrations shipped with this version, in order."""
    files: dict[str, str] = {}
    directory = _sql_dir()
    if directory is not None:
        files = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.sql")}
    else:
        package = resources.files("pipeline.sql")
        files = {p.name: p.read_text(encoding="utf-8") for p in package.iterdir() if p.name.endswith(".sql")}
    out = []
    for name, sql in files.items():
        match = _MIGRATION_NAME.match(name)
        if match:
            out.append(Migration(int(match.group(1)), name, sql))
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {sorted(versions)}")
    return out


def upgrade(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date).

    An up-to-date database is detected without DDL, so a role that may only read and write
    rows (``newsflow_loader``) can run ingests against it.
    """
    applied: list[str] = []
    wanted = {m.version for m in migrations()}
    if wanted <= _applied_versions(conn):
        return applied
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": MIGRATION_LOCK})
        conn.execute("CREATE SCHEMA IF NOT EXISTS ops")
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS ops.schema_version (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {row[0] for row in conn.execute("SELECT version FROM ops.schema_version")}
        for migration in migrations():
            if migration.version in done:
                continue
            log.info("applying migration %s", migration.name)
            conn.execute(migration.sql)  # type: ignore[arg-type]  # trusted file shipped with newsflow
            conn.execute(
                "INSERT INTO ops.schema_version (version, name) VALUES (%(v)s, %(n)s)",
                {"v": migration.version, "n": migration.name},
            )
            applied.append(migration.name)
    return applied


def _applied_versions(conn: psycopg.Connection) -> set[int]:
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('ops.schema_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return set()
        return {row[0] for row in conn.execute("SELECT version FROM ops.schema_version")}


def current_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM ops.schema_version").fetchone()
    return int(row[0]) if row else 0
