"""Test data of the quality tests: real decoded granules and a synthetic daily product.

Granules are decoded from the real QA4SM Hawaii time series in ``../shared/data/real`` with
``smflow.readers`` (``read_product`` for one UTC day); if the readers are not importable, a
minimal decoder below follows the DESIGN.md contract for the orthogonal products.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from smflow.config import REPO_ROOT

REAL_TIMESERIES = REPO_ROOT.parent / "shared" / "data" / "real" / "hawaii_timeseries"
#: A day on which every product has data over the Big Island (SMAP: both overpasses, C3S: 2 values).
GOOD_DAY = "2017-06-01"

_ORTHOGONAL = {  # fallback decoder facts: folder, variable, factor, cells, raw flag (var, accepted)
    "era5_land": ("ERA5_LAND_V20190904", "swvl1", 1.0, ("0165", "0166"), None),
    "gldas": ("GLDAS_NOAH025_3H_2_1", "SoilMoi0_10cm_inst", 0.01, ("0165", "0166"), None),
    "c3s": ("C3S_SM_COMBINED_V202505", "sm", 1.0, ("0165",), ("flag", 0)),
}


def _fallback_decode(product: str, day: str) -> xr.Dataset:
    """Decoded granule of one day from the orthogonal cell files (contract of DESIGN.md)."""
    if product not in _ORTHOGONAL:
        pytest.skip(f"smflow.readers is not importable and there is no fallback decoder for {product}")
    folder, variable, factor, cells, flag = _ORTHOGONAL[product]
    t0 = np.datetime64(day, "ns")
    parts = []
    for cell in cells:
        with xr.open_dataset(REAL_TIMESERIES / folder / f"{cell}.nc") as raw:
            times = raw["time"].values
            raw = raw.isel(time=(times >= t0) & (times < t0 + np.timedelta64(1, "D"))).load()
        keep = [variable] + ([flag[0]] if flag else [])
        part = raw[keep].rename({"locations": "location"})
        part = part.assign_coords(location_id=("location", raw["location_id"].values))
        parts.append(part.drop_vars([v for v in ("alt", "location_description") if v in part.variables]))
    raw = xr.concat(parts, dim="location")
    values = raw[variable].transpose("location", "time").values.astype("float64") * factor
    passes = np.isfinite(values)
    if flag:
        passes &= raw[flag[0]].transpose("location", "time").values == flag[1]
    out = xr.Dataset(
        {
            "soil_moisture": (("location", "time"), np.where(passes, values, np.nan),
                              {"units": "m3 m-3", "long_name": "volumetric soil moisture",
                               "standard_name": "volume_fraction_of_condensed_water_in_soil"}),
            "quality_mask": (("location", "time"), passes, {"long_name": "passes flags"}),
        },
        coords={"lat": raw["lat"], "lon": raw["lon"], "location_id": raw["location_id"], "time": raw["time"]},
        attrs={"product": product, "source_file": ", ".join(f"{c}.nc" for c in cells)},
    )
    if flag:
        out[flag[0]] = raw[flag[0]].transpose("location", "time")
    return out


def decode_day(product: str, day: str = GOOD_DAY) -> xr.Dataset:
    if not REAL_TIMESERIES.is_dir():
        pytest.skip(f"real data not available at {REAL_TIMESERIES}")
    try:
        from smflow.readers import read_product  # type: ignore[attr-defined]
    except ImportError:
        try:
            from smflow.readers.decode import read_product
        except ImportError:
            return _fallback_decode(product, day)
    return read_product(product, day, day, source_dir=REAL_TIMESERIES)


def make_product(day: str = GOOD_DAY, seed: int = 1) -> xr.Dataset:
    """A valid daily product on the Big-Island grid (DESIGN.md "Daily product dataset")."""
    from smflow.domain import load_domain

    grid = load_domain("big_island")
    land = grid.land_mask
    rng = np.random.default_rng(seed)
    shape = (1, *grid.shape)
    sources = ["smap", "era5_land", "gldas"]

    def on_land(values: np.ndarray) -> np.ndarray:
        return np.where(land, values, np.nan)

    sm = on_land(rng.uniform(0.1, 0.45, grid.shape))[None]
    source_sm = np.stack([on_land(rng.uniform(0.05, 0.5, grid.shape)) for _ in sources])[None]
    err = np.stack([on_land(rng.uniform(1e-4, 4e-3, grid.shape)) for _ in sources])[None]
    snr = np.stack([on_land(rng.uniform(-5.0, 12.0, grid.shape)) for _ in sources])[None]
    rho = np.stack([on_land(rng.uniform(0.4, 0.95, grid.shape)) for _ in sources])[None]
    resolved = land[None].astype(np.int8)
    fill = {"_FillValue": np.float32(-9999.0)}

    def var(dims, data, units, long_name, **extra):
        return (dims, data, {"units": units, "long_name": long_name, **extra})

    cell = ("time", "lat", "lon")
    per_source = ("time", "source", "lat", "lon")
    ds = xr.Dataset(
        {
            "soil_moisture": var(cell, sm, "m3 m-3", "merged volumetric soil moisture",
                                 standard_name="volume_fraction_of_condensed_water_in_soil"),
            "soil_moisture_error_variance": var(cell, on_land(rng.uniform(1e-4, 1e-3, grid.shape))[None],
                                                "m6 m-6", "error variance of merged soil moisture"),
            "merge_method": (cell, np.where(land, 1, 0)[None].astype(np.int8),
                             {"long_name": "merging method", "flag_values": np.array([0, 1, 2], dtype=np.int8),
                              "flag_meanings": "none tc_weighted single_source"}),
            "precipitation_amount": var(cell, on_land(rng.gamma(0.5, 6.0, grid.shape))[None], "kg m-2",
                                        "daily precipitation (SM2RAIN)", standard_name="precipitation_amount"),
            "error_variance": var(per_source, err, "m6 m-6", "TC error variance"),
            "correlation_with_truth": var(per_source, rho, "1", "TC correlation with the unknown truth"),
            "snr_db": var(per_source, snr, "dB", "TC signal-to-noise ratio"),
            "tc_resolved": (cell, resolved, {"long_name": "TC solution found", "flag_values": np.array([0, 1], dtype=np.int8),
                                             "flag_meanings": "unresolved resolved"}),
            "tc_sample_size": var(cell, np.where(land, 300, 0)[None].astype(np.int32), "1", "TC sample size"),
            "source_soil_moisture": var(per_source, source_sm, "m3 m-3", "input soil moisture per source"),
            "error_variance_lower": var(per_source, 0.5 * err, "m6 m-6", "lower bound of the TC error variance"),
            "error_variance_upper": var(per_source, 2.0 * err, "m6 m-6", "upper bound of the TC error variance"),
            "correlation_with_truth_lower": var(per_source, 0.8 * rho, "1", "lower bound of R"),
            "correlation_with_truth_upper": var(per_source, np.minimum(1.0, 1.1 * rho), "1", "upper bound of R"),
            "snr_db_lower": var(per_source, snr - 2.0, "dB", "lower bound of the SNR"),
            "snr_db_upper": var(per_source, snr + 2.0, "dB", "upper bound of the SNR"),
            "tc_block_length": var(cell, np.where(land, 7, 0)[None].astype(np.int32), "day", "bootstrap block length"),
            "frozen_soil": (cell, np.zeros_like(resolved), {"long_name": "frozen soil", "flag_values": np.array([0, 1], dtype=np.int8),
                                                            "flag_meanings": "not_frozen frozen_soil_or_snow"}),
            "precipitation_status": (cell, np.where(land, 0, 1).astype(np.int8)[None], {"long_name": "SM2RAIN status"}),
        },
        coords={
            "time": ("time", np.array([np.datetime64(day, "ns")]), {"standard_name": "time", "long_name": "time"}),
            "source": ("source", np.array(sources)),
            "lat": grid.lat_coord(),
            "lon": grid.lon_coord(),
        },
        attrs={
            "Conventions": "CF-1.10",
            "history": "test",
            "source": "test",
            "input_granules": "smap_20170601.nc era5_land_20170601.nc gldas_20170601.nc",
            "missing_inputs": "",
            "tc_merging_model": "models:/tc_merging/1",
            "sm2rain_model": "models:/sm2rain/1",
        },
    )
    for name, da in ds.data_vars.items():
        if np.issubdtype(da.dtype, np.floating):
            da.encoding.update(fill)
    return ds
