"""The seed article behind an RSS feed, next to a 404 item, ingested twice (issue 3)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from pipeline.ingest import ingest

from .conftest import table_counts
from .pages import CHROME_MARKERS, FeedEntry, rss, seed_page


@pytest.fixture
def seed_feed(site, seed_text) -> str:
    title, page = seed_page(seed_text)
    site.add("/world/kremlin-us-midterms", page)
    feed = rss(
        [
            FeedEntry(
                title,
                site.url("/world/kremlin-us-midterms?utm_source=rss&utm_medium=feed"),
                "Wed, 09 Nov 2022 11:32:00 GMT",
                "seed-1",
            ),
            FeedEntry(
                "A story that is gone",
                site.url("/world/removed-story"),
                "Wed, 09 Nov 2022 12:00:00 GMT",
                "gone-1",
            ),
        ],
        link=site.base,
    )
    return site.add("/rss.xml", feed, "application/rss+xml")


def _statements(conn: psycopg.Connection) -> list[tuple[str, str, str | None]]:
    return conn.execute(
        """SELECT s.quote, s.kind, e.name FROM statements s
           LEFT JOIN entities e ON e.id = s.speaker_entity_id ORDER BY s.quote_start"""
    ).fetchall()


def _by_speaker(rows, fragment: str) -> list[str | None]:
    return [name for quote, _kind, name in rows if fragment in quote]


def test_seed_article_ingested_exactly(settings, conn, seed_feed, site):
    summary = ingest(settings, [seed_feed])
    assert summary.status == "succeeded"
    assert (summary.seen, summary.stored, summary.quarantined_total) == (2, 1, 1)

    articles = conn.execute("SELECT id, url, text, published_at, raw_html FROM articles").fetchall()
    assert len(articles) == 1
    article_id, url, text, published_at, raw_html = articles[0]
    assert "utm_" not in url and url.endswith("/world/kremlin-us-midterms")
    assert published_at == datetime(2022, 11, 9, 11, 32, tzinfo=UTC)
    assert b"Related coverage" in bytes(raw_html)
    start = text.find("The relations are and will be bad")
    end = text.find("support for the US course in the world is decreasing")
    assert 0 <= start < end
    for marker in CHROME_MARKERS:
        assert marker not in text, marker

    people = {r[0] for r in conn.execute("SELECT name FROM entities WHERE label = 'PERSON'")}
    assert {"Dmitry Peskov", "Vladimir Putin", "Dmitry Medvedev"} <= people
    assert conn.execute("SELECT count(*) FROM entities WHERE name = 'Peskov'").fetchone()[0] == 0
    bare = conn.execute(
        """SELECT DISTINCT e.name FROM entity_mentions m JOIN entities e ON e.id = m.entity_id
           WHERE m.text = 'Peskov'"""
    ).fetchall()
    assert bare == [("Dmitry Peskov",)]

    rows = _statements(conn)
    for fragment in (
        "These elections cannot change anything essential",
        "We are so used to it",
        "There are no concrete plans yet",
        "We cannot say there is a dialogue",
        "will visit these territories",
    ):
        assert _by_speaker(rows, fragment) == ["Dmitry Peskov"], fragment
    two_paragraphs = [q for q, _, _ in rows if "These elections cannot change anything essential" in q][0]
    assert "We thoroughly analyze" in two_paragraphs and "will be bad" in two_paragraphs
    assert _by_speaker(rows, "support for the US course in the world is decreasing") == ["Dmitry Medvedev"]
    assert "Vladimir Putin" not in {name for _, _, name in rows}
    assert len({kind for _, kind, name in rows if name == "Dmitry Peskov"}) >= 2
    # Offsets point into the stored text.
    for quote_start, quote_end, speaker_start, speaker_end, speaker_mention in conn.execute(
        "SELECT quote_start, quote_end, speaker_start, speaker_end, speaker_mention FROM statements"
    ):
        assert 0 <= quote_start < quote_end <= len(text)
        if speaker_start is not None:
            assert text[speaker_start:speaker_end] == speaker_mention

    gone = conn.execute("SELECT state, reason, message FROM feed_items WHERE guid = 'gone-1'").fetchone()
    assert gone[0] == "quarantined" and gone[1] == "http_status" and "404" in gone[2]
    stored = conn.execute("SELECT state, article_id FROM feed_items WHERE guid = 'seed-1'").fetchone()
    assert stored == ("stored", article_id)

    before = table_counts(conn)
    hits = site.hits("/world/kremlin-us-midterms")
    second = ingest(settings, [seed_feed])
    assert second.status == "succeeded"
    assert table_counts(conn) == before
    assert site.hits("/world/kremlin-us-midterms") == hits  # a stored item is not fetched again
    assert second.unchanged == 2 and second.stored == 0


def test_cli_ingest_reports_and_exits_zero(settings, seed_feed, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NEWSFLOW_HOST_MIN_DELAY", "0.01")
    assert main(["ingest", "--feed", seed_feed]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "http_status" in out
    assert "stored" in out and "quarantined" in out
