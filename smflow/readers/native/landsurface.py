"""Land masks, land cover and model static maps.

* ERA5 / ERA5-Land land definitions (``landmask_0.25_0.25.nc``, ``landmask_0.1_0.1.nc``):
  ``land(latitude, longitude)`` 0/1 float, NaN south of -60 deg, latitudes descending, longitudes
  0..360 -> ``land_mask`` bool (NaN -> False) on -180..180.
* GLOBE 30" mask (``globe_combined_mask_compressed.npz``): ``mask`` True = water, 21 600 x
  43 200 -> ``land_mask`` (True = land). ``bbox=(lon_min, lat_min, lon_max, lat_max)`` reads only
  the rows of the box from the compressed member (the full mask is 0.9 GB as booleans).
* GLCNMO land cover GeoTIFF: ``land_cover`` class codes (uint8) with CF ``flag_values`` and
  ``flag_meanings`` of the 20-class legend; nodata 241 -> 0 ("no data").
* wflow ``staticmaps.nc`` (HydroMT): the covariates of the downscaling stack renamed to the
  field's terms (``elevation``, ``slope``, ``leaf_area_index``, ``land_cover``,
  ``soil_porosity``, ``soil_texture``); MERIT-derived, never to leave the shared folder.
"""

from __future__ import annotations

import zipfile

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, axis_coords, decode_packed, flag_attrs, open_netcdf, reading, register, require,
)


@register
class LandMaskHandler(FileHandler):
    """ERA5/ERA5-Land land definition netCDF or the GLOBE 30" npz mask."""

    container = "netcdf"

    def __init__(self, path, product, **kw):
        super().__init__(path, product, **kw)
        if self.path.suffix == ".npz":
            self.container = "zip"

    def decode(self) -> xr.Dataset:
        if self.container == "zip":
            return self._globe(self.options.get("bbox"))
        v = self.product.variables[0]
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, [v.source, "latitude", "longitude"])
            land = np.asarray(nc[v.source][:], dtype=np.float64)
            lat = np.asarray(nc["latitude"][:], dtype=np.float64)
            lon = np.asarray(nc["longitude"][:], dtype=np.float64)
            cut = nc[v.source].getncattr("cut_off_at") if "cut_off_at" in \
                nc[v.source].ncattrs() else None
        finally:
            nc.close()
        bad = np.isfinite(land) & ~np.isin(land, (0.0, 1.0))
        if bad.any():
            raise GranuleError(self.path, f"land has {int(bad.sum())} values other than 0/1/NaN")
        coords = axis_coords(lat, lon)
        order = np.argsort(coords["lon"][1])
        coords["lon"] = ("lon", coords["lon"][1][order], coords["lon"][2])
        out = xr.Dataset(coords=coords)
        out["land_mask"] = (("lat", "lon"), np.nan_to_num(land[:, order]) == 1.0, {
            **v.attrs(), "flag_values": np.array([0, 1], np.int8),
            "flag_meanings": "sea_or_undefined land",
            "comment": f"NaN in the file (south of {cut}) -> False"})
        return out

    def _globe(self, bbox) -> xr.Dataset:
        v = self.product.variables[0]
        with zipfile.ZipFile(self.path) as zf:
            require(self.path, [n.removesuffix(".npy") for n in zf.namelist()],
                    ["mask", "lat", "lon"], "array")
            lat = np.load(zf.open("lat.npy"))
            lon = np.load(zf.open("lon.npy"))
            rows = slice(0, lat.size)
            cols = slice(0, lon.size)
            if bbox is not None:
                lon_min, lat_min, lon_max, lat_max = bbox
                r = np.flatnonzero((lat >= lat_min) & (lat <= lat_max))
                c = np.flatnonzero((lon >= lon_min) & (lon <= lon_max))
                if not r.size or not c.size:
                    raise ValueError(f"bbox {bbox} holds no GLOBE pixel")
                rows, cols = slice(r[0], r[-1] + 1), slice(c[0], c[-1] + 1)
            with zf.open("mask.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(fh)
                if fortran or len(shape) != 2 or shape != (lat.size, lon.size):
                    raise GranuleError(self.path, f"mask.npy is {shape} (fortran={fortran}); "
                                       f"lat/lon give {(lat.size, lon.size)}")
                row_bytes = shape[1] * dtype.itemsize
                fh.seek(rows.start * row_bytes, 1)  # a forward seek decompresses and discards
                n = rows.stop - rows.start
                buf = fh.read(n * row_bytes)
                if len(buf) != n * row_bytes:
                    raise GranuleError(self.path, "mask.npy ends early; the file is truncated")
                water = np.frombuffer(buf, dtype=dtype).reshape(n, shape[1])[:, cols]
        out = xr.Dataset(coords=axis_coords(lat[rows], lon[cols]))
        out["land_mask"] = (("lat", "lon"), ~water.astype(bool), {
            **v.attrs(), "flag_values": np.array([0, 1], np.int8), "flag_meanings": "water land",
            "comment": "GLOBE 30 arc-second DEM 'no data over ocean' inverted"})
        return out


@register
class LandCoverHandler(FileHandler):
    """Categorical land-cover GeoTIFF (GLCNMO)."""

    container = "tiff"

    def decode(self) -> xr.Dataset:
        from smflow.readers.native.terrain import read_raster

        facts = self.product
        v = facts.variables[0]
        raster = read_raster(self.path, dtypes=facts.options.get("dtypes"),
                             projection=facts.options.get("projection"))
        classes = facts.options["classes"]
        raw = raster.data.astype(np.int64)
        nodata = np.isin(raw, [*v.fills, *(() if raster.nodata is None else (raster.nodata,))])
        unknown = ~nodata & ~np.isin(raw, list(classes))
        if unknown.any():
            raise GranuleError(self.path, f"{int(unknown.sum())} pixels hold codes "
                               f"{sorted(set(raw[unknown].tolist()))[:10]} outside the legend")
        out = xr.Dataset(coords=raster.coords)
        out["land_cover"] = (raster.dims, np.where(nodata, 0, raw).astype(np.uint8), {
            **v.attrs(), **flag_attrs(values=[0, *classes], meanings=["no_data",
                                                                       *classes.values()])})
        if raster.crs_wkt:
            out["crs"] = ((), np.int32(0), {"crs_wkt": raster.crs_wkt})
        return out


@register
class StaticMapsHandler(FileHandler):
    """HydroMT/wflow static maps: the downscaling covariates, renamed and unit-checked."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        facts = self.product
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, [facts.variables[0].source, "latitude",
                                              "longitude"])
            out = xr.Dataset(coords=axis_coords(nc["latitude"][:], nc["longitude"][:]))
            for v in facts.variables:
                if v.source not in nc.variables:
                    continue
                var = nc[v.source]
                fills = [*v.fills, *([var.getncattr("_FillValue")] if "_FillValue" in
                                     var.ncattrs() else [])]
                data = decode_packed(var[:], fills=fills, dtype=np.float32)
                dims = tuple({"latitude": "lat", "longitude": "lon"}.get(d, d)
                             for d in var.dimensions)
                if v.name in ("land_cover", "soil_texture"):
                    data = np.where(np.isfinite(data), data, 0).astype(np.int16)
                out[v.name] = (dims, data, v.attrs())
            if "time" in out.dims:
                out = out.assign_coords(month=("time", np.arange(1, out.sizes["time"] + 1)))
        finally:
            nc.close()
        return out
