"""TC least-squares merging (Ming et al. 2022, Eqs. 11-17): weights, error of the merged product,
arithmetic-mean fallback and renormalisation over missing parents."""

from __future__ import annotations

import io

import numpy as np
import pytest

from smflow.science.merging import (
    MERGE_METHOD_FLAG_MEANINGS,
    MERGE_METHOD_FLAG_VALUES,
    METHOD_ARITHMETIC_MEAN,
    METHOD_NO_DATA,
    METHOD_PARTIAL,
    METHOD_TC_LEAST_SQUARES,
    MergingParameters,
    apply_tc_merging,
    fit_tc_merging,
    least_squares_weights,
)

ALPHA = np.array([0.02, -0.03, 0.05])
BETA = np.array([1.0, 0.7, 1.3])
SIGMA = np.array([0.02, 0.015, 0.03])


def ar1(rng: np.random.Generator, cells: int, steps: int, phi: float = 0.8) -> np.ndarray:
    anomaly = np.empty((cells, steps))
    anomaly[:, 0] = rng.normal(size=cells)
    shocks = rng.normal(size=(cells, steps)) * np.sqrt(1 - phi**2)
    for t in range(1, steps):
        anomaly[:, t] = phi * anomaly[:, t - 1] + shocks[:, t]
    return 0.25 + 0.05 * anomaly


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1744)
    truth = ar1(rng, 300, 2000)
    parents = ALPHA[:, None, None] + BETA[:, None, None] * truth[None]
    parents = parents + rng.normal(size=parents.shape) * SIGMA[:, None, None]
    parents[rng.random(parents.shape) < 0.1] = np.nan
    return truth, parents


@pytest.fixture(scope="module")
def fitted(synthetic: tuple[np.ndarray, np.ndarray]) -> MergingParameters:
    return fit_tc_merging(synthetic[1])


# ---------------------------------------------------------------------------------- weights


def test_weights_follow_eqs_15_to_17() -> None:
    var = np.array([[1.0, 2.0, 4e-4], [2.0, 2.0, 1e-4], [4.0, 2.0, 9e-4]])
    w = least_squares_weights(var)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, rtol=1e-14)
    s1, s2, s3 = var
    denominator = s1 * s2 + s1 * s3 + s2 * s3
    np.testing.assert_allclose(w, np.stack([s2 * s3, s1 * s3, s1 * s2]) / denominator, rtol=1e-14)
    np.testing.assert_allclose(w[:, 1], 1.0 / 3.0, rtol=1e-14)  # equal error variances
    # Eq. 13 at the optimum equals the inverse of the summed precisions
    np.testing.assert_allclose((w**2 * var).sum(axis=0), 1.0 / (1.0 / var).sum(axis=0), rtol=1e-12)


def test_weights_are_nan_where_an_error_variance_is_unusable() -> None:
    var = np.array([[1.0, 1.0, 1.0, np.nan], [1.0, 0.0, -1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    w = least_squares_weights(var)
    assert np.isfinite(w[:, 0]).all()
    assert np.isnan(w[:, 1:]).all()
    with pytest.raises(ValueError, match="three error variances"):
        least_squares_weights(np.ones((2, 5)))


# ---------------------------------------------------------------------------------- fit


def test_fit_shapes_and_reference_parent(fitted: MergingParameters) -> None:
    assert fitted.weights.shape == fitted.gain.shape == fitted.offset.shape == (3, 300)
    assert fitted.merged_error_variance.shape == fitted.resolved.shape == fitted.sample_size.shape == (300,)
    assert fitted.resolved.all()
    np.testing.assert_allclose(fitted.weights.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(fitted.gain[0], 1.0)
    np.testing.assert_allclose(fitted.offset[0], 0.0, atol=1e-15)
    np.testing.assert_allclose(np.median(fitted.gain, axis=1), BETA[0] / BETA, rtol=0.03)
    # error variances are expressed in the reference (x) space
    np.testing.assert_allclose(np.median(fitted.reference_error_variance, axis=1), (SIGMA * BETA[0] / BETA) ** 2, rtol=0.05)


def test_merged_error_variance_is_eq_13_and_below_every_parent(fitted: MergingParameters) -> None:
    eq13 = (fitted.weights**2 * fitted.reference_error_variance).sum(axis=0)
    np.testing.assert_allclose(fitted.merged_error_variance, eq13, rtol=1e-12)
    assert np.all(fitted.merged_error_variance < fitted.reference_error_variance.min(axis=0))


def test_merged_error_matches_the_empirical_error_against_the_truth(
    synthetic: tuple[np.ndarray, np.ndarray], fitted: MergingParameters
) -> None:
    truth, parents = synthetic
    merged = apply_tc_merging(fitted, parents)
    complete = merged.method == METHOD_TC_LEAST_SQUARES
    # truth in the reference space is alpha_x + beta_x * T
    error = np.where(complete, merged.soil_moisture - (ALPHA[0] + BETA[0] * truth), np.nan)
    empirical = np.nanvar(error, axis=1, ddof=1)
    ratio = empirical / fitted.merged_error_variance
    assert abs(np.mean(ratio) - 1.0) < 0.02
    assert np.median(np.abs(ratio - 1.0)) < 0.05
    assert np.mean(np.abs(ratio - 1.0) < 0.10) >= 0.95
    np.testing.assert_allclose(merged.error_variance[complete], np.broadcast_to(
        fitted.merged_error_variance[:, None], complete.shape)[complete], rtol=1e-12)
    # better than every rescaled parent and than the plain average, against the truth
    rescaled = fitted.offset[..., None] + fitted.gain[..., None] * parents
    parent_error = np.nanvar(np.where(complete, rescaled - (ALPHA[0] + BETA[0] * truth), np.nan), axis=2)
    average_error = np.nanvar(np.where(complete, rescaled.mean(axis=0) - (ALPHA[0] + BETA[0] * truth), np.nan), axis=1)
    assert np.all(empirical < parent_error.min(axis=0))
    assert np.median(empirical / average_error) < 1.0


def test_reference_parent_sets_the_space(synthetic: tuple[np.ndarray, np.ndarray]) -> None:
    _, parents = synthetic
    params = fit_tc_merging(parents[:, :20], reference=2)
    np.testing.assert_array_equal(params.gain[2], 1.0)
    merged = apply_tc_merging(params, parents[:, :20])
    complete = np.isfinite(parents[:, :20]).all(axis=0)
    z_mean = np.nanmean(np.where(complete, parents[2, :20], np.nan), axis=1)
    np.testing.assert_allclose(np.nanmean(np.where(complete, merged.soil_moisture, np.nan), axis=1), z_mean, atol=1e-12)


# ---------------------------------------------------------------------------------- apply


def test_unresolved_cell_falls_back_to_the_arithmetic_mean() -> None:
    rng = np.random.default_rng(3)
    parents = 0.2 + 0.05 * rng.random((3, 2, 400))  # independent noise: pair R ~ 0 -> unresolved
    truth = ar1(rng, 1, 400)[0]
    parents[:, 0] = ALPHA[:, None] + BETA[:, None] * truth + rng.normal(size=(3, 400)) * 0.01
    params = fit_tc_merging(parents)
    np.testing.assert_array_equal(params.resolved, [True, False])
    np.testing.assert_array_equal(params.weights[:, 1], 1.0 / 3.0)
    np.testing.assert_array_equal(params.gain[:, 1], 1.0)
    np.testing.assert_array_equal(params.offset[:, 1], 0.0)
    assert np.isnan(params.merged_error_variance[1]) and np.isnan(params.reference_error_variance[:, 1]).all()
    assert params.sample_size[1] == 400
    merged = apply_tc_merging(params, parents)
    np.testing.assert_allclose(merged.soil_moisture[1], parents[:, 1].mean(axis=0), rtol=1e-14)
    assert np.isnan(merged.error_variance[1]).all()
    assert (merged.method[1] == METHOD_ARITHMETIC_MEAN).all()
    assert (merged.method[0] == METHOD_TC_LEAST_SQUARES).all()


def test_weights_are_renormalised_over_available_parents(fitted: MergingParameters) -> None:
    x = np.array(
        [
            [[0.30, 0.30, np.nan, np.nan]],
            [[0.25, np.nan, np.nan, np.nan]],
            [[0.35, 0.35, 0.35, np.nan]],
        ]
    )  # (3 parents, 1 cell, 4 times)
    params = MergingParameters.from_dict({k: v[..., :1] for k, v in fitted.to_dict().items()})
    merged = apply_tc_merging(params, x)
    np.testing.assert_array_equal(
        merged.method[0], [METHOD_TC_LEAST_SQUARES, METHOD_PARTIAL, METHOD_PARTIAL, METHOD_NO_DATA]
    )
    w, var = params.weights[:, 0], params.reference_error_variance[:, 0]
    rescaled = params.offset[:, 0, None] + params.gain[:, 0, None] * x[:, 0]
    assert merged.soil_moisture[0, 0] == pytest.approx((w * rescaled[:, 0]).sum(), rel=1e-12)
    assert merged.soil_moisture[0, 1] == pytest.approx(
        (w[0] * rescaled[0, 1] + w[2] * rescaled[2, 1]) / (w[0] + w[2]), rel=1e-12
    )
    assert merged.soil_moisture[0, 2] == pytest.approx(rescaled[2, 2], rel=1e-12)
    assert np.isnan(merged.soil_moisture[0, 3]) and np.isnan(merged.error_variance[0, 3])
    assert merged.error_variance[0, 0] == pytest.approx(params.merged_error_variance[0], rel=1e-12)
    assert merged.error_variance[0, 1] == pytest.approx(1.0 / (1.0 / var[0] + 1.0 / var[2]), rel=1e-12)
    assert merged.error_variance[0, 2] == pytest.approx(var[2], rel=1e-12)


def test_one_time_step_input(synthetic: tuple[np.ndarray, np.ndarray], fitted: MergingParameters) -> None:
    _, parents = synthetic
    series = apply_tc_merging(fitted, parents[..., :5])
    day = apply_tc_merging(fitted, parents[..., 4])
    assert day.soil_moisture.shape == day.method.shape == (300,)
    assert day.method.dtype == np.int8
    np.testing.assert_array_equal(day.soil_moisture, series.soil_moisture[:, 4])
    np.testing.assert_array_equal(day.method, series.method[:, 4])


def test_flag_constants_are_cf_ready() -> None:
    from smflow.science.merging import METHOD_MACHINE_LEARNING, METHOD_MACHINE_LEARNING_PARTIAL

    codes = [METHOD_TC_LEAST_SQUARES, METHOD_ARITHMETIC_MEAN, METHOD_PARTIAL, METHOD_NO_DATA,
             METHOD_MACHINE_LEARNING, METHOD_MACHINE_LEARNING_PARTIAL]
    np.testing.assert_array_equal(MERGE_METHOD_FLAG_VALUES, codes)
    assert MERGE_METHOD_FLAG_VALUES.dtype == np.int8
    assert MERGE_METHOD_FLAG_MEANINGS.split() == ["tc_least_squares", "arithmetic_mean", "partial", "no_data",
                                                  "machine_learning", "machine_learning_partial"]


# ---------------------------------------------------------------------------------- storage


def test_parameters_round_trip_through_npz_and_lists(fitted: MergingParameters) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **fitted.to_dict())
    buffer.seek(0)
    with np.load(buffer) as stored:
        again = MergingParameters.from_dict(stored)
    for name, value in fitted.to_dict().items():
        np.testing.assert_array_equal(getattr(again, name), value)
    as_lists = MergingParameters.from_dict({k: v.tolist() for k, v in fitted.to_dict().items()})
    assert as_lists.resolved.dtype == bool and as_lists.sample_size.dtype == np.int64
    # a gridded store may hold the flag as float with NaN off land
    coded = {**fitted.to_dict(), "resolved": np.where(fitted.resolved, 1.0, np.nan)}
    assert MergingParameters.from_dict(coded).resolved.all()
    coded["resolved"][0] = np.nan
    assert not MergingParameters.from_dict(coded).resolved[0]


def test_errors_say_how_to_fix(fitted: MergingParameters) -> None:
    with pytest.raises(ValueError, match="missing"):
        MergingParameters.from_dict({"weights": fitted.weights})
    with pytest.raises(ValueError, match="shaped"):
        MergingParameters.from_dict({**fitted.to_dict(), "gain": fitted.gain[:2]})
    with pytest.raises(ValueError, match=r"\(3, cells, time\)"):
        fit_tc_merging(np.ones((2, 5, 50)))
    with pytest.raises(ValueError, match=r"\(3, cells, time\)"):
        fit_tc_merging(np.ones((3, 50)))
    with pytest.raises(ValueError, match="reference"):
        fit_tc_merging(np.ones((3, 2, 50)), reference=3)
    with pytest.raises(ValueError, match="cells"):
        apply_tc_merging(fitted, np.ones((3, 7)))


def test_merging_by_chunks_of_cells_gives_the_same_bits(synthetic: tuple[np.ndarray, np.ndarray],
                                                        fitted: MergingParameters) -> None:
    """The temporaries are bounded by chunks of cells (issue 16); the result does not depend on them."""
    parents = synthetic[1][:, :, :400]
    whole = apply_tc_merging(fitted, parents, chunk_cells=parents.shape[1])
    for chunk in (1, 7, None):
        got = apply_tc_merging(fitted, parents, chunk_cells=chunk)
        for name in ("soil_moisture", "error_variance", "method"):
            np.testing.assert_array_equal(getattr(got, name), getattr(whole, name), err_msg=f"{name}, chunk {chunk}")
    assert (whole.method == METHOD_PARTIAL).any() and np.isfinite(whole.soil_moisture).any()
    with pytest.raises(ValueError, match="chunk_cells"):
        apply_tc_merging(fitted, parents, chunk_cells=0)
