"""Compiled kernels (numba): the pieces that replace numpy calls agree with numpy, and splitting the
cells over threads changes nothing."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from smflow.science import _kernels
from smflow.science.bootstrap import triple_collocation_ci
from smflow.science.sm2rain import calibrate_sm2rain, exponential_filter
from smflow.science.tc import tc_from_moments
from smflow.science.warmup import warm_up


def test_vectorised_exp_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    log_s = np.log(rng.uniform(1e-6, 1.0, 5000))
    log_s[:50] = _kernels.LOG_ZERO  # s = 0
    log_s[50] = 0.0  # s = 1
    power = np.empty_like(log_s)
    exponent = np.empty(log_s.size, dtype=np.int64)
    for b in (0.01, 0.3, 1.0, 7.5, 50.0):
        _kernels._powers(log_s, b, power, exponent)
        expected = np.exp(log_s * b)
        normal = log_s * b >= -708.0
        np.testing.assert_allclose(power[normal], expected[normal], rtol=2e-15, atol=0)
        assert np.all(power[~normal] == 0.0)
        assert power[50] == 1.0
        if b >= 0.071:  # s^b of s = 0 is exactly 0
            assert np.all(power[:50] == 0.0)


def test_bootstrap_quantiles_are_numpys() -> None:
    # The kernel's TC per resample and order-statistic quantiles against numpy on the same sums.
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(1, 500))
    data = np.stack([truth + rng.normal(size=(1, 500)) * s for s in (0.3, 0.5, 0.8)])
    anomaly = data - data.mean(axis=-1, keepdims=True)
    terms = np.concatenate([np.ones((1, 500)), anomaly[:, 0],
                            *[anomaly[i, 0][None] * anomaly[j, 0][None] for i, j in
                              ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))]])
    counts = rng.multinomial(500, np.full(500, 1 / 500), size=300).T  # (time, resamples)
    sums = np.ascontiguousarray(terms @ counts)  # (10, resamples)
    lower, upper = np.empty(12), np.empty(12)
    resolved = _kernels._intervals(sums, 0.025, np.empty((12, 300)), np.empty(12), np.empty(12, dtype=np.int64),
                                   lower, upper)
    n = sums[0]
    first = sums[1:4] / n
    cov = np.empty((3, 3, 300))
    for k, (i, j) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
        cov[i, j] = cov[j, i] = (sums[4 + k] - n * first[i] * first[j]) / (n - 1)
    boot = tc_from_moments(n, first, cov, min_samples=3, min_pair_correlation=-1.0)
    assert resolved == boot.resolved.sum()
    for k, name in enumerate(("error_variance", "correlation_with_truth", "snr_db", "scaling")):
        values = np.where(boot.resolved, getattr(boot, name), np.nan)
        expected = np.nanquantile(values, [0.025, 0.975], axis=-1)
        np.testing.assert_allclose(lower[3 * k : 3 * k + 3], expected[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(upper[3 * k : 3 * k + 3], expected[1], rtol=1e-12, atol=1e-15)


def test_wetness_filter_without_exponent_is_the_exponential_filter() -> None:
    # T_pot = 0 (apply_sm2rain passes 0 for the cells without a wetness exponent) on a series that
    # starts dry (s = 0): SWI^-0 is 1, not 0^0 = NaN.
    rng = np.random.default_rng(3)
    s = rng.random((5, 200))
    s[:, :3] = 0.0
    s[:, 50] = np.nan
    T = np.array([0.0001, 0.5, 2.0, 8.0, 3.0])
    wet = exponential_filter(s, T, T_pot=np.zeros(5))
    plain = exponential_filter(s, T)
    np.testing.assert_allclose(wet, plain, rtol=1e-13)
    assert np.isfinite(wet[:, :50]).all()


@pytest.fixture()
def two_threads():
    previous = numba.get_num_threads()
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread on this machine")
    yield
    numba.set_num_threads(previous)


def test_threads_change_nothing(two_threads: None) -> None:
    rng = np.random.default_rng(2)
    s = np.clip(rng.random((150, 400)), 0.0, 1.0)
    p = rng.gamma(0.5, 5.0, (150, 400))
    x = rng.normal(size=(3, 150, 400)) * 0.3 + rng.normal(size=(1, 150, 400))
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        results.append((calibrate_sm2rain(s, p), triple_collocation_ci(*x, n_resamples=50, seed=4)))
    (cal1, ci1), (cal2, ci2) = results
    for name in ("Z", "a", "b", "rmse", "r", "n"):
        np.testing.assert_array_equal(getattr(cal1, name), getattr(cal2, name))
    np.testing.assert_array_equal(ci1.snr_db.lower, ci2.snr_db.lower)
    np.testing.assert_array_equal(ci1.error_variance.upper, ci2.error_variance.upper)


def test_warm_up_compiles_every_kernel() -> None:
    assert warm_up() > 0.0
