"""Retrain the registry models: TC merging, the merging candidates (RF, LSTM, CNN, BMA), SM2RAIN, SMAP
reconstruction; independently, the two downscaling models (``downscaling_nn``, ``downscaling_lstm_kriging``).

The merging candidates are scored against the in-situ stations leave-one-station-out and on the
held-out period; ``soil_moisture_merging@champion`` goes to the winner if it passes its gate.
SM2RAIN is calibrated on the champion's merged soil moisture. ``smap_reconstruction`` (ANN
gap filling of SMAP, Wang & Xu 2021) is fitted on the training blocks of the whole period and
promoted when it beats ERA5-Land rescaled to SMAP on the withheld SMAP blocks; its heavy-rain
filter uses the gauges, else the SM2RAIN champion's rainfall.

Each task fits on the training period, evaluates on a period the fit did not see, logs to MLflow,
registers a new version and moves the ``champion`` alias only when the evaluation gate passes.
Periods come from the run's conf (defaults: train 2017, evaluate 2018).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="train_models",
    description="train, score and promote the registry models (TC merging, merging candidates, SM2RAIN) on a period; champions by their gates",
    schedule=None,
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={
        "train_start": Param("2017-01-01", type="string", format="date"),
        "train_end": Param("2017-12-31", type="string", format="date"),
        "evaluate_start": Param("2018-01-01", type="string", format="date"),
        "evaluate_end": Param("2018-12-31", type="string", format="date"),
        "sm2rain_swi_filter": Param("none", type="string", enum=["none", "exponential", "wetness"],
                                    description="SM2RAIN model: 3-parameter (none) or an SM2RAIN-ASCAT "
                                                "soil-water-index filter (exponential: T; wetness: T SWI^-Tpot)"),
        "merging_loso": Param(True, type="boolean",
                              description="also score the merging candidates leave-one-station-out"),
        "merging_epochs": Param(60, type="integer", minimum=1,
                                description="maximum epochs of the LSTM / CNN members (early stopping)"),
        "downscaling": Param(True, type="boolean",
                             description="also train the 1 km downscaling models (Ebro-Pyrenees CGLS 1 km)"),
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
    def train_merging_candidates(tc: dict, params: dict | None = None) -> dict:
        from smflow.operators.training import train

        if not tc["promoted"]:
            raise ValueError(f"tc_merging v{tc['version']} failed its gate ({tc['gate']}); the merging "
                             "candidates are compared with it, and it was not updated")
        epochs = int(params.get("merging_epochs", 60))
        return train("soil_moisture_merging", params["train_start"], params["train_end"],
                     params["evaluate_start"], params["evaluate_end"], loso=bool(params.get("merging_loso", True)),
                     hyper={"lstm": {"epochs": epochs}, "cnn": {"epochs": epochs}})

    @task
    def train_sm2rain(merging: dict, params: dict | None = None) -> dict:
        from smflow.operators.training import train

        return train("sm2rain", params["train_start"], params["train_end"],
                     params["evaluate_start"], params["evaluate_end"],
                     swi_filter=params.get("sm2rain_swi_filter", "none"))

    @task
    def train_smap_reconstruction(sm2rain: dict, params: dict | None = None) -> dict:
        from smflow.operators.training import train

        return train("smap_reconstruction", params["train_start"], params["train_end"],
                     params["evaluate_start"], params["evaluate_end"])

    train_smap_reconstruction(train_sm2rain(train_merging_candidates(train_tc_merging())))

    @task
    def train_downscaling(params: dict | None = None) -> dict:
        # Independent of the merging chain: fitted on the CGLS 1 km SSM (Ebro-Pyrenees), promoted
        # only if it beats bilinear interpolation (smflow.downscaling.registry).
        from smflow.operators.training import train_downscaling as run

        if not params.get("downscaling", True):
            return {"skipped": "run param downscaling = false"}
        return run()

    train_downscaling()


assign_queues(train_models())
