"""Native-format readers: one file handler per product family, one entry point.

``open_native(path, product=None)`` reads a file in its native format (HDF5, HDF4-EOS, netCDF,
GRIB, BUFR, GeoTIFF, SRTM ``.hgt``, text) and returns a CF-annotated :class:`xarray.Dataset`
on the product's own grid or swath (see :mod:`smflow.readers.native.base` for the contract).
The product is recognised from the file name (:data:`~smflow.readers.native.facts.NATIVE_PRODUCTS`
patterns) unless given. Anything wrong with the file raises
:class:`~smflow.readers.GranuleError` naming the file and the problem.

``docs/readers.md`` maps every real file of ``../shared/data/real`` to its handler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

# Importing the handler modules registers their handlers.
from smflow.readers.native import (  # noqa: F401
    amsr2, ascat, cci, cgls, ecmwf, gldas, insitu_text, landsurface, modis, precipitation, smap,
    smos, terrain, timeseries_cells,
)
from smflow.readers.native.base import HANDLERS, FileHandler
from smflow.readers.native.facts import (
    NATIVE_PRODUCTS, NativeProduct, VariableFacts, get_native_product, product_for_path,
)
from smflow.readers.granule import GranuleError


def handler_for(path: str | Path, product: str | NativeProduct | None = None,
                **options: Any) -> FileHandler:
    """The file handler that reads ``path`` (as ``product`` if given, else by file name)."""
    path = Path(path)
    facts = get_native_product(product).for_path(path) if product is not None \
        else product_for_path(path)
    if facts is None:
        raise GranuleError(
            path, "no native reader recognises this file name; pass product=<name> to say what "
            f"it is (known products: {', '.join(sorted(NATIVE_PRODUCTS))})"
        )
    return HANDLERS[facts.handler](path, facts, **options)


def open_native(path: str | Path, product: str | NativeProduct | None = None, *,
                apply_quality: bool = True, chunks: str | int | dict | None = "auto",
                **options: Any) -> xr.Dataset:
    """Read one native-format file into a CF-annotated dataset on the product's own grid.

    Parameters
    ----------
    path : str or Path
        The file.
    product : str or NativeProduct, optional
        Product name (a key of ``NATIVE_PRODUCTS``); default: recognised from the file name.
    apply_quality : bool
        NaN the main variable where ``quality_mask`` is False (default, as the decoded-granule
        contract of ``docs/DESIGN.md``); False keeps flagged values (fills and out-of-range
        values are NaN either way).
    chunks : str, int, dict or None
        Dask chunks of the returned arrays (``None``: plain numpy).
    **options
        Handler options (e.g. ``bbox=(lon_min, lat_min, lon_max, lat_max)`` for the GLOBE
        land mask).

    Returns
    -------
    xr.Dataset
        Variables in SI units named by the field's terms, ``quality_mask`` where the product
        has flags, attrs ``product``, ``source_file``, ``title``, ``licence``, ``attribution``.

    Raises
    ------
    GranuleError
        Unknown file name, missing/empty/truncated/corrupt file, wrong variable, values
        outside the physically possible range.
    """
    return handler_for(path, product, apply_quality=apply_quality, **options).read(chunks)


__all__ = [
    "HANDLERS",
    "NATIVE_PRODUCTS",
    "FileHandler",
    "GranuleError",
    "NativeProduct",
    "VariableFacts",
    "get_native_product",
    "handler_for",
    "open_native",
    "product_for_path",
]
