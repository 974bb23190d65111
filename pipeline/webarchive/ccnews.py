"""Common Crawl's news crawl (CC-NEWS) by month: its list of WARC files, each streamed over HTTP.

Common Crawl lists a month's files in ``crawl-data/CC-NEWS/YYYY/MM/warc.paths.gz`` (one path
a line, relative to the base URL), each file about 1 GB. The list is kept in
``archive_listings`` and each file gets its row in ``archive_files`` at its position, so a
month is loaded file after file in order: a killed run resumes at the first unfinished
file (at the offset it reached), never reads a finished one again, and a rerun of a month
that is complete fetches nothing at all. The list of a month still under way is fetched
again by each run (Common Crawl adds files until the month is over).

The base URL is configurable (``--cc-news-base``, ``NEWSFLOW_CC_NEWS_BASE``): the public
endpoint by default, a mirror or a loopback imitation in tests.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from ..config import Settings
from ..fetch import Fetcher
from ..ingest import RunSummary
from ..reasons import ItemError
from ..sitemaps import SitemapError, inflate
from .load import ArchiveResult, ArchiveTotals, Filters, _FileReader, file_state, prepare, run_archive
from .reader import ArchiveError

DEFAULT_BASE = "https://data.commoncrawl.org"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
FINAL_AFTER = timedelta(days=2)  # a month's list is complete this long after the month ended


def base_url(base: str | None = None) -> str:
    return (base or os.environ.get("NEWSFLOW_CC_NEWS_BASE") or DEFAULT_BASE).rstrip("/")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        found = _MONTH.match(text.strip())
        if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2016:
            raise ValueError(f"not a CC-NEWS month (YYYY-MM, from 2016-08): {text[:40]!r}")
        return cls(int(found.group(1)), int(found.group(2)))

    @property
    def name(self) -> str:
        return f"CC-NEWS/{self.year:04d}/{self.month:02d}"

    def paths_url(self, base: str) -> str:
        return f"{base}/crawl-data/{self.name}/warc.paths.gz"

    def end(self) -> datetime:
        first = datetime(self.year + (self.month == 12), self.month % 12 + 1, 1, tzinfo=UTC)
        return first


_LISTING = "SELECT url, files, final FROM archive_listings WHERE name = %(name)s"
_LISTED_FILES = """
SELECT location FROM archive_files WHERE listing = %(name)s ORDER BY position
"""
_SAVE_LISTING = """
INSERT INTO archive_listings (name, url, files, final) VALUES (%(name)s, %(url)s, %(files)s, %(final)s)
ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, files = EXCLUDED.files, final = EXCLUDED.final,
                                 listed_at = now()
"""


def month_files(conn: psycopg.Connection, fetcher: Fetcher, month: Month, base: str) -> list[str]:
    """The month's WARC file URLs in Common Crawl's order; from the database when complete."""
    row = conn.execute(_LISTING, {"name": month.name}).fetchone()
    if row is not None and row[2]:
        known = [r[0] for r in conn.execute(_LISTED_FILES, {"name": month.name})]
        if len(known) == row[1]:
            return known  # complete and final: nothing to fetch
    url = month.paths_url(base)
    try:
        response = fetcher.get(url, timeout=fetcher.limits.feed_timeout, accept="*/*", trusted_origin=base)
        text = inflate(response.body, fetcher.limits.max_body_bytes).decode("utf-8")
    except ItemError as exc:
        raise ArchiveError(f"cannot read the CC-NEWS list {url}: {exc.reason}: {exc.message}") from exc
    except (SitemapError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"the CC-NEWS list {url} is not a gzipped list of paths: {exc}") from exc
    paths = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    files = [f"{base}/{path.lstrip('/')}" for path in paths]
    final = datetime.now(UTC) >= month.end() + FINAL_AFTER
    with conn.transaction():
        conn.execute(_SAVE_LISTING, {"name": month.name, "url": url, "files": len(files), "final": final})
    for position, location in enumerate(files):
        file_state(conn, location, month.name, position)
    return files


def plan_month(settings: Settings, month: str, base: str | None = None) -> list[str]:
    """The month's files (URLs), listed into the ledger; for the DAG's mapped tasks."""
    from .. import db
    from ..fetch import AddressGuard

    chosen, root = Month.parse(month), base_url(base)
    with db.connect(db.database_url(settings)) as conn:
        db.upgrade(conn)
        guard = AddressGuard()
        guard.allow([root])
        with Fetcher(settings.limits, guard) as fetcher:
            return month_files(conn, fetcher, chosen, root)


def load_month(
    settings: Settings, month: str, filters: Filters, *, base: str | None = None, all_domains: bool = False
) -> ArchiveResult:
    """Load a CC-NEWS month: file after file in order, finished ones skipped unread."""
    chosen, root = Month.parse(month), base_url(base)
    filters = prepare(settings, filters, all_domains)
    totals = ArchiveTotals()

    def body(conn: psycopg.Connection, fetcher: Fetcher, pool: ThreadPoolExecutor, summary: RunSummary) -> None:
        files = month_files(conn, fetcher, chosen, root)
        reader = _FileReader(conn, fetcher, pool, settings, summary, filters, totals)
        for position, location in enumerate(files):
            result = reader.read(location, chosen.name, position)
            if result.state in ("already done", "busy"):
                totals.files.append(result)
        summary.message = f"{chosen.name}: {totals.describe()}"

    summary = run_archive(settings, "backfill_cc_news", body, trusted=[root])
    return ArchiveResult(summary, totals)
