"""
### newsflow_backfill

Recovers the **history** of feeds for a time window: RFC 5005 archived and paged feeds,
WordPress-style `?paged=N` feed pages, and the site's sitemaps and news sitemaps (from
robots.txt and `/sitemap.xml`) filtered by date. Items outside the window are skipped; items
already stored are not fetched again, so windows may overlap each other and the daily runs.

**Window**: the params `since` / `until` (`YYYY-MM-DD`, `until` included, or ISO date-times)
when given, else the run's data interval. So both work:

- trigger with params: `{"feed": "https://example.org/feed", "since": "2026-01-01", "until": "2026-03-31"}`
- `airflow backfill create --dag-id newsflow_backfill --from-date 2026-01-01 --to-date 2026-03-31
  --dag-run-conf '{"feed": "https://example.org/feed"}'` makes one run per data interval.

**Feed**: the `feed` param, or every enabled feed when it is empty. Scheduled runs (daily by
default, `NEWSFLOW_BACKFILL_SCHEDULE`) therefore sweep the previous day's sitemaps for items that
fell off a feed between two polls.

One mapped `backfill_feed` task per feed, then `reconcile` fails the DAG run if a ledger does
not add up. See docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from pipeline import dagconfig


@dag(
    dag_id="newsflow_backfill",
    # Data intervals (not trigger times), so `airflow backfill` and scheduled runs cover windows.
    schedule=CronDataIntervalTimetable(dagconfig.backfill_schedule(), timezone="UTC"),
    start_date=dagconfig.START_DATE,
    catchup=False,
    max_active_runs=2,
    default_args=dagconfig.default_args(),
    tags=[*dagconfig.TAGS, "backfill"],
    doc_md=__doc__,
    params={
        "feed": Param(None, type=["null", "string"], description="Feed URL; empty: every enabled feed"),
        "since": Param(None, type=["null", "string"], description="Start (YYYY-MM-DD); empty: data interval start"),
        "until": Param(None, type=["null", "string"], description="Last day included; empty: data interval end"),
    },
)
def newsflow_backfill() -> None:
    @task
    def plan(params: dict[str, Any], data_interval_start=None, data_interval_end=None) -> list[dict[str, str]]:
        from pipeline import tasks

        db_url = tasks.airflow_database_url()
        tasks.prepare_database(db_url)
        since = params.get("since") or (data_interval_start and data_interval_start.isoformat())
        until = params.get("until") or (data_interval_end and data_interval_end.isoformat())
        if not since or not until:
            raise AirflowFailException("no window: give the since and until params, or run with a data interval")
        return tasks.backfill_plan(db_url, params.get("feed"), since, until)

    @task(max_active_tis_per_dagrun=dagconfig.feed_concurrency(), pool=dagconfig.fetch_pool())
    def backfill_feed(feed_url: str, since: str, until: str) -> int:
        from pipeline import tasks

        return tasks.backfill_feed(tasks.airflow_database_url(), feed_url, since, until)

    @task
    def reconcile(run_ids: list[int]) -> dict[str, int]:
        from pipeline import tasks

        try:
            return tasks.reconcile(tasks.airflow_database_url(), run_ids)
        except tasks.LedgerMismatch as exc:
            raise AirflowFailException(str(exc)) from exc

    reconcile(backfill_feed.expand_kwargs(plan()))


newsflow_backfill()
