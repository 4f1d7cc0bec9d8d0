"""Terrain covariates: SRTM ``.hgt`` tiles, GTOPO30 GeoTIFF, ETOPO 20' text, GMT netCDF DEMs.

Every handler returns ``elevation`` (m above mean sea level, negative = below, e.g.
bathymetry) and ``slope`` (degrees, from centred differences of the elevation on the grid's
metric spacing) on the DEM's own grid: 1-D ``lat``/``lon`` for geographic grids, ``x``/``y``
with 2-D ``lat``/``lon`` for projected ones.

* SRTM (MANIFEST §15): big-endian int16, 1201 x 1201 (3") or 3601 x 3601 (1"), row 0 = north,
  void -32768, sample centres on whole degrees at the tile edges; the tile's SW corner is in its
  name (``N38W028``). Read from the LP DAAC ``.zip`` without unpacking (zip CRC checked) or as a
  bare ``.hgt``; a file of any other size is truncated or not SRTM.
* GTOPO30 GeoTIFF: the real file has no CRS and no nodata tag; WGS84 lat/lon is assumed and
  said so in ``crs_assumed``; ocean -9999.
* ETOPO 20' (basemap): ``etopo20data.gz`` (540 x 1081), ``etopo20lats.gz``,
  ``etopo20lons.gz`` (20.167 ... 380.167, the last column repeating the first: dropped, then
  wrapped to -180..180). Any of the three names opens the set.
* GMT grids (``HI_topo_04.nc``, ``FR+IT.nc``, ``Kilauea.utm.nc``): ``z`` int16 with optional
  ``scale_factor`` and ``units`` -- ``HI_topo_04`` stores metres with scale 0.001 and units
  "km", so CF decoding gives km; the reader converts to m. Longitudes 0..360 are wrapped;
  ``Kilauea.utm.nc`` is projected (UTM 5N from its ``grid_mapping`` WKT).
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, axis_coords, decode_packed, latlon_coords, nc_attrs, open_netcdf, reading,
    register, require,
)

EARTH_RADIUS_M = 6_371_007.181


def slope_degrees(elevation: np.ndarray, *, lat: np.ndarray | None = None,
                  lon: np.ndarray | None = None, x: np.ndarray | None = None,
                  y: np.ndarray | None = None) -> np.ndarray:
    """Terrain slope [degrees] of a 2-D elevation grid [m].

    Parameters
    ----------
    elevation : ndarray, shape (ny, nx)
        Elevation [m]; NaN propagates to its neighbours.
    lat, lon : ndarray, optional
        1-D geographic axes [degrees] (spacing converted to metres on a sphere of radius
        6 371 007 m; east-west spacing shrinks with cos(lat)).
    x, y : ndarray, optional
        1-D projected axes [m] (used when given instead of lat/lon).

    Returns
    -------
    ndarray
        Slope [degrees], 0 = flat.

    Notes
    -----
    .. math:: \\theta = \\arctan \\sqrt{(\\partial z / \\partial x)^2 + (\\partial z / \\partial y)^2}

    with centred differences inside and one-sided differences at the edges (``numpy.gradient``).
    """
    z = np.asarray(elevation, dtype=np.float64)
    if x is not None and y is not None:
        dzdy, dzdx = np.gradient(z, np.asarray(y, float), np.asarray(x, float))
    else:
        if lat is None or lon is None:
            raise ValueError("Pass lat and lon (geographic grid) or x and y (projected grid).")
        lat_r, lon_r = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
        dzdy = np.gradient(z, EARTH_RADIUS_M * lat_r, axis=0)
        dzdx = np.gradient(z, lon_r, axis=1) / (EARTH_RADIUS_M * np.cos(lat_r))[:, None]
    return np.degrees(np.arctan(np.hypot(dzdx, dzdy)))


@dataclass
class Raster:
    """A single-band raster with CF coordinates."""

    data: np.ndarray
    nodata: float | None
    dims: tuple[str, str]
    coords: dict[str, tuple]
    crs_wkt: str | None


def read_raster(path: Path, *, default_crs: str | None = None, dtypes: str | None = None,
                projection: str | None = None) -> Raster:
    """Band 1 of a GDAL-readable raster (GeoTIFF, SRTMHGT, ...) with pixel-centre coordinates.

    ``dtypes`` (numpy kind letters, e.g. ``"iu"``) and ``projection`` (``"geographic"`` or a
    word of the CRS WKT such as ``"Sinusoidal"``) are what the product's facts expect; a raster
    of another product fails here instead of being decoded into nonsense.
    """
    import rasterio
    from pyproj import CRS, Transformer

    with reading(path, "read it as a raster"), rasterio.open(path) as src:
        data = src.read(1)
        transform, nodata = src.transform, src.nodata
        crs = src.crs.to_wkt() if src.crs else None
        height, width = src.height, src.width
    if dtypes and data.dtype.kind not in dtypes:
        raise GranuleError(path, f"raster holds {data.dtype} values; this product stores "
                           f"{'/'.join({'i': 'int', 'u': 'uint', 'f': 'float'}[k] for k in dtypes)}"
                           ": a file of another product?")
    if projection and crs:
        geographic = CRS.from_wkt(crs).is_geographic
        ok = geographic if projection == "geographic" else projection.lower() in crs.lower()
        if not ok:
            raise GranuleError(path, f"raster is not on a {projection} grid (CRS "
                               f"{CRS.from_wkt(crs).name!r}): a file of another product?")
    if transform.b != 0 or transform.d != 0:
        raise GranuleError(path, "rotated rasters are not supported")
    xs = transform.c + (np.arange(width) + 0.5) * transform.a
    ys = transform.f + (np.arange(height) + 0.5) * transform.e
    crs = crs or (CRS.from_user_input(default_crs).to_wkt() if default_crs else None)
    if crs is None or CRS.from_wkt(crs).is_geographic:
        return Raster(data, nodata, ("lat", "lon"), axis_coords(ys, xs), crs)
    xx, yy = np.meshgrid(xs, ys)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    coords = {"x": ("x", xs, {"standard_name": "projection_x_coordinate", "units": "m"}),
              "y": ("y", ys, {"standard_name": "projection_y_coordinate", "units": "m"}),
              **latlon_coords(lat, lon, ("y", "x"))}
    return Raster(data, nodata, ("y", "x"), coords, crs)


def _dem_dataset(elevation: np.ndarray, dims: tuple[str, str], coords: dict, facts_var,
                 crs_wkt: str | None = None, **attrs) -> xr.Dataset:
    out = xr.Dataset(coords=coords)
    out["elevation"] = (dims, elevation.astype(np.float32), facts_var.attrs(**attrs))
    if dims == ("lat", "lon"):
        slope = slope_degrees(elevation, lat=coords["lat"][1], lon=coords["lon"][1])
    else:
        slope = slope_degrees(elevation, x=coords["x"][1], y=coords["y"][1])
    out["slope"] = (dims, slope.astype(np.float32), {
        "units": "degree", "long_name": "terrain slope", "standard_name": "ground_slope_angle",
        "comment": "centred differences of elevation on the grid spacing"})
    if crs_wkt:
        out["crs"] = ((), np.int32(0), {"crs_wkt": crs_wkt, "spatial_ref": crs_wkt})
        out["elevation"].attrs["grid_mapping"] = "crs"
    return out


@register
class SrtmHandler(FileHandler):
    """SRTM 1"/3" tile, ``.hgt`` or the LP DAAC ``.hgt.zip``."""

    container = "binary"

    def __init__(self, path, product, **kw):
        super().__init__(path, product, **kw)
        self.container = "zip" if self.path.suffix.lower() == ".zip" else "binary"

    def decode(self) -> xr.Dataset:
        facts = self.product
        m = re.search(r"([NS])(\d\d)([EW])(\d{3})", self.path.name)
        if m is None:
            raise GranuleError(self.path, "file name has no SRTM tile id like N38W028")
        lat0 = int(m.group(2)) * (1 if m.group(1) == "N" else -1)
        lon0 = int(m.group(4)) * (1 if m.group(3) == "E" else -1)
        if self.path.suffix.lower() == ".zip":
            with zipfile.ZipFile(self.path) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".hgt")]
                if not members:
                    raise GranuleError(self.path, f"zip holds no .hgt member ({zf.namelist()})")
                payload = zf.read(members[0])  # checks the member's CRC-32
        else:
            payload = self.path.read_bytes()
        sizes = facts.options["sizes"]
        n = int(round(np.sqrt(len(payload) / 2)))
        if n not in sizes or n * n * 2 != len(payload):
            raise GranuleError(self.path, f"holds {len(payload)} bytes of elevation; an SRTM "
                               f"tile has {[k * k * 2 for k in sizes]} bytes (1201^2 or 3601^2 "
                               "big-endian int16): truncated or not SRTM")
        raw = np.frombuffer(payload, dtype=">i2").reshape(n, n)
        v = facts.variables[0]
        elevation = decode_packed(raw, fills=v.fills)
        step = 1.0 / (n - 1)
        lat = lat0 + 1 - np.arange(n) * step
        lon = lon0 + np.arange(n) * step
        out = _dem_dataset(elevation, ("lat", "lon"), axis_coords(lat, lon), v,
                           comment=f"SRTM {sizes[n]:g} arc-second, void -32768 -> NaN")
        out.attrs["tile"] = m.group(0)
        return out


@register
class GeoTiffDemHandler(FileHandler):
    """DEM GeoTIFF (GTOPO30 and alike), CRS assumed WGS84 lat/lon when untagged."""

    container = "tiff"

    def decode(self) -> xr.Dataset:
        facts = self.product
        raster = read_raster(self.path, default_crs=facts.options["default_crs"],
                             dtypes=facts.options.get("dtypes"),
                             projection=facts.options.get("projection"))
        v = facts.variables[0]
        fills = (*v.fills, *(() if raster.nodata is None else (raster.nodata,)))
        elevation = decode_packed(raster.data, fills=fills)
        import rasterio

        with rasterio.open(self.path) as src:
            tagged = src.crs is not None
        out = _dem_dataset(elevation, raster.dims, raster.coords, v, raster.crs_wkt)
        out.attrs["crs_assumed"] = "" if tagged else \
            f"no CRS tag in the file; {facts.options['default_crs']} assumed"
        return out


@register
class EtopoTextHandler(FileHandler):
    """ETOPO 20' text grid (data + lats + lons files side by side)."""

    container = "gzip"

    def decode(self) -> xr.Dataset:
        facts = self.product
        data_name, lats_name, lons_name = facts.options["siblings"]
        folder = self.path.parent
        paths = {n: folder / n for n in (data_name, lats_name, lons_name)}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise GranuleError(self.path, f"the ETOPO 20' set needs {missing} beside it")

        def text(p: Path) -> np.ndarray:
            with reading(p, "decompress and parse it"), gzip.open(p, "rb") as fh:
                frame = pd.read_csv(io.BytesIO(fh.read()), sep=r"\s+", header=None,
                                    dtype=np.float64, engine="c")
            return frame.to_numpy()

        z = text(paths[data_name])
        lats = text(paths[lats_name]).ravel()
        lons = text(paths[lons_name]).ravel()
        if z.shape != (lats.size, lons.size) or np.isnan(z).any():
            raise GranuleError(self.path, f"etopo20data is {z.shape} with "
                               f"{int(np.isnan(z).sum())} empty fields, lats/lons give "
                               f"{(lats.size, lons.size)}; a file of the set is truncated")
        if np.isclose(lons[-1] - lons[0], 360.0, atol=1e-4):  # repeated wrap column
            z, lons = z[:, :-1], lons[:-1]
        wrapped = ((lons + 180.0) % 360.0) - 180.0
        order = np.argsort(wrapped)
        v = facts.variables[0]
        return _dem_dataset(z[:, order], ("lat", "lon"), axis_coords(lats, wrapped[order]), v)


@register
class GmtGridHandler(FileHandler):
    """GMT netCDF DEM grid (geographic, or projected via ``grid_mapping``)."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        from pyproj import CRS, Transformer

        facts = self.product
        v = facts.variables[0]
        nc = open_netcdf(self.path)
        try:
            require(self.path, nc.variables, [v.source])
            var = nc[v.source]
            attrs = nc_attrs(var)
            units = str(attrs.get("units", "m")).strip().lower()
            factors = facts.options["unit_factors"]
            if units not in factors:
                raise GranuleError(self.path, f"z has units {units!r}; expected one of "
                                   f"{sorted(factors)}")
            fill = attrs.get("_FillValue", v.fills[0])
            elevation = decode_packed(var[:], scale=float(attrs.get("scale_factor", 1.0))
                                      * factors[units], offset=float(attrs.get("add_offset", 0.0))
                                      * factors[units], fills=(fill,))
            dims = var.dimensions
            if dims == ("lat", "lon"):
                coords = axis_coords(nc["lat"][:], nc["lon"][:])
                crs_wkt = None
                if not np.all(np.diff(coords["lon"][1]) > 0):  # 0..360 crossing 180
                    order = np.argsort(coords["lon"][1])
                    elevation = elevation[:, order]
                    coords["lon"] = ("lon", coords["lon"][1][order], coords["lon"][2])
            elif dims == ("y", "x"):
                gm = attrs.get("grid_mapping")
                if not gm or gm not in nc.variables:
                    raise GranuleError(self.path, "projected grid without a grid_mapping "
                                       "variable; its CRS is unknown")
                crs_wkt = nc_attrs(nc[gm]).get("spatial_ref") or nc_attrs(nc[gm]).get("crs_wkt")
                x = np.asarray(nc["x"][:], dtype=np.float64)
                y = np.asarray(nc["y"][:], dtype=np.float64)
                xx, yy = np.meshgrid(x, y)
                lon, lat = Transformer.from_crs(CRS.from_wkt(crs_wkt), "EPSG:4326",
                                                always_xy=True).transform(xx, yy)
                coords = {"x": ("x", x, {"standard_name": "projection_x_coordinate",
                                         "units": "m"}),
                          "y": ("y", y, {"standard_name": "projection_y_coordinate",
                                         "units": "m"}),
                          **latlon_coords(lat, lon, ("y", "x"))}
            else:
                raise GranuleError(self.path, f"z has dims {dims}; expected (lat, lon) or (y, x)")
            description = str(nc.getncattr("description")) if "description" in nc.ncattrs() \
                else ""
            registration = "pixel" if int(nc.getncattr("node_offset") if "node_offset" in
                                          nc.ncattrs() else 0) == 1 else "gridline"
        finally:
            nc.close()
        out = _dem_dataset(elevation, dims, coords, v, crs_wkt,
                           source_units=units, comment=description)
        out.attrs["registration"] = registration
        return out
