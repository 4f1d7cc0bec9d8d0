"""Decoded granules -> gridded days on the domain grid, one day or a whole period.

``grid_granule`` is the daily path (one fetched granule -> one ``(lat, lon)`` field: the mean of
the observations that passed the flags within the UTC day, regridded by nearest neighbour within
the product's radius, land only). ``gridded_series`` is the bulk path for training and spin-up:
the same computation for every day of a period, with one read of the cell files, one daily
aggregation and one neighbour search. Both give the same numbers for the same day.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import xarray as xr

from smflow.domain import DomainGrid
from smflow.products import Product, get_product
from smflow.readers.granule import daily_mean, daily_means
from smflow.readers.timeseries import read_product
from smflow.regrid import to_domain, to_domain_series


def _field_attrs(p: Product) -> dict:
    attrs = {"units": p.units, "long_name": f"daily mean {p.long_name}", "product": p.name,
             "source": p.title}
    if p.standard_name:
        attrs["standard_name"] = p.standard_name
    return attrs


def grid_granule(
    product: str | Product, decoded: xr.Dataset, day: date | datetime | str, grid: DomainGrid
) -> xr.DataArray:
    """One decoded granule -> the gridded day ``(lat, lon)``.

    Parameters
    ----------
    product : str or Product
        The granule's product.
    decoded : xr.Dataset
        Output of :func:`smflow.readers.read_granule` (or a longer decoded series).
    day : date-like
        UTC day to grid.
    grid : DomainGrid
        Target grid.

    Returns
    -------
    xr.DataArray
        ``soil_moisture`` (``degree_of_saturation`` for ASCAT) on ``grid`` [m3 m-3], NaN off
        land and where no observation passed; scalar coordinate ``time`` = the day.
    """
    p = get_product(product)
    mean = daily_mean(decoded, day)
    field = to_domain(mean.values, mean["lat"].values, mean["lon"].values, grid,
                      radius_m=p.regrid_radius_m, name=p.output_name)
    field.attrs = {**_field_attrs(p), **{k: v for k, v in field.attrs.items()
                                         if k in ("domain", "regridding")}}
    field.attrs["cell_methods"] = mean.attrs.get("cell_methods", "time: mean")
    return field.assign_coords(time=mean["time"].values)


def gridded_series(
    product: str | Product,
    start: date | str,
    end: date | str,
    grid: DomainGrid,
    *,
    source_dir: str | Path | None = None,
) -> xr.DataArray:
    """Gridded days ``start .. end`` (inclusive) of ``product``, ``(time, lat, lon)``.

    Parameters
    ----------
    product : str or Product
        Product name.
    start, end : date-like
        First and last UTC day.
    grid : DomainGrid
        Target grid.
    source_dir : path, optional
        Root of the cell files (default: bundle, or ../shared for non-bundled products).

    Returns
    -------
    xr.DataArray
        ``soil_moisture`` [m3 m-3] with ``time`` = each UTC day at 00:00; equal, day by day, to
        :func:`grid_granule` on that day's granule.
    """
    p = get_product(product)
    decoded = read_product(p, start, end, source_dir=source_dir)
    means = daily_means(decoded, start, end)
    series = to_domain_series(means.values, means["lat"].values, means["lon"].values, grid,
                              radius_m=p.regrid_radius_m, time=means["time"].values,
                              name=p.output_name)
    series.attrs = {**_field_attrs(p), "domain": grid.name,
                    "regridding": series.attrs.get("regridding", ""),
                    "cell_methods": "time: mean (interval: 1 day, observations passing quality flags)"}
    return series
