"""
### newsflow_ingest

Polls the **due feeds** in the newsflow `feeds` table every 15 minutes (`NEWSFLOW_INGEST_SCHEDULE`
to change it) and loads their new items: fetch, extract, entities and statements, stored in
PostgreSQL. A feed is due when its adaptive next-poll time has come (the same rule as
`newsflow run`): busy feeds come round often, quiet and failing ones rarely, so most runs are short.

1. `feeds` applies pending migrations and lists the enabled feeds that are due.
2. `ingest_feed` is mapped over them, one task per feed (at most
   `NEWSFLOW_AIRFLOW_FEED_CONCURRENCY` at once). Feeds of one host take turns (an advisory lock
   in PostgreSQL), on top of the fetcher's own per-host delay. Each task is one newsflow run in
   `ops.runs` and returns its run id.
3. `reconcile` checks every run's ledger (items seen = stored + duplicate + quarantined) and
   **fails the DAG run** when it does not add up.
4. `publish` updates the Airflow asset `newsflow_stored_articles` (extra: run ids and counts)
   when the runs stored new articles, and is skipped otherwise. DAGs scheduled on that asset
   (`newsflow_report`) then run without waiting for a fixed time.

With no feed due, the mapped task and everything after it are skipped. Running it again changes
nothing: stored items are not fetched again. Database: Airflow connection `newsflow_db`
(`AIRFLOW_CONN_NEWSFLOW_DB`), else `NEWSFLOW_DATABASE_URL`. See docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipeline import dagconfig

STORED_ARTICLES = Asset(name=dagconfig.STORED_ARTICLES_ASSET, uri=dagconfig.STORED_ARTICLES_URI, group="newsflow")


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
        return tasks.due_feeds(db_url)

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

    # The outlet sits after reconcile, not on ingest_feed: one event per DAG run, only for runs
    # whose ledgers add up, and none when nothing new was stored (a skipped task emits none).
    @task(outlets=[STORED_ARTICLES])
    def publish(run_ids: list[int], totals: dict[str, int], outlet_events=None) -> dict[str, Any]:
        from pipeline import tasks

        extra = tasks.stored_articles_extra(run_ids, totals)
        if extra is None:
            raise AirflowSkipException("no new articles stored: no asset event")
        outlet_events[STORED_ARTICLES].extra = extra
        return extra

    run_ids = ingest_feed.expand(feed_url=feeds())
    publish(run_ids, reconcile(run_ids))


newsflow_ingest()
