"""Glue of the daily pipelines whose inputs are native provider files (``products: ["inputs"]``).

One task per input and day: fetch the day's files of the product from the landing zone, read them
with :func:`smflow.readers.native.open_native`, regrid to the pipeline's domain grid
(:func:`smflow.regrid.native_to_domain`, the papers' method per product), run the product's
Great Expectations suite on the regridded field (:func:`smflow.quality.native.validate_native_field`),
keep the result, and store the field. A file that cannot be read, or a field that fails its
suite, is quarantined with the reason (the landed file is never deleted) and the run goes on;
the day's publication records the input as missing with that reason.

Then one task publishes the day's stored inputs (:mod:`smflow.publish.inputs`). Small dicts in,
small dicts out (S3 keys); everything here is importable without Airflow.
"""

from __future__ import annotations

import io
import logging
import tempfile
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from smflow.config import Settings
from smflow.dates import as_date

log = logging.getLogger(__name__)

#: Regridded input fields of a domain, one netCDF per product and day, in the store bucket.
FIELDS_PREFIX = "inputs"


def field_key(domain: str, product: str, day: date) -> str:
    """Store-bucket key of a regridded, validated input field."""
    return f"{FIELDS_PREFIX}/{domain}/{product}/{day:%Y}/{product}_{day:%Y%m%d}.nc"


def _mean_of_files(fields: list) -> Any:
    """One field from several files of the day (swath passes): NaN-aware mean per cell."""
    import xarray as xr

    if len(fields) == 1:
        return fields[0]
    stacked = xr.concat(fields, dim="granule", coords="minimal", compat="override", join="override")
    out = stacked.mean("granule", skipna=True, keep_attrs=True)
    for name in fields[0].data_vars:
        out[name].attrs = fields[0][name].attrs
    out.attrs = {**fields[0].attrs, "files_averaged": len(fields)}
    return out


def ingest_native_granule(ref: dict[str, Any], domain: str, *, settings: Settings | None = None,
                          as_fraction: bool = False) -> dict[str, Any]:
    """Read, regrid, validate and store the day's native files of one input product.

    Parameters
    ----------
    ref : dict
        From :class:`smflow.operators.sensors.GranuleSensor`: ``product``, ``day``, ``bucket``, ``key``
        (None when the granule did not arrive, with ``reason``).
    domain : str
        Name of the domain grid (``config/domains/<domain>.json``).
    as_fraction : bool
        Store a degree of saturation in percent as a fraction [1] (the scale the merging models
        of a merged pipeline take); the published input field keeps the product's units.

    Returns
    -------
    dict
        ``status`` (``stored``, ``quarantined`` or ``missing``), ``reason``, ``sources`` (URIs of
        the landed files), ``field_key`` (stored field), ``validation_key``, ``quarantine_keys``.
    """
    from smflow.quality.native import validate_native_field
    from smflow.quality.quarantine import quarantine_failure
    from smflow.quality.validate import store_validation_result
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.landing import GranuleRef, LandingZone
    from smflow.publish.inputs import main_variable, to_netcdf_bytes
    from smflow.readers.native import GranuleError, open_native
    from smflow.regrid import native_to_domain
    from smflow.store import TimeSeriesStore

    settings = settings or Settings.load()
    product, d = ref["product"], as_date(ref["day"])
    result: dict[str, Any] = {"product": product, "day": d.isoformat(), "domain": domain, "sources": []}
    if not ref.get("key"):
        return {**result, "status": "missing", "reason": ref.get("reason") or "no granule in the landing zone"}
    client = s3mod.client(settings)
    zone = LandingZone(settings, s3=client)
    grid = load_domain(domain)
    keys = zone.native_keys(product, d) or [ref["key"]]
    result["sources"] = [f"s3://{ref['bucket']}/{k}" for k in keys]
    fields, quarantined = [], []
    check_name = f"{domain}.{product}"
    quarantine = partial(quarantine_failure, client, settings, product=product, day=d, source_bucket=ref["bucket"])
    with tempfile.TemporaryDirectory(prefix="smflow-native-") as tmp:
        for key in keys:
            granule = GranuleRef(product=product, day=d, bucket=ref["bucket"], key=key)
            path = zone.fetch(granule, Path(tmp))
            try:
                source = open_native(path, product, chunks=None)
                field = native_to_domain(source, grid)
            except GranuleError as exc:
                quarantined.append(quarantine(source_key=key, outcome_or_error=exc))
                continue
            outcome = validate_native_field(product, field, d, grid, source=source)
            result["validation_key"] = store_validation_result(client, settings, "granule", check_name, d, outcome)
            if not outcome.success:
                quarantined.append(quarantine(source_key=key, outcome_or_error=outcome))
                continue
            fields.append(field)
    problems = "; ".join(q["reason"] for q in quarantined)
    result["quarantine_keys"] = [q["quarantine_key"] for q in quarantined]
    if not fields:
        return {**result, "status": "quarantined", "reason": problems}
    field = _mean_of_files(fields)
    key = field_key(domain, product, d)
    s3mod.ensure_bucket(client, settings.store_bucket)
    client.put_object(Bucket=settings.store_bucket, Key=key, Body=to_netcdf_bytes(field),
                      ContentType="application/x-netcdf")
    main = main_variable(field)
    series = field[main]
    for dim in [dim for dim in series.dims if dim not in ("lat", "lon")]:
        series = series.isel({dim: 0})
    if as_fraction and series.attrs.get("units") == "percent":
        series = (series / 100.0).assign_attrs({**series.attrs, "units": "1"}).rename(series.name)
    TimeSeriesStore(settings, s3=client, grid=grid).put(product, d, series)
    return {**result, "status": "stored", "reason": problems, "field_key": key,
            "valid_cells": int(np.isfinite(series.values).sum())}


def publish_inputs(ingested: list[dict[str, Any]], day: str, domain: str, *,
                   settings: Settings | None = None) -> dict[str, Any]:
    """Publish the day's stored inputs of a domain: CF netCDF + quicklook per input, one STAC item.

    Returns the published keys, those written by this call (empty on an unchanged re-run) and the
    inputs recorded as missing, with their reasons.
    """
    import xarray as xr

    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.publish.inputs import (
        build_input_dataset, build_inputs_item, input_item_key, input_key, render_input_quicklook,
        to_netcdf_bytes,
    )
    from smflow.publish.publisher import Publisher
    from smflow.publish.stac import to_json_bytes

    settings = settings or Settings.load()
    client = s3mod.client(settings)
    d = as_date(day)
    grid = load_domain(domain)
    publisher = Publisher(settings, s3=client)
    s3mod.ensure_bucket(client, publisher.bucket)
    missing = [f"{r['product']}: {r['status']} ({r.get('reason', '')})" for r in ingested if r["status"] != "stored"]
    keys, written, assets = [], [], []
    for r in sorted((r for r in ingested if r["status"] == "stored"), key=lambda r: r["product"]):
        body = client.get_object(Bucket=settings.store_bucket, Key=r["field_key"])["Body"].read()
        field = xr.load_dataset(io.BytesIO(body), engine="h5netcdf")
        ds = build_input_dataset(field, product=r["product"], day=d, domain=domain, lineage={
            "input_granules": r["sources"], "missing_inputs": missing, "validation": r.get("validation_key", "")})
        for extension, payload, media_type in (("nc", to_netcdf_bytes(ds), "application/netcdf"),
                                               ("png", render_input_quicklook(ds, r["product"]), "image/png")):
            key = input_key(domain, r["product"], d, extension)
            sha256, changed = publisher.place(key, payload, media_type)
            keys.append(key)
            written += [key] if changed else []
            assets.append((f"{r['product']}-{'data' if extension == 'nc' else 'quicklook'}",
                           publisher.href(key), media_type, sha256,
                           f"{r['product']} on the {domain} grid ({extension})", f"s3://{publisher.bucket}/{key}"))
    south, north = grid.lat_first - grid.resolution / 2, grid.lat_last + grid.resolution / 2
    west, east = grid.lon_first - grid.resolution / 2, grid.lon_last + grid.resolution / 2
    item_key = input_item_key(domain, d)
    item = build_inputs_item(domain, d, assets, bbox=[round(v, 6) for v in (west, south, east, north)],
                             missing=missing, self_href=publisher.href(item_key))
    _, changed = publisher.place(item_key, to_json_bytes(item), "application/geo+json")
    keys.append(item_key)
    written += [item_key] if changed else []
    return {"day": d.isoformat(), "domain": domain, "keys": keys, "written": written, "missing_inputs": missing}
