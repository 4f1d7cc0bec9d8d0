"""Known-answer tests of the merging model zoo (RF, LSTM, CNN, BMA) on synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from smflow.ml.modelzoo import (BMAParameters, fit_bma, fit_member, keras_feature_names, load_keras, predict_bma,
                                predict_member, predict_rf, rf_tree_variance, save_keras)


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


# ----------------------------------------------------------------------------------------------- RF

NOISE_SD = 0.005


def _rf_case(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"x1": rng.uniform(-1, 1, n), "x2": rng.uniform(-1, 1, n), "noise": rng.uniform(-1, 1, n)})
    truth = 0.3 + 0.1 * np.sin(3 * x["x1"].to_numpy()) + 0.05 * x["x2"].to_numpy() ** 2
    return x, truth + NOISE_SD * rng.standard_normal(n), truth


def test_rf_recovers_known_nonlinear_function():
    X, y, _ = _rf_case(3000, seed=0)
    X_test, y_test, truth_test = _rf_case(1000, seed=1)
    model = fit_member("rf", X, y, feature_names=["x1", "x2", "noise"], seed=3,
                       hyper={"n_estimators": 100, "min_samples_leaf": 3})
    pred = predict_member("rf", model, X_test)
    assert pred.shape == (1000,) and pred.dtype == np.float64
    assert _r(pred, y_test) > 0.97
    # Out of sample the forest is within a few noise levels of the truth (its error is mostly the
    # step approximation of the smooth function, here about one noise sd).
    assert _rmse(pred, y_test) < 2.5 * NOISE_SD
    assert _rmse(pred, truth_test) < 2.0 * NOISE_SD
    # Same seed, same forest (up to the summation order of the parallel tree average).
    again = fit_member("rf", X, y, feature_names=["x1", "x2", "noise"], seed=3,
                       hyper={"n_estimators": 100, "min_samples_leaf": 3})
    np.testing.assert_allclose(predict_member("rf", again, X_test), pred, rtol=1e-12)

    spread = rf_tree_variance(model, X_test)
    assert spread.shape == (1000,) and (spread >= 0).all()
    per_tree = np.stack([t.predict(X_test.to_numpy(np.float32)) for t in model.estimators_])
    np.testing.assert_allclose(spread, per_tree.var(axis=0), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(per_tree.mean(axis=0), pred, rtol=1e-9)


def test_rf_rejects_features_that_do_not_match_by_name():
    X, y, _ = _rf_case(300, seed=0)
    model = fit_member("rf", X, y, feature_names=["x1", "x2", "noise"], seed=0, hyper={"n_estimators": 10})
    with pytest.raises(ValueError, match=r"expected \['x1', 'x2', 'noise'\], received \['x2', 'x1', 'noise'\]"):
        predict_rf(model, X[["x2", "x1", "noise"]])
    with pytest.raises(ValueError, match=r"missing \['noise'\].*received \['x1', 'x2'\]"):
        predict_rf(model, X[["x1", "x2"]])
    with pytest.raises(TypeError, match="DataFrame"):
        predict_rf(model, X.to_numpy())
    with pytest.raises(ValueError, match="feature columns do not match"):
        fit_member("rf", X, y, feature_names=["x1", "x2"], seed=0)


# ------------------------------------------------------------------------------------ LSTM and CNN

WINDOW = 10
KERAS_FIT = {"epochs": 25, "batch_size": 64, "learning_rate": 3e-3, "patience": 5}


def _windows(series: list[np.ndarray], n: int) -> np.ndarray:
    """Trailing windows (n, WINDOW, len(series)) of the given daily series, oldest day first."""
    return np.stack([np.lib.stride_tricks.sliding_window_view(s, WINDOW)[:n] for s in series], axis=-1)


def _lstm_case(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """y = mean of the last 5 days of x1 + noise; x2 is an irrelevant input."""
    rng = np.random.default_rng(seed)
    days = n + WINDOW
    X = _windows([0.25 + 0.1 * rng.standard_normal(days), rng.standard_normal(days)], n)
    return X, X[:, -5:, 0].mean(axis=1) + NOISE_SD * rng.standard_normal(n)


def _cnn_case(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three parents (one head each) + a static covariate; y depends on the past of parent 0."""
    rng = np.random.default_rng(seed)
    days = n + WINDOW
    X = _windows([0.25 + 0.1 * rng.standard_normal(days) for _ in range(3)] + [np.zeros(days)], n)
    X[:, :, 3] = rng.uniform(-1, 1, (n, 1))  # static over the window
    y = (0.5 * X[:, -3:, 0].mean(axis=1) + 0.3 * X[:, -1, 1] + 0.2 * np.maximum(X[:, -1, 2], 0.25)
         + 0.02 * X[:, -1, 3] + NOISE_SD * rng.standard_normal(n))
    return X, y


@pytest.fixture(scope="module")
def lstm_fit():
    X, y = _lstm_case(1500, seed=0)
    validation = _lstm_case(400, seed=1)
    model = fit_member("lstm", X, y, feature_names=["x1", "x2"], seed=1, validation=validation,
                       hyper={"units": 16, **KERAS_FIT})
    return X, y, validation, model


def test_lstm_learns_from_the_past_of_the_window(lstm_fit):
    _, _, _, model = lstm_fit
    X_test, y_test = _lstm_case(1000, seed=2)
    pred = predict_member("lstm", model, X_test)
    assert pred.shape == (1000,) and pred.dtype == np.float64
    # The last day alone explains little (R ~ 0.45): the model must use the window.
    last_day = _r(X_test[:, -1, 0], y_test)
    assert last_day < 0.6
    assert _r(pred, y_test) > 0.9
    assert _rmse(pred, y_test) < 0.5 * np.std(y_test)


def test_lstm_is_deterministic_and_round_trips(lstm_fit, tmp_path):
    X, y, validation, model = lstm_fit
    X_test, _ = _lstm_case(300, seed=3)
    pred = predict_member("lstm", model, X_test)
    again = fit_member("lstm", X, y, feature_names=["x1", "x2"], seed=1, validation=validation,
                       hyper={"units": 16, **KERAS_FIT})
    np.testing.assert_array_equal(predict_member("lstm", again, X_test), pred)

    loaded = load_keras(save_keras(model, tmp_path / "lstm.keras"))
    np.testing.assert_array_equal(predict_member("lstm", loaded, X_test), pred)
    assert keras_feature_names(loaded) == ["x1", "x2"]

    from smflow.ml.modelzoo.lstm import predict_lstm

    with pytest.raises(ValueError, match=r"3 features on its last axis but the model has 2: \['x1', 'x2'\]"):
        predict_lstm(loaded, np.concatenate([X_test, X_test[:, :, :1]], axis=-1))
    with pytest.raises(ValueError, match=r"expected \['x1', 'x2'\], received \['x2', 'x1'\]"):
        predict_lstm(loaded, X_test, feature_names=["x2", "x1"])
    with pytest.raises(ValueError, match="window of 5 steps"):
        predict_lstm(loaded, X_test[:, -5:])
    broken = X_test.copy()
    broken[0, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values in features \['x2'\]"):
        predict_lstm(loaded, broken)
    with pytest.raises(ValueError, match=r"must end in '.keras'"):
        save_keras(model, tmp_path / "lstm.h5")


def test_cnn_one_head_per_parent_learns_and_round_trips(tmp_path):
    names = ["smap", "era5_land", "gldas", "elevation"]
    heads = {"smap": [0], "era5_land": [1], "gldas": [2]}
    X, y = _cnn_case(1500, seed=0)
    X_test, y_test = _cnn_case(1000, seed=2)
    model = fit_member("cnn", X, y, feature_names=names, seed=1, validation=_cnn_case(400, seed=1),
                       hyper={"heads": heads, "filters": 8, **KERAS_FIT})
    head_layers = {layer.name for layer in model.layers if layer.name.endswith("_conv1")}
    assert head_layers == {"head_smap_conv1", "head_era5_land_conv1", "head_gldas_conv1"}
    pred = predict_member("cnn", model, X_test)
    assert _r(pred, y_test) > 0.9
    assert _rmse(pred, y_test) < 0.5 * np.std(y_test)

    loaded = load_keras(save_keras(model, tmp_path / "cnn.keras"))
    np.testing.assert_array_equal(predict_member("cnn", loaded, X_test), pred)
    assert loaded.get_layer("feature_schema").heads == heads
    assert keras_feature_names(loaded) == names


def test_cnn_rejects_bad_head_layouts():
    from smflow.ml.modelzoo.cnn import check_heads

    assert check_heads({"smap": [0, 3], "ascat": [1]}, 5) == [2, 4]
    with pytest.raises(ValueError, match="index 1 is in heads 'smap' and 'ascat'"):
        check_heads({"smap": [0, 1], "ascat": [1]}, 3)
    with pytest.raises(ValueError, match="index 7 is outside the 3 features"):
        check_heads({"smap": [7]}, 3)
    with pytest.raises(ValueError, match="heads is empty"):
        check_heads({}, 3)
    with pytest.raises(ValueError, match="hyper must hold 'heads'"):
        fit_member("cnn", np.zeros((4, WINDOW, 1)), np.zeros(4), feature_names=["smap"], seed=0)


# ---------------------------------------------------------------------------------------------- BMA

MEMBER_SD = np.array([0.01, 0.02, 0.04])


def _truth(n: int, rng: np.random.Generator) -> np.ndarray:
    return 0.25 + 0.08 * np.sin(np.arange(n) / 20.0) + 0.03 * rng.standard_normal(n)


def test_bma_em_recovers_the_mixture_it_assumes():
    """Targets drawn from the BMA model itself: EM must recover its weights and variances."""
    rng = np.random.default_rng(7)
    n = 20_000
    members = 0.25 + 0.05 * rng.standard_normal((n, 3))
    weights = np.array([0.5, 0.3, 0.2])
    pick = rng.choice(3, size=n, p=weights)
    y = members[np.arange(n), pick] + MEMBER_SD[pick] * rng.standard_normal(n)
    params = fit_bma(members, y, member_names=["rf", "lstm", "cnn"], bias_correct=False)
    assert params.converged
    np.testing.assert_allclose(params.weights, weights, atol=0.03)
    np.testing.assert_allclose(np.sqrt(params.variances), MEMBER_SD, rtol=0.1)
    assert params.weights.sum() == pytest.approx(1.0)


def test_bma_ranks_members_by_error_and_beats_the_best_member():
    """Three members = truth + independent noise of known sd 0.01, 0.02, 0.04 m3 m-3."""
    rng = np.random.default_rng(11)
    n = 4000
    truth = _truth(2 * n, rng)
    members = truth[:, None] + MEMBER_SD * rng.standard_normal((2 * n, 3))
    params = fit_bma(members[:n], truth[:n], member_names=["a", "b", "c"])
    assert params.converged
    assert params.weights[0] > params.weights[1] > params.weights[2]
    # The dominant member's sigma is its error sd. (The sigma of a member with weight ~0 is the
    # spread of the truth around it on the few samples where it is the best member, smaller than
    # its error sd: in a mixture, sigma_k is not member k's error, so no claim on those.)
    assert np.sqrt(params.variances[0]) == pytest.approx(MEMBER_SD[0], rel=0.2)

    mean, variance = predict_bma(params, members[n:])
    held_out = truth[n:]
    best = min(_rmse(members[n:, k], held_out) for k in range(3))
    assert _rmse(mean, held_out) <= best
    covered = np.abs(mean - held_out) <= 1.645 * np.sqrt(variance)
    assert 0.85 <= covered.mean() <= 0.95


def test_bma_corrects_biased_members_and_skips_nan_rows():
    rng = np.random.default_rng(5)
    n = 4000
    truth = _truth(2 * n, rng)
    clean = truth[:, None] + MEMBER_SD * rng.standard_normal((2 * n, 3))
    # Member 0 (the best) with an offset and a gain: raw, it is the worst of the three.
    members = clean.copy()
    members[:, 0] = 0.1 + 1.5 * clean[:, 0]
    members[rng.random(2 * n) < 0.05, 1] = np.nan
    y = truth.copy()
    y[rng.random(2 * n) < 0.05] = np.nan

    params = fit_bma(members[:n], y[:n], member_names=["a", "b", "c"])
    # The fitted correction undoes the offset and the gain, up to the regression dilution of the
    # member's own noise (least squares shrinks the slope by var(truth) / (var(truth) + sd^2)).
    fitted = np.isfinite(y[:n])
    dilution = np.var(truth[:n][fitted]) / (np.var(truth[:n][fitted]) + MEMBER_SD[0] ** 2)
    assert params.slopes[0] * 1.5 == pytest.approx(dilution, rel=0.02)
    corrected = params.corrected(members[n:])[:, 0]
    assert np.nanmean(corrected - truth[n:]) == pytest.approx(0.0, abs=0.002)
    assert params.weights[0] > 0.5
    complete = np.isfinite(members[:n]).all(axis=1) & np.isfinite(y[:n])
    assert params.n_samples == int(complete.sum())

    raw = fit_bma(members[:n], y[:n], member_names=["a", "b", "c"], bias_correct=False)
    assert raw.weights[0] < params.weights[0]

    mean, variance = predict_bma(params, members[n:])
    missing = np.isnan(members[n:]).any(axis=1)
    assert np.isnan(mean[missing]).all() and np.isnan(variance[missing]).all()
    assert np.isfinite(mean[~missing]).all() and (variance[~missing] > 0).all()
    assert _rmse(mean[~missing], truth[n:][~missing]) <= _rmse(clean[n:, 0][~missing], truth[n:][~missing]) * 1.05

    # JSON round trip.
    record = json.loads(json.dumps(params.to_dict()))
    again = BMAParameters.from_dict(record)
    np.testing.assert_array_equal(predict_bma(again, members[n:])[0], mean)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        predict_bma(params, members[n:, :2])
    with pytest.raises(ValueError, match="complete rows"):
        fit_bma(np.full((10, 3), np.nan), np.ones(10), member_names=["a", "b", "c"])


# ------------------------------------------------------------------------------------------- import

def test_importing_the_zoo_does_not_import_tensorflow():
    code = ("import sys, smflow.ml.modelzoo, smflow.ml.modelzoo.lstm, smflow.ml.modelzoo.cnn; "
            "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
