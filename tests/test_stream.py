"""Streaming mode: `newsflow run` picks up items as a feed publishes them; `tail` sees them land."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime

import psycopg

from pipeline.loopback import Reply
from pipeline.stream import Stream, run_stream, tail

from .pages import FeedEntry, news_page, rss


def _story(i: int) -> list[str]:
    return [
        f"The transport minister, Ana Ruiz, said on Monday that line {i} would reopen next week.",
        f'"We have replaced every signal on line {i}," Ruiz said. "Trains will run every four minutes."',
        f"Union leader Marc Bel said the staff of line {i} had not been consulted about the timetable.",
    ]


class PublishingSite:
    """A feed that publishes one more item every ``every`` seconds, newest first."""

    def __init__(self, site, every: float, first: int = 1, slow: float = 0.0):
        self.site = site
        self.every = every
        self.start = time.time()
        self.first = first
        for i in range(200):
            page = news_page(f"Line {i} reopens", _story(i)).encode()

            def handler(_h, page=page):
                if slow:
                    time.sleep(slow)
                return Reply(200, page, {"Content-Type": "text/html"})

            site.routes[f"/line/{i}"] = handler
        site.routes["/feed.xml"] = self.feed

    def published(self) -> int:
        return self.first + int((time.time() - self.start) / self.every)

    def feed(self, _h) -> Reply:
        n = self.published()
        entries = [
            FeedEntry(
                f"Line {i}",
                self.site.url(f"/line/{i}"),
                format_datetime(datetime.fromtimestamp(self.start + i * self.every, UTC), usegmt=True),
                f"line-{i}",
            )
            for i in reversed(range(n))
        ]
        return Reply(200, rss(entries).encode(), {"Content-Type": "application/rss+xml"})


def _warm_workers(settings) -> None:
    """Start the page workers before timing anything: spawning them loads spaCy."""
    from pipeline.pagework import PageTask, page_pool

    page = news_page("Warm-up", _story(0)).encode()
    page_pool(settings).map([PageTask(page, "http://warm.test/", settings.spacy_model, 1000)])


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _count(conn: psycopg.Connection, sql: str) -> int:
    return conn.execute(sql).fetchone()[0]


def test_stream_stores_items_as_they_are_published_and_tail_prints_them(settings, conn, site):
    _warm_workers(settings)
    publisher = PublishingSite(site, every=1.0, first=2)
    lines: list[str] = []
    tailed: list[str] = []
    listener = threading.Thread(
        target=tail, kwargs={"settings": settings, "speaker": "Ruiz", "timeout": 19, "out": tailed.append}
    )
    listener.start()
    listening = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
    _wait_for(lambda: _count(conn, listening) == 1, "tail to listen")
    summary = run_stream(settings, [site.url("/feed.xml")], poll_min=0.5, poll_max=2.0, duration=10, out=lines.append)
    published_before_end = publisher.published() - 4  # items published well before the stop
    listener.join()
    stored = {g for (g,) in conn.execute("SELECT guid FROM feed_items WHERE state = 'stored'")}
    assert {f"line-{i}" for i in range(published_before_end)} <= stored, lines
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == len(stored)
    assert summary.status == "succeeded" and summary.stored == len(stored)
    assert any("lag p50" in line for line in lines)
    assert tailed and all("Ana Ruiz" in line for line in tailed)
    kinds = {k for (k,) in conn.execute("SELECT kind FROM ops.runs")}
    assert kinds == {"stream"}
    lags = [r[0] for r in conn.execute("SELECT extract(epoch FROM stored_at - published_at) FROM articles")]
    assert sorted(lags)[len(lags) // 2] < 10  # queryable within seconds of publication, not the next day


def test_stop_releases_queued_items_and_a_restart_finishes_them(settings, conn, site):
    _warm_workers(settings)
    PublishingSite(site, every=1000.0, first=70, slow=0.05)
    stream = Stream(settings, [site.url("/feed.xml")], out=lambda _line: None)
    settings = replace(settings, limits=replace(settings.limits, host_concurrency=1))

    waited: list[BaseException] = []

    def stop_once_something_is_stored() -> None:
        has_articles = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'articles'"
        try:
            _wait_for(lambda: _count(conn, has_articles) and _count(conn, "SELECT count(*) FROM articles"), "a store")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            waited.append(exc)
        finally:
            stream.stop()  # the batch in progress finishes; what is still queued is released

    stopper = threading.Thread(target=stop_once_something_is_stored, daemon=True)
    stopper.start()
    first = run_stream(settings, stream=stream, poll_min=0.5, poll_max=1.0)
    stopper.join()
    assert not waited, waited
    partial = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert 0 < partial < 70 and first.stored == partial
    # The feed's validators were not saved: the restart sees every item again.
    run_stream(settings, [site.url("/feed.xml")], poll_min=0.5, poll_max=1.0, duration=30, out=lambda _l: None)
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 70
    assert conn.execute("SELECT count(*) FROM feed_items").fetchone()[0] == 70
    assert conn.execute("SELECT count(*) FROM feed_items WHERE state <> 'stored'").fetchone()[0] == 0


def test_sigterm_stops_the_command_cleanly(settings, site, tmp_path):
    PublishingSite(site, every=1000.0, first=20, slow=0.3)
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(site.url("/feed.xml") + "\n", encoding="utf-8")
    env = {**os.environ, "NEWSFLOW_DATABASE_URL": settings.database_url, "NEWSFLOW_HOST_MIN_DELAY": "0"}
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--feeds", str(feeds), "--poll-min", "1", "--duration", "120"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            exists = conn.execute("SELECT to_regclass('public.articles') IS NOT NULL").fetchone()[0]
            if exists and conn.execute("SELECT count(*) FROM articles").fetchone()[0] > 0:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "received SIGTERM" in out and "Traceback" not in err
        assert conn.execute("SELECT status FROM ops.runs").fetchone()[0] == "succeeded"
