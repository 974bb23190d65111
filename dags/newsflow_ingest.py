"""
### newsflow_ingest

Polls every **enabled feed** in the newsflow `feeds` table on a schedule (daily unless
`NEWSFLOW_INGEST_SCHEDULE` says otherwise) and loads their new items: fetch, extract, entities
and statements, stored in PostgreSQL.

1. `feeds` applies pending migrations and lists the enabled feeds.
2. `ingest_feed` is mapped over them, one task per feed (at most
   `NEWSFLOW_AIRFLOW_FEED_CONCURRENCY` at once). Feeds of one host take turns (an advisory lock
   in PostgreSQL), on top of the fetcher's own per-host delay. Each task is one newsflow run in
   `ops.runs` and returns its run id.
3. `reconcile` checks every run's ledger (items seen = stored + duplicate + quarantined) and
   **fails the DAG run** when it does not add up.

Running it again for the same logical date changes nothing: stored items are not fetched again.
Database: Airflow connection `newsflow_db` (`AIRFLOW_CONN_NEWSFLOW_DB`), else
`NEWSFLOW_DATABASE_URL`. See docs/airflow.md.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

from pipeline import dagconfig


@dag(
    dag_id="newsflow_ingest",
    schedule=dagconfig.ingest_schedule(),
    start_date=dagconfig.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dagconfig.default_args(),
    tags=[*dagconfig.TAGS, "ingest"],
    doc_md=__doc__,
)
def newsflow_ingest() -> None:
    @task
    def feeds() -> list[str]:
        from pipeline import tasks

        db_url = tasks.airflow_database_url()
        tasks.prepare_database(db_url)
        return tasks.enabled_feeds(db_url)

    @task(max_active_tis_per_dagrun=dagconfig.feed_concurrency(), pool=dagconfig.fetch_pool())
    def ingest_feed(feed_url: str) -> int:
        from pipeline import tasks

        return tasks.ingest_feed(tasks.airflow_database_url(), feed_url)

    @task
    def reconcile(run_ids: list[int]) -> dict[str, int]:
        from pipeline import tasks

        try:
            return tasks.reconcile(tasks.airflow_database_url(), run_ids)
        except tasks.LedgerMismatch as exc:
            raise AirflowFailException(str(exc)) from exc  # retrying cannot fix a ledger

    reconcile(ingest_feed.expand(feed_url=feeds()))


newsflow_ingest()
