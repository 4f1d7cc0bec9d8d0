"""Daily 0.01 deg product: downscale the day's merged soil moisture, publish COG + quicklook + STAC.

:func:`downscale_field` downscales one coarse field on the domain grid with one method
(``bilinear``, or ``lstm_kriging`` / ``nn_kriging`` fitted on the day's own coarse field -- the
``sameday`` fit of :mod:`smflow.downscaling.validate`, the only setting that beat bilinear; see
``docs/downscaling.md``) and records the mass-conservation check. :func:`publish_downscaled` writes

* ``daily-1km/YYYY/MM/DD/v<version>/smflow_sm-1km_YYYYMMDD.tif`` -- Cloud-Optimized GeoTIFF
  (rioxarray, GDAL COG driver, float32, NaN nodata, EPSG:4326, north-up);
* ``daily-1km/YYYY/MM/DD/v<version>/smflow_sm-1km_YYYYMMDD.png`` -- quicklook (:func:`render_quicklook`);
* ``stac/items/smflow-daily-1km-YYYYMMDD.json`` -- STAC item with ``derived_from`` links to the
  coarse product and to every covariate file, the method / model versions and the mass
  conservation record in its properties,

each through :meth:`smflow.publish.publisher.Publisher.place` (staged, verified, idempotent). A
coarse field without any value gives no product: the day is returned as missing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from smflow.domain import DomainGrid
from smflow.catalog.pipelines import DOWNSCALING_METHODS as METHODS
from smflow.downscaling.grid import block_mean, factor_of
from smflow.publish.fine import item_key_1km, open_published_1km  # noqa: F401  (re-exported)

PRODUCT_NAME = "sm-1km"
#: Key prefix of the 1 km files (not under ``daily/``: the coarse day's version sweep owns that).
FINE_PREFIX = "daily-1km"
#: Largest |block mean - coarse| allowed for the kriging variants (exact up to rounding).
KRIGING_TOLERANCE = 1e-9


def downscale_field(coarse: np.ndarray, domain: DomainGrid, fine: DomainGrid, stack, *,
                    method: str = "lstm_kriging", seed: int = 13, lstm_epochs: int = 200
                    ) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Downscale ``coarse (n_lat, n_lon)`` to ``fine`` with ``method``.

    Parameters
    ----------
    coarse : ndarray
        The day's coarse field on ``domain`` (NaN = no value).
    domain, fine : DomainGrid
    stack : smflow.downscaling.covariates.CovariateStack
        Covariates of the domain (and day).
    method : {"bilinear", "lstm_kriging", "nn_kriging"}
    seed, lstm_epochs : int

    Returns
    -------
    (field, record)
        ``field (ny_fine, nx_fine)`` or None when the coarse field is all NaN; ``record`` holds
        ``status`` (``ok`` / ``missing``), ``method``, ``mass_conservation`` (max and mean
        |block mean - coarse|, tolerance, passed), the variogram and the regression info.
    """
    from smflow.downscaling.methods import (
        bilinear, fit_lstm_downscaler, fit_nn, predict_fine, residual_kriging,
    )

    if method not in METHODS:
        raise ValueError(f"unknown downscaling method {method!r}; use one of {METHODS}")
    coarse = np.asarray(coarse, dtype=np.float64)
    if not np.isfinite(coarse).any():
        return None, {"status": "missing", "method": method,
                      "reason": "the coarse field has no value: no fine product for the day"}
    factor = factor_of(domain, fine)
    base = bilinear(coarse, domain, fine)
    record: dict[str, Any] = {"status": "ok", "method": method, "covariates": stack.names,
                              "missing_covariates": stack.missing}
    if method == "bilinear":
        field = base
        tolerance = None
    else:
        Xc = stack.coarse_array().reshape(len(stack.names), -1).T
        y = coarse.ravel()
        ok = np.isfinite(y) & np.isfinite(Xc).all(axis=1)
        fit = (fit_nn if method == "nn_kriging" else fit_lstm_downscaler)
        kwargs = {} if method == "nn_kriging" else {"epochs": lstm_epochs}
        model = fit(Xc[ok], y[ok], feature_names=stack.names, seed=seed, **kwargs)
        result = residual_kriging(coarse, predict_fine(model, stack.coarse_array()),
                                  predict_fine(model, stack.fine_array()), domain, fine,
                                  fallback_fine=base)
        field = result.field
        tolerance = KRIGING_TOLERANCE
        record.update(variogram=result.variogram, regression={"seed": seed, **model.info},
                      correction_abs_mean=result.correction_abs_mean)
    err = np.abs(block_mean(field, factor) - coarse)
    finite = err[np.isfinite(err)]
    max_err = float(finite.max()) if finite.size else 0.0
    record["mass_conservation"] = {
        "max_abs_block_mean_minus_coarse": max_err,
        "mean_abs_block_mean_minus_coarse": float(finite.mean()) if finite.size else 0.0,
        "tolerance": tolerance, "passed": tolerance is None or max_err <= tolerance,
        "n_coarse_cells": int(finite.size)}
    if tolerance is not None and max_err > tolerance:
        raise RuntimeError(f"{method}: the fine field misses the coarse field by {max_err:.3g} "
                           f"(> {tolerance:g}); the kriging correction failed")
    return field, record


def to_cog_bytes(field: np.ndarray, fine: DomainGrid, *, units: str, day: dt.date) -> bytes:
    """A north-up float32 Cloud-Optimized GeoTIFF of ``field`` (rioxarray, GDAL COG driver)."""
    import rioxarray  # noqa: F401  - registers the .rio accessor

    da = xr.DataArray(np.asarray(field, dtype=np.float32), dims=("lat", "lon"),
                      coords={"lat": fine.lat, "lon": fine.lon}, name="soil_moisture",
                      attrs={"units": units, "long_name": "downscaled surface soil moisture",
                             "date": day.isoformat()})
    da = da.sortby("lat", ascending=False).rename({"lat": "y", "lon": "x"})
    da = da.rio.write_crs(fine.crs).rio.write_nodata(np.nan, encoded=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "product.tif"
        da.rio.to_raster(path, driver="COG", compress="DEFLATE")
        return path.read_bytes()


def build_stac_item(day: dt.date, fine: DomainGrid, assets: dict[str, dict], *,
                    coarse_href: str | None, covariate_sources: dict[str, str], record: dict,
                    models: dict[str, str]):
    """The STAC item of the day's 0.01 deg product (pystac), linking its inputs."""
    import pystac

    lon_min, lat_min, lon_max, lat_max = fine.bounds
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    item = pystac.Item(
        id=f"smflow-daily-1km-{day:%Y%m%d}",
        geometry={"type": "Polygon", "coordinates": [[[lon_min, lat_min], [lon_max, lat_min],
                                                      [lon_max, lat_max], [lon_min, lat_max],
                                                      [lon_min, lat_min]]]},
        bbox=[lon_min, lat_min, lon_max, lat_max], datetime=start,
        properties={
            "title": f"smflow downscaled soil moisture 0.01 deg {day}",
            "description": f"The merged soil moisture of {day} downscaled from "
                           f"{fine.resolution * 10:g} to {fine.resolution:g} deg with "
                           f"{record['method']} ({fine.description}).",
            "smflow:method": record["method"], "smflow:models": models,
            "smflow:covariates": record["covariates"],
            "smflow:missing_covariates": record["missing_covariates"],
            "smflow:mass_conservation": record["mass_conservation"],
            "smflow:variogram": record.get("variogram"),
            "proj:code": "EPSG:4326", "proj:shape": list(fine.shape),
        })
    from smflow.publish.stac import ALTERNATE_SCHEMA, s3_alternate

    if any(spec.get("s3_href") for spec in assets.values()):
        item.stac_extensions.append(ALTERNATE_SCHEMA)
    for key, spec in assets.items():
        extra = {"file:checksum": spec["checksum"], "file:size": spec["size"]}
        if spec.get("s3_href"):  # the public URL is the href; the s3:// URI its alternate
            extra["alternate"] = s3_alternate(spec["s3_href"])
        item.add_asset(key, pystac.Asset(href=spec["href"], media_type=spec["media_type"],
                                         roles=spec["roles"], title=spec["title"], extra_fields=extra))
    if coarse_href:
        item.add_link(pystac.Link(rel="derived_from", target=coarse_href,
                                  title="coarse merged soil moisture (0.1 deg)"))
    for name, source in covariate_sources.items():
        item.add_link(pystac.Link(rel="derived_from", target=source, title=f"covariate {name}"))
    return item


def publish_downscaled(day: dt.date, field: np.ndarray, fine: DomainGrid, record: dict, *,
                       publisher, coarse_href: str | None, covariate_sources: dict[str, str],
                       models: dict[str, str], units: str = "m3 m-3") -> dict[str, Any]:
    """Place the COG, the quicklook and the STAC item of ``day`` (see the module docstring)."""
    from smflow import s3 as s3mod
    from smflow.publish.publisher import day_version
    from smflow.publish.quicklook import render_quicklook
    from smflow.publish.stac import multihash_sha256, to_json_bytes

    da = xr.DataArray(field, dims=("lat", "lon"), coords={"lat": fine.lat, "lon": fine.lon})
    finite = field[np.isfinite(field)]
    vmin, vmax = (0.0, 0.5) if units == "m3 m-3" else (0.0, 100.0)
    files = {
        "data": (f"smflow_{PRODUCT_NAME}_{day:%Y%m%d}.tif", to_cog_bytes(field, fine, units=units, day=day),
                 "image/tiff; application=geotiff; profile=cloud-optimized", ["data"],
                 f"Downscaled soil moisture, 0.01 deg (COG) [{units}]"),
        "quicklook": (f"smflow_{PRODUCT_NAME}_{day:%Y%m%d}.png", render_quicklook(
            da, title=f"Soil moisture 0.01 deg ({record['method']}) {day}", units=units,
            cmap="YlGnBu", vmin=vmin, vmax=vmax), "image/png", ["overview", "visual"],
            "Quicklook of the downscaled soil moisture"),
    }
    # As the coarse day (smflow.publish.publisher): files under a content version, the item last.
    version = day_version({k: s3mod.sha256_hex(f[1]) for k, f in files.items()})
    files = {k: (f"{FINE_PREFIX}/{day:%Y/%m/%d}/v{version}/{f[0]}", *f[1:]) for k, f in files.items()}
    assets, written = {}, []
    for key, (s3_key, body, media_type, roles, title) in files.items():
        sha, changed = publisher.place(s3_key, body, media_type)
        written += [s3_key] if changed else []
        assets[key] = {"href": publisher.href(s3_key), "s3_href": f"s3://{publisher.bucket}/{s3_key}",
                       "media_type": media_type,
                       "roles": roles, "title": title, "checksum": multihash_sha256(sha),
                       "size": len(body)}
    item = build_stac_item(day, fine, assets, coarse_href=coarse_href,
                           covariate_sources=covariate_sources, record=record, models=models)
    stac_key = item_key_1km(day)
    item.set_self_href(publisher.href(stac_key))
    _, changed = publisher.place(stac_key, to_json_bytes(item), "application/geo+json")
    written += [stac_key] if changed else []
    return {"day": day.isoformat(), "keys": [f[0] for f in files.values()] + [stac_key],
            "written": written, "n_fine_values": int(finite.size), **record}


def run_day(day: dt.date, *, domain_name: str = "big_island", method: str = "lstm_kriging",
            settings=None, coarse: xr.DataArray | None = None) -> dict[str, Any]:
    """Downscale and publish the merged soil moisture of ``day`` (daily-task entry point).

    The coarse field is ``soil_moisture`` of the day's published ``merged-sm`` netCDF in the
    products bucket unless ``coarse`` (on the domain grid) is given. Returns the record
    (``status`` ``missing`` and nothing published when the coarse field is all NaN).
    """
    from smflow.config import Settings
    from smflow.domain import load_domain
    from smflow.downscaling.covariates import build_stack
    from smflow.downscaling.grid import fine_grid
    from smflow.publish.publisher import Publisher, published_assets

    settings = settings or Settings.load()
    publisher = Publisher(settings)
    domain = load_domain(domain_name)
    shared = settings.shared_data_dir
    if shared is None:
        return {"day": day.isoformat(), "status": "skipped",
                "reason": "no ../shared/data/real: the covariates cannot be read"}
    fine = fine_grid(domain, shared_dir=shared)
    coarse_href = None  # a field given by the caller is not the published product: no link
    if coarse is None:  # the coarse day as published (through its STAC item)
        coarse_key = published_assets(publisher.s3, publisher.bucket, day)["merged-sm"]
        coarse_href = publisher.href(coarse_key)
        body = publisher.s3.get_object(Bucket=publisher.bucket, Key=coarse_key)["Body"].read()
        coarse = xr.load_dataset(io.BytesIO(body), engine="h5netcdf")["soil_moisture"].squeeze(drop=True)
    if not domain.is_on_grid(coarse):
        raise ValueError(f"the coarse field of {day} is not on the {domain.name} grid")
    stack = build_stack(domain, fine, day, shared)
    field, record = downscale_field(coarse.transpose("lat", "lon").values, domain, fine, stack,
                                    method=method)
    if field is None:
        return {"day": day.isoformat(), **record}
    models = {"method": method, "fit": "per day on the coarse field" if method != "bilinear"
              else "-"}
    return publish_downscaled(day, field, fine, record, publisher=publisher,
                              coarse_href=coarse_href,
                              covariate_sources=stack.sources, models=models,
                              units=str(coarse.attrs.get("units", "m3 m-3")))


def main(argv: list[str] | None = None) -> int:
    """``python -m smflow.downscaling.daily --day 2018-06-01 [--method ...] [--domain ...]``."""
    import argparse

    parser = argparse.ArgumentParser(description="downscale and publish one day (0.01 deg)")
    parser.add_argument("--day", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--domain", default="big_island")
    parser.add_argument("--method", default="lstm_kriging", choices=METHODS)
    args = parser.parse_args(argv)
    out = run_day(args.day, domain_name=args.domain, method=args.method)
    print(json.dumps(out, indent=1, default=str))
    return 0 if out.get("status") in ("ok", "missing") else 1


if __name__ == "__main__":
    raise SystemExit(main())
