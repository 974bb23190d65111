"""Stories (issue 18): copies of one text across outlets grouped, on a real PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from pipeline import db, store, stories
from pipeline.analyse import Analysis
from pipeline.extract import Extracted
from pipeline.feeds import FeedItem

VOCAB = [
    f"{a}{b}"
    for a in ("har", "bor", "cou", "nci", "mar", "ket", "sta", "tio", "bri", "dge", "por", "tal")
    for b in ("a", "e", "i", "o", "u", "en", "er", "on", "ly", "ed", "ing", "s")
]


def text(seed: int, words: int = 300) -> str:
    """A deterministic article of ``words`` words in sentences of 12."""
    rng = random.Random(seed)
    out = [rng.choice(VOCAB) for _ in range(words)]
    return " ".join(" ".join(out[i : i + 12]).capitalize() + "." for i in range(0, words, 12))


def edited(original: str, seed: int, *, trim: float = 0.0, extra: str = "", edits: int = 0) -> str:
    rng = random.Random(seed)
    words = original.split()
    if trim:
        words = words[: int(len(words) * (1 - trim))]
    for _ in range(edits):
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words) + (" " + extra if extra else "")


# Pure -------------------------------------------------------------------------------------------


def test_signatures_are_stable_and_copies_match():
    a = text(1)
    assert stories.signature(a) == stories.signature(a)
    assert len(stories.signature(a).band_keys) == stories.BANDS
    sa = stories.signature(a)
    assert stories.same_story(sa, stories.signature(a.upper().replace(".", ",")))  # case and punctuation
    assert stories.same_story(sa, stories.signature(edited(a, 2, edits=6)))  # copy-edits
    assert stories.same_story(sa, stories.signature(edited(a, 3, trim=0.5)))  # half the ending cut
    assert stories.same_story(sa, stories.signature(edited(a, 4, extra=text(99, 80))))  # a local paragraph
    assert not stories.same_story(sa, stories.signature(text(2)))


def test_a_long_article_quoting_a_few_sentences_of_another_is_another_story():
    a = text(1, 400)
    quoting = text(5, 400) + " " + " ".join(a.split()[:60])
    assert not stories.same_story(stories.signature(a), stories.signature(quoting))


def test_short_texts_never_merge_on_shingles():
    brief = text(7, 40)
    sig = stories.signature(brief)
    assert sig.band_keys == ()
    assert not stories.same_story(sig, stories.signature(brief + " Ends."))


# In the store ---------------------------------------------------------------------------------


def _stored(conn, run_id, feed_id, url, body, *, published=None):
    item = FeedItem(key=url, guid=url, link=url, link_error=None, title="t", published_at=published)
    ex = Extracted(
        title="Title", text=body, published_at=None, author=None, language="en", site_name=None, description=None
    )
    page = store.Page(
        url=url, html=b"<html></html>", content_type="text/html", fetched_at=datetime.now(UTC), extracted=ex
    )
    return store.store_article(conn, run_id, feed_id, item, page, Analysis(skipped="test"), published)


@pytest.fixture
def loader(conn):
    db.upgrade(conn)
    feed = store.register_feed(conn, "https://feeds.example/rss")
    run_id = conn.execute("INSERT INTO ops.runs (kind) VALUES ('test') RETURNING id").fetchone()[0]
    return lambda url, body, **kw: _stored(conn, run_id, feed.id, url, body, **kw)


def _story(conn, url):
    return conn.execute("SELECT story_id, story_role FROM articles WHERE url = %s", (url,)).fetchone()


def test_exact_copy_on_another_outlet_is_a_publication_of_the_story(conn, loader):
    """Changed rule (issue 18): an exact copy on another outlet used to be a duplicate."""
    body = text(11)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert loader("https://www.wire.example/a", body, published=t0)[0] == "stored"
    assert loader("https://paper.example/b", body, published=t0 + timedelta(hours=1))[0] == "stored"
    # the same text at a second URL of the same outlet (m. is the same site) stays a duplicate
    state, dup_of = loader("https://m.wire.example/a-again", body)
    assert (
        state == "duplicate"
        and dup_of == conn.execute("SELECT id FROM articles WHERE url = 'https://www.wire.example/a'").fetchone()[0]
    )
    first, copy = _story(conn, "https://www.wire.example/a"), _story(conn, "https://paper.example/b")
    assert first[0] == copy[0] and (first[1], copy[1]) == ("first", "copy")
    # a short brief copied verbatim is grouped by its hash, not its shingles
    brief = text(12, 30)
    loader("https://wire.example/brief", brief)
    loader("https://other.example/brief", brief)
    assert _story(conn, "https://wire.example/brief")[0] == _story(conn, "https://other.example/brief")[0]


def test_roles_copies_updates_and_a_late_first(conn, loader):
    body = text(21)
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    loader("https://a.example/1", body, published=t0)
    loader("https://b.example/1", edited(body, 1, trim=0.3, extra=text(70, 40)), published=t0 + timedelta(hours=2))
    loader("https://a.example/1-updated", edited(body, 2, edits=5), published=t0 + timedelta(hours=3))
    loader("https://c.example/other", text(22), published=t0)
    # an archive backfill stores a copy published before all of them: it becomes the first
    loader("https://d.example/early", edited(body, 3, edits=3), published=t0 - timedelta(days=1))
    roles = dict(
        conn.execute(
            "SELECT url, story_role FROM articles WHERE story_id = "
            "(SELECT story_id FROM articles WHERE url = 'https://a.example/1')"
        ).fetchall()
    )
    assert roles == {
        "https://d.example/early": "first",
        "https://a.example/1": "copy",
        "https://b.example/1": "copy",
        "https://a.example/1-updated": "update",
    }
    row = conn.execute(
        "SELECT articles, outlets, first_outlet, outlet_list FROM v_stories "
        "WHERE first_article_id = (SELECT id FROM articles WHERE url = 'https://d.example/early')"
    ).fetchone()
    assert row == (4, 3, "d.example", ["d.example", "a.example", "b.example"])
    assert conn.execute("SELECT count(*) FROM stories").fetchone()[0] == 2


def test_a_rerun_changes_no_count(conn, loader):
    bodies = [text(31), text(32)]
    for i, body in enumerate(bodies):
        loader(f"https://a.example/{i}", body)
        loader(f"https://b.example/{i}", edited(body, i, edits=4))

    def counts():
        return conn.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM stories), "
            "(SELECT count(*) FROM story_bands), (SELECT count(*) FROM story_signatures)"
        ).fetchone()

    before = counts()
    for i, body in enumerate(bodies):
        assert loader(f"https://b.example/{i}", edited(body, i, edits=4))[0] == "duplicate"
    assert store.group_unsigned(conn) == {"signed": 0, "grouped": 0}
    assert counts() == before == (4, 2, 4 * stories.BANDS, 4)


def test_two_loaders_storing_copies_at_once_end_in_one_story(settings, conn, monkeypatch):
    """Real threads on their own connections; each waits inside its transaction after probing."""
    db.upgrade(conn)
    feed = store.register_feed(conn, "https://feeds.example/rss")
    run_id = conn.execute("INSERT INTO ops.runs (kind) VALUES ('test') RETURNING id").fetchone()[0]
    real = store.matching_story

    def slow(*args, **kwargs):
        found = real(*args, **kwargs)
        time.sleep(0.3)  # without the band locks both loaders would probe before either commits
        return found

    monkeypatch.setattr(store, "matching_story", slow)
    for round_ in range(3):
        body = text(100 + round_)
        copies = [body, edited(body, round_, edits=5)]
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def load(i, copies=copies, barrier=barrier, errors=errors, round_=round_):
            try:
                with db.connect(settings.database_url) as own:
                    barrier.wait()
                    _stored(own, run_id, feed.id, f"https://outlet{i}.example/{round_}", copies[i])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        ids = {_story(conn, f"https://outlet{i}.example/{round_}")[0] for i in range(2)}
        assert len(ids) == 1
    assert conn.execute("SELECT count(*) FROM stories").fetchone()[0] == 3


def test_the_migration_groups_the_articles_of_an_existing_database(conn, monkeypatch):
    """A database from before stories, with copies the old rules kept apart, gets them grouped."""
    every = db.migrations()
    monkeypatch.setattr(db, "migrations", lambda: [m for m in every if m.version < 10])
    db.upgrade(conn)
    body = text(41)
    for url, words in [
        ("https://a.example/x", body),
        ("https://b.example/x", edited(body, 1, edits=5)),
        ("https://c.example/y", text(42)),
        ("https://d.example/brief", text(43, 30)),
    ]:
        conn.execute(
            "INSERT INTO articles (url, text, raw_html, fetched_at, content_hash, extractor_version) "
            "VALUES (%s, %s, '', now(), md5(%s), 'v')",
            (url, words, words),
        )
    monkeypatch.setattr(db, "migrations", lambda: every)
    assert "010_stories.sql" in db.upgrade(conn)
    assert conn.execute("SELECT count(*) FROM stories").fetchone()[0] == 4  # one per article at first
    assert store.group_unsigned(conn) == {"signed": 4, "grouped": 1}
    assert _story(conn, "https://a.example/x")[0] == _story(conn, "https://b.example/x")[0]
    assert conn.execute("SELECT count(*) FROM stories").fetchone()[0] == 3
    assert store.group_unsigned(conn) == {"signed": 0, "grouped": 0}


def test_statement_outlets_counts_a_quote_once_per_outlet(conn, loader):
    body = text(51)
    ids = []
    for outlet in ("a", "b", "c"):
        loader(f"https://{outlet}.example/s", edited(body, ord(outlet), edits=2))
        ids.append(
            conn.execute("SELECT id FROM articles WHERE url = %s", (f"https://{outlet}.example/s",)).fetchone()[0]
        )
    for article_id, quote in zip(
        ids, ["We will build it.", "we will build it", "Something else entirely."], strict=True
    ):
        conn.execute(
            "INSERT INTO statements (article_id, kind, quote, quote_start, quote_end, speaker, extractor_version) "
            "VALUES (%s, 'direct', %s, 0, 5, 'Vidal', 'v')",
            (article_id, quote),
        )
    rows = conn.execute(
        "SELECT quote, speaker, outlets, outlet_list FROM v_statement_outlets ORDER BY outlets DESC"
    ).fetchall()
    assert rows == [
        ("We will build it.", "Vidal", 2, ["a.example", "b.example"]),
        ("Something else entirely.", "Vidal", 1, ["c.example"]),
    ]


def test_stories_command_and_report_sections(database_url, conn, loader, tmp_path, monkeypatch, capsys):
    from pipeline.cli import main
    from pipeline.report import build_report

    body = text(61)
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    for n, outlet in enumerate(("wire", "herald", "gazette")):
        loader(f"https://www.{outlet}.example/s", edited(body, n, edits=3), published=t0 + timedelta(hours=n))
        article_id = conn.execute("SELECT id FROM articles WHERE outlet = %s", (f"{outlet}.example",)).fetchone()[0]
        conn.execute(
            "INSERT INTO statements (article_id, kind, quote, quote_start, quote_end, speaker, extractor_version) "
            "VALUES (%s, 'direct', 'The bridge opens in May.', 0, 5, 'Clara Vidal', 'v')",
            (article_id,),
        )
    loader("https://www.wire.example/alone", text(62), published=t0)
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFLOW_HOME", str(tmp_path / "home"))
    assert main(["stories", "--min-outlets", "2"]) == 0
    out = capsys.readouterr().out
    assert "first: wire.example" in out and "herald.example, gazette.example" in out
    assert out.count("Title") == 1  # the story carried by one outlet is left out
    assert main(["stories", "--since", "2026-03-01"]) == 0
    assert "no stories found" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:  # bounded like every numeric option: a usage error
        main(["stories", "--min-outlets", "0"])
    assert usage.value.code == 2
    assert main(["stories", "--group"]) == 0
    assert "signed 0 articles" in capsys.readouterr().out

    page = build_report(conn, tmp_path / "report", None).read_text(encoding="utf-8")
    assert "Most carried stories" in page and "Quotes carried by most outlets" in page
    assert "The bridge opens in May." in page and "wire.example, herald.example, gazette.example" in page
    empty = build_report(conn, tmp_path / "later", datetime(2027, 1, 1, tzinfo=UTC)).read_text(encoding="utf-8")
    assert "No story carried by two outlets or more in this period" in empty


def test_reprocessing_keeps_story_membership(settings, conn, site):
    """`newsflow reprocess` redoes text and analysis from raw HTML; stories and roles stay."""
    from pipeline.demo import serve_demo_site
    from pipeline.ingest import ingest
    from pipeline.reprocess import Selection, reprocess

    assert ingest(settings, [serve_demo_site(site)]).stored == 5
    ids = [row[0] for row in conn.execute("SELECT id FROM articles ORDER BY id")]
    # an analyst-visible grouping to keep: two of the five as one story
    conn.execute("UPDATE articles SET story_id = %s, story_role = 'copy' WHERE id = %s", (ids[0], ids[1]))
    before = conn.execute("SELECT id, story_id, story_role FROM articles ORDER BY id").fetchall()
    summary = reprocess(settings, Selection(since=datetime(2000, 1, 1, tzinfo=UTC)))
    assert summary.reprocessed == 5
    assert conn.execute("SELECT id, story_id, story_role FROM articles ORDER BY id").fetchall() == before


def test_db_upgrade_groups_articles_an_ingest_left_unsigned(database_url, conn, monkeypatch, capsys, tmp_path):
    """An ingest applies migration 010 without grouping; the next `newsflow db upgrade` groups."""
    from pipeline.cli import main

    db.upgrade(conn)
    body = text(81)
    for url, words in [("https://a.example/u", body), ("https://b.example/u", edited(body, 1, edits=4))]:
        story = conn.execute("INSERT INTO stories DEFAULT VALUES RETURNING id").fetchone()[0]
        conn.execute(
            "INSERT INTO articles (url, text, raw_html, fetched_at, content_hash, extractor_version, story_id, "
            "story_role) VALUES (%s, %s, '', now(), md5(%s), 'v', %s, 'first')",
            (url, words, words, story),
        )
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFLOW_HOME", str(tmp_path / "home"))
    assert main(["db", "upgrade"]) == 0
    assert "stories: signed 2 older articles, 1 joined another story" in capsys.readouterr().out
    assert _story(conn, "https://a.example/u") == (_story(conn, "https://b.example/u")[0], "first")
    assert _story(conn, "https://b.example/u")[1] == "copy"
    assert main(["db", "upgrade"]) == 0
    assert "stories:" not in capsys.readouterr().out
