"""SMOS L3 soil moisture from CATDS (``SM_*_MIR_CLF3*``), netCDF.

``Soil_Moisture`` is int16 with ``scale_factor`` 1/32767 and fill -32768 (MANIFEST §5); the
mean acquisition time of each pixel is ``Mean_Acq_Time_Days`` (days since 2000-01-01) plus
``Mean_Acq_Time_Seconds`` (seconds of that day), fill -2147483647. The output is on the file's
own (EASE-2 25 km, here cut to a lat/lon box) grid: ``soil_moisture(lat, lon)`` m3 m-3 and
``observation_time(lat, lon)``. Full CATDS files also carry ``Science_Flags`` and
``Soil_Moisture_Dqx``; they are kept raw when present (the test files were subset without
them, so no quality rule is applied by default).

SMOS-IC (INRAE/CESBIO) is read from its time-series cell files by
:class:`~smflow.readers.native.timeseries_cells.CellFileHandler` (no native SMOS-IC image is
available to test a reader against).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, axis_coords, decode_packed, nc_attrs, open_netcdf, register, require,
)


@register
class SmosL3Handler(FileHandler):
    """CATDS SMOS L3 daily soil moisture image with acquisition time."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        facts = self.product
        sm_facts = facts.var("soil_moisture")
        opt = facts.options
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, [sm_facts.source, "lat", "lon"])
            var = nc[sm_facts.source]
            attrs = nc_attrs(var)
            scale = float(attrs.get("scale_factor", sm_facts.scale))
            offset = float(attrs.get("add_offset", 0.0))
            if not np.isclose(scale, sm_facts.scale, rtol=1e-6) or offset != 0.0:
                raise GranuleError(self.path, f"{sm_facts.source} has scale_factor {scale} / "
                                   f"add_offset {offset}; CATDS L3 documents "
                                   f"{sm_facts.scale:.10g} / 0: a different product version?")
            fill = attrs.get("_FillValue", sm_facts.fills[0])
            raw = var[:]
            if var.dimensions != ("lat", "lon"):
                raise GranuleError(self.path, f"{sm_facts.source} has dims {var.dimensions}, "
                                   "expected ('lat', 'lon')")
            sm = decode_packed(raw, scale=scale, fills=(fill,), valid_raw=sm_facts.valid_raw,
                               dtype=np.float32)
            lat = np.asarray(nc["lat"][:], dtype=np.float64)
            lon = np.asarray(nc["lon"][:], dtype=np.float64)
            dims = ("lat", "lon")
            out = xr.Dataset(coords=axis_coords(lat, lon))
            out["soil_moisture"] = (dims, sm, sm_facts.attrs())
            if opt["days"] in nc.variables and opt["seconds"] in nc.variables:
                days = nc[opt["days"]][:].astype(np.int64)
                secs = nc[opt["seconds"]][:].astype(np.int64)
                bad = (days == opt["time_fill"]) | (secs == opt["time_fill"])
                epoch = np.datetime64(opt["time_epoch"], "ns")
                t = epoch + np.where(bad, 0, days * 86_400 + secs).astype("timedelta64[s]")
                t = np.where(bad, np.datetime64("NaT"), t).astype("datetime64[ns]")
                out["observation_time"] = (dims, t, {"long_name": "mean acquisition time",
                                                     "comment": "UTC"})
            for name in opt["flag_variables"]:
                if name in nc.variables:
                    out[name] = (nc[name].dimensions, nc[name][:], nc_attrs(nc[name]))
            out.attrs["history"] = str(nc.getncattr("history")) if "history" in nc.ncattrs() \
                else ""
        finally:
            nc.close()
        return out
