"""ESA CCI Soil Moisture and C3S Soil Moisture daily L3S images (netCDF-4 classic).

``sm`` is m3 m-3 for PASSIVE and COMBINED and percent of saturation for ACTIVE (the file's
``units`` attribute says which; MANIFEST §7); fill -9999. ``flag`` (int8, fill 127) is a bit
sum (1 snow/frozen, 2 dense vegetation, 4 no convergence, 8 above physical bound, 16 low
merging weight, ...), although the file's ``flag_values`` list only a few sums; a value is used
where ``flag == 0`` (same rule as the C3S cell product in :mod:`smflow.products`).

Output (dims ``lat, lon`` on the file's 0.25 deg grid, scalar ``time``): ``soil_moisture``
(m3 m-3) or ``degree_of_saturation`` (percent) for ACTIVE, the matching ``_uncertainty``,
``observation_time`` from ``t0``, the raw ``flag`` with CF ``flag_masks``, ``quality_mask``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, axis_coords, decode_packed, flag_attrs, nc_attrs, nc_time, offsets_to_datetime,
    open_netcdf, register, require,
)


@register
class CciHandler(FileHandler):
    """ESA CCI / C3S SM daily image (ACTIVE in percent of saturation, others in m3 m-3)."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        facts = self.product
        opt = facts.options
        sm_f = facts.var("soil_moisture")
        unc_f = facts.var("soil_moisture_uncertainty")
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, [sm_f.source, "flag", "lat", "lon", "time"])
            units = str(nc[sm_f.source].getncattr("units")).strip() \
                if "units" in nc[sm_f.source].ncattrs() else ""
            percent = units.lower() in opt["percent_units"]
            name = "degree_of_saturation" if percent else "soil_moisture"
            out_units = "percent" if percent else "m3 m-3"
            if not percent and units not in ("m3 m-3", "m3/m3", "m^3 m^-3", "m3.m-3"):
                raise GranuleError(self.path, f"{sm_f.source} has units {units!r}; expected "
                                   "m3 m-3 (PASSIVE/COMBINED) or percent (ACTIVE)")
            time = nc_time(self.path, nc["time"])
            dims = ("lat", "lon")
            sm = decode_packed(nc[sm_f.source][:][0], fills=sm_f.fills, dtype=np.float32)
            flag_raw = np.asarray(nc["flag"][:][0])
            passes = np.isfinite(sm) & (flag_raw != opt["flag_fill"])
            for rule in facts.flag_rules:
                passes &= rule.passes(flag_raw)
            out = xr.Dataset(coords={**axis_coords(nc["lat"][:], nc["lon"][:]),
                                     "time": ((), time[0], {"standard_name": "time"})})
            attrs = {"units": out_units, "long_name": nc_attrs(nc[sm_f.source]).get(
                "long_name", name), "source_variable": sm_f.source,
                "ancillary_variables": "quality_mask flag"}
            if not percent:
                attrs["standard_name"] = sm_f.standard_name
            out[name] = (dims, self.quality(passes, sm), attrs)
            if unc_f.source in nc.variables:
                out[f"{name}_uncertainty"] = (dims, decode_packed(
                    nc[unc_f.source][:][0], fills=unc_f.fills, dtype=np.float32),
                    {"units": out_units, "long_name": "standard deviation of the observation"})
            out["flag"] = (dims, flag_raw, flag_attrs(
                masks=opt["flag_masks"], meanings=opt["flag_meanings"],
                comment=f"bit sum; {opt['flag_fill']} = fill (no retrieval)"))
            out["quality_mask"] = self.mask_variable(
                passes, dims, "finite value; " + "; ".join(r.meaning for r in facts.flag_rules))
            if "t0" in nc.variables:
                t0_range = nc_attrs(nc["t0"]).get("valid_range")
                t0 = decode_packed(nc["t0"][:][0], fills=(-9999.0,),
                                   valid_raw=tuple(t0_range) if t0_range else None)
                out["observation_time"] = (dims, offsets_to_datetime(
                    "1970-01-01T00:00:00", t0, 86_400.0),
                    {"long_name": "observation time", "comment": "UTC"})
            for extra in ("sensor", "freqbandID", "mode", "dnflag"):
                if extra in nc.variables:
                    out[extra] = (dims, np.asarray(nc[extra][:][0]),
                                  nc_attrs(nc[extra], ("long_name", "flag_values",
                                                       "flag_meanings")))
        finally:
            nc.close()
        return out
