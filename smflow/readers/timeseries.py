"""Time-series cell files: the three CF discrete-sampling-geometry layouts.

The hawaii_timeseries cell files (MANIFEST section 3) come in three CF ``timeSeries`` layouts:

* **orthogonal** (``OrthoMultiTs``): ``var(locations, time)`` on one time axis (ERA5-Land,
  GLDAS, C3S);
* **contiguous ragged** (ASCAT): observations along ``obs`` stored location after location,
  ``row_size(locations)`` observations each;
* **indexed ragged** (SMAP): observations along ``time``, ``locationIndex(time)`` says whose.

``read_orthogonal``, ``read_contiguous_ragged`` and ``read_indexed_ragged`` turn one or more cell
files (e.g. 0165 + 0166) into one CF-annotated Dataset with dims ``(location, time)``, coordinates
``lat``, ``lon``, ``alt``, ``location_id`` (the product's grid point index) and decoded UTC times.
Ragged observations are placed on the union of their times (NaN / the flag fill elsewhere).
Floating variables are CF-decoded (``_FillValue`` / ``missing_value`` -> NaN, ``scale_factor``);
integer flag variables stay raw.

The product handlers (``read_product`` / ``decode_product``: unit conversion, valid range, flags,
the decoded-granule contract of ``docs/DESIGN.md``) are in :mod:`smflow.readers.decode`.
``subset_files`` writes a subset of cell files in their native layout (the bundle, the landing
zone's daily granules), keeping names, attributes, flags and encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr
from xarray.coding.times import decode_cf_datetime

from smflow.config import Settings
from smflow.dates import DayLike, as_date
from smflow.products import Layout, Product, get_product
from smflow.readers.errors import GranuleError, check_signature

DateLike = DayLike
BBox = tuple[float, float, float, float]  # lon_min, lat_min, lon_max, lat_max

#: Location (instance) variables carried by every layout.
LOCATION_VARIABLES = ("lat", "lon", "alt", "location_id", "location_description")
#: Layout bookkeeping variables (not data).
RAGGED_INDEX_VARIABLES = ("row_size", "locationIndex")
_SKIP_ATTRS = {"_FillValue", "missing_value", "scale_factor", "add_offset", "coordinates"}


# -- granule enumeration ----------------------------------------------------------------------
@dataclass(frozen=True)
class CellFile:
    """One cell file of a product (pangeo-forge style: which files make a dataset)."""

    product: str
    cell: str
    path: Path


def default_source_dir(product: str | Product, settings: Settings | None = None) -> Path:
    """Root that holds ``<folder>/<cell>.nc`` for ``product``.

    Redistributable products come from the bundle (``<sample_data_dir>/hawaii``); the others
    (ASCAT) only from ``../shared/data/real/hawaii_timeseries``.
    """
    p = get_product(product)
    settings = settings or Settings.load()
    if p.redistributable:
        return Path(settings.sample_data_dir) / "hawaii"
    if settings.shared_data_dir is None:
        raise FileNotFoundError(
            f"Product {p.name!r} is not bundled (licence: {p.licence}) and ../shared/data/real "
            "is not available; set SMFLOW_SHARED_DATA or pass source_dir."
        )
    return Path(settings.shared_data_dir) / "hawaii_timeseries"


def cell_files(product: str | Product, source_dir: str | Path | None = None) -> tuple[CellFile, ...]:
    """The product's cell files below ``source_dir`` (default :func:`default_source_dir`)."""
    p = get_product(product)
    root = Path(source_dir) if source_dir is not None else default_source_dir(p)
    files = tuple(CellFile(p.name, cell, root / p.folder / f"{cell}.nc") for cell in p.cells)
    missing = [str(f.path) for f in files if not f.path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{p.name}: cell file(s) {missing} not found; source_dir must hold "
            f"'{p.folder}/<cell>.nc' (the bundle data/sample/hawaii or "
            "../shared/data/real/hawaii_timeseries)."
        )
    return files


def product_variables(product: str | Product) -> tuple[str, ...]:
    """File variables a product handler reads: the main variable, flags, auxiliaries."""
    p = get_product(product)
    return tuple(dict.fromkeys((p.variable, *p.flag_variables, *p.auxiliary)))


# -- low-level netCDF access ------------------------------------------------------------------
def _open(path: Path) -> netCDF4.Dataset:
    check_signature(path)
    try:
        ds = netCDF4.Dataset(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise GranuleError(
            path, f"cannot be opened as netCDF ({exc}); the file is probably truncated or corrupt"
        ) from exc
    ds.set_auto_maskandscale(False)
    return ds


def _read(path: Path, var: netCDF4.Variable, index=slice(None)) -> np.ndarray:
    try:
        return np.asarray(var[index])
    except (OSError, RuntimeError, ValueError, IndexError) as exc:
        raise GranuleError(
            path, f"variable {var.name!r} cannot be read ({exc}); the file is probably truncated"
        ) from exc


def detect_layout(ds: netCDF4.Dataset, path: Path) -> Layout:
    """Which CF DSG layout ``ds`` has (raises :class:`GranuleError` if none)."""
    if "row_size" in ds.variables:
        return "contiguous_ragged"
    if "locationIndex" in ds.variables:
        return "indexed_ragged"
    if "locations" in ds.dimensions and "time" in ds.dimensions:
        if any(v.dimensions == ("locations", "time") for v in ds.variables.values()):
            return "orthogonal"
    raise GranuleError(
        path,
        "is not a CF timeSeries file in a known layout (no row_size, no locationIndex, no "
        f"(locations, time) variable); dimensions {list(ds.dimensions)}",
    )


def _fill_of(var: netCDF4.Variable):
    for key in ("_FillValue", "missing_value"):
        if key in var.ncattrs():
            return var.getncattr(key)
    return None


def _decode_values(var: netCDF4.Variable, raw: np.ndarray) -> np.ndarray:
    """CF decoding of floats and packed values; integer flags are returned raw."""
    attrs = set(var.ncattrs())
    packed = bool({"scale_factor", "add_offset"} & attrs)
    if not packed and not np.issubdtype(raw.dtype, np.floating):
        return raw
    out = raw.astype(np.float64 if packed else raw.dtype, copy=True)
    for key in ("_FillValue", "missing_value"):
        if key in attrs:
            fill = np.asarray(var.getncattr(key)).astype(raw.dtype)
            out[np.isin(raw, fill)] = np.nan
    if "_FillValue" not in attrs and raw.dtype.str[1:] in netCDF4.default_fillvals:
        # Without the attribute, cells never written hold netCDF's default fill (9.97e36 for
        # floats): missing, not a value (a granule of them is empty, not in "wrong units").
        out[raw == np.asarray(netCDF4.default_fillvals[raw.dtype.str[1:]]).astype(raw.dtype)] = np.nan
    if packed:
        out = out * float(var.getncattr("scale_factor")) if "scale_factor" in attrs else out
        out = out + float(var.getncattr("add_offset")) if "add_offset" in attrs else out
    return out


def _fill_for_dense(var: netCDF4.Variable, dtype: np.dtype):
    if np.issubdtype(dtype, np.floating):
        return np.nan
    fill = _fill_of(var)
    if fill is not None:
        return np.asarray(fill).astype(dtype)
    return np.asarray(netCDF4.default_fillvals[dtype.str[1:]]).astype(dtype)


def _var_attrs(var: netCDF4.Variable, decoded: bool) -> dict:
    attrs = {k: var.getncattr(k) for k in var.ncattrs() if k not in _SKIP_ATTRS or not decoded}
    attrs.pop("coordinates", None)
    if isinstance(attrs.get("flag_meanings"), list):  # C3S stores a string array
        attrs["flag_meanings"] = " ".join(attrs["flag_meanings"])
    return attrs


def _decode_time(path: Path, var: netCDF4.Variable, raw: np.ndarray) -> np.ndarray:
    units = var.getncattr("units") if "units" in var.ncattrs() else None
    if not units or " since " not in units:
        raise GranuleError(path, f"time variable has no CF 'units ... since ...' ({units!r})")
    calendar = var.getncattr("calendar") if "calendar" in var.ncattrs() else "standard"
    if raw.size == 0:
        return np.array([], dtype="datetime64[ns]")
    return np.asarray(decode_cf_datetime(raw, units, calendar, time_unit="ns")).astype(
        "datetime64[ns]"
    )


def _time_window(start: DateLike | None, end: DateLike | None):
    """``[start 00:00, end + 1 day 00:00)`` as datetime64[ns] (None = open)."""
    t0 = None if start is None else np.datetime64(as_date(start), "ns")
    t1 = None if end is None else np.datetime64(as_date(end), "ns") + np.timedelta64(1, "D")
    return t0, t1


def _in_window(times: np.ndarray, t0, t1) -> np.ndarray:
    keep = np.ones(times.shape, dtype=bool)
    if t0 is not None:
        keep &= times >= t0
    if t1 is not None:
        keep &= times < t1
    return keep


@dataclass
class _Locations:
    """Valid locations of one file (indices into its ``locations`` dimension)."""

    index: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    alt: np.ndarray
    location_id: np.ndarray


def _locations(ds: netCDF4.Dataset, path: Path, bbox: BBox | None) -> _Locations:
    for name in ("lat", "lon", "location_id"):
        if name not in ds.variables:
            raise GranuleError(path, f"has no location variable {name!r}; not a cell file")
    lat = _read(path, ds["lat"]).astype(np.float64)
    lon = _read(path, ds["lon"]).astype(np.float64)
    n = lat.size
    alt = _read(path, ds["alt"]).astype(np.float64) if "alt" in ds.variables else np.full(n, np.nan)
    gpi = _read(path, ds["location_id"]).astype(np.int64)
    # Unused slots of a cell file (ASCAT H119: 22 of 55) hold the netCDF default fill (9.97e36).
    valid = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 360)
    if bbox is not None:
        lon_min, lat_min, lon_max, lat_max = bbox
        valid &= (lat >= lat_min) & (lat <= lat_max) & (lon >= lon_min) & (lon <= lon_max)
    idx = np.flatnonzero(valid)
    alt_sel = alt[idx]
    alt_sel[np.abs(alt_sel) > 1e30] = np.nan
    return _Locations(idx, lat[idx], lon[idx], alt_sel, gpi[idx])


def _select_variables(ds, path, dims, variables, require) -> list[str]:
    for name in require:
        if name not in ds.variables:
            found = sorted(v for v in ds.variables if v not in LOCATION_VARIABLES)
            raise GranuleError(
                path, f"has no variable {name!r} (variables: {found}); wrong product or renamed?"
            )
    names = [
        name
        for name, var in ds.variables.items()
        if var.dimensions == dims and name not in ("time", *RAGGED_INDEX_VARIABLES)
        and var.dtype is not str
    ]
    if variables is not None:
        missing = [v for v in variables if v not in ds.variables]
        if missing:
            found = sorted(names)
            raise GranuleError(
                path, f"has no variable(s) {missing} (data variables: {found}); wrong product?"
            )
        bad = [v for v in variables if ds[v].dimensions != dims]
        if bad:
            raise GranuleError(
                path, f"variable(s) {bad} have dims {[ds[v].dimensions for v in bad]}, expected "
                f"{dims}; wrong layout?"
            )
        names = [n for n in names if n in variables]
    return names


# -- assembling the (location, time) dataset --------------------------------------------------
@dataclass
class _Part:
    """Observations of one file, ready to be placed on the (location, time) grid."""

    path: Path
    locations: _Locations
    loc_of_obs: np.ndarray | None  # ragged: position in `locations` of each observation
    times: np.ndarray  # datetime64[ns]: (time,) orthogonal, (obs,) ragged
    values: dict[str, np.ndarray]  # orthogonal: (location, time); ragged: (obs,)
    meta: dict[str, tuple[dict, object]]  # var -> (attrs, dense fill)


def _assemble(parts: list[_Part], layout: Layout) -> xr.Dataset:
    names = list(parts[0].values)
    for part in parts[1:]:
        if list(part.values) != names:
            raise GranuleError(
                part.path, f"has variables {list(part.values)} but {parts[0].path.name} has {names}"
            )
    lat = np.concatenate([p.locations.lat for p in parts])
    lon = np.concatenate([p.locations.lon for p in parts])
    alt = np.concatenate([p.locations.alt for p in parts])
    gpi = np.concatenate([p.locations.location_id for p in parts])
    offsets = np.cumsum([0] + [p.locations.index.size for p in parts])
    n_loc = int(offsets[-1])

    # Orthogonal cells normally share one time axis; ragged observations go on the union.
    times = np.unique(np.concatenate([p.times for p in parts]))
    data: dict[str, np.ndarray] = {}
    for name in names:
        attrs, fill = parts[0].meta[name]
        dtype = np.result_type(*[p.values[name].dtype for p in parts])
        dense = np.full((n_loc, times.size), fill, dtype=dtype)
        for k, part in enumerate(parts):
            col = np.searchsorted(times, part.times)
            if layout == "orthogonal":
                dense[offsets[k]:offsets[k + 1], :][:, col] = part.values[name]
            else:
                dense[offsets[k] + part.loc_of_obs, col] = part.values[name]
        data[name] = dense

    ds = xr.Dataset(
        {name: (("location", "time"), data[name], parts[0].meta[name][0]) for name in names},
        coords={
            "time": ("time", times, {"standard_name": "time", "long_name": "time of observation",
                                     "axis": "T", "comment": "UTC"}),
            "lat": ("location", lat, {"standard_name": "latitude", "units": "degrees_north",
                                      "long_name": "location latitude"}),
            "lon": ("location", lon, {"standard_name": "longitude", "units": "degrees_east",
                                      "long_name": "location longitude"}),
            "alt": ("location", alt, {"standard_name": "height", "units": "m", "positive": "up",
                                      "long_name": "vertical distance above the surface"}),
            "location_id": ("location", gpi, {"cf_role": "timeseries_id",
                                              "long_name": "grid point index of the product grid"}),
        },
        attrs={
            "featureType": "timeSeries",
            "source_layout": layout,
            "source_file": ", ".join(str(p.path) for p in parts),
        },
    )
    return ds


def _read_orthogonal_file(path, variables, require, t0, t1, bbox) -> _Part:
    ds = _open(path)
    try:
        if detect_layout(ds, path) != "orthogonal":
            raise GranuleError(path, f"has {detect_layout(ds, path)} layout, expected orthogonal")
        names = _select_variables(ds, path, ("locations", "time"), variables, require)
        locs = _locations(ds, path, bbox)
        times = _decode_time(path, ds["time"], _read(path, ds["time"]))
        keep = np.flatnonzero(_in_window(times, t0, t1))
        t_index = slice(keep[0], keep[-1] + 1) if keep.size else slice(0, 0)
        values, meta = {}, {}
        for name in names:
            var = ds[name]
            raw = _read(path, var, (slice(None), t_index))
            raw = raw[locs.index][:, keep - (keep[0] if keep.size else 0)]
            dec = _decode_values(var, raw)
            values[name] = dec
            meta[name] = (_var_attrs(var, dec is not raw), _fill_for_dense(var, dec.dtype))
        return _Part(path, locs, None, times[keep], values, meta)
    finally:
        ds.close()


def _read_ragged_file(path, layout, variables, require, t0, t1, bbox) -> _Part:
    ds = _open(path)
    try:
        found = detect_layout(ds, path)
        if found != layout:
            raise GranuleError(path, f"has {found} layout, expected {layout}")
        obs_dim = "obs" if layout == "contiguous_ragged" else "time"
        if obs_dim not in ds.dimensions:
            raise GranuleError(path, f"has no {obs_dim!r} dimension; not a {layout} file")
        n_obs = len(ds.dimensions[obs_dim])
        n_loc_file = len(ds.dimensions["locations"])
        names = _select_variables(ds, path, (obs_dim,), variables, require)
        locs = _locations(ds, path, bbox)
        if layout == "contiguous_ragged":
            row_size = _read(path, ds["row_size"]).astype(np.int64)
            # Unused location slots have a fill row_size: they own no observations.
            row_size = np.where((row_size < 0) | (row_size > n_obs), 0, row_size)
            if row_size.sum() != n_obs:
                raise GranuleError(
                    path, f"row_size sums to {row_size.sum()} but dimension obs has {n_obs}; "
                    "the file is inconsistent or truncated"
                )
            loc_file = np.repeat(np.arange(n_loc_file), row_size)
        else:
            loc_file = _read(path, ds["locationIndex"]).astype(np.int64)
            if loc_file.size and (loc_file.min() < 0 or loc_file.max() >= n_loc_file):
                raise GranuleError(
                    path, f"locationIndex outside 0..{n_loc_file - 1}; the file is inconsistent"
                )
        times = _decode_time(path, ds["time"], _read(path, ds["time"]))
        # Map file location -> position among the selected locations (-1 = dropped).
        position = np.full(n_loc_file, -1, dtype=np.int64)
        position[locs.index] = np.arange(locs.index.size)
        keep = (position[loc_file] >= 0) & _in_window(times, t0, t1)
        values, meta = {}, {}
        for name in names:
            var = ds[name]
            raw = _read(path, var)[keep]
            dec = _decode_values(var, raw)
            values[name] = dec
            meta[name] = (_var_attrs(var, dec is not raw), _fill_for_dense(var, dec.dtype))
        return _Part(path, locs, position[loc_file[keep]], times[keep], values, meta)
    finally:
        ds.close()


def _as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise ValueError("No files given; pass one or more cell-file paths.")
    return out


def read_layout(
    layout: Layout,
    paths: str | Path | Iterable[str | Path],
    *,
    variables: Sequence[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    bbox: BBox | None = None,
    require: Sequence[str] = (),
) -> xr.Dataset:
    """Read time-series files in one of the CF discrete-sampling-geometry layouts.

    Parameters
    ----------
    layout : {"orthogonal", "contiguous_ragged", "indexed_ragged"}
        ``orthogonal``: multidimensional ``var(locations, time)``; ``contiguous_ragged``:
        ``row_size(locations)``, observations along ``obs``; ``indexed_ragged``:
        ``locationIndex(time)``, observations along ``time``.
    paths : path or iterable of paths
        One or more cell files of the same product; their locations are concatenated.
    variables : sequence of str, optional
        Data variables to read (default: all the layout's data variables).
    start, end : date-like, optional
        Keep times in ``[start, end + 1 day)`` (whole UTC days).
    bbox : (lon_min, lat_min, lon_max, lat_max), optional
        Keep locations inside this box.
    require : sequence of str
        Variables that must exist (a clear :class:`GranuleError` otherwise).

    Returns
    -------
    xr.Dataset
        Dims ``(location, time)``; coords ``lat``, ``lon``, ``alt``, ``location_id``, ``time``
        (datetime64[ns], UTC). For the ragged layouts the ``time`` axis is the sorted union of
        the observation times, and each location's values sit at its own observation times
        (NaN, or the flag's fill value, elsewhere).

    Raises
    ------
    ValueError
        Unknown ``layout``, or no file given.
    GranuleError
        A file that is missing, not netCDF, in another layout or without a required variable.
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; use one of {sorted(_LAYOUTS)}.")
    t0, t1 = _time_window(start, end)
    if layout == "orthogonal":
        parts = [_read_orthogonal_file(p, variables, require, t0, t1, bbox) for p in _as_paths(paths)]
    else:
        parts = [_read_ragged_file(p, layout, variables, require, t0, t1, bbox) for p in _as_paths(paths)]
    return _assemble(parts, layout)


_LAYOUTS: tuple[Layout, ...] = ("orthogonal", "contiguous_ragged", "indexed_ragged")


def read_orthogonal(paths: str | Path | Iterable[str | Path], **options: Any) -> xr.Dataset:
    """Read orthogonal multidimensional time-series files (``var(locations, time)``).

    :func:`read_layout` with ``layout="orthogonal"``; ``options`` are its keyword arguments
    (``variables``, ``start``, ``end``, ``bbox``, ``require``).
    """
    return read_layout("orthogonal", paths, **options)


def read_contiguous_ragged(paths: str | Path | Iterable[str | Path], **options: Any) -> xr.Dataset:
    """Read contiguous ragged array files (``row_size(locations)``, observations along ``obs``).

    :func:`read_layout` with ``layout="contiguous_ragged"``; ``options`` as there.
    """
    return read_layout("contiguous_ragged", paths, **options)


def read_indexed_ragged(paths: str | Path | Iterable[str | Path], **options: Any) -> xr.Dataset:
    """Read indexed ragged array files (``locationIndex(time)``, observations along ``time``).

    :func:`read_layout` with ``layout="indexed_ragged"``; ``options`` as there.
    """
    return read_layout("indexed_ragged", paths, **options)


# -- native-layout subsets --------------------------------------------------------------------
def _chunks(var: netCDF4.Variable, sizes: Sequence[int]):
    chunking = var.chunking()
    if chunking == "contiguous" or chunking is None:
        return None
    return [max(1, min(c, n)) if n > 0 else c for c, n in zip(chunking, sizes)]


def _fmt_time(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def subset_files(
    paths: str | Path | Iterable[str | Path],
    dest: str | Path,
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    bbox: BBox | None = None,
    variables: Sequence[str] | None = None,
    global_attrs: dict | None = None,
    history: str | None = None,
) -> Path:
    """Write the subset of one or more cell files to ``dest`` in their native layout.

    Variable names, dtypes, attributes, fill values, raw (packed) values, time units and the
    compression settings are those of the source; only locations (``bbox``, unused slots
    dropped), times (whole UTC days ``start .. end``) and variables are cut. Several files are
    concatenated along ``locations`` (orthogonal files must share their time axis). A window with
    no observation gives a valid file with an empty ``time`` / ``obs`` dimension.

    Parameters
    ----------
    paths : path or iterable of paths
        Source cell files, one layout.
    dest : path
        Output netCDF file (overwritten).
    start, end, bbox
        As :func:`read_orthogonal`.
    variables : sequence of str, optional
        Data variables to keep (location and layout variables are always kept).
    global_attrs : dict, optional
        Global attributes to set or replace (e.g. ``id``).
    history : str, optional
        Line appended to the ``history`` attribute (no time stamp, so equal inputs give equal
        bytes).

    Returns
    -------
    Path
        ``dest``.
    """
    srcs = _as_paths(paths)
    dest = Path(dest)
    t0, t1 = _time_window(start, end)
    opened = [_open(p) for p in srcs]
    try:
        layouts = {detect_layout(ds, p) for ds, p in zip(opened, srcs)}
        if len(layouts) != 1:
            raise ValueError(f"Files {srcs} mix layouts {sorted(layouts)}; subset one layout at a time.")
        layout = layouts.pop()
        obs_dim = {"orthogonal": "time", "contiguous_ragged": "obs", "indexed_ragged": "time"}[layout]
        plans = []
        for ds, path in zip(opened, srcs):
            locs = _locations(ds, path, bbox)
            t_raw = _read(path, ds["time"])
            times = _decode_time(path, ds["time"], t_raw)
            in_time = _in_window(times, t0, t1)
            n_loc_file = len(ds.dimensions["locations"])
            if layout == "orthogonal":
                obs_keep = np.flatnonzero(in_time)
                new_loc_of_obs = None
            else:
                n_obs = len(ds.dimensions[obs_dim])
                if layout == "contiguous_ragged":
                    rs = _read(path, ds["row_size"]).astype(np.int64)
                    rs = np.where((rs < 0) | (rs > n_obs), 0, rs)
                    loc_file = np.repeat(np.arange(n_loc_file), rs)
                else:
                    loc_file = _read(path, ds["locationIndex"]).astype(np.int64)
                position = np.full(n_loc_file, -1, dtype=np.int64)
                position[locs.index] = np.arange(locs.index.size)
                obs_keep = np.flatnonzero((position[loc_file] >= 0) & in_time)
                new_loc_of_obs = position[loc_file[obs_keep]]
            plans.append((ds, path, locs, obs_keep, new_loc_of_obs, times[obs_keep], t_raw[obs_keep]))

        if layout == "orthogonal" and len(plans) > 1:
            ref = plans[0][6]
            for plan in plans[1:]:
                if plan[6].shape != ref.shape or not np.array_equal(plan[6], ref):
                    raise ValueError(
                        f"Orthogonal files {plans[0][1].name} and {plan[1].name} have different "
                        "time axes; subset them separately."
                    )
        time_units = {ds["time"].getncattr("units") for ds, *_ in plans}
        if len(time_units) != 1:
            raise ValueError(f"Files {srcs} use different time units {sorted(time_units)}.")

        first = opened[0]
        keep_vars = []
        for name, var in first.variables.items():
            if name in LOCATION_VARIABLES or name in ("time", *RAGGED_INDEX_VARIABLES):
                keep_vars.append(name)
            elif variables is None or name in variables:
                keep_vars.append(name)
        if variables is not None:
            missing = [v for v in variables if v not in first.variables]
            if missing:
                raise GranuleError(srcs[0], f"has no variable(s) {missing}")

        n_loc = sum(plan[2].index.size for plan in plans)
        if n_loc == 0:
            raise ValueError(f"No location of {srcs} lies inside bbox {bbox}.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = netCDF4.Dataset(dest, "w", format=first.data_model)
        try:
            attrs = {k: first.getncattr(k) for k in first.ncattrs()}
            all_lat = np.concatenate([p[2].lat for p in plans])
            all_lon = np.concatenate([p[2].lon for p in plans])
            all_times = np.concatenate([p[5] for p in plans])
            updates = {  # rounded: lat/lon are float32 in the files
                "geospatial_lat_min": round(float(all_lat.min()), 6),
                "geospatial_lat_max": round(float(all_lat.max()), 6),
                "geospatial_lon_min": round(float(all_lon.min()), 6),
                "geospatial_lon_max": round(float(all_lon.max()), 6),
            }
            for key, value in updates.items():
                if key in attrs:
                    attrs[key] = value
            if "time_coverage_end" in attrs and all_times.size:
                attrs["time_coverage_end"] = _fmt_time(all_times.max())
            attrs.update(global_attrs or {})
            if history:
                attrs["history"] = "\n".join(filter(None, [str(attrs.get("history", "")), history]))
            for key, value in attrs.items():
                out.setncattr(key, value)
            for name, dim in first.dimensions.items():
                if name == "locations":
                    out.createDimension(name, n_loc)
                elif name == obs_dim:
                    out.createDimension(name, None if dim.isunlimited() else
                                        sum(p[3].size for p in plans))
                else:
                    out.createDimension(name, None if dim.isunlimited() else len(dim))
            n_obs_total = sum(p[3].size for p in plans) if layout != "orthogonal" else plans[0][3].size
            for name in keep_vars:
                var = first[name]
                sizes = [n_loc if d == "locations" else n_obs_total if d == obs_dim
                         else len(first.dimensions[d]) for d in var.dimensions]
                filters = var.filters() or {}
                fill = var.getncattr("_FillValue") if "_FillValue" in var.ncattrs() else None
                kwargs = dict(
                    zlib=bool(filters.get("zlib")),
                    complevel=int(filters.get("complevel") or 4),
                    shuffle=bool(filters.get("shuffle")),
                    fletcher32=bool(filters.get("fletcher32")),
                )
                if var.dtype is str:
                    new = out.createVariable(name, str, var.dimensions, **kwargs)
                else:
                    chunks = _chunks(var, sizes)
                    new = out.createVariable(
                        name, var.dtype, var.dimensions, fill_value=fill,
                        chunksizes=chunks, **kwargs,
                    )
                new.set_auto_maskandscale(False)
                for key in var.ncattrs():
                    if key != "_FillValue":
                        new.setncattr(key, var.getncattr(key))
                pieces = []
                for ds, path, locs, obs_keep, new_loc, _t, _traw in plans:
                    src = ds[name]
                    if name == "row_size":
                        data = np.bincount(new_loc, minlength=locs.index.size).astype(var.dtype)
                    elif var.dimensions == ("locations",):
                        data = _read(path, src)[locs.index]
                    elif name == "locationIndex":
                        data = new_loc  # offset applied below
                    elif var.dimensions == ("locations", "time"):
                        data = _read(path, src)[locs.index][:, obs_keep]
                    elif var.dimensions == (obs_dim,):
                        data = _read(path, src)[obs_keep]
                    elif obs_dim in var.dimensions or "locations" in var.dimensions:
                        raise ValueError(f"{path}: variable {name} has unsupported dims {var.dimensions}")
                    else:
                        data = _read(path, src)
                    pieces.append(data)
                if name == "locationIndex":
                    offsets = np.cumsum([0] + [p[2].index.size for p in plans])
                    pieces = [pc + off for pc, off in zip(pieces, offsets)]
                if var.dimensions == ("locations",) or name in RAGGED_INDEX_VARIABLES or (
                    var.dimensions == (obs_dim,) and layout != "orthogonal"
                ):
                    data = np.concatenate(pieces) if pieces else np.array([], dtype=var.dtype)
                elif var.dimensions == ("locations", "time"):
                    data = np.concatenate(pieces, axis=0)
                else:
                    data = pieces[0]
                if name == "locationIndex":
                    data = data.astype(var.dtype)
                if data.size:
                    new[...] = data
        finally:
            out.close()
    finally:
        for ds in opened:
            ds.close()
    return dest
