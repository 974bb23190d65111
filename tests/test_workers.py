"""Worker processes: a task that hangs, eats memory, crashes or raises costs only itself."""

from __future__ import annotations

import time
from dataclasses import replace

from pipeline.ingest import ingest
from pipeline.workers import WorkerFailure, WorkerPool

from .pages import FeedEntry, news_page, rss
from .workertasks import job


def test_pool_survives_hangs_memory_hogs_crashes_and_errors():
    with WorkerPool(job, 2, timeout=3, max_rss_bytes=600 * 2**20) as pool:
        started = time.monotonic()
        results = pool.map(["a", "hang", "b", "mem", "crash", "c", "error"])
        assert time.monotonic() - started < 30
        assert results[0] == "A" and results[2] == "B" and results[5] == "C"
        kinds = {i: r.kind for i, r in enumerate(results) if isinstance(r, WorkerFailure)}
        assert kinds == {1: "timeout", 3: "memory", 4: "crashed", 6: "error"}
        assert pool.replaced == 3  # hang, memory and crash each cost a worker; an error does not
        assert pool.map(["d", "e"]) == ["D", "E"]  # replacements work


def test_page_that_overruns_extraction_is_quarantined_and_the_run_goes_on(settings, conn, site):
    paragraphs = [
        "The harbour authority said on Tuesday that it would extend the northern pier by 200 metres.",
        '"We expect the work to take two years," the authority\'s director, Maria Olsen, said.',
        "The council approved the budget in a vote of nine to two after a long debate.",
    ]
    site.add("/good", news_page("Harbour", paragraphs))
    # 40,000 sentences of their own: several seconds of extraction with any lxml (a deeply
    # nested page is no longer slow with lxml 6.1)
    sentence = "<div><p>Paragraph {} has several words in it to keep the extractor busy.</p></div>"
    heavy = "<html><body>" + "".join(sentence.format(i) for i in range(40_000)) + "</body></html>"
    site.add("/heavy", heavy)
    feed = site.add(
        "/feed.xml",
        rss([FeedEntry("heavy", site.url("/heavy"), guid="h"), FeedEntry("good", site.url("/good"), guid="g")]),
        "application/rss+xml",
    )
    limits = replace(settings.limits, extraction_timeout=0.3, nlp_timeout=30.0)
    summary = ingest(replace(settings, limits=limits), [feed])
    rows = dict(conn.execute("SELECT guid, (state, reason) FROM feed_items").fetchall())
    assert rows["g"] == ("stored", None)
    assert rows["h"] == ("quarantined", "extraction_failed")
    message = conn.execute("SELECT message FROM feed_items WHERE guid = 'h'").fetchone()[0]
    assert message.startswith("timeout")
    assert summary.status == "succeeded"
