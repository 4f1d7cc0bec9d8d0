"""GLDAS-2.1 Noah 0.25 deg 3-hourly netCDF-4 (``GLDAS_NOAH025_3H.A*.021.nc4``).

Soil moisture is stored per layer as ``SoilMoi<top>_<bottom>cm_inst`` in kg m-2, i.e. mm of
water in the layer; dividing by the layer thickness in mm gives m3 m-3 (0-10 cm: / 100,
10-40 cm: / 300, 40-100 cm: / 600, 100-200 cm: / 1000; MANIFEST §6). Fill -9999 (ocean,
Antarctica, glaciers). Output ``soil_moisture(time, lat, lon)`` for 0-10 cm and
``soil_moisture_<top>_<bottom>cm`` for the deeper layers present in the file; no flags.
The time units carry a leading space (``" minutes since 2000-01-01 03:00:00"``), handled.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, axis_coords, decode_packed, nc_attrs, nc_time, open_netcdf, register, require,
)


@register
class GldasHandler(FileHandler):
    """GLDAS Noah soil-moisture layers, kg m-2 -> m3 m-3 by layer thickness."""

    container = "hdf5"

    def decode(self) -> xr.Dataset:
        facts = self.product
        main = facts.variables[0]
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, [main.source, "lat", "lon", "time"])
            times = nc_time(self.path, nc["time"])
            out = xr.Dataset(coords={**axis_coords(nc["lat"][:], nc["lon"][:]),
                                     "time": ("time", times, {"standard_name": "time",
                                                              "comment": "UTC"})})
            for v in facts.variables:
                if v.source not in nc.variables:
                    continue
                var = nc[v.source]
                if var.dimensions != ("time", "lat", "lon"):
                    raise GranuleError(self.path, f"{v.source} has dims {var.dimensions}, "
                                       "expected ('time', 'lat', 'lon')")
                attrs = nc_attrs(var)
                if v.units == "m3 m-3" and attrs.get("units") != "kg m-2":
                    raise GranuleError(self.path, f"{v.source} has units {attrs.get('units')!r}"
                                       ", expected 'kg m-2' (mm of water in the layer)")
                fills = tuple({*v.fills, *(float(attrs[k]) for k in ("_FillValue",
                               "missing_value") if k in attrs)})
                data = decode_packed(var[:], scale=v.scale, fills=fills, dtype=np.float32)
                out[v.name] = (var.dimensions, data, v.attrs(
                    source_units=attrs.get("units", ""),
                    conversion_factor=v.scale,
                    comment="kg m-2 of water in the layer / layer thickness in mm"
                    if v.units == "m3 m-3" else ""))
        finally:
            nc.close()
        return out
