"""Reprocessing from stored raw HTML, the task functions the DAGs share, and their CLI."""

from __future__ import annotations

import pytest

from pipeline import analyse, tasks
from pipeline.demo import serve_demo_site
from pipeline.ingest import ingest
from pipeline.reprocess import Selection, reprocess

from .conftest import table_counts

STATEMENTS = "SELECT article_id, kind, quote, speaker, cue FROM statements ORDER BY article_id, quote_start"


@pytest.fixture
def loaded(settings, conn, site) -> str:
    feed_url = serve_demo_site(site)
    summary = ingest(settings, [feed_url])
    assert summary.stored == 5
    return feed_url


def _selection(**kw) -> Selection:
    return tasks.reprocess_selection(
        kw.get("since"), kw.get("until"), kw.get("by", "published"), kw.get("outdated_only", False)
    )


def test_reprocess_a_date_range_redoes_the_same_rows_without_fetching(settings, conn, site, loaded):
    before = conn.execute(STATEMENTS).fetchall()
    counts = table_counts(conn)
    requests = list(site.requests)
    summary = reprocess(settings, _selection(since="2026-10-01", until="2026-10-31"))
    assert (summary.status, summary.seen, summary.reprocessed) == ("succeeded", 5, 5)
    assert conn.execute(STATEMENTS).fetchall() == before  # same versions, same output
    assert table_counts(conn) == counts
    assert site.requests == requests
    assert tasks.reconcile(settings.database_url, [summary.run_id])["stored"] == 5

    only_early = reprocess(settings, _selection(since="2026-10-01", until="2026-10-09"))
    assert only_early.seen == 2  # published 5 and 8 October
    by_fetch = reprocess(settings, _selection(since="2000-01-01", by="fetched"))
    assert by_fetch.seen == 5


def test_outdated_only_follows_the_rule_version(settings, conn, site, loaded):
    """Rows derived by older rules are selected and redone; current ones are left alone.

    Reprocessing runs in the page workers (fresh processes), so the older rules are
    represented by older version stamps and altered rows, not by patching this process.
    """
    assert reprocess(settings, _selection(outdated_only=True)).seen == 0
    requests = list(site.requests)
    current = analyse.NLP_VERSION
    before = conn.execute(STATEMENTS).fetchall()
    old = conn.execute("SELECT min(id) FROM articles").fetchone()[0]
    conn.execute("UPDATE articles SET nlp_version = 'statements-0' WHERE id = %(id)s", {"id": old})
    conn.execute(
        "UPDATE statements SET kind = 'direct', extractor_version = 'statements-0' WHERE article_id = %(id)s",
        {"id": old},
    )
    summary = reprocess(settings, _selection(outdated_only=True))
    assert (summary.seen, summary.reprocessed) == (1, 1)
    assert conn.execute(STATEMENTS).fetchall() == before  # what the current rules say, again
    assert {r[0] for r in conn.execute("SELECT DISTINCT extractor_version FROM statements")} == {current}
    assert reprocess(settings, _selection(outdated_only=True)).seen == 0
    assert site.requests == requests


def test_an_article_that_no_longer_extracts_is_kept_as_it_was(settings, conn, loaded):
    victim, text = conn.execute("SELECT id, text FROM articles ORDER BY id LIMIT 1").fetchone()
    statements = conn.execute(
        "SELECT quote FROM statements WHERE article_id = %(id)s ORDER BY 1", {"id": victim}
    ).fetchall()
    conn.execute(
        "UPDATE articles SET raw_html = %(html)s WHERE id = %(id)s",
        {"html": b"<html><body><p>Consent</p></body></html>", "id": victim},
    )
    summary = reprocess(settings, _selection(since="2026-01-01"))
    assert summary.status == "succeeded"
    assert (summary.seen, summary.reprocessed, dict(summary.failed)) == (5, 4, {"extraction_empty": 1})
    assert conn.execute("SELECT text FROM articles WHERE id = %(id)s", {"id": victim}).fetchone()[0] == text
    after = conn.execute("SELECT quote FROM statements WHERE article_id = %(id)s ORDER BY 1", {"id": victim}).fetchall()
    assert after == statements
    ledger = conn.execute(
        "SELECT state, reason FROM ops.run_articles WHERE article_id = %(id)s", {"id": victim}
    ).fetchall()
    assert ledger == [("failed", "extraction_empty")]
    assert tasks.reconcile(settings.database_url, [summary.run_id])["quarantined"] == 1


def test_plan_and_chunks_cover_the_selection(settings, conn, loaded):
    chunks = tasks.reprocess_plan(settings.database_url, "2026-01-01", None, "published", False, chunk_size=2)
    assert len(chunks) == 3
    assert all(set(c) == {"since", "until", "by", "outdated_only", "first_id", "last_id"} for c in chunks)
    run_ids = [tasks.reprocess_chunk(settings.database_url, **chunk) for chunk in chunks]
    assert tasks.reconcile(settings.database_url, run_ids) == {
        "runs": 3,
        "seen": 5,
        "stored": 5,
        "duplicate": 0,
        "quarantined": 0,
    }
    assert tasks.reprocess_plan(settings.database_url, "2030-01-01", None, "published", False) == []


def test_reconcile_fails_loudly_when_a_ledger_does_not_add_up(settings, conn, loaded):
    run_id = conn.execute("SELECT id FROM ops.runs WHERE kind = 'ingest'").fetchone()[0]
    assert tasks.reconcile(settings.database_url, [run_id])["stored"] == 5
    conn.execute("DELETE FROM ops.run_items WHERE ctid IN (SELECT ctid FROM ops.run_items LIMIT 1)")
    with pytest.raises(tasks.LedgerMismatch, match="ledger has"):
        tasks.reconcile(settings.database_url, [run_id])
    with pytest.raises(tasks.LedgerMismatch, match="not in ops.runs"):
        tasks.reconcile(settings.database_url, [run_id + 1000])
    conn.execute("UPDATE ops.runs SET status = 'failed', message = 'killed' WHERE id = %(id)s", {"id": run_id})
    with pytest.raises(tasks.LedgerMismatch, match="killed"):
        tasks.reconcile(settings.database_url, [run_id])


def test_tasks_list_feeds_and_ingest_one(settings, conn, site):
    feed_url = serve_demo_site(site)
    assert tasks.prepare_database(settings.database_url) >= 4
    conn.execute("INSERT INTO feeds (url) VALUES (%(a)s), (%(b)s)", {"a": feed_url, "b": site.url("/off.xml")})
    conn.execute("UPDATE feeds SET enabled = false WHERE url = %(b)s", {"b": site.url("/off.xml")})
    assert tasks.enabled_feeds(settings.database_url) == [feed_url]


def test_libpq_url_from_connection_fields():
    url = tasks.libpq_url(
        host="db.internal",
        port=5433,
        login="news flow",
        password="p@ss:/word",
        database="newsflow",
        extra={"sslmode": "require", "cursor": "dictcursor", "application_name": "newsflow airflow"},
    )
    assert url == (
        "postgresql://news%20flow:p%40ss%3A%2Fword@db.internal:5433/newsflow"
        "?sslmode=require&application_name=newsflow%20airflow"
    )
    assert tasks.libpq_url(host="::1", port=None, login=None, password=None, database=None) == "postgresql://[::1]"
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(url)["password"] == "p@ss:/word"


def test_cli_reprocess(settings, loaded, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    assert main(["reprocess", "--since", "2026-10-01", "--until", "2026-10-31"]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "reprocessed            5" in out
    assert main(["reprocess", "--outdated-only"]) == 0
    assert "articles selected        0" in capsys.readouterr().out
    assert main(["reprocess"]) == 2
    assert "say what to reprocess" in capsys.readouterr().err
