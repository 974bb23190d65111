"""Faults mid-run: the database going away, kill -9, Ctrl-C, two loaders at once (RELIABILITY.md C4, C5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from pipeline.cli import main
from pipeline.demo import serve_demo_site
from pipeline.ingest import RunAborted, ingest
from pipeline.loopback import Reply

from .conftest import table_counts
from .pages import FeedEntry, news_page, rss

DERIVED = ("articles", "entities", "entity_mentions", "statements", "feed_items")


def _story(i: int) -> list[str]:
    return [
        f"The port authority of town number {i} said on Tuesday that it would extend the northern pier.",
        f'"We expect the work in town {i} to take two years," the authority\'s director, Maria Olsen, said.',
        f"The council of town {i} approved the budget in a vote of nine to two after a long debate.",
        f"Olsen said the extension of pier {i} would let larger ferries dock during the winter storms.",
    ]


def _site_with_stories(site, n: int, slow_from: int | None = None, hook=None) -> str:
    entries = []
    for i in range(n):
        page = news_page(f"Pier story {i}", _story(i)).encode()

        def handler(_h, page=page, i=i):
            if hook is not None:
                hook(i)
            if slow_from is not None and i >= slow_from:
                time.sleep(0.5)
            return Reply(200, page, {"Content-Type": "text/html"})

        site.routes[f"/story/{i}"] = handler
        entries.append(FeedEntry(f"story {i}", site.url(f"/story/{i}"), guid=f"s{i}"))
    body = rss(entries).encode()

    def feed(h):
        """Honours conditional GET, so a rerun only sees the items if the run saved no validator early."""
        if h.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(200, body, {"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    site.routes["/feed.xml"] = feed
    return site.url("/feed.xml")


def test_database_connection_lost_mid_run_then_rerun_completes(settings, site, capsys, monkeypatch):
    killed = threading.Event()

    def kill_sessions(i: int) -> None:
        if i == 40 and not killed.is_set():  # mid-run: once some articles are stored, not before
            killed.set()
            with psycopg.connect(settings.database_url, autocommit=True) as admin:
                deadline = time.monotonic() + 60  # fetching runs ahead of NLP: wait for the first stores
                while time.monotonic() < deadline and not admin.execute("SELECT count(*) FROM articles").fetchone()[0]:
                    time.sleep(0.05)
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

    feed = _site_with_stories(site, 50, hook=kill_sessions)
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NEWSFLOW_HOST_MIN_DELAY", "0")
    assert main(["ingest", "--feed", feed]) == 2
    err = capsys.readouterr().err
    assert "database connection lost" in err and "Traceback" not in err
    conn = psycopg.connect(settings.database_url, autocommit=True)
    partial = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert 0 < partial < 50
    # Nothing half-written: every stored article has its ledger row.
    assert conn.execute("SELECT count(*) FROM feed_items WHERE state = 'stored'").fetchone()[0] == partial

    assert main(["ingest", "--feed", feed]) == 0
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 50
    assert conn.execute("SELECT count(*) FROM feed_items").fetchone()[0] == 50
    conn.close()


def test_kill_9_then_rerun_ends_with_the_same_rows(settings, conn, site, pg_server, tmp_path):
    feed = _site_with_stories(site, 40, slow_from=20)
    env = {**os.environ, "NEWSFLOW_DATABASE_URL": settings.database_url, "NEWSFLOW_HOST_MIN_DELAY": "0"}
    cmd = [sys.executable, "-m", "pipeline.cli", "ingest", "--feed", feed]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = (
            conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'articles'").fetchone()[0]
            and (conn.execute("SELECT count(*) FROM articles").fetchone()[0])
        )
        if stored:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert 0 < killed_at < 40
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=300).returncode == 0
    after_rerun = table_counts(conn)

    # The same feed ingested without interruption into a fresh database.
    fresh = f"newsflow_test_fresh_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{fresh}"')
        admin.execute(f'CREATE DATABASE "{fresh}"')
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(pg_server)
        params["dbname"] = fresh
        clean_env = {**env, "NEWSFLOW_DATABASE_URL": make_conninfo(**params)}
        assert subprocess.run(cmd, env=clean_env, capture_output=True, timeout=300).returncode == 0
        with psycopg.connect(clean_env["NEWSFLOW_DATABASE_URL"], autocommit=True) as other:
            uninterrupted = table_counts(other)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
    assert {t: after_rerun[t] for t in DERIVED} == {t: uninterrupted[t] for t in DERIVED}


def test_two_loaders_on_the_same_feed_store_nothing_twice(settings, conn, site):
    feed = serve_demo_site(site)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(ingest(settings, [feed]))
        except Exception as exc:  # pragma: no cover - surfaced by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert all(not isinstance(r, Exception) for r in results), results
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM feed_items").fetchone()[0] == 5
    states = conn.execute("SELECT state, count(*) FROM feed_items GROUP BY 1").fetchall()
    assert states == [("stored", 5)]
    one_run = table_counts(conn)
    ingest(settings, [feed])
    assert table_counts(conn) == one_run


@pytest.mark.parametrize("bad", ["postgresql://nobody@127.0.0.1:1/none"])
def test_unreachable_database_is_a_clear_error(settings, site, bad, capsys, monkeypatch):
    from dataclasses import replace

    from pipeline.db import DatabaseUnavailable

    feed = serve_demo_site(site)
    with pytest.raises(DatabaseUnavailable, match="cannot connect to the database"):
        ingest(replace(settings, database_url=bad), [feed])
    assert site.requests == []  # nothing fetched for a run that cannot be recorded
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", bad)
    assert main(["ingest", "--feed", feed]) == 2
    err = capsys.readouterr().err
    assert err.startswith("newsflow: error: cannot connect to the database") and "Traceback" not in err


def test_database_lost_while_storing_aborts_the_run(settings, conn, site, monkeypatch):
    """The other failure the CLI reports as a message: ``RunAborted``. The lost connection
    cannot end its run's record; the next run finds the run's lock gone and marks it aborted."""
    from pipeline import store

    real = store.store_article

    def lost(conn_, *args, **kwargs):
        conn.execute("SELECT pg_terminate_backend(%s)", (conn_.info.backend_pid,))
        return real(conn_, *args, **kwargs)

    feed = serve_demo_site(site)
    with monkeypatch.context() as patch:
        patch.setattr(store, "store_article", lost)
        with pytest.raises(RunAborted, match="database connection lost"):
            ingest(settings, [feed])
    assert conn.execute("SELECT status FROM ops.runs").fetchall() == [("running",)]
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 0
    assert ingest(settings, [feed]).stored == 5
    runs = conn.execute("SELECT status FROM ops.runs ORDER BY id").fetchall()
    assert runs == [("aborted",), ("succeeded",)]


def test_ctrl_c_on_newsflow_run_quarantines_nothing(settings, site, tmp_path):
    """A terminal's Ctrl-C signals the whole process group, page workers included (issue 13,
    item 5): the run finishes or releases the item in flight, and quarantines nothing."""
    sentence = "<div><p>Paragraph {} has several words in it to keep the extractor busy.</p></div>"
    heavy = ("<html><body>" + "".join(sentence.format(i) for i in range(3000)) + "</body></html>").encode()
    served = threading.Event()

    def light_stored() -> bool:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            if not conn.execute("SELECT to_regclass('public.articles') IS NOT NULL").fetchone()[0]:
                return False
            return conn.execute("SELECT count(*) FROM articles").fetchone()[0] > 0

    def heavy_page(_h) -> Reply:
        # Held back until the first page is stored: the workers are up and idle, so this page
        # is handed to one at once and takes seconds to extract.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not light_stored():
            time.sleep(0.1)
        served.set()
        return Reply(200, heavy, {"Content-Type": "text/html"})

    site.add("/light", news_page("Pier story", _story(1)))
    site.routes["/heavy"] = heavy_page
    feed = site.add(
        "/feed.xml",
        rss(
            [FeedEntry("light", site.url("/light"), guid="light"), FeedEntry("heavy", site.url("/heavy"), guid="heavy")]
        ),
        "application/rss+xml",
    )
    env = {
        **os.environ,
        "NEWSFLOW_DATABASE_URL": settings.database_url,
        "NEWSFLOW_HOME": str(tmp_path / "home"),
        "NEWSFLOW_HOST_MIN_DELAY": "0",
        "NEWSFLOW_NLP_WORKERS": "2",  # one extracting, one idle: neither may die of the Ctrl-C
        "NEWSFLOW_NLP_MAX_CHARS": "3000",
    }
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--feed", feed, "--poll-min", "1", "--duration", "300"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert served.wait(240), "the heavy page was never requested"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the parent and its workers
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out + err
    assert "received SIGINT" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "replacing worker" not in err, err
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = dict(conn.execute("SELECT guid, state FROM feed_items").fetchall())
        assert rows.get("light") == "stored" and rows.get("heavy") in ("stored", None), rows  # stored or released
        assert [s for (s,) in conn.execute("SELECT status FROM ops.runs")] == ["succeeded"]
        if rows.get("heavy") is None:  # released: the next run stores it
            rerun = subprocess.run(
                [sys.executable, "-m", "pipeline.cli", "ingest", "--feed", feed],
                env=env,
                capture_output=True,
                timeout=300,
            )
            assert rerun.returncode == 0, rerun.stderr
        rows = dict(conn.execute("SELECT guid, state FROM feed_items").fetchall())
        assert rows == {"light": "stored", "heavy": "stored"}
