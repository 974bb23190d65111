"""The command line, migrations and the embedded database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from pipeline import db
from pipeline.cli import main
from pipeline.demo import serve_demo_site
from pipeline.ingest import ingest

from .conftest import table_counts


def test_db_upgrade_twice_is_a_noop(database_url):
    with db.connect(database_url) as conn:
        first = db.upgrade(conn)
        assert first and first[0].startswith("001_")
        assert db.upgrade(conn) == []
        assert db.current_version(conn) == max(m.version for m in db.migrations())


def test_cli_bad_input_gets_a_message_not_a_traceback(tmp_path, capsys, monkeypatch, database_url):
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    assert main(["ingest", "--feeds", str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err
    assert "cannot read feeds file" in err and "Traceback" not in err
    assert main(["statements", str(tmp_path / "nope.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["db", "upgrade"]) == 2
    assert "cannot connect to the database" in capsys.readouterr().err


def test_statements_command_prints_json_lines(tmp_path, seed_text, capsys):
    article = tmp_path / "seed.txt"
    article.write_text(seed_text, encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("No quotes here at all.\n", encoding="utf-8")
    assert main(["statements", str(article), str(empty)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records and {r["file"] for r in records} == {str(article)}
    fields = {
        "file",
        "kind",
        "quote",
        "quote_start",
        "quote_end",
        "speaker",
        "speaker_start",
        "speaker_end",
        "cue",
        "cue_start",
        "cue_end",
    }
    for r in records:
        assert fields <= r.keys()
        assert seed_text[r["cue_start"] : r["cue_end"]] == r["cue"]


def test_demo_site_ingest_is_idempotent(settings, conn, site):
    feed = serve_demo_site(site)
    first = ingest(settings, [feed])
    assert first.status == "succeeded" and first.stored == 5
    counts = table_counts(conn)
    assert counts["articles"] == 5 and counts["statements"] >= 40
    kinds = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM statements")}
    assert kinds == {"direct", "indirect", "mixed"}
    second = ingest(settings, [feed])
    assert second.unchanged == 5 and table_counts(conn) == counts
    runs = conn.execute("SELECT status, seen, stored FROM ops.runs ORDER BY id").fetchall()
    assert runs == [("succeeded", 5, 5), ("succeeded", 0, 0)]


def test_blocked_link_is_quarantined_and_never_fetched(settings, conn, site):
    from .pages import FeedEntry, rss

    feed = site.add(
        "/feed.xml",
        rss(
            [
                FeedEntry("internal", "http://127.0.0.2:9/admin", guid="x"),
                FeedEntry("metadata", "http://169.254.169.254/latest/", guid="y"),
            ]
        ),
        "application/rss+xml",
    )
    summary = ingest(settings, [feed])
    assert summary.quarantined == {"blocked_address": 2}
    rows = conn.execute("SELECT state, reason FROM feed_items").fetchall()
    assert rows == [("quarantined", "blocked_address")] * 2


def test_main_command_on_the_embedded_database(tmp_path):
    """`newsflow db upgrade` with no database configured starts the embedded PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if k != "NEWSFLOW_DATABASE_URL"}
    env["NEWSFLOW_HOME"] = str(tmp_path / "home")
    cmd = [sys.executable, "-m", "pipeline.cli", "db", "upgrade"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "schema version" in result.stdout
    assert (Path(env["NEWSFLOW_HOME"]) / "pgdata" / "PG_VERSION").exists()
    url = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "db", "url"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.strip()
    assert url.startswith("postgresql://")


def test_feed_failure_is_recorded_and_the_run_goes_on(settings, conn, site):
    good = serve_demo_site(site)
    bad = site.add("/broken.xml", "<html><body>Server error</body></html>", "text/html")
    summary = ingest(settings, [bad, good])
    assert summary.stored == 5 and bad in summary.feeds_failed
    row = conn.execute(
        "SELECT status, consecutive_failures, last_error_reason FROM feeds WHERE url = %s", (bad,)
    ).fetchone()
    assert row == ("failing", 1, "feed_malformed")


def test_same_article_under_two_urls_is_one_article(settings, conn, site):
    from .pages import FeedEntry, news_page, rss

    paras = [f"Paragraph {i} of a story about the harbour, the council and the port authority." for i in range(8)]
    page = news_page("Harbour story", paras)
    site.add("/a", page)
    site.add("/amp/a", page)
    feed = site.add(
        "/f.xml",
        rss(
            [
                FeedEntry("one", site.url("/a?utm_source=x"), guid="1"),
                FeedEntry("two", site.url("/a"), guid="2"),
                FeedEntry("amp", site.url("/amp/a"), guid="3"),
            ]
        ),
        "application/rss+xml",
    )
    summary = ingest(settings, [feed])
    assert (summary.stored, summary.duplicate) == (1, 2)
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 1
    states = conn.execute("SELECT state, count(*) FROM feed_items GROUP BY 1 ORDER BY 1").fetchall()
    assert states == [("duplicate", 2), ("stored", 1)]


def test_psycopg_sees_no_partial_rows_after_a_failed_store(settings, conn, site, monkeypatch):
    """An article whose derived rows fail to insert leaves nothing behind (one transaction)."""
    from pipeline import store

    feed = serve_demo_site(site)

    def broken(conn_, article_id, analysis):
        conn_.execute(
            "INSERT INTO statements (article_id, kind, quote, quote_start, quote_end, "
            "extractor_version) VALUES (%s, 'bogus', 'x', 0, 1, 'v')",
            (article_id,),
        )

    monkeypatch.setattr(store, "write_analysis", broken)
    summary = ingest(settings, [feed])
    assert summary.quarantined == {"db_rejected": 5}
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM statements").fetchone()[0] == 0
    assert isinstance(conn, psycopg.Connection)


def test_loader_role_can_ingest_into_a_migrated_database(settings, conn, site):
    """Migrate as the owner once; then the write-only loader role runs ingests."""
    from dataclasses import replace

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with db.connect(settings.database_url) as owner:
        db.upgrade(owner)
    exists = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'newsflow_loader'").fetchone()
    if not exists or not exists[0]:
        import pytest

        pytest.skip("the connecting user may not create login roles here")
    params = conninfo_to_dict(settings.database_url)
    params["user"] = "newsflow_loader"
    loader = replace(settings, database_url=make_conninfo(**params))
    summary = ingest(loader, [serve_demo_site(site)])
    assert summary.status == "succeeded" and summary.stored == 5


def test_long_urls_and_republished_text(settings, conn, site):
    """Keys are hashed (a 6,000-character URL fits the index); the same text elsewhere is a duplicate."""
    from .pages import FeedEntry, news_page, rss

    paras = [f"Paragraph {i}: the harbour council met again and argued about the ferry timetable." for i in range(8)]
    long_path = "/story/" + "x" * 6000
    site.add(long_path, news_page("Harbour story", paras))
    site.add("/republished/harbour", news_page("Harbour story (republished)", paras, author="Syndication desk"))
    feed = site.add(
        "/f.xml",
        rss(
            [
                FeedEntry("long", site.url(long_path), guid="l" * 3000),
                FeedEntry("again", site.url("/republished/harbour"), guid="r"),
            ]
        ),
        "application/rss+xml",
    )
    summary = ingest(settings, [feed])
    assert (summary.stored, summary.duplicate) == (1, 1)
    original = conn.execute("SELECT id, length(url) FROM articles").fetchone()
    assert original[1] > 6000
    republished = conn.execute("SELECT state, article_id, url FROM feed_items WHERE guid = 'r'").fetchone()
    assert (
        republished[0] == "duplicate"
        and republished[1] == original[0]
        and republished[2].endswith("/republished/harbour")
    )
