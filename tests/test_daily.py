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


def test_chunked_science_reads_dask_tiles_block_by_block(domain: dict) -> None:
    """Windows chunked in both lat and lon (the chunked store's tiles): blocks never cross a
    tile, and the results are placed back on the grid with the same bits."""
    import dask.array as da

    lazy = {p: da.from_array(v, chunks=(-1, 4, 5)) for p, v in domain["parents"].items()}
    got = daily_science(lazy, da.from_array(domain["temperature"], chunks=(-1, 4, 5)),
                        merging=merging_parameters(domain["tc"]), rain_model=domain["rain"], seed=SEED,
                        missing_last_day=(True, False, False), chunk_cells=8)
    expected = whole_domain(domain, (True, False, False))
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name, strict=False)
        assert got[name].shape == np.shape(value), name


def test_lazy_windows_of_the_chunked_store_give_the_in_memory_bits(stack, s3_client, domain: dict,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked store's lazy windows (dask over its tiles, in the real S3 server) hold the values
    of its in-memory windows (missing days NaN and listed), and the science gives the same bits."""
    import dataclasses
    import uuid
    from datetime import date, timedelta

    import dask
    import xarray as xr

    from smflow import s3
    from smflow.daily import SOIL_TEMPERATURE_FIELD
    from smflow.domain import DomainGrid
    from smflow.store import chunked

    ny, nx = SHAPE
    grid = DomainGrid(name="test_lazy", crs="EPSG:4326", resolution=0.1, lat_first=19.0, lat_last=19.8,
                      lon_first=-156.0, lon_last=-154.7,
                      land=tuple(tuple(bool((i + j) % 5) for j in range(nx)) for i in range(ny)))
    monkeypatch.setattr(chunked, "TILE", 4)  # tiles of 4 x 4 cells: 3 x 4 tiles, the last ones short
    settings = dataclasses.replace(stack, store_bucket=f"test-lazy-{uuid.uuid4().hex[:8]}")
    store = chunked.ChunkedTimeSeriesStore(settings, s3=s3_client, grid=grid)
    end = date(2016, 6, 6)
    days = [end - timedelta(days=TC_WINDOW_DAYS - 1 - k) for k in range(TC_WINDOW_DAYS)]
    kept = [k for k in range(TC_WINDOW_DAYS) if k not in (3, 100)]  # two days never stored: missing
    coords = {"lat": grid.lat_coord(), "lon": grid.lon_coord()}
    fields = {**domain["parents"], SOIL_TEMPERATURE_FIELD: domain["temperature"]}
    try:
        for k, (product, values) in enumerate(fields.items()):
            dtype = "float32" if k == 1 else "float64"  # one float32 product: converted band by band
            series = xr.DataArray(values[kept].astype(dtype), dims=("time", "lat", "lon"), coords=coords,
                                  name="soil_temperature" if product == SOIL_TEMPERATURE_FIELD else "soil_moisture")
            store.put_many(product, [days[j] for j in kept], series)
        eager = {p: store.window(p, end, TC_WINDOW_DAYS) for p in fields}
        lazy = {p: store.window(p, end, TC_WINDOW_DAYS, lazy=True) for p in fields}
        for p in fields:
            assert dask.is_dask_collection(lazy[p].data), p
            assert lazy[p].data.chunks[1:] == ((4, 4, 1), (4, 4, 4, 2)), p
            assert lazy[p].attrs == eager[p].attrs and lazy[p].name == eager[p].name, p
            assert eager[p].attrs["missing_days"] == f"{days[3].isoformat()},{days[100].isoformat()}"
            np.testing.assert_array_equal(lazy[p].values.astype("float64"), eager[p].values, err_msg=p)
            assert np.isnan(lazy[p].values[[3, 100]]).all()
        nothing = store.window("nothing", end, 5, lazy=True)
        assert nothing.attrs["missing_days"].count(",") == 4 and np.isnan(nothing.values).all()

        def science(windows):
            return daily_science({p: windows[p].data for p in PARENTS}, windows[SOIL_TEMPERATURE_FIELD].data,
                                 merging=merging_parameters(domain["tc"]), rain_model=domain["rain"], seed=SEED,
                                 missing_last_day=(False, False, True), chunk_cells=8)

        got, expected = science(lazy), science(eager)
        assert set(got) == set(expected)
        for name, value in expected.items():
            assert got[name].tobytes() == value.tobytes() and got[name].dtype == value.dtype, name
        assert 0 < expected["tc_resolved"].sum() < expected["tc_resolved"].size
    finally:
        for key in s3.list_keys(s3_client, settings.store_bucket, empty_if_no_bucket=True):
            s3_client.delete_object(Bucket=settings.store_bucket, Key=key)
        s3_client.delete_bucket(Bucket=settings.store_bucket)


def test_each_tile_of_a_lazy_window_is_read_once_per_pass(domain: dict) -> None:
    """The blocks of a tile share one read of it (dask would otherwise fuse each block's slice into
    its own read of the whole store chunk: 16 reads per tile on the global grid)."""
    from collections import Counter

    from smflow.store.chunked import _lazy_window

    reads: Counter[str] = Counter()

    class CountingArray:  # the Zarr array's read interface, counting the reads
        def __init__(self, values: np.ndarray, name: str) -> None:
            self.values, self.name = values, name
            self.shape, self.dtype, self.chunks = values.shape, values.dtype, (32, 4, 4)

        def __getitem__(self, key):
            reads[self.name] += 1
            return self.values[key].copy()

    stored = np.ones(TC_WINDOW_DAYS, dtype=bool)
    lazy = {p: _lazy_window(CountingArray(v, p), 0, stored, p) for p, v in domain["parents"].items()}
    temperature = _lazy_window(CountingArray(domain["temperature"], "t"), 0, stored, "t")
    got = daily_science(lazy, temperature, merging=merging_parameters(domain["tc"]), rain_model=domain["rain"],
                        seed=SEED, chunk_cells=8)
    tiles = 3 * 4  # 9 x 14 cells in tiles of 4 x 4
    assert dict(reads) == {**{p: 2 * tiles for p in PARENTS}, "t": tiles}  # block lengths + science; science
    expected = whole_domain(domain, (False, False, False))
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name, strict=False)
