"""The Wayback path over a loopback imitation of the archive: the CDX API (JSON output) and raw
``id_`` captures, answered by the nearest capture through a redirect as the real one does.

The feed's site (news.example) is never contacted: every byte comes from the archive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.backfill import Window
from pipeline.loopback import LoopbackSite, Reply
from pipeline.webarchive.wayback import backfill_wayback, parse_cdx, timestamp

from .conftest import table_counts
from .pages import FeedEntry, news_page, rss
from .test_warc import paragraphs

FEED = "https://news.example/feed.xml"
SINCE, UNTIL = "2025-10-10", "2025-10-31"


def story_url(slug: str) -> str:
    return f"https://news.example/news/{slug}"


# slug -> publication day; the feed lists the newest four stories at each capture
STORIES = {
    "sep-28": "2025-09-28",
    "oct-03": "2025-10-03",
    "oct-09": "2025-10-09",
    "oct-12": "2025-10-12",  # in the window from here
    "oct-15": "2025-10-15",
    "oct-19": "2025-10-19",  # two captures of its page: the nearest to its date is read
    "oct-24": "2025-10-24",  # no capture of its page at all
    "oct-30": "2025-10-30",
    "nov-04": "2025-11-04",
    "nov-09": "2025-11-09",
}
IN_WINDOW = ["oct-12", "oct-15", "oct-19", "oct-30"]  # oct-24 is quarantined (no capture)


def _day(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


class Archive:
    """Captures by URL: timestamp -> (status, content type, body)."""

    def __init__(self) -> None:
        self.captures: dict[str, dict[str, tuple[int, str, bytes]]] = {}
        self.unavailable_once: set[str] = set()

    def add(self, url: str, when: datetime, body: bytes | str, content_type: str = "text/html") -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.captures.setdefault(url, {})[timestamp(when)] = (200, content_type, data)

    def cdx(self, handler) -> Reply:  # noqa: ANN001
        query = parse_qs(urlsplit(handler.path).query)
        assert query["output"] == ["json"] and query["filter"] == ["statuscode:200"]
        url, start, end = query["url"][0], query["from"][0], query["to"][0]
        rows = [["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]]
        for ts, (status, ctype, body) in sorted(self.captures.get(url, {}).items()):
            if start <= ts <= end:
                rows.append(["example,news)/feed.xml", ts, url, ctype, str(status), f"D{hash(body)}", str(len(body))])
        return Reply(200, json.dumps(rows).encode(), {"Content-Type": "application/json"})

    def raw(self, handler) -> Reply:  # noqa: ANN001
        rest = urlsplit(handler.path).path[len("/web/") :]
        ts, _, url = rest.partition("id_/")
        if url in self.unavailable_once:
            self.unavailable_once.discard(url)
            return Reply(503, b"busy", {"Retry-After": "1", "Content-Type": "text/plain"})
        captures = self.captures.get(url)
        if not captures:
            return Reply(404, b"<html>not archived</html>", {"Content-Type": "text/html"})
        if ts in captures:
            status, ctype, body = captures[ts]
            return Reply(status, body, {"Content-Type": ctype})
        asked = datetime.strptime(ts, "%Y%m%d%H%M%S")
        nearest = min(captures, key=lambda t: abs(datetime.strptime(t, "%Y%m%d%H%M%S") - asked))
        return Reply(302, b"", {"Location": f"/web/{nearest}id_/{url}"})


class PrefixRoutes(dict):
    """LoopbackSite routes where a key ending in ``*`` serves every path under it."""

    def get(self, key, default=None):  # noqa: ANN001, ANN201
        found = super().get(key)
        if found is not None:
            return found
        for prefix, handler in self.items():
            if prefix.endswith("*") and key.startswith(prefix[:-1]):
                return handler
        return default


def serve_archive(site: LoopbackSite, archive: Archive) -> None:
    site.routes = PrefixRoutes(site.routes)
    routes: dict[str, Callable] = {"/cdx/search/cdx": archive.cdx, "/web/*": archive.raw}
    site.routes.update(routes)


def build_history(archive: Archive) -> None:
    slugs = sorted(STORIES, key=lambda s: STORIES[s])
    # a copy of the feed every four days: it lists the newest four stories published by then
    day = _day("2025-09-20")
    while day < _day("2025-11-25"):
        listed = [s for s in slugs if _day(STORIES[s]) <= day][-4:]
        entries = [
            FeedEntry(f"Story {s}", story_url(s), _day(STORIES[s]).strftime("%a, %d %b %Y %H:%M:%S GMT"), f"g-{s}")
            for s in reversed(listed)
        ]
        archive.add(FEED, day, rss(entries, "News Example", "https://news.example/"), "application/rss+xml")
        day += timedelta(days=4)
    for slug, published in STORIES.items():
        if slug == "oct-24":
            continue
        page = news_page(f"Story {slug}", paragraphs(slug), published=f"{published}T12:00:00Z")
        archive.add(story_url(slug), _day(published, 14), page)
    later = news_page("Story oct-19 (updated)", paragraphs("oct-19-updated"), published="2025-10-19T12:00:00Z")
    archive.add(story_url("oct-19"), _day("2025-11-20"), later)


def test_parse_cdx():
    body = json.dumps(
        [
            ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"],
            ["k", "20251012120000", FEED, "application/rss+xml", "200", "A", "10"],
            ["k", "not-a-date", FEED, "application/rss+xml", "200", "B", "10"],
        ]
    ).encode()
    captures = parse_cdx(body)
    assert [(c.timestamp, c.original) for c in captures] == [("20251012120000", FEED)]
    assert captures[0].raw_url("http://a.test") == f"http://a.test/web/20251012120000id_/{FEED}"
    assert parse_cdx(b"[]") == []
    from pipeline.reasons import ItemError

    with pytest.raises(ItemError):
        parse_cdx(b"<html>rate limited</html>")


def test_wayback_loads_exactly_the_window_of_the_feed_history(settings, conn, site):
    archive = Archive()
    build_history(archive)
    archive.unavailable_once.add(story_url("oct-15"))  # a 503 with Retry-After, then the page
    serve_archive(site, archive)
    result = backfill_wayback(settings, FEED, Window.parse(SINCE, UNTIL), base=site.base)
    summary = result.summary
    assert summary.status == "succeeded", summary.message
    stored = sorted(r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM articles"))
    assert stored == IN_WINDOW
    quarantined = conn.execute("SELECT url, reason FROM feed_items WHERE state = 'quarantined'").fetchall()
    assert quarantined == [(story_url("oct-24"), "http_status")]
    text = conn.execute("SELECT text FROM articles WHERE url = %s", (story_url("oct-19"),)).fetchone()[0]
    assert "oct 19 story" in text and "updated" not in text  # the capture nearest the item's date
    sources = dict(
        conn.execute("SELECT item_url, source FROM v_article_sources WHERE source_kind = 'wayback'").fetchall()
    )
    assert sources[story_url("oct-19")] == f"{site.base}/web/20251019140000id_/{story_url('oct-19')}"
    captured = conn.execute("SELECT fetched_at FROM articles WHERE url = %s", (story_url("oct-12"),)).fetchone()[0]
    assert captured == _day("2025-10-12", 14)  # fetched_at: when the archive captured it
    feed = conn.execute("SELECT url, kind FROM feeds").fetchall()
    assert feed == [(FEED, "feed")]  # the feed's own ledger: live runs and backfills see these items
    assert all(r.startswith(("/cdx/search/cdx?", "/web/")) for r in site.requests)  # only the archive is read

    counts, requests = table_counts(conn), len(site.requests)
    again = backfill_wayback(settings, FEED, Window.parse(SINCE, UNTIL), base=site.base)
    assert (again.summary.seen, again.summary.unchanged) == (0, len(IN_WINDOW) + 1)
    assert table_counts(conn) == counts
    assert not [r for r in site.requests[requests:] if "/news/" in r]  # no page read again


def test_cli_backfill_wayback(settings, site, monkeypatch, capsys):
    from pipeline.cli import main

    archive = Archive()
    build_history(archive)
    serve_archive(site, archive)
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NEWSFLOW_HOST_MIN_DELAY", "0.01")
    args = ["backfill", "--wayback", "--feed", FEED, "--since", SINCE, "--until", UNTIL, "--wayback-base", site.base]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "archived copies of the feed" in out and "succeeded" in out


def test_backfill_keeps_where_each_item_was_found(settings, conn, site):
    """The live history walk (pipeline/backfill.py) records archive pages, ?paged=N pages and sitemaps too."""
    from pipeline.backfill import backfill

    from .history import SINCE as H_SINCE
    from .history import UNTIL as H_UNTIL
    from .history import serve_history_site

    feed_url = serve_history_site(site)
    assert backfill(settings, feed_url, Window.parse(H_SINCE, H_UNTIL)).summary.status == "succeeded"
    sources = {
        item_url.rsplit("/", 1)[1]: (kind, source)
        for item_url, kind, source in conn.execute("SELECT item_url, source_kind, source FROM v_article_sources")
    }
    assert sources["current-oct"] == ("feed", feed_url)
    assert sources["archive-oct-05"] == ("archive", site.url("/archive/2025-10.xml"))
    assert sources["paged-oct-12"] == ("paged", site.url("/feed.xml?paged=2"))
    assert sources["sitemap-oct-08"] == ("sitemap", site.url("/sitemap-news.xml"))
