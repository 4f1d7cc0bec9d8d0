"""Known answers for the agreement metrics (hand-computed on small arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from smflow.science.metrics import bias, kge, nse, pearson_r, rmse, ubrmse

# estimate e = [1, 2, 3, 4], reference r = [1, 2, 3, 5]
# difference d = [0, 0, 0, -1]; anomalies de = [-1.5, -0.5, 0.5, 1.5], dr = [-1.75, -0.75, 0.25, 2.25]
# sum de*dr = 6.5, sum de^2 = 5, sum dr^2 = 8.75
E = np.array([1.0, 2.0, 3.0, 4.0])
R = np.array([1.0, 2.0, 3.0, 5.0])
EXPECTED = {
    "bias": -0.25,
    "rmse": 0.5,
    "ubrmse": np.sqrt(0.1875),  # population variance of d: (3 * 0.25^2 + 0.75^2) / 4
    "pearson_r": 6.5 / np.sqrt(5.0 * 8.75),
    "nse": 1.0 - 1.0 / 8.75,
    "kge": 1.0
    - np.sqrt(
        (6.5 / np.sqrt(43.75) - 1.0) ** 2 + (np.sqrt(5.0 / 8.75) - 1.0) ** 2 + (2.5 / 2.75 - 1.0) ** 2
    ),
}
METRICS = {"bias": bias, "rmse": rmse, "ubrmse": ubrmse, "pearson_r": pearson_r, "nse": nse, "kge": kge}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_known_values(name: str) -> None:
    value = METRICS[name](E, R)
    assert np.ndim(value) == 0
    assert value == pytest.approx(EXPECTED[name], rel=1e-12)


def test_hand_values_are_consistent() -> None:
    # ubRMSE^2 = RMSE^2 - bias^2, R of the hand example ~ 0.98
    assert EXPECTED["ubrmse"] ** 2 == pytest.approx(EXPECTED["rmse"] ** 2 - EXPECTED["bias"] ** 2)
    assert EXPECTED["pearson_r"] == pytest.approx(0.982708, abs=1e-6)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_nan_pairs_are_dropped_pairwise(name: str) -> None:
    e = np.array([1.0, np.nan, 2.0, 3.0, 4.0, 7.0])
    r = np.array([1.0, 9.0, 2.0, 3.0, 5.0, np.nan])
    assert METRICS[name](e, r) == pytest.approx(EXPECTED[name], rel=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_vectorised_over_cells_and_min_samples(name: str) -> None:
    e = np.stack([E, E[::-1] * 2.0, [1.0, np.nan, np.nan, np.nan]])
    r = np.stack([R, R, [2.0, 3.0, 4.0, 5.0]])
    values = METRICS[name](e, r, min_samples=2)
    assert values.shape == (3,)
    assert values[0] == pytest.approx(EXPECTED[name], rel=1e-12)
    assert values[1] == pytest.approx(METRICS[name](e[1], r[1]), rel=1e-12)
    assert np.isnan(values[2])  # one pair only
    assert np.isnan(METRICS[name](E, R, min_samples=5))


def test_reference_broadcasts_against_cells() -> None:
    e = np.stack([E, E + 1.0])
    np.testing.assert_allclose(bias(e, R), [-0.25, 0.75])
    np.testing.assert_allclose(pearson_r(e, R), [EXPECTED["pearson_r"]] * 2)


def test_perfect_and_degenerate_cases() -> None:
    assert pearson_r(R, R) == pytest.approx(1.0)
    assert kge(R, R) == pytest.approx(1.0)
    assert nse(R, R) == pytest.approx(1.0)
    assert rmse(R, R) == 0.0 and ubrmse(R + 3.0, R) == pytest.approx(0.0, abs=1e-15)
    constant = np.full(4, 2.0)
    assert np.isnan(pearson_r(E, constant))
    assert np.isnan(nse(E, constant))
    assert np.isnan(kge(E, constant))
    assert np.isnan(pearson_r([np.nan] * 4, R))


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="do not broadcast"):
        rmse(np.ones((2, 5)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="time axis"):
        bias(1.0, 2.0)
    with pytest.raises(ValueError, match="min_samples"):
        pearson_r(E, R, min_samples=0)


@pytest.mark.parametrize("metric", [bias, kge, nse, pearson_r, rmse, ubrmse])
def test_every_metric_documents_its_parameters_result_and_errors(metric) -> None:
    doc = metric.__doc__
    assert "{sections}" not in doc
    for section in ("Parameters\n    ----------\n    estimate : array_like, shape (..., time)",
                    "min_samples : int, default 2", "Returns\n    -------\n    ",
                    "Raises\n    ------\n    ValueError", "Notes\n    -----", "References\n    ----------"):
        assert section in doc, (metric.__name__, section)
    assert f"    {'r' if metric is pearson_r else metric.__name__} : numpy.ndarray, shape (...)" in doc
