"""Evaluate a challenger: score a newly registered model version and the champion with the same code
on the same held-out data (``config/model_gates.json``), log the comparison (table + plot) to MLflow
and move ``champion`` only when the challenger wins by the model's gate; otherwise record why in the
alias history. Nothing is deleted.

Started by MLflow's ``model_version.created`` webhook through the receiver
(``smflow.operators.webhooks``), with the event in the run's conf; or by hand with the params.
Hourly, and whenever ``model`` is empty, it sweeps: every challenger without a decision is
evaluated (a webhook delivery lost while the receiver or Airflow was down is caught up here).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="evaluate_challenger",
    description="challenger vs champion on the same held-out data; promote only on a win by the model's gate",
    schedule="@hourly",  # the sweep of undecided challengers
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # 2 cores: one evaluation at a time; webhook runs queue up
    default_args=default_args(),
    tags=["smflow", "models", "mlflow"],
    doc_md=__doc__,
    params={
        "model": Param("", type="string",
                       description="registered model name (empty: every challenger without a decision)"),
        "version": Param("", type="string",
                         description="the challenger version (empty: the version holding the challenger alias)"),
    },
)
def evaluate_challenger():
    @task
    def evaluate(params: dict | None = None) -> dict:
        from smflow.ml.challenger import evaluate as run
        from smflow.ml.challenger import sweep

        if not params.get("model"):
            done = sweep()
            return {"swept": [e.to_dict() for e in done]}
        return run(params["model"], params.get("version") or None).to_dict()

    evaluate()


assign_queues(evaluate_challenger())
