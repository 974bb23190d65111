"""The database roles of sql/003_analyst.sql and sql/005_analyst_lockdown.sql: newsflow_analyst
reads and cannot disturb ingestion or fill the disk, newsflow_loader writes.

Roles belong to the whole cluster and other tests migrate databases at the same time, so
these tests never alter or drop the two roles themselves: a per-database setting (dropped
with the test's database) stands in for a shorter timeout.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pipeline import db, store, tasks
from pipeline.stream import tail

from .conftest import _with_dbname

ANALYST = "newsflow_analyst"
LOADER = "newsflow_loader"


@pytest.fixture
def migrated(database_url: str, conn: psycopg.Connection) -> str:
    db.upgrade(conn)
    missing = {ANALYST, LOADER} - {
        r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'newsflow\\_%'")
    }
    if missing:
        pytest.skip(f"roles {sorted(missing)} absent: the test server's user may not create roles")
    return database_url


def _as_user(url: str, user: str) -> str:
    params = conninfo_to_dict(url)
    params["user"] = user
    params.pop("password", None)
    return make_conninfo(**params)


def _connect_as(url: str, role: str) -> tuple[psycopg.Connection, bool]:
    """A connection acting as ``role``: logged in when the server lets us, else via SET ROLE."""
    try:
        return psycopg.connect(_as_user(url, role), autocommit=True, connect_timeout=5), True
    except psycopg.OperationalError:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute(f"SET ROLE {role}")
        return conn, False


@pytest.fixture
def analyst(migrated: str) -> Iterator[psycopg.Connection]:
    conn, _ = _connect_as(migrated, ANALYST)
    with conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == ANALYST
        yield conn


def _relations(conn: psycopg.Connection, schema: str, kinds: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            """SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %(s)s AND c.relkind = ANY(%(k)s) ORDER BY 1""",
            {"s": schema, "k": list(kinds)},
        )
    ]


def test_analyst_reads_every_table_and_view(analyst):
    names = _relations(analyst, "public", "rv")
    assert "public.v_statements" in names and "public.articles" in names
    for name in names:
        analyst.execute(f"SELECT count(*) FROM {name}")


FORBIDDEN = [
    "INSERT INTO feeds (url) VALUES ('http://example.invalid/feed')",
    "UPDATE articles SET title = 'changed'",
    "DELETE FROM statements",
    "TRUNCATE entity_mentions",
    "SELECT * FROM feeds FOR UPDATE",
    "SELECT nextval('feeds_id_seq')",
    "CREATE TABLE public.scratch (x int)",
    "CREATE VIEW public.my_view AS SELECT 1 AS x",
    "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE INDEX scratch_idx ON articles (title)",
    "ALTER TABLE articles ADD COLUMN scratch int",
    "DROP VIEW v_statements",
    "COMMENT ON TABLE articles IS 'mine now'",
    "CREATE SCHEMA scratch",
    "SELECT count(*) FROM ops.runs",
    "INSERT INTO ops.runs (kind) VALUES ('analyst')",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_analyst_cannot_write_or_create(analyst, statement):
    with pytest.raises(errors.InsufficientPrivilege):
        analyst.execute(statement)


def test_new_tables_of_later_migrations_are_granted(migrated, conn):
    """ALTER DEFAULT PRIVILEGES: a table added after 003 is readable by analysts, writable by the loader."""
    conn.execute("CREATE TABLE public.later_table (id bigserial PRIMARY KEY, note text)")
    reader, _ = _connect_as(migrated, ANALYST)
    with reader:
        assert reader.execute("SELECT count(*) FROM later_table").fetchone()[0] == 0
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("INSERT INTO later_table (note) VALUES ('x')")
    writer, _ = _connect_as(migrated, LOADER)
    with writer:
        writer.execute("INSERT INTO later_table (note) VALUES ('x')")
        assert writer.execute("SELECT count(*) FROM later_table").fetchone()[0] == 1


def test_analyst_queries_are_cancelled_by_the_timeout(migrated, conn):
    settings = dict(
        conn.execute(
            """SELECT split_part(s, '=', 1), split_part(s, '=', 2) FROM pg_db_role_setting d
               JOIN pg_roles r ON r.oid = d.setrole, unnest(d.setconfig) AS s
               WHERE r.rolname = %(role)s AND d.setdatabase = 0""",
            {"role": ANALYST},
        ).fetchall()
    )
    assert settings.get("statement_timeout") not in (None, "0"), settings

    dbname = conn.execute("SELECT current_database()").fetchone()[0]
    # Only this test's database (dropped afterwards) gets the short timeout.
    conn.execute(f"ALTER ROLE {ANALYST} IN DATABASE \"{dbname}\" SET statement_timeout = '300ms'")
    reader, logged_in = _connect_as(migrated, ANALYST)
    with reader:
        if not logged_in:
            pytest.skip("the server refuses logins as newsflow_analyst; role settings apply at login")
        assert reader.execute("SHOW statement_timeout").fetchone()[0] == "300ms"
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            reader.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 3
        assert reader.execute("SELECT count(*) FROM v_statements").fetchone()[0] == 0  # still usable

    fresh, _ = _connect_as(_with_dbname(migrated, "postgres"), ANALYST)
    with fresh:  # elsewhere the role's own setting holds
        assert fresh.execute("SHOW statement_timeout").fetchone()[0] == settings["statement_timeout"]


def test_loader_writes_rows_but_not_schema(migrated):
    writer, _ = _connect_as(migrated, LOADER)
    with writer:
        feed_id = writer.execute(
            "INSERT INTO feeds (url) VALUES ('http://example.invalid/feed') RETURNING id"
        ).fetchone()[0]
        writer.execute("UPDATE feeds SET title = 'A feed' WHERE id = %(id)s", {"id": feed_id})
        run_id = writer.execute("INSERT INTO ops.runs (kind) VALUES ('ingest') RETURNING id").fetchone()[0]
        writer.execute("UPDATE ops.runs SET status = 'succeeded' WHERE id = %(id)s", {"id": run_id})
        assert writer.execute("SELECT count(*) FROM v_feed_health").fetchone()[0] == 1
        writer.execute("DELETE FROM feeds WHERE id = %(id)s", {"id": feed_id})
        for statement in (
            "CREATE TABLE public.scratch (x int)",
            "CREATE TABLE ops.scratch (x int)",
            "ALTER TABLE articles ADD COLUMN scratch int",
            "DROP VIEW v_statements",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                writer.execute(statement)


def test_migrations_run_by_an_owner_who_may_not_create_roles(pg_server, migrated):
    """A database owner without CREATEROLE applies 003: the roles exist already and get their grants."""
    owner = f"newsflow_test_owner_{uuid.uuid4().hex[:8]}"
    name = f"newsflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {owner} LOGIN NOCREATEROLE NOSUPERUSER")
        try:
            admin.execute(f'CREATE DATABASE "{name}" OWNER {owner}')
            try:
                url = _with_dbname(pg_server, name)
                try:
                    owner_conn = psycopg.connect(_as_user(url, owner), autocommit=True)
                except psycopg.OperationalError:
                    pytest.skip("the server refuses logins as a new role")
                with owner_conn:
                    applied = db.upgrade(owner_conn)
                    assert "003_analyst.sql" in applied
                reader, _ = _connect_as(url, ANALYST)
                with reader:
                    assert reader.execute("SELECT count(*) FROM v_statements").fetchone()[0] == 0
                    with pytest.raises(errors.InsufficientPrivilege):
                        reader.execute("INSERT INTO feeds (url) VALUES ('http://example.invalid/')")
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.execute(f"DROP ROLE IF EXISTS {owner}")


def test_roles_in_a_fresh_cluster(tmp_path):
    """In a cluster without the roles: an owner who may not create roles migrates without them;
    databases migrating at the same moment create them once; ops.grant_newsflow_roles() then
    fixes up the database migrated first."""
    import threading

    pgserver = pytest.importorskip("pgserver")
    try:
        server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001 - no embedded server here: nothing to test
        pytest.skip(f"embedded PostgreSQL unavailable: {exc}")
    try:
        root = server.get_uri()
        with psycopg.connect(root, autocommit=True) as admin:
            assert (
                admin.execute(
                    "SELECT count(*) FROM pg_roles WHERE rolname IN (%(a)s, %(l)s)", {"a": ANALYST, "l": LOADER}
                ).fetchone()[0]
                == 0
            )
            admin.execute("CREATE ROLE plain_owner LOGIN NOCREATEROLE NOSUPERUSER")
            admin.execute("CREATE DATABASE early OWNER plain_owner")
            for n in range(3):
                admin.execute(f"CREATE DATABASE busy_{n}")

        with psycopg.connect(_as_user(_with_dbname(root, "early"), "plain_owner"), autocommit=True) as owner:
            notices: list[str] = []
            owner.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
            assert "003_analyst.sql" in db.upgrade(owner)
            assert any("may not create roles" in n for n in notices)
            assert owner.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'newsflow\\_%'").fetchone()[0] == 0

        barrier = threading.Barrier(3)
        failures: list[BaseException] = []

        def migrate(n: int) -> None:
            try:
                with psycopg.connect(_with_dbname(root, f"busy_{n}"), autocommit=True) as c:
                    barrier.wait(timeout=30)
                    db.upgrade(c)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=migrate, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []

        with psycopg.connect(_with_dbname(root, "busy_0"), autocommit=True) as c:
            roles = dict(c.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'newsflow\\_%'"))
            assert roles == {ANALYST: True, LOADER: True}
            configs = c.execute(
                """SELECT d.setconfig FROM pg_db_role_setting d JOIN pg_roles r ON r.oid = d.setrole
                   WHERE r.rolname = %(r)s AND d.setdatabase = 0""",
                {"r": ANALYST},
            ).fetchone()[0]
            assert "statement_timeout=2min" in configs
        for n in range(3):
            reader, _ = _connect_as(_with_dbname(root, f"busy_{n}"), ANALYST)
            with reader:
                assert reader.execute("SELECT count(*) FROM v_feed_health").fetchone()[0] == 0

        early = _with_dbname(root, "early")
        reader, _ = _connect_as(early, ANALYST)
        with reader, pytest.raises(errors.InsufficientPrivilege):
            reader.execute("SELECT count(*) FROM v_feed_health")
        with psycopg.connect(early, autocommit=True) as admin:
            admin.execute("SELECT ops.grant_newsflow_roles()")
        reader, _ = _connect_as(early, ANALYST)
        with reader:
            assert reader.execute("SELECT count(*) FROM v_feed_health").fetchone()[0] == 0
    finally:
        server.cleanup()


# Issue 13, item 8: what PUBLIC may do by default is taken from the analyst (sql/005) ---------

FEED_LOCK = f"SELECT pg_advisory_lock({store.FEED_LOCK_CLASS}, 1)"
HOST_LOCK = "SELECT pg_advisory_lock(hashtextextended('newsflow-host:example.org', 0))"
OUT_OF_BOUNDS = [
    "CREATE TEMP TABLE scratch (x int)",
    "CREATE TEMPORARY TABLE scratch AS SELECT * FROM articles",
    "SELECT 1 AS x INTO TEMP scratch",
    "SELECT lo_from_bytea(0, 'a disk-filling large object')",
    "SELECT lo_create(0)",
    "SELECT lo_creat(-1)",
    "SELECT lo_put(1, 0, 'x')",
    "SELECT lo_unlink(1)",
    FEED_LOCK,
    HOST_LOCK,
    f"SELECT pg_try_advisory_lock({store.FEED_LOCK_CLASS}, 1)",
    "SELECT pg_advisory_lock_shared(1)",
    f"SELECT pg_advisory_xact_lock({db.MIGRATION_LOCK})",
    "SELECT pg_try_advisory_xact_lock_shared(1, 2)",
    "SELECT pg_advisory_unlock_all()",
    "SELECT pg_notify('newsflow_articles', 'not json')",
    "SELECT pg_notify('newsflow_articles', '[1,2]')",
]


@pytest.mark.parametrize("statement", OUT_OF_BOUNDS)
def test_analyst_cannot_take_locks_notify_or_fill_the_disk(analyst, conn, statement):
    large_objects = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
    with pytest.raises(errors.InsufficientPrivilege):
        analyst.execute(statement)
    assert conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0] == large_objects


def test_an_analyst_session_no_longer_holds_up_ingestion(migrated, analyst):
    """The loader still takes the feed and host locks and notifies; the analyst's attempts fail."""
    for statement in (FEED_LOCK, HOST_LOCK):
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute(statement)
    if not _logs_in(migrated, LOADER):
        pytest.skip("the server refuses logins as newsflow_loader")
    with psycopg.connect(_as_user(migrated, LOADER), autocommit=True) as writer:
        started = time.monotonic()
        assert store.lock_feed(writer, 1, wait_seconds=2.0)
        assert time.monotonic() - started < 1.5
        with tasks.host_lock(_as_user(migrated, LOADER), "example.org"):
            pass
        writer.execute("LISTEN newsflow_articles")
        with writer.transaction():
            writer.execute("SELECT pg_notify('newsflow_articles', %(p)s)", {"p": '{"article_id": 1}'})
        assert [n.payload for n in writer.notifies(timeout=2, stop_after=1)] == ['{"article_id": 1}']


def _logs_in(url: str, role: str) -> bool:
    try:
        psycopg.connect(_as_user(url, role), connect_timeout=5).close()
        return True
    except psycopg.OperationalError:
        return False


def test_lockdown_is_idempotent(migrated, conn):
    def privileges() -> list[tuple]:
        return conn.execute(
            """SELECT p.oid::regprocedure::text, p.proacl::text FROM pg_proc p
               WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proacl IS NOT NULL
               UNION ALL SELECT datname, datacl::text FROM pg_database WHERE datname = current_database()
               ORDER BY 1"""
        ).fetchall()

    before = privileges()
    assert any(name == "pg_notify(text,text)" and "newsflow_loader=X" in acl for name, acl in before)
    (lockdown,) = [m for m in db.migrations() if m.name == "005_analyst_lockdown.sql"]
    with conn.transaction():
        conn.execute(lockdown.sql)  # type: ignore[arg-type]
    conn.execute("SELECT ops.grant_newsflow_roles()")
    assert privileges() == before


def test_statement_timeout_is_a_default_enforced_from_outside(migrated, conn):
    """Any role may SET statement_timeout; ops.cancel_analyst_overruns() cancels the query anyway."""
    reader, logged_in = _connect_as(migrated, ANALYST)
    with reader:
        if not logged_in:
            pytest.skip("the server refuses logins as newsflow_analyst")
        reader.execute("SET statement_timeout = 0")  # PostgreSQL allows it: the role's timeout is a default
        outcome: list[BaseException | None] = []

        def sleep() -> None:
            try:
                reader.execute("SELECT pg_sleep(30)")
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - inspected below
                outcome.append(exc)

        started = time.monotonic()
        sleeper = threading.Thread(target=sleep)
        sleeper.start()
        cancelled = 0
        while not cancelled and time.monotonic() - started < 10:
            time.sleep(0.2)
            cancelled = conn.execute("SELECT ops.cancel_analyst_overruns('300 milliseconds')").fetchone()[0]
        sleeper.join(timeout=10)
        assert cancelled == 1
        assert isinstance(outcome[0], errors.QueryCanceled)
        assert time.monotonic() - started < 10
        assert reader.execute("SELECT count(*) FROM v_statements").fetchone()[0] == 0  # still usable
        # Nothing of other roles is cancelled, however long it runs.
        assert conn.execute("SELECT ops.cancel_analyst_overruns('0 seconds')").fetchone()[0] == 0


def test_an_owner_who_is_not_a_superuser_keeps_what_it_needs(pg_server, migrated):
    """Migrating as a plain database owner revokes TEMP only (with a notice); a superuser's
    ops.grant_newsflow_roles() then locks the functions down, and the owner keeps the locks."""
    owner = f"newsflow_test_owner_{uuid.uuid4().hex[:8]}"
    name = f"newsflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {owner} LOGIN NOCREATEROLE NOSUPERUSER")
        try:
            admin.execute(f'CREATE DATABASE "{name}" OWNER {owner}')
            try:
                url = _with_dbname(pg_server, name)
                try:
                    owner_conn = psycopg.connect(_as_user(url, owner), autocommit=True)
                except psycopg.OperationalError:
                    pytest.skip("the server refuses logins as a new role")
                with owner_conn:
                    notices: list[str] = []
                    owner_conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
                    assert "005_analyst_lockdown.sql" in db.upgrade(owner_conn)
                    assert any("only a superuser may revoke" in n for n in notices)
                    reader, _ = _connect_as(url, ANALYST)
                    with reader, pytest.raises(errors.InsufficientPrivilege):
                        reader.execute("CREATE TEMP TABLE scratch (x int)")

                    with psycopg.connect(url, autocommit=True) as superuser:
                        superuser.execute("SELECT ops.grant_newsflow_roles()")
                    reader, _ = _connect_as(url, ANALYST)
                    with reader, pytest.raises(errors.InsufficientPrivilege):
                        reader.execute(FEED_LOCK)
                    with owner_conn.transaction():  # what db.upgrade takes for a later migration
                        owner_conn.execute(f"SELECT pg_advisory_xact_lock({db.MIGRATION_LOCK})")
                    owner_conn.execute(FEED_LOCK)
                    owner_conn.execute("SELECT pg_notify('newsflow_articles', '{}')")
                    owner_conn.execute("CREATE TEMP TABLE scratch (x int)")  # an owner keeps TEMP
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.execute(f"DROP ROLE IF EXISTS {owner}")


def _store_statement(conn: psycopg.Connection, quote: str) -> int:
    article_id = conn.execute(
        """INSERT INTO articles (url, title, text, raw_html, fetched_at, content_hash, extractor_version)
           VALUES ('http://example.invalid/a', 'Ferry news', %(q)s, '', now(), md5(%(q)s), 'test')
           RETURNING id""",
        {"q": quote},
    ).fetchone()[0]
    conn.execute(
        """INSERT INTO statements (article_id, kind, quote, quote_start, quote_end, speaker, extractor_version)
           VALUES (%(a)s, 'direct', %(q)s, 0, length(%(q)s), 'Ana Ruiz', 'test')""",
        {"a": article_id, "q": quote},
    )
    return article_id


MALFORMED = [
    "not json",
    "[1,2]",
    '{"article_id": "x"}',
    "null",
    '"a string"',
    '{"article_id": 1, "statement_ids": "1"}',
    '{"article_id": 1, "statement_ids": ["x"]}',
    '{"article_id": 1, "statement_ids": [99999999999999999999]}',
    '{"article_id": true, "feed_id": null, "statement_ids": [1]}',
    '{"article_id": 1, "feed_id": "feed", "statement_ids": [1]}',
    "[" * 7000,
    "x" * 7900,
]


def test_tail_ignores_malformed_notifications_and_goes_on(migrated, conn, settings, caplog):
    """Anyone who may connect can NOTIFY the channel: tail logs what it cannot read and keeps going."""
    as_analyst = replace(settings, database_url=_as_user(migrated, ANALYST))
    if not _logs_in(migrated, ANALYST):
        as_analyst = settings
    printed: list[str] = []
    result: list[int] = []
    listener = threading.Thread(
        target=lambda: result.append(tail(as_analyst, limit=1, timeout=20, out=printed.append)), daemon=True
    )
    listener.start()
    deadline = time.monotonic() + 10
    while not conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
    ).fetchone()[0]:
        assert time.monotonic() < deadline, "tail never started listening"
        time.sleep(0.05)

    caplog.set_level(logging.WARNING, logger="pipeline.stream")
    for payload in MALFORMED:
        conn.execute("SELECT pg_notify('newsflow_articles', %(p)s)", {"p": payload})
    sender, _ = _connect_as(migrated, ANALYST)
    with sender:  # the NOTIFY statement needs no privilege, so the analyst can still send one
        sender.execute("NOTIFY newsflow_articles, 'sent by an analyst'")
    time.sleep(0.5)
    assert listener.is_alive(), "tail stopped on a malformed notification"

    with conn.transaction():
        article_id = _store_statement(conn, "The ferry will run every hour from Monday.")
        store.notify_stored(conn, article_id, None)
    listener.join(timeout=20)
    assert result == [1]
    assert len(printed) == 1 and "Ana Ruiz" in printed[0] and "The ferry will run every hour" in printed[0]
    ignored = [r for r in caplog.records if "malformed notification" in r.getMessage()]
    assert len(ignored) == len(MALFORMED) + 1
    assert all(len(r.getMessage()) < 300 for r in ignored)
