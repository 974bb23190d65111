"""
### newsflow_archive_backfill

Loads articles from **web archives**: a month of Common Crawl's news crawl (CC-NEWS) or a
list of WARC/ARC files (paths the workers can read, or http(s) URLs). One mapped
`load_file` task per WARC file, so a month of CC-NEWS (hundreds of 1 GB files) spreads over
the Celery workers; each file streams into the same extract → NLP → store path as a feed
item, into the same ledger.

Params:

- `month` (`YYYY-MM`) and `cc_news_base` (default Common Crawl's public endpoint,
  or `NEWSFLOW_CC_NEWS_BASE`), **or** `paths`: a list of WARC/ARC paths or URLs;
- `domains`: the sites to load (hosts or URLs; default: the hosts of the feeds in the
  `feeds` table), or `all_domains: true`;
- `since` / `until` (`YYYY-MM-DD`, `until` included): the publication window (page
  metadata, else the capture date); `language` (e.g. `en`).

A file is a unit of work in the ledger (`archive_files`): a task that fails or is killed is
retried and resumes at the offset it reached; a finished file is never read again, so a rerun
of a month loads nothing twice. `plan` lists the month's files into the ledger in Common
Crawl's order; `reconcile` fails the DAG run if a run's ledger does not add up. Manual only.
See docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from pipeline import dagconfig


@dag(
    dag_id="newsflow_archive_backfill",
    schedule=None,
    start_date=dagconfig.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dagconfig.default_args(),
    tags=[*dagconfig.TAGS, "backfill", "archive"],
    doc_md=__doc__,
    params={
        "month": Param(None, type=["null", "string"], description="CC-NEWS month, YYYY-MM"),
        "cc_news_base": Param(None, type=["null", "string"], description="CC-NEWS base URL; empty: Common Crawl"),
        "paths": Param(None, type=["null", "array"], description="WARC/ARC paths or URLs (instead of a month)"),
        "domains": Param(None, type=["null", "array"], description="Sites to load; empty: the feeds' hosts"),
        "all_domains": Param(False, type="boolean", description="Load every site in the archive"),
        "since": Param(None, type=["null", "string"], description="Publication window start, YYYY-MM-DD"),
        "until": Param(None, type=["null", "string"], description="Last day included, YYYY-MM-DD"),
        "language": Param(None, type=["null", "string"], description="Only pages in this language, e.g. en"),
    },
)
def newsflow_archive_backfill() -> None:
    @task
    def plan(params: dict[str, Any]) -> list[dict[str, Any]]:
        from pipeline import tasks

        db_url = tasks.airflow_database_url()
        tasks.prepare_database(db_url)
        try:
            return tasks.archive_plan(
                db_url,
                params.get("month"),
                params.get("paths"),
                params.get("cc_news_base"),
                params.get("domains"),
                bool(params.get("all_domains")),
                params.get("since"),
                params.get("until"),
                params.get("language"),
            )
        except ValueError as exc:  # bad params: no retry will fix them
            raise AirflowFailException(str(exc)) from exc

    @task(max_active_tis_per_dagrun=dagconfig.feed_concurrency(), pool=dagconfig.fetch_pool())
    def load_file(
        location: str,
        domains: list[str] | None,
        all_domains: bool,
        since: str | None,
        until: str | None,
        language: str | None,
    ) -> int:
        from pipeline import tasks

        return tasks.archive_load(tasks.airflow_database_url(), location, domains, all_domains, since, until, language)

    @task
    def reconcile(run_ids: list[int]) -> dict[str, int]:
        from pipeline import tasks

        try:
            return tasks.reconcile(tasks.airflow_database_url(), run_ids)
        except tasks.LedgerMismatch as exc:
            raise AirflowFailException(str(exc)) from exc

    reconcile(load_file.expand_kwargs(plan()))


newsflow_archive_backfill()
