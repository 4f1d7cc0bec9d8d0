"""Retrain the registry models: TC merging weights, then SM2RAIN parameters on the merged product.

Each task fits on the training period, evaluates on a period the fit did not see, logs to MLflow,
registers a new version and moves the ``champion`` alias only when the evaluation gate passes.
Periods come from the run's conf (defaults: train 2017, evaluate 2018).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args


@dag(
    dag_id="train_models",
    schedule=None,
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, retry_delay_seconds=30),
    params={
        "train_start": Param("2017-01-01", type="string", format="date"),
        "train_end": Param("2017-12-31", type="string", format="date"),
        "evaluate_start": Param("2018-01-01", type="string", format="date"),
        "evaluate_end": Param("2018-12-31", type="string", format="date"),
        "sm2rain_swi_filter": Param("none", type="string", enum=["none", "exponential", "wetness"],
                                    description="SM2RAIN model: 3-parameter (none) or an SM2RAIN-ASCAT "
                                                "soil-water-index filter (exponential: T; wetness: T SWI^-Tpot)"),
    },
    tags=["smflow", "mlflow", "training"],
    doc_md=__doc__,
)
def train_models():
    @task
    def train_tc_merging(params: dict | None = None) -> dict:
        from smflow.operators.training import train

        return train("tc_merging", params["train_start"], params["train_end"],
                     params["evaluate_start"], params["evaluate_end"])

    @task
    def train_sm2rain(tc: dict, params: dict | None = None) -> dict:
        from smflow.operators.training import train

        if not tc["promoted"]:
            raise ValueError(f"tc_merging v{tc['version']} failed its gate ({tc['gate']}); SM2RAIN is "
                             "calibrated on the champion merged product, which was not updated")
        return train("sm2rain", params["train_start"], params["train_end"],
                     params["evaluate_start"], params["evaluate_end"],
                     swi_filter=params.get("sm2rain_swi_filter", "none"))

    train_sm2rain(train_tc_merging())


train_models()
