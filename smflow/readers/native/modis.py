"""MODIS covariates: MOD11A1 land surface temperature (HDF4-EOS), MOD13 NDVI GeoTIFFs,
MOD09A1 surface reflectance (HDF4-EOS) -> NDVI and NSDSI.

All three are on the MODIS sinusoidal grid (sphere R = 6 371 007.181 m). The grid geometry of
the HDF4-EOS files comes from their ``StructMetadata.0`` (``UpperLeftPointMtrs``,
``LowerRightMtrs``, ``XDim``, ``YDim``); coordinates are projected ``x``/``y`` (m) with 2-D
``lat``/``lon`` computed by pyproj.

* MOD11A1: ``land_surface_temperature_day/night`` K (uint16 x 0.02, fill 0, valid raw
  7500-65535), view times (local solar hours), QC per time of day; ``quality_mask_day/night``
  (and ``quality_mask`` = day) from QC bits 0-1 (LST produced) and 6-7 (error <= 2 K).
* MOD13 NDVI GeoTIFF (MODIStsp extracts): ``ndvi`` (1). Two encodings exist in the real set:
  int16 x 1e-4 and float32 already scaled; nodata 32767 in both (MANIFEST §16).
* MOD09A1: ``reflectance_b1..b7`` (int16 x 1e-4, fill -28672), ``ndvi`` = (b2 - b1)/(b2 + b1)
  and ``nsdsi`` = (b6 - b7)/b6, the normalized shortwave-infrared difference soil-moisture index
  NSDSI1 of Yue et al. (2019, ISPRS J. Photogramm. 148, 245-254); ``quality_mask`` from
  ``sur_refl_qc_500m`` (MODLAND QA ideal) and ``sur_refl_state_500m`` (clear, no shadow).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, decode_packed, latlon_coords, reading, register, require,
)


def _sinusoidal_coords(x: np.ndarray, y: np.ndarray, crs: str) -> dict[str, tuple]:
    from pyproj import Transformer

    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    return {
        "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
        "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
        **latlon_coords(lat, lon, ("y", "x")),
    }


def _eos_grid(path: Path, struct: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre x and y of the (first) HDF-EOS grid in ``StructMetadata.0``."""
    def number(key: str) -> str:
        m = re.search(rf"{key}=([^\n]+)", struct)
        if m is None:
            raise GranuleError(path, f"StructMetadata.0 has no {key}; not an HDF-EOS grid file")
        return m.group(1).strip()

    nx, ny = int(number("XDim")), int(number("YDim"))
    ul = [float(v) for v in number("UpperLeftPointMtrs").strip("()").split(",")]
    lr = [float(v) for v in number("LowerRightMtrs").strip("()").split(",")]
    dx, dy = (lr[0] - ul[0]) / nx, (ul[1] - lr[1]) / ny
    return ul[0] + (np.arange(nx) + 0.5) * dx, ul[1] - (np.arange(ny) + 0.5) * dy


class _Hdf4Handler(FileHandler):
    container = "hdf4"

    def _open(self):
        from pyhdf.SD import SD, SDC

        with reading(self.path, "open it as HDF4"):
            return SD(str(self.path), SDC.READ)

    def _sds(self, sd, name: str) -> np.ndarray:
        with reading(self.path, f"read SDS {name!r}"):
            sds = sd.select(name)
            try:
                return np.asarray(sds.get())
            finally:
                sds.endaccess()

    def _grid(self, sd) -> dict[str, tuple]:
        struct = sd.attributes().get("StructMetadata.0", "")
        x, y = _eos_grid(self.path, struct)
        return _sinusoidal_coords(x, y, self.product.options["crs"])


@register
class ModisLstHandler(_Hdf4Handler):
    """MOD11A1 / MYD11A1 daily 1 km LST, day and night."""

    def decode(self) -> xr.Dataset:
        facts = self.product
        sd = self._open()
        try:
            names = sd.datasets()
            require(self.path, names, [facts.variables[0].source, facts.variables[1].source,
                                       *facts.options["qc"].values()], "SDS")
            coords = self._grid(sd)
            dims = ("y", "x")
            shape = (coords["y"][1].size, coords["x"][1].size)
            out = xr.Dataset(coords=coords)
            for v in facts.variables:
                if v.source not in names:
                    continue
                raw = self._sds(sd, v.source)
                if raw.shape != shape:
                    raise GranuleError(self.path, f"SDS {v.source} has shape {raw.shape}, the "
                                       f"grid in StructMetadata is {shape}")
                out[v.name] = (dims, decode_packed(raw, scale=v.scale, fills=v.fills,
                                                   valid_raw=v.valid_raw, dtype=np.float32),
                               v.attrs())
            rule = facts.flag_rules[0]
            for when, qc_name in facts.options["qc"].items():
                qc = self._sds(sd, qc_name)
                lst = f"land_surface_temperature_{when}"
                passes = np.isfinite(out[lst].values) & rule.passes(qc)
                out[f"qc_{when}"] = (dims, qc, {
                    "long_name": f"MOD11 QC, {when}", "flag_masks": np.array([3, 12, 48, 192]),
                    "flag_meanings": "mandatory_qa data_quality emissivity_error lst_error"})
                out[lst] = (dims, self.quality(passes, out[lst].values), {
                    **out[lst].attrs, "ancillary_variables": f"quality_mask_{when} qc_{when}"})
                out[f"quality_mask_{when}"] = self.mask_variable(passes, dims, rule.meaning)
            out["quality_mask"] = out["quality_mask_day"]
            core = sd.attributes().get("CoreMetadata.0", "")
        finally:
            sd.end()
        m = re.search(r"RANGEBEGINNINGDATE\s+NUM_VAL\s*=\s*1\s+VALUE\s*=\s*\"([\d-]+)\"", core)
        if m:
            out = out.assign_coords(time=((), np.datetime64(m.group(1), "ns"),
                                          {"standard_name": "time"}))
        return out


@register
class ModisReflectanceHandler(_Hdf4Handler):
    """MOD09A1 8-day 500 m surface reflectance -> NDVI and NSDSI (NSDSI1, Yue et al. 2019)."""

    def decode(self) -> xr.Dataset:
        facts = self.product
        opt = facts.options
        sd = self._open()
        try:
            names = sd.datasets()
            require(self.path, names, [v.source for v in facts.variables]
                    + [r.variable for r in facts.flag_rules], "SDS")
            coords = self._grid(sd)
            dims = ("y", "x")
            shape = (coords["y"][1].size, coords["x"][1].size)
            out = xr.Dataset(coords=coords)
            for v in facts.variables:
                raw = self._sds(sd, v.source)
                if raw.shape != shape:
                    raise GranuleError(self.path, f"SDS {v.source} has shape {raw.shape}, the "
                                       f"grid in StructMetadata is {shape}")
                out[v.name] = (dims, decode_packed(raw, scale=v.scale, fills=v.fills,
                                                   valid_raw=v.valid_raw, dtype=np.float32),
                               v.attrs())
            passes = np.ones(shape, dtype=bool)
            for rule in facts.flag_rules:
                flags = self._sds(sd, rule.variable)
                out[rule.variable] = (dims, flags, {"long_name": rule.variable})
                passes &= rule.passes(flags)
        finally:
            sd.end()
        b = {k: out[f"reflectance_b{k}"].values.astype(np.float64) for k in range(1, 8)}
        red, nir = (b[k] for k in opt["ndvi_bands"])
        swir1, swir2 = (b[k] for k in opt["nsdsi_bands"])
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - red) / (nir + red)
            nsdsi = (swir1 - swir2) / swir1
        ndvi[~np.isfinite(ndvi) | (np.abs(ndvi) > 1)] = np.nan
        nsdsi[~np.isfinite(nsdsi)] = np.nan
        passes &= np.isfinite(ndvi)
        out["ndvi"] = (dims, self.quality(passes, ndvi).astype(np.float32), {
            "units": "1", "long_name": "normalized difference vegetation index (b2-b1)/(b2+b1)",
            "ancillary_variables": "quality_mask"})
        out["nsdsi"] = (dims, self.quality(passes, nsdsi).astype(np.float32), {
            "units": "1", "long_name": "normalized shortwave-infrared difference soil-moisture "
            "index NSDSI1 = (b6 - b7) / b6", "references": "Yue et al. (2019) ISPRS J. "
            "Photogramm. Remote Sens. 148, 245-254"})
        out["quality_mask"] = self.mask_variable(passes, dims, "; ".join(
            r.meaning for r in facts.flag_rules))
        return out


@register
class NdviGeoTiffHandler(FileHandler):
    """MOD13 NDVI GeoTIFF (int16 x 1e-4 or float32, nodata 32767)."""

    container = "tiff"

    def decode(self) -> xr.Dataset:
        from smflow.readers.native.terrain import read_raster

        facts = self.product
        opt = facts.options
        raster = read_raster(self.path, dtypes=opt.get("dtypes"),
                             projection=opt.get("projection"))
        raw = raster.data
        v = facts.variables[0]
        fills = (*v.fills, *(() if raster.nodata is None else (raster.nodata,)))
        if np.issubdtype(raw.dtype, np.integer):
            ndvi = decode_packed(raw, scale=opt["int_scale"], fills=fills,
                                 valid_raw=opt["valid_raw_int"], dtype=np.float32)
            encoding = "int16 x 1e-4"
        else:
            ndvi = decode_packed(raw, fills=fills, valid_raw=opt["valid_float"],
                                 dtype=np.float32)
            encoding = "float32, already scaled"
        out = xr.Dataset(coords=raster.coords)
        out["ndvi"] = (raster.dims, ndvi, v.attrs(encoding=encoding))
        m = re.search(r"_(\d{4})_(\d{3})\.tif$", self.path.name)
        if m:
            day = np.datetime64(f"{m.group(1)}-01-01", "ns") + np.timedelta64(
                int(m.group(2)) - 1, "D")
            out = out.assign_coords(time=((), day, {"standard_name": "time", "comment":
                                                    "start of the 16-day composite"}))
        return out
