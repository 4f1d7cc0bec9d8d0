"""Glue between the ``daily_soil_moisture`` DAG and the library.

Each function is one task: it takes and returns small JSON-able dicts (S3 keys, dates, statuses),
never arrays, so XCom stays light. Everything here is importable without Airflow.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smflow.config import Settings

if TYPE_CHECKING:
    from smflow.science.sm2rain import SM2RAINParameters

log = logging.getLogger(__name__)

#: Inputs fetched every day. ``c3s`` is the independent reference used for skill, not merged.
INPUT_PRODUCTS: tuple[str, ...] = ("smap", "era5_land", "gldas", "c3s")

#: Trailing window of the per-cell triple collocation diagnostics [days]. The SM2RAIN rainfall of
#: the day is computed over the same window of merged soil moisture, which the filtered variants
#: (SM2RAIN-ASCAT T / Tpot) need as spin-up (about 10 T).
TC_WINDOW_DAYS = 180
TC_MIN_SAMPLES = 30
#: Moving-block bootstrap of the TC diagnostics: resamples and nominal coverage of the intervals.
TC_RESAMPLES = 500
TC_CONFIDENCE = 0.95

#: Store field of the soil temperature [K] that gives SM2RAIN's frozen-soil mask.
SOIL_TEMPERATURE_FIELD = "gldas_soil_temperature"

STAGING_PREFIX = "products-staging"


def _day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def discover_granules(day: str, *, settings: Settings | None = None) -> list[dict[str, Any]]:
    """The day's granule in the landing zone for every input product (``key`` None when absent)."""
    from smflow.landing import LandingZone

    settings = settings or Settings.load()
    d = _day(day)
    found = {ref.product: ref for ref in LandingZone(settings).list_granules(d)}
    refs = []
    for product in INPUT_PRODUCTS:
        ref = found.get(product)
        refs.append(
            {
                "product": product,
                "day": d.isoformat(),
                "bucket": ref.bucket if ref else None,
                "key": ref.key if ref else None,
            }
        )
    log.info("landing zone for %s: %s", d, {r["product"]: r["key"] for r in refs})
    return refs


def ingest_granule(ref: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """Fetch, read, validate (GX) and grid one granule into the time-series store.

    A granule that cannot be read or fails its suite is quarantined with the reason and is not
    stored; the run goes on (the product then records the input as missing).
    """
    from smflow.quality.quarantine import quarantine_granule
    from smflow.quality.validate import store_validation_result, validate_granule
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.ingest import AUXILIARY_FIELDS, auxiliary_field, grid_granule
    from smflow.landing import GranuleRef, LandingZone
    from smflow.readers.granule import GranuleError, read_granule
    from smflow.store import TimeSeriesStore

    settings = settings or Settings.load()
    product, d = ref["product"], _day(ref["day"])
    result: dict[str, Any] = {"product": product, "day": d.isoformat(), "source": None}
    if not ref.get("key"):
        return {**result, "status": "missing", "reason": "no granule in the landing zone"}
    source = f"s3://{ref['bucket']}/{ref['key']}"
    result["source"] = source
    client = s3mod.client(settings)
    grid = load_domain()
    granule = GranuleRef(product=product, day=d, bucket=ref["bucket"], key=ref["key"])
    with tempfile.TemporaryDirectory() as tmp:
        path = LandingZone(settings, s3=client).fetch(granule, Path(tmp))
        try:
            decoded = read_granule(product, path)
        except GranuleError as exc:
            qkey = quarantine_granule(
                client, settings, product=product, day=d, source_bucket=ref["bucket"],
                source_key=ref["key"], outcome_or_error=exc,
            )
            log.warning("quarantined %s: %s", source, exc)
            return {**result, "status": "quarantined", "reason": str(exc), "quarantine_key": qkey}
        outcome = validate_granule(product, decoded, d, domain_bounds=grid.bounds)
        vkey = store_validation_result(client, settings, "granule", product, d, outcome)
        if not outcome.success:
            qkey = quarantine_granule(
                client, settings, product=product, day=d, source_bucket=ref["bucket"],
                source_key=ref["key"], outcome_or_error=outcome,
            )
            log.warning("quarantined %s: %s", source, outcome.reason)
            return {**result, "status": "quarantined", "reason": outcome.reason, "quarantine_key": qkey,
                    "validation_key": vkey}
        field = grid_granule(product, decoded, d, grid)
        auxiliary = {auxiliary_field(product, name): grid_granule(product, decoded, d, grid, variable=name)
                     for name in AUXILIARY_FIELDS.get(product, ()) if name in decoded}
    store = TimeSeriesStore(settings, s3=client)
    for name, aux in auxiliary.items():
        store.put(name, d, aux)
    store_key = store.put(product, d, field)
    n_valid = int(np.isfinite(field.values).sum())
    return {**result, "status": "stored", "store_key": store_key, "valid_cells": n_valid, "validation_key": vkey,
            "auxiliary_keys": sorted(store.key(name, d) for name in auxiliary)}


def _staging_key(d: date) -> str:
    return f"{STAGING_PREFIX}/{d:%Y%m%d}/smflow_daily_{d:%Y%m%d}.nc"


def compute_products(day: str, ingested: list[dict[str, Any]], *, settings: Settings | None = None) -> dict[str, Any]:
    """Merged soil moisture, its TC error, SM2RAIN rainfall and rolling TC diagnostics for one day.

    Loads ``models:/tc_merging@champion`` and ``models:/sm2rain@champion``; reads the trailing
    :data:`TC_WINDOW_DAYS` of the three parents from the store.

    * TC diagnostics: :func:`smflow.science.bootstrap.triple_collocation_ci` over the window, point
      estimates (Ming et al. 2022, Eqs. 5-10; McColl et al. 2014) with moving-block bootstrap
      intervals (:data:`TC_RESAMPLES` resamples, seeded with the day, so a re-run gives the same
      bytes).
    * Rainfall: the window's merged soil moisture as relative saturation (bounds frozen in
      training) through :func:`smflow.science.sm2rain.apply_sm2rain` with the champion's parameters
      (3-parameter, or the SM2RAIN-ASCAT filtered variants when the champion carries ``T``),
      masked where GLDAS top-layer soil temperature says frozen (:func:`frozen_soil_mask`).

    Writes the product dataset to the store's staging prefix and returns its key with the
    provenance the published files carry.
    """
    import xarray as xr

    from smflow.ml.models import PARENTS
    from smflow.ml.registry import configure, load_champion
    from smflow.ml.train import merging_parameters, sm2rain_parameters
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.science.bootstrap import triple_collocation_ci
    from smflow.science.merging import apply_tc_merging
    from smflow.science.sm2rain import apply_sm2rain, frozen_soil_mask, relative_saturation
    from smflow.store import TimeSeriesStore

    settings = configure(settings)
    d = _day(day)
    grid = load_domain()
    client = s3mod.client(settings)
    store = TimeSeriesStore(settings, s3=client)
    status = {r["product"]: r for r in ingested}
    missing = sorted(p for p, r in status.items() if r["status"] != "stored")

    merging, merging_ref = load_champion("tc_merging")
    rain_model, rain_ref = load_champion("sm2rain")

    windows = []
    for p in PARENTS:
        w = store.window(p, d, TC_WINDOW_DAYS).values.astype("float64")
        if p in missing:  # never use a stale store object for an input this run rejected
            w[-1] = np.nan
        windows.append(w)
    parents = np.stack(windows)  # (3, time, lat, lon)
    ny, nx = grid.shape
    cells = np.moveaxis(parents.reshape(3, parents.shape[1], ny * nx), -1, -2)  # (3, cells, time)

    ci = triple_collocation_ci(cells[0], cells[1], cells[2], min_samples=TC_MIN_SAMPLES,
                               n_resamples=TC_RESAMPLES, confidence=TC_CONFIDENCE, seed=d.toordinal())
    tc = ci.point

    merged = apply_tc_merging(merging_parameters(merging), cells)  # the whole window: SM2RAIN spin-up
    sm_cells = merged.soil_moisture  # (cells, time)
    rain_params = sm2rain_parameters(rain_model)
    s = relative_saturation(sm_cells, rain_model.arrays["saturation_lower"].reshape(-1)[:, None],
                            rain_model.arrays["saturation_upper"].reshape(-1)[:, None])
    temperature = store.window(SOIL_TEMPERATURE_FIELD, d, TC_WINDOW_DAYS).values.astype("float64")
    frozen = frozen_soil_mask(soil_temperature=np.moveaxis(temperature.reshape(-1, ny * nx), -1, 0))
    rain = apply_sm2rain(s, rain_params, frozen=frozen)[:, -1]

    land = grid.land_mask
    def g(a: np.ndarray) -> np.ndarray:  # (..., cells) -> (..., lat, lon), off-land NaN
        out = np.asarray(a, dtype="float64").reshape(*np.shape(a)[:-1], ny, nx)
        return np.where(land, out, np.nan)

    source_grid = ("time", "source", "lat", "lon")
    t = np.array([np.datetime64(d.isoformat(), "ns")])
    source = list(PARENTS)
    method = np.asarray(merged.method)[:, -1].reshape(ny, nx).astype("int8")
    method = np.where(land, method, np.int8(3)).astype("int8")
    variables = {
        "soil_moisture": (("time", "lat", "lon"), g(sm_cells[:, -1])[None]),
        "soil_moisture_error_variance": (("time", "lat", "lon"), g(np.asarray(merged.error_variance)[:, -1])[None]),
        "merge_method": (("time", "lat", "lon"), method[None]),
        "precipitation_amount": (("time", "lat", "lon"), g(rain)[None]),
        "frozen_soil": (("time", "lat", "lon"), np.where(land, frozen[:, -1].reshape(ny, nx), False).astype("int8")[None]),
        "error_variance": (source_grid, g(tc.error_variance)[None]),
        "correlation_with_truth": (source_grid, g(tc.correlation_with_truth)[None]),
        "snr_db": (source_grid, g(tc.snr_db)[None]),
        "tc_resolved": (("time", "lat", "lon"), np.where(land, tc.resolved.reshape(ny, nx), False).astype("int8")[None]),
        "tc_sample_size": (("time", "lat", "lon"), np.where(land, tc.sample_size.reshape(ny, nx), 0).astype("int32")[None]),
        "tc_block_length": (("time", "lat", "lon"), np.where(land, ci.block_length.reshape(ny, nx), 0).astype("int32")[None]),
        "source_soil_moisture": (source_grid, np.where(land, parents[:, -1], np.nan)[None]),
    }
    for name in ("error_variance", "correlation_with_truth", "snr_db"):
        interval = getattr(ci, name)
        variables[f"{name}_lower"] = (source_grid, g(interval.lower)[None])
        variables[f"{name}_upper"] = (source_grid, g(interval.upper)[None])
    ds = xr.Dataset(variables, coords={"time": t, "source": source, "lat": grid.lat, "lon": grid.lon})
    ds.attrs.update(tc_confidence_level=TC_CONFIDENCE, tc_bootstrap_resamples=TC_RESAMPLES,
                    tc_window_days=TC_WINDOW_DAYS)
    provenance = {
        "tc_merging_model": merging_ref.label(),
        "sm2rain_model": rain_ref.label(),
        "input_granules": sorted(r["source"] for r in ingested if r["status"] == "stored" and r.get("source")),
        "missing_inputs": [f"{p}: {status[p]['status']} ({status[p].get('reason', '')})" for p in missing],
        "sm2rain_parameters_source": str(rain_model.metadata.get("source", "")),
        "sm2rain_variant": sm2rain_variant(rain_params),
        "tc_window_days": TC_WINDOW_DAYS,
        "tc_bootstrap": f"moving-block bootstrap, {TC_RESAMPLES} resamples, {TC_CONFIDENCE:.0%} percentile intervals",
    }
    ds.attrs["provenance_json"] = json.dumps(provenance, sort_keys=True)
    key = _staging_key(d)
    buf = ds.to_netcdf(engine="h5netcdf")
    client.put_object(Bucket=settings.store_bucket, Key=key, Body=bytes(buf))
    return {"day": d.isoformat(), "bucket": settings.store_bucket, "key": key, "provenance": provenance}


def sm2rain_variant(params: "SM2RAINParameters") -> str:
    """Which SM2RAIN model a parameter set runs: 3-parameter, or the SM2RAIN-ASCAT T / Tpot filter."""
    T = np.asarray(params.T, dtype=float)
    if not np.isfinite(T).any():
        return "3-parameter (Brocca et al. 2013)"
    if np.isfinite(np.asarray(params.T_pot, dtype=float)).any():
        return "Tpot filter (SM2RAIN-ASCAT, T SWI^-Tpot), bounds frozen from calibration"
    return "T filter (SM2RAIN-ASCAT exponential filter), bounds frozen from calibration"


def _load_staged(staged: dict[str, Any], client) -> "xr.Dataset":
    import xarray as xr

    body = client.get_object(Bucket=staged["bucket"], Key=staged["key"])["Body"].read()
    return xr.load_dataset(io.BytesIO(body), engine="h5netcdf")


def validate_products(staged: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """Run the output-product suite; a failing product is quarantined and the task fails."""
    from smflow.quality.quarantine import quarantine_granule
    from smflow.quality.validate import store_validation_result, validate_product
    from smflow import s3 as s3mod

    settings = settings or Settings.load()
    client = s3mod.client(settings)
    d = _day(staged["day"])
    ds = _load_staged(staged, client)
    outcome = validate_product(ds, d)
    vkey = store_validation_result(client, settings, "product", "daily", d, outcome)
    if not outcome.success:
        qkey = quarantine_granule(client, settings, product="daily_product", day=d,
                                  source_bucket=staged["bucket"], source_key=staged["key"], outcome_or_error=outcome)
        raise ValueError(f"daily product for {d} failed its quality suite (kept at s3://{settings.store_bucket}/{qkey}): {outcome.reason}")
    return {**staged, "validation_key": vkey}


def publish_products(staged: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """Publish the validated product atomically and idempotently (CF netCDF, quicklooks, STAC)."""
    from smflow import s3 as s3mod
    from smflow.publish.publisher import Publisher

    settings = settings or Settings.load()
    client = s3mod.client(settings)
    d = _day(staged["day"])
    ds = _load_staged(staged, client)
    ds.attrs.pop("provenance_json", None)
    published = Publisher(settings, s3=client).publish_day(ds, d, staged["provenance"])
    client.delete_object(Bucket=staged["bucket"], Key=staged["key"])
    return {"day": d.isoformat(), "keys": list(published.keys), "stac_key": published.stac_key,
            "unchanged": published.unchanged}


def previous_day(day: str) -> str:
    return (_day(day) - timedelta(days=1)).isoformat()
