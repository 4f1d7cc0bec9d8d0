"""xarray schema checks: dimensions, dtypes and CF attributes of granules and products.

GX validates tables; the structure of the ``xr.Dataset`` itself is checked here, in plain code
(pandera's xarray support is not installed). Each check returns a list of
:class:`SchemaProblem`; ``severity="error"`` problems fail the validation, ``"warning"`` problems
are recorded with the result only.

Contracts: docs/DESIGN.md ("Decoded granule", "Daily product dataset") and the CF conventions of
/work/shared/CONVENTIONS.md (``standard_name``, ``units``, ``long_name``, ``_FillValue``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from smflow.quality.suites import PRODUCT_THRESHOLDS, ProductThresholds

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

Severity = Literal["error", "warning"]

#: Spellings accepted for volumetric soil moisture units (SI: m3 m-3).
SOIL_MOISTURE_UNITS = frozenset({"m3 m-3", "m3/m3", "m^3 m^-3", "m**3 m**-3", "m3.m-3", "cm3/cm3", "cm3 cm-3", "cm**3/cm**3"})
#: Spellings accepted for precipitation amount (kg m-2 = mm of water).
PRECIPITATION_UNITS = frozenset({"kg m-2", "kg/m2", "kg m**-2", "kg m^-2", "mm"})
#: Spellings accepted for soil-moisture error variances ((m3 m-3)^2).
ERROR_VARIANCE_UNITS = frozenset({"m6 m-6", "(m3 m-3)2", "(m3 m-3)^2", "m6/m6", "m^6 m^-6"})


@dataclass(frozen=True)
class SchemaProblem:
    """One schema problem of a dataset.

    Parameters
    ----------
    variable : str
        Variable, coordinate or ``"<dataset>"`` the problem is about.
    problem : str
        What is wrong and, where it helps, what was expected.
    severity : {"error", "warning"}
        Errors fail the validation; warnings are only recorded.
    """

    variable: str
    problem: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem}"


def errors(problems: list[SchemaProblem]) -> list[SchemaProblem]:
    """The problems of severity ``"error"``."""
    return [p for p in problems if p.severity == "error"]


def _has_fill_value(da: "xr.DataArray") -> bool:
    return "_FillValue" in da.attrs or "_FillValue" in da.encoding or "missing_value" in da.attrs


def _check_dims(ds, name: str, expected: tuple[str, ...], out: list[SchemaProblem], severity: Severity = "error") -> bool:
    if name not in ds.variables:
        return False
    dims = tuple(ds[name].dims)
    if set(dims) != set(expected):
        out.append(SchemaProblem(name, f"dims {dims}, expected {expected}", severity))
        return False
    return True


def _check_float(ds, name: str, out: list[SchemaProblem]) -> None:
    if name in ds.variables and not np.issubdtype(ds[name].dtype, np.floating):
        out.append(SchemaProblem(name, f"dtype {ds[name].dtype}, expected floating point (NaN = missing)"))


def _check_cf_attrs(
    da: "xr.DataArray",
    name: str,
    out: list[SchemaProblem],
    *,
    severity: Severity,
    standard_name: str | bool = False,
    units: frozenset[str] | bool = True,
    fill_value: bool = True,
) -> None:
    """``standard_name`` (exact value when a str), ``units`` (one of a set when given),
    ``long_name`` and, for floats, ``_FillValue``."""
    attrs = da.attrs
    if standard_name:
        if "standard_name" not in attrs:
            out.append(SchemaProblem(name, "missing CF attribute standard_name"
                                     + (f" (= {standard_name!r})" if isinstance(standard_name, str) else ""), severity))
        elif isinstance(standard_name, str) and attrs["standard_name"] != standard_name:
            out.append(SchemaProblem(name, f"standard_name {attrs['standard_name']!r}, expected {standard_name!r}", severity))
    if units:
        if "units" not in attrs:
            out.append(SchemaProblem(name, "missing CF attribute units", severity))
        elif isinstance(units, frozenset) and str(attrs["units"]).strip() not in units:
            out.append(SchemaProblem(name, f"units {attrs['units']!r}, expected one of {sorted(units)}", "error"))
    if "long_name" not in attrs:
        out.append(SchemaProblem(name, "missing CF attribute long_name", severity))
    if fill_value and np.issubdtype(da.dtype, np.floating) and not _has_fill_value(da):
        out.append(SchemaProblem(name, "float variable without _FillValue (attrs or encoding)", severity))


def _check_lat_lon(ds, out: list[SchemaProblem], severity: Severity) -> None:
    for name, std, units in (("lat", "latitude", "degrees_north"), ("lon", "longitude", "degrees_east")):
        if name not in ds.variables:
            continue
        attrs = ds[name].attrs
        if attrs.get("standard_name") != std:
            out.append(SchemaProblem(name, f"standard_name {attrs.get('standard_name')!r}, expected {std!r}", severity))
        if attrs.get("units") != units:
            out.append(SchemaProblem(name, f"units {attrs.get('units')!r}, expected {units!r}", severity))


def _check_time(ds, out: list[SchemaProblem]) -> None:
    if "time" not in ds.variables:
        return
    dtype = ds["time"].dtype
    if not np.issubdtype(dtype, np.datetime64):
        out.append(SchemaProblem("time", f"dtype {dtype}, expected datetime64 (decoded CF time, UTC)"))


def check_granule_schema(decoded: "xr.Dataset", product: str) -> list[SchemaProblem]:
    """Schema problems of a decoded granule (DESIGN.md "Decoded granule").

    Errors: dims other than ``(location, time)``; missing ``lat``/``lon``/``location_id``/``time``,
    ``soil_moisture`` or ``quality_mask``; non-float ``soil_moisture``; non-bool
    ``quality_mask``; non-datetime ``time``; ``soil_moisture`` units that are not volumetric
    (e.g. ``kg m-2`` or ``%``); ``product`` attribute naming another product.
    Warnings: missing CF attributes (``standard_name``, ``long_name``, ``units``,
    ``_FillValue``), coordinate attributes, the ``source_file`` attribute.

    Parameters
    ----------
    decoded : xr.Dataset
        Output of ``smflow.readers.read_granule(product, path)``.
    product : str
        Product the granule is expected to be.

    Returns
    -------
    list of SchemaProblem
        Empty when the granule follows the contract.
    """
    out: list[SchemaProblem] = []
    dims = set(decoded.dims)
    if dims != {"location", "time"}:
        out.append(SchemaProblem("<dataset>", f"dims {sorted(map(str, dims))}, expected ['location', 'time']"))
    for name, expected_dims in (("lat", ("location",)), ("lon", ("location",)), ("location_id", ("location",)), ("time", ("time",))):
        if name not in decoded.variables:
            out.append(SchemaProblem(name, "missing coordinate"))
        else:
            _check_dims(decoded, name, expected_dims, out)
    for name in ("soil_moisture", "quality_mask"):
        if name not in decoded.variables:
            out.append(SchemaProblem(name, "missing variable (see DESIGN.md 'Decoded granule')"))
        else:
            _check_dims(decoded, name, ("location", "time"), out)
    _check_float(decoded, "soil_moisture", out)
    _check_float(decoded, "lat", out)
    _check_float(decoded, "lon", out)
    if "quality_mask" in decoded.variables and decoded["quality_mask"].dtype != bool:
        out.append(SchemaProblem("quality_mask", f"dtype {decoded['quality_mask'].dtype}, expected bool (True = passes flags)"))
    if "location_id" in decoded.variables and not np.issubdtype(decoded["location_id"].dtype, np.integer):
        out.append(SchemaProblem("location_id", f"dtype {decoded['location_id'].dtype}, expected integer (grid point index)", "warning"))
    _check_time(decoded, out)
    if "soil_moisture" in decoded.variables:
        _check_cf_attrs(decoded["soil_moisture"], "soil_moisture", out, severity="warning",
                        standard_name=True, units=SOIL_MOISTURE_UNITS, fill_value=True)
    _check_lat_lon(decoded, out, "warning")
    attr_product = decoded.attrs.get("product")
    if attr_product is None:
        out.append(SchemaProblem("<dataset>", "missing attribute 'product'", "warning"))
    elif attr_product != product:
        out.append(SchemaProblem("<dataset>", f"attribute product={attr_product!r}, expected {product!r}"))
    if "source_file" not in decoded.attrs:
        out.append(SchemaProblem("<dataset>", "missing attribute 'source_file'", "warning"))
    return out


#: Daily product variables: expected dims, CF standard_name (str = exact, True = any), units set
#: (True = any), whether a flag variable (flag_values/flag_meanings instead of units).
_PRODUCT_VARIABLES: dict[str, dict] = {
    "soil_moisture": {"dims": ("time", "lat", "lon"), "standard_name": True, "units": SOIL_MOISTURE_UNITS},
    "soil_moisture_error_variance": {"dims": ("time", "lat", "lon"), "units": ERROR_VARIANCE_UNITS},
    "merge_method": {"dims": ("time", "lat", "lon"), "flag": True},
    "precipitation_amount": {"dims": ("time", "lat", "lon"), "standard_name": "precipitation_amount", "units": PRECIPITATION_UNITS},
    "error_variance": {"dims": ("time", "source", "lat", "lon"), "units": ERROR_VARIANCE_UNITS},
    "correlation_with_truth": {"dims": ("time", "source", "lat", "lon"), "units": True},
    "snr_db": {"dims": ("time", "source", "lat", "lon"), "units": True},
    "tc_resolved": {"dims": ("time", "lat", "lon"), "flag": True},
    "tc_sample_size": {"dims": ("time", "lat", "lon"), "units": True},
    "source_soil_moisture": {"dims": ("time", "source", "lat", "lon"), "units": SOIL_MOISTURE_UNITS},
    # moving-block bootstrap confidence intervals of the TC metrics
    "error_variance_lower": {"dims": ("time", "source", "lat", "lon"), "units": ERROR_VARIANCE_UNITS},
    "error_variance_upper": {"dims": ("time", "source", "lat", "lon"), "units": ERROR_VARIANCE_UNITS},
    "correlation_with_truth_lower": {"dims": ("time", "source", "lat", "lon"), "units": True},
    "correlation_with_truth_upper": {"dims": ("time", "source", "lat", "lon"), "units": True},
    "snr_db_lower": {"dims": ("time", "source", "lat", "lon"), "units": True},
    "snr_db_upper": {"dims": ("time", "source", "lat", "lon"), "units": True},
    "tc_block_length": {"dims": ("time", "lat", "lon"), "units": True, "count": True},
    "frozen_soil": {"dims": ("time", "lat", "lon"), "flag": True},
    "precipitation_status": {"dims": ("time", "lat", "lon"), "flag": True},
}

#: Global attributes a daily product must carry (lineage, DESIGN.md).
PRODUCT_GLOBAL_ATTRS: tuple[str, ...] = ("input_granules", "missing_inputs", "tc_merging_model", "sm2rain_model")
"""Also accepted inside a JSON ``provenance_json`` global attribute."""


def product_lineage(ds: "xr.Dataset") -> dict:
    """Lineage of a product: its global attributes, plus the keys of a ``provenance_json``
    attribute (how the daily task stages it) where the attributes lack them."""
    import json

    lineage = dict(ds.attrs)
    raw = ds.attrs.get("provenance_json")
    if raw:
        try:
            provenance = json.loads(raw)
        except (TypeError, ValueError):
            provenance = {}
        if isinstance(provenance, dict):
            for key, value in provenance.items():
                lineage.setdefault(key, value)
    return lineage


def check_product_schema(
    ds: "xr.Dataset",
    thresholds: ProductThresholds | None = None,
    *,
    cf_required: bool = False,
) -> list[SchemaProblem]:
    """Schema problems of a daily product dataset (DESIGN.md "Daily product dataset").

    Always errors: dims other than ``time=1``, ``source=3``, ``lat``/``lon`` of the grid; a
    ``source`` coordinate other than ``("smap", "era5_land", "gldas")``; missing variables or
    variables on other dims; wrong dtypes (floats; integer or bool flags); non-datetime ``time``;
    ``units`` that are present but not the contract's (e.g. ``%`` for ``soil_moisture``).

    CF metadata (missing ``units``/``long_name``; ``standard_name`` of ``soil_moisture``,
    ``precipitation_amount`` and the coordinates; ``flag_values``/``flag_meanings`` of flag
    variables; ``_FillValue`` on floats; the lineage attributes ``input_granules``,
    ``missing_inputs``, ``tc_merging_model``, ``sm2rain_model``) is an error with
    ``cf_required=True`` (a dataset about to be published) and a warning otherwise (the in-memory
    product of the daily task, which ``smflow.publish.cf`` dresses in CF metadata afterwards).
    Missing ``Conventions``/``history``/``source`` global attributes are warnings.

    ``_FillValue`` counts when it is either in ``attrs`` or in ``encoding`` (where xarray keeps it
    after decoding and where writers put it before ``to_netcdf``).
    """
    th = thresholds or PRODUCT_THRESHOLDS
    cf: Severity = "error" if cf_required else "warning"
    out: list[SchemaProblem] = []
    expected_sizes = {"time": 1, "source": len(th.sources), "lat": th.grid_lat_size, "lon": th.grid_lon_size}
    sizes = dict(ds.sizes)
    for dim, size in expected_sizes.items():
        if dim not in sizes:
            out.append(SchemaProblem("<dataset>", f"missing dimension {dim!r} (expected size {size})"))
        elif sizes[dim] != size:
            out.append(SchemaProblem("<dataset>", f"dimension {dim!r} has size {sizes[dim]}, expected {size}"))
    extra = sorted(set(map(str, sizes)) - set(expected_sizes))
    if extra:
        out.append(SchemaProblem("<dataset>", f"unexpected dimensions {extra}", "warning"))
    if "source" in ds.variables:
        values = tuple(str(v) for v in np.asarray(ds["source"].values).ravel())
        if values != tuple(th.sources):
            out.append(SchemaProblem("source", f"values {values}, expected {tuple(th.sources)} (merged triplet order)"))
    else:
        out.append(SchemaProblem("source", "missing coordinate"))
    for name in ("time", "lat", "lon"):
        if name not in ds.variables:
            out.append(SchemaProblem(name, "missing coordinate"))
    _check_time(ds, out)
    _check_float(ds, "lat", out)
    _check_float(ds, "lon", out)
    _check_lat_lon(ds, out, cf)
    if "time" in ds.variables and ds["time"].attrs.get("standard_name", "time") != "time":
        out.append(SchemaProblem("time", f"standard_name {ds['time'].attrs['standard_name']!r}, expected 'time'", cf))
    for name, spec in _PRODUCT_VARIABLES.items():
        if name not in ds.variables:
            out.append(SchemaProblem(name, "missing variable (see DESIGN.md 'Daily product dataset')"))
            continue
        _check_dims(ds, name, spec["dims"], out)
        da = ds[name]
        if spec.get("flag"):
            if da.dtype != bool and not np.issubdtype(da.dtype, np.integer):
                out.append(SchemaProblem(name, f"dtype {da.dtype}, expected an integer flag (or bool)"))
            if da.dtype != bool and not ({"flag_values", "flag_masks"} & set(da.attrs) and "flag_meanings" in da.attrs):
                out.append(SchemaProblem(name, "flag variable without flag_values/flag_meanings", cf))
            if "long_name" not in da.attrs:
                out.append(SchemaProblem(name, "missing CF attribute long_name", cf))
            continue
        if name == "tc_sample_size" or spec.get("count"):
            if not (np.issubdtype(da.dtype, np.integer) or np.issubdtype(da.dtype, np.floating)):
                out.append(SchemaProblem(name, f"dtype {da.dtype}, expected numeric"))
        else:
            _check_float(ds, name, out)
        _check_cf_attrs(da, name, out, severity=cf, standard_name=spec.get("standard_name", False),
                        units=spec.get("units", True), fill_value=True)
    lineage = product_lineage(ds)
    for attr in PRODUCT_GLOBAL_ATTRS:
        if attr not in lineage:
            out.append(SchemaProblem("<dataset>", f"missing lineage attribute {attr!r}", cf))
    for attr in ("Conventions", "history", "source"):
        if attr not in ds.attrs:
            out.append(SchemaProblem("<dataset>", f"missing global attribute {attr!r}", "warning"))
    return out


__all__ = [
    "SchemaProblem",
    "check_granule_schema",
    "check_product_schema",
    "errors",
    "product_lineage",
]
