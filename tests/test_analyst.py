"""The analysts' side (issue 8): views, full-text search, quotes, the report, examples/queries.sql.

Most tests read one database loaded once for the module from the bundled sample site and
the seed article (read from ../shared at test time), next to an item whose page is gone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from pipeline import analyst, db
from pipeline.config import Limits, Settings
from pipeline.demo import serve_demo_site
from pipeline.ingest import ingest
from pipeline.loopback import LoopbackSite

from .conftest import _with_dbname
from .pages import FeedEntry, rss, seed_page

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "queries.sql"
SEED_PATH = "/world/kremlin-us-midterms"
SEED_DAY = date(2022, 11, 9)
VIEWS = {
    "v_articles",
    "v_statements",
    "v_speaker_daily",
    "v_entity_daily",
    "v_comentions",
    "v_comention_pairs",
    "v_quarantine",
    "v_feed_health",
    "v_entities",
    "v_stories",
    "v_statement_outlets",
    "v_article_sources",
}
PESKOV_QUOTES = (
    "These elections cannot change anything essential",
    "We are so used to it",
    "There are no concrete plans yet",
    "We cannot say there is a dialogue",
    "will visit these territories",
)
MEDVEDEV_QUOTE = "support for the US course in the world is decreasing"


@dataclass(frozen=True)
class Loaded:
    url: str
    demo_feed: str
    seed_feed: str
    seed_title: str


@pytest.fixture(scope="module")
def loaded(pg_server: str, seed_text: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """A database holding the sample site and the seed article (plus one quarantined item)."""
    name = f"newsflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(pg_server, name)
    try:
        limits = replace(Limits(), host_min_delay=0.01, page_timeout=10.0, feed_timeout=10.0)
        settings = Settings(database_url=url, home=tmp_path_factory.mktemp("home"), limits=limits)
        with LoopbackSite() as site:
            demo_feed = serve_demo_site(site)
            title, page = seed_page(seed_text)
            site.add(SEED_PATH, page)
            seed_feed = site.add(
                "/rss.xml",
                rss(
                    [
                        FeedEntry(title, site.url(SEED_PATH), "Wed, 09 Nov 2022 11:32:00 GMT", "seed-1"),
                        FeedEntry(
                            "A story that is gone",
                            site.url("/world/removed-story"),
                            "Wed, 09 Nov 2022 12:00:00 GMT",
                            "gone-1",
                        ),
                    ],
                    link=site.base,
                ),
                "application/rss+xml",
            )
            summary = ingest(settings, [demo_feed, seed_feed])
        assert (summary.status, summary.stored, summary.quarantined_total) == ("succeeded", 6, 1)
        yield Loaded(url, demo_feed, seed_feed, title)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def lconn(loaded: Loaded) -> Iterator[psycopg.Connection]:
    with psycopg.connect(loaded.url, autocommit=True) as c:
        yield c


def _dicts(conn: psycopg.Connection, query: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _entity_id(conn: psycopg.Connection, name: str) -> int:
    return conn.execute("SELECT id FROM entities WHERE name = %(n)s", {"n": name}).fetchone()[0]


# Views --------------------------------------------------------------------------------------


def test_every_view_and_search_column_is_documented(lconn):
    rows = lconn.execute(
        """SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind = 'v'"""
    ).fetchall()
    assert {name for name, _ in rows} == VIEWS
    for name, comment in rows:
        assert comment and len(comment) > 30, name
    for table, column in (("articles", "search_tsv"), ("statements", "quote_tsv")):
        comment = lconn.execute(
            "SELECT col_description(%(t)s::regclass, attnum) FROM pg_attribute "
            "WHERE attrelid = %(t)s::regclass AND attname = %(c)s",
            {"t": table, "c": column},
        ).fetchone()[0]
        assert "websearch_to_tsquery" in comment


def test_statements_view_has_speaker_title_url_date_and_feed(lconn, loaded):
    rows = _dicts(
        lconn,
        "SELECT * FROM v_statements WHERE article_url LIKE %(u)s ORDER BY quote_start",
        {"u": f"%{SEED_PATH}"},
    )
    assert rows
    for row in rows:
        assert row["article_title"] == loaded.seed_title
        assert row["article_url"].endswith(SEED_PATH) and "utm_" not in row["article_url"]
        assert row["published_at"] == datetime(2022, 11, 9, 11, 32, tzinfo=UTC) == row["dated_at"]
        assert row["day"] == SEED_DAY
        assert (row["feed_url"], row["feed_title"]) == (loaded.seed_feed, "Test feed")
    for fragment in PESKOV_QUOTES:
        speakers = [r["speaker"] for r in rows if fragment in r["quote"]]
        assert speakers == ["Dmitry Peskov"], fragment
    peskov = [r for r in rows if r["speaker"] == "Dmitry Peskov"]
    assert {r["kind"] for r in peskov} >= {"direct", "indirect"}
    assert {r["speaker_label"] for r in peskov} == {"PERSON"}
    assert len({r["speaker_entity_id"] for r in peskov}) == 1
    (medvedev,) = [r for r in rows if MEDVEDEV_QUOTE in r["quote"]]
    assert (medvedev["speaker"], medvedev["kind"], medvedev["speaker_label"]) == ("Dmitry Medvedev", "mixed", "PERSON")
    assert "Vladimir Putin" not in {r["speaker"] for r in rows}


def test_speaker_daily_counts_the_seed_speakers(lconn):
    rows = {r["speaker"]: r for r in _dicts(lconn, "SELECT * FROM v_speaker_daily WHERE day = %(d)s", {"d": SEED_DAY})}
    peskov_id = _entity_id(lconn, "Dmitry Peskov")
    kinds = dict(
        lconn.execute(
            "SELECT kind, count(*) FROM statements WHERE speaker_entity_id = %(id)s GROUP BY kind",
            {"id": peskov_id},
        ).fetchall()
    )
    peskov = rows["Dmitry Peskov"]
    assert peskov["speaker_entity_id"] == peskov_id
    assert peskov["statements"] == sum(kinds.values()) >= len(PESKOV_QUOTES)
    assert (peskov["direct"], peskov["indirect"], peskov["mixed"]) == (
        kinds.get("direct", 0),
        kinds.get("indirect", 0),
        kinds.get("mixed", 0),
    )
    assert peskov["direct"] > 0 and peskov["indirect"] > 0 and peskov["articles"] == 1
    medvedev = rows["Dmitry Medvedev"]
    assert (medvedev["statements"], medvedev["mixed"], medvedev["articles"]) == (1, 1, 1)
    assert "Vladimir Putin" not in rows
    assert None not in rows


def test_entity_daily_counts_mentions_per_day(lconn):
    rows = {r["entity"]: r for r in _dicts(lconn, "SELECT * FROM v_entity_daily WHERE day = %(d)s", {"d": SEED_DAY})}
    assert {"Dmitry Peskov", "Dmitry Medvedev", "Vladimir Putin"} <= set(rows)
    peskov_mentions = lconn.execute(
        "SELECT count(*) FROM entity_mentions WHERE entity_id = %(id)s", {"id": _entity_id(lconn, "Dmitry Peskov")}
    ).fetchone()[0]
    assert rows["Dmitry Peskov"]["mentions"] == peskov_mentions >= 2  # "Dmitry Peskov", then "Peskov"
    assert rows["Dmitry Peskov"]["label"] == "PERSON" and rows["Dmitry Peskov"]["articles"] == 1
    total = lconn.execute("SELECT sum(mentions) FROM v_entity_daily").fetchone()[0]
    assert total == lconn.execute("SELECT count(*) FROM entity_mentions").fetchone()[0]


def test_comentions_pair_entities_of_the_same_article(lconn):
    rows = _dicts(lconn, "SELECT * FROM v_comentions WHERE day = %(d)s", {"d": SEED_DAY})
    pairs = {(r["entity_a"], r["entity_b"]) for r in rows}
    assert ("Dmitry Medvedev", "Dmitry Peskov") in pairs
    assert ("Dmitry Peskov", "Vladimir Putin") in pairs
    assert all(a < b for a, b in pairs) and len(pairs) == len(rows)
    article_entities = lconn.execute(
        """SELECT count(DISTINCT m.entity_id) FROM entity_mentions m JOIN articles a ON a.id = m.article_id
           WHERE a.url LIKE %(u)s""",
        {"u": f"%{SEED_PATH}"},
    ).fetchone()[0]
    assert len(rows) == article_entities * (article_entities - 1) // 2
    pair = _dicts(
        lconn,
        "SELECT * FROM v_comention_pairs WHERE entity_a = 'Dmitry Medvedev' AND entity_b = 'Dmitry Peskov'",
    )
    assert [(p["articles"], p["first_day"], p["last_day"]) for p in pair] == [(1, SEED_DAY, SEED_DAY)]


def test_quarantine_and_feed_health(lconn, loaded):
    (gone,) = _dicts(lconn, "SELECT * FROM v_quarantine")
    assert gone["reason"] == "http_status" and "404" in gone["message"]
    assert gone["item_url"].endswith("/world/removed-story") and gone["feed_url"] == loaded.seed_feed
    assert gone["day"] == SEED_DAY and gone["transient"] is False
    health = {r["feed_url"]: r for r in _dicts(lconn, "SELECT * FROM v_feed_health")}
    seed = health[loaded.seed_feed]
    assert (seed["items"], seed["stored"], seed["quarantined"], seed["articles"]) == (2, 1, 1, 1)
    assert float(seed["quarantine_rate"]) == 0.5 and seed["status"] == "active"
    assert seed["latest_article_at"] == datetime(2022, 11, 9, 11, 32, tzinfo=UTC)
    demo = health[loaded.demo_feed]
    assert (demo["items"], demo["stored"], demo["quarantined"], demo["articles"]) == (5, 5, 0, 5)
    assert demo["feed_title"] == "Newsflow Demo Wire"


def test_articles_view_counts_what_was_extracted(lconn):
    rows = {r["url"].rsplit("/", 1)[-1]: r for r in _dicts(lconn, "SELECT * FROM v_articles")}
    assert len(rows) == 6
    seed = rows["kremlin-us-midterms"]
    statements = lconn.execute(
        "SELECT count(*) FROM statements WHERE article_id = %(id)s", {"id": seed["article_id"]}
    ).fetchone()[0]
    assert seed["statements"] == statements > 0 and seed["mentions"] > 0 and seed["day"] == SEED_DAY


def test_filters_and_search_use_their_indexes(loaded):
    with psycopg.connect(loaded.url, autocommit=True) as c:
        c.execute("SET enable_seqscan = off")
        plans = {
            "statements_search": "SELECT * FROM v_statements WHERE quote_tsv @@ websearch_to_tsquery('english', 'x')",
            "articles_search": "SELECT * FROM v_articles WHERE search_tsv @@ websearch_to_tsquery('english', 'x')",
            "articles_dated_at": "SELECT * FROM v_statements WHERE dated_at >= now() - interval '7 days'",
            "statements_speaker": "SELECT * FROM statements WHERE speaker = 'x'",
            "entity_mentions_entity": "SELECT * FROM v_entity_daily WHERE entity_id = 1",
        }
        for index, query in plans.items():
            plan = "\n".join(r[0] for r in c.execute(f"EXPLAIN {query}"))
            assert index in plan, f"{index} not used:\n{plan}"


# Search and quotes --------------------------------------------------------------------------


def test_search_finds_midterm_in_the_seed(lconn, loaded):
    hits = analyst.search(lconn, "midterm")
    assert {h.source for h in hits} == {"quote", "article"}
    for hit in hits:
        assert hit.url.endswith(SEED_PATH) and hit.day == SEED_DAY
        assert "**midterm**" in hit.snippet
    assert [h.source for h in hits] == sorted((h.source for h in hits), reverse=True)  # quotes first
    (article,) = [h for h in hits if h.source == "article"]
    assert article.title == loaded.seed_title and article.speaker is None
    assert analyst.search(lconn, "midterm", since=analyst.parse_since("2023-01-01")) == []


def test_search_with_speaker_keeps_their_quotes_and_articles(lconn):
    hits = analyst.search(lconn, "elections", speaker="medvedev")
    quotes = [h for h in hits if h.source == "quote"]
    assert [(h.speaker, h.kind) for h in quotes] == [("Dmitry Medvedev", "mixed")]
    assert MEDVEDEV_QUOTE in quotes[0].snippet.replace("**", "")
    assert [h.url.endswith(SEED_PATH) for h in hits if h.source == "article"] == [True]
    assert analyst.search(lconn, "tankers", speaker="Medvedev") == []
    leppik = analyst.search(lconn, '"blacklist" OR tankers', speaker="Leppik")
    assert leppik and all(h.url.endswith("estonia-sanctions-tankers-price-cap") for h in leppik)


def test_quotes_by_speaker_newest_first(lconn):
    found = analyst.quotes(lconn, "peskov")
    assert {q.speaker for q in found} == {"Dmitry Peskov"}
    for fragment in PESKOV_QUOTES:
        assert any(fragment in q.quote for q in found), fragment
    both = analyst.quotes(lconn, "dmitry")
    assert {q.speaker for q in both} == {"Dmitry Peskov", "Dmitry Medvedev"}
    assert analyst.quotes(lconn, "Dmitry%Peskov") == []  # wildcards are literal text
    assert analyst.quotes(lconn, "Peskov", since=analyst.parse_since("2026-01-01")) == []
    days = [q.day for q in analyst.quotes(lconn, "e")]
    assert days == sorted(days, reverse=True) and len(set(days)) > 1


def test_parse_since():
    assert analyst.parse_since("2026-10-01") == datetime(2026, 10, 1, tzinfo=UTC)
    assert analyst.parse_since("2026-10-01T12:30:00+02:00") == datetime(2026, 10, 1, 10, 30, tzinfo=UTC)
    week = analyst.parse_since("1w")
    assert (datetime.now(UTC).date() - week.date()).days == 7 and week.time() == datetime.min.time()
    assert (datetime.now(UTC).date() - analyst.parse_since("3d").date()).days == 3
    with pytest.raises(ValueError, match="not a date"):
        analyst.parse_since("last tuesday")


def test_tables_wrap_text_but_not_urls():
    url = "http://example.invalid/" + "x" * 60
    table = analyst.render_table(("date", "text"), [("2026-10-01", "word " * 30 + "\n" + url)], (None, 40))
    lines = table.splitlines()
    assert lines[0].split() == ["date", "text"] and set(lines[1].replace(" ", "")) == {"-"}
    assert all(len(line) <= 12 + 40 for line in lines[2:] if url not in line)
    assert any(line.endswith(url) for line in lines)


def test_cli_search_and_quotes(loaded, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", loaded.url)
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["search", "midterm"]) == 0
    out = capsys.readouterr().out
    assert "**midterm**" in out and SEED_PATH in out and "2022-11-09  the Kremlin spokesman" in out
    assert max(len(line) for line in out.splitlines()) <= 120
    assert main(["search", "midterm", "--speaker", "Peskov", "--since", "2022-11-01"]) == 0
    out = capsys.readouterr().out
    assert "2022-11-09  the Kremlin spokesman" not in out and "2022-11-09  (article)" in out
    assert main(["quotes", "--speaker", "Medvedev"]) == 0
    out = capsys.readouterr().out
    assert "Dmitry Medvedev" in out and "mixed" in out and "decreasing" in out
    assert main(["quotes", "--speaker", "Nobody Atall"]) == 0
    assert "no statements found" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "x", "--since", "yesterday"])
    assert exit_info.value.code == 2
    assert "not a date" in capsys.readouterr().err


def test_cli_explains_a_database_without_the_views(database_url, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    assert main(["quotes", "--speaker", "Peskov"]) == 2
    assert "newsflow db upgrade" in capsys.readouterr().err


def test_search_columns_follow_inserts_and_updates(conn):
    db.upgrade(conn)
    article_id = conn.execute(
        """INSERT INTO articles (url, title, text, raw_html, fetched_at, content_hash, extractor_version)
           VALUES ('http://example.invalid/a', 'Harbour pilots strike', 'The harbour pilots walked out.',
                   '', now(), 'h1', 't') RETURNING id"""
    ).fetchone()[0]
    conn.execute(
        """INSERT INTO statements (article_id, kind, quote, quote_start, quote_end, extractor_version)
           VALUES (%(a)s, 'direct', 'We will not sail tonight', 0, 10, 't')""",
        {"a": article_id},
    )

    def found(word: str) -> tuple[int, int]:
        return (
            len(analyst.search(conn, word)),
            conn.execute(
                "SELECT count(*) FROM v_articles WHERE search_tsv @@ websearch_to_tsquery('english', %(w)s)",
                {"w": word},
            ).fetchone()[0],
        )

    assert found("sailing") == (1, 0)  # stemmed: sail
    assert found("pilot") == (1, 1)
    conn.execute("UPDATE statements SET quote = 'The tugs stay in port' WHERE article_id = %(a)s", {"a": article_id})
    conn.execute("UPDATE articles SET title = 'Tug crews strike', text = 'Tug crews walked out.'")
    assert found("sailing") == (0, 0)
    assert found("pilot") == (0, 0)
    assert found("tugs") == (2, 1)


# Report -------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = [
    "activity.png",
    "top_speakers.png",
    "top_entities.png",
    "top_pairs.png",
    "carried_stories.png",
    "carried_quotes.png",
    "quarantine_reasons.png",
]


def _check_report(out: Path) -> str:
    from matplotlib.image import imread
    from PIL import Image

    page = (out / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"[^>]*width="(\d+)" height="(\d+)"', page)
    assert [s for s, _, _ in sources] == PLOTS
    assert sorted(p.name for p in out.iterdir()) == sorted([*PLOTS, "index.html"])
    for name, width, height in sources:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        with Image.open(out / name) as image:
            image.verify()
        pixels = imread(out / name)
        assert pixels.shape[:2] == (int(height), int(width)), name
        assert pixels.std() > 0.01, f"{name} is blank"
    assert "<script" not in page and "<link" not in page and "http" not in page.split("<body>")[0]
    return page


def test_report_renders_the_sample_data(loaded, tmp_path, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", loaded.url)
    out = tmp_path / "october"
    assert main(["report", "--since", "2026-10-01", "--out", str(out)]) == 0
    assert str(out / "index.html") in capsys.readouterr().out
    page = _check_report(out)
    assert "Katrin Leppik" in page and "Dmitry Peskov" not in page  # the seed is from 2022
    assert "No items quarantined in this period" in page
    assert "per day" in page

    everything = tmp_path / "all"
    assert main(["report", "--out", str(everything)]) == 0
    page = _check_report(everything)
    assert "Dmitry Peskov" in page and "http_status" in page
    assert "per month" in page  # 2022 to 2026 in monthly bars


def test_report_on_an_empty_database(conn, tmp_path):
    from pipeline.report import build_report

    db.upgrade(conn)
    index = build_report(conn, tmp_path / "empty", None)
    page = _check_report(index.parent)
    assert "No articles in this period" in page and "No entities in this period" in page


# examples/queries.sql -----------------------------------------------------------------------


def _examples() -> list[tuple[int, str, str]]:
    text = EXAMPLES.read_text(encoding="utf-8")
    parts = re.split(r"^-- (\d+)\. (.+)$", text, flags=re.MULTILINE)
    return [
        (int(n), question, sql.strip()) for n, question, sql in zip(parts[1::3], parts[2::3], parts[3::3], strict=True)
    ]


EXPECTED = {
    1: lambda rows: rows[0]["speaker"] == "Katrin Leppik" and any(r["speaker"] == "Dmitry Peskov" for r in rows),
    2: lambda rows: len(rows) >= len(PESKOV_QUOTES) and all(any(f in r["quote"] for r in rows) for f in PESKOV_QUOTES),
    3: lambda rows: {"Dmitry Peskov", "Dmitry Medvedev"} <= {r["speaker"] for r in rows},
    4: lambda rows: rows[0]["url"].endswith("estonia-sanctions-tankers-price-cap"),
    5: lambda rows: {"European Union", "Riho Vaher"} <= {r["named_with"] for r in rows},
    6: lambda rows: (
        (SEED_DAY, "United States") in {(r["day"], r["entity"]) for r in rows} and len({r["day"] for r in rows}) == 6
    ),
    7: lambda rows: "Estonian Foreign Ministry" in {r["speaker"] for r in rows},
    8: lambda rows: "the Kremlin spokesman" in {r["attributed_to"] for r in rows},
    9: lambda rows: {(r["feed_title"], r["articles"]) for r in rows} == {("Newsflow Demo Wire", 5), ("Test feed", 1)},
    10: lambda rows: [(r["feed_title"], r["reason"]) for r in rows] == [("Test feed", "http_status")],
}


def test_examples_answer_ten_questions(lconn):
    examples = _examples()
    assert [n for n, _, _ in examples] == list(range(1, 11))
    analyst_role = lconn.execute("SELECT FROM pg_roles WHERE rolname = 'newsflow_analyst'").fetchone()
    if analyst_role is not None:
        lconn.execute("SET ROLE newsflow_analyst")  # what analysts run, they may run
    for number, question, query in examples:
        assert query.count(";") == 1 and query.endswith(";"), question
        rows = _dicts(lconn, query)
        assert rows, f"{number}. {question}: no rows"
        assert EXPECTED[number](rows), f"{number}. {question}: unexpected {rows[:3]}"
