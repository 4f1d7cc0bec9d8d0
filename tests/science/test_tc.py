"""Triple collocation: known answers on a synthetic truth, pytesmo agreement, unresolved rules."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from smflow.science.tc import TCResult, triple_collocation

ALPHA = np.array([0.02, -0.03, 0.05])  # offsets [m3 m-3]
BETA = np.array([1.0, 0.7, 1.3])  # sensitivities to the truth [-]
SIGMA = np.array([0.02, 0.015, 0.03])  # error standard deviations [m3 m-3]
TRUTH_SD = 0.05


@dataclass(frozen=True)
class Synthetic:
    truth: np.ndarray  # (cells, time)
    errors: np.ndarray  # (3, cells, time)
    data: np.ndarray  # (3, cells, time), with NaN gaps


def ar1_truth(rng: np.random.Generator, cells: int, steps: int, phi: float = 0.8) -> np.ndarray:
    """Soil-moisture-like truth: AR(1) anomalies around 0.25 m3 m-3 with std TRUTH_SD."""
    shocks = rng.normal(size=(cells, steps)) * np.sqrt(1.0 - phi**2)
    anomaly = np.empty((cells, steps))
    anomaly[:, 0] = rng.normal(size=cells)
    for t in range(1, steps):
        anomaly[:, t] = phi * anomaly[:, t - 1] + shocks[:, t]
    return 0.25 + TRUTH_SD * anomaly


def make_synthetic(cells: int, steps: int, seed: int, gap_fraction: float = 0.1) -> Synthetic:
    rng = np.random.default_rng(seed)
    truth = ar1_truth(rng, cells, steps)
    errors = rng.normal(size=(3, cells, steps)) * SIGMA[:, None, None]
    data = ALPHA[:, None, None] + BETA[:, None, None] * truth[None] + errors
    data[rng.random(data.shape) < gap_fraction] = np.nan
    return Synthetic(truth, errors, data)


@pytest.fixture(scope="module")
def synthetic() -> Synthetic:
    return make_synthetic(cells=500, steps=2000, seed=20220301)


@pytest.fixture(scope="module")
def result(synthetic: Synthetic) -> TCResult:
    return triple_collocation(*synthetic.data)


def test_result_shapes_and_resolution(synthetic: Synthetic, result: TCResult) -> None:
    for name in ("error_variance", "correlation_with_truth", "snr_db", "scaling", "pair_correlation", "mean"):
        assert getattr(result, name).shape == (3, 500), name
    assert result.sample_size.shape == result.resolved.shape == (500,)
    common = np.isfinite(synthetic.data).all(axis=0).sum(axis=1)
    np.testing.assert_array_equal(result.sample_size, common)
    assert result.resolved.all()


def test_recovers_known_error_variances(result: TCResult) -> None:
    ratio = result.error_variance / (SIGMA**2)[:, None]
    relative_error = np.abs(ratio - 1.0)
    # ~1450 common samples of an autocorrelated truth per cell: the sampling error of a single
    # cell's TC estimate is ~6 % (1 sd), so judge the estimator over the 500 cells: unbiased, a
    # median error well below 10 %, nearly all cells within 10 %, none grossly off. The test below
    # shows every cell within 10 % once the series is long enough.
    np.testing.assert_allclose(ratio.mean(axis=1), 1.0, atol=0.02)
    assert np.all(np.median(relative_error, axis=1) < 0.05)
    assert np.all(np.mean(relative_error < 0.10, axis=1) >= 0.85)
    assert relative_error.max() < 0.30


def test_every_cell_within_ten_percent_on_long_series() -> None:
    long = make_synthetic(cells=100, steps=20000, seed=7)
    res = triple_collocation(*long.data)
    relative_error = np.abs(res.error_variance / (SIGMA**2)[:, None] - 1.0)
    assert res.resolved.all()
    assert relative_error.max() < 0.10


def test_correlation_with_truth_matches_empirical(synthetic: Synthetic, result: TCResult) -> None:
    common = np.isfinite(synthetic.data).all(axis=0)
    truth = np.where(common, synthetic.truth, np.nan)
    for i in range(3):
        data = np.where(common, synthetic.data[i], np.nan)
        da = data - np.nanmean(data, axis=1, keepdims=True)
        dt = truth - np.nanmean(truth, axis=1, keepdims=True)
        empirical = np.nansum(da * dt, axis=1) / np.sqrt(np.nansum(da**2, axis=1) * np.nansum(dt**2, axis=1))
        assert np.max(np.abs(result.correlation_with_truth[i] - empirical)) < 0.02


def test_scaling_and_snr_match_the_error_model(result: TCResult) -> None:
    np.testing.assert_allclose(np.median(result.scaling, axis=1), BETA / BETA[0], rtol=0.02)
    snr_true = 10 * np.log10((BETA * TRUTH_SD) ** 2 / SIGMA**2)
    np.testing.assert_allclose(np.median(result.snr_db, axis=1), snr_true, atol=0.3)
    np.testing.assert_allclose(np.median(result.mean, axis=1), ALPHA + BETA * 0.25, atol=0.005)


def pytesmo_tcol_metrics(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    """Independent scalar re-implementation of pytesmo 0.18.1 ``tcol_metrics(x, y, z, ref_ind=0)``.

    Written from pytesmo's published formulas (Gruber et al. 2016): covariance matrix by
    ``np.cov`` (ddof=1); SNR = -10 log10(|sigma_i^2 sigma_jk / (sigma_ij sigma_ik) - 1|);
    error variance sigma_i^2 - sigma_ij sigma_ik / sigma_jk; beta_y = sigma_xz / sigma_yz,
    beta_z = sigma_xy / sigma_zy; err_std returned *scaled*: sqrt(err_var) * beta.
    """
    cov = np.cov(np.vstack((x, y, z)))
    snr, err_var = [], []
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        snr.append(10 * np.log10(1.0 / abs(abs(cov[i, i] * cov[j, k] / (cov[i, j] * cov[i, k])) - 1.0)))
        err_var.append(cov[i, i] - cov[i, j] * cov[i, k] / cov[j, k])
    beta = np.array([1.0, cov[0, 2] / cov[1, 2], cov[0, 1] / cov[2, 1]])
    return np.array(snr), np.sqrt(np.array(err_var)) * beta, beta


def test_agrees_with_pytesmo_formulas_to_1e10() -> None:
    rng = np.random.default_rng(11)
    cells, steps = 25, 400
    truth = ar1_truth(rng, cells, steps, phi=0.6)
    noise = rng.normal(size=(3, cells, steps)) * rng.uniform(0.005, 0.04, size=(3, cells, 1))
    data = ALPHA[:, None, None] + BETA[:, None, None] * truth[None] + noise
    data[rng.random(data.shape) < 0.15] = np.nan
    res = triple_collocation(*data, min_samples=3, min_pair_correlation=-1.0)
    assert res.resolved.all()
    for c in range(cells):
        keep = np.isfinite(data[:, c]).all(axis=0)
        snr, err_std, beta = pytesmo_tcol_metrics(*data[:, c, keep])
        np.testing.assert_allclose(res.snr_db[:, c], snr, rtol=1e-10)
        np.testing.assert_allclose(1.0 / res.scaling[:, c], beta, rtol=1e-10)
        np.testing.assert_allclose(np.sqrt(res.error_variance[:, c]) / res.scaling[:, c], err_std, rtol=1e-10)


def test_agrees_with_recorded_pytesmo_output() -> None:
    # Output of pytesmo 0.18.1 tcol_metrics(x, y, z, ref_ind=0) on these exact series, recorded
    # once in a scratch environment (pytesmo is not a project dependency).
    t = np.arange(40.0)
    truth = 0.25 + 0.05 * np.sin(t / 3.0) + 0.02 * np.cos(t / 1.7)
    x = truth + 0.01 * np.sin(t * 2.3)
    y = 0.05 + 0.8 * truth + 0.012 * np.cos(t * 1.9 + 0.4)
    z = -0.02 + 1.3 * truth + 0.02 * np.sin(t * 3.1 + 1.0)
    snr = [13.974760262799697, 11.216738622217674, 13.307590848809237]
    err_std = [0.007150848501424734, 0.009823328312623121, 0.007721755530822464]
    beta = [1.0, 1.2424736968539751, 0.7708648365520142]
    res = triple_collocation(x, y, z, min_samples=3)
    assert res.resolved and res.error_variance.shape == (3,)
    np.testing.assert_allclose(res.snr_db, snr, rtol=1e-10)
    np.testing.assert_allclose(1.0 / res.scaling, beta, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(res.error_variance) / res.scaling, err_std, rtol=1e-10)


def test_one_dimensional_input_is_one_cell(synthetic: Synthetic, result: TCResult) -> None:
    one = triple_collocation(*synthetic.data[:, 3])
    assert one.error_variance.shape == (3,) and one.sample_size.shape == ()
    np.testing.assert_allclose(one.error_variance, result.error_variance[:, 3], rtol=1e-12)
    np.testing.assert_allclose(one.pair_correlation, result.pair_correlation[:, 3], rtol=1e-12)


def test_unresolved_cells_get_nan_metrics_but_keep_diagnostics() -> None:
    rng = np.random.default_rng(5)
    steps = 1000
    truth = ar1_truth(rng, 4, steps)
    good = ALPHA[:, None, None] + BETA[:, None, None] * truth[None] + rng.normal(size=(3, 4, steps)) * 0.01
    data = good.copy()
    # cell 1: z is unrelated noise -> pair correlations ~0 < 0.2
    data[2, 1] = 0.3 + rng.normal(size=steps) * 0.05
    # cell 2: only 20 common samples (< min_samples = 30)
    data[0, 2, 20:] = np.nan
    # cell 3: y and z share an error of opposite sign -> x's error variance comes out negative
    shared = rng.normal(size=steps) * 0.03
    data[1, 3] += shared
    data[2, 3] -= shared
    res = triple_collocation(*data)
    np.testing.assert_array_equal(res.resolved, [True, False, False, False])
    assert np.abs(res.pair_correlation[1:, 1]).max() < 0.2
    assert res.sample_size[2] == 20
    assert (res.pair_correlation[:, 3] > 0.2).all()  # not the reason it is unresolved
    for name in ("error_variance", "correlation_with_truth", "snr_db", "scaling"):
        values = getattr(res, name)
        assert np.isfinite(values[:, 0]).all(), name
        assert np.isnan(values[:, 1:]).all(), name
    assert np.isfinite(res.pair_correlation).all()
    np.testing.assert_array_equal(res.sample_size[[0, 1, 3]], steps)


def test_negative_error_variance_is_the_reason_for_cell_3() -> None:
    rng = np.random.default_rng(5)
    steps = 5000
    truth = ar1_truth(rng, 1, steps)[0]
    shared = rng.normal(size=steps) * 0.03
    x = truth + rng.normal(size=steps) * 0.01
    y = 0.7 * truth + shared
    z = 1.3 * truth - shared
    cov = np.cov(np.vstack((x, y, z)))
    assert cov[0, 0] - cov[0, 1] * cov[0, 2] / cov[1, 2] < 0
    assert not triple_collocation(x, y, z).resolved


def test_pair_threshold_is_configurable() -> None:
    rng = np.random.default_rng(2)
    truth = ar1_truth(rng, 1, 3000)[0]
    x, y, z = (truth + rng.normal(size=3000) * s for s in (0.02, 0.02, 0.08))
    res = triple_collocation(x, y, z)
    assert res.resolved
    assert not triple_collocation(x, y, z, min_pair_correlation=0.99).resolved
    assert not triple_collocation(x, y, z, min_samples=3001).resolved


def test_errors_say_how_to_fix() -> None:
    with pytest.raises(ValueError, match="same shape"):
        triple_collocation(np.ones((2, 10)), np.ones((2, 10)), np.ones((3, 10)))
    with pytest.raises(ValueError, match=r"\(cells, time\)"):
        triple_collocation(np.ones((2, 2, 10)), np.ones((2, 2, 10)), np.ones((2, 2, 10)))
    with pytest.raises(ValueError, match="min_samples"):
        triple_collocation(np.ones(10), np.ones(10), np.ones(10), min_samples=2)
    with pytest.raises(ValueError, match="min_pair_correlation"):
        triple_collocation(np.ones(10), np.ones(10), np.ones(10), min_pair_correlation=1.5)


BENCH_PYTHON = Path(__file__).resolve().parents[2] / "benchmarks" / ".venv-bench" / "bin" / "python"


@pytest.mark.skipif(not BENCH_PYTHON.exists(), reason="pytesmo lives only in benchmarks/.venv-bench (benchmarks/setup.sh)")
def test_agrees_with_pytesmo_itself_to_1e10() -> None:
    # pytesmo is a benchmark-only dependency: run it in its own environment on data written here.
    rng = np.random.default_rng(21)
    cells, steps = 40, 730
    truth = ar1_truth(rng, cells, steps, phi=0.9)
    data = ALPHA[:, None, None] + BETA[:, None, None] * truth[None] + rng.normal(size=(3, cells, steps)) * (
        SIGMA[:, None, None] * rng.uniform(0.5, 2.0, (3, cells, 1)))
    data[rng.random(data.shape) < 0.1] = np.nan
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "data.npy", data)
        script = (
            "import sys, numpy as np\n"
            "from pytesmo.metrics import tcol_metrics\n"
            "d = np.load(sys.argv[1])\n"
            "out = []\n"
            "for c in range(d.shape[1]):\n"
            "    keep = np.isfinite(d[:, c]).all(axis=0)\n"
            "    out.append(np.concatenate(tcol_metrics(*d[:, c, keep], ref_ind=0)))\n"
            "np.save(sys.argv[2], np.array(out))\n"
        )
        subprocess.run([str(BENCH_PYTHON), "-c", script, str(Path(tmp) / "data.npy"), str(Path(tmp) / "out.npy")],
                       check=True, timeout=300)
        reference = np.load(Path(tmp) / "out.npy")
    res = triple_collocation(*data, min_samples=3, min_pair_correlation=-1.0)
    assert res.resolved.all()
    snr, err_std, beta = reference[:, 0:3].T, reference[:, 3:6].T, reference[:, 6:9].T
    np.testing.assert_allclose(res.snr_db, snr, rtol=1e-10)
    np.testing.assert_allclose(1.0 / res.scaling, beta, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(res.error_variance) / res.scaling, err_std, rtol=1e-10)
