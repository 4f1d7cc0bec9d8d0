"""A DAG whose only task fails: the alert path of every smflow DAG (tests/dags/test_alerts.py)."""

import pendulum
from airflow.sdk import dag, task

from smflow.operators.callbacks import default_args


@dag(dag_id="alert_probe", schedule=None, start_date=pendulum.datetime(2018, 6, 1, tz="UTC"), catchup=False,
     default_args={**default_args(retries=0, retry_delay_seconds=1)}, description="fails on purpose")
def alert_probe():
    @task
    def fail_on_purpose():
        raise RuntimeError("granule store unreachable (alert probe)")

    fail_on_purpose()


alert_probe()
