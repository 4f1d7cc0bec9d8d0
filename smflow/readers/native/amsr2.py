"""JAXA GCOM-W1 AMSR2 Level 3 brightness temperature (``GW1AM2_*_L3SGT<ff><r>A*.h5``).

Format as published by JAXA in the "AMSR2 Higher Level Product Format Specification" (level 3
part) and the G-Portal product pages: one HDF5 file per frequency band (``06`` 6.925 GHz, ``07``
7.3, ``10`` 10.65, ``18`` 18.7, ``23`` 23.8, ``36`` 36.5, ``89`` 89.0 GHz), day (``01D``) or month
(``01M``) and pass (``EQMA`` ascending, ``EQMD`` descending, equirectangular map); the root holds
two 2-D uint16 datasets ``Brightness Temperature (H)`` and ``Brightness Temperature (V)`` whose
attribute ``SCALE FACTOR`` (0.01) converts counts to K; 65534/65535 mark missing/invalid
pixels. Resolution letter ``H``: 0.1 deg, 1800 x 3600; ``L``: 0.25 deg, 720 x 1440; row 0 is the
northernmost row, column 0 starts at 180 W, pixel centres at half steps.

No real AMSR2 file was available to this project (MANIFEST gaps); the test fixture is built from
that description only. Output: ``brightness_temperature(polarization, lat, lon)`` in K with
``polarization = ["H", "V"]`` and the attributes ``frequency_ghz`` and ``pass``.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, axis_coords, decode_packed, register, require, text_attr,
)

_NAME = re.compile(r"GW1AM2_(\d{8})_01([DM])_EQM([AD])_L3SGT(\d\d)([HL])A")


@register
class Amsr2L3Handler(FileHandler):
    """AMSR2 L3 brightness temperature, H and V polarisation, one band per file."""

    container = "hdf5"

    def decode(self) -> xr.Dataset:
        facts = self.product
        opt = facts.options
        m = _NAME.search(self.path.name)
        if m is None:
            raise GranuleError(self.path, "file name does not follow the JAXA L3 pattern "
                               "GW1AM2_<date>_01<D|M>_EQM<A|D>_L3SGT<band><H|L>A...; the band "
                               "and grid cannot be known")
        day, period, orbit, band, res = m.groups()
        rows, cols, step = opt["grid"][res]
        sources = [v.source for v in facts.variables]
        with h5py.File(self.path, "r") as h5:
            require(self.path, h5, sources, "dataset")
            planes = []
            for v in facts.variables:
                dset = h5[v.source]
                if dset.shape != (rows, cols):
                    raise GranuleError(self.path, f"{v.source!r} has shape {dset.shape}; the "
                                       f"{step} deg grid of resolution {res!r} is {(rows, cols)}")
                scale = text_attr(dset.attrs.get(opt["scale_attribute"], v.scale))
                scale = float(np.ravel(scale)[0]) if not np.isscalar(scale) else float(scale)
                if not np.isclose(scale, v.scale):
                    raise GranuleError(self.path, f"{v.source!r} has SCALE FACTOR {scale}; the "
                                       f"format specification gives {v.scale}")
                planes.append(decode_packed(dset[()], scale=scale, fills=v.fills,
                                            dtype=np.float32))
        lat = 90.0 - (np.arange(rows) + 0.5) * step
        lon = -180.0 + (np.arange(cols) + 0.5) * step
        tb = facts.variables[0]
        out = xr.Dataset(coords={"polarization": ("polarization", ["H", "V"]),
                                 **axis_coords(lat, lon),
                                 "time": ((), np.datetime64(f"{day[:4]}-{day[4:6]}-{day[6:]}",
                                                            "ns"), {"standard_name": "time"})})
        out["brightness_temperature"] = (("polarization", "lat", "lon"), np.stack(planes), {
            **tb.attrs(), "source_variable": " / ".join(sources),
            "frequency_ghz": opt["frequency_ghz"][band], "pass": opt["pass"][orbit],
            "long_name": f"AMSR2 {opt['frequency_ghz'][band]} GHz brightness temperature"})
        out.attrs.update({"band": band, "pass": opt["pass"][orbit],
                          "period": "daily" if period == "D" else "monthly",
                          "grid_resolution_deg": step})
        return out
