"""Reconcile the providers' archives with the landing zone and the store; re-run only the days that changed.

Asks each input's provider (one search per product over the range: ``smflow.archive.reconcile``)
for granules that were published late or reprocessed (new granule id, revision or checksum) since
they were landed, fetches and lands them (``fetch_late_granules``: the daily DAG's own verified
fetch), ingests them and the landed-but-not-stored granules through the daily DAG's own
``ingest_granule`` (same QC and quarantine), and, with ``rerun_daily``, re-runs
``daily_soil_moisture`` for those days only, so their products are remade with the new inputs.
Idempotent: a second run finds nothing to do. Range and products from the run's params; daily at
12 UTC it looks back ``lookback_days``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues
from smflow.operators.ui import MAP_LABEL, label_map_index


@dag(
    dag_id="reconcile_archive",
    description="fetch granules the providers published late or reprocessed, re-run only those days of daily_soil_moisture",
    schedule="0 12 * * *",
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retry_delay_seconds=60),
    params={
        "start": Param(None, type=["null", "string"], format="date",
                       description="first day (default: lookback_days before the run)"),
        "end": Param(None, type=["null", "string"], format="date", description="last day (default: yesterday)"),
        "lookback_days": Param(30, type="integer", minimum=1),
        "products": Param(["smap", "era5_land", "gldas", "c3s"], type="array"),
        "ask_providers": Param(True, type="boolean",
                               description="ask the providers for late and reprocessed granules"),
        "rerun_daily": Param(True, type="boolean", description="re-run daily_soil_moisture for the changed days"),
    },
    tags=["smflow", "archive", "backfill"],
    doc_md=__doc__,
)
def reconcile_archive():
    @task
    def find_gaps(params: dict | None = None, **context) -> dict:
        from datetime import timedelta

        from smflow.archive.reconcile import reconcile

        today = context["logical_date"].date()
        end = params.get("end") or (today - timedelta(days=1)).isoformat()
        start = params.get("start") or (today - timedelta(days=int(params["lookback_days"]))).isoformat()
        return reconcile(start, end, params["products"], providers=bool(params.get("ask_providers"))).to_dict()

    @task
    def fetch_late_granules(gaps: dict) -> list[dict]:
        """Fetch and land the late / reprocessed granules; with the landed-but-unstored ones, what to ingest."""
        from smflow.operators.daily import fetch_granule

        fetched = [{**fetch_granule(found), "why": found["why"]} for found in gaps["to_fetch"]]
        return [r for r in fetched if r.get("key")] + gaps["to_ingest"]

    @task(max_active_tis_per_dagrun=2, map_index_template=MAP_LABEL)
    def ingest_granule(ref: dict) -> dict:
        from smflow.operators.daily import ingest_granule as run

        label_map_index(f"{ref.get('product', '?')} {ref.get('day', '')}")
        return run(ref)

    @task
    def days_to_rerun(ingested: list[dict], params: dict | None = None) -> list[dict]:
        from smflow.operators.reruns import rerun_requests

        if not params.get("rerun_daily"):
            return []
        # Under the id of the day's existing run, if any: reset_dag_run clears it and runs it again.
        return rerun_requests("daily_soil_moisture", [r["day"] for r in ingested if r.get("status") == "stored"])

    ingested = ingest_granule.expand(ref=fetch_late_granules(find_gaps()))
    TriggerDagRunOperator.partial(
        task_id="rerun_daily", trigger_dag_id="daily_soil_moisture", reset_dag_run=True,
        map_index_template="{{ task.logical_date }}",
        wait_for_completion=False,
    ).expand_kwargs(days_to_rerun(ingested))


assign_queues(reconcile_archive())
