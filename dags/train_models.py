"""Retrain the registry models: TC merging, the merging candidates (RF, LSTM, CNN, BMA), SM2RAIN, SMAP
reconstruction; independently, the two downscaling models (``downscaling_nn``, ``downscaling_lstm_kriging``).

The merging candidates are scored against the in-situ stations leave-one-station-out and on the
held-out period; ``soil_moisture_merging@champion`` goes to the winner if it passes its gate.
SM2RAIN is calibrated on the champion's merged soil moisture. ``smap_reconstruction`` (ANN
gap filling of SMAP, Wang & Xu 2021) is fitted on the training blocks of the whole period and
passes its gate when it beats ERA5-Land rescaled to SMAP on the withheld SMAP blocks; its heavy-rain
filter uses the gauges, else the SM2RAIN champion's rainfall.

Each task fits on the training period, evaluates on a period the fit did not see, logs to MLflow
and registers a new version (alias ``challenger``). Who moves ``champion`` (issue 14,
``smflow.ml.gates.promote_after_training``): the training gate for a model without a champion
yet (bootstrap) or without a challenger evaluator (none today); otherwise
``evaluate_challenger``, started by MLflow's ``model_version.created`` webhook, which scores the
new version and the champion with the same code on the same held-out data. A run started by a
``retrain = requested`` tag (conf ``requested_for``) marks that request ``done`` at the end.
Periods come from the run's conf (defaults: train 2017, evaluate 2018).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from smflow.operators.callbacks import default_args
from smflow.operators.queues import assign_queues


@dag(
    dag_id="train_models",
    description="train, score and register the registry models on a period; first champions by their gates, later ones by evaluate_challenger",
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

        if not tc.get("passed", tc["promoted"]):
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

    tc = train_tc_merging()
    merging = train_merging_candidates(tc)
    sm2rain = train_sm2rain(merging)
    reconstruction = train_smap_reconstruction(sm2rain)

    @task
    def train_downscaling(params: dict | None = None) -> dict:
        # Independent of the merging chain: fitted on the CGLS 1 km SSM (Ebro-Pyrenees), promoted
        # only if it beats bilinear interpolation (smflow.downscaling.registry).
        from smflow.operators.training import train_downscaling as run

        if not params.get("downscaling", True):
            return {"skipped": "run param downscaling = false"}
        return run()

    @task
    def close_retrain_request(tc: dict, merging: dict, sm2rain: dict, reconstruction: dict, downscaling: dict) -> str:
        # A run started by a `retrain = requested` tag (webhook receiver: conf `requested_for`)
        # marks that request done once every training task succeeded (a failed run leaves it pending).
        from airflow.sdk import get_current_context

        from smflow.ml.drift import close_retrain_request as close

        context = get_current_context()
        outcome = {r["model"]: r for r in (tc, merging, sm2rain, reconstruction) if isinstance(r, dict) and "model" in r}
        closed = close((context["dag_run"].conf or {}).get("requested_for"), run_id=context["run_id"], outcome=outcome)
        return closed or "no pending retraining request for this run"

    close_retrain_request(tc, merging, sm2rain, reconstruction, train_downscaling())


assign_queues(train_models())
