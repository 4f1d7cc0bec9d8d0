"""A small DAG for the fault tests: one step that works for ``seconds`` and records each execution.

``slow_step`` appends one line per execution (``try_number pid``) to ``params.marker`` and
sleeps ``params.seconds`` (its supervisor heartbeats through the api-server to the metadata DB
meanwhile); ``after`` returns its try number. Uses the smflow retry policy.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args


@dag(
    dag_id="fault_probe",
    schedule=None,
    start_date=pendulum.datetime(2018, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["smflow", "faults"],
    params={"seconds": Param(10, type="number"), "marker": Param("", type="string")},
)
def fault_probe():
    @task
    def slow_step(**context) -> int:
        import os
        import time
        from pathlib import Path

        params, ti = context["params"], context["ti"]
        with Path(params["marker"]).open("a") as handle:
            handle.write(f"{ti.try_number} {os.getpid()}\n")
        deadline = time.monotonic() + float(params["seconds"])
        while time.monotonic() < deadline:
            time.sleep(1)
        return ti.try_number

    @task
    def after(try_number: int) -> int:
        return try_number

    after(slow_step())


fault_probe()
