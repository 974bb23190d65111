"""Every setting newsflow reads, in one place.

Settings come from ``NEWSFLOW_*`` environment variables with documented defaults, so the
CLI, the Airflow tasks and the tests configure the pipeline the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from platformdirs import user_data_dir

from .schedule import PollBounds

USER_AGENT = "newsflow/0.1 (+https://github.com/newsflow/newsflow; news ingestion bot)"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Limits:
    """Bounds on every stage (RELIABILITY.md, I3). Sizes in bytes, times in seconds."""

    feed_timeout: float = 30.0
    feed_parse_timeout: float = 60.0  # parsing one feed document (up to the 10 MB body cap), in a worker
    page_timeout: float = 60.0
    connect_timeout: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_decompression_ratio: int = 100
    max_redirects: int = 5
    host_min_delay: float = 1.0
    host_concurrency: int = 2
    extraction_timeout: float = 20.0
    nlp_timeout: float = 60.0
    worker_max_rss_bytes: int = 1536 * 1024 * 1024
    nlp_max_chars: int = 100_000
    feed_disable_after: int = 30
    max_items_per_feed: int = 10_000
    backfill_max_pages: int = 500  # per history source: archive chain, ?paged=N, sitemap files

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            feed_timeout=_float("NEWSFLOW_FEED_TIMEOUT", d.feed_timeout),
            feed_parse_timeout=_float("NEWSFLOW_FEED_PARSE_TIMEOUT", d.feed_parse_timeout),
            page_timeout=_float("NEWSFLOW_PAGE_TIMEOUT", d.page_timeout),
            connect_timeout=_float("NEWSFLOW_CONNECT_TIMEOUT", d.connect_timeout),
            max_body_bytes=_int("NEWSFLOW_MAX_BODY_BYTES", d.max_body_bytes),
            max_decompression_ratio=_int("NEWSFLOW_MAX_DECOMPRESSION_RATIO", d.max_decompression_ratio),
            max_redirects=_int("NEWSFLOW_MAX_REDIRECTS", d.max_redirects),
            host_min_delay=_float("NEWSFLOW_HOST_MIN_DELAY", d.host_min_delay),
            host_concurrency=_int("NEWSFLOW_HOST_CONCURRENCY", d.host_concurrency),
            extraction_timeout=_float("NEWSFLOW_EXTRACTION_TIMEOUT", d.extraction_timeout),
            nlp_timeout=_float("NEWSFLOW_NLP_TIMEOUT", d.nlp_timeout),
            worker_max_rss_bytes=_int("NEWSFLOW_WORKER_MAX_RSS_BYTES", d.worker_max_rss_bytes),
            nlp_max_chars=_int("NEWSFLOW_NLP_MAX_CHARS", d.nlp_max_chars),
            feed_disable_after=_int("NEWSFLOW_FEED_DISABLE_AFTER", d.feed_disable_after),
            max_items_per_feed=_int("NEWSFLOW_MAX_ITEMS_PER_FEED", d.max_items_per_feed),
            backfill_max_pages=_int("NEWSFLOW_BACKFILL_MAX_PAGES", d.backfill_max_pages),
        )


@dataclass(frozen=True)
class Settings:
    """Resolved configuration.

    ``database_url`` is None when the embedded PostgreSQL should be used; ``home`` is the
    data directory that holds it.
    """

    database_url: str | None
    home: Path
    spacy_model: str = "en_core_web_sm"
    fetch_workers: int = 8
    nlp_workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    # Page workers run this much nicer than the process that feeds them, so storing and
    # dispatching (little CPU, but on the critical path) never queue behind spaCy.
    worker_nice: int = 5
    limits: Limits = field(default_factory=Limits)
    poll_min_seconds: float = 300.0
    poll_max_seconds: float = 86_400.0

    @property
    def poll_bounds(self) -> PollBounds:
        return PollBounds(self.poll_min_seconds, max(self.poll_min_seconds, self.poll_max_seconds))

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("NEWSFLOW_HOME") or user_data_dir("newsflow", appauthor=False)
        return cls(
            database_url=os.environ.get("NEWSFLOW_DATABASE_URL") or None,
            home=Path(home).expanduser(),
            spacy_model=os.environ.get("NEWSFLOW_SPACY_MODEL", "en_core_web_sm"),
            fetch_workers=_int("NEWSFLOW_FETCH_WORKERS", 8),
            nlp_workers=_int("NEWSFLOW_NLP_WORKERS", max(1, os.cpu_count() or 1)),
            worker_nice=_int("NEWSFLOW_WORKER_NICE", 5),
            limits=Limits.from_env(),
            poll_min_seconds=_float("NEWSFLOW_POLL_MIN_SECONDS", 300.0),
            poll_max_seconds=_float("NEWSFLOW_POLL_MAX_SECONDS", 86_400.0),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)
