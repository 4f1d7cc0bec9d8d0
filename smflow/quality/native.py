"""Great Expectations suites for native granules regridded to a domain grid, and their Data Docs.

:func:`validate_native_field` checks the output of :func:`smflow.regrid.native_to_domain` for one
day: one GX suite per native product (thresholds per product family in
:data:`NATIVE_FIELD_THRESHOLDS`, value ranges from the product's ``VariableFacts``), run on a
table of one row per grid cell (and leading index), plus an xarray schema check. It reuses the
machinery of :mod:`smflow.quality.validate` (:class:`~smflow.quality.validate.ValidationOutcome`, the
process-wide GX context, the reason sentences). :func:`publish_data_docs` renders the stored
validation results as GX Data Docs and uploads them to the products bucket.

Checks (``meta["check"]`` of the expectations, as in :mod:`smflow.quality.suites`):

* ``physical_range``: each regridded variable with a known valid range inside it (SI / the
  reader's units: m3 m-3, percent, K, m);
* ``fill_fraction``: at least ``min_valid_land_cells`` land cells with a value (an all-fill
  granule fails: "there is no valid pixel over the domain"), at most ``max_missing_fraction``
  of the land cells without one;
* ``flag_consistency``: a cell none of whose source samples passes the product's
  ``quality_mask`` (``quality_fraction == 0``) has no value;
* ``domain_coverage``: no value over sea cells; coordinates inside the domain box;
* ``timestamps``: observation times (per cell, else the field's ``time``) inside the UTC day
  ``[00:00, 24:00)``; static covariates (DEMs, land cover, masks) are exempt;
* ``grid``: ``lat``/``lon`` are the grid's centres within 1e-9 deg, ``crs`` is ``grid.crs``, one
  row per cell;
* ``schema`` (xarray, not GX): dims ``(..., lat, lon)`` with allowed leading dims, float values
  (integer ``*_count``), CF ``units`` and ``standard_name`` or ``long_name``, ``_FillValue``,
  the ``regridding``/``domain``/``crs`` attributes.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smflow.catalog import canonical_name
from smflow.catalog import entries as catalog_entries
from smflow.quality.schema import SchemaProblem
from smflow.quality.validate import (
    VALIDATION_PREFIX,
    ValidationOutcome,
    _float_or_none,
    _jsonable,
    _outcome,
    _run_suite,
    as_date,
)
from smflow.quality.suites import _fmt, ephemeral_context, gx_context

if TYPE_CHECKING:  # pragma: no cover
    import great_expectations as gx
    import xarray as xr

    from smflow.config import Settings
    from smflow.domain import DomainGrid


@dataclass(frozen=True)
class NativeFieldThresholds:
    """What a regridded native field of one product family must satisfy.

    Parameters
    ----------
    family : str
        Family name (``swath``, ``sar_1km``, ...).
    products : tuple of str
        Native products (keys of ``NATIVE_PRODUCTS``) of the family.
    max_missing_fraction : float
        Largest fraction of land cells (times leading slices) without a value [1]; 1.0 = any
        partial coverage is legitimate (swaths).
    min_valid_land_cells : int
        Fewest land cells with a value [count]; 1 = an all-fill granule fails.
    timed : bool
        Observation times must lie on the UTC day (False for static covariates).
    leading_dims : tuple of str
        Dimensions allowed before ``(lat, lon)``.
    time_window_hours : (float, float)
        Allowed observation times, hours from the day's 00:00 UTC: ``[0, 24)`` for a UTC day;
        ``[-12, 12]`` for images referenced to 00:00 UTC with the nearest observation within
        12 h (ESA CCI / C3S SM).
    rationale : str
        Where the numbers come from.
    """

    family: str
    products: tuple[str, ...]
    max_missing_fraction: float
    min_valid_land_cells: int = 1
    timed: bool = True
    leading_dims: tuple[str, ...] = ("time",)
    time_window_hours: tuple[float, float] = (0.0, 24.0)
    rationale: str = ""


#: Thresholds per product family (edit these, not the suite code); which family a product
#: belongs to is said by its catalogue entry (``qc.native_family``).
NATIVE_FIELD_FAMILIES: tuple[NativeFieldThresholds, ...] = (
    NativeFieldThresholds(
        "swath", (),
        max_missing_fraction=1.0,
        rationale="one overpass covers part of a domain (ASCAT 2 x 550 km swaths, SMAP 1000 km); "
        "the daily merge combines overpasses, so only an overpass without any land value fails"),
    NativeFieldThresholds(
        "l3_daily", (),
        max_missing_fraction=0.9,
        rationale="daily L3 images have orbit gaps and retrieval masks (dense vegetation, RFI, "
        "frozen soil); more than 90 % of the land missing means the wrong day or a broken file"),
    NativeFieldThresholds(
        "cci_daily", (), max_missing_fraction=0.9, time_window_hours=(-12.0, 12.0),
        rationale="as l3_daily; the image is referenced to 00:00 UTC and holds the observation "
        "nearest to it within 12 h (t0 of the real 2016-06-06/07 files: -11.8 .. +12.0 h)"),
    NativeFieldThresholds(
        "sar_1km", (),
        max_missing_fraction=1.0,
        rationale="Sentinel-1 SSM is a daily mosaic of 250 km swaths acquired every 1.5-6 days: "
        "any partial coverage is legitimate (real Ebro days: 2017-06-01 17 %, 06-03 3 % of the "
        "land cells); a day without any pixel (2017-06-02) fails"),
    NativeFieldThresholds(
        "swi_1km", (), max_missing_fraction=0.5,
        leading_dims=("time", "characteristic_time"),
        rationale="the SWI is gap-filled by its exponential filter; masks (water, slope, "
        "sensitivity) leave about 20-30 % of the land"),
    NativeFieldThresholds(
        "model", (),
        max_missing_fraction=0.2,
        rationale="model fields cover all land; up to 20 % for coastal cells the model's land "
        "mask calls sea"),
    NativeFieldThresholds(
        "optical", (),
        max_missing_fraction=1.0,
        rationale="clouds can cover any part of a domain on a day"),
    NativeFieldThresholds(
        "precipitation", (),
        max_missing_fraction=0.2,
        rationale="gauge/radar analyses cover their land; edges of the radar composite excepted"),
    NativeFieldThresholds(
        "static", (),
        max_missing_fraction=0.05, timed=False, leading_dims=("time", "layer"),
        rationale="static covariates must cover the land of the domain (SRTM voids, coast)"),
)


def _with_products() -> tuple[NativeFieldThresholds, ...]:
    families = {f.family: [] for f in NATIVE_FIELD_FAMILIES}
    for name, e in catalog_entries().items():
        if e.native_qc_family is None:
            continue
        if e.native_qc_family not in families:
            raise ValueError(f"{e.source_file}: qc.native_family {e.native_qc_family!r} is not "
                             f"one of {sorted(families)} (smflow.quality.native."
                             "NATIVE_FIELD_FAMILIES).")
        families[e.native_qc_family].append(name)
    return tuple(replace(f, products=tuple(families[f.family])) for f in NATIVE_FIELD_FAMILIES)


#: The families with their products (a view of the catalogue's ``qc.native_family``).
NATIVE_FIELD_THRESHOLDS: tuple[NativeFieldThresholds, ...] = _with_products()

#: Thresholds by native product name.
NATIVE_THRESHOLDS_BY_PRODUCT: Mapping[str, NativeFieldThresholds] = {
    p: th for th in NATIVE_FIELD_THRESHOLDS for p in th.products}

#: Names of the checks of a native field, in reporting order.
NATIVE_CHECKS = ("schema", "physical_range", "fill_fraction", "flag_consistency",
                 "domain_coverage", "timestamps", "grid")


def native_thresholds(product: str) -> NativeFieldThresholds:
    try:
        return NATIVE_THRESHOLDS_BY_PRODUCT[canonical_name(product)]
    except KeyError:
        raise KeyError(f"No native-field thresholds for product {product!r}; set 'qc: "
                       f"native_family:' in smflow/catalog/products/{product}.yaml (families: "
                       f"{[f.family for f in NATIVE_FIELD_FAMILIES]}).") from None


def native_suite_name(product: str) -> str:
    return f"native_{product}"


def value_range(product: str, name: str) -> tuple[float, float] | None:
    """Valid range of output variable ``name`` of ``product`` in the reader's units.

    From the variable's ``valid_raw`` (scaled), else the product's documented
    ``options["valid_range"]`` for its main variable, else its physically possible range.
    """
    from smflow.readers.native.facts import get_native_product

    facts = get_native_product(product)
    try:
        var = facts.var(name)
    except KeyError:
        var = None
    if var is not None and var.valid_raw is not None:
        lo, hi = (v * var.scale + var.offset for v in var.valid_raw)
        return (min(lo, hi), max(lo, hi))
    if facts.variables and facts.variables[0].name == name and "valid_range" in facts.options:
        return tuple(float(v) for v in facts.options["valid_range"])
    if name in facts.plausible:
        return tuple(float(v) for v in facts.plausible[name])
    return None


def _main_variable(product: str, field: "xr.Dataset") -> str | None:
    from smflow.readers.native.facts import get_native_product

    for var in get_native_product(product).variables:
        if var.name in field.data_vars:
            return var.name
    floats = [n for n, da in field.data_vars.items()
              if np.issubdtype(da.dtype, np.floating) and n != "quality_fraction"]
    return str(floats[0]) if floats else None


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


def check_native_field_schema(field: "xr.Dataset", th: NativeFieldThresholds) -> list[SchemaProblem]:
    """Dims, dtypes and CF attributes of a regridded native field."""
    problems: list[SchemaProblem] = []
    for name, std, units in (("lat", "latitude", "degrees_north"),
                             ("lon", "longitude", "degrees_east")):
        if name not in field.coords or field[name].dims != (name,):
            problems.append(SchemaProblem(name, f"1-D coordinate {name}({name}) missing"))
            continue
        if field[name].attrs.get("standard_name") != std or field[name].attrs.get("units") != units:
            problems.append(SchemaProblem(name, f"needs standard_name {std!r} and units {units!r}"))
    for attr in ("regridding", "domain", "crs"):
        if attr not in field.attrs:
            problems.append(SchemaProblem("<dataset>", f"missing attribute {attr!r} (set by "
                                          "smflow.regrid.native_to_domain)"))
    if not field.data_vars:
        problems.append(SchemaProblem("<dataset>", "no data variables"))
    for name, da in field.data_vars.items():
        name = str(name)
        if da.dims[-2:] != ("lat", "lon") or not set(da.dims[:-2]) <= set(th.leading_dims):
            allowed = " or ".join(str((*lead, "lat", "lon")) for lead in
                                  ((),) + tuple((d,) for d in th.leading_dims))
            problems.append(SchemaProblem(name, f"dims {da.dims}, expected {allowed}"))
        if name.endswith("_count"):
            if not np.issubdtype(da.dtype, np.integer):
                problems.append(SchemaProblem(name, f"dtype {da.dtype}, expected an integer count"))
            continue
        if np.issubdtype(da.dtype, np.datetime64):
            continue
        if not np.issubdtype(da.dtype, np.floating):
            problems.append(SchemaProblem(name, f"dtype {da.dtype}, expected floating point "
                                          "(NaN = missing)"))
            continue
        if "units" not in da.attrs:
            problems.append(SchemaProblem(name, "missing CF attribute units"))
        if "standard_name" not in da.attrs and "long_name" not in da.attrs:
            problems.append(SchemaProblem(name, "needs CF attribute standard_name or long_name"))
        if not any(k in da.encoding or k in da.attrs for k in ("_FillValue", "missing_value")):
            problems.append(SchemaProblem(name, "float variable without _FillValue (attrs or "
                                          "encoding)"))
    return problems


# --------------------------------------------------------------------------------------------
# Table and suite
# --------------------------------------------------------------------------------------------


def _hours(times: np.ndarray, day: dt.date) -> np.ndarray:
    times = np.asarray(times).astype("datetime64[ns]")
    hours = (times - np.datetime64(day.isoformat(), "ns")) / np.timedelta64(1, "h")
    return np.where(np.isnat(times), np.nan, hours)


def _cell_times(field: "xr.Dataset", source: "xr.Dataset | None", main: str) -> np.ndarray | None:
    """Observation time of each row (main variable's shape), or None when nothing says."""
    import xarray as xr

    target = field[main]
    if "observation_time" in field.data_vars:
        return np.asarray(field["observation_time"].broadcast_like(target)
                          .transpose(*target.dims).values).ravel()
    for ds in (field, source):
        if ds is not None and "time" in ds.coords and np.issubdtype(ds["time"].dtype, np.datetime64):
            t = ds["time"]
            if t.ndim == 0 or (t.ndim == 1 and t.dims[0] in target.dims):
                return np.asarray(xr.broadcast(t, target)[0].transpose(*target.dims).values).ravel()
    return None


def native_field_table(field: "xr.Dataset", product: str, day: Any, grid: "DomainGrid", *,
                       source: "xr.Dataset | None" = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per grid cell and leading index of the main variable; also the range columns.

    Columns: ``lat``, ``lon``, ``land`` (bool), the regridded variables with a valid range (same
    dims as the main one), ``valid_land_cells`` (1 on a land cell with a main value, else 0),
    ``quality_fraction`` (if present), ``hours_from_day_start`` (if times are known),
    ``lat_error``/``lon_error`` (distance to the nearest grid centre [deg]) and ``crs``.
    """
    main = _main_variable(product, field)
    if main is None or "lat" not in field.dims or "lon" not in field.dims:
        raise ValueError(f"the field has no variable of {product} on (lat, lon) dims "
                         f"(variables {sorted(map(str, field.data_vars))}, dims {tuple(field.dims)})")
    day = as_date(day)
    target = field[main]
    lat = np.broadcast_to(field["lat"].values[:, None], (field.sizes["lat"], field.sizes["lon"]))
    lon = np.broadcast_to(field["lon"].values[None, :], lat.shape)
    n_lead = int(np.prod([target.sizes[d] for d in target.dims[:-2]], dtype=np.int64))
    on_grid = lat.shape == grid.shape
    land = grid.land_mask if on_grid else np.zeros(lat.shape, bool)
    tile = lambda a: np.tile(np.asarray(a).ravel(), n_lead)  # noqa: E731 - rows per slice
    columns: dict[str, Any] = {"lat": tile(lat), "lon": tile(lon), "land": tile(land)}
    ranged = [main] + [n for n in field.data_vars if n != main and field[n].dims == target.dims
                       and np.issubdtype(field[n].dtype, np.floating) and n != "quality_fraction"
                       and value_range(product, str(n)) is not None]
    for name in ranged:
        columns[str(name)] = np.asarray(field[name].values, dtype=np.float64).ravel()
    columns["valid_land_cells"] = (np.isfinite(columns[main]) & columns["land"]).astype(np.int64)
    if "quality_fraction" in field.data_vars:
        columns["quality_fraction"] = np.asarray(
            field["quality_fraction"].broadcast_like(target).transpose(*target.dims).values,
            dtype=np.float64).ravel()
    times = _cell_times(field, source, main)
    if times is not None:
        columns["hours_from_day_start"] = _hours(times, day)
    # On the 1-D axes, then broadcast: a (cells x grid rows) distance matrix is 3.9 GiB on the
    # global 0.25 deg grid.
    lat_error = np.min(np.abs(field["lat"].values[:, None] - grid.lat[None, :]), axis=1)
    lon_error = np.min(np.abs(field["lon"].values[:, None] - grid.lon[None, :]), axis=1)
    columns["lat_error"] = tile(np.broadcast_to(lat_error[:, None], lat.shape))
    columns["lon_error"] = tile(np.broadcast_to(lon_error[None, :], lat.shape))
    columns["crs"] = np.full(len(columns["lat"]), str(field.attrs.get("crs", "<missing>")), object)
    return pd.DataFrame(columns), [str(n) for n in ranged]


@functools.lru_cache(maxsize=64)
def _native_suite(product: str, ranges: tuple[tuple[str, float, float, str], ...],
                  grid_key: tuple, n_rows: int, has_quality: bool, has_times: bool
                  ) -> "gx.ExpectationSuite":
    gx_context()  # a suite needs an active context
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    th = native_thresholds(product)
    grid_name, crs, lon_min, lat_min, lon_max, lat_max = grid_key
    main = ranges[0][0]
    suite = gx.ExpectationSuite(name=native_suite_name(product), meta={
        "thresholds": _jsonable({k: getattr(th, k) for k in th.__dataclass_fields__}),
        "domain": grid_name})
    add = suite.add_expectation
    for name, lo, hi, units in ranges:
        add(E.ExpectColumnValuesToBeBetween(
            column=name, min_value=lo, max_value=hi,
            meta={"check": "physical_range", "what": f"values outside [{_fmt(lo)}, {_fmt(hi)}] {units}"}))
    add(E.ExpectColumnSumToBeBetween(
        column="valid_land_cells", min_value=th.min_valid_land_cells,
        meta={"check": "fill_fraction",
              "what": f"land cells with a value: there is no valid pixel over the domain "
                      f"{grid_name} (at least {th.min_valid_land_cells} needed)"
              if th.min_valid_land_cells == 1 else
              f"land cells with a value (at least {th.min_valid_land_cells} needed)"}))
    if th.max_missing_fraction < 1.0:
        add(E.ExpectColumnValuesToNotBeNull(
            column=main, mostly=1.0 - th.max_missing_fraction,
            row_condition=Column("land") == True,  # noqa: E712
            meta={"check": "fill_fraction",
                  "what": f"land cells without a value (allowed {_fmt(th.max_missing_fraction)})"}))
    if has_quality:
        add(E.ExpectColumnValuesToBeNull(
            column=main, row_condition=Column("quality_fraction") == 0,
            meta={"check": "flag_consistency",
                  "what": "cells without any source sample passing the quality flags have a value "
                          "(flags not applied)"}))
    add(E.ExpectColumnValuesToBeNull(
        column=main, row_condition=Column("land") == False,  # noqa: E712
        meta={"check": "domain_coverage", "what": "sea cells have a value (off-land cells must be NaN)"}))
    add(E.ExpectColumnValuesToBeBetween(
        column="lat", min_value=lat_min, max_value=lat_max,
        meta={"check": "domain_coverage", "what": f"latitudes outside the domain [{lat_min}, {lat_max}]"}))
    add(E.ExpectColumnValuesToBeBetween(
        column="lon", min_value=lon_min, max_value=lon_max,
        meta={"check": "domain_coverage", "what": f"longitudes outside the domain [{lon_min}, {lon_max}]"}))
    if th.timed and has_times:
        lo, hi = th.time_window_hours
        window = ("the UTC day [00:00, 24:00)" if (lo, hi) == (0.0, 24.0) else
                  f"[{_fmt(lo)}, {_fmt(hi)}] h around 00:00 UTC of the day")
        add(E.ExpectColumnValuesToBeBetween(
            column="hours_from_day_start", min_value=lo, max_value=hi, strict_max=hi == 24.0,
            meta={"check": "timestamps", "what": f"observation times outside {window}"}))
    for axis in ("lat", "lon"):
        add(E.ExpectColumnValuesToBeBetween(
            column=f"{axis}_error", min_value=0.0, max_value=1e-9,
            meta={"check": "grid", "what": f"{axis} values that are not centres of grid {grid_name} "
                  "(within 1e-9 deg)"}))
    add(E.ExpectColumnValuesToBeInSet(
        column="crs", value_set=[crs],
        meta={"check": "grid", "what": f"rows whose crs attribute is not {crs}"}))
    add(E.ExpectTableRowCountToEqual(
        value=n_rows, meta={"check": "grid", "what": f"rows; grid {grid_name} has {n_rows} cells "
                            "x leading slices"}))
    return suite


def validate_native_field(product: str, field: "xr.Dataset", day: dt.date, grid: "DomainGrid", *,
                          source: "xr.Dataset | None" = None) -> ValidationOutcome:
    """Validate one native product regridded to ``grid`` (output of ``native_to_domain``).

    Parameters
    ----------
    product : str
        Native product name (``cgls_ssm_1km``, ``ascat_l2_ssm_nc``, ...).
    field : xr.Dataset
        The regridded field of the day.
    day : date
        The UTC day the field belongs to.
    grid : DomainGrid
        The grid the field must be on.
    source : xr.Dataset, optional
        The native dataset before regridding (its ``time`` when the field carries none; its
        file name for the reason).

    Returns
    -------
    ValidationOutcome
        ``reason`` names the product, day, domain and each failed expectation; ``statistics``
        holds counts, land coverage, value range and times.
    """
    start = time.perf_counter()
    day = as_date(day)
    th = native_thresholds(product)
    source_file = (field.attrs.get("source_file") or (source.attrs.get("source_file")
                                                      if source is not None else None))
    what = f"native product {product} on {day.isoformat()} (domain {grid.name}" + (
        f", {source_file})" if source_file else ")")
    problems = check_native_field_schema(field, th)
    statistics: dict[str, Any] = {"kind": "native", "product": product, "family": th.family,
                                  "day": day.isoformat(), "domain": grid.name,
                                  "source_file": source_file}
    try:
        table, ranged = native_field_table(field, product, day, grid, source=source)
    except (ValueError, KeyError) as exc:
        problems.append(SchemaProblem("<dataset>", str(exc)))
        statistics["total_seconds"] = time.perf_counter() - start
        return _outcome(what=what, suite_name=native_suite_name(product), gx_result=None,
                        schema_problems=problems, statistics=statistics)
    if th.timed and "hours_from_day_start" not in table:
        problems.append(SchemaProblem("<dataset>", "no observation time (time coordinate or "
                                      "observation_time) to check against the day", "warning"))
    ranges = []
    for name in ranged:
        bounds = value_range(product, name)
        if bounds is not None:
            ranges.append((name, float(bounds[0]), float(bounds[1]),
                           str(field[name].attrs.get("units", ""))))
    if not ranges:  # no known range: still run the fill/grid checks on the main variable
        ranges.append((ranged[0], -np.inf, np.inf, ""))
    n_rows = grid.lat.size * grid.lon.size * int(np.prod(
        [field[ranged[0]].sizes[d] for d in field[ranged[0]].dims[:-2]], dtype=np.int64))
    suite = _native_suite(product, tuple(ranges), (grid.name, grid.crs, *grid.bounds), n_rows,
                          "quality_fraction" in table, "hours_from_day_start" in table)
    gx_result, validation_seconds = _run_suite(table, suite, asset_name=native_suite_name(product))

    main = ranged[0]
    values = table[main].to_numpy(dtype=float)
    land = table["land"].to_numpy(dtype=bool)
    valid = np.isfinite(values)
    hours = table["hours_from_day_start"].to_numpy(dtype=float) if "hours_from_day_start" in table \
        else np.array([np.nan])
    statistics.update({
        "variable": main,
        "n_rows": len(table),
        "n_land_cells": int(grid.n_land),
        "n_valid_land": int((valid & land).sum()),
        "land_coverage": float((valid & land).sum() / land.sum()) if land.any() else None,
        "value_min": _float_or_none(values[valid].min()) if valid.any() else None,
        "value_max": _float_or_none(values[valid].max()) if valid.any() else None,
        "value_mean": _float_or_none(values[valid].mean()) if valid.any() else None,
        "hours_min": _float_or_none(np.nanmin(hours)) if np.isfinite(hours).any() else None,
        "hours_max": _float_or_none(np.nanmax(hours)) if np.isfinite(hours).any() else None,
        "regridding": field.attrs.get("regridding"),
        "validation_seconds": validation_seconds,
        "total_seconds": time.perf_counter() - start,
    })
    return _outcome(what=what, suite_name=suite.name, gx_result=gx_result,
                    schema_problems=problems, statistics=statistics)


# --------------------------------------------------------------------------------------------
# Data Docs of the stored validation results
# --------------------------------------------------------------------------------------------

DATA_DOCS_PREFIX = "quality/data-docs/"
DATA_DOCS_INDEX_KEY = DATA_DOCS_PREFIX + "index.html"
DATA_DOCS_SUMMARY_KEY = DATA_DOCS_PREFIX + "summary.html"
_DATA_DOCS_SITE = "smflow_operations"


def _docs_context(base_directory: str):
    """A throw-away ephemeral GX context whose one Data Docs site writes to ``base_directory``."""
    return ephemeral_context(data_docs_sites={_DATA_DOCS_SITE: {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": base_directory},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }})


def _summary_page(documents: list[dict]) -> str:
    rows = "\n".join(
        "<tr class='{cls}'><td>{kind}</td><td>{name}</td><td>{day}</td><td>{ok}</td>"
        "<td>{reason}</td><td>{stored}</td></tr>".format(
            cls="ok" if d.get("success") else "failed", kind=html.escape(str(d.get("kind"))),
            name=html.escape(str(d.get("name"))), day=html.escape(str(d.get("day"))),
            ok="passed" if d.get("success") else "FAILED",
            reason=html.escape(str(d.get("reason"))), stored=html.escape(str(d.get("stored_at"))))
        for d in sorted(documents, key=lambda d: (str(d.get("day")), str(d.get("kind")),
                                                  str(d.get("name"))), reverse=True))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>smflow validation summary</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;"
        "vertical-align:top}tr.failed{background:#fdd}tr.ok{background:#efe}</style></head><body>"
        "<h1>smflow validation results</h1><p>Every stored result (also those whose dataset was "
        "too malformed for a GX suite to run). GX Data Docs: <a href='index.html'>index.html</a>."
        "</p><table><tr><th>kind</th><th>name</th><th>day</th><th>outcome</th><th>reason</th>"
        f"<th>stored at</th></tr>{rows}</table></body></html>")


def publish_data_docs(s3_client, settings: "Settings") -> str:
    """Render the stored validation results as GX Data Docs and upload them to S3.

    The results are the documents :func:`smflow.quality.validate.store_validation_result` keeps at
    ``s3://{store_bucket}/validation/{kind}/{name}/{YYYYMMDD}.json``; each holds the GX suite
    result (``ExpectationSuiteValidationResult.to_json_dict()``). GX 1.x builds Data Docs only
    from the validation results store of a context, so they are loaded back into the store of a
    throw-away ephemeral context (``ExpectationSuiteValidationResultSchema().load``, one
    ``ValidationResultIdentifier`` per document: suite, run ``<name>-<YYYYMMDD>``, run time the
    stored time, batch ``<kind>-<name>``), the context's ``build_data_docs()`` renders GX's own
    static site to a temporary folder (index + one page per result), and the files are uploaded.
    GX's pages need the suite result; documents without one (a dataset too malformed to
    tabulate) appear in ``summary.html``, a plain table of every stored outcome and its reason.

    :param s3_client: boto3 S3 client (``smflow.s3.client(settings)``).
    :param settings: deployment settings (``store_bucket`` to read, ``products_bucket`` to write).
    :return: the key of the site's index, ``quality/data-docs/index.html`` in the products bucket
        (stable: every publication replaces the pages; the static assets are uploaded once).
    """
    import mimetypes
    import tempfile
    from pathlib import Path

    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from smflow.s3 import ensure_bucket, list_keys

    ensure_bucket(s3_client, settings.store_bucket)
    documents: list[dict] = []
    for key in list_keys(s3_client, settings.store_bucket, VALIDATION_PREFIX + "/"):
        if key.endswith(".json"):
            body = s3_client.get_object(Bucket=settings.store_bucket, Key=key)["Body"].read()
            documents.append(json.loads(body))
    ensure_bucket(s3_client, settings.products_bucket)
    existing = set(list_keys(s3_client, settings.products_bucket, DATA_DOCS_PREFIX + "static/"))
    schema = ExpectationSuiteValidationResultSchema()
    with tempfile.TemporaryDirectory(prefix="smflow-data-docs-") as base:
        context = _docs_context(base)
        for doc in documents:
            if not doc.get("result"):
                continue
            day = as_date(doc["day"])
            stored = pd.Timestamp(doc.get("stored_at") or day.isoformat())
            stored = stored.tz_localize("UTC") if stored.tzinfo is None else stored.tz_convert("UTC")
            identifier = ValidationResultIdentifier(
                ExpectationSuiteIdentifier(doc.get("suite_name") or f"{doc['kind']}_{doc['name']}"),
                RunIdentifier(run_name=f"{doc['name']}-{day:%Y%m%d}", run_time=stored.to_pydatetime()),
                f"{doc['kind']}-{doc['name']}")
            context.validation_results_store.set(identifier, schema.load(doc["result"]))
        context.build_data_docs(site_names=[_DATA_DOCS_SITE])
        root = Path(base)
        (root / "summary.html").write_text(_summary_page(documents), encoding="utf-8")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = DATA_DOCS_PREFIX + path.relative_to(root).as_posix()
            if key in existing:  # fonts, images, styles of the GX version: uploaded once
                continue
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if content_type.startswith("text/"):
                content_type += "; charset=utf-8"
            s3_client.put_object(Bucket=settings.products_bucket, Key=key, Body=path.read_bytes(),
                                 ContentType=content_type)
    return DATA_DOCS_INDEX_KEY
