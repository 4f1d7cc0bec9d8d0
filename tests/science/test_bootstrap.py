"""Moving-block bootstrap of triple collocation: coverage on AR(1) errors, agreement with the point
estimates, unresolved cells, and the resampling itself."""

from __future__ import annotations

import numpy as np
import pytest

from smflow.science.bootstrap import block_length, moving_block_counts, triple_collocation_ci
from smflow.science.tc import triple_collocation

ALPHA = np.array([0.02, -0.03, 0.05])
BETA = np.array([1.0, 0.7, 1.3])
SIGMA = np.array([0.02, 0.015, 0.03])


def ar1(rng: np.random.Generator, cells: int, steps: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) series, (cells, steps)."""
    shocks = rng.normal(size=(cells, steps)) * np.sqrt(1 - phi**2)
    out = np.empty((cells, steps))
    out[:, 0] = rng.normal(size=cells)
    for t in range(1, steps):
        out[:, t] = phi * out[:, t - 1] + shocks[:, t]
    return out


@pytest.fixture(scope="module")
def autocorrelated() -> np.ndarray:
    """A persistent truth (phi 0.9) and persistent errors (phi 0.7) with known error variances."""
    rng = np.random.default_rng(7)
    cells, steps = 300, 3000
    truth = 0.25 + 0.05 * ar1(rng, cells, steps, 0.9)
    errors = np.stack([SIGMA[i] * ar1(rng, cells, steps, 0.7) for i in range(3)])
    return ALPHA[:, None, None] + BETA[:, None, None] * truth[None] + errors


def coverage(lower: np.ndarray, upper: np.ndarray, target: np.ndarray) -> np.ndarray:
    return ((lower <= target[:, None]) & (target[:, None] <= upper)).mean(axis=1)


def test_block_bootstrap_covers_nominally_where_iid_does_not(autocorrelated: np.ndarray) -> None:
    block = triple_collocation_ci(*autocorrelated, n_resamples=400, seed=1)
    iid = triple_collocation_ci(*autocorrelated, n_resamples=400, seed=1, block=1)
    assert block.point.resolved.all()
    assert np.median(block.block_length) > 20  # the persistence is detected
    covered = coverage(block.error_variance.lower, block.error_variance.upper, SIGMA**2)
    covered_iid = coverage(iid.error_variance.lower, iid.error_variance.upper, SIGMA**2)
    # 95 % nominal; 300 independent cells give a Monte-Carlo error of ~1.3 %. The moving-block
    # bootstrap of a ratio statistic undercovers slightly at this length; i.i.d. resampling does
    # not see the autocorrelation and covers far less.
    assert np.all(covered >= 0.87) and np.all(covered <= 0.99), covered
    assert np.all(covered_iid <= 0.82), covered_iid
    assert np.all(covered > covered_iid + 0.1)
    width = block.error_variance.upper - block.error_variance.lower
    width_iid = iid.error_variance.upper - iid.error_variance.lower
    assert np.median(width / width_iid) > 1.3


def test_point_estimates_are_those_of_triple_collocation(autocorrelated: np.ndarray) -> None:
    data = autocorrelated[:, :20].copy()
    data[np.random.default_rng(3).random(data.shape) < 0.1] = np.nan
    res = triple_collocation_ci(*data, n_resamples=100, seed=2)
    point = triple_collocation(*data)
    for name in ("error_variance", "correlation_with_truth", "snr_db", "scaling"):
        np.testing.assert_array_equal(getattr(res.point, name), getattr(point, name))
        interval = getattr(res, name)
        estimate = getattr(point, name)
        assert interval.lower.shape == interval.upper.shape == (3, 20)
        # intervals bracket the estimate (except the degenerate scaling of x, fixed at 1)
        assert np.all(interval.lower <= estimate + 1e-12) and np.all(estimate <= interval.upper + 1e-12), name
    # float32 sums change the bounds by far less than their Monte-Carlo error
    precise = triple_collocation_ci(*data, n_resamples=100, seed=2, precision="float64")
    np.testing.assert_allclose(res.snr_db.lower, precise.snr_db.lower, atol=1e-3)
    # every-step starts (textbook MBB) and lattice starts give the same interval up to Monte Carlo
    every = triple_collocation_ci(*data, n_resamples=400, seed=5, start_step=1)
    lattice = triple_collocation_ci(*data, n_resamples=400, seed=5)
    ratio = (every.snr_db.upper - every.snr_db.lower) / (lattice.snr_db.upper - lattice.snr_db.lower)
    assert 0.85 < np.median(ratio) < 1.15


def test_one_cell_and_reproducibility(autocorrelated: np.ndarray) -> None:
    x, y, z = autocorrelated[:, 0]
    one = triple_collocation_ci(x, y, z, n_resamples=200, seed=11)
    again = triple_collocation_ci(x, y, z, n_resamples=200, seed=11)
    assert one.error_variance.lower.shape == (3,) and np.ndim(one.block_length) == 0
    np.testing.assert_array_equal(one.snr_db.lower, again.snr_db.lower)
    assert one.resolved_fraction == pytest.approx(1.0)
    basic = triple_collocation_ci(x, y, z, n_resamples=200, seed=11, method="basic")
    np.testing.assert_allclose(basic.snr_db.upper - one.point.snr_db, one.point.snr_db - one.snr_db.lower)


def test_unresolved_cells_have_no_interval(autocorrelated: np.ndarray) -> None:
    data = autocorrelated[:, :3].copy()
    data[2, 1] = 0.3 + np.random.default_rng(0).normal(size=data.shape[-1]) * 0.05  # z unrelated
    res = triple_collocation_ci(*data, n_resamples=100, seed=0)
    np.testing.assert_array_equal(res.point.resolved, [True, False, True])
    assert np.isnan(res.error_variance.lower[:, 1]).all() and np.isfinite(res.error_variance.lower[:, [0, 2]]).all()


def test_moving_block_counts_and_block_length() -> None:
    rng = np.random.default_rng(0)
    counts = moving_block_counts(100, 7, 50, rng)
    assert counts.shape == (50, 100) and np.all(counts.sum(axis=1) == 100)
    iid = moving_block_counts(100, 1, 2000, rng)
    np.testing.assert_allclose(iid.mean(axis=0), 1.0, atol=0.1)
    white = rng.normal(size=(3, 5, 2000))
    assert np.all(block_length(*white) <= 3)
    persistent = np.stack([ar1(rng, 5, 2000, 0.95) for _ in range(3)])
    assert np.all(block_length(*persistent) > 30)


def test_errors_say_how_to_fix(autocorrelated: np.ndarray) -> None:
    x, y, z = autocorrelated[:, 0]
    with pytest.raises(ValueError, match="confidence"):
        triple_collocation_ci(x, y, z, confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        triple_collocation_ci(x, y, z, n_resamples=5)
    with pytest.raises(ValueError, match="method"):
        triple_collocation_ci(x, y, z, method="BCa")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block"):
        triple_collocation_ci(x, y, z, block=0)


def test_draws_of_the_whole_domain_give_its_intervals_on_any_subset(autocorrelated: np.ndarray) -> None:
    """A chunk of cells given the whole domain's resamples (bootstrap_draws) gets the whole call's bits."""
    from smflow.science.bootstrap import bootstrap_draws, resample_block_lengths

    data = autocorrelated[:, :60, :365]
    whole = triple_collocation_ci(*data, n_resamples=100, seed=3)
    lengths = resample_block_lengths(*data)
    np.testing.assert_array_equal(lengths, whole.block_length)
    draws = bootstrap_draws(lengths, 365, 100, 3)
    assert len(draws) > 1
    part = slice(10, 25)
    got = triple_collocation_ci(*data[:, part], n_resamples=100, block=lengths[part], draws=draws)
    for name in ("error_variance", "snr_db", "correlation_with_truth"):
        np.testing.assert_array_equal(getattr(got, name).lower, getattr(whole, name).lower[:, part], err_msg=name)
        np.testing.assert_array_equal(getattr(got, name).upper, getattr(whole, name).upper[:, part], err_msg=name)
    with pytest.raises(ValueError, match="no resamples for the block lengths"):
        triple_collocation_ci(*data[:, part], n_resamples=100, block=lengths[part], draws={})
