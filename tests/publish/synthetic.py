"""A synthetic daily product dataset that follows the contract of docs/DESIGN.md."""

from __future__ import annotations

import datetime as dt

import numpy as np
import xarray as xr

SOURCES = ("smap", "era5_land", "gldas")
LAT = np.round(19.0 + 0.1 * np.arange(13), 1)
LON = np.round(-156.0 + 0.1 * np.arange(10), 1)


def land_mask() -> np.ndarray:
    """An island-shaped mask (lat, lon) roughly where the Big Island is: True = land."""
    lat2d, lon2d = np.meshgrid(LAT, LON, indexing="ij")
    return ((lat2d - 19.6) / 0.62) ** 2 + ((lon2d + 155.5) / 0.5) ** 2 <= 1.0


def daily_product(day: dt.date, *, seed: int = 0, wetter: float = 0.0) -> xr.Dataset:
    """Like ``smflow.operators.daily.compute_products`` builds it: every variable with ``time``, NaN off land
    (flags: ``merge_method`` 3 = no_data, ``tc_resolved`` 0), soil moisture 0.1-0.5 m3 m-3, rainfall
    0-50 mm, TC error variances 4e-4..4e-3 (m3 m-3)^2.
    """
    rng = np.random.default_rng(seed)
    land = land_mask()
    shape = land.shape
    nan = np.where(land, 1.0, np.nan)

    sm = np.clip(rng.uniform(0.1, 0.5, shape) + wetter, 0.1, 0.5) * nan
    parents = np.stack([np.clip(sm + rng.normal(0, 0.03, shape), 0.02, 0.6) for _ in SOURCES])
    err_var = rng.uniform(0.0004, 0.004, (3, *shape)) * nan
    resolved = land & (rng.uniform(size=shape) > 0.2)
    with np.errstate(divide="ignore", invalid="ignore"):
        sm_err = np.where(resolved, 1.0 / (1.0 / err_var).sum(axis=0), np.nan) * nan
    merge_method = np.where(land, np.where(resolved, 0, 1), 3).astype("int8")
    rain = np.where(rng.uniform(size=shape) < 0.3, 0.0, rng.gamma(1.2, 8.0, shape)).clip(0, 50) * nan
    correlation = rng.uniform(0.4, 0.95, (3, *shape)) * nan
    snr = 10 * np.log10(correlation**2 / (1 - correlation**2))
    sample = np.where(land, rng.integers(30, 365, shape), 0).astype("int32")

    time = np.array([np.datetime64(day.isoformat(), "ns")])
    grid = ("time", "lat", "lon")
    source_grid = ("time", "source", "lat", "lon")
    return xr.Dataset(
        {
            "soil_moisture": (grid, sm[None]),
            "soil_moisture_error_variance": (grid, sm_err[None]),
            "merge_method": (grid, merge_method[None]),
            "precipitation_amount": (grid, rain[None]),
            "error_variance": (source_grid, err_var[None]),
            "correlation_with_truth": (source_grid, correlation[None]),
            "snr_db": (source_grid, snr[None]),
            "tc_resolved": (grid, resolved.astype("int8")[None]),
            "tc_sample_size": (grid, sample[None]),
            "source_soil_moisture": (source_grid, (parents * nan)[None]),
            "error_variance_lower": (source_grid, 0.5 * err_var[None]),
            "error_variance_upper": (source_grid, 2.0 * err_var[None]),
            "correlation_with_truth_lower": (source_grid, 0.8 * correlation[None]),
            "correlation_with_truth_upper": (source_grid, np.minimum(1.0, 1.1 * correlation)[None]),
            "snr_db_lower": (source_grid, snr[None] - 2.0),
            "snr_db_upper": (source_grid, snr[None] + 2.0),
            "tc_block_length": (grid, np.where(land, 7, 0).astype("int32")[None]),
            "frozen_soil": (grid, np.zeros(shape, dtype="int8")[None]),
            "precipitation_status": (grid, np.where(np.isfinite(rain), 0, 1).astype("int8")[None]),
        },
        coords={"time": time, "source": list(SOURCES), "lat": LAT, "lon": LON},
    )


def provenance(day: dt.date) -> dict:
    stamp = day.strftime("%Y%m%d")
    return {
        "tc_merging_model": "models:/smflow-tc-merging/3",
        "sm2rain_model": "models:/smflow-sm2rain/2",
        "input_granules": [
            f"s3://sm-landing/{product}/{day:%Y}/{day:%m}/{product}_{stamp}.nc"
            for product in ("smap", "era5_land", "gldas")
        ],
        "missing_inputs": [],
        "sm2rain_parameters_source": "data/derived/sm2rain/big_island_parameters.json "
        "(calibrated 2015-2020 against CHIRPS)",
        "code_version": "0.1.0",
        "tc_window_days": 90,
    }
