"""Seed the time-series store with a historical period (bulk path of the same ingest functions).

Run once when a domain is onboarded, so the rolling triple-collocation window of the daily DAG has
its history. Period from the run's conf.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="seed_timeseries_store",
    description="bulk-load the time-series store with the history the rolling TC window and the ML windows need",
    schedule=None,
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={
        "start": Param("2017-12-01", type="string", format="date"),
        "end": Param("2018-05-31", type="string", format="date"),
    },
    tags=["smflow", "store", "backfill"],
    doc_md=__doc__,
)
def seed_timeseries_store():
    @task
    def seed(params: dict | None = None) -> dict:
        from smflow.operators.training import seed_store

        return seed_store(params["start"], params["end"])

    seed()


assign_queues(seed_timeseries_store())
