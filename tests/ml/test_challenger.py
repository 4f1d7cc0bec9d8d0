"""Challenger flow against the real MLflow server (SQL backend) and S3 of the stack: every registered
version becomes ``challenger``; a worse challenger is refused with the reason in the history, a
better one is promoted; nothing is deleted; a model without an evaluator is never promoted. Scored
by the real TC-merging evaluator (C3S, 2018)."""

from __future__ import annotations

import uuid
import warnings
from datetime import date

import numpy as np
import pytest

EVALUATE = (date(2018, 1, 1), date(2018, 12, 31))


@pytest.fixture(scope="module")
def tc_versions():
    """Parameters of three TC-merging versions, with their known 2018 median R against C3S:
    GLDAS-dominant weights (0.523), SMAP-dominant (0.421), the least-squares fit of 2017 (0.585)."""
    from smflow.domain import load_domain
    from smflow.ml.train import _parents_series, fit_merging_parameters

    grid = load_domain("big_island")
    fit = fit_merging_parameters(_parents_series(date(2017, 1, 1), date(2017, 12, 31), grid), grid)
    return {"gldas": dominant_weights(fit, 2), "smap": dominant_weights(fit, 0), "fit": fit}


def dominant_weights(fit, k: int):
    """``fit`` with every cell's merging weight on parent ``k`` (0 SMAP, 1 ERA5-Land, 2 GLDAS)."""
    from smflow.ml.models import GridParameters

    arrays = {name: value.copy() for name, value in fit.arrays.items()}
    arrays["weights"] = np.full_like(arrays["weights"], 1e-6)
    arrays["weights"][k] = 1.0
    arrays["resolved"] = np.ones_like(arrays["resolved"], dtype=bool)
    return GridParameters(arrays, dict(fit.metadata))


def _register(name: str, params, label: str):
    import mlflow

    from smflow.ml.models import TCMergingModel
    from smflow.ml.registry import log_grid_model

    mlflow.set_experiment("challenger_probe")
    with mlflow.start_run(run_name=f"{name} {label}"):
        mlflow.log_params({"train_start": "2017-01-01", "train_end": "2017-12-31", "label": label})
        return log_grid_model(TCMergingModel(), params, registered_name=name)


def _record_of(name: str, evaluation_run: str):
    from smflow.ml.lifecycle import history

    (record,) = [m for m in history(name) if m.evaluation_run == evaluation_run and m.alias == "champion"]
    return record


def test_worse_challenger_is_refused_with_the_reason_and_a_better_one_is_promoted(stack, tc_versions):
    from mlflow import MlflowClient

    from smflow.ml.challenger import Gate, evaluate
    from smflow.ml.lifecycle import format_history, history
    from smflow.ml.registry import CHALLENGER, champion_ref, configure, promote

    configure(stack)
    client = MlflowClient()
    name = f"challenger_probe_{uuid.uuid4().hex[:8]}"
    gate = Gate(name, "tc_merging", "median_r_vs_c3s", "higher", 0.005, EVALUATE, "1")

    v1 = _register(name, tc_versions["gldas"], "gldas-dominant")
    assert champion_ref(name, CHALLENGER).version == v1.version  # every new version is the challenger
    promote(v1, reason="first champion of the probe")

    v2 = _register(name, tc_versions["smap"], "smap-dominant")
    assert champion_ref(name, CHALLENGER).version == v2.version
    worse = evaluate(name, gate=gate)
    assert not worse.promoted and worse.challenger == v2.version and worse.champion == v1.version
    assert champion_ref(name).version == v1.version
    c, p = worse.metrics["challenger"]["median_r_vs_c3s"], worse.metrics["champion"]["median_r_vs_c3s"]
    assert 0.38 < c < 0.46 and 0.49 < p < 0.56, (c, p)
    # by its evaluation run: the webhook (when the stack's receiver runs) evaluates these versions too
    last = _record_of(name, worse.evaluation_run)
    assert (last.kind, last.alias, last.from_version, last.to_version) == ("refused", "champion", v1.version, v2.version)
    assert "not promoted" in last.reason and f"{c:.4f}" in last.reason and last.evaluation_run == worse.evaluation_run
    assert "champion.refused" in client.get_model_version(name, v2.version).tags  # visible in the MLflow UI
    assert f"Challenger evaluation** (run {worse.evaluation_run}): refused" in client.get_model_version(name, v2.version).description
    artifacts = {a.path for a in client.list_artifacts(worse.evaluation_run)}
    assert {"comparison.csv", "comparison.md", "comparison.png"} <= artifacts
    run = client.get_run(worse.evaluation_run)
    assert run.data.tags["decision"] == "refused" and run.data.params["champion_version"] == v1.version

    v3 = _register(name, tc_versions["fit"], "least-squares fit 2017")
    better = evaluate(name, gate=gate)
    assert better.promoted and champion_ref(name).version == v3.version
    assert better.metrics["challenger"]["median_r_vs_c3s"] > p + 0.005
    moves = history(name)
    last = _record_of(name, better.evaluation_run)
    assert (last.kind, last.from_version, last.to_version) == ("promotion", v1.version, v3.version)
    assert "promoted" in last.reason and last.evaluation_run == better.evaluation_run
    # every registration moved the challenger alias, and is in the history too
    assert [m.to_version for m in moves if m.kind == "registration"] == [v1.version, v2.version, v3.version]
    # nothing deleted: the loser keeps its version and its evaluation
    assert client.get_model_version(name, v2.version).run_id == v2.run_id
    assert "refused" in format_history(moves)

    again = evaluate(name, v3.version, gate=gate)  # the champion itself: nothing to compare, nothing recorded
    assert not again.promoted and again.evaluation_run is None and "already is the champion" in again.reason

    # a model without an evaluator: whatever the challenger, refused with that reason
    v4 = _register(name, tc_versions["fit"], "same fit again")
    blind = evaluate(name, gate=Gate(name, None, "some_metric", "lower", 0.0, None))
    assert not blind.promoted and "no evaluator" in blind.reason and champion_ref(name).version == v3.version
    record = _record_of(name, blind.evaluation_run)
    assert (record.kind, record.to_version) == ("refused", v4.version) and "no evaluator" in record.reason


def test_sm2rain_and_merging_challengers_are_scored_against_the_gauges_and_stations(stack, tc_versions):
    """The evaluators that need ``../shared``, on the real 2018 data. SM2RAIN against the gauges: the
    project's shipped parameter set (the README's median R 0.354 on the 2017 TC merge) against the
    same set with Z x 4 (0.416: promoted). Merging against the 8 ISMN stations: the 2017 TC fit (the
    README's held-out ubRMSE 0.046) against a SMAP-dominant version (0.093: refused)."""
    import mlflow

    from smflow.ml.challenger import Gate, evaluate
    from smflow.ml.models import GridParameters, SM2RAINModel
    from smflow.ml.registry import champion_ref, configure, log_grid_model, promote
    from smflow.ml.train import load_shipped_sm2rain

    settings = configure(stack)
    if settings.shared_data_dir is None or not (settings.shared_data_dir / "ismn_hawaii").is_dir():
        pytest.skip("needs the rain gauges of ../shared/data/real/ismn_hawaii")
    merging = f"merging_probe_{uuid.uuid4().hex[:8]}"
    promote(_register(merging, tc_versions["fit"], "least-squares fit 2017"))
    name = f"sm2rain_probe_{uuid.uuid4().hex[:8]}"
    shipped, _ = load_shipped_sm2rain()
    steeper = GridParameters({**shipped.arrays, "Z": shipped.arrays["Z"] * 4.0}, {})
    mlflow.set_experiment("challenger_probe")
    refs = []
    for params in (shipped, steeper):
        with mlflow.start_run():
            refs.append(log_grid_model(SM2RAINModel(), params, registered_name=name))
    promote(refs[0], reason="shipped set")
    gate = Gate(name, "sm2rain", "median_r_vs_gauges", "higher", 0.01, EVALUATE, "1",
                {"soil_moisture_from": merging})
    result = evaluate(name, gate=gate)
    champion, challenger = (result.metrics[role]["median_r_vs_gauges"] for role in ("champion", "challenger"))
    assert 0.33 < champion < 0.38 and challenger > champion + 0.01, (champion, challenger)
    assert result.metrics["champion"]["gauges_scored"] == 5
    assert result.promoted and champion_ref(name).version == refs[1].version
    assert f"{champion:.4f}" in _record_of(name, result.evaluation_run).reason

    weak = _register(merging, tc_versions["smap"], "smap-dominant")
    result = evaluate(merging, gate=Gate(merging, "soil_moisture_merging", "median_ubrmse_vs_insitu", "lower", 0.001,
                                         EVALUATE, "m3 m-3"))
    champion, challenger = (result.metrics[role]["median_ubrmse_vs_insitu"] for role in ("champion", "challenger"))
    assert 0.040 < champion < 0.052 and challenger > champion, (champion, challenger)
    assert result.metrics["champion"]["stations_scored"] == 8
    assert not result.promoted and champion_ref(merging).version != weak.version


def test_gates_config_names_every_registry_model():
    from smflow.ml.challenger import load_gate, resolve_evaluator
    from smflow.ml.gates import has_challenger_evaluator

    for model in ("tc_merging", "soil_moisture_merging", "sm2rain", "smap_reconstruction", "downscaling_nn",
                  "downscaling_lstm_kriging"):
        gate = load_gate(model)
        # every registry model has an evaluator now, so promote_after_training promotes only a first
        # champion of each and leaves every later promotion to evaluate_challenger
        assert gate.evaluator is not None and callable(resolve_evaluator(gate.evaluator)), model
        assert has_challenger_evaluator(model), model
    assert resolve_evaluator(load_gate("downscaling_nn").evaluator).__module__ == "smflow.downscaling.challenger"
    with pytest.raises(KeyError, match="cannot be imported"):
        resolve_evaluator("smflow.no_such_module:score")
    with pytest.raises(KeyError, match="unknown evaluator"):
        resolve_evaluator("os:system")  # only smflow modules may be named
    assert load_gate("sm2rain").direction == "higher" and load_gate("soil_moisture_merging").direction == "lower"
    with pytest.raises(KeyError, match="add an entry"):
        load_gate("no_such_model")


@pytest.mark.e2e
def test_evaluate_challenger_dag_records_its_decision(stack, airflow_env, tc_versions):
    """``airflow dags test evaluate_challenger`` (what the webhook starts): a model with no gate in
    config/model_gates.json is refused with that reason, recorded by the DAG's task."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from smflow.ml.lifecycle import history
    from smflow.ml.registry import champion_ref, configure, promote

    configure(stack)
    name = f"challenger_probe_{uuid.uuid4().hex[:8]}"
    promote(_register(name, tc_versions["gldas"], "first"))
    v2 = _register(name, tc_versions["fit"], "second")
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", "evaluate_challenger", "-c",
                          json.dumps({"model": name, "version": v2.version})],
                         env=airflow_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # the record of this `dags test` run (a webhook-started run, if the receiver runs, has its own)
    (last,) = [m for m in history(name) if "evaluate_challenger" in m.actor and "mlflow_webhook__" not in m.actor]
    assert (last.kind, last.to_version) == ("refused", v2.version) and "has no gate" in last.reason
    assert champion_ref(name).version != v2.version


def test_training_promotes_only_a_first_champion_then_leaves_it_to_evaluate_challenger(stack, tc_versions, tmp_path):
    """One promotion path (issue 14): the training gate makes the first champion; once there is one,
    a version that passed its gate stays ``challenger`` until evaluate_challenger decides; a lost
    webhook delivery is caught up by the sweep of undecided challengers."""
    import json

    from mlflow import MlflowClient

    from smflow.ml.challenger import sweep, undecided_challengers
    from smflow.ml.gates import has_challenger_evaluator, promote_after_training
    from smflow.ml.lifecycle import history
    from smflow.ml.registry import CHALLENGER, champion_ref, configure

    configure(stack)
    name = f"challenger_probe_{uuid.uuid4().hex[:8]}"
    gates = tmp_path / "model_gates.json"
    gates.write_text(json.dumps({"models": {name: {
        "evaluator": "tc_merging", "metric": "median_r_vs_c3s", "direction": "higher", "margin": 0.005,
        "evaluate": ["2018-01-01", "2018-12-31"]}}}))
    assert has_challenger_evaluator(name, gates) and not has_challenger_evaluator(name)

    v1 = _register(name, tc_versions["gldas"], "first")
    ref, promoted, words = promote_after_training(v1, True, "gate: passed", gates=gates)
    assert promoted and champion_ref(name).version == v1.version and "first champion" in words
    (first,) = [m for m in history(name) if m.kind == "promotion"]
    assert first.to_version == v1.version and "bootstrap" in first.reason

    v2 = _register(name, tc_versions["fit"], "second")
    ref, promoted, words = promote_after_training(v2, True, "gate: passed", gates=gates)
    assert not promoted and champion_ref(name).version == v1.version
    assert champion_ref(name, CHALLENGER).version == v2.version and "evaluate_challenger decides" in words
    assert "evaluate_challenger decides" in MlflowClient().get_model_version(name, v2.version).tags["training_gate"]

    v3 = _register(name, tc_versions["smap"], "third, failed its gate")
    ref, promoted, _ = promote_after_training(v3, False, "gate: FAILED", gates=gates)
    assert not promoted and champion_ref(name).version == v1.version

    # no webhook delivery reached an evaluation (none is configured for this probe's gates file):
    # the sweep finds the challenger without a decision and evaluates it, once
    assert undecided_challengers([name], path=gates) == [(name, v3.version)]
    (done,) = sweep([name], path=gates)
    assert done.challenger == v3.version and not done.promoted and "no gate" in done.reason
    assert undecided_challengers([name], path=gates) == [] and sweep([name], path=gates) == []
    # without a model list, the sweep looks only at the models of the gates file that have an evaluator
    assert undecided_challengers(path=gates) == []


RECONSTRUCTION_PERIOD = (date(2017, 1, 1), date(2018, 12, 31))


def mapped_reconstruction(weights: dict[str, float], grid, period=RECONSTRUCTION_PERIOD):
    """A :class:`smflow.ml.reconstruction.Reconstruction` whose networks map predictors linearly onto
    each cell's SMAP range (tanh in its linear regime: hidden unit j = ``eps * z_j``, output weight
    ``w_j / eps``), i.e. ``smap = y_min + sum_j w_j z_j (y_max - y_min)`` with ``z_j`` the predictor
    min-max scaled over ``period``; a negative total weight flips the map (1 - z). Built without a
    fit, so the evaluator's scores are known: on the stations in 2017-2018, ERA5-Land 0.0827 m3 m-3,
    ERA5-Land inverted 0.1042, the mean of ERA5-Land and GLDAS 0.0733 (median ubRMSE)."""
    from smflow.ingest import gridded_series
    from smflow.ml.reconstruction import Reconstruction, gridded_predictors, predictor_names

    x, _ = gridded_predictors(*period, grid)
    smap = gridded_series("smap", *period, grid).values.reshape(x.shape[1], -1).T
    names, eps = predictor_names(), 1e-3
    n, h = x.shape[0], len(weights)
    w1, w2 = np.zeros((n, len(names), h)), np.zeros((n, h))
    for j, (p, w) in enumerate(weights.items()):
        w1[:, names.index(p), j], w2[:, j] = eps, w / eps
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x_min, x_max = np.nanmin(x, 1), np.nanmax(x, 1)
        y_min, y_max = np.nanmin(smap, 1), np.nanmax(smap, 1)
    trained = np.isfinite(x_min).all(1) & np.isfinite(y_min) & (y_max > y_min)
    b2 = np.full(n, 1.0 if sum(weights.values()) < 0 else 0.0)
    rec = Reconstruction(names, h, 0, w1, np.zeros((n, h)), w2, b2, np.nan_to_num(x_min), np.nan_to_num(x_max, nan=1.0),
                         np.nan_to_num(y_min), np.nan_to_num(y_max, nan=1.0), np.full(n, 0.05),
                         np.where(trained, 0, 1).astype(np.int8), *(np.zeros(n, int) for _ in range(5)),
                         {"domain": "big_island"})
    return rec.to_grid(grid.shape)


def test_reconstruction_challengers_are_scored_against_the_stations(stack):
    """``smap_reconstruction`` by its configured gate (the stations' median ubRMSE of the seamless
    SMAP, 2017-2018): a degraded copy of the champion (its ERA5-Land map inverted) is refused with
    the numbers in the reason, a better version (ERA5-Land and GLDAS averaged) is promoted. The
    versions' runs say they were trained on 2017, inside the scored period: the stations are held
    out from every version, so that does not make them "not comparable"."""
    import dataclasses

    import mlflow

    from smflow.domain import load_domain
    from smflow.ml.challenger import evaluate, load_gate
    from smflow.ml.reconstruction import ReconstructionModel
    from smflow.ml.registry import champion_ref, configure, log_grid_model, promote

    settings = configure(stack)
    if settings.shared_data_dir is None or not (settings.shared_data_dir / "ismn_hawaii").is_dir():
        pytest.skip("needs the in-situ stations of ../shared/data/real/ismn_hawaii")
    grid = load_domain("big_island")
    name = f"challenger_probe_{uuid.uuid4().hex[:8]}"
    gate = dataclasses.replace(load_gate("smap_reconstruction"), model=name)
    assert gate.evaluate == RECONSTRUCTION_PERIOD and gate.direction == "lower"
    mlflow.set_experiment("challenger_probe")
    refs = []
    for label, weights in (("era5_land", {"era5_land": 1.0}), ("era5_land inverted", {"era5_land": -1.0}),
                           ("era5_land + gldas", {"era5_land": 0.5, "gldas": 0.5})):
        with mlflow.start_run(run_name=f"{name} {label}"):
            mlflow.log_params({"train_start": "2017-01-01", "train_end": "2017-12-31", "label": label})
            refs.append(log_grid_model(ReconstructionModel(), mapped_reconstruction(weights, grid), registered_name=name))
        if len(refs) == 1:
            promote(refs[0], reason="first champion of the probe")
        else:
            result = evaluate(name, gate=gate)
            champion, challenger = (result.metrics[r]["median_ubrmse_vs_insitu"] for r in ("champion", "challenger"))
            assert result.metrics["challenger"]["stations_scored"] == 8, result.metrics
            assert result.metrics["champion"]["station_days"] == result.metrics["challenger"]["station_days"] > 1000
            assert 0.078 < champion < 0.087, champion
            if len(refs) == 2:
                assert 0.095 < challenger and not result.promoted, (champion, challenger)
                assert champion_ref(name).version == refs[0].version
                record = _record_of(name, result.evaluation_run)
                assert record.kind == "refused" and f"{challenger:.4f}" in record.reason
                assert "not promoted" in record.reason and "not comparable" not in record.reason
                assert "the 8 ISMN stations, 2017-01-01..2018-12-31" in record.reason
            else:
                assert challenger < champion - gate.margin and result.promoted, (champion, challenger)
                assert champion_ref(name).version == refs[2].version
