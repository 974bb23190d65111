"""
### newsflow_report

Rebuilds the **analyst report** (the HTML page and plots of `newsflow report`: activity, top
speakers, entities, pairs, quarantine reasons) over the last `days` days whenever
`newsflow_ingest` has stored new articles: it is scheduled on the Airflow asset
`newsflow_stored_articles`, not on a clock. Several asset events that arrive while a run is
busy are folded into the next run.

The report goes to `NEWSFLOW_REPORT_DIR` (default: `report` in newsflow's home), written beside
it and then swapped in, so readers never see half a report; with Celery workers on several
machines make it a shared volume. `refresh` logs the ingest runs that triggered it and returns
the report's path and headline counts. See docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, Param, dag, task

from pipeline import dagconfig

STORED_ARTICLES = Asset(name=dagconfig.STORED_ARTICLES_ASSET, uri=dagconfig.STORED_ARTICLES_URI, group="newsflow")


@dag(
    dag_id="newsflow_report",
    schedule=[STORED_ARTICLES],
    start_date=dagconfig.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dagconfig.default_args(),
    tags=[*dagconfig.TAGS, "report"],
    doc_md=__doc__,
    params={"days": Param(7, type="integer", minimum=1, description="Days the report covers, up to now")},
)
def newsflow_report() -> None:
    @task
    def refresh(params: dict[str, Any], triggering_asset_events=None) -> dict[str, Any]:
        import logging

        from pipeline import tasks

        for asset, events in (triggering_asset_events or {}).items():
            for event in events:
                logging.getLogger(__name__).info("triggered by %s: %s", asset, event.extra)
        return tasks.refresh_report(tasks.airflow_database_url(), tasks.report_dir(), int(params.get("days") or 7))

    refresh()


newsflow_report()
