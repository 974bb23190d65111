"""Feed parsing in a worker process, under its own time and memory limit (RELIABILITY.md I3).

feedparser runs regular expressions over the whole document, and some of them are
quadratic on hostile input. ``feeds.parse_feed`` removes the triggers it knows; this module
bounds whatever is left: the parse runs in a worker process with a clock
(``NEWSFLOW_FEED_PARSE_TIMEOUT``) and the workers' memory cap, and a feed that overruns
them fails alone, with reason ``feed_malformed``, while the run goes on.

The worker imports only the feed parser (no spaCy), so it starts in a fraction of a second,
and it is kept for the process's later runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .config import Limits
from .feeds import ParsedFeed, parse_feed
from .reasons import ItemError
from .workers import WorkerFailure, WorkerPool, kept_pool, report_stage

STARTUP_TIMEOUT = 60.0
_LOCK = threading.Lock()  # the stream's poller and a batch run never share a pool task at once


@dataclass(frozen=True)
class FeedTask:
    body: bytes
    url: str
    max_items: int


@dataclass(frozen=True)
class FeedParseError:
    """``parse_feed``'s ItemError as plain data (exceptions with extra fields do not pickle)."""

    reason: str
    message: str
    transient: bool


def parse_task(task: FeedTask) -> ParsedFeed | FeedParseError:
    """Inside the worker."""
    report_stage("feed_parse")
    try:
        return parse_feed(task.body, task.url, task.max_items)
    except ItemError as exc:
        return FeedParseError(exc.reason, exc.message, exc.transient)


def _pool(limits: Limits) -> WorkerPool:
    return kept_pool(
        parse_task,
        1,
        timeout=STARTUP_TIMEOUT,
        max_rss_bytes=limits.worker_max_rss_bytes,
        stage_timeouts={"feed_parse": limits.feed_parse_timeout},
    )


def parse_bounded(limits: Limits, body: bytes, url: str) -> ParsedFeed:
    """``parse_feed`` in the feed worker; ``ItemError`` when the feed is bad or overruns a limit."""
    with _LOCK:
        (outcome,) = _pool(limits).map([FeedTask(bytes(body), url, limits.max_items_per_feed)])
    if isinstance(outcome, WorkerFailure):
        if outcome.kind in {"timeout", "memory"}:  # a hostile feed: it does it again
            raise ItemError("feed_malformed", f"feed parsing stopped: {outcome.kind}: {outcome.message}")
        raise ItemError("internal_error", f"feed parsing failed: {outcome.kind}: {outcome.message}")
    if isinstance(outcome, FeedParseError):
        raise ItemError(outcome.reason, outcome.message, transient=outcome.transient)
    return outcome
