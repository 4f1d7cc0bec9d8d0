"""Daily soil-moisture products: wait for the day's granules, QC, merge, SM2RAIN, TC diagnostics, publish.

Thin DAGs: what runs when. One DAG per pipeline of ``config/daily_pipelines.json`` (the main one,
``daily_soil_moisture``, on the Big Island; others on their configured domains). Per input, a
deferrable ``GranuleSensor`` waits for the day's granule in the landing zone (a late granule
times out into a "missing" record: the day is made without it and says so); ingest is mapped
over the sensors' granule references. The work is in ``smflow.operators.daily`` (merged products) and
``smflow.operators.native`` (regridded, QC'd native inputs), imported inside the tasks so that parsing
imports nothing heavy. XCom carries S3 keys and small dicts only.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.sensors import GranuleSensor

PIPELINES = Path(__file__).resolve().parents[1] / "config" / "daily_pipelines.json"

MERGED_SM = Asset(name="smflow_merged_soil_moisture", uri="s3://sm-products/daily/merged-sm")
SM2RAIN_PRECIP = Asset(name="smflow_sm2rain_precipitation", uri="s3://sm-products/daily/sm2rain-precip")
TC_DIAGNOSTICS = Asset(name="smflow_tc_diagnostics", uri="s3://sm-products/daily/tc-diagnostics")


def _product_day(context) -> str:
    # A scheduled/backfilled run has logical date D = start of its interval [D, D+1) and starts once
    # the day is complete; a manual ``airflow dags test ... D`` also means day D.
    return context["logical_date"].date().isoformat()


def _wait_for_granules(inputs: list[str], wait_hours: float):
    """One deferrable sensor per input (mapped), each returning the granule reference or "missing"."""
    return GranuleSensor.partial(
        task_id="wait_for_granule",
        day="{{ logical_date.strftime('%Y-%m-%d') }}",
        wait_timeout=timedelta(hours=wait_hours),
        poke_interval=300,
        max_active_tis_per_dagrun=4,
    ).expand(product=inputs)


def build_daily_dag(name: str, spec: dict):
    domain = spec["domain"]
    products = spec["products"]

    @dag(
        dag_id=spec["dag_id"],
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=pendulum.parse(spec["start_date"], tz="UTC"),
        catchup=False,
        max_active_runs=3,
        default_args=default_args(retries=2, retry_delay_seconds=30),
        tags=["smflow", "daily", "products", domain],
        doc_md=__doc__,
    )
    def daily():
        granules = _wait_for_granules(spec["inputs"], spec.get("granule_wait_hours", 6))

        if "merged" in products:
            @task(max_active_tis_per_dagrun=2)
            def ingest_granule(ref: dict) -> dict:
                from smflow.operators.daily import ingest_granule as run

                return run(ref)

            # SM2RAIN for day D needs the merged soil moisture of D-1, i.e. D-1's granules in the
            # store: runs may overlap (backfill), but each day's products wait for the previous day's.
            @task(depends_on_past=True)
            def compute_products(ingested: list[dict], **context) -> dict:
                from smflow.operators.daily import compute_products as run

                return run(_product_day(context), list(ingested))

            @task
            def validate_products(staged: dict) -> dict:
                from smflow.operators.daily import validate_products as run

                return run(staged)

            @task(outlets=[MERGED_SM, SM2RAIN_PRECIP, TC_DIAGNOSTICS])
            def publish_products(staged: dict) -> dict:
                from smflow.operators.daily import publish_products as run

                return run(staged)

            publish_products(validate_products(compute_products(ingest_granule.expand(ref=granules.output))))

        if "inputs" in products:
            @task(max_active_tis_per_dagrun=2)
            def ingest_native_granule(ref: dict) -> dict:
                from smflow.operators.native import ingest_native_granule as run

                return run(ref, domain)

            @task(outlets=[Asset(name=f"smflow_inputs_{domain}", uri=f"s3://sm-products/inputs/{domain}")])
            def publish_inputs(ingested: list[dict], **context) -> dict:
                from smflow.operators.native import publish_inputs as run

                return run(list(ingested), _product_day(context), domain)

            publish_inputs(ingest_native_granule.expand(ref=granules.output))

    return daily()


for _name, _spec in json.loads(PIPELINES.read_text())["pipelines"].items():
    globals()[_spec["dag_id"]] = build_daily_dag(_name, _spec)
