"""One poisoned item or feed never stops a run, and a run's record always ends (issue 13, items 1 and 4).

Real PostgreSQL, real HTTP from loopback servers, the real CLI where the exit status matters.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import psycopg
import pytest

from pipeline import runs
from pipeline.cli import main
from pipeline.fetch import _retry_after
from pipeline.ingest import ingest
from pipeline.loopback import Reply
from pipeline.stream import Stream

from .pages import news_page

PARAGRAPHS = [
    "The harbour board said on Monday that the northern pier would be extended by two hundred metres.",
    '"We expect the work to take two years," the board\'s chair, Ingrid Holm, told reporters in the port.',
    "The council approved the budget in a vote of nine to two after a debate that lasted four hours.",
    "Holm said the extension would let larger ferries dock during the winter storms that close the bay.",
]


def _item(title: str, link: str, guid: str) -> str:
    return f"<item><title>{title}</title><link>{link}</link><guid isPermaLink=\"false\">{guid}</guid></item>"


def _rss(items: list[str], channel_title: str = "Harbour news") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{channel_title}</title><link>http://example.org/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def _pages(site, n: int, prefix: str = "good", repeat: int = 1) -> list[str]:
    links = []
    for i in range(n):
        paragraphs = [
            p.replace("pier", f"pier number {i} of {prefix} ({k})") for k in range(repeat) for p in PARAGRAPHS
        ]
        links.append(site.add(f"/{prefix}/{i}", news_page(f"Pier {prefix} {i}", paragraphs)))
    return links


POISON = [
    ("ipv6 bracket", "http://[::1", "p1"),
    ("bracketed ipv4", "https://[127.0.0.1]/x", "p2"),
    ("bracket in host", "http://a]b/", "p3"),
    ("compatibility character", "http://example\u2100.org/a", "p4"),
    ("nul title &#0;", None, "p5"),
    ("surrogate title &#xD800;", None, "p6"),
    ("nul guid", None, "p7&#0;x"),
    ("surrogate guid", None, "p8&#xD800;x"),
]


def test_poisoned_items_are_recorded_and_every_good_item_is_stored(settings, conn, site):
    good = _pages(site, 3)
    items = [_item("first good", good[0], "g0")]
    for n, (title, link, guid) in enumerate(POISON):
        items.append(_item(title, link or good[1] + f"?v={n}", guid))
    items += [_item("second good", good[1], "g1"), _item("third good", good[2], "g2")]
    feed = site.add("/feed.xml", _rss(items, channel_title="Harbour &#0;news"), "application/rss+xml")

    summary = ingest(settings, [feed])

    assert summary.status == "succeeded", summary.message
    rows = conn.execute("SELECT state, reason, count(*) FROM feed_items GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    ledger = {(state, reason): n for state, reason, n in rows}
    assert sum(ledger.values()) == 3 + len(POISON)  # every item has its row
    assert ledger[("quarantined", "bad_url")] == 4  # the four malformed links
    # the NUL/surrogate titles and guids point at the second good page: stored once, then duplicates
    assert ledger[("stored", None)] == 3
    assert ledger.get(("duplicate", None), 0) == 4
    assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 3
    assert conn.execute("SELECT status FROM ops.runs").fetchone()[0] == "succeeded"
    (title,) = conn.execute("SELECT title FROM feeds").fetchone()
    assert "\x00" not in title and "news" in title


def test_a_retry_after_of_unicode_digits_is_a_plain_transient_failure(settings, conn, site):
    """``'²'.isdigit()`` is true: the header used to crash the run with a float() error."""
    good = _pages(site, 1)
    site.routes["/busy.xml"] = Reply(503, b"busy", {"Retry-After": "\u00b2"})
    ok = site.add("/feed.xml", _rss([_item("good", good[0], "g0")]), "application/rss+xml")
    summary = ingest(settings, [site.url("/busy.xml"), ok])
    assert summary.status == "succeeded" and summary.stored == 1
    row = conn.execute("SELECT consecutive_failures, last_error_reason FROM feeds WHERE url LIKE '%busy%'").fetchone()
    assert row == (1, "http_status")
    for value in ("\u00b2", "\u0663", "1e3", "-5", "9" * 40, "Wed, 99 Foo 2020 99:99:99 GMT", "\x00"):
        assert _retry_after(value) is None or _retry_after(value) >= 0


def test_a_host_asking_for_an_hours_pause_does_not_hold_the_run(settings, conn, site):
    """Retry-After: 3600 on one page: the host's other items fail transiently at once, the run goes on."""
    import threading

    from pipeline.loopback import LoopbackSite

    with LoopbackSite(host="127.0.0.2") as other:
        busy = [other.add(f"/busy/{i}", news_page(f"Busy {i}", PARAGRAPHS)) for i in range(4)]
        other.routes["/busy/0"] = Reply(503, b"later", {"Retry-After": "3600"})
        good = _pages(site, 2)
        feed_a = other.add("/a.xml", _rss([_item(f"b{i}", link, f"b{i}") for i, link in enumerate(busy)]))
        feed_b = site.add("/b.xml", _rss([_item(f"g{i}", link, f"g{i}") for i, link in enumerate(good)]))
        done: list = []
        one_at_a_time = replace(settings, limits=replace(settings.limits, host_concurrency=1))
        worker = threading.Thread(target=lambda: done.append(ingest(one_at_a_time, [feed_a, feed_b])), daemon=True)
        worker.start()
        worker.join(timeout=300)  # a hang guard, not a speed target: the old limiter slept for the hour
        assert done, "the run waited for the host's hour"
        summary = done[0]
        assert summary.status == "succeeded" and summary.stored == 2
        assert summary.quarantined == {"http_status": 4}
        rows = conn.execute("SELECT transient, message FROM feed_items WHERE state = 'quarantined'").fetchall()
        assert all(transient for transient, _ in rows)
        assert other.hits("/busy/1") == 0  # the pause was honoured: nothing more was asked of the host


def test_an_unexpected_error_in_one_feed_is_that_feeds_failure(settings, conn, site, monkeypatch):
    from pipeline import ingest as ingest_module

    good = _pages(site, 2)
    bad = site.add("/bad.xml", _rss([_item("a", good[0], "a")]), "application/rss+xml")
    ok = site.add("/ok.xml", _rss([_item("b", good[1], "b")]), "application/rss+xml")
    real = ingest_module.parse_bounded

    def parse(limits, body, url):
        if url.endswith("/bad.xml"):
            raise RuntimeError("a bug met on this feed only")
        return real(limits, body, url)

    monkeypatch.setattr(ingest_module, "parse_bounded", parse)
    summary = ingest(settings, [bad, ok])
    assert summary.status == "succeeded" and summary.stored == 1
    assert "internal_error" in summary.feeds_failed[bad]
    row = conn.execute("SELECT consecutive_failures, last_error_reason, last_error FROM feeds WHERE url = %s", [bad])
    failures, reason, message = row.fetchone()
    assert (failures, reason) == (1, "internal_error") and "a bug met" in message


def test_a_statement_the_database_refuses_rejects_that_article_only(settings, conn, site, monkeypatch):
    """psycopg files 'index row size exceeds maximum' under OperationalError: it is not a lost connection."""
    from pipeline import store

    good = _pages(site, 3)
    feed = site.add("/feed.xml", _rss([_item(f"g{i}", link, f"g{i}") for i, link in enumerate(good)]))
    real = store.write_analysis

    def write_analysis(c, article_id, analysis):
        real(c, article_id, analysis)
        if article_id == 2:  # a real refusal by PostgreSQL: a btree entry over its size limit
            c.execute("CREATE TEMP TABLE IF NOT EXISTS too_big (v text PRIMARY KEY)")
            c.execute("INSERT INTO too_big SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i")

    monkeypatch.setattr(store, "write_analysis", write_analysis)
    summary = ingest(settings, [feed])
    assert summary.status == "succeeded" and summary.stored == 2
    assert summary.quarantined == {"db_rejected": 1}
    (message,) = conn.execute("SELECT message FROM feed_items WHERE state = 'quarantined'").fetchone()
    assert "ProgramLimitExceeded" in message


def test_feed_parsing_runs_in_a_worker_under_a_time_limit(settings, conn, site):
    """A feed whose parse overruns its clock fails alone, as feed_malformed; the other feed is stored."""
    good = _pages(site, 1)
    many = [_item(f"item {i}", f"{site.base}/none/{i}", f"n{i}") for i in range(5000)]
    slow = site.add("/slow.xml", _rss(many), "application/rss+xml")
    ok = site.add("/ok.xml", _rss([_item("g", good[0], "g")]), "application/rss+xml")
    hurried = replace(settings, limits=replace(settings.limits, feed_parse_timeout=0.001))
    summary = ingest(hurried, [slow, ok])
    assert summary.status == "succeeded" and summary.stored == 1
    assert summary.feeds_failed[slow].startswith("feed_malformed: feed parsing stopped: timeout")
    assert conn.execute("SELECT count(*) FROM feed_items").fetchone()[0] == 1


def _cli(settings, *args: str) -> subprocess.Popen:
    env = {**os.environ, "NEWSFLOW_DATABASE_URL": settings.database_url, "NEWSFLOW_HOST_MIN_DELAY": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _slow_feed(site, n: int = 6) -> str:
    links = _pages(site, n)
    for link in links:
        path = link.split(site.base, 1)[1]
        reply = site.routes[path]

        def slow(_h, reply=reply):
            time.sleep(2.0)
            return reply

        site.routes[path] = slow
    return site.add("/feed.xml", _rss([_item(f"s{i}", link, f"s{i}") for i, link in enumerate(links)]))


def _wait_for_running_run(conn: psycopg.Connection, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exists = conn.execute("SELECT to_regclass('ops.runs')").fetchone()[0]
        if exists:
            row = conn.execute("SELECT id FROM ops.runs WHERE status = 'running'").fetchone()
            if row:
                return row[0]
        time.sleep(0.1)
    raise AssertionError("no run started")


def test_sigterm_ends_the_run_record_aborted(settings, conn, site):
    proc = _cli(settings, "ingest", "--feed", _slow_feed(site))
    run_id = _wait_for_running_run(conn)
    time.sleep(1.0)  # inside the run: fetching the slow pages
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err
    status, message, finished = conn.execute(
        "SELECT status, message, finished_at FROM ops.runs WHERE id = %s", [run_id]
    ).fetchone()
    assert status == "aborted" and "SIGTERM" in message and finished is not None


def test_a_run_killed_with_9_is_marked_aborted_by_the_next_run_at_once(settings, conn, site):
    proc = _cli(settings, "ingest", "--feed", _slow_feed(site))
    run_id = _wait_for_running_run(conn)
    # While its process lives, another run leaves it alone.
    with psycopg.connect(settings.database_url, autocommit=True) as other:
        probe = runs.start(other, "probe")
        assert conn.execute("SELECT status FROM ops.runs WHERE id = %s", [run_id]).fetchone()[0] == "running"
        runs.finish(other, probe, status="succeeded", counts={}, message=None)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # PostgreSQL notices the dead client's connection when it next reads from it: at once on loopback.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0]:
        time.sleep(0.05)
    good = _pages(site, 1, prefix="next")
    summary = ingest(settings, [site.add("/next.xml", _rss([_item("n", good[0], "n")]))])
    assert summary.status == "succeeded"
    status, message = conn.execute("SELECT status, message FROM ops.runs WHERE id = %s", [run_id]).fetchone()
    assert status == "aborted" and "ended before the run did" in message
    assert conn.execute("SELECT count(*) FROM ops.runs WHERE status = 'running'").fetchone()[0] == 0


def test_a_stream_run_that_fails_is_recorded_failed(settings, conn, site, monkeypatch):
    from pipeline import stream as stream_module

    good = _pages(site, 1)
    feed = site.add("/feed.xml", _rss([_item("g", good[0], "g")]), "application/rss+xml")

    def broken(*args, **kwargs):
        raise RuntimeError("processing broke")

    monkeypatch.setattr(stream_module, "process_items", broken)
    stream = Stream(settings, [feed], out=lambda line: None, summary_every=60)
    with pytest.raises(RuntimeError, match="processing broke"):
        stream.run(duration=30)
    status, message = conn.execute("SELECT status, message FROM ops.runs").fetchone()
    assert status == "failed" and "processing broke" in message


def test_an_article_whose_nlp_fails_is_stored_and_completed_by_retry(settings, conn, site, capsys, monkeypatch):
    """NLP that overruns its limit leaves the article stored with its text, analysis pending."""
    good = _pages(site, 2, repeat=80)  # long enough that spaCy is still busy when its clock is checked
    feed = site.add("/feed.xml", _rss([_item(f"g{i}", link, f"g{i}") for i, link in enumerate(good)]))
    starved = replace(settings, limits=replace(settings.limits, nlp_timeout=0.0001))
    summary = ingest(starved, [feed])
    assert summary.status == "succeeded" and summary.stored == 2 and summary.analysis_failed == 2
    rows = conn.execute("SELECT nlp_error, length(text) FROM articles ORDER BY id").fetchall()
    assert all(error.startswith("nlp_failed: timeout") and length > 200 for error, length in rows)
    assert conn.execute("SELECT count(*) FROM statements").fetchone()[0] == 0
    ledger = conn.execute("SELECT state, reason, transient FROM feed_items ORDER BY id").fetchall()
    assert ledger == [("stored", "nlp_failed", True)] * 2

    # A rerun does not fetch the items again; `newsflow retry` completes the analyses.
    hits = site.hits("/good/0")
    assert ingest(settings, [feed]).seen == 0 and site.hits("/good/0") == hits
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    assert main(["retry"]) == 0
    assert "analysis failed" in capsys.readouterr().out
    assert conn.execute("SELECT count(*) FROM articles WHERE nlp_error IS NOT NULL").fetchone()[0] == 0
    assert conn.execute("SELECT count(DISTINCT article_id) FROM statements").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM feed_items WHERE reason IS NOT NULL").fetchone()[0] == 0
    assert site.hits("/good/0") == hits  # completed from the stored HTML
