"""Metop ASCAT surface soil moisture swaths: EUMETSAT L2 netCDF, EUMETSAT / H SAF BUFR.

All output ``degree_of_saturation`` in percent (0-100 %, the product's own quantity; converting
it to m3 m-3 needs a porosity and is not a reader's business), on the product's own swath:

* netCDF (``..._eps_o_125_ssm_l2.nc`` / ``_250_``): dims ``(row, cell)`` = the file's
  ``numRows x numCells``. The unsigned variables carry a *signed* ``valid_max`` (e.g. -29536)
  and no ``_FillValue``, so CF decoding does not mask the fill 65535 (it would show as
  655.35 %; MANIFEST §8). The file is therefore read raw and masked by hand: raw 0..10000 is a
  value, anything else missing.
* BUFR (EUMETSAT full orbit ``.bfr``, EUMETCast PDUs ``.bin`` behind a GTS bulletin header, and
  H SAF NRT H101/H102/H103/H16 ``.buf``): one observation per subset, dim ``obs``; eccodes
  missing (-1e100, 2147483647) -> NaN. Compressed messages return a single value for a key
  that is constant over the message; it is broadcast to all subsets.

Flags are decoded into ``processing_flag`` / ``correction_flag`` (CF ``flag_masks``) and the
surface-state probabilities; ``quality_mask`` = value present, processing flag 0, not clipped
to 0/100 %, frozen-soil and snow-cover probability below 50 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from smflow.readers.granule import GranuleError
from smflow.readers.native.base import (
    FileHandler, decode_packed, flag_attrs, latlon_coords, nc_attrs, offsets_to_datetime,
    open_netcdf, reading, register, require,
)


def _quality(handler: FileHandler, out: xr.Dataset, dims: tuple[str, ...]) -> np.ndarray:
    """Apply the ASCAT quality rules of the product facts; returns the pass mask."""
    facts = handler.product
    dos = out["degree_of_saturation"].values
    passes = np.isfinite(dos)
    for rule in facts.flag_rules:
        flags = out[rule.variable].values
        ok = np.isfinite(flags)
        passes &= ok & rule.passes(np.where(ok, flags, -1).astype(np.int64))
    rules = ["value 0..100 %", *(r.meaning for r in facts.flag_rules)]
    for name, limit in facts.options["state_max"].items():
        if name in out:
            prob = out[name].values
            with np.errstate(invalid="ignore"):
                passes &= ~(prob >= limit)  # unknown probability (NaN) does not reject
            rules.append(f"{name} < {limit} %")
    out["degree_of_saturation"] = (dims, handler.quality(passes, dos).astype(np.float32),
                                   {**out["degree_of_saturation"].attrs,
                                    "ancillary_variables": "quality_mask processing_flag "
                                    "correction_flag"})
    out["quality_mask"] = handler.mask_variable(passes, dims, "; ".join(rules))
    opt = facts.options
    out["processing_flag"].attrs.update(flag_attrs(
        masks=[1 << i for i in range(len(opt["proc_flag_meanings"]))],
        meanings=opt["proc_flag_meanings"]))
    out["correction_flag"].attrs.update(flag_attrs(
        masks=[1 << i for i in range(len(opt["corr_flag_meanings"]))],
        meanings=opt["corr_flag_meanings"]))
    return passes


@register
class AscatL2NetcdfHandler(FileHandler):
    """EUMETSAT ASCAT L2 SSM swath in netCDF (12.5 km and 25 km)."""

    container = "netcdf"

    def decode(self) -> xr.Dataset:
        facts = self.product
        opt = facts.options
        nc = open_netcdf(self.path)
        try:
            sources = [v.source for v in facts.variables]
            require(self.path, nc.variables, ["latitude", "longitude", "utc_line_nodes",
                                              sources[0]])
            shape = nc[sources[0]].shape
            if nc[sources[0]].dimensions != ("numRows", "numCells"):
                raise GranuleError(self.path, f"{sources[0]} has dims "
                                   f"{nc[sources[0]].dimensions}, expected (numRows, numCells)")
            dims = ("row", "cell")
            out = xr.Dataset()
            for v in facts.variables:
                if v.source not in nc.variables:
                    continue
                raw = np.asarray(nc[v.source][:])
                if raw.shape != shape:
                    raise GranuleError(self.path, f"{v.source} has shape {raw.shape}, "
                                       f"{sources[0]} has {shape}")
                out[v.name] = (dims, decode_packed(raw, scale=v.scale, fills=v.fills,
                                                   valid_raw=v.valid_raw, dtype=np.float32),
                               v.attrs(comment=nc_attrs(nc[v.source]).get("definition", "")))
            lat = decode_packed(nc["latitude"][:], scale=opt["latlon_scale"],
                                fills=(opt["latlon_fill"],), valid_raw=(-90e6, 90e6))
            lon = decode_packed(nc["longitude"][:], scale=opt["latlon_scale"],
                                fills=(opt["latlon_fill"],), valid_raw=(-180e6, 360e6))
            line = decode_packed(nc["utc_line_nodes"][:], fills=(-2147483648,))
            times = offsets_to_datetime(opt["time_epoch"], line, 1.0)
            attrs = {k: str(nc.getncattr(k)) for k in nc.ncattrs()
                     if k in ("platform", "orbit_start", "license", "start_date", "end_date")}
        finally:
            nc.close()
        out = out.assign_coords({**latlon_coords(lat, lon, dims),
                                 "time": ("row", times, {"standard_name": "time",
                                                         "long_name": "UTC time of the line"})})
        _quality(self, out, dims)
        out.attrs.update(attrs)
        return out


@register
class AscatBufrHandler(FileHandler):
    """ASCAT SSM in BUFR: EUMETSAT L2 (orbit or PDU) and H SAF H101/H102/H103/H16."""

    container = "bufr"

    def decode(self) -> xr.Dataset:
        facts = self.product
        columns = _read_bufr(self.path, ["latitude", "longitude", "year", "month", "day",
                                         "hour", "minute", "second", "satelliteIdentifier",
                                         *[v.source for v in facts.variables]],
                             required=("latitude", "longitude", facts.variables[0].source))
        n = columns["latitude"].size
        dims = ("obs",)
        out = xr.Dataset()
        for v in facts.variables:
            raw = columns.get(v.source)
            if raw is None:
                continue
            out[v.name] = (dims, decode_packed(raw, scale=v.scale, fills=v.fills,
                                               valid_raw=v.valid_raw, dtype=np.float32),
                           v.attrs())
        parts = {k: columns[k] for k in ("year", "month", "day", "hour", "minute", "second")}
        if any(np.isnan(p).any() for p in parts.values()):
            raise GranuleError(self.path, "observation time keys are missing in some subsets; "
                               "the BUFR file is damaged")
        stamp = (parts["year"].astype("int64") - 1970).astype("datetime64[Y]").astype(
            "datetime64[M]") + (parts["month"].astype("int64") - 1).astype("timedelta64[M]")
        times = (stamp.astype("datetime64[D]")
                 + (parts["day"].astype("int64") - 1).astype("timedelta64[D]")
                 + parts["hour"].astype("int64").astype("timedelta64[h]")
                 + parts["minute"].astype("int64").astype("timedelta64[m]")
                 + np.round(parts["second"] * 1e3).astype("int64").astype("timedelta64[ms]")
                 ).astype("datetime64[ns]")
        sat = columns["satelliteIdentifier"]
        out = out.assign_coords({
            **latlon_coords(columns["latitude"], columns["longitude"], dims),
            "time": (dims, times, {"standard_name": "time", "comment": "UTC"}),
            "satellite_id": (dims, np.nan_to_num(sat, nan=-1).astype(np.int16), {
                "long_name": "WMO satellite identifier",
                "flag_values": np.array(list(facts.options["satellite_ids"])),
                "flag_meanings": " ".join(s.replace("-", "_") for s in
                                          facts.options["satellite_ids"].values())}),
        })
        if n and not np.isfinite(out["lat"].values).any():
            raise GranuleError(self.path, "no subset has a latitude; the BUFR data are damaged")
        _quality(self, out, dims)
        return out


#: Largest WMO bulletin envelope accepted between BUFR messages [bytes].
MAX_ENVELOPE_BYTES = 64


def _read_bufr(path: Path, keys: list[str], required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Concatenate ``keys`` over all BUFR messages of ``path`` (float arrays, NaN = missing).

    eccodes skips a WMO bulletin header before the first ``BUFR``; a message that cannot be
    unpacked (truncated, corrupt section lengths) raises :class:`GranuleError`.
    """
    import eccodes

    values: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    n_messages = 0
    extents: list[tuple[int, int]] = []  # (offset, totalLength) of each message
    with reading(path, "decode it as BUFR"), path.open("rb") as fh:
        while True:
            handle = eccodes.codes_bufr_new_from_file(fh)
            if handle is None:
                break
            try:
                n_messages += 1
                extents.append((int(eccodes.codes_get(handle, "offset")),
                                int(eccodes.codes_get(handle, "totalLength"))))
                eccodes.codes_set(handle, "unpack", 1)
                n_sub = int(eccodes.codes_get(handle, "numberOfSubsets"))
                for key in keys:
                    if not eccodes.codes_is_defined(handle, key):
                        if key in required:
                            raise GranuleError(path, f"BUFR message {n_messages} has no key "
                                               f"{key!r}; not an ASCAT soil-moisture product?")
                        values[key].append(np.full(n_sub, np.nan))
                        continue
                    arr = np.asarray(eccodes.codes_get_array(handle, key), dtype=np.float64)
                    if arr.size == 1 and n_sub > 1:  # constant over a compressed message
                        arr = np.full(n_sub, arr[0])
                    if arr.size != n_sub:
                        # replicated keys (several beams): the first occurrence per subset
                        arr = arr.reshape(n_sub, -1)[:, 0] if arr.size % n_sub == 0 else arr
                    if arr.size != n_sub:
                        raise GranuleError(path, f"BUFR key {key!r} has {arr.size} values for "
                                           f"{n_sub} subsets in message {n_messages}")
                    arr[(arr <= -1e99) | (arr == 2147483647) | (arr == 2**31 - 1)] = np.nan
                    values[key].append(arr)
            finally:
                eccodes.codes_release(handle)
    if n_messages == 0:
        raise GranuleError(path, "contains no BUFR message; the file is truncated or corrupt")
    # eccodes skips bytes it cannot read as BUFR; only WMO bulletin envelopes (header before,
    # trailer after each message, 14-45 bytes in the real files) may lie between messages.
    ends = [0] + [o + n for o, n in extents]
    starts = [o for o, _ in extents] + [path.stat().st_size]
    gaps = [b - a for a, b in zip(ends, starts)]
    worst = int(np.argmax(gaps))
    if gaps[worst] > MAX_ENVELOPE_BYTES:
        raise GranuleError(path, f"{gaps[worst]} bytes before message {worst + 1} of "
                           f"{n_messages} are not BUFR (a damaged message was skipped)")
    return {k: np.concatenate(v) for k, v in values.items()}
