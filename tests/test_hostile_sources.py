"""Hostile and broken pages and feeds, served from loopback (RELIABILITY.md C1-C3).

Each case puts one bad item in a feed next to a good one and checks the bad item's final
state and reason, that the good one was stored, and that nothing partial was written.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import replace

import pytest

from pipeline.feeds import parse_feed
from pipeline.ingest import ingest
from pipeline.loopback import Reply

from .pages import FeedEntry, news_page, rss

GOOD_PARAGRAPHS = [
    "The harbour authority said on Tuesday that it would extend the northern pier by 200 metres.",
    '"We expect the work to take two years," the authority\'s director, Maria Olsen, said.',
    "The council approved the budget in a vote of nine to two after a long debate.",
    "Olsen said the extension would let larger ferries dock during the winter storms.",
]


def _drip(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    try:
        for _ in range(60):
            handler.wfile.write(b"<p>drip</p>")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


def _endless(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"<p>" + b"x" * 8000 + b"</p>"
    try:
        for _ in range(2000):
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    except OSError:
        pass


def _reset(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "50000")
    handler.end_headers()
    handler.wfile.write(b"<html><body><p>partial")
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(2)


def _bomb() -> Reply:
    body = gzip.compress(b"<html><body>" + b"0" * 30_000_000 + b"</body></html>")
    return Reply(200, body, {"Content-Type": "text/html", "Content-Encoding": "gzip"})


def _once_429():
    calls = {"n": 0}

    def handler(_h):
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply(429, b"slow down", {"Retry-After": "1", "Content-Type": "text/plain"})
        return Reply(200, news_page("After the wait", GOOD_PARAGRAPHS[::-1]).encode(), {"Content-Type": "text/html"})

    return handler


CASES = {
    # name: (route builder, expected state, expected reason)
    "slow_drip": (lambda site: _drip, "quarantined", "timeout"),
    "endless_stream": (lambda site: _endless, "quarantined", "too_large"),
    "gzip_bomb": (lambda site: _bomb(), "quarantined", "too_large"),
    "connection_reset": (lambda site: _reset, "quarantined", "connection"),
    "redirect_loop": (lambda site: Reply(302, b"", {"Location": "/bad"}), "quarantined", "too_many_redirects"),
    "redirect_to_internal": (
        lambda site: Reply(301, b"", {"Location": "http://127.0.0.2:9/secret"}),
        "quarantined",
        "blocked_address",
    ),
    "pdf": (
        lambda site: Reply(200, b"%PDF-1.7\n" + b"\x00" * 2000, {"Content-Type": "application/pdf"}),
        "quarantined",
        "not_html",
    ),
    "image": (
        lambda site: Reply(200, b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, {"Content-Type": "image/png"}),
        "quarantined",
        "not_html",
    ),
    "html_as_octet_stream": (
        lambda site: Reply(
            200,
            news_page("Mislabelled page", GOOD_PARAGRAPHS[1:] + GOOD_PARAGRAPHS[:1]).encode(),
            {"Content-Type": "application/octet-stream"},
        ),
        "stored",
        None,
    ),
    "paywall": (
        lambda site: Reply(
            200,
            b"<html><body><nav>Home</nav><div class='paywall'>Subscribe to read.</div></body></html>",
            {"Content-Type": "text/html"},
        ),
        "quarantined",
        "extraction_empty",
    ),
    "server_error": (lambda site: Reply(500, b"oops", {"Content-Type": "text/plain"}), "quarantined", "http_status"),
    "gone": (lambda site: Reply(410, b"gone", {"Content-Type": "text/plain"}), "quarantined", "http_status"),
    "rate_limited_then_ok": (lambda site: _once_429(), "stored", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_page(case, settings, conn, site):
    builder, state, reason = CASES[case]
    settings = replace(settings, limits=replace(settings.limits, page_timeout=3.0, max_body_bytes=2_000_000))
    site.add("/good", news_page("Harbour extension approved", GOOD_PARAGRAPHS))
    site.routes["/bad"] = builder(site)
    feed = site.add(
        "/feed.xml",
        rss([FeedEntry("bad", site.url("/bad"), guid="bad"), FeedEntry("good", site.url("/good"), guid="good")]),
        "application/rss+xml",
    )
    summary = ingest(settings, [feed])
    assert summary.status == "succeeded"
    rows = dict(conn.execute("SELECT guid, (state, reason) FROM feed_items").fetchall())
    assert rows["good"] == ("stored", None)
    assert rows["bad"] == (state, reason), conn.execute("SELECT message FROM feed_items WHERE guid='bad'").fetchone()
    expected_articles = 2 if state == "stored" else 1
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == expected_articles
    orphans = conn.execute(
        "SELECT (SELECT count(*) FROM statements WHERE article_id NOT IN (SELECT id FROM articles))"
        " + (SELECT count(*) FROM entity_mentions WHERE article_id NOT IN (SELECT id FROM articles))"
    ).fetchone()[0]
    assert orphans == 0


def test_transient_failure_is_retried_by_the_next_run(settings, conn, site):
    calls = {"n": 0}

    def flaky(_h):
        calls["n"] += 1
        if calls["n"] <= 3:  # the first run's attempts all fail
            return Reply(503, b"busy", {"Content-Type": "text/plain"})
        return Reply(200, news_page("Back again", GOOD_PARAGRAPHS).encode(), {"Content-Type": "text/html"})

    site.routes["/flaky"] = flaky
    feed = site.add("/feed.xml", rss([FeedEntry("flaky", site.url("/flaky"), guid="f")]), "application/rss+xml")
    first = ingest(settings, [feed])
    assert first.quarantined == {"http_status": 1}
    assert conn.execute("SELECT transient FROM feed_items").fetchone()[0] is True
    second = ingest(settings, [feed])
    assert second.stored == 1
    assert conn.execute("SELECT state, attempts FROM feed_items").fetchone() == ("stored", 2)


def test_robots_txt_is_honoured(settings, conn, site):
    site.add("/robots.txt", "User-agent: newsflow\nDisallow: /private/\n", "text/plain")
    site.add("/private/a", news_page("Private", GOOD_PARAGRAPHS))
    site.add("/public/b", news_page("Public", GOOD_PARAGRAPHS[::-1]))
    feed = site.add(
        "/feed.xml",
        rss([FeedEntry("a", site.url("/private/a"), guid="a"), FeedEntry("b", site.url("/public/b"), guid="b")]),
        "application/rss+xml",
    )
    ingest(settings, [feed])
    rows = dict(conn.execute("SELECT guid, (state, reason) FROM feed_items").fetchall())
    assert rows == {"a": ("quarantined", "robots"), "b": ("stored", None)}
    assert site.hits("/private/a") == 0


def test_non_english_and_dirty_text(settings, conn, site):
    german = [
        "Die Hafenbehörde hat am Dienstag angekündigt, den nördlichen Pier um 200 Meter zu verlängern.",
        "Der Stadtrat stimmte dem Haushalt nach einer langen Debatte mit neun zu zwei Stimmen zu.",
        "Die Arbeiten sollen nach Angaben der Behörde etwa zwei Jahre dauern und im Frühjahr beginnen.",
    ]
    site.add("/de", news_page("Hafen wird erweitert", german))
    dirty = [p.replace("harbour", "har\x00bour") + " \ud800" for p in GOOD_PARAGRAPHS]
    site.routes["/dirty"] = Reply(
        200, news_page("Dirty text", dirty).encode("utf-8", "surrogatepass"), {"Content-Type": "text/html"}
    )
    feed = site.add(
        "/feed.xml",
        rss([FeedEntry("de", site.url("/de"), guid="de"), FeedEntry("dirty", site.url("/dirty"), guid="dirty")]),
        "application/rss+xml",
    )
    summary = ingest(settings, [feed])
    assert summary.stored == 2
    de = conn.execute("SELECT language, nlp_skipped FROM articles WHERE title LIKE 'Hafen%%'").fetchone()
    assert de == ("de", "not_english")
    text = conn.execute("SELECT text FROM articles WHERE title = 'Dirty text'").fetchone()[0]
    assert "\x00" not in text and "harbour" in text


def test_conditional_get_and_feed_errors(settings, conn, site):
    requests: list[dict[str, str]] = []
    body = rss([FeedEntry("good", site.url("/good"), guid="g")]).encode()

    def feed_handler(h):
        requests.append(dict(h.headers))
        if h.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(200, body, {"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    site.add("/good", news_page("Harbour extension approved", GOOD_PARAGRAPHS))
    site.routes["/feed.xml"] = feed_handler
    gone = site.add("/gone.xml", "gone", "text/plain", status=410)
    ingest(settings, [site.url("/feed.xml"), gone])
    second = ingest(settings, [site.url("/feed.xml"), gone])
    assert requests[-1].get("If-None-Match") == '"v1"'
    assert second.seen == 0 and second.unchanged == 0
    etag, failures = conn.execute("SELECT etag, consecutive_failures FROM feeds WHERE url LIKE '%%feed.xml'").fetchone()
    assert etag == '"v1"' and failures == 0
    status, failures, reason = conn.execute(
        "SELECT status, consecutive_failures, last_error_reason FROM feeds WHERE url = %s", (gone,)
    ).fetchone()
    assert (status, failures, reason) == ("failing", 2, "http_status")


def test_ten_thousand_item_feed(settings, conn, site):
    """C1.8: one feed of 10,000 distinct items, and what lies past the cap is counted, not lost.

    ``parse_feed`` reads a feed of 10,001 distinct items: 10,000 items with 10,000 keys and
    links, the one past the cap counted and named. The whole pipeline is shown on a smaller
    feed above a lowered cap (10,000 real fetches would take CI minutes): the items within
    the cap each end in the ledger, the others are never fetched, and the feed's record
    says how many were not read.
    """
    listed = [FeedEntry(f"item {i}", f"http://news.test/story/{i}?utm_source=rss", guid=f"g{i}") for i in range(10_001)]
    parsed = parse_feed(rss(listed).encode(), "http://news.test/feed.xml")
    assert len(parsed.items) == 10_000 and parsed.dropped == 1
    assert len({i.key for i in parsed.items}) == 10_000 and len({i.link for i in parsed.items}) == 10_000
    assert parsed.items[-1].link == "http://news.test/story/9999"
    assert "1 item past the first 10000 not read" in parsed.warning

    page = news_page("Harbour extension approved", GOOD_PARAGRAPHS)
    for i in range(30):
        site.add(f"/story/{i}", page)
    feed = site.add(
        "/big.xml",
        rss([FeedEntry(f"item {i}", site.url(f"/story/{i}?utm_source=rss"), guid=f"g{i}") for i in range(30)]),
        "application/rss+xml",
    )
    capped = replace(settings, limits=replace(settings.limits, max_items_per_feed=25))
    summary = ingest(capped, [feed])
    assert summary.seen == 25 and summary.stored == 1 and summary.duplicate == 24  # one text under 25 URLs
    assert conn.execute("SELECT count(*) FROM feed_items").fetchone()[0] == 25
    assert [site.hits(f"/story/{i}") for i in range(30)] == [1] * 25 + [0] * 5
    error, reason = conn.execute("SELECT last_error, last_error_reason FROM feeds WHERE url = %s", (feed,)).fetchone()
    assert "5 items past the first 25 not read" in error and reason == "too_many_items"
    assert summary.dropped == 5 and "items past a feed's cap, not read" in summary.table()


def test_proxy_settings_in_the_environment_are_ignored(settings, conn, site, monkeypatch):
    """C3.24: a proxy (or credentials) in the environment is not used unless configured."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    site.add("/good", news_page("Harbour extension approved", GOOD_PARAGRAPHS))
    feed = site.add("/feed.xml", rss([FeedEntry("good", site.url("/good"), guid="g")]), "application/rss+xml")
    assert ingest(settings, [feed]).stored == 1


def test_a_ledger_that_does_not_reconcile_fails_the_run(settings, conn, site, monkeypatch):
    """C5.33: counts that disagree with the ledger mark the run failed, not succeeded."""
    from pipeline import ingest as ingest_module

    site.add("/good", news_page("Harbour extension approved", GOOD_PARAGRAPHS))
    feed = site.add("/feed.xml", rss([FeedEntry("good", site.url("/good"), guid="g")]), "application/rss+xml")
    original = ingest_module.RunSummary.count

    def overcount(self, state, reason=None):
        original(self, state, reason)
        self.stored += 1  # a miscount, as a task that died half-way would leave

    monkeypatch.setattr(ingest_module.RunSummary, "count", overcount)
    summary = ingest(settings, [feed])
    assert summary.status == "failed" and "does not reconcile" in summary.message
    assert conn.execute("SELECT status FROM ops.runs").fetchone()[0] == "failed"
