"""ECMWF fields: ERA5 / ERA5-Land / IFS GRIB (cfgrib), ERA5 netCDF from the CDS, H SAF H14 GRIB.

GRIB files are opened with cfgrib and ``indexpath=""``, so no ``.idx`` index file is ever
written next to the input (the input folder may be read-only, shared, or an archive mirror).

Output names and units (product facts): ``soil_moisture`` = ``swvl1`` (m3 m-3, layer 1,
0-7 cm), ``soil_temperature`` = ``stl1`` (K), ``precipitation_amount`` = ``tp`` x 1000
(kg m-2 accumulated since the forecast start; de-accumulation is the caller's), ``air_temperature``
= ``2t``, ``soil_type`` = ``slt``, ``land_area_fraction`` = ``lsm``; deeper layers keep their
GRIB short names (``swvl2``...). ERA5 sea points are not missing but ~0 m3 m-3 (MANIFEST §20):
where the file has ``slt`` or ``lsm`` the soil variables are masked to land and ``quality_mask``
says which points are land. H14: ``soil_wetness_index(layer, point)`` (1) on the reduced
Gaussian grid (1-D ``point`` with ``lat``/``lon``), ocean = missing (bitmap).

A file with the same parameter on two grids (``tp_on_different_grid_resolutions.grib``) gives
``<name>`` on the first grid and ``<name>_2`` (dims ``lat_2``, ``lon_2``) on the second.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import FileHandler, decode_packed, reading, register, require

_SOIL = ("soil_moisture", "soil_temperature")
#: Soil layers 2-4, kept under their GRIB short names.
_DEEPER_LAYER = re.compile(r"(swvl|stl)[234]")


def _layer_coords(layers: dict[int, tuple[float, float]], keys: list[int]) -> dict[str, tuple]:
    return {
        "layer": ("layer", np.array(keys, dtype=np.int8), {"long_name": "soil layer"}),
        "depth_top": ("layer", np.array([layers[k][0] for k in keys]),
                      {"units": "m", "positive": "down", "long_name": "layer top"}),
        "depth_bottom": ("layer", np.array([layers[k][1] for k in keys]),
                         {"units": "m", "positive": "down", "long_name": "layer bottom"}),
    }


def _standardise_grid(da: xr.DataArray, suffix: str) -> xr.DataArray:
    """cfgrib names -> ``lat``/``lon`` (+ ``point`` for reduced grids), lon wrapped to +-180."""
    drop = [c for c in da.coords
            if c not in ("latitude", "longitude", "valid_time") and c not in da.dims]
    da = da.drop_vars(drop)
    names = {"latitude": "lat" + suffix, "longitude": "lon" + suffix, "values": "point"}
    da = da.rename({k: v for k, v in names.items() if k in da.dims or k in da.coords})
    lon_name, lat_name = "lon" + suffix, "lat" + suffix
    if lon_name in da.coords:
        wrapped = ((da[lon_name].values + 180.0) % 360.0) - 180.0
        da = da.assign_coords({lon_name: (da[lon_name].dims, wrapped, {
            "standard_name": "longitude", "units": "degrees_east"})})
        if da[lon_name].dims == (lon_name,):
            da = da.sortby(lon_name)
    if lat_name in da.coords:
        da[lat_name].attrs = {"standard_name": "latitude", "units": "degrees_north"}
    return da


def mask_sea(handler: FileHandler, out: xr.Dataset) -> None:
    """Mask ERA5 soil variables over sea (slt == 0 or lsm < 0.5) and add ``quality_mask``."""
    if "soil_type" in out:
        land = out["soil_type"].values != handler.product.options["sea_soil_type"]
        rule, dims = "soil_type != 0 (land)", out["soil_type"].dims
    elif "land_area_fraction" in out:
        land = out["land_area_fraction"].values >= 0.5
        rule, dims = "land_area_fraction >= 0.5", out["land_area_fraction"].dims
    else:
        return
    for name in list(out.data_vars):
        if out[name].dims == dims and (name in _SOIL or _DEEPER_LAYER.fullmatch(name)):
            out[name] = out[name].where(land)
    passes = land & np.isfinite(out["soil_moisture"].values) if "soil_moisture" in out \
        else land
    out["quality_mask"] = handler.mask_variable(passes, dims, rule)


def _check_grib_messages(path) -> None:
    """Every GRIB message complete, and nothing but zero padding between them.

    cfgrib skips a damaged message with a logged warning and returns the others, which would
    silently drop fields; eccodes raises on a truncated message, and bytes it skipped show up
    as non-zero content between messages (ECMWF pads GRIB1 messages with zeros).
    """
    import eccodes

    extents = []
    with reading(path, "decode it as GRIB"), open(path, "rb") as fh:
        while True:
            handle = eccodes.codes_grib_new_from_file(fh)
            if handle is None:
                break
            try:
                extents.append((int(eccodes.codes_get(handle, "offset")),
                                int(eccodes.codes_get(handle, "totalLength"))))
            finally:
                eccodes.codes_release(handle)
    if not extents:
        raise GranuleError(path, "contains no GRIB message")
    data = path.read_bytes()
    ends = [0] + [o + n for o, n in extents]
    starts = [o for o, _ in extents] + [len(data)]
    for k, (a, b) in enumerate(zip(ends, starts)):
        if b > a and data[a:b].strip(b"\x00"):
            raise GranuleError(path, f"{b - a} bytes before GRIB message {k + 1} of "
                               f"{len(extents)} are not GRIB (a damaged message was skipped)")


@register
class EcmwfGribHandler(FileHandler):
    """ERA5 / ERA5-Land / IFS GRIB and H SAF H14 GRIB via cfgrib (no index files written)."""

    container = "grib"

    def decode(self) -> xr.Dataset:
        import cfgrib

        _check_grib_messages(self.path)
        with warnings.catch_warnings():  # cfgrib's own xr.merge default-change notice
            warnings.simplefilter("ignore", FutureWarning)
            # indexpath "": never write a .idx file next to the input.
            datasets = cfgrib.open_datasets(str(self.path), backend_kwargs={"indexpath": ""})
        fields: dict[str, list[xr.DataArray]] = {}
        for ds in datasets:
            for name, da in ds.data_vars.items():
                fields.setdefault(str(name), []).append(da.load())
        if not fields:
            raise GranuleError(self.path, "contains no decodable GRIB field")
        if self.product.name == "hsaf_h14":
            return self._h14(fields)
        return self._ecmwf(fields)

    # -- ERA5 / ERA5-Land / IFS ---------------------------------------------------------------
    def _ecmwf(self, fields: dict[str, list[xr.DataArray]]) -> xr.Dataset:
        facts = self.product
        by_source = {v.source: v for v in facts.variables}
        wanted = [s for s in fields if s in by_source or _DEEPER_LAYER.fullmatch(s)]
        if not wanted:
            raise GranuleError(self.path, f"has GRIB parameters {sorted(fields)} but none of "
                               f"{sorted(by_source)}; not an ERA5/ERA5-Land/IFS land field?")
        out = xr.Dataset()
        for source in wanted:
            for k, da in enumerate(fields[source]):
                suffix = "" if k == 0 else f"_{k + 1}"
                da = _standardise_grid(da.squeeze(drop=True), suffix)
                v = by_source.get(source)
                name = (v.name if v else source) + suffix
                values = np.asarray(da.values, dtype=np.float64) * (v.scale if v else 1.0)
                attrs = v.attrs() if v else {"units": da.attrs.get("GRIB_units", ""),
                                             "long_name": da.attrs.get("GRIB_name", source),
                                             "source_variable": source}
                layer = int(da.attrs.get("GRIB_topLevel", 0) or 0) if "GRIB_topLevel" in \
                    da.attrs else None
                attrs.update({"GRIB_paramId": da.attrs.get("GRIB_paramId"),
                              "GRIB_typeOfLevel": da.attrs.get("GRIB_typeOfLevel")})
                if layer is not None:
                    attrs["GRIB_topLevel"] = layer
                if "valid_time" in da.coords:
                    attrs["valid_time"] = str(da["valid_time"].values.astype("datetime64[s]"))
                out[name] = (da.dims, values.astype(np.float32), attrs)
                out = out.assign_coords({c: da[c] for c in da.coords if c != "valid_time"})
                if "valid_time" in da.coords and "time" not in out.coords:
                    out = out.assign_coords(time=((), da["valid_time"].values.astype(
                        "datetime64[ns]"), {"standard_name": "time", "comment": "valid time"}))
        mask_sea(self, out)
        return out

    # -- H SAF H14 ----------------------------------------------------------------------------
    def _h14(self, fields: dict[str, list[xr.DataArray]]) -> xr.Dataset:
        facts = self.product
        layers = facts.options["layers_m"]
        sources = [v.source for v in facts.variables]
        require(self.path, fields, sources, "GRIB parameter")  # all four layers
        present = [s for s in sources if s in fields]
        arrays = [_standardise_grid(fields[s][0].squeeze(drop=True), "") for s in present]
        first = arrays[0]
        if "point" not in first.dims:
            raise GranuleError(self.path, f"{present[0]} is on dims {first.dims}; H14 is on a "
                               "reduced Gaussian grid (1-D values)")
        data = np.stack([decode_packed(a.values, fills=(9999.0,)) for a in arrays])
        keys = [int(s[-1]) for s in present]
        out = xr.Dataset(coords={
            **_layer_coords(layers, keys),
            "lat": ("point", first["lat"].values, {"standard_name": "latitude",
                                                   "units": "degrees_north"}),
            "lon": ("point", first["lon"].values, {"standard_name": "longitude",
                                                   "units": "degrees_east"}),
        })
        if "valid_time" in first.coords:
            out = out.assign_coords(time=((), first["valid_time"].values.astype(
                "datetime64[ns]"), {"standard_name": "time"}))
        v = facts.variables[0]
        out["soil_wetness_index"] = (("layer", "point"), data.astype(np.float32), {
            **v.attrs(), "long_name": "soil wetness index (0 = wilting point, 1 = field "
            "capacity)", "source_variable": " ".join(present),
            "grid": "reduced Gaussian (1-D point dimension)"})
        return out


@register
class Era5NetcdfHandler(FileHandler):
    """ERA5 / ERA5-Land netCDF from the CDS (old: int16 packed, ``time``; new: ``valid_time``)."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        facts = self.product
        with xr.open_dataset(self.path, mask_and_scale=True, decode_times=True,
                             engine="netcdf4") as raw:
            raw = raw.load()
        by_source = {v.source: v for v in facts.variables}
        present = [s for s in raw.data_vars if s in by_source or _DEEPER_LAYER.fullmatch(str(s))]
        if not present:
            raise GranuleError(self.path, f"has variables {sorted(map(str, raw.data_vars))} but "
                               f"none of {sorted(by_source)}; not an ERA5 netCDF?")
        rename = {k: v for k, v in (("latitude", "lat"), ("longitude", "lon"),
                                    ("valid_time", "time")) if k in raw.dims or k in raw.coords}
        if "valid_time" in rename and "time" in raw.coords:
            raw = raw.drop_vars("time")
        raw = raw.rename(rename)
        require(self.path, raw.coords, ["lat", "lon", "time"], "coordinate")
        out = xr.Dataset(coords={"time": raw["time"]})
        for source in present:
            v = by_source.get(str(source))
            da = raw[source]
            extra = [d for d in da.dims if d not in ("time", "lat", "lon")]
            if extra:  # e.g. expver / number of the new CDS format: take the first
                da = da.isel({d: 0 for d in extra}, drop=True)
            values = da.values.astype(np.float64) * (v.scale if v else 1.0)
            attrs = v.attrs() if v else {"units": da.attrs.get("units", ""),
                                         "source_variable": str(source)}
            out[v.name if v else str(source)] = (da.dims, values.astype(np.float32), attrs)
        lon = ((raw["lon"].values + 180.0) % 360.0) - 180.0
        out = out.assign_coords(
            lat=("lat", raw["lat"].values.astype(np.float64),
                 {"standard_name": "latitude", "units": "degrees_north"}),
            lon=("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        ).sortby("lon")
        out["time"].attrs = {"standard_name": "time", "comment": "UTC"}
        mask_sea(self, out)  # same land rule as the GRIB reader
        return out
