"""Reconcile the archive inventory with the time-series store and backfill the missing days.

Lists, per input product, the days whose granule is in the landing zone but not in the store
(``smflow.archive.reconcile``), ingests each of them through the daily DAG's own
``ingest_granule`` (same QC and quarantine), and, with ``rerun_daily``, re-runs
``daily_soil_moisture`` for those days so their products are remade with the late inputs.
Range and products from the run's params; daily at 12 UTC it looks back ``lookback_days``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args


@dag(
    dag_id="reconcile_archive",
    schedule="0 12 * * *",
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, retry_delay_seconds=60),
    params={
        "start": Param(None, type=["null", "string"], format="date",
                       description="first day (default: lookback_days before the run)"),
        "end": Param(None, type=["null", "string"], format="date", description="last day (default: yesterday)"),
        "lookback_days": Param(30, type="integer", minimum=1),
        "products": Param(["smap", "era5_land", "gldas", "c3s"], type="array"),
        "rerun_daily": Param(False, type="boolean"),
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
        return reconcile(start, end, params["products"]).to_dict()

    @task
    def granules(gaps: dict) -> list[dict]:
        return gaps["to_ingest"]

    @task(max_active_tis_per_dagrun=2)
    def ingest_granule(ref: dict) -> dict:
        from smflow.operators.daily import ingest_granule as run

        return run(ref)

    @task
    def days_to_rerun(gaps: dict, ingested: list[dict], params: dict | None = None) -> list[dict]:
        if not params.get("rerun_daily"):
            return []
        stored = {r["day"] for r in ingested if r.get("status") == "stored"}
        # No run id of our own: an existing run of that day (scheduled__...) is then found by its
        # logical date and, with reset_dag_run, cleared and run again.
        return [{"logical_date": f"{day}T00:00:00+00:00"} for day in gaps["days_to_backfill"] if day in stored]

    gaps = find_gaps()
    ingested = ingest_granule.expand(ref=granules(gaps))
    TriggerDagRunOperator.partial(
        task_id="rerun_daily", trigger_dag_id="daily_soil_moisture", reset_dag_run=True,
        wait_for_completion=False,
    ).expand_kwargs(days_to_rerun(gaps, ingested))


reconcile_archive()
