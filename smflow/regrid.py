"""Product locations -> the domain grid (nearest neighbour within a radius, land only).

Each domain cell takes the value of the nearest product sample within ``radius_m`` (pyresample
kd-tree on the sphere); cells without a sample that close, and sea cells, are NaN. The
neighbour of each cell depends only on the sample positions, never on the values, so a whole
``(location, time)`` stack is regridded with one neighbour search (:func:`to_domain_series`),
and a cell whose nearest sample has no valid value on a day is NaN that day (it does not borrow
a farther sample). ERA5-Land points coincide with the domain's cell centres and map one to one.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from smflow.domain import DomainGrid

Method = Literal["nearest"]


def neighbour_index(
    lat: np.ndarray, lon: np.ndarray, grid: DomainGrid, *, radius_m: float
) -> np.ndarray:
    """Index into the sample arrays of each cell's nearest sample, ``(lat, lon)``; -1 = none.

    Sea cells are -1 too. Rows follow ``grid.lat`` (ascending).
    """
    from pyresample import kd_tree
    from pyresample.geometry import SwathDefinition

    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    if lat.shape != lon.shape:
        raise ValueError(f"lat {lat.shape} and lon {lon.shape} must have the same shape.")
    index = np.full(grid.shape, -1, dtype=np.int64)
    if lat.size == 0:
        return index
    lon = np.where(lon > 180.0, lon - 360.0, lon)
    source = SwathDefinition(lons=lon, lats=lat)
    target = grid.area_definition()
    valid_in, valid_out, index_array, _distance = kd_tree.get_neighbour_info(
        source, target, radius_m, neighbours=1
    )
    # index_array indexes the *valid* inputs, for the valid outputs; misses equal the input count.
    inputs = np.flatnonzero(valid_in)
    out = np.full(valid_out.size, -1, dtype=np.int64)
    hits = index_array < inputs.size
    out_positions = np.flatnonzero(valid_out)
    out[out_positions[hits]] = inputs[index_array[hits]]
    # pyresample rows run north to south; the domain keeps latitude ascending.
    index = out.reshape(grid.shape)[::-1].copy()
    index[~grid.land_mask] = -1
    return index


def to_domain(
    values,
    lat,
    lon,
    grid: DomainGrid,
    *,
    radius_m: float,
    method: Method = "nearest",
    name: str | None = None,
) -> xr.DataArray:
    """Regrid one value per location onto the domain grid.

    Parameters
    ----------
    values : array-like (location,)
        Values at the product's sample locations (NaN = no valid value).
    lat, lon : array-like (location,)
        Sample positions [degree].
    grid : DomainGrid
        Target grid.
    radius_m : float
        Radius of influence [m] (e.g. ``Product.regrid_radius_m``).
    method : {"nearest"}
        Resampling method.
    name : str, optional
        Name of the result (default: ``values.name`` or ``soil_moisture``).

    Returns
    -------
    xr.DataArray
        ``(lat, lon)`` on ``grid``, NaN off land and where no sample lies within ``radius_m``.
    """
    if method != "nearest":
        raise ValueError(f"Unknown method {method!r}; only 'nearest' is implemented.")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1:
        raise ValueError(
            f"values must be 1-D (location,), got shape {data.shape}; use to_domain_series "
            "for (location, time) stacks."
        )
    index = neighbour_index(lat, lon, grid, radius_m=radius_m)
    field = np.where(index >= 0, data[np.clip(index, 0, None)] if data.size else np.nan, np.nan)
    attrs = dict(getattr(values, "attrs", {}) or {})
    out = grid.template(name or getattr(values, "name", None) or "soil_moisture",
                        attrs.pop("units", "m3 m-3"))
    out.values[...] = field
    out.attrs.update({k: v for k, v in attrs.items() if k not in ("grid_mapping_name",)})
    out.attrs["regridding"] = f"nearest neighbour within {radius_m:.0f} m (pyresample), land only"
    return out


def to_domain_series(
    values,
    lat,
    lon,
    grid: DomainGrid,
    *,
    radius_m: float,
    method: Method = "nearest",
    time=None,
    name: str | None = None,
) -> xr.DataArray:
    """Regrid a ``(location, time)`` stack onto the domain grid with one neighbour search.

    Parameters
    ----------
    values : array-like or DataArray (location, time)
        Values per location and time.
    lat, lon : array-like (location,)
        Sample positions [degree].
    grid : DomainGrid
        Target grid.
    radius_m : float
        Radius of influence [m].
    method : {"nearest"}
        Resampling method.
    time : array-like (time,), optional
        Time coordinate (default: ``values["time"]`` for a DataArray).
    name : str, optional
        Name of the result.

    Returns
    -------
    xr.DataArray
        ``(time, lat, lon)``; ``result.isel(time=k)`` equals ``to_domain(values[:, k], ...)``.
    """
    if method != "nearest":
        raise ValueError(f"Unknown method {method!r}; only 'nearest' is implemented.")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"values must be 2-D (location, time), got shape {data.shape}.")
    if time is None:
        time = values["time"].values if isinstance(values, xr.DataArray) else np.arange(data.shape[1])
    index = neighbour_index(lat, lon, grid, radius_m=radius_m)
    stack = np.full((data.shape[1], *grid.shape), np.nan)
    rows, cols = np.nonzero(index >= 0)
    stack[:, rows, cols] = data[index[rows, cols], :].T
    attrs = dict(getattr(values, "attrs", {}) or {})
    units = attrs.pop("units", "m3 m-3")
    out = xr.DataArray(
        stack,
        dims=("time", "lat", "lon"),
        coords={"time": ("time", np.asarray(time)), "lat": grid.lat_coord(), "lon": grid.lon_coord()},
        name=name or getattr(values, "name", None) or "soil_moisture",
        attrs={**attrs, "units": units, "domain": grid.name,
               "regridding": f"nearest neighbour within {radius_m:.0f} m (pyresample), land only"},
    )
    return out
