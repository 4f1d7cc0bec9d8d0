"""Evaluate a challenger: score a newly registered model version and the champion with the same code
on the same held-out data (``config/model_gates.json``), log the comparison (table + plot) to MLflow
and move ``champion`` only when the challenger wins by the model's gate; otherwise record why in the
alias history. Nothing is deleted.

Started by MLflow's ``model_version.created`` webhook through the receiver
(``smflow.operators.webhooks``), with the event in the run's conf; or by hand with the params.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="evaluate_challenger",
    description="challenger vs champion on the same held-out data; promote only on a win by the model's gate",
    schedule=None,
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # 2 cores: one evaluation at a time; webhook runs queue up
    default_args=default_args(),
    tags=["smflow", "models", "mlflow"],
    doc_md=__doc__,
    params={
        "model": Param("soil_moisture_merging", type="string", description="registered model name"),
        "version": Param("", type="string",
                         description="the challenger version (empty: the version holding the challenger alias)"),
    },
)
def evaluate_challenger():
    @task
    def evaluate(params: dict | None = None) -> dict:
        from smflow.ml.challenger import evaluate as run

        return run(params["model"], params.get("version") or None).to_dict()

    evaluate()


assign_queues(evaluate_challenger())
