"""Feed health: adaptive polling, weighted failures, disabling, moved feeds, odd feed formats."""

from __future__ import annotations

from dataclasses import replace

from pipeline.feeds import parse_feed
from pipeline.ingest import ingest
from pipeline.loopback import Reply
from pipeline.schedule import PollBounds, failure_interval, failure_weight, next_interval

from .pages import FeedEntry, news_page, rss

PARAS = [
    "The harbour authority said on Tuesday that it would extend the northern pier by 200 metres.",
    '"We expect the work to take two years," the authority\'s director, Maria Olsen, said.',
    "The council approved the budget in a vote of nine to two after a long debate.",
]


def test_poll_interval_follows_the_feed():
    bounds = PollBounds(min_seconds=60, max_seconds=3600, default_seconds=600)
    assert next_interval(None, 3, bounds) == 300
    assert next_interval(100, 5, bounds) == 60  # never below the minimum
    assert next_interval(600, 0, bounds) == 900
    assert next_interval(3000, 0, bounds) == 3600  # never above the maximum
    assert failure_interval(600, 1, bounds) == 1200 and failure_interval(600, 10, bounds) == 3600
    assert failure_weight("feed_malformed", False) == 1.0 and failure_weight("timeout", True) == 0.25


def test_feed_state_after_polls_failures_and_a_move(settings, conn, site):
    settings = replace(settings, limits=replace(settings.limits, feed_disable_after=2))
    site.add("/good", news_page("Harbour", PARAS))
    site.add("/new-feed.xml", rss([FeedEntry("g", site.url("/good"), guid="g")]), "application/rss+xml")
    site.routes["/old-feed.xml"] = Reply(301, b"", {"Location": "/new-feed.xml"})
    moved = site.url("/old-feed.xml")
    broken = site.add("/broken.xml", "<html>not a feed</html>", "text/html")
    flaky = site.add("/flaky.xml", "busy", "text/plain", status=503)

    ingest(settings, [moved, broken, flaky])
    feeds = {
        url: (status, enabled, score, moved_to, interval, items)
        for url, status, enabled, score, moved_to, interval, items in conn.execute(
            "SELECT url, status, enabled, failure_score, moved_to, poll_interval_seconds, items_last_poll FROM feeds"
        )
    }
    assert feeds[moved][3] == site.url("/new-feed.xml") and feeds[moved][5] == 1
    assert feeds[moved][4] == settings.poll_bounds.clamp(3600 / 2)  # new items: poll sooner
    assert feeds[broken][:3] == ("failing", True, 1.0)
    assert feeds[flaky][:3] == ("failing", True, 0.25)

    ingest(settings, [moved, broken, flaky])
    status = {
        url: rest
        for url, *rest in conn.execute("SELECT url, status, enabled, disabled_reason IS NOT NULL FROM feeds")
    }
    assert status[broken] == ["disabled", False, True]  # two hard failures reach the limit of 2
    assert status[flaky] == ["failing", True, False]  # two transient ones do not
    interval = conn.execute("SELECT poll_interval_seconds FROM feeds WHERE url = %s", (moved,)).fetchone()[0]
    assert interval == settings.poll_bounds.clamp(3600 / 2 * 1.5)  # nothing new: poll later
    assert site.hits("/new-feed.xml") == 2 and site.hits("/old-feed.xml") == 1  # the move is remembered


def test_feed_formats_and_charsets():
    atom = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
    <entry><title>One</title><link href="http://a.test/1"/><id>urn:1</id><updated>2022-11-09T11:32:00-05:00</updated></entry>
    </feed>"""
    rdf = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
    <channel rdf:about="http://a.test/"><title>R</title></channel>
    <item rdf:about="http://a.test/2"><title>Two</title><link>http://a.test/2</link></item></rdf:RDF>"""
    rss091 = b"""<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title><link>http://a.test/</link>
    <item><title>Three</title><link>http://a.test/3</link>
    <pubDate>Wed, 09 Nov 2022 11:32:00 EST</pubDate></item></channel></rss>"""
    cp1252 = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Caf\xe9 news</title>'
        b"<item><title>Caf\xe9 \x93quoted\x94</title><link>http://a.test/4</link></item></channel></rss>"
    )
    bom = b"\xef\xbb\xbf" + rss091
    assert parse_feed(atom, "http://a.test/a").items[0].published_at.hour == 16  # -05:00 to UTC
    assert parse_feed(rdf, "http://a.test/r").items[0].link == "http://a.test/2"
    assert parse_feed(rss091, "http://a.test/o").items[0].published_at.hour == 16  # EST is UTC-5
    recovered = parse_feed(cp1252, "http://a.test/c")
    assert [i.link for i in recovered.items] == ["http://a.test/4"]
    assert parse_feed(bom, "http://a.test/b").items[0].title == "Three"


def test_malformed_feed_keeps_recovered_items(settings, conn, site):
    site.add("/good", news_page("Harbour", PARAS))
    body = rss([FeedEntry("g", site.url("/good"), guid="g")]).replace("</channel></rss>", "<item><title>broken &")
    feed = site.add("/feed.xml", body, "application/rss+xml")
    summary = ingest(settings, [feed])
    assert summary.stored == 1
    row = conn.execute("SELECT status, last_error_reason FROM feeds").fetchone()
    assert row == ("active", "feed_malformed")  # usable, with the complaint kept
