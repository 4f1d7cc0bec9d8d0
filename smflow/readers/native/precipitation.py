"""Precipitation grids: CHIRPS daily GeoTIFF, DWD RADOLAN RW hourly ASCII grids, NWS RFC QPE.

All return ``precipitation_amount`` in kg m-2 (= mm) over the product's accumulation period
(``cell_methods``) on the product's own grid.

* CHIRPS v2.0 daily (MANIFEST §17): float32 mm/day, EPSG:4326; negative values (-9999 in the
  global files) are missing.
* RADOLAN RW (MANIFEST §18): a daily ``RW-YYYYMMDD.tar.gz`` of 24 ESRI ASCII grids (or one
  ``RW_YYYYMMDD-HH50.asc``), 900 x 900 km at 1 km on the RADOLAN polar stereographic projection
  (no ``.prj`` is shipped; the projection is a product fact), values in 0.1 mm, -1 = no data ->
  ``precipitation_amount(time, y, x)`` with 2-D ``lat``/``lon``.
* NWS QPE (MANIFEST §19): ``amountofprecip(hrapy, hrapx)`` in 1/100 mm, -1 missing, on the
  HRAP polar stereographic grid (60 N true latitude, 105 W, R = 6 371 200 m, 4762.5 m mesh,
  pole at HRAP (401, 1601)); the file's ``hrap_xor``/``hrap_yor`` offsets locate the grid and its
  corner ``lat``/``lon`` (given west-positive) are checked against the computed ones.
"""

from __future__ import annotations

import io
import re
import tarfile

import numpy as np
import pandas as pd
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, decode_packed, latlon_coords, nc_attrs, open_netcdf, reading, register, require,
)


def _projected_coords(x: np.ndarray, y: np.ndarray, crs: str) -> dict[str, tuple]:
    from pyproj import Transformer

    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    return {"x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
            "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
            **latlon_coords(lat, lon, ("y", "x"))}


@register
class PrecipitationGridHandler(FileHandler):
    """Daily precipitation GeoTIFF (CHIRPS)."""

    container = "tiff"

    def decode(self) -> xr.Dataset:
        from smflow.readers.native.terrain import read_raster

        v = self.product.variables[0]
        raster = read_raster(self.path, dtypes=self.product.options.get("dtypes"),
                             projection=self.product.options.get("projection"))
        fills = (*v.fills, *(() if raster.nodata is None else (raster.nodata,)))
        data = decode_packed(raster.data, fills=fills, valid_raw=(0.0, np.inf),
                             dtype=np.float32)
        out = xr.Dataset(coords=raster.coords)
        out["precipitation_amount"] = (raster.dims, data, v.attrs(
            cell_methods="time: sum (interval: 1 day)"))
        m = re.search(r"(\d{4})\.(\d\d)\.(\d\d)\.tif$", self.path.name)
        if m:
            out = out.assign_coords(time=((), np.datetime64("-".join(m.groups()), "ns"),
                                          {"standard_name": "time", "comment": "day (UTC)"}))
        return out


def _read_ascii_grid(name: str, payload: bytes, path) -> tuple[dict, np.ndarray]:
    header = {}
    lines = payload.split(b"\n", 6)
    if len(lines) < 7:
        raise GranuleError(path, f"{name}: ESRI ASCII header is incomplete")
    for line in lines[:6]:
        key, value = line.split()
        header[key.decode().lower()] = float(value)
    frame = pd.read_csv(io.BytesIO(lines[6]), sep=r"\s+", header=None, dtype=np.float64,
                        engine="c")
    grid = frame.to_numpy()
    shape = (int(header["nrows"]), int(header["ncols"]))
    if grid.shape != shape or np.isnan(grid).any():
        raise GranuleError(path, f"{name}: grid is {grid.shape} with {int(np.isnan(grid).sum())} "
                           f"empty fields, header says {shape}; truncated")
    return header, grid


@register
class RadolanHandler(FileHandler):
    """DWD RADOLAN RW hourly sums (daily tarball of ESRI ASCII grids, or one grid)."""

    container = "gzip"

    def __init__(self, path, product, **kw):
        super().__init__(path, product, **kw)
        if self.path.suffix == ".asc":
            self.container = "text"
        elif self.path.suffix == ".tar":
            self.container = "binary"

    def decode(self) -> xr.Dataset:
        v = self.product.variables[0]
        grids: list[tuple[str, bytes]] = []
        if self.path.suffix == ".asc":
            grids.append((self.path.name, self.path.read_bytes()))
        else:
            with tarfile.open(self.path, "r:*") as tar:
                for member in sorted(tar.getmembers(), key=lambda m: m.name):
                    if member.isfile() and member.name.endswith(".asc"):
                        grids.append((member.name, tar.extractfile(member).read()))
        if not grids:
            raise GranuleError(self.path, "holds no RW_*.asc grid")
        times, fields, header0 = [], [], None
        for name, payload in grids:
            m = re.search(r"RW_(\d{8})-(\d\d)(\d\d)\.asc$", name)
            if m is None:
                raise GranuleError(self.path, f"member {name!r} is not named RW_YYYYMMDD-HHMM")
            header, grid = _read_ascii_grid(name, payload, self.path)
            if header0 is None:
                header0 = header
            elif header != header0:
                raise GranuleError(self.path, f"{name}: grid header differs from the first")
            d = m.group(1)
            times.append(np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:]}T{m.group(2)}:{m.group(3)}",
                                       "ns"))
            fields.append(decode_packed(grid, scale=v.scale, fills=(header["nodata_value"],),
                                        valid_raw=(0, np.inf), dtype=np.float32))
        size = header0["cellsize"]
        nrows, ncols = int(header0["nrows"]), int(header0["ncols"])
        x = header0["xllcorner"] + (np.arange(ncols) + 0.5) * size
        y = header0["yllcorner"] + (nrows - np.arange(nrows) - 0.5) * size  # row 0 = north
        out = xr.Dataset(coords={**_projected_coords(x, y, self.product.options["crs"]),
                                 "time": ("time", np.array(times), {
                                     "standard_name": "time",
                                     "comment": "end of the hourly accumulation (UTC)"})})
        out["precipitation_amount"] = (("time", "y", "x"), np.stack(fields), v.attrs(
            cell_methods="time: sum (interval: 1 hour)"))
        out["crs"] = ((), np.int32(0), {"crs_wkt": self.product.options["crs"]})
        return out


@register
class NwsQpeHandler(FileHandler):
    """NWS RFC 24-h multisensor QPE on the HRAP grid."""

    container = "netcdf3"

    def decode(self) -> xr.Dataset:
        from pyproj import Transformer

        facts = self.product
        opt = facts.options
        v = facts.variables[0]
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, [v.source, "lat", "lon", "hrap_xor", "hrap_yor"])
            raw = np.asarray(nc[v.source][:])
            attrs = nc_attrs(nc[v.source])
            xor, yor = float(nc["hrap_xor"][...]), float(nc["hrap_yor"][...])
            corner_lat = np.asarray(nc["lat"][:], dtype=np.float64)
            corner_lon = -np.asarray(nc["lon"][:], dtype=np.float64)  # given west-positive
            true_lon = -float(nc["true_lon"][...]) if "true_lon" in nc.variables else -105.0
        finally:
            nc.close()
        if str(attrs.get("units", "")).strip() != "1/100 mm":
            raise GranuleError(self.path, f"{v.source} has units {attrs.get('units')!r}, "
                               "expected '1/100 mm'")
        ny, nx = raw.shape
        mesh = opt["hrap_mesh_m"]
        px, py = opt["hrap_pole"]
        # Cell (i, j) spans HRAP x in [xor + i, xor + i + 1]: centres at + 0.5; the file's
        # corner lat/lon are the grid's outer edges (checked below).
        x = (np.arange(nx) + 0.5 + xor - px) * mesh
        y = (np.arange(ny) + 0.5 + yor - py) * mesh
        crs = (f"+proj=stere +lat_0=90 +lat_ts={opt['true_lat']} +lon_0={true_lon} "
               f"+R={opt['earth_radius']} +units=m +no_defs")
        coords = _projected_coords(x, y, crs)
        edge_x = (np.array([0, nx, nx, 0]) + xor - px) * mesh
        edge_y = (np.array([0, 0, ny, ny]) + yor - py) * mesh
        lon_c, lat_c = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
            edge_x, edge_y)
        err = float(max(np.abs(lat_c - corner_lat).max(), np.abs(lon_c - corner_lon).max()))
        if err > 0.05:
            raise GranuleError(self.path, f"HRAP grid corners computed from hrap_xor/yor differ "
                               f"from the file's corner lat/lon by {err:.3f} deg; grid offsets "
                               "or corners are corrupt")
        data = decode_packed(raw, scale=v.scale, fills=v.fills, valid_raw=v.valid_raw,
                             dtype=np.float32)
        out = xr.Dataset(coords=coords)
        out["precipitation_amount"] = (("y", "x"), data, v.attrs(
            cell_methods="time: sum (interval: 24 hours)",
            comment=f"period ending {attrs.get('dateofdata', '')}"))
        out["crs"] = ((), np.int32(0), {"crs_wkt": crs})
        date = str(attrs.get("dateofdata", ""))
        if re.fullmatch(r"\d{10}Z", date):
            out = out.assign_coords(time=((), np.datetime64(
                f"{date[:4]}-{date[4:6]}-{date[6:8]}T{date[8:10]}:00", "ns"),
                {"standard_name": "time", "comment": "end of the 24-h period"}))
        return out
