"""Retrain the models of a domain pipeline with its own registry models (``models`` in
``config/daily_pipelines.json``: the global 0.25 deg pipeline's ``tc_merging_global_025`` and
``sm2rain_global_025``), on the domain's time-series store.

A DAG of its own, not a task of ``train_models``: the Big Island retraining (and the main command,
which waits for it) does not wait for, or load, a 250,000-cell domain. Run param ``pipeline``
(default ``global_025``); the period is ``train_start`` .. ``train_end`` (empty: the 180 days
before the run's logical date). When the store holds no day of the pipeline's parents in the
period, the task returns ``skipped`` with the reason (logged) and registers nothing. Promotion goes
through ``smflow.ml.gates.promote_after_training`` as for every model. A ``retrain = requested``
tag on one of these models (webhook receiver: conf ``pipeline``, ``requested_for``) starts this DAG,
and the run marks the request ``done`` when the training succeeded.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues

#: Default training window [days] when the run gives no period (the daily TC window).
DEFAULT_TRAIN_DAYS = 180


@dag(
    dag_id="train_domain_models",
    description="retrain and register a domain pipeline's own models (global 0.25 deg: TC merging, SM2RAIN) on its store; skips a domain without history",
    schedule=None,
    start_date=pendulum.datetime(2016, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={
        "pipeline": Param("global_025", type="string",
                          description="pipeline key or DAG id of config/daily_pipelines.json with its own 'models'"),
        "train_start": Param("", type="string", description="first training day, YYYY-MM-DD (empty: 180 days before train_end)"),
        "train_end": Param("", type="string",
                           description="last training day, YYYY-MM-DD (empty: the day before the run's logical date)"),
    },
    tags=["smflow", "mlflow", "training", "global_025"],
    doc_md=__doc__,
)
def train_domain_models():
    @task
    def train_domain_models_task(params: dict | None = None, logical_date=None, dag_run=None) -> dict:
        import datetime as dt

        from smflow.dates import as_date
        from smflow.operators.training import train_domain

        conf = (dag_run.conf if dag_run is not None else None) or {}
        name = str(conf.get("pipeline") or params["pipeline"])
        # a manual run of Airflow 3 may have no logical date: then today (UTC)
        end = (as_date(params["train_end"]) if params.get("train_end")
               else (logical_date or dt.datetime.now(dt.timezone.utc)).date() - dt.timedelta(days=1))
        start = (as_date(params["train_start"]) if params.get("train_start")
                 else end - dt.timedelta(days=DEFAULT_TRAIN_DAYS - 1))
        return train_domain(name, start.isoformat(), end.isoformat())

    @task
    def close_retrain_request(outcome: dict, dag_run=None, run_id=None) -> str:
        from smflow.ml.drift import close_retrain_request as close

        if "skipped" in outcome:
            return f"nothing trained ({outcome['skipped']}): a pending request stays pending"
        models = {r["model"]: r for r in outcome.get("models", [])}
        closed = close(((dag_run.conf if dag_run is not None else None) or {}).get("requested_for"),
                       run_id=run_id, outcome=models)
        return closed or "no pending retraining request for this run"

    close_retrain_request(train_domain_models_task.override(task_id="train_domain_models")())


assign_queues(train_domain_models())
