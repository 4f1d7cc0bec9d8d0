"""Drift watch: score the products each champion published over the last days against the references
(in-situ stations where present, C3S otherwise; rain gauges for SM2RAIN) and compare with the
champion's own evaluation (``config/model_gates.json``, section ``drift``). When the skill fell by
more than the model's margin, tag the champion version ``retrain`` = ``requested`` (with
``retrain.reason`` and ``retrain.window``): MLflow's webhook then starts ``train_models`` through
the receiver, as for a scientist's request. Every check is an MLflow run of experiment
``drift_watch``; a pending request is never repeated (``smflow.ml.drift``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="drift_watch",
    description="published products vs references over a rolling window; request retraining of a champion that drifted",
    schedule="0 7 * * *",  # after the daily products of the night are published
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["smflow", "models", "mlflow", "monitoring"],
    doc_md=__doc__,
    params={
        "window_days": Param(30, type="integer", minimum=1, description="days of published products scored"),
        "end": Param("", type="string",
                     description="last day of the window, YYYY-MM-DD (empty: the run's logical date)"),
    },
)
def drift_watch():
    @task
    def watch(params: dict | None = None, logical_date=None) -> list[dict]:
        import datetime as dt

        from smflow.dates import as_date
        from smflow.ml.drift import check_all

        # a manual run of Airflow 3 may have no logical date: then today (UTC)
        end = (as_date(params["end"]) if params.get("end")
               else (logical_date or dt.datetime.now(dt.timezone.utc)).date())
        return [r.to_dict() for r in check_all(end, int(params["window_days"]))]

    watch()


assign_queues(drift_watch())
