"""Copernicus Global Land Service 1 km Surface Soil Moisture (SSM) and Soil Water Index (SWI).

Both are netCDF-4 images ``(time=1, lat, lon)`` of uint8 counts x 0.5 % (MANIFEST §11): valid
counts 0..200, 255 fill, and flag codes in the same variable (241 ExceedingMin, 242
ExceedingMax, 251 WaterMask, 252 SensitivityMask, 253 SlopeMask, 254 LowQFLAG for SWI).
SSM -> ``degree_of_saturation`` (percent, degree of saturation of the top few cm) with
``degree_of_saturation_noise``; SWI -> ``soil_water_index(characteristic_time, lat, lon)`` for
the T values in the file with ``quality_flag`` (QFLAG, percent) and the surface state flag.
``quality_mask`` is True where the count is a value (not a flag or the fill), and for SWI also
where the surface state is unknown or unfrozen. An all-fill granule (06-02 SSM: no Sentinel-1
overpass) is a valid, empty day, not an error.
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from smflow.readers.native.base import (
    FileHandler, axis_coords, decode_packed, flag_attrs, nc_attrs, nc_time, open_netcdf,
    register, require,
)


@register
class CglsHandler(FileHandler):
    """CGLS SSM 1 km / SWI 1 km image, flag codes decoded."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        facts = self.product
        codes = facts.options["flag_codes"]
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, ["lat", "lon", "time"])
            present = [v for v in facts.variables if v.source in nc.variables]
            require(self.path, nc.variables, [facts.variables[0].source] if facts.name ==
                    "cgls_ssm_1km" else [v.source for v in present][:1] or ["SWI_005"])
            time = nc_time(self.path, nc["time"])
            out = xr.Dataset(coords={**axis_coords(nc["lat"][:], nc["lon"][:]),
                                     "time": ((), time[0], {"standard_name": "time"})})
            dims = ("lat", "lon")
            flag_meta = flag_attrs(values=list(codes), meanings=list(codes.values()),
                                   comment="255 = fill")
            if facts.name == "cgls_ssm_1km":
                main = facts.variables[0]
                raw = np.asarray(nc[main.source][:][0])
                value = decode_packed(raw, scale=main.scale, fills=main.fills,
                                      valid_raw=main.valid_raw, dtype=np.float32)
                passes = np.isfinite(value)
                out[main.name] = (dims, self.quality(passes, value), main.attrs(
                    ancillary_variables="quality_mask ssm_flag"))
                out["ssm_flag"] = (dims, np.where(np.isin(raw, list(codes)), raw, 0).astype(
                    np.uint8), {**flag_meta, "long_name": "SSM flag code (0 = value)"})
                noise = facts.variables[1]
                if noise.source in nc.variables:
                    out[noise.name] = (dims, decode_packed(
                        np.asarray(nc[noise.source][:][0]), scale=noise.scale,
                        fills=noise.fills, valid_raw=noise.valid_raw, dtype=np.float32),
                        noise.attrs())
                rules = "count 0..200 (not a flag code or the fill)"
            else:
                t_days = [int(re.search(r"\d+", v.source).group()) for v in present]
                raws = np.stack([np.asarray(nc[v.source][:][0]) for v in present])
                main = present[0]
                value = decode_packed(raws, scale=main.scale, fills=main.fills,
                                      valid_raw=main.valid_raw, dtype=np.float32)
                passes = np.isfinite(value)
                ssf_name = facts.options["ssf"]
                if ssf_name in nc.variables:
                    ssf = np.asarray(nc[ssf_name][:][0])
                    passes &= np.isin(ssf, facts.options["ssf_ok"])[None]
                    out["surface_state_flag"] = (dims, ssf, nc_attrs(
                        nc[ssf_name], ("long_name", "flag_values", "flag_meanings")))
                cdims = ("characteristic_time", *dims)
                out = out.assign_coords(characteristic_time=("characteristic_time", t_days, {
                    "units": "days", "long_name": "characteristic time T of the SWI filter"}))
                out["soil_water_index"] = (cdims, self.quality(passes, value), {
                    **main.attrs(), "long_name": "soil water index (percent of saturation "
                    "of the root zone)", "ancillary_variables": "quality_mask swi_flag"})
                out["swi_flag"] = (cdims, np.where(np.isin(raws, list(codes)), raws, 0).astype(
                    np.uint8), {**flag_meta, "long_name": "SWI flag code (0 = value)"})
                qnames = [facts.options["qflag"].format(t=v.source.split("_")[1])
                          for v in present]
                if all(q in nc.variables for q in qnames):
                    q = np.stack([np.asarray(nc[n][:][0]) for n in qnames])
                    out["quality_flag"] = (cdims, decode_packed(
                        q, scale=0.5, fills=(255,), valid_raw=(0, 200), dtype=np.float32),
                        {"units": "percent", "long_name": "QFLAG: quality of the SWI"})
                rules = "count 0..200 (not a flag code or the fill); surface state unknown "\
                    "or unfrozen"
            out["quality_mask"] = self.mask_variable(passes, out[main.name].dims, rules)
        finally:
            nc.close()
        return out
