"""Test DAG (not deployed): a deferrable GranuleSensor per product, and a task that records what
it returned, so ``airflow dags test`` exercises defer → trigger → execute_complete for real."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.sensors import GranuleSensor


@dag(
    dag_id="granule_sensor_probe",
    schedule=None,
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(retries=1, retry_delay_seconds=1),
    params={"landing_bucket": Param("sm-landing", type="string"), "out_key": Param("probe.json", type="string")},
    tags=["smflow", "test"],
)
def granule_sensor_probe():
    waits = [
        GranuleSensor(task_id=f"wait_{product}", product=product, day="{{ ds }}",
                      wait_timeout=3, poke_interval=0.5,
                      landing_bucket="{{ params.landing_bucket }}")
        for product in ("smap", "gldas")
    ]

    @task
    def record(refs: list, params: dict | None = None) -> None:
        import json

        from smflow import s3 as s3mod
        from smflow.config import Settings

        s3mod.client(Settings.load()).put_object(
            Bucket=params["landing_bucket"], Key=params["out_key"], Body=json.dumps(refs).encode())

    record([w.output for w in waits])


granule_sensor_probe()
