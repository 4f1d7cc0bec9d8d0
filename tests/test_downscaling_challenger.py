"""The downscaling challenger evaluator (:mod:`smflow.downscaling.challenger`) against the real MLflow
of the stack and the real CGLS 1 km files: versions fitted on 2017-06-01 are scored by
upscale-recover on 2017-06-03 (2017-06-02 has no Sentinel-1 overpass); a worse challenger is
refused, a better one promoted, and a version trained on every CGLS day leaves nothing to score."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from datetime import date
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TRAIN_DAY = date(2017, 6, 1)

needs_cgls = pytest.mark.skipif(not (SHARED / "cgls_1km").is_dir(),
                                reason=f"needs the real CGLS 1 km files ({SHARED / 'cgls_1km'})")


@pytest.fixture(scope="module")
def regressions():
    """Linear regressions of the coarse (0.1 deg) CGLS SSM of 2017-06-01 on the covariates, as
    :class:`FittedRegressor` (method ``nn``: applied pixel-wise at 0.01 deg), with their known
    upscale-recover ubRMSE on 2017-06-03 [percent]: all five covariates 27.1; the same with its
    slopes doubled (a degraded copy) > 28; ``swi_005`` alone 23.4. (Bilinear: 12.1; one training
    day is too few for any regression to beat it, which is not what is tested here.)"""
    from sklearn.linear_model import LinearRegression

    from smflow.downscaling.methods import FittedRegressor
    from smflow.downscaling.validate import coarse_samples, load_experiment

    exp = load_experiment(SHARED, days=(TRAIN_DAY,))
    X, y = coarse_samples(exp.days)
    full = LinearRegression().fit(X, y)
    steep = copy.deepcopy(full)
    steep.coef_ = 2.0 * full.coef_
    steep.intercept_ = full.intercept_ - full.coef_ @ X.mean(0)  # same mean prediction
    k = exp.names.index("swi_005")
    return {"all covariates": FittedRegressor("nn", full, list(exp.names)),
            "slopes doubled": FittedRegressor("nn", steep, list(exp.names)),
            "swi_005": FittedRegressor("nn", LinearRegression().fit(X[:, [k]], y), ["swi_005"])}


def _register(name: str, fitted, label: str, train_days: str):
    import mlflow

    from smflow.downscaling.registry import _log_version
    from smflow.ml.cards import ModelCard

    mlflow.set_experiment("challenger_probe")
    card = ModelCard(name, "nn", f"coarse CGLS SSM of {train_days}", "ebro_pyrenees", fitted.feature_names, "probe",
                     {}, f"probe: {label}")
    with mlflow.start_run(run_name=f"{name} {label}"):
        return _log_version(name, fitted, card, {"method": "nn", "domain": "ebro_pyrenees", "train_days": train_days,
                                                 "covariates": ",".join(fitted.feature_names)})


@needs_cgls
def test_downscaling_challengers_by_upscale_recover_on_held_out_days(stack, regressions):
    from smflow.ml.challenger import evaluate, load_gate
    from smflow.ml.lifecycle import history
    from smflow.ml.registry import champion_ref, configure, promote

    configure(stack)
    name = f"challenger_probe_{uuid.uuid4().hex[:8]}"
    gate = dataclasses.replace(load_gate("downscaling_nn"), model=name)  # the configured gate
    assert gate.metric == "ubrmse_upscale_recover" and gate.direction == "lower" and gate.evaluate is None
    v1 = _register(name, regressions["all covariates"], "all covariates", str(TRAIN_DAY))
    promote(v1, reason="first champion of the probe")

    v2 = _register(name, regressions["slopes doubled"], "slopes doubled", str(TRAIN_DAY))
    worse = evaluate(name, gate=gate)
    champion, challenger = (worse.metrics[r]["ubrmse_upscale_recover"] for r in ("champion", "challenger"))
    assert 26.0 < champion < 28.5 and challenger > champion + gate.margin, (champion, challenger)
    assert worse.metrics["champion"]["held_out_days"] == 1  # 2017-06-03 only
    assert 11.0 < worse.metrics["champion"]["bilinear_ubrmse"] < 13.0
    assert not worse.promoted and champion_ref(name).version == v1.version
    (refusal,) = [m for m in history(name) if m.evaluation_run == worse.evaluation_run and m.alias == "champion"]
    assert refusal.kind == "refused" and f"{challenger:.4f}" in refusal.reason and "not promoted" in refusal.reason
    assert "held-out CGLS 1 km days 2017-06-03" in refusal.reason

    v3 = _register(name, regressions["swi_005"], "swi_005 alone", str(TRAIN_DAY))
    better = evaluate(name, gate=gate)
    champion, challenger = (better.metrics[r]["ubrmse_upscale_recover"] for r in ("champion", "challenger"))
    assert challenger < champion - gate.margin and 22.0 < challenger < 25.0, (champion, challenger)
    assert better.promoted and champion_ref(name).version == v3.version

    # a version fitted on every CGLS day: no day is held out from both, refused with that reason
    v4 = _register(name, regressions["swi_005"], "all days", "2017-06-01,2017-06-02,2017-06-03")
    blind = evaluate(name, gate=gate)
    assert not blind.promoted and blind.challenger == v4.version and champion_ref(name).version == v3.version
    assert "no CGLS 1 km day is held out from both versions" in blind.reason and not blind.metrics


def test_refused_without_the_cgls_files(tmp_path, monkeypatch):
    from smflow.downscaling.challenger import score_upscale_recover
    from smflow.ml.challenger import EvaluationRefused
    from smflow.ml.registry import ModelRef

    monkeypatch.setenv("SMFLOW_SHARED_DATA", str(tmp_path))  # a shared folder without cgls_1km
    refs = {role: ModelRef("downscaling_nn", v, "run") for role, v in (("champion", "1"), ("challenger", "2"))}
    with pytest.raises(EvaluationRefused, match="no CGLS 1 km SSM on this machine"):
        score_upscale_recover(refs, None)
