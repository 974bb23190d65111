"""Shared fixtures: a real PostgreSQL database per test, a loopback site, settings, spaCy.

The server is ``NEWSFLOW_TEST_DATABASE_URL`` when set, else the one on 127.0.0.1:5432 when
it answers, else an embedded PostgreSQL (pgserver) started for the session. Each test gets
a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pipeline.config import Limits, Settings
from pipeline.loopback import LoopbackSite

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEED_DIR = SHARED / "seed"
AEB_DIR = SHARED / "data" / "aeb"
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    explicit = os.environ.get("NEWSFLOW_TEST_DATABASE_URL")
    if explicit:
        return explicit
    try:
        with psycopg.connect(LOCAL_SERVER, connect_timeout=3):
            return LOCAL_SERVER
    except psycopg.OperationalError:
        pass
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgserver"), cleanup_mode="stop")
    return server.get_uri()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _server_url(tmp_path_factory)


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture
def database_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"newsflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for a test: its own database, a quick politeness delay for loopback."""
    limits = replace(Limits(), host_min_delay=0.01, page_timeout=10.0, feed_timeout=10.0)
    return Settings(database_url=database_url, home=tmp_path / "home", limits=limits)


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    with LoopbackSite() as s:
        yield s


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def nlp():
    from pipeline.nlp import load_model

    return load_model("en_core_web_sm")


@pytest.fixture(scope="session")
def seed_text() -> str:
    files = sorted(SEED_DIR.glob("*.txt"))
    if not files:
        pytest.skip(f"seed article not found under {SEED_DIR}")
    return files[0].read_text(encoding="utf-8")


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Row counts of every newsflow table in the public schema."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        )
    ]
    return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
