"""CF-1.8 netCDF files of one day's product: merged soil moisture, SM2RAIN rainfall, TC diagnostics.

The daily product dataset (``docs/DESIGN.md``, "Daily product dataset") is split into three
self-describing files that hydrologists and forecasters open with xarray, netCDF-Java/Panoply, GDAL
or CDO without reading our code:

``merged-sm``
    ``soil_moisture`` (+ ``soil_moisture_error_variance``, ``merge_method``) and the parents'
    ``source_soil_moisture``.
``sm2rain-precip``
    ``precipitation_amount``, the day's rainfall estimated from soil moisture by SM2RAIN.
``tc-diagnostics``
    per parent product: ``error_variance``, ``correlation_with_truth``, ``snr_db``; per cell:
    ``tc_resolved``, ``tc_sample_size``.

Every file carries CF coordinates with bounds, a ``crs`` grid mapping, ``time_bnds`` for the
day, ``_FillValue`` on every data variable, and global attributes with the lineage: the input
granules, the missing inputs, the model versions and the SM2RAIN parameter provenance.

Files are reproducible: :func:`to_netcdf_bytes` gives byte-identical output for the same dataset
(no wall-clock time anywhere; ``history`` names the product date and the code version), which is
what lets the publisher skip a re-run of the same day without rewriting anything.

This module is the writer: it checks the product against the contract and assembles the files.
What the files say (variable attributes, flag tables, titles, summaries, references, licence,
fill values, units of the contract) is data in :mod:`smflow.publish.cf_facts`; the public names
of both (``CONVENTIONS``, ``FILL_VALUE``, ``PRODUCT_NAMES``, ``REFERENCES``, ``SOURCES``) are
importable from here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

# One day conversion for the whole package; re-exported here under the name the publishers use.
from smflow.dates import as_date as product_day
from smflow.publish.cf_facts import (
    ACDD_ATTRS,
    CI_COMMENT,
    CI_LONG_NAME,
    CI_QUANTITIES,
    CONTRACT_UNITS,
    CONVENTIONS,
    CRS_ATTRS,
    FILL_VALUE,
    FROZEN_SOIL_FLAGS,
    GLOBAL_COMMENT,
    GRID,
    INSTITUTION,
    INT8_FILL,
    INT32_FILL,
    KEYWORDS,
    LICENSE,
    MEMBER_ATTRS,
    MEMBER_GRID,
    ML_COMMENTS,
    PIPELINE,
    PRODUCT_NAMES,
    QUALITY_VARIABLES,
    REFERENCES,
    REQUIRED_PROVENANCE,
    SMAP_RECONSTRUCTION_ATTRS,
    SMAP_SOURCE_FLAGS,
    SOURCE_GRID,
    SOURCES,
    SUMMARIES,
    TC_RESOLVED_FLAGS,
    TITLES,
    UNIT_SYNONYMS,
    VARIABLE_ATTRS,
)

__all__ = [
    "CONVENTIONS",
    "FILL_VALUE",
    "PRODUCT_NAMES",
    "REFERENCES",
    "SOURCES",
    "build_product_datasets",
    "code_version",
    "product_day",
    "resolve_provenance",
    "to_netcdf_bytes",
]



def code_version() -> str:
    """Version of the installed ``smflow`` distribution ("unknown" when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smflow")
    except PackageNotFoundError:  # pragma: no cover - only in an uninstalled checkout
        return "unknown"


def build_product_datasets(
    product: xr.Dataset,
    day: dt.date | str,
    *,
    provenance: Mapping[str, Any],
) -> dict[str, xr.Dataset]:
    """Split one day's product dataset into the three CF-1.8 datasets that are published.

    Parameters
    ----------
    product : xr.Dataset
        The daily product dataset of docs/DESIGN.md: dims ``time`` (1), ``source`` (3), ``lat``,
        ``lon``; variables ``soil_moisture`` [m3 m-3], ``soil_moisture_error_variance`` [m6 m-6],
        ``merge_method`` (flag), ``precipitation_amount`` [kg m-2, daily sum],
        ``error_variance`` [m6 m-6], ``correlation_with_truth`` [1], ``snr_db`` [dB],
        ``tc_resolved`` (bool), ``tc_sample_size`` (count), ``source_soil_moisture`` [m3 m-3].
        Variables without ``time`` (e.g. TC diagnostics of a trailing window) are given the
        day's ``time``. NaN marks off-land cells and cells without a value.
    day : datetime.date or str
        The product day (UTC); the files cover ``[day 00:00, day+1 00:00)``.
    provenance : mapping
        Lineage, written to the global attributes: ``tc_merging_model``, ``sm2rain_model``
        (model URIs/versions), ``input_granules`` (list of URIs), ``missing_inputs`` (list),
        ``sm2rain_parameters_source``, optional ``code_version`` (default: installed smflow).
        Keys missing here are taken from ``product.attrs`` if present there.

    Returns
    -------
    dict of str to xr.Dataset
        ``{"merged-sm": ..., "sm2rain-precip": ..., "tc-diagnostics": ...}``; each dataset has its
        netCDF encoding (float32, zlib, ``_FillValue``) set, ready for :func:`to_netcdf_bytes`.

    Raises
    ------
    ValueError
        If a variable or dimension of the contract is missing, a variable is in other units than
        the contract's, ``merge_method`` holds values outside its ``flag_values``, the product
        has more than one time step or one that is not ``day``, or provenance is incomplete.
    """
    day = product_day(day)
    lineage = resolve_provenance(product, provenance)
    product = _conform(product, day)

    common = _coordinates(product, day)
    merged = _merged_soil_moisture(product, str(lineage.get("merging_method", "tc")))
    precip = _sm2rain_precipitation(product)
    diagnostics = _tc_diagnostics(product)

    out: dict[str, xr.Dataset] = {}
    for name, (variables, with_source, depth) in {
        "merged-sm": (merged, True, True),
        "sm2rain-precip": (precip, False, False),
        "tc-diagnostics": (diagnostics, True, True),
    }.items():
        coords = _select_coords(common, with_source, depth)
        if name == "merged-sm" and "member_soil_moisture" in variables:
            coords = {**coords, "member": xr.Variable(("member",), [str(m) for m in product["member"].values],
                                                      dict(MEMBER_ATTRS))}
        ds = xr.Dataset(variables, coords=coords)
        for bounds_name, bounds in _bounds(common, depth).items():
            ds[bounds_name] = bounds
        ds["crs"] = _crs()
        for var in variables:  # ACDD-1.3: what each data variable is
            ds[var].attrs["coverage_content_type"] = (
                "qualityInformation" if var in QUALITY_VARIABLES else "modelResult")
        ds.attrs = _global_attrs(name, day, lineage, common, product.attrs.get("domain"))
        _set_encoding(ds)
        out[name] = ds
    return out


def to_netcdf_bytes(ds: xr.Dataset) -> bytes:
    """Serialise ``ds`` to netCDF-4 (HDF5) bytes, byte-identical for the same dataset.

    Uses the netCDF4 engine (netCDF-C): it creates HDF5 objects without modification times, so
    two writes of the same dataset, also in different processes, give the same bytes; h5netcdf
    (h5py) output was found to differ between writes. The file goes through a temporary file
    because netCDF-C's in-memory mode pads the image to its initial buffer size.

    Variables without an explicit encoding get the publishing default: float32, zlib level 4
    with shuffle, ``_FillValue`` -9999 on data variables, none on coordinates and bounds.
    """
    ds = ds.copy(deep=False)
    _set_encoding(ds, only_missing=True)
    fd, path = tempfile.mkstemp(suffix=".nc", prefix="smflow-publish-")
    os.close(fd)
    try:
        ds.to_netcdf(path, engine="netcdf4", format="NETCDF4")
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


# --------------------------------------------------------------------------- lineage / checks


def resolve_provenance(product: xr.Dataset, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The lineage of a day: ``provenance`` over ``product.attrs``, checked and normalised.

    ``input_granules`` and ``missing_inputs`` become lists of str (a str is read one entry per
    line, as the netCDF attributes store them); ``code_version`` defaults to the installed smflow.

    Raises
    ------
    ValueError
        If a required key is missing from both.
    """
    lineage = {key: product.attrs[key] for key in REQUIRED_PROVENANCE if key in product.attrs}
    lineage.update(provenance)
    missing = [key for key in REQUIRED_PROVENANCE if key not in lineage]
    if missing:
        raise ValueError(
            f"provenance is missing {missing}; pass them in `provenance=` (e.g. "
            "{'missing_inputs': []} when every input arrived) so the files keep their lineage"
        )
    lineage["input_granules"] = _as_list(lineage["input_granules"], "input_granules")
    lineage["missing_inputs"] = _as_list(lineage["missing_inputs"], "missing_inputs")
    lineage.setdefault("code_version", code_version())
    return lineage


def _as_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # as written to the netCDF attributes: one entry per line
        return [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, Sequence | np.ndarray):
        return [str(item) for item in value]
    raise ValueError(f"provenance[{key!r}] must be a list of strings, got {type(value).__name__}")


def _attr_text(value: Any) -> str:
    """A provenance value as one attribute string (mappings as sorted JSON, stable across runs)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Sequence):
        return " ".join(str(item) for item in value)
    return str(value)


def _conform(product: xr.Dataset, day: dt.date) -> xr.Dataset:
    """Check the contract; give every variable the time dim; sources in the canonical order."""
    required = (
        "soil_moisture",
        "soil_moisture_error_variance",
        "merge_method",
        "precipitation_amount",
        "error_variance",
        "correlation_with_truth",
        "snr_db",
        "tc_resolved",
        "tc_sample_size",
        "source_soil_moisture",
    )
    missing = [name for name in required if name not in product.variables]
    if missing:
        raise ValueError(
            f"product dataset lacks {missing}; the daily product contract (docs/DESIGN.md) "
            f"needs all of {list(required)}"
        )
    for dim in ("source", "lat", "lon"):
        if dim not in product.dims:
            raise ValueError(f"product dataset lacks dimension {dim!r} (has {list(product.dims)})")
    for name, expected in CONTRACT_UNITS.items():
        units = str(product[name].attrs.get("units", expected)).strip()
        if units not in UNIT_SYNONYMS[expected]:
            raise ValueError(
                f"{name} is in {units!r}, the contract says {expected!r}: convert it before "
                "publishing (publishing never converts units silently)"
            )

    sources = [str(s) for s in product["source"].values]
    # The main domain's triplet is fixed; another domain's pipeline merges its own parents.
    expected = list(SOURCES) if str(product.attrs.get("domain") or "big_island") == "big_island" else sources
    if sorted(sources) != sorted(expected):
        raise ValueError(f"source coordinate is {sources}, expected {expected}")
    product = product.sel(source=expected).sortby(["lat", "lon"])

    if "time" in product.dims:
        if product.sizes["time"] != 1:
            raise ValueError(
                f"product dataset has {product.sizes['time']} time steps; publish one day at a "
                "time (select it with `product.sel(time=day)`)"
            )
        stamp = pd.Timestamp(product["time"].values[0])
        if stamp.date() != day:
            raise ValueError(f"product time {stamp.date()} does not match the day {day}")
        product = product.isel(time=0, drop=True)
    return product


# --------------------------------------------------------------------------- coordinates


def _regular_bounds(centres: np.ndarray, name: str) -> np.ndarray:
    steps = np.diff(centres)
    if centres.size < 2 or not np.allclose(steps, steps[0], rtol=0, atol=1e-6) or steps[0] <= 0:
        raise ValueError(f"{name} must be a regular, increasing grid (got {centres.tolist()})")
    half = steps[0] / 2.0
    return np.round(np.stack([centres - half, centres + half], axis=1), 6)


def _coordinates(product: xr.Dataset, day: dt.date) -> dict[str, Any]:
    lat = np.round(product["lat"].values.astype("f8"), 6)
    lon = np.round(product["lon"].values.astype("f8"), 6)
    start = np.datetime64(day.isoformat(), "ns")
    return {
        "time": xr.Variable(
            "time",
            np.array([start]),
            {"standard_name": "time", "long_name": "time", "axis": "T", "bounds": "time_bnds"},
        ),
        "time_bnds": xr.Variable(
            ("time", "nv"), np.array([[start, start + np.timedelta64(1, "D")]])
        ),
        "lat": xr.Variable(
            "lat",
            lat,
            {
                "standard_name": "latitude",
                "long_name": "latitude of the grid-cell centre",
                "units": "degrees_north",
                "axis": "Y",
                "bounds": "lat_bnds",
            },
        ),
        "lat_bnds": xr.Variable(("lat", "nv"), _regular_bounds(lat, "lat"), {"units": "degrees_north"}),
        "lon": xr.Variable(
            "lon",
            lon,
            {
                "standard_name": "longitude",
                "long_name": "longitude of the grid-cell centre",
                "units": "degrees_east",
                "axis": "X",
                "bounds": "lon_bnds",
            },
        ),
        "lon_bnds": xr.Variable(("lon", "nv"), _regular_bounds(lon, "lon"), {"units": "degrees_east"}),
        "source": xr.Variable(
            "source",
            np.array([str(s) for s in product["source"].values], dtype=object),
            {
                "long_name": "parent soil-moisture product",
                "comment": "smap: SMAP L3 radiometer v9 (AM+PM); era5_land: ERA5-Land swvl1 "
                "(0-7 cm); gldas: GLDAS Noah 2.1 SoilMoi0_10cm (0-10 cm)"
                if [str(s) for s in product["source"].values] == list(SOURCES) else
                "ESA CCI SM v05.2 ACTIVE (degree of saturation, fraction) and PASSIVE (m3 m-3), GLDAS Noah "
                "2.1 SoilMoi0_10cm (0-10 cm); TC statistics of each in its own units",
            },
        ),
        "depth": xr.Variable(
            (),
            np.float64(0.05),
            {
                "standard_name": "depth",
                "long_name": "nominal depth of the surface soil layer",
                "units": "m",
                "positive": "down",
                "axis": "Z",
                "bounds": "depth_bnds",
                "comment": "nominal 0-5 cm (SMAP sensing depth); the parents represent 0-5 cm "
                "(SMAP), 0-7 cm (ERA5-Land layer 1) and 0-10 cm (GLDAS Noah)",
            },
        ),
        "depth_bnds": xr.Variable("nv", np.array([0.0, 0.05]), {"units": "m"}),
    }


def _select_coords(common: Mapping[str, Any], with_source: bool, depth: bool) -> dict[str, Any]:
    names = ["time", "lat", "lon"] + (["source"] if with_source else []) + (["depth"] if depth else [])
    return {name: common[name] for name in names}


def _bounds(common: Mapping[str, Any], depth: bool) -> dict[str, Any]:
    names = ["time_bnds", "lat_bnds", "lon_bnds"] + (["depth_bnds"] if depth else [])
    return {name: common[name] for name in names}


def _crs() -> xr.Variable:
    return xr.Variable((), np.int32(0), dict(CRS_ATTRS))


# --------------------------------------------------------------------------- variables

def _float_variable(
    data: xr.DataArray, dims: tuple[str, ...], attrs: Mapping[str, Any]
) -> xr.Variable:
    values = data.transpose(*[d for d in dims if d != "time"]).values.astype("f4")
    return xr.Variable(dims, values[np.newaxis, ...], {**attrs, "grid_mapping": "crs"})


def _flag_variable(
    data: xr.DataArray,
    dims: tuple[str, ...],
    flags: Mapping[int, str],
    attrs: Mapping[str, Any],
    name: str,
) -> xr.Variable:
    raw = data.transpose(*[d for d in dims if d != "time"]).values
    if raw.dtype.kind == "b":
        raw = raw.astype("i1")
    missing = ~np.isfinite(raw.astype("f8"))
    values = np.where(missing, INT8_FILL, np.nan_to_num(raw.astype("f8"), nan=-1)).astype("i1")
    unknown = sorted(set(np.unique(values[~missing]).tolist()) - set(flags))
    if unknown:
        raise ValueError(
            f"{name} holds values {unknown} that are not among its flag_values {sorted(flags)}; "
            f"give {name} `flag_values`/`flag_meanings` attributes that describe them"
        )
    return xr.Variable(
        dims,
        values[np.newaxis, ...],
        {
            **attrs,
            "flag_values": np.array(sorted(flags), dtype="i1"),
            "flag_meanings": " ".join(flags[k] for k in sorted(flags)),
            "grid_mapping": "crs",
        },
    )


def _product_flags(data: xr.DataArray, default: Mapping[int, str]) -> dict[int, str]:
    values = data.attrs.get("flag_values")
    meanings = data.attrs.get("flag_meanings")
    if values is None or meanings is None:
        return dict(default)
    values = np.atleast_1d(values).astype(int).tolist()
    meanings = str(meanings).split()
    if len(values) != len(meanings):
        raise ValueError(f"{data.name}: {len(values)} flag_values but {len(meanings)} flag_meanings")
    return dict(zip(values, meanings, strict=True))


def _merge_method_flags() -> dict[int, str]:
    """``merge_method`` flags of the merging code (the one definition, in science.merging)."""
    from smflow.science.merging import MERGE_METHOD_FLAG_MEANINGS, MERGE_METHOD_FLAG_VALUES

    return dict(zip(MERGE_METHOD_FLAG_VALUES.tolist(), MERGE_METHOD_FLAG_MEANINGS.split(), strict=True))


def _merged_soil_moisture(product: xr.Dataset, method: str = "tc") -> dict[str, xr.Variable]:
    flags = _product_flags(product["merge_method"], _merge_method_flags())

    def attrs(name: str) -> dict[str, Any]:
        facts = VARIABLE_ATTRS[name]
        return {**facts, "comment": ML_COMMENTS[name]} if method != "tc" and name in ML_COMMENTS else dict(facts)

    out = {
        "soil_moisture": _float_variable(product["soil_moisture"], GRID, attrs("soil_moisture")),
        "soil_moisture_error_variance": _float_variable(
            product["soil_moisture_error_variance"], GRID, attrs("soil_moisture_error_variance")),
        "merge_method": _flag_variable(product["merge_method"], GRID, flags, attrs("merge_method"), "merge_method"),
        "source_soil_moisture": _float_variable(
            product["source_soil_moisture"], SOURCE_GRID, attrs("source_soil_moisture")),
    }
    if "soil_moisture_uncertainty" in product:
        out["soil_moisture_uncertainty"] = _float_variable(
            product["soil_moisture_uncertainty"], GRID, attrs("soil_moisture_uncertainty"))
    if "member_soil_moisture" in product:
        out["member_soil_moisture"] = _float_variable(
            product["member_soil_moisture"], MEMBER_GRID, attrs("member_soil_moisture"))
    if "smap_reconstructed" in product:
        out.update(_smap_reconstruction(product))
    return out


def _smap_reconstruction(product: xr.Dataset) -> dict[str, xr.Variable]:
    """Seamless SMAP (Wang & Xu 2021 ANN reconstruction), its uncertainty and its ``smap_source`` flag."""
    def attrs(name: str) -> dict[str, Any]:
        return {**SMAP_RECONSTRUCTION_ATTRS[name], **{k: v for k, v in product[name].attrs.items()
                                          if k in ("predictors", "model")}}

    flags = _product_flags(product["smap_source"], SMAP_SOURCE_FLAGS)
    return {
        "smap_reconstructed": _float_variable(product["smap_reconstructed"], GRID, attrs("smap_reconstructed")),
        "smap_reconstructed_uncertainty": _float_variable(
            product["smap_reconstructed_uncertainty"], GRID, attrs("smap_reconstructed_uncertainty")),
        "smap_source": _flag_variable(product["smap_source"], GRID, flags, attrs("smap_source"), "smap_source"),
    }


def _sm2rain_precipitation(product: xr.Dataset) -> dict[str, xr.Variable]:
    out = {
        "precipitation_amount": _float_variable(
            product["precipitation_amount"], GRID, VARIABLE_ATTRS["precipitation_amount"]),
    }
    ancillary = []
    if "precipitation_status" in product:
        from smflow.science.sm2rain import PRECIPITATION_STATUS_FLAGS

        ancillary.append("precipitation_status")
        out["precipitation_status"] = _flag_variable(
            product["precipitation_status"], GRID, PRECIPITATION_STATUS_FLAGS, VARIABLE_ATTRS["precipitation_status"],
            "precipitation_status")
    if "frozen_soil" in product:
        ancillary.append("frozen_soil")
        out["frozen_soil"] = _flag_variable(
            product["frozen_soil"], GRID, FROZEN_SOIL_FLAGS, VARIABLE_ATTRS["frozen_soil"], "frozen_soil")
    if ancillary:
        out["precipitation_amount"].attrs["ancillary_variables"] = " ".join(ancillary)
    return out


def _confidence_intervals(product: xr.Dataset) -> dict[str, xr.Variable]:
    """``<metric>_lower`` / ``_upper``: moving-block bootstrap intervals of the TC metrics."""
    level = float(product.attrs.get("tc_confidence_level", 0.95))
    resamples = product.attrs.get("tc_bootstrap_resamples", "")
    out: dict[str, xr.Variable] = {}
    for name, (what, units) in CI_QUANTITIES.items():
        for side in ("lower", "upper"):
            key = f"{name}_{side}"
            if key not in product:
                continue
            out[key] = _float_variable(
                product[key],
                SOURCE_GRID,
                {
                    "long_name": CI_LONG_NAME.format(side=side, level=level, what=what),
                    "units": units,
                    "comment": CI_COMMENT.format(resamples=resamples),
                },
            )
    if "tc_block_length" in product:
        out["tc_block_length"] = _count_variable(product["tc_block_length"], VARIABLE_ATTRS["tc_block_length"])
    return out


def _count_variable(data: xr.DataArray, attrs: Mapping[str, Any]) -> xr.Variable:
    """A per-cell count as int32 on (time, lat, lon), missing values as the int32 fill."""
    counts = data.transpose("lat", "lon").values.astype("f8")
    values = np.where(np.isfinite(counts), np.nan_to_num(counts), INT32_FILL).astype("i4")
    return xr.Variable(GRID, values[np.newaxis, ...], dict(attrs))


def _tc_diagnostics(product: xr.Dataset) -> dict[str, xr.Variable]:
    intervals = _confidence_intervals(product)
    out = {
        name: _float_variable(product[name], SOURCE_GRID, VARIABLE_ATTRS[name])
        for name in ("error_variance", "correlation_with_truth", "snr_db")
    }
    out["tc_resolved"] = _flag_variable(
        product["tc_resolved"], GRID, TC_RESOLVED_FLAGS, VARIABLE_ATTRS["tc_resolved"], "tc_resolved")
    out["tc_sample_size"] = _count_variable(product["tc_sample_size"], VARIABLE_ATTRS["tc_sample_size"])
    for name in CI_QUANTITIES:
        bounds = [k for k in (f"{name}_lower", f"{name}_upper") if k in intervals]
        if bounds:
            out[name].attrs["ancillary_variables"] = " ".join(bounds)
    return {**out, **intervals}


# --------------------------------------------------------------------------- attributes


def _global_attrs(
    name: str,
    day: dt.date,
    lineage: Mapping[str, Any],
    common: Mapping[str, Any],
    domain: str | None,
) -> dict[str, Any]:
    version = str(lineage["code_version"])
    stamp = day.strftime("%Y%m%d")
    # Extent of the cells (edges), not of the centres.
    lat_bnds, lon_bnds = common["lat_bnds"].values, common["lon_bnds"].values
    lat_min, lat_max = float(lat_bnds.min()), float(lat_bnds.max())
    lon_min, lon_max = float(lon_bnds.min()), float(lon_bnds.max())
    # Another domain's pipeline names its own parents in the lineage (``merged_parents``).
    parents = _attr_text(lineage.get("merged_parents") or "SMAP L3 radiometer v9 (SPL3SMP), ERA5-Land swvl1, GLDAS Noah 2.1")
    sources = {
        "merged-sm": f"{parents}; merged "
        f"with merging model {_attr_text(lineage.get('merging_model', lineage['tc_merging_model']))}",
        "sm2rain-precip": f"merged soil moisture (TC merging model "
        f"{_attr_text(lineage['tc_merging_model'])}) through SM2RAIN model "
        f"{_attr_text(lineage['sm2rain_model'])}",
        "tc-diagnostics": f"{parents}; triple "
        f"collocation of TC merging model {_attr_text(lineage['tc_merging_model'])}",
    }
    attrs: dict[str, Any] = {
        "Conventions": CONVENTIONS,
        "title": TITLES[name],
        "summary": SUMMARIES[name],
        "institution": INSTITUTION,
        "source": sources[name],
        "history": f"{day.isoformat()}: smflow {version} {PIPELINE} ({name})",
        "references": "\n".join(REFERENCES),
        "comment": GLOBAL_COMMENT,
        "license": LICENSE,
        "id": f"smflow_{name}_{stamp}",
        "product_name": name,
        "product_date": day.isoformat(),
        "time_coverage_start": f"{day.isoformat()}T00:00:00Z",
        "time_coverage_end": f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00Z",
        "time_coverage_resolution": "P1D",
        "keywords": KEYWORDS[name],
        **ACDD_ATTRS,
        "geospatial_bounds": (f"POLYGON(({lon_min} {lat_min}, {lon_max} {lat_min}, {lon_max} {lat_max}, "
                              f"{lon_min} {lat_max}, {lon_min} {lat_min}))"),
        "geospatial_lat_min": lat_min,
        "geospatial_lat_max": lat_max,
        "geospatial_lon_min": lon_min,
        "geospatial_lon_max": lon_max,
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_units": "degrees_east",
        "geospatial_lat_resolution": f"{abs(lat_bnds[0, 1] - lat_bnds[0, 0]):g} degree",
        "geospatial_lon_resolution": f"{abs(lon_bnds[0, 1] - lon_bnds[0, 0]):g} degree",
        "domain": str(domain or "big_island"),
        # One entry per line: granule URIs have no blanks, missing-input reasons do.
        "input_granules": "\n".join(lineage["input_granules"]),
        "missing_inputs": "\n".join(lineage["missing_inputs"]),
        "tc_merging_model": _attr_text(lineage["tc_merging_model"]),
        "sm2rain_model": _attr_text(lineage["sm2rain_model"]),
        "sm2rain_parameters_source": _attr_text(lineage["sm2rain_parameters_source"]),
        "code_version": version,
    }
    if name == "sm2rain-precip" and lineage.get("sm2rain_skill_status") == "experimental":
        attrs["title"] = f"EXPERIMENTAL: {attrs['title']}"
        attrs["product_status"] = "experimental"
        attrs["product_status_reason"] = _attr_text(lineage.get("sm2rain_skill", ""))
    else:
        attrs["product_status"] = "operational"
    for key, value in sorted(lineage.items()):  # further lineage, e.g. tc_window_days
        attrs.setdefault(key, _attr_value(value))
    return attrs


def _attr_value(value: Any) -> Any:
    """Extra provenance (e.g. ``tc_window_days``) as a netCDF attribute: numbers stay numbers."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | np.integer | np.floating):
        return value
    return _attr_text(value)


# --------------------------------------------------------------------------- encoding


def _set_encoding(ds: xr.Dataset, *, only_missing: bool = False) -> None:
    """float32 + zlib + _FillValue on data; no fill on coordinates, bounds, grid mapping.

    With ``only_missing``, variables that already have an encoding keep it.
    """
    bounds = {str(ds[name].attrs["bounds"]) for name in ds.variables if "bounds" in ds[name].attrs}
    scalar_coords = " ".join(str(name) for name in ds.coords if ds[name].ndim == 0) or None
    time_like = {"time", str(ds["time"].attrs.get("bounds", "time_bnds"))} if "time" in ds else set()
    for name in ds.variables:
        var = ds[name]
        if only_missing and var.encoding:
            continue
        is_data = name in ds.data_vars and name not in bounds and name != "crs"
        encoding: dict[str, Any]
        if name in time_like:
            encoding = {
                "units": "days since 1970-01-01 00:00:00",
                "calendar": "standard",
                "dtype": "f8",
                "_FillValue": None,
            }
        elif is_data and var.dtype.kind == "M":  # e.g. observation_time of a regridded input, NaT where none
            encoding = {"units": "seconds since 1970-01-01 00:00:00", "calendar": "standard", "dtype": "f8",
                        "_FillValue": float(FILL_VALUE), "zlib": True, "complevel": 4, "shuffle": True}
        elif not is_data:
            encoding = {"_FillValue": None}
            if var.dtype.kind in "OU":
                encoding["dtype"] = str
        elif var.dtype.kind == "f":
            encoding = {"dtype": "f4", "_FillValue": FILL_VALUE, "zlib": True, "complevel": 4,
                        "shuffle": True}
        else:
            fill = INT8_FILL if var.dtype.itemsize == 1 else INT32_FILL
            encoding = {"dtype": var.dtype, "_FillValue": fill.astype(var.dtype), "zlib": True,
                        "complevel": 4, "shuffle": True}
        if "zlib" in encoding and var.ndim > 0:
            # One chunk per variable: the whole day is a few kB, and fixed chunks keep the
            # layout independent of netCDF-C's default chunking heuristics.
            encoding["chunksizes"] = var.shape
        if name in ds.data_vars:
            # Explicit, so xarray does not attach scalar coordinates to bounds and crs.
            encoding["coordinates"] = scalar_coords if is_data else None
        var.encoding = encoding
