"""Backfill: the pure archive and sitemap parsers, discovery over a loopback site, the CLI."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from pipeline.archives import feed_links, older_pages, paged_url
from pipeline.backfill import Window, backfill, parse_bound
from pipeline.sitemaps import SitemapError, inflate, parse_sitemap, parse_w3c_datetime, robots_sitemaps

from .conftest import table_counts
from .history import IN_WINDOW, SINCE, UNTIL, article_paths, serve_history_site

# --- archives (pure) -------------------------------------------------------------------------

ATOM_ARCHIVE = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:fh="http://purl.org/syndication/history/1.0">
  <title>Example</title>
  <link rel="self" href="/archive/2025/10"/>
  <link rel="current" href="http://site.test/feed"/>
  <link rel="prev-archive" href="/archive/2025/09"/>
  <link rel="next-archive" href="/archive/2025/11"/>
  <fh:archive/>
  <entry><title>A</title><link rel="next" href="http://site.test/not-a-page-of-the-feed"/></entry>
</feed>"""

RSS_PAGED = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
<title>T</title><link>http://site.test/</link>
<atom:link rel="next" href="http://site.test/feed?page=2"/>
<atom:link rel="first" href="http://site.test/feed"/>
<atom:link rel="prev-archive" href="javascript:alert(1)"/>
<item><title>x</title></item>
</channel></rss>"""


def test_feed_links_reads_feed_level_relations_only():
    links = feed_links(ATOM_ARCHIVE, "http://site.test/archive/2025/10")
    assert links["prev-archive"] == ["http://site.test/archive/2025/09"]
    assert links["current"] == ["http://site.test/feed"]
    assert "next" not in links  # an entry's link is not a page of the feed
    assert older_pages(links) == ["http://site.test/archive/2025/09"]


def test_feed_links_in_rss_and_unsafe_input():
    links = feed_links(RSS_PAGED, "http://site.test/feed")
    assert older_pages(links) == ["http://site.test/feed?page=2"]  # javascript: dropped
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><feed><link rel="next" href="&a;"/></feed>'
    for body in (bomb, b"", b"not xml at all", b"<html><body>404</body></html>"):
        assert older_pages(feed_links(body, "http://site.test/feed")) == []


def test_paged_url_sets_the_wordpress_parameter():
    assert paged_url("http://site.test/feed/", 2) == "http://site.test/feed/?paged=2"
    assert paged_url("http://site.test/?feed=rss2&paged=7", 3) == "http://site.test/?feed=rss2&paged=3"
    with pytest.raises(ValueError):
        paged_url("http://site.test/feed", 0)


# --- sitemaps (pure) -------------------------------------------------------------------------

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>http://site.test/a</loc><lastmod>2025-10-05T09:14:00+02:00</lastmod></url>
  <url><loc>/relative</loc><lastmod>2025-10</lastmod></url>
  <url><loc>http://site.test/n</loc><lastmod>2025-12-01</lastmod>
    <news:news><news:publication><news:name>W</news:name><news:language>en</news:language></news:publication>
    <news:publication_date>2025-10-07</news:publication_date><news:title>Headline</news:title></news:news></url>
  <url><loc>ftp://site.test/x</loc></url>
  <url><loc>http://site.test/undated</loc><lastmod>yesterday</lastmod></url>
  <url><lastmod>2025-10-01</lastmod></url>
</urlset>"""


def test_parse_urlset_with_news_and_odd_dates():
    sitemap = parse_sitemap(URLSET, "http://site.test/sitemap.xml")
    assert not sitemap.is_index
    by_loc = {e.loc: e for e in sitemap.entries}
    assert list(by_loc) == [
        "http://site.test/a",
        "http://site.test/relative",
        "http://site.test/n",
        "http://site.test/undated",
    ]
    assert by_loc["http://site.test/a"].lastmod == datetime(2025, 10, 5, 7, 14, tzinfo=UTC)
    assert by_loc["http://site.test/relative"].lastmod == datetime(2025, 10, 1, tzinfo=UTC)
    news = by_loc["http://site.test/n"]
    assert news.when == news.published_at == datetime(2025, 10, 7, tzinfo=UTC) and news.title == "Headline"
    assert by_loc["http://site.test/undated"].when is None


def test_parse_sitemap_index_and_gzip():
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>http://site.test/s1.xml.gz</loc><lastmod>2025-10-02</lastmod></sitemap>
      <sitemap><loc>http://site.test/s2.xml</loc></sitemap></sitemapindex>"""
    sitemap = parse_sitemap(inflate(gzip.compress(index), 10_000), "http://site.test/sitemap.xml")
    assert sitemap.is_index
    assert [(e.loc, e.lastmod) for e in sitemap.entries] == [
        ("http://site.test/s1.xml.gz", datetime(2025, 10, 2, tzinfo=UTC)),
        ("http://site.test/s2.xml", None),
    ]
    with pytest.raises(SitemapError):
        inflate(gzip.compress(b"<urlset>" + b" " * 100_000 + b"</urlset>"), 1000)  # a gzip bomb
    with pytest.raises(SitemapError):
        inflate(b"\x1f\x8b" + b"garbage", 1000)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Not found</body></html>",
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "x">]><urlset><url><loc>&a;</loc></url></urlset>',
        b'<!DOCTYPE u SYSTEM "http://127.0.0.1:9/evil.dtd"><urlset/>',
        b"<urlset><url><loc>http://site.test/a</loc>",
        b'<rss version="2.0"><channel></channel></rss>',
    ],
)
def test_parse_sitemap_refuses_what_is_not_a_sitemap(body):
    if body.startswith(b"<!DOCTYPE u SYSTEM"):
        # An external DTD is neither fetched nor loaded: the document parses as a plain urlset.
        assert parse_sitemap(body, "http://site.test/sitemap.xml").entries == []
        return
    with pytest.raises(SitemapError):
        parse_sitemap(body, "http://site.test/sitemap.xml")


def test_robots_sitemap_lines():
    robots = b"User-agent: *\nDisallow: /private\nSitemap: /sitemap_index.xml\nsitemap: http://site.test/news.xml\n"
    assert robots_sitemaps(robots, "http://site.test/robots.txt") == [
        "http://site.test/sitemap_index.xml",
        "http://site.test/news.xml",
    ]
    assert robots_sitemaps(b"\xff\xfe garbage", "http://site.test/robots.txt") == []


def test_dates_and_windows():
    assert parse_w3c_datetime("2025") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_w3c_datetime("2025-10-05T09:14:00Z") == datetime(2025, 10, 5, 9, 14, tzinfo=UTC)
    assert parse_w3c_datetime("") is None and parse_w3c_datetime("2025-13-45") is None
    window = Window.parse("2025-10-01", "2025-10-31")
    assert window.start == datetime(2025, 10, 1, tzinfo=UTC) and window.end == datetime(2025, 11, 1, tzinfo=UTC)
    assert window.contains(datetime(2025, 10, 31, 23, 59, tzinfo=UTC))
    assert not window.contains(datetime(2025, 11, 1, tzinfo=UTC))
    assert parse_bound("2025-10-01T06:00:00+02:00", end=True) == datetime(2025, 10, 1, 4, tzinfo=UTC)
    with pytest.raises(ValueError):
        Window.parse("2025-10-31", "2025-10-01")
    with pytest.raises(ValueError):
        Window.parse("last tuesday")


# --- discovery and loading over loopback -----------------------------------------------------


def test_backfill_loads_the_window_once(settings, conn, site):
    feed_url = serve_history_site(site)
    result = backfill(settings, feed_url, Window.parse(SINCE, UNTIL))
    assert result.summary.status == "succeeded"
    assert result.summary.feeds_failed == {}
    assert dict(result.discovery.found) == {"feed": 1, "archive": 2, "paged": 1, "sitemap": 1}
    assert (result.discovery.out_of_range, result.discovery.undated) == (4, 1)
    stored = sorted(r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM articles"))
    assert stored == IN_WINDOW
    assert {slug for slug, n in article_paths(site).items() if n} == set(IN_WINDOW)
    states = conn.execute("SELECT state, count(*) FROM feed_items GROUP BY 1").fetchall()
    assert states == [("stored", 5)]
    run = conn.execute("SELECT kind, status, seen, stored, message FROM ops.runs").fetchone()
    assert run[:4] == ("backfill", "succeeded", 5, 5) and "found 5 items in the window" in run[4]
    etag = conn.execute("SELECT etag, last_modified, last_fetched_at FROM feeds").fetchone()
    assert etag == (None, None, None)  # the daily poll's cache validators are not touched

    counts, hits = table_counts(conn), article_paths(site)
    again = backfill(settings, feed_url, Window.parse(SINCE, UNTIL))
    assert (again.summary.seen, again.summary.unchanged) == (0, 5)
    assert table_counts(conn) == counts and article_paths(site) == hits


def test_backfill_after_ingest_and_with_failing_sources(settings, conn, site):
    from pipeline.ingest import ingest

    feed_url = serve_history_site(site)
    site.add("/archive/2025-09.xml", "<html>oops</html>", status=500)  # a broken archive page
    site.add("/sitemap-news.xml", b"\x1f\x8bnot gzip", "application/x-gzip")
    ingest(settings, [feed_url])
    result = backfill(settings, feed_url, Window.parse(SINCE, UNTIL))
    assert set(result.summary.feeds_failed) == {site.url("/archive/2025-09.xml"), site.url("/sitemap-news.xml")}
    assert "http_status" in result.summary.feeds_failed[site.url("/archive/2025-09.xml")]
    stored = {r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM articles")}
    # The archive's first page and ?paged=2 still load; the sitemap-only story is out of reach.
    assert stored == {"current-nov", "current-oct", "archive-oct-20", "archive-oct-05", "paged-oct-12"}
    assert article_paths(site)["current-oct"] == 1
    assert result.summary.unchanged == 1


def test_backfill_stops_at_a_paged_feed_that_repeats(settings, conn, site):
    feed_url = serve_history_site(site)
    del site.routes["/feed.xml?paged=2"], site.routes["/feed.xml?paged=3"]  # ?paged ignored: the feed again
    result = backfill(settings, feed_url, Window.parse(SINCE, UNTIL))
    assert "paged" not in result.discovery.found
    assert site.hits("/feed.xml") == 2  # the feed, then ?paged=2 repeating it, then stop


def test_backfill_refuses_a_non_http_feed(settings):
    with pytest.raises(ValueError):
        backfill(settings, "file:///etc/passwd", Window.parse(SINCE, UNTIL))


def test_cli_backfill(settings, site, monkeypatch, capsys):
    from pipeline.cli import main

    feed_url = serve_history_site(site)
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NEWSFLOW_HOST_MIN_DELAY", "0.01")
    assert main(["backfill", "--feed", feed_url, "--since", SINCE, "--until", UNTIL]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "found 5 items in the window" in out
    assert "window [2025-10-01T00:00:00+00:00, 2025-11-01T00:00:00+00:00)" in out

    with pytest.raises(SystemExit) as exit_:
        main(["backfill", "--feed", feed_url, "--since", "someday"])
    assert exit_.value.code == 2 and "not a date" in capsys.readouterr().err
    assert main(["backfill", "--feed", feed_url, "--since", "2025-10-31", "--until", "2025-10-01"]) == 2
    assert "empty window" in capsys.readouterr().err
