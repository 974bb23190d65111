"""
### newsflow_reprocess

Re-runs **extraction and NLP over the stored raw HTML** after a new trafilatura, spaCy model or
statement-rule version, or for a date range: never fetches. Each article is redone in one
transaction that replaces its entity mentions and statements and keeps its raw HTML.

Params:

- `outdated_only` (default true): only articles whose extractor or NLP version is not the
  current one; a retried or repeated run skips what is already done.
- `since` / `until` (`YYYY-MM-DD`, `until` included, or ISO date-times) and `by`
  (`published` or `fetched`): a date range, alone or with `outdated_only`.

`plan` cuts the selection into id ranges (small XCom values), `reprocess_chunk` is mapped over
them, `reconcile` fails the DAG run if a run's ledger does not add up. Manual by default
(`NEWSFLOW_REPROCESS_SCHEDULE` to schedule it). See docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from pipeline import dagconfig


@dag(
    dag_id="newsflow_reprocess",
    schedule=dagconfig.reprocess_schedule(),
    start_date=dagconfig.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dagconfig.default_args(),
    tags=[*dagconfig.TAGS, "reprocess"],
    doc_md=__doc__,
    params={
        "outdated_only": Param(True, type="boolean", description="Only articles made by an older version"),
        "since": Param(None, type=["null", "string"], description="Start date (YYYY-MM-DD) or date-time"),
        "until": Param(None, type=["null", "string"], description="Last day included, or an exact date-time"),
        "by": Param("published", enum=["published", "fetched"], description="The date the range applies to"),
        "chunk_size": Param(500, type="integer", minimum=1, description="Articles per mapped task"),
    },
)
def newsflow_reprocess() -> None:
    @task
    def plan(params: dict[str, Any]) -> list[dict[str, Any]]:
        from pipeline import tasks

        return tasks.reprocess_plan(
            tasks.airflow_database_url(),
            params.get("since"),
            params.get("until"),
            params.get("by") or "published",
            bool(params.get("outdated_only")),
            int(params.get("chunk_size") or 500),
        )

    @task(max_active_tis_per_dagrun=dagconfig.feed_concurrency())
    def reprocess_chunk(
        since: str | None, until: str | None, by: str, outdated_only: bool, first_id: int, last_id: int
    ) -> int:
        from pipeline import tasks

        return tasks.reprocess_chunk(tasks.airflow_database_url(), since, until, by, outdated_only, first_id, last_id)

    @task
    def reconcile(run_ids: list[int]) -> dict[str, int]:
        from pipeline import tasks

        try:
            return tasks.reconcile(tasks.airflow_database_url(), run_ids)
        except tasks.LedgerMismatch as exc:
            raise AirflowFailException(str(exc)) from exc

    reconcile(reprocess_chunk.expand_kwargs(plan()))


newsflow_reprocess()
