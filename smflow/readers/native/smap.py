"""SMAP radiometer soil moisture in NSIDC HDF5: SPL3SMP (daily, AM/PM groups) and SPL2SMP.

SPL3SMP holds two groups, ``Soil_Moisture_Retrieval_Data_AM`` (variables as named) and
``Soil_Moisture_Retrieval_Data_PM`` (the same variables with the suffix ``_pm``), each a
406 x 964 array on the global EASE-Grid 2.0 36 km (M36) grid; SPL2SMP has one group
``Soil_Moisture_Retrieval_Data`` of 1-D arrays over the half orbit's swath cells, with the
same variable names, fills and flag definitions (MANIFEST §4), plus ``EASE_row_index`` /
``EASE_column_index`` into the M36 grid.

Output: SPL3SMP -> dims ``(overpass, y, x)`` with ``overpass = ["AM", "PM"]`` and 2-D
``lat``/``lon``; SPL2SMP -> dim ``cell`` with 1-D ``lat``/``lon`` and the EASE row/column as
coordinates. ``soil_moisture`` m3 m-3 is NaN at the fill, outside the valid range 0.02-0.5 and,
with ``apply_quality``, where ``retrieval_qual_flag`` bit 0 is set (retrieval not recommended).
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, bits_clear, decode_packed, latlon_coords, parse_flag_masks, register, require,
    text_attr,
)

#: EASE-Grid 2.0 global 36 km (M36): EPSG:6933, 964 x 406 cells (Brodzik et al. 2012, table 2).
EASE2_M36 = {"crs": "EPSG:6933", "cell_m": 36032.220840584, "x0": -17367530.44516138,
             "y0": 7314540.79258289, "shape": (406, 964)}


def ease2_m36_coords() -> dict[str, tuple]:
    """Projected ``x``/``y`` and 2-D ``lat``/``lon`` of the EASE-2 M36 cell centres."""
    from pyproj import Transformer

    rows, cols = EASE2_M36["shape"]
    size = EASE2_M36["cell_m"]
    x = EASE2_M36["x0"] + (np.arange(cols) + 0.5) * size
    y = EASE2_M36["y0"] - (np.arange(rows) + 0.5) * size
    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(EASE2_M36["crs"], "EPSG:4326", always_xy=True).transform(xx, yy)
    return {
        "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
        "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
        **latlon_coords(lat, lon, ("y", "x")),
    }


@register
class SmapHandler(FileHandler):
    """SPL3SMP (AM + PM) and SPL2SMP soil moisture, flags decoded."""

    container = "hdf5"

    def decode(self) -> xr.Dataset:
        facts = self.product
        groups = facts.options["groups"]
        with h5py.File(self.path, "r") as h5:
            require(self.path, h5, [g for g, _ in groups.values()], "group")
            parts = [self._group(h5[group], suffix) for group, suffix in groups.values()]
        if "cell" in parts[0].dims:
            return parts[0]
        # L3: the group's latitude/longitude arrays are filled where no retrieval exists, so
        # the coordinates come from the grid definition itself.
        ds = xr.concat(parts, dim="overpass", join="override")
        ds = ds.assign_coords(overpass=("overpass", list(groups), {
            "long_name": "overpass: AM = descending 06:00, PM = ascending 18:00 local time"}))
        return ds.assign_coords(ease2_m36_coords())

    def _group(self, group: h5py.Group, suffix: str) -> xr.Dataset:
        facts = self.product
        names = {v.name: v.source + suffix for v in facts.variables}
        flag_name = "retrieval_qual_flag" + suffix
        lat_name, lon_name = ("latitude" + suffix, "longitude" + suffix)
        require(self.path, group, [names["soil_moisture"], flag_name, lat_name, lon_name])
        shape = group[names["soil_moisture"]].shape
        dims = ("cell",) if len(shape) == 1 else ("y", "x")
        if len(shape) == 2 and shape != tuple(facts.options["ease2_m36_shape"]):
            raise GranuleError(self.path, f"{group.name}/{names['soil_moisture']} has shape "
                               f"{shape}, expected the EASE-2 M36 grid "
                               f"{tuple(facts.options['ease2_m36_shape'])}")

        out = xr.Dataset()
        for v in facts.variables:
            source = names[v.name]
            if source not in group:
                continue
            raw = group[source][()]
            if raw.shape != shape:
                raise GranuleError(self.path, f"{group.name}/{source} has shape {raw.shape}, "
                                   f"soil_moisture has {shape}; the file is inconsistent")
            out[v.name] = (dims, decode_packed(raw, fills=v.fills, valid_raw=v.valid_raw,
                                               dtype=np.float32), v.attrs())

        flags_raw = group[flag_name][()]
        fill = facts.options["flag_fill"]
        fattrs = {k: text_attr(a) for k, a in group[flag_name].attrs.items()
                  if k in ("flag_masks", "flag_meanings", "long_name")}
        if "flag_masks" in fattrs:
            fattrs["flag_masks"] = parse_flag_masks(fattrs["flag_masks"])
        # The file names bits by their "good" meaning; a SET bit means "not" (product spec).
        fattrs["comment"] = "bit set = condition NOT met (e.g. bit 0 set = not recommended); "\
            f"{fill} = fill"
        out["retrieval_qual_flag"] = (dims, flags_raw, fattrs)
        if "surface_flag" + suffix in group:
            sattrs = {k: text_attr(a) for k, a in group["surface_flag" + suffix].attrs.items()
                      if k in ("flag_masks", "flag_meanings", "long_name")}
            if "flag_masks" in sattrs:
                sattrs["flag_masks"] = parse_flag_masks(sattrs["flag_masks"])
            out["surface_flag"] = (dims, group["surface_flag" + suffix][()], sattrs)

        sm = out["soil_moisture"].values
        lo, hi = facts.options["valid_range"]
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(sm) & (sm >= lo) & (sm <= hi)
        passes = valid & (flags_raw != fill)
        for rule in facts.flag_rules:
            passes &= bits_clear(flags_raw, rule.value)
        data = np.where(valid, sm, np.nan)
        out["soil_moisture"] = (dims, self.quality(passes, data).astype(np.float32),
                                {**out["soil_moisture"].attrs, "valid_min": lo, "valid_max": hi,
                                 "ancillary_variables": "quality_mask retrieval_qual_flag"})
        out["quality_mask"] = self.mask_variable(
            passes, dims, f"finite, {lo} <= soil_moisture <= {hi} m3 m-3; "
            + "; ".join(r.meaning for r in facts.flag_rules))

        coords = {}
        if dims == ("cell",):
            lat = decode_packed(group[lat_name][()], fills=(-9999.0,))
            lon = decode_packed(group[lon_name][()], fills=(-9999.0,))
            coords.update(latlon_coords(lat, lon, dims))
        time_name = "tb_time_seconds" + suffix
        if time_name in group:
            seconds = decode_packed(group[time_name][()], fills=(-9999.0,))
            epoch = np.datetime64(facts.options["time_epoch"], "ns")
            times = epoch + (np.where(np.isfinite(seconds), seconds, 0) * 1e9
                             ).astype("timedelta64[ns]")
            times = np.where(np.isfinite(seconds), times, np.datetime64("NaT"))
            out["observation_time"] = (dims, times.astype("datetime64[ns]"), {
                "long_name": "mean brightness-temperature acquisition time", "comment": "UTC"})
        if dims == ("cell",):
            for name in ("EASE_row_index", "EASE_column_index"):
                if name in group:
                    coords[name] = (dims, group[name][()].astype(np.int32), {
                        "long_name": f"{name.split('_')[1]} index on the EASE-2 M36 grid "
                        "(406 x 964)"})
        out = out.assign_coords(coords)
        if "observation_time" in out and np.isfinite(sm).any():
            obs = out["observation_time"].values
            out.attrs["time_coverage_start"] = str(pd.Timestamp(np.nanmin(obs)))
            out.attrs["time_coverage_end"] = str(pd.Timestamp(np.nanmax(obs)))
        return out
