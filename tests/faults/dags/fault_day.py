"""A day through the daily DAG's last steps, for the S3-outage fault tests.

``compute`` stands in for ``compute_products`` without the registry's models: it works for
``params.hold_seconds`` (the test stops S3 meanwhile), then stages a synthetic daily product
(``tests/publish/synthetic.py``; ``params.wetter`` changes its values) where
``compute_products`` stages it; ``validate`` and ``publish`` are the daily DAG's own
``smflow.operators.daily.validate_products`` / ``publish_products``. Each task appends
``<task> <try_number>`` to ``params.marker`` when it starts. The smflow retry policy applies.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args


def _mark(context, name: str) -> None:
    from pathlib import Path

    marker = context["params"]["marker"]
    if marker:
        with Path(marker).open("a") as handle:
            handle.write(f"{name} {context['ti'].try_number}\n")


@dag(
    dag_id="fault_day",
    schedule=None,
    start_date=pendulum.datetime(2018, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["smflow", "faults"],
    params={"day": Param("2019-01-05", type="string"), "hold_seconds": Param(0, type="number"),
            "wetter": Param(0.0, type="number"), "marker": Param("", type="string")},
)
def fault_day():
    @task
    def compute(**context) -> dict:
        import datetime as dt
        import time

        from smflow import s3 as s3mod
        from smflow.config import Settings
        from smflow.operators.daily import _staging_key, sweep_stale_staging
        from tests.publish.synthetic import daily_product, provenance

        _mark(context, "compute")
        params = context["params"]
        day = dt.date.fromisoformat(params["day"])
        settings = Settings.load()
        client = s3mod.client(settings)
        sweep_stale_staging(client, settings)  # compute_products' first S3 call
        time.sleep(float(params["hold_seconds"]))
        ds = daily_product(day, wetter=float(params["wetter"]))
        key = _staging_key(day)
        client.put_object(Bucket=settings.store_bucket, Key=key, Body=bytes(ds.to_netcdf(engine="h5netcdf")))
        return {"day": day.isoformat(), "bucket": settings.store_bucket, "key": key, "provenance": provenance(day)}

    @task
    def validate(staged: dict, **context) -> dict:
        from smflow.operators.daily import validate_products

        _mark(context, "validate")
        return validate_products(staged)

    @task
    def publish(staged: dict, **context) -> dict:
        from smflow.operators.daily import publish_products

        _mark(context, "publish")
        return publish_products(staged)

    publish(validate(compute()))


fault_day()
