"""One granule (a file as fetched from the landing zone) -> the decoded-granule contract.

``read_granule(product, path)`` checks that the file is a readable netCDF file in the product's
layout with the product's variable, and returns the decoded granule of ``docs/DESIGN.md``:
dims ``(location, time)``, ``soil_moisture`` (or ``degree_of_saturation`` for ASCAT) with flags
applied, ``quality_mask``, the raw flag variable(s), attrs ``product`` and ``source_file``.
Anything wrong with the file raises :class:`GranuleError`, whose message names the file and the
problem, so a quarantine record says what to fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from smflow.dates import DayLike, as_date
from smflow.products import Product, get_product
from smflow.readers import decode, timeseries
from smflow.readers.errors import GranuleError, check_signature

__all__ = ["DayLike", "GranuleError", "check_signature", "daily_mean", "daily_means", "data_variable_name",
           "read_granule"]


def read_granule(product: str | Product, path: str | Path) -> xr.Dataset:
    """Decode one granule file of ``product``.

    Parameters
    ----------
    product : str or Product
        Product name (``smap``, ``era5_land``, ``gldas``, ``c3s``, ``ascat_h119``).
    path : str or Path
        A netCDF file in the product's native layout (a landing-zone granule, a cell file).

    Returns
    -------
    xr.Dataset
        The decoded granule (see module docstring), ``attrs["source_file"]`` = the file name.

    Raises
    ------
    GranuleError
        Missing, empty, truncated or non-netCDF file; wrong layout; missing variable.
    """
    p = get_product(product)
    path = Path(path)
    raw = timeseries.read_layout(p.layout, [path], variables=timeseries.product_variables(p),
                                 require=(p.variable,))
    return decode.decode_product(p, raw, source_files=[path])


def data_variable_name(decoded: xr.Dataset) -> str:
    """``soil_moisture`` or ``degree_of_saturation``, whichever the decoded granule carries."""
    product = decoded.attrs.get("product")
    if product:
        return get_product(product).output_name
    for name in ("soil_moisture", "degree_of_saturation"):
        if name in decoded:
            return name
    raise KeyError(
        "Decoded granule has neither `soil_moisture` nor `degree_of_saturation`; "
        "decode it with smflow.readers.read_granule or read_product first."
    )


def daily_means(decoded: xr.Dataset, start: DayLike, end: DayLike, *,
                variable: str | None = None) -> xr.DataArray:
    """Mean of the observations that passed the flags, per location and UTC day ``start .. end``.

    Parameters
    ----------
    decoded : xr.Dataset
        A decoded granule or decoded series (dims ``location``, ``time``).
    start, end : date-like
        First and last UTC day (inclusive).
    variable : str, optional
        Decoded variable to average (default: the soil-moisture variable; e.g.
        ``soil_temperature``, an auxiliary variable of GLDAS).

    Returns
    -------
    xr.DataArray
        Dims ``(location, time)`` with ``time`` = each day at 00:00 UTC; same name and units as
        the decoded variable (m3 m-3 for ``soil_moisture``); NaN where no observation passed.
        Coordinate ``n_obs(location, time)`` counts the observations averaged.

    Notes
    -----
    Each observation is binned to the UTC day ``floor(time)``; sums and counts are accumulated
    with ``np.add.at`` in time order, so one day computed alone and the same day inside a
    period give identical bits.
    """
    name = variable or data_variable_name(decoded)
    if name not in decoded:
        raise KeyError(f"Decoded granule has no variable {name!r} (it has {sorted(decoded.data_vars)}).")
    first, last = (np.datetime64(as_date(d), "ns") for d in (start, end))
    days = np.arange(first, last + np.timedelta64(1, "D"), np.timedelta64(1, "D"))
    values = np.asarray(decoded[name].values, dtype=np.float64)
    times = decoded["time"].values.astype("datetime64[ns]")
    day_index = ((times - first) // np.timedelta64(1, "D")).astype(np.int64)
    n_loc = values.shape[0]
    sums = np.zeros((n_loc, days.size))
    counts = np.zeros((n_loc, days.size), dtype=np.int64)
    rows, cols = np.nonzero(np.isfinite(values))
    day_of = day_index[cols]
    inside = (day_of >= 0) & (day_of < days.size)
    rows, cols, day_of = rows[inside], cols[inside], day_of[inside]
    np.add.at(sums, (rows, day_of), values[rows, cols])
    np.add.at(counts, (rows, day_of), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    coords = {c: decoded[c] for c in ("lat", "lon", "location_id") if c in decoded.coords}
    out = xr.DataArray(means, dims=("location", "time"), coords={**coords, "time": days},
                       name=name, attrs=dict(decoded[name].attrs))
    out.attrs["cell_methods"] = "time: mean (interval: 1 day, observations passing quality flags)"
    return out.assign_coords(n_obs=(("location", "time"), counts))


def daily_mean(decoded: xr.Dataset, day: DayLike, *, variable: str | None = None) -> xr.DataArray:
    """Mean of the observations that passed the flags within ``[day, day + 1)`` UTC.

    Parameters
    ----------
    decoded : xr.Dataset
        A decoded granule or decoded series (dims ``location``, ``time``).
    day : date-like
        The UTC day.

    Returns
    -------
    xr.DataArray
        Dims ``(location,)``, same name and units as the decoded variable (m3 m-3 for
        ``soil_moisture``), NaN where no observation passed; coordinate ``n_obs(location)``
        counts the observations averaged, scalar coordinate ``time`` the day.
    """
    return daily_means(decoded, day, day, variable=variable).isel(time=0)
