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
from smflow.readers.decode import read_product
from smflow.regrid import to_domain, to_domain_series


#: Auxiliary decoded variables gridded and stored next to a product's soil moisture (store field
#: :func:`auxiliary_field`): GLDAS top-layer soil temperature [K] gives SM2RAIN's frozen-soil mask
#: (no rain is inverted from soil moisture that changes by freezing or thawing).
AUXILIARY_FIELDS: dict[str, tuple[str, ...]] = {"gldas": ("soil_temperature",)}


def auxiliary_field(product: str, variable: str) -> str:
    """Store field name of an auxiliary variable, e.g. ``gldas_soil_temperature``."""
    return f"{product}_{variable}"


def _field_attrs(p: Product, decoded: xr.Dataset | None = None, variable: str | None = None) -> dict:
    """CF attributes of a gridded field: the product's soil moisture, or an auxiliary variable's own."""
    if variable is not None:
        own = {k: v for k, v in decoded[variable].attrs.items() if k in ("units", "standard_name", "long_name")}
        return {**own, "product": p.name, "source": p.title}
    attrs = {"units": p.units, "long_name": f"daily mean {p.long_name}", "product": p.name,
             "source": p.title}
    if p.standard_name:
        attrs["standard_name"] = p.standard_name
    return attrs


def grid_granule(
    product: str | Product, decoded: xr.Dataset, day: date | datetime | str, grid: DomainGrid, *,
    variable: str | None = None,
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
    variable : str, optional
        An auxiliary decoded variable to grid instead of the soil moisture (e.g.
        ``soil_temperature`` of GLDAS, in K), keeping its own units and names.

    Returns
    -------
    xr.DataArray
        ``soil_moisture`` (``degree_of_saturation`` for ASCAT) on ``grid`` [m3 m-3] (or
        `variable` in its units), NaN off land and where no observation passed; scalar
        coordinate ``time`` = the day.
    """
    p = get_product(product)
    mean = daily_mean(decoded, day, variable=variable)
    field = to_domain(mean.values, mean["lat"].values, mean["lon"].values, grid,
                      radius_m=p.regrid_radius_m, name=variable or p.output_name)
    own = _field_attrs(p, decoded, variable)
    field.attrs = {**own, **{k: v for k, v in field.attrs.items() if k in ("domain", "regridding")}}
    field.attrs["cell_methods"] = mean.attrs.get("cell_methods", "time: mean")
    return field.assign_coords(time=mean["time"].values)


def gridded_series(
    product: str | Product,
    start: date | str,
    end: date | str,
    grid: DomainGrid,
    *,
    source_dir: str | Path | None = None,
    variable: str | None = None,
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
    variable : str, optional
        An auxiliary decoded variable instead of the soil moisture (as :func:`grid_granule`).

    Returns
    -------
    xr.DataArray
        ``soil_moisture`` [m3 m-3] (or `variable`) with ``time`` = each UTC day at 00:00; equal,
        day by day, to :func:`grid_granule` on that day's granule.
    """
    p = get_product(product)
    decoded = read_product(p, start, end, source_dir=source_dir)
    means = daily_means(decoded, start, end, variable=variable)
    series = to_domain_series(means.values, means["lat"].values, means["lon"].values, grid,
                              radius_m=p.regrid_radius_m, time=means["time"].values,
                              name=variable or p.output_name)
    own = _field_attrs(p, decoded, variable)
    series.attrs = {**own, "domain": grid.name,
                    "regridding": series.attrs.get("regridding", ""),
                    "cell_methods": "time: mean (interval: 1 day, observations passing quality flags)"}
    return series
