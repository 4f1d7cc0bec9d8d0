"""The daily science streamed by spatial chunks (smflow.daily.daily_science): every chunking gives
the bits of the whole-domain computation with the public science functions, bootstrap intervals
included."""

from __future__ import annotations

import numpy as np
import pytest

from smflow.daily import TC_CONFIDENCE, TC_MIN_SAMPLES, TC_RESAMPLES, TC_WINDOW_DAYS, daily_science
from smflow.ml.models import PARENTS, GridParameters, merging_parameters, sm2rain_parameters
from smflow.science.bootstrap import triple_collocation_ci
from smflow.science.merging import apply_tc_merging, fit_tc_merging
from smflow.science.sm2rain import apply_sm2rain, frozen_soil_mask, precipitation_status, relative_saturation

SHAPE = (9, 14)  # lat, lon: 126 cells
SEED = 737_000


def ar1(rng: np.random.Generator, phi: np.ndarray, steps: int) -> np.ndarray:
    """Unit-variance AR(1) series with one phi per cell, (steps, cells)."""
    out = np.empty((steps, phi.size))
    out[0] = rng.normal(size=phi.size)
    for t in range(1, steps):
        out[t] = phi * out[t - 1] + rng.normal(size=phi.size) * np.sqrt(1 - phi**2)
    return out


@pytest.fixture(scope="module")
def domain() -> dict:
    """Parents with a persistence that grows from north to south (so the bands differ in their
    bootstrap block lengths), gaps, an empty cell, frozen days, and fitted TC / SM2RAIN models."""
    rng = np.random.default_rng(16)
    ny, nx = SHAPE
    cells = ny * nx
    phi = np.repeat(np.linspace(0.05, 0.97, ny), nx)
    truth = 0.25 + 0.05 * ar1(rng, phi, 3 * TC_WINDOW_DAYS)
    gain, offset, sigma = np.array([1.0, 0.7, 1.3]), np.array([0.02, -0.03, 0.05]), np.array([0.02, 0.015, 0.03])
    series = offset[:, None, None] + gain[:, None, None] * truth[None]
    series = series + sigma[:, None, None] * np.stack([ar1(rng, phi, truth.shape[0]) for _ in range(3)])
    series[rng.random(series.shape) < 0.08] = np.nan
    series[:, :, 5] = np.nan  # a cell without data
    training, window = series[:, :-TC_WINDOW_DAYS], series[:, -TC_WINDOW_DAYS:]
    tc = fit_tc_merging(np.moveaxis(training, 1, 2))
    arrays = {k: np.asarray(v).reshape(*np.shape(v)[:-1], ny, nx) for k, v in tc.to_dict().items()}
    rain = {"Z": rng.uniform(30, 150, cells), "a": rng.uniform(2, 40, cells), "b": rng.uniform(2, 15, cells),
            "saturation_lower": np.full(cells, 0.1), "saturation_upper": np.full(cells, 0.45),
            "T": np.where(np.arange(cells) % 3 == 0, 5.0, np.nan), "T_pot": np.full(cells, np.nan),
            "swi_lower": np.full(cells, 0.15), "swi_upper": np.full(cells, 0.4)}
    rain["Z"][7] = np.nan  # a cell without SM2RAIN parameters
    temperature = 285.0 + 3.0 * rng.normal(size=(TC_WINDOW_DAYS, cells))
    temperature[:, 20:30] -= 15.0  # frozen soil there
    return {
        "parents": {p: window[k].reshape(TC_WINDOW_DAYS, ny, nx) for k, p in enumerate(PARENTS)},
        "temperature": temperature.reshape(TC_WINDOW_DAYS, ny, nx),
        "tc": GridParameters(arrays=arrays, metadata={}),
        "rain": GridParameters(arrays={k: v.reshape(ny, nx) for k, v in rain.items()}, metadata={}),
    }


def whole_domain(domain: dict, missing_last_day: tuple[bool, bool, bool]) -> dict[str, np.ndarray]:
    """The day's science in one call of each public function over all cells (the computation
    before the chunking, as smflow.daily made it)."""
    ny, nx = SHAPE
    stack = np.stack([domain["parents"][p] for p in PARENTS]).copy()
    for k, gone in enumerate(missing_last_day):
        if gone:
            stack[k, -1] = np.nan
    cells = np.moveaxis(stack.reshape(3, TC_WINDOW_DAYS, ny * nx), -1, -2)
    merged = apply_tc_merging(merging_parameters(domain["tc"]), cells)
    ci = triple_collocation_ci(cells[0], cells[1], cells[2], min_samples=TC_MIN_SAMPLES, n_resamples=TC_RESAMPLES,
                               confidence=TC_CONFIDENCE, seed=SEED)
    rain_model = domain["rain"]
    params = sm2rain_parameters(rain_model)
    lower = rain_model.arrays["saturation_lower"].reshape(-1)
    upper = rain_model.arrays["saturation_upper"].reshape(-1)
    s = relative_saturation(merged.soil_moisture, lower[:, None], upper[:, None])
    frozen = frozen_soil_mask(soil_temperature=np.moveaxis(domain["temperature"].reshape(-1, ny * nx), -1, 0))
    out = {
        "soil_moisture": merged.soil_moisture[:, -1], "soil_moisture_error_variance": merged.error_variance[:, -1],
        "merge_method": merged.method[:, -1], "frozen_soil": frozen[:, -1],
        "precipitation_amount": apply_sm2rain(s, params, frozen=frozen)[:, -1],
        "precipitation_status": precipitation_status(merged.soil_moisture, frozen, params, lower, upper),
        "error_variance": ci.point.error_variance, "correlation_with_truth": ci.point.correlation_with_truth,
        "snr_db": ci.point.snr_db, "tc_resolved": ci.point.resolved, "tc_sample_size": ci.point.sample_size,
        "tc_block_length": ci.block_length, "source_soil_moisture": cells[:, :, -1],
    }
    for name in ("error_variance", "correlation_with_truth", "snr_db"):
        out[f"{name}_lower"] = getattr(ci, name).lower
        out[f"{name}_upper"] = getattr(ci, name).upper
    return out


@pytest.mark.parametrize("chunk_cells", [14, 40, 10**6])  # 9 bands of one row, 5 bands (the last short), one
def test_chunked_science_equals_the_whole_domain_bit_for_bit(domain: dict, chunk_cells: int) -> None:
    missing = (False, True, False)
    expected = whole_domain(domain, missing)
    got = daily_science(domain["parents"], domain["temperature"], merging=merging_parameters(domain["tc"]),
                        rain_model=domain["rain"], seed=SEED, missing_last_day=missing, chunk_cells=chunk_cells)
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name, strict=False)
        assert got[name].shape == np.shape(value), name
    # the case is not trivial: the bands draw for different block lengths, TC resolves and
    # fails, rain is computed and refused, the rejected input's last day is not used
    lengths = got["tc_block_length"].reshape(SHAPE)
    assert len({tuple(np.unique(row)) for row in lengths}) > 3
    assert 0 < got["tc_resolved"].sum() < got["tc_resolved"].size
    assert np.isfinite(got["error_variance_lower"]).any()
    assert set(np.unique(got["precipitation_status"])) >= {0, 3, 4}
    assert np.isnan(got["source_soil_moisture"][1]).all()


def test_chunked_science_reads_dask_windows_band_by_band(domain: dict) -> None:
    """Windows handed over lazily (a chunked store) give the same bits."""
    import dask.array as da

    lazy = {p: da.from_array(v, chunks=(-1, 2, -1)) for p, v in domain["parents"].items()}
    got = daily_science(lazy, da.from_array(domain["temperature"], chunks=(-1, 3, -1)),
                        merging=merging_parameters(domain["tc"]), rain_model=domain["rain"], seed=SEED,
                        chunk_cells=28)
    expected = whole_domain(domain, (False, False, False))
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_mismatched_windows_are_refused_with_their_shapes(domain: dict) -> None:
    short = {**domain["parents"], PARENTS[2]: domain["parents"][PARENTS[2]][1:]}
    with pytest.raises(ValueError, match=r"parents \[\(180, 9, 14\), \(180, 9, 14\), \(179, 9, 14\)\]"):
        daily_science(short, domain["temperature"], merging=merging_parameters(domain["tc"]),
                      rain_model=domain["rain"], seed=SEED)
