"""`newsflow status` and `newsflow retry` over a real ledger."""

from __future__ import annotations

from pipeline.cli import main
from pipeline.loopback import Reply

from .pages import FeedEntry, news_page, rss

PARAS = [
    "The harbour authority said on Tuesday that it would extend the northern pier by 200 metres.",
    '"We expect the work to take two years," the authority\'s director, Maria Olsen, said.',
    "The council approved the budget in a vote of nine to two after a long debate.",
]


def test_status_and_retry(settings, conn, site, monkeypatch, capsys):
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NEWSFLOW_HOST_MIN_DELAY", "0")
    healthy = {"up": False}

    def flaky(_h):
        if not healthy["up"]:
            return Reply(503, b"busy", {"Content-Type": "text/plain"})
        return Reply(200, news_page("Back", PARAS).encode(), {"Content-Type": "text/html"})

    site.routes["/flaky"] = flaky
    feed = site.add(
        "/feed.xml",
        rss([FeedEntry("flaky", site.url("/flaky"), guid="f"), FeedEntry("gone", site.url("/gone"), guid="g")]),
        "application/rss+xml",
    )
    broken = site.add("/broken.xml", "not a feed", "text/plain")
    assert main(["ingest", "--feed", feed, "--feed", broken]) == 0
    capsys.readouterr()

    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "recent runs" in out and "failing feeds" in out and broken in out
    assert "http_status" in out and "feed_malformed" in out

    healthy["up"] = True
    assert main(["retry", "--reason", "http_status"]) == 0
    assert "stored" in capsys.readouterr().out
    rows = dict(conn.execute("SELECT guid, state FROM feed_items").fetchall())
    assert rows == {"f": "stored", "g": "quarantined"}  # the 404 is permanent: not retried
    kinds = [k for (k,) in conn.execute("SELECT kind FROM ops.runs ORDER BY id")]
    assert kinds == ["ingest", "retry"]

    assert main(["retry", "--reason", "nonsense"]) == 2
    assert "unknown reason" in capsys.readouterr().err
