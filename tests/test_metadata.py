"""Article metadata (issue 17): publication dates and their source, authors, leftovers.

Pure parts: the cases in tests/cases/extraction (a page and the JSON it must give), the
rule that settles a page date against a feed date, repeated blocks, author names. On
PostgreSQL: both dates and the source stored, article_authors, and the per-host table of
recurring lines.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline import boilerplate, bylines, dates
from pipeline.extract import extract_article
from pipeline.ingest import ingest

from .pages import FeedEntry, news_page, rss

CASES = Path(__file__).parent / "cases" / "extraction"


def _cases() -> list[str]:
    return sorted(p.stem for p in CASES.glob("*.json"))


@pytest.mark.parametrize("name", _cases())
def test_extraction_case(name):
    expected = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    ex = extract_article((CASES / f"{name}.html").read_bytes(), expected["url"])
    if "published_at" in expected:
        want = expected["published_at"]
        assert (ex.published_at.isoformat() if ex.published_at else None) == want
    if "published_at_source" in expected:
        assert ex.published_at_source == expected["published_at_source"]
    if "authors" in expected:
        assert list(ex.authors) == expected["authors"]
    for fragment in expected.get("text_has", []):
        assert fragment in ex.text
    for fragment in expected.get("text_lacks", []):
        assert fragment not in ex.text
    for fragment in expected.get("text_once", []):
        assert ex.text.count(fragment) == 1, fragment
    assert len(ex.line_fingerprints) == len(ex.text.split("\n"))


# --- a page date and a feed date -------------------------------------------------------

PAGE = datetime(2024, 5, 2, 14, 30, tzinfo=UTC)
FEED = datetime(2024, 5, 3, 9, 0, tzinfo=UTC)


def test_a_date_the_page_states_wins_over_a_disagreeing_feed_date():
    assert dates.settle(PAGE, "jsonld", FEED) == (PAGE, "jsonld")
    assert dates.settle(PAGE, "meta", FEED + timedelta(days=30)) == (PAGE, "meta")


def test_a_day_only_page_date_takes_the_feeds_time_when_they_agree():
    day = datetime(2024, 5, 3, tzinfo=UTC)
    assert dates.settle(day, "url", FEED) == (FEED, "feed")
    assert dates.settle(day, "url", FEED + timedelta(days=5)) == (day, "url")


def test_an_inferred_page_date_yields_to_the_feed():
    assert dates.settle(PAGE, "htmldate", FEED) == (FEED, "feed")
    assert dates.settle(PAGE, "htmldate", None) == (PAGE, "htmldate")


def test_no_page_date_takes_the_feed_date_and_neither_gives_none():
    assert dates.settle(None, None, FEED) == (FEED, "feed")
    assert dates.settle(None, None, None) == (None, None)


def test_a_utc_instant_is_written_on_the_urls_day():
    found = dates.Found(datetime(2019, 11, 20, 1, 50, tzinfo=UTC), "jsonld", True)
    local = dates.local_day(found, None, "https://x.example/2019/11/19/story")
    assert local.when == found.when and local.when.date().isoformat() == "2019-11-19"
    own_offset = dates.Found(datetime(2019, 11, 20, 1, 50, tzinfo=timezone(timedelta(hours=1))), "meta", True)
    assert dates.local_day(own_offset, None, "https://x.example/2019/11/19/story") is own_offset


def test_a_future_page_date_is_not_taken():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    future = dates.Found(datetime(2030, 1, 1, tzinfo=UTC), "jsonld", True)
    url = dates.url_date("https://x.example/2023/12/31/a")
    assert dates.page_date(future, None, url, now=now) == url


# --- repeated blocks, authors ------------------------------------------------------------


def test_repeated_blocks_are_kept_once_but_short_repeated_lines_stay():
    story = [
        f"Paragraph {i} tells the reader what happened at the harbour meeting on Tuesday evening, "
        "when the council voted on the dredging plan."
        for i in range(5)
    ]
    text = "\n".join(story * 3)
    assert boilerplate.drop_repeated_blocks(text) == "\n".join(story)
    interview = "What do you cook at home?\nPasta, mostly.\nWhat do you cook at home?\nSoup in winter."
    assert boilerplate.drop_repeated_blocks(interview) == interview


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["By TOM KRISHER, AP Auto Writer"], ["Tom Krisher"]),
        (["Mike Wuerthele; Malcolm Owen Monday; November"], ["Mike Wuerthele", "Malcolm Owen"]),
        (["JERUSALEM POST STAFF NOVEMBER"], []),
        (["Condé Nast", "Molly Wood"], ["Molly Wood"]),
        (["Admin"], []),
        (["Troy Smith; Troy L. Smith, Cleveland.com"], ["Troy Smith"]),
        (["Amy Kuperinsky | NJ Advance Media for NJ.com"], ["Amy Kuperinsky"]),
        (["5:45 AM PST 11/19/2019 by Jane Roe"], []),
    ],
)
def test_author_names(raw, expected):
    assert [a.name for a in bylines.authors(raw)] == expected


def test_recurring_lines_never_drop_a_line_unique_to_the_page():
    text = "Sign up for our newsletter\nA line only this page has.\nRead more"
    prints = boilerplate.fingerprints(text)
    seen = {prints[0]: 9, prints[2]: 4}
    assert boilerplate.recurring_lines(text, prints, seen) == [0]
    assert boilerplate.recurring_lines(text, prints, {p: 9 for p in prints}) == []


# --- stored -------------------------------------------------------------------------------

STANDARDS = "Ward budgets are explained in full in the council guide for residents."


def _page(i: int, published: str | None) -> str:
    paras = [
        f"Story {i} opens with the council's decision on the {i}th budget line, taken after a long debate.",
        f"The vote on item {i} was close, and the minority said it would ask the regional court to review it.",
        STANDARDS,
        f"Residents of ward {i} will see the change in their bills from the first of next month onwards.",
    ]
    return news_page(f"Council budget story {i}", paras, published=published, author=REPORTERS[i % len(REPORTERS)])


REPORTERS = ["Ana Costa", "Bram de Vries and Chloe Martin", "Admin"]


def test_dates_authors_and_host_boilerplate_stored(settings, conn, site):
    entries = []
    for i in range(1, 9):
        # Page 1 states its date, which the feed contradicts; the others state none.
        published = "2024-05-02T14:30:00+00:00" if i == 1 else None
        site.add(f"/story/{i}", _page(i, published))
        entries.append(FeedEntry(f"Council budget story {i}", site.url(f"/story/{i}"), "Fri, 03 May 2024 09:00:00 GMT"))
    feed = site.add("/rss.xml", rss(entries, link=site.base), "application/rss+xml")
    summary = ingest(settings, [feed])
    assert summary.stored == 8

    rows = {
        url.rsplit("/", 1)[-1]: rest
        for url, *rest in conn.execute(
            "SELECT url, published_at, page_published_at, feed_published_at, published_at_source, text FROM articles"
        )
    }
    feed_time = datetime(2024, 5, 3, 9, 0, tzinfo=UTC)
    page_time = datetime(2024, 5, 2, 14, 30, tzinfo=UTC)
    # The page's stated date wins; the feed's is kept next to it.
    assert rows["1"][:4] == [page_time, page_time, feed_time, "meta"]
    for i in range(2, 9):
        assert rows[str(i)][0] == feed_time and rows[str(i)][2] == feed_time and rows[str(i)][3] == "feed"

    authors = conn.execute(
        "SELECT a.url, au.position, au.name, au.name_key"
        " FROM article_authors au JOIN articles a ON a.id = au.article_id"
    ).fetchall()
    by_page = {}
    for url, position, name, key in authors:
        by_page.setdefault(url.rsplit("/", 1)[-1], []).append((position, name, key))
    assert sorted(by_page["1"]) == [(1, "Bram de Vries", "bram de vries"), (2, "Chloe Martin", "chloe martin")]
    assert by_page["3"] == [(1, "Ana Costa", "ana costa")]
    assert "2" not in by_page  # "Admin" is nobody's name

    # The same line is on every page: once five pages of the host carry it, it is left out.
    with_line = [k for k, v in rows.items() if STANDARDS in v[4]]
    assert len(with_line) == boilerplate.HOST_MIN_PAGES
    for v in rows.values():
        assert "budget line" in v[4]  # the lines unique to each page stay
    pages = conn.execute(
        "SELECT max(pages) FROM host_line_fingerprints WHERE fingerprint = %s",
        (int.from_bytes(bytes.fromhex(boilerplate.fingerprint(STANDARDS)), "big", signed=True),),
    ).fetchone()[0]
    assert pages == 8


def test_spans_follow_the_text_when_host_lines_are_cut():
    from pipeline.analyse import Analysis
    from pipeline.entities import Cluster, Mention
    from pipeline.statements import Statement
    from pipeline.store import _analysis_after_cuts

    text = "Sign up now\nAda Lovelace said the engine works.\nFollow us\nBabbage agreed."
    new, cuts = boilerplate.cut_lines(text, [0, 2])
    assert new == "Ada Lovelace said the engine works.\nBabbage agreed."

    def span(fragment: str) -> tuple[int, int]:
        start = text.index(fragment)
        return start, start + len(fragment)

    ada, babbage, follow = span("Ada Lovelace"), span("Babbage"), span("Follow")
    quote, cue = span("the engine works"), span("said")
    analysis = Analysis(
        mentions=[
            Mention(*ada, "Ada Lovelace", "PERSON", 1),
            Mention(*babbage, "Babbage", "PERSON", 2),
            Mention(*follow, "Follow", "ORG", 3),
        ],
        clusters={
            1: Cluster(1, "PERSON", "Ada Lovelace"),
            2: Cluster(2, "PERSON", "Babbage"),
            3: Cluster(3, "ORG", "F"),
        },
        statements=[
            Statement("indirect", "the engine works", *quote, "Ada Lovelace", "Ada Lovelace", *ada, 1, "said", *cue)
        ],
    )
    moved = _analysis_after_cuts(analysis, cuts)
    assert [new[m.start : m.end] for m in moved.mentions] == ["Ada Lovelace", "Babbage"]
    assert set(moved.clusters) == {1, 2}
    (s,) = moved.statements
    assert new[s.quote_start : s.quote_end] == "the engine works"
    assert new[s.speaker_start : s.speaker_end] == "Ada Lovelace" and new[s.cue_start : s.cue_end] == "said"
