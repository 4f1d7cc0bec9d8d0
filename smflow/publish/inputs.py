"""Publishing the regridded, quality-controlled inputs of a domain (one CF file per input and day).

Layout (``s3://{products_bucket}/``)::

    inputs/{domain}/{YYYY}/{MM}/{DD}/smflow_input_{product}_{YYYYMMDD}.nc   CF-1.8 netCDF
    inputs/{domain}/{YYYY}/{MM}/{DD}/smflow_input_{product}_{YYYYMMDD}.png  quicklook
    stac/items/smflow-inputs-{domain}-{YYYYMMDD}.json                      the day's STAC item

Objects are placed with :meth:`smflow.publish.publisher.Publisher.place` (staged, verified,
copied, idempotent by SHA-256), the item after its assets. Inputs that were missing or
quarantined are listed in the item's ``smflow:missing_inputs`` and in every file's
``missing_inputs`` attribute, with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pystac
import xarray as xr

from smflow.publish.cf import code_version, to_netcdf_bytes
from smflow.publish.quicklook import render_quicklook
from smflow.publish.stac import ALTERNATE_SCHEMA, multihash_sha256, s3_alternate

INPUTS_PREFIX: Final = "inputs"
_NETCDF: Final = "application/netcdf"
_PNG: Final = "image/png"
_GEOJSON: Final = "application/geo+json"

#: Colour ranges of the quicklooks by units (the field's own units, as the reader decoded them).
_QUICKLOOK_RANGES: Final = {"percent": (0.0, 100.0, "YlGnBu"), "%": (0.0, 100.0, "YlGnBu"),
                            "m3 m-3": (0.0, 0.6, "YlGnBu"), "K": (250.0, 330.0, "inferno"),
                            "m": (0.0, 3000.0, "terrain")}


def input_key(domain: str, product: str, day: dt.date, extension: str) -> str:
    """Key of a published input file."""
    return f"{INPUTS_PREFIX}/{domain}/{day:%Y/%m/%d}/smflow_input_{product}_{day:%Y%m%d}.{extension}"


def input_item_key(domain: str, day: dt.date) -> str:
    """Key of the day's STAC item of a domain's inputs."""
    return f"stac/items/smflow-inputs-{domain}-{day:%Y%m%d}.json"


def main_variable(field: xr.Dataset) -> str:
    """The field's principal variable: the first float variable on (..., lat, lon) that is not a count."""
    for name, da in field.data_vars.items():
        if da.dims[-2:] == ("lat", "lon") and da.dtype.kind == "f" and not str(name).endswith("_count"):
            return str(name)
    raise ValueError(f"no float (lat, lon) variable among {sorted(field.data_vars)}")


def build_input_dataset(field: xr.Dataset, *, product: str, day: dt.date, domain: str,
                        lineage: Mapping[str, Any]) -> xr.Dataset:
    """CF-1.8 dataset of one regridded input day.

    Parameters
    ----------
    field : xr.Dataset
        Output of :func:`smflow.regrid.native_to_domain` for the day (variables on
        ``(..., lat, lon)`` of the domain grid, in the reader's SI units and names).
    product, day, domain : str, date, str
        What it is.
    lineage : mapping
        ``input_granules`` (list of URIs), ``missing_inputs`` (list), ``validation`` (key of the
        stored GX result), ``licence``, ``attribution``.

    Returns
    -------
    xr.Dataset
        With ``time`` (the day, with bounds), ``lat``/``lon`` (with bounds), ``crs``
        (EPSG:4326), data variables as float32 with ``_FillValue``, global attributes.
    """
    ds = field.copy()
    for coord in [c for c in ds.coords if c not in ("lat", "lon") and ds[c].ndim == 0]:
        ds = ds.drop_vars(coord)
    ds = ds.expand_dims(time=[np.datetime64(day, "ns")])
    start = np.datetime64(day, "ns")
    ds["time"].attrs = {"standard_name": "time", "long_name": "time", "axis": "T", "bounds": "time_bnds"}
    ds["time_bnds"] = (("time", "nv"), np.array([[start, start + np.timedelta64(1, "D")]]))
    for axis, units in (("lat", "degrees_north"), ("lon", "degrees_east")):
        centres = np.asarray(ds[axis].values, dtype=float)
        step = float(np.median(np.diff(centres))) if centres.size > 1 else 0.0
        ds[f"{axis}_bnds"] = ((axis, "nv"), np.stack([centres - step / 2, centres + step / 2], axis=1))
        ds[axis].attrs = {"standard_name": "latitude" if axis == "lat" else "longitude", "units": units,
                          "axis": "Y" if axis == "lat" else "X", "bounds": f"{axis}_bnds"}
    ds["crs"] = xr.Variable((), np.int32(0), {"grid_mapping_name": "latitude_longitude",
                                               "epsg_code": "EPSG:4326",
                                               "longitude_of_prime_meridian": 0.0,
                                               "semi_major_axis": 6378137.0,
                                               "inverse_flattening": 298.257223563})
    for name in list(ds.data_vars):
        if name in ("crs", "time_bnds", "lat_bnds", "lon_bnds"):
            continue
        da = ds[name]
        attrs = {k: v for k, v in da.attrs.items() if isinstance(v, (str, int, float, np.number))}
        attrs["grid_mapping"] = "crs"
        if da.dtype == bool:
            da = da.astype("i1")
        ds[name] = da.assign_attrs(attrs)
        ds[name].encoding = {}
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": f"{field.attrs.get('title', product)} on the smflow {domain} grid",
        "institution": "smflow operational soil-moisture system",
        "source": f"{product}: {field.attrs.get('title', '')}",
        "history": f"regridded by smflow {code_version()} ({field.attrs.get('regridding', '')}); "
                   "checked by its Great Expectations suite",
        "references": "Regridding as in the papers: nearest for ASCAT, bilinear for SMAP/AMSR2, "
                      "mean aggregation for 1 km products, MODIS and DEM.",
        "domain": domain,
        "product": product,
        "product_day": day.isoformat(),
        "input_granules": "\n".join(lineage.get("input_granules", [])),
        "missing_inputs": "\n".join(lineage.get("missing_inputs", [])) or "none",
        "validation_result": str(lineage.get("validation", "")),
        "license": str(field.attrs.get("licence", lineage.get("licence", ""))),
        "acknowledgement": str(field.attrs.get("attribution", lineage.get("attribution", ""))),
    }
    return ds


def render_input_quicklook(ds: xr.Dataset, product: str) -> bytes:
    """PNG map of the dataset's main variable (first slice of any extra dimension)."""
    name = main_variable(ds)
    da = ds[name]
    for dim in [d for d in da.dims if d not in ("lat", "lon", "time")]:
        da = da.isel({dim: 0})
    units = str(da.attrs.get("units", ""))
    vmin, vmax, cmap = _QUICKLOOK_RANGES.get(units, (float(np.nanmin(da)) if np.isfinite(da).any() else 0.0,
                                                     float(np.nanmax(da)) if np.isfinite(da).any() else 1.0,
                                                     "viridis"))
    return render_quicklook(da, title=f"{product}: {da.attrs.get('long_name', name)}", units=units,
                            cmap=cmap, vmin=vmin, vmax=vmax)


def build_inputs_item(domain: str, day: dt.date, assets: Sequence[tuple[str, ...]],
                      *, bbox: Sequence[float], missing: Sequence[str], self_href: str) -> pystac.Item:
    """STAC item of a domain's inputs for one day; assets ``(key, href, media type, sha256, title[,
    s3 URI])``: the public URL as href, the ``s3://`` URI as the ``s3`` alternate when given."""
    west, south, east, north = bbox
    item = pystac.Item(
        id=f"smflow-inputs-{domain}-{day:%Y%m%d}",
        geometry={"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                      [west, north], [west, south]]]},
        bbox=list(bbox),
        datetime=None,
        start_datetime=dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc),
        end_datetime=dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.timezone.utc),
        properties={"smflow:domain": domain, "smflow:missing_inputs": list(missing)},
    )
    for key, href, media_type, sha256, title, *s3_href in assets:
        extra: dict[str, Any] = {"file:checksum": multihash_sha256(sha256)}
        if s3_href:
            extra["alternate"] = s3_alternate(s3_href[0])
        item.add_asset(key, pystac.Asset(href=href, media_type=media_type, title=title,
                                         roles=["data"] if media_type == _NETCDF else ["overview"],
                                         extra_fields=extra))
    if any(len(asset) > 5 for asset in assets):
        item.stac_extensions.append(ALTERNATE_SCHEMA)
    item.set_self_href(self_href)
    return item


__all__ = ["build_input_dataset", "build_inputs_item", "input_item_key", "input_key", "main_variable",
           "render_input_quicklook", "to_netcdf_bytes"]
