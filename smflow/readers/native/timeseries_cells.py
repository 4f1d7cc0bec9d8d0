"""Time-series cell files (``<folder>/<cell>.nc``) and grid-point lists (``grid.nc``).

Cell files are decoded by the layout readers and product handler of
:mod:`smflow.readers.timeseries` (not re-implemented here): the product's
:class:`~smflow.products.Product` record (from :mod:`smflow.products`, or for the cell products
the pipeline does not use, from :mod:`smflow.readers.native.facts`) is given to
``read_layout`` + ``decode_product``, which return the decoded-granule contract of
``docs/DESIGN.md`` (dims ``location, time``; ``soil_moisture`` or ``degree_of_saturation``;
``quality_mask``; raw flags).

``grid.nc`` / ``TUW_WARP5_grid_info_2_3.nc`` list the product's grid points: ``gpi``, ``lat``,
``lon``, ``cell`` (and ``land_flag`` for WARP5) along dim ``gpi``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, decode_packed, latlon_coords, nc_attrs, open_netcdf, register, require,
)
from smflow.readers.decode import decode_product
from smflow.readers.timeseries import product_variables, read_layout


@register
class CellFileHandler(FileHandler):
    """One cell file of a reshuffled product, via :mod:`smflow.readers.timeseries`."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        p = self.product.timeseries_product
        raw = read_layout(p.layout, [self.path], variables=product_variables(p),
                          require=(p.variable,))
        out = decode_product(p, raw, source_files=[self.path])
        if not self.apply_quality:
            values = raw[p.variable].values.astype(np.float64) * p.conversion_factor
            if p.valid_range is not None:
                with np.errstate(invalid="ignore"):
                    values = np.where((values >= p.valid_range[0]) &
                                      (values <= p.valid_range[1]), values, np.nan)
            out[p.output_name] = (out[p.output_name].dims, values, out[p.output_name].attrs)
        out.attrs["timeseries_product"] = p.name
        return out


@register
class GridFileHandler(FileHandler):
    """Grid-point list of a reshuffled product (gpi, lat, lon, cell)."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, ["gpi", "lat", "lon"])
            dim = nc["gpi"].dimensions
            gpi_attrs = nc_attrs(nc["gpi"])
            gpi_raw = np.asarray(nc["gpi"][:])
            fill = gpi_attrs.get("missing_value", gpi_attrs.get("_FillValue"))
            valid = np.ones(gpi_raw.shape, bool) if fill is None else gpi_raw != fill
            lat = decode_packed(nc["lat"][:])
            lon = decode_packed(nc["lon"][:])
            if gpi_raw.ndim == 2 and dim == (nc["lat"].dimensions[0], nc["lon"].dimensions[0]):
                lat, lon = np.meshgrid(lat, lon, indexing="ij")  # regular grid (SMOS)
            elif lat.shape != gpi_raw.shape or lon.shape != gpi_raw.shape:
                raise GranuleError(self.path, f"gpi {gpi_raw.shape}, lat {lat.shape} and lon "
                                   f"{lon.shape} do not fit together")
            lat, lon = lat[valid], lon[valid]
            if not (np.all(np.abs(lat[np.isfinite(lat)]) <= 90)
                    and np.all(np.abs(lon[np.isfinite(lon)]) <= 360)):
                raise GranuleError(self.path, "latitudes/longitudes outside the globe; corrupt")
            out = xr.Dataset(coords={"gpi": ("gpi", gpi_raw[valid].astype(np.int64),
                                             {"long_name": "grid point index"}),
                                     **latlon_coords(lat, lon, ("gpi",))})
            for name in ("cell", "land_flag", "committed_area"):
                if name in nc.variables and nc[name].dimensions == dim:  # same layout as gpi
                    out[name] = ("gpi", np.asarray(nc[name][:])[valid],
                                 nc_attrs(nc[name], ("long_name", "flag_values",
                                                     "flag_meanings")))
        finally:
            nc.close()
        return out
