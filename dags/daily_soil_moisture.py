"""Daily soil-moisture products: fetch the day's granules, QC, merge, SM2RAIN, TC diagnostics, publish.

Thin DAG: what runs when. The work is in ``operators.daily`` (imported inside the tasks so that
parsing this file imports nothing heavy). XCom carries S3 keys and small dicts only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from operators.callbacks import default_args

MERGED_SM = Asset(name="smflow_merged_soil_moisture", uri="s3://sm-products/daily/merged-sm")
SM2RAIN_PRECIP = Asset(name="smflow_sm2rain_precipitation", uri="s3://sm-products/daily/sm2rain-precip")
TC_DIAGNOSTICS = Asset(name="smflow_tc_diagnostics", uri="s3://sm-products/daily/tc-diagnostics")


def _product_day(context) -> str:
    # A scheduled/backfilled run has logical date D = start of its interval [D, D+1) and starts once
    # the day is complete; a manual ``airflow dags test ... D`` also means day D.
    return context["logical_date"].date().isoformat()


@dag(
    dag_id="daily_soil_moisture",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    default_args=default_args(retries=2, retry_delay_seconds=30),
    tags=["smflow", "daily", "products"],
    doc_md=__doc__,
)
def daily_soil_moisture():
    @task
    def discover_granules(**context) -> list[dict]:
        from operators.daily import discover_granules as run

        return run(_product_day(context))

    @task(max_active_tis_per_dagrun=2)
    def ingest_granule(ref: dict) -> dict:
        from operators.daily import ingest_granule as run

        return run(ref)

    # SM2RAIN for day D needs the merged soil moisture of D-1, i.e. D-1's granules in the store:
    # runs may overlap (backfill), but each day's products wait for the previous day's.
    @task(depends_on_past=True)
    def compute_products(ingested: list[dict], **context) -> dict:
        from operators.daily import compute_products as run

        return run(_product_day(context), list(ingested))

    @task
    def validate_products(staged: dict) -> dict:
        from operators.daily import validate_products as run

        return run(staged)

    @task(outlets=[MERGED_SM, SM2RAIN_PRECIP, TC_DIAGNOSTICS])
    def publish_products(staged: dict) -> dict:
        from operators.daily import publish_products as run

        return run(staged)

    ingested = ingest_granule.expand(ref=discover_granules())
    publish_products(validate_products(compute_products(ingested)))


daily_soil_moisture()
