"""Station data and reference text files: ISMN (``.stm``, static variables, flag table,
metadata) and the SM2RAIN reference series (Brocca et al. 2013).

* ISMN ``.stm`` (MANIFEST §2): parsed by :func:`smflow.insitu.read_stm` (one parser in the
  project); the comma-joined ISMN flags (``G``, ``C02,D04``, ...) are decoded into a bit mask
  ``ismn_flag`` (0 = G) with CF ``flag_masks``/``flag_meanings``; ``quality_mask`` = flag G.
  ``soil_moisture`` m3 m-3 (``sm`` files) or ``precipitation_amount`` kg m-2 per hour (``p``),
  dim ``time``, station position as scalar coordinates.
* ``*_static_variables.csv``: one row per quantity -> dim ``quantity`` with value, unit, depth.
* ``ISMN_qualityflags_description.txt``: the flag table (code, category, condition).
* ``Metadata.xml`` (ISO 19115): geographic bounding box and time extent as attributes.
* SM2RAIN ``<site>_1hour_<year>.txt``: MATLAB datenum (rounded to the hour), relative soil
  moisture 0-1 -> ``degree_of_saturation`` in percent, rain -> ``precipitation_amount``
  kg m-2 per hour. ``PAR_<site>_1hour_<year>.dat``: the calibrated ``Z`` [mm], ``a`` [mm/h],
  ``b`` [1].
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, check_text_complete, flag_attrs, reading, register,
)

#: ISMN quality flag codes, one bit each (Dorigo et al. 2013); G (good) = no bit set.
ISMN_FLAG_CODES = ("C01", "C02", "C03", "D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08",
                   "D09", "D10", "M")


def decode_ismn_flags(flags: np.ndarray) -> np.ndarray:
    """Comma-joined ISMN flag strings -> int32 bit masks (bit k = ``ISMN_FLAG_CODES[k]``)."""
    bits = {code: 1 << k for k, code in enumerate(ISMN_FLAG_CODES)}
    out = np.zeros(len(flags), dtype=np.int32)
    for value in np.unique(flags):
        mask = 0
        for code in str(value).split(","):
            if code == "G":
                continue
            if code not in bits:
                raise ValueError(f"unknown ISMN flag {code!r} in {value!r}")
            mask |= bits[code]
        out[flags == value] = mask
    return out


@register
class IsmnHandler(FileHandler):
    """ISMN ``.stm`` observations and the download's static/flag/metadata files."""

    container = "text"

    def decode(self) -> xr.Dataset:
        name = self.product.name
        if name in ("ismn_stm", "ismn_static_variables"):  # the flag table has no final
            check_text_complete(self.path)                  # newline; XML: parser notices
        if name == "ismn_stm":
            return self._stm()
        if name == "ismn_static_variables":
            return self._static()
        if name == "ismn_flag_table":
            return self._flag_table()
        return self._metadata()

    def _stm(self) -> xr.Dataset:
        from smflow.insitu import StmFile, read_stm

        facts = self.product
        try:
            info = StmFile.from_path(self.path)
        except ValueError as exc:
            raise GranuleError(self.path, f"{exc}; cannot tell the ISMN variable") from exc
        by_source = {v.source: v for v in facts.variables}
        if info.variable not in by_source:
            raise GranuleError(self.path, f"ISMN variable {info.variable!r} has no reader "
                               f"facts (known: {sorted(by_source)})")
        v = by_source[info.variable]
        with reading(self.path, "parse it as an ISMN .stm file"):
            records, station = read_stm(self.path)
        if records["value"].isna().any() or records["ismn_flag"].isna().any():
            raise GranuleError(self.path, "a record has no value or flag; the file is "
                               "truncated or a line is damaged")
        try:
            flags = decode_ismn_flags(records["ismn_flag"].to_numpy(dtype=str))
        except ValueError as exc:
            raise GranuleError(self.path, str(exc)) from exc
        values = records["value"].to_numpy(dtype=np.float64)
        passes = flags == 0
        out = xr.Dataset(coords={
            "time": ("time", records.index.to_numpy(), {"standard_name": "time",
                                                        "comment": "nominal UTC"}),
            "lat": ((), station["lat"], {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ((), station["lon"], {"standard_name": "longitude", "units": "degrees_east"}),
            "elevation": ((), station["elevation"], {"units": "m"}),
            "depth_from": ((), station["depth_from"], {"units": "m", "positive": "down"}),
            "depth_to": ((), station["depth_to"], {"units": "m", "positive": "down"}),
        })
        out[v.name] = ("time", self.quality(passes, values), v.attrs(
            ancillary_variables="quality_mask ismn_flag"))
        out["ismn_flag"] = ("time", flags, flag_attrs(
            masks=[1 << k for k in range(len(ISMN_FLAG_CODES))], meanings=ISMN_FLAG_CODES,
            comment="0 = G (good); codes in ISMN_qualityflags_description.txt"))
        out["quality_mask"] = self.mask_variable(passes, ("time",), "ISMN flag G")
        out.attrs.update({"network": station["network"], "station": station["station"],
                          "sensor": info.sensor})
        return out

    def _static(self) -> xr.Dataset:
        with reading(self.path, "parse it as ';'-separated text"):
            table = pd.read_csv(self.path, sep=";", dtype=str, encoding="latin-1")
        need = ["quantity_name", "unit", "depth_from[m]", "depth_to[m]", "value"]
        if any(c not in table.columns for c in need):
            raise GranuleError(self.path, f"columns {list(table.columns)} lack {need}")
        table = table.dropna(subset=["quantity_name"])
        numeric = pd.to_numeric(table["value"], errors="coerce")
        return xr.Dataset(
            {"value": ("quantity", numeric.to_numpy(), {"long_name": "static value"}),
             "value_text": ("quantity", table["value"].fillna("").to_numpy(dtype=str)),
             "unit": ("quantity", table["unit"].fillna("").to_numpy(dtype=str)),
             "source": ("quantity", table.get("quantity_source_name", pd.Series(
                 [""] * len(table))).fillna("").to_numpy(dtype=str))},
            coords={"quantity": ("quantity", table["quantity_name"].to_numpy(dtype=str)),
                    "depth_from": ("quantity", pd.to_numeric(table["depth_from[m]"],
                                                             errors="coerce").to_numpy(),
                                   {"units": "m"}),
                    "depth_to": ("quantity", pd.to_numeric(table["depth_to[m]"],
                                                           errors="coerce").to_numpy(),
                                 {"units": "m"})})

    def _flag_table(self) -> xr.Dataset:
        text = self.path.read_bytes().decode("latin-1")
        rows = [line.split(";") for line in text.splitlines()
                if line.count(";") >= 2 and not line.startswith("variable;")]
        if not rows:
            raise GranuleError(self.path, "holds no 'variable;category;flag;condition' row")
        variable = [r[0] for r in rows]
        code = [r[2] if len(r) > 3 else r[1] for r in rows]
        category = [r[1] for r in rows]
        condition = [r[-1] for r in rows]
        return xr.Dataset({"category": ("row", category), "condition": ("row", condition)},
                          coords={"variable": ("row", variable), "flag": ("row", code)})

    def _metadata(self) -> xr.Dataset:
        with reading(self.path, "parse it as XML"):
            root = ET.parse(self.path).getroot()
        ns = {"gmd": "http://www.isotc211.org/2005/gmd", "gco": "http://www.isotc211.org/2005/gco",
              "gml": "http://www.opengis.net/gml"}
        attrs = {}
        for key in ("westBoundLongitude", "eastBoundLongitude", "southBoundLatitude",
                    "northBoundLatitude"):
            node = root.find(f".//gmd:{key}/gco:Decimal", ns)
            if node is None:
                raise GranuleError(self.path, f"ISO 19115 metadata has no {key}")
            attrs[f"geospatial_{key}"] = float(node.text)
        for key in ("beginPosition", "endPosition"):
            node = root.find(f".//gml:{key}", ns)
            if node is not None:
                attrs[f"time_coverage_{key.removesuffix('Position')}"] = node.text
        return xr.Dataset(attrs=attrs)


@register
class Sm2rainTextHandler(FileHandler):
    """SM2RAIN reference series (datenum, relative SM, rain) and calibrated parameters."""

    container = "text"

    def decode(self) -> xr.Dataset:
        check_text_complete(self.path)
        with reading(self.path, "parse it as whitespace-separated numbers"):
            table = pd.read_csv(self.path, sep=r"\s+", header=None, dtype=np.float64,
                                engine="c").to_numpy()
        if self.product.name == "sm2rain_parameters":
            if table.shape != (3, 1) or not np.isfinite(table).all():
                raise GranuleError(self.path, f"holds {table.shape} numbers; a PAR file has "
                                   "Z, a, b, one per line")
            z, a, b = table[:, 0]
            return xr.Dataset({
                "Z": ((), z, {"units": "mm", "long_name": "soil water capacity (layer depth "
                                                          "x porosity)"}),
                "a": ((), a, {"units": "mm h-1", "long_name": "drainage coefficient"}),
                "b": ((), b, {"units": "1", "long_name": "drainage exponent"})})
        if table.ndim != 2 or table.shape[1] != 3 or np.isnan(table).any():
            raise GranuleError(self.path, f"parsed as {table.shape} with "
                               f"{int(np.isnan(table).sum())} empty fields; expected 3 full "
                               "columns (datenum, relative SM, rain) -- truncated line?")
        facts = self.product
        epoch = facts.options["datenum_unix_epoch"]
        time = pd.to_datetime(table[:, 0] - epoch, unit="D").round("h").to_numpy()
        out = xr.Dataset(coords={"time": ("time", time.astype("datetime64[ns]"), {
            "standard_name": "time", "comment": "MATLAB datenum rounded to the hour"})})
        for k, v in enumerate(facts.variables, start=1):
            out[v.name] = ("time", table[:, k] * v.scale, v.attrs())
        site = re.match(r"([A-Z0-9]+)_1hour", self.path.name)
        out.attrs["site"] = site.group(1) if site else ""
        return out
