"""The daily product dataset: merged soil moisture, SM2RAIN rainfall and TC diagnostics of one day.

A library function, not Airflow glue: :func:`compute_daily_product` reads the trailing windows from
the time-series store, applies the merging champion whatever its method (TC least squares, Ming et
al. 2022; or an RF / LSTM / CNN / BMA ensemble, Zhang et al. 2022), runs SM2RAIN over the merged
window and triple collocation over the parents, and returns the dataset with its lineage. The
operator (:mod:`smflow.operators.daily`) only loads the champions and stages the result.
"""

from __future__ import annotations

import json

from datetime import date
from typing import Any

import numpy as np
import xarray as xr

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


def compute_daily_product(day: date, *, store, grid, merging, rain_model, rain_ref, tc_ref,
                          missing: dict[str, str], input_granules: list[str],
                          input_provenance: list[dict[str, Any]] | None = None,
                          reconstruction=None, parents: tuple[str, ...] | None = None,
                          window_days: int = TC_WINDOW_DAYS,
                          pipeline_name: str = "daily_soil_moisture") -> tuple[xr.Dataset, dict[str, Any]]:
    """Merged soil moisture, its uncertainty, SM2RAIN rainfall and rolling TC diagnostics for ``day``.

    Parameters
    ----------
    day : date
    store : smflow.store.TimeSeriesStore
    grid : DomainGrid
    merging : smflow.ml.registry.LoadedMerging
        ``models:/soil_moisture_merging@champion``.
    rain_model : GridParameters
        ``models:/sm2rain@champion`` (its saturation bounds were frozen on the same merged product).
    rain_ref, tc_ref : ModelRef
        Versions of the SM2RAIN champion and of the TC model whose diagnostics are published.
    missing : dict of str to str
        Inputs this run rejected or did not receive (product -> reason): their store object of the
        day is never used, and the product names them.
    input_granules : list of str
        URIs of the granules ingested for the day (lineage): the provider's URL of a fetched
        granule, else its landing-zone URI.
    input_provenance : list of dict, optional
        Per fetched granule: provider, collection, version, granule id, revision, URL, checksum
        and the landing URI (``smflow.archive.fetch.ProviderGranule.provenance``); published as
        the ``input_granule_provenance`` lineage (JSON) and on the STAC ``derived_from`` links.
    reconstruction : tuple, optional
        ``(GridParameters, ModelRef)`` of ``models:/smap_reconstruction@champion``: adds the
        seamless SMAP (:func:`smflow.ml.reconstruction.add_to_product`); ``(None, reason)``
        records why there is none.
    parents : tuple of str, optional
        Store products merged, in the order of the ``source`` dimension (default: the main
        pipeline's, :data:`smflow.ml.models.PARENTS`).
    window_days : int, default :data:`TC_WINDOW_DAYS`
        Trailing window of the TC diagnostics and the SM2RAIN rainfall [days] (the pipeline's
        ``tc_window_days``).
    pipeline_name : str
        Pipeline whose ``experimental`` policy the product carries.

    Returns
    -------
    (xr.Dataset, dict)
        The product dataset (dims ``time`` = 1, ``source``, ``member``, ``lat``, ``lon``; see
        docs/DESIGN.md) and its provenance (lineage attributes of the published files).

    Raises
    ------
    ValueError
        The store's parents or covariates do not match the merging champion's features (the
        message names the model version, expected and received columns); nothing is staged.

    Notes
    -----
    * TC diagnostics: :func:`smflow.science.bootstrap.triple_collocation_ci` over the window
      (Ming et al. 2022, Eqs. 5-10; McColl et al. 2014), moving-block bootstrap intervals seeded
      with the day, so a re-run gives the same bytes.
    * Rainfall: the window's merged soil moisture as relative saturation (bounds frozen in
      training) through :func:`smflow.science.sm2rain.apply_sm2rain`, masked where the GLDAS
      top-layer soil temperature says frozen.
    """
    from smflow.catalog import pipeline
    from smflow.ml.apply import merge_window
    from smflow.ml.features import load_static_covariates
    from smflow.ml.models import PARENTS, sm2rain_parameters
    from smflow.science.bootstrap import triple_collocation_ci
    from smflow.science.sm2rain import apply_sm2rain, frozen_soil_mask, precipitation_status, relative_saturation

    sources = tuple(parents or PARENTS)
    history = merging.ensemble.spec.window - 1 if merging.method != "tc" else 0
    n_read = window_days + history
    windows = {}
    for p in sources:
        w = store.window(p, day, n_read)
        if p in missing:  # never use a stale store object for an input this run rejected
            w = w.copy()
            w.values[-1] = np.nan
        windows[p] = w
    parents_ds = xr.Dataset(windows)
    static = None
    if merging.method != "tc" and merging.ensemble.spec.static:
        static = load_static_covariates(grid)
    merged = merge_window(merging, parents_ds, static)  # (cells, TC_WINDOW_DAYS)

    ny, nx = grid.shape
    tc_window = np.stack([windows[p].values[history:] for p in sources])  # (3, time, lat, lon)
    cells = np.moveaxis(tc_window.reshape(3, tc_window.shape[1], ny * nx), -1, -2)
    ci = triple_collocation_ci(cells[0], cells[1], cells[2], min_samples=TC_MIN_SAMPLES,
                               n_resamples=TC_RESAMPLES, confidence=TC_CONFIDENCE, seed=day.toordinal())
    tc = ci.point

    rain_params = sm2rain_parameters(rain_model)
    s = relative_saturation(merged.soil_moisture, rain_model.arrays["saturation_lower"].reshape(-1)[:, None],
                            rain_model.arrays["saturation_upper"].reshape(-1)[:, None])
    temperature = store.window(SOIL_TEMPERATURE_FIELD, day, window_days).values.astype("float64")
    frozen = frozen_soil_mask(soil_temperature=np.moveaxis(temperature.reshape(-1, ny * nx), -1, 0))
    rain = apply_sm2rain(s, rain_params, frozen=frozen)[:, -1]
    rain_status = precipitation_status(merged.soil_moisture, frozen, rain_params,
                                       rain_model.arrays["saturation_lower"].reshape(-1),
                                       rain_model.arrays["saturation_upper"].reshape(-1))

    land = grid.land_mask

    def g(a: np.ndarray) -> np.ndarray:  # (..., cells) -> (..., lat, lon), off-land NaN
        out = np.asarray(a, dtype="float64").reshape(*np.shape(a)[:-1], ny, nx)
        return np.where(land, out, np.nan)

    def cell_field(values: np.ndarray, fill, dtype) -> np.ndarray:
        return np.where(land, np.asarray(values).reshape(ny, nx), fill).astype(dtype)[None]

    grid3 = ("time", "lat", "lon")
    source_grid = ("time", "source", "lat", "lon")
    variance = merged.error_variance[:, -1]
    variables = {
        "soil_moisture": (grid3, g(merged.soil_moisture[:, -1])[None]),
        "soil_moisture_error_variance": (grid3, g(variance)[None]),
        "merge_method": (grid3, cell_field(merged.method[:, -1], np.int8(3), "int8")),
        "precipitation_amount": (grid3, g(rain)[None]),
        "frozen_soil": (grid3, cell_field(frozen[:, -1], False, "int8")),
        # off land there is no soil moisture: status 1 (the rainfall is missing there too)
        "precipitation_status": (grid3, cell_field(rain_status, np.int8(1), "int8")),
        "error_variance": (source_grid, g(tc.error_variance)[None]),
        "correlation_with_truth": (source_grid, g(tc.correlation_with_truth)[None]),
        "snr_db": (source_grid, g(tc.snr_db)[None]),
        "tc_resolved": (grid3, cell_field(tc.resolved, False, "int8")),
        "tc_sample_size": (grid3, cell_field(tc.sample_size, 0, "int32")),
        "tc_block_length": (grid3, cell_field(ci.block_length, 0, "int32")),
        "source_soil_moisture": (source_grid, np.where(land, tc_window[:, -1], np.nan)[None]),
    }
    for name in ("error_variance", "correlation_with_truth", "snr_db"):
        interval = getattr(ci, name)
        variables[f"{name}_lower"] = (source_grid, g(interval.lower)[None])
        variables[f"{name}_upper"] = (source_grid, g(interval.upper)[None])
    coords: dict[str, Any] = {"time": np.array([np.datetime64(day.isoformat(), "ns")]), "source": list(sources),
                              "lat": grid.lat, "lon": grid.lon}
    if merging.method != "tc":
        with np.errstate(invalid="ignore"):
            variables["soil_moisture_uncertainty"] = (grid3, g(np.sqrt(variance))[None])
        names = sorted(merged.members)
        variables["member_soil_moisture"] = (("time", "member", "lat", "lon"),
                                             np.stack([g(merged.members[k][:, -1]) for k in names])[None])
        coords["member"] = names
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs.update(tc_confidence_level=TC_CONFIDENCE, tc_bootstrap_resamples=TC_RESAMPLES,
                    tc_window_days=window_days)
    provenance = {
        "merging_model": merging.ref.label(),
        "merging_method": merging.method,
        "tc_merging_model": tc_ref.label(),
        "sm2rain_model": rain_ref.label(),
        "input_granules": sorted(input_granules),
        "input_granule_provenance": json.dumps(sorted(input_provenance or [], key=lambda r: (r["product"], r["url"])),
                                               sort_keys=True),
        "missing_inputs": [f"{p}: {reason}" for p, reason in sorted(missing.items())],
        "sm2rain_parameters_source": str(rain_model.metadata.get("source", "")),
        # operational / experimental: does the champion beat the no-skill baseline (train.sm2rain_skill)?
        "sm2rain_skill_status": str(rain_model.metadata.get("skill_status") or "experimental"),
        "sm2rain_skill": str(rain_model.metadata.get("skill") or "not rated against a no-skill baseline"),
        # what the publisher does with an experimental product (config/daily_pipelines.json)
        "experimental_policy": pipeline(pipeline_name).experimental,
        "sm2rain_variant": sm2rain_variant(rain_params),
        "tc_window_days": window_days,
        "tc_bootstrap": f"moving-block bootstrap, {TC_RESAMPLES} resamples, {TC_CONFIDENCE:.0%} percentile intervals",
    }
    if merging.method != "tc":
        provenance["member_models"] = merging.member_versions
        provenance["merging_features"] = ",".join(merging.ensemble.spec.columns)
    if reconstruction is not None:
        from smflow.ml.reconstruction import add_to_product

        model, recon_ref = reconstruction
        provenance.update(add_to_product(ds, day, store=store, grid=grid, model=model, ref=recon_ref, missing=missing)
                          if model is not None else {"smap_reconstruction_model": f"none: {recon_ref}"})
    return ds, provenance


def sm2rain_variant(params) -> str:
    """Which SM2RAIN model a parameter set runs: 3-parameter, or the SM2RAIN-ASCAT T / Tpot filter."""
    T = np.asarray(params.T, dtype=float)
    if not np.isfinite(T).any():
        return "3-parameter (Brocca et al. 2013)"
    if np.isfinite(np.asarray(params.T_pot, dtype=float)).any():
        return "Tpot filter (SM2RAIN-ASCAT, T SWI^-Tpot), bounds frozen from calibration"
    return "T filter (SM2RAIN-ASCAT exponential filter), bounds frozen from calibration"
