"""Roll a registry alias back: point ``models:/<model>@<alias>`` at the version it held before the
promotion of its current version, and record the move (smflow.ml.lifecycle). The daily DAGs resolve
the alias at every run, so the next day's run uses the restored version (no restart)."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="rollback_model",
    description="point a model's champion alias back at its previous version, with the reason recorded",
    schedule=None,
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["smflow", "models", "mlflow"],
    doc_md=__doc__,
    params={
        "model": Param("soil_moisture_merging", type="string", description="registered model name"),
        "alias": Param("champion", type="string", description="alias to roll back"),
        "reason": Param("rollback requested from the Airflow UI", type="string", description="why (recorded)"),
    },
)
def rollback_model():
    @task
    def roll_back(params: dict | None = None) -> dict:
        from smflow.ml.lifecycle import rollback
        from smflow.ml.registry import configure

        configure()
        ref = rollback(params["model"], params["alias"], reason=params["reason"])
        return {"model": ref.name, "alias": params["alias"], "version": ref.version, "run_id": ref.run_id}

    roll_back()


assign_queues(rollback_model())
