"""A scratch PostgreSQL database for a benchmark run, shared by the benchmark scripts.

The server is ``NEWSFLOW_TEST_DATABASE_URL`` when set, else the local one the tests use.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(url: str | None, keep: bool, prefix: str = "newsflow_eval") -> Iterator[str]:
    """``url`` when given; else a fresh database, dropped afterwards unless ``keep``."""
    if url:
        yield url
        return
    server = os.environ.get("NEWSFLOW_TEST_DATABASE_URL") or LOCAL_SERVER
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
