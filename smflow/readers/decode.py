"""Product handlers: a product's facts applied to the layout-read cell files.

:func:`decode_product` turns what :func:`smflow.readers.timeseries.read_layout` read into the
decoded-granule contract of ``docs/DESIGN.md`` (unit conversion, valid range, quality flags, the
values as read for the quality checks, auxiliary variables); :func:`read_product` reads a
product's series between two days from its cell files. The layouts know nothing of products;
the products' facts come from the catalogue (:mod:`smflow.products`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from smflow.products import Product, get_product
from smflow.readers.timeseries import BBox, DateLike, cell_files, product_variables, read_layout


def decode_product(product: str | Product, raw: xr.Dataset, *, source_files: Sequence[Path]) -> xr.Dataset:
    """Apply a product's facts to a layout-read dataset -> the decoded-granule contract.

    ``output_name`` = ``variable`` x ``conversion_factor``, NaN outside ``valid_range`` and where a
    flag rule rejects the observation; ``quality_mask`` True where the observation passes; raw
    flag variables kept; auxiliary variables renamed.
    """
    p = get_product(product)
    values = raw[p.variable].values.astype(np.float64) * p.conversion_factor
    passes = np.isfinite(values)
    if p.valid_range is not None:
        lo, hi = p.valid_range
        with np.errstate(invalid="ignore"):
            passes &= (values >= lo) & (values <= hi)
    for rule in p.flag_rules:
        passes &= rule.passes(raw[rule.variable].values)
    data = np.where(passes, values, np.nan)

    attrs = {
        "units": p.units,
        "long_name": p.long_name,
        "source_variable": p.variable,
        "source_units": p.source_units,
        "conversion_factor": p.conversion_factor,
    }
    if p.standard_name:
        attrs["standard_name"] = p.standard_name
    if p.valid_range is not None:
        attrs["valid_min"], attrs["valid_max"] = p.valid_range
    if p.flag_rules:
        attrs["ancillary_variables"] = " ".join(("quality_mask", *p.flag_variables))
    out = xr.Dataset(coords=raw.coords)
    out[p.output_name] = (("location", "time"), data, attrs)
    # The values before range and flag masking (fill values excluded), so that the quality checks
    # see what the file holds: a granule in the wrong units must fail loudly, not turn into NaN.
    as_read = values if p.fill_value is None else np.where(
        np.isclose(raw[p.variable].values.astype(np.float64), p.fill_value), np.nan, values)
    out[f"{p.output_name}_as_read"] = (("location", "time"), as_read, {
        "units": p.units, "long_name": f"{p.long_name}, as read (converted to {p.units}, before range and flag masks)"})
    out["quality_mask"] = (
        ("location", "time"),
        passes,
        {
            "long_name": f"observation passes the {p.name} quality checks",
            "comment": "; ".join(
                ["finite value"]
                + ([f"{p.valid_range[0]} <= value <= {p.valid_range[1]} {p.units}"]
                   if p.valid_range else [])
                + [f"{r.variable}: {r.meaning}" for r in p.flag_rules]
            ),
        },
    )
    for name in p.flag_variables:
        out[name] = raw[name]
    for source, name in p.auxiliary.items():
        aux = raw[source]
        if name == "soil_temperature":
            aux = aux.assign_attrs(standard_name="soil_temperature", units="K")
        out[name] = aux
    out.attrs = {
        "Conventions": "CF-1.10",
        "featureType": "timeSeries",
        "product": p.name,
        "title": p.title,
        "source_file": ", ".join(Path(f).name for f in source_files),
        "source_layout": p.layout,
        "licence": p.licence,
        "attribution": p.attribution,
    }
    out["time"].attrs = raw["time"].attrs
    return out


def read_product(
    product: str | Product,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    source_dir: str | Path | None = None,
    bbox: BBox | None = None,
) -> xr.Dataset:
    """Decoded time series of ``product`` for the whole UTC days ``start .. end`` (inclusive).

    Parameters
    ----------
    product : str or Product
        ``smap``, ``era5_land``, ``gldas``, ``c3s`` or ``ascat_h119``.
    start, end : date-like, optional
        First and last UTC day (None = from the first / to the last time in the files).
    source_dir : path, optional
        Root holding ``<folder>/<cell>.nc``; default: the bundle for redistributable products,
        ``../shared/data/real/hawaii_timeseries`` for the others.
    bbox : (lon_min, lat_min, lon_max, lat_max), optional
        Keep only locations inside the box.

    Returns
    -------
    xr.Dataset
        The decoded-granule contract (``docs/DESIGN.md``) over the whole period.
    """
    p = get_product(product)
    files = cell_files(p, source_dir)
    raw = read_layout(
        p.layout,
        [f.path for f in files],
        variables=product_variables(p),
        require=(p.variable,),
        start=start,
        end=end,
        bbox=bbox,
    )
    return decode_product(p, raw, source_files=[f.path for f in files])


