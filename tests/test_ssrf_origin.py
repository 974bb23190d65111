"""The SSRF exemption is a feed's own origin, for that feed's items only (issue 13, item 6).

An operator's feed on a private address (127.0.0.1 here) must work, so its origin (scheme,
host, port) is trusted: for the feed document, its own items and redirects within that
origin. Nothing else is: not another port or scheme of the same host, not the host of
another configured feed, not a redirect away, not a ``user@host`` URL, not a disabled feed.
Real loopback servers on 127.0.0.1 and 127.0.0.2, a real PostgreSQL ledger.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from pipeline import db, store
from pipeline.backfill import Window, backfill
from pipeline.config import Limits
from pipeline.fetch import Fetcher
from pipeline.ingest import ingest
from pipeline.loopback import LoopbackSite, Reply
from pipeline.reasons import ItemError
from pipeline.stream import Stream

from .pages import FeedEntry, news_page, rss

OWN = [
    "The harbour authority said on Tuesday that it would extend the northern pier by 200 metres.",
    '"We expect the work to take two years," the authority\'s director, Maria Olsen, said.',
    "The council approved the budget in a vote of nine to two after a long debate.",
]
OTHER = [
    "The rail operator said on Monday that the coastal line would reopen after the storm repairs.",
    '"Every signal has been replaced," the operator\'s chief engineer, Tomas Berg, said.',
    "Passenger groups welcomed the news but asked for more trains at weekends.",
]
SECRET = ["Internal admin console.", "Database credentials and service tokens are listed below."] * 2


@pytest.fixture
def other_host():
    """A second configured site on another loopback address (feed B)."""
    with LoopbackSite(host="127.0.0.2") as s:
        yield s


@pytest.fixture
def other_port():
    """Another server on the feed's own host, on a different port."""
    with LoopbackSite() as s:
        yield s


def _secret(site: LoopbackSite, path: str) -> str:
    return site.add(path, news_page(f"Secret {path}", [f"{p} ({path})" for p in SECRET]))


def _states(conn) -> dict[str, tuple[str, str | None]]:
    return {guid: (state, reason) for guid, state, reason in conn.execute("SELECT guid, state, reason FROM feed_items")}


def _port(site: LoopbackSite) -> int:
    return site.server.server_address[1]


def test_items_use_only_their_own_feeds_origin(settings, conn, site, other_host, other_port):
    a, b, c = site, other_host, other_port
    a.add("/own", news_page("Pier extension", OWN))
    a.routes["/hop"] = Reply(303, b"", {"Location": b.url("/via-303")})
    a.routes["/hop-port"] = Reply(302, b"", {"Location": c.url("/via-302")})
    for path in ("/direct", "/via-303", "/userinfo"):
        _secret(b, path)
    for path in ("/other-port", "/via-302"):
        _secret(c, path)
    feed_a = a.add(
        "/feed.xml",
        rss(
            [
                FeedEntry("own", a.url("/own"), guid="own"),
                FeedEntry("other port", c.url("/other-port"), guid="other-port"),
                FeedEntry("other scheme", f"https://127.0.0.1:{_port(a)}/own", guid="https"),
                FeedEntry("feed B's host", b.url("/direct"), guid="direct"),
                FeedEntry("303 to feed B", a.url("/hop"), guid="303"),
                FeedEntry("302 to another port", a.url("/hop-port"), guid="302"),
                FeedEntry("userinfo", f"http://127.0.0.1:{_port(a)}@127.0.0.2:{_port(b)}/userinfo", guid="userinfo"),
            ]
        ),
        "application/rss+xml",
    )
    b.add("/b-own", news_page("Coastal line", OTHER))
    feed_b = b.add("/feed.xml", rss([FeedEntry("b own", b.url("/b-own"), guid="b-own")]), "application/rss+xml")

    summary = ingest(settings, [feed_a, feed_b])

    assert _states(conn) == {
        "own": ("stored", None),
        "b-own": ("stored", None),  # each feed's own origin works
        "other-port": ("quarantined", "blocked_address"),
        "https": ("quarantined", "blocked_address"),
        "direct": ("quarantined", "blocked_address"),
        "303": ("quarantined", "blocked_address"),
        "302": ("quarantined", "blocked_address"),
        "userinfo": ("quarantined", "bad_url"),
    }
    assert summary.stored == 2
    assert set(b.requests) == {"/feed.xml", "/robots.txt", "/b-own"}  # feed B's own fetches only
    assert c.requests == []  # nothing on the other port was ever asked for
    assert a.hits("/hop") == 1 and a.hits("/hop-port") == 1  # the first hop is the feed's origin
    stored = {url for (url,) in conn.execute("SELECT url FROM articles")}
    assert stored == {a.url("/own"), b.url("/b-own")}


def test_a_redirect_away_from_the_trusted_origin_is_checked_as_untrusted(site, other_host):
    a, b = site, other_host
    a.add("/page", "<html><body><p>own page</p></body></html>")
    a.routes["/moved"] = Reply(301, b"", {"Location": "/page"})
    a.routes["/away"] = Reply(303, b"", {"Location": b.url("/page")})
    b.add("/page", "<html><body><p>secret</p></body></html>")
    limits = replace(Limits(), host_min_delay=0.0, page_timeout=5.0)
    with Fetcher(limits) as fetcher:
        trusted = a.url("/")  # a URL stands for its origin
        assert fetcher.get(a.url("/page"), trusted_origin=trusted).body.startswith(b"<html>")
        moved = fetcher.get(a.url("/moved"), trusted_origin=a.url("/feed.xml"))
        assert moved.moved_to == a.url("/page")  # a redirect within the origin is followed
        for url, trust in [
            (a.url("/away"), trusted),  # 303 to 127.0.0.2
            (a.url("/page"), None),  # no trust at all
            (a.url("/page"), b.url("/feed.xml")),  # another origin's trust
            (f"http://127.0.0.1:{_port(b)}/page", trusted),  # same host, another port
        ]:
            with pytest.raises(ItemError) as err:
                fetcher.get(url, trusted_origin=trust, robots=True)
            assert err.value.reason == "blocked_address", url
        with pytest.raises(ItemError) as err:
            fetcher.get(f"http://127.0.0.1:{_port(a)}@127.0.0.2:{_port(b)}/page", trusted_origin=trusted)
        assert err.value.reason == "bad_url"
    assert b.requests == []


def test_stream_trusts_enabled_feeds_only_each_for_its_own_items(settings, conn, site, other_host):
    a, b = site, other_host
    _secret(b, "/b-page")
    b.add("/feed.xml", rss([FeedEntry("b", b.url("/b-page"), guid="b")]), "application/rss+xml")
    a.add("/feed.xml", rss([FeedEntry("to B", b.url("/b-page"), guid="to-b")]), "application/rss+xml")
    with db.connect(settings.database_url) as setup:
        db.upgrade(setup)
        store.register_feed(setup, b.url("/feed.xml"))
    conn.execute("UPDATE feeds SET enabled = false, status = 'disabled'")  # feed B: configured, then disabled

    stream = Stream(settings, [a.url("/feed.xml")], out=lambda _line: None)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            stream.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failed.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not _states(conn) and runner.is_alive():
            time.sleep(0.2)
    finally:
        stream.stop()
        runner.join(60)
    assert not runner.is_alive() and not failed, failed
    assert _states(conn) == {"to-b": ("quarantined", "blocked_address")}
    assert b.requests == []  # the disabled feed's host is not exempt, not even its feed document


def test_backfill_trusts_the_feeds_origin_and_no_other_port(settings, conn, site, other_port):
    a, c = site, other_port
    when = "Wed, 15 Oct 2025 10:00:00 GMT"
    a.add("/own", news_page("Pier extension", OWN))
    _secret(c, "/item")
    c.add(
        "/sitemap.xml",
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{c.url("/s")}</loc></url></urlset>',
    )
    a.add("/robots.txt", f"User-agent: *\nAllow: /\nSitemap: {c.url('/sitemap.xml')}\n", "text/plain")
    feed = a.add(
        "/feed.xml",
        rss([FeedEntry("own", a.url("/own"), when, "own"), FeedEntry("other port", c.url("/item"), when, "c")]),
        "application/rss+xml",
    )
    result = backfill(settings, feed, Window.parse("2025-10-01", "2025-10-31"))
    assert _states(conn) == {"own": ("stored", None), "c": ("quarantined", "blocked_address")}
    assert "blocked_address" in result.summary.feeds_failed.get(c.url("/sitemap.xml"), "")
    assert c.requests == []
