"""Features of the machine-learning merging: parents, their missing-value masks, season, static covariates.

One module, no Airflow, no MLflow: the training, the evaluation and the daily task all build their
inputs here, so a model never sees features assembled differently from those it was trained on.

Feature layout (Zhang, Hou & Huang 2022, Sect. 3.4: the merging models map several satellite /
model soil-moisture series to the ground observations), per cell and day:

* ``<parent>`` — the parent's soil moisture [m3 m-3] (ASCAT: degree of saturation [%] / 100),
  standardised with the training mean and standard deviation; where the parent is missing the
  standardised value is 0 (the training mean) and
* ``<parent>_present`` — 1 where the parent has a value that day, 0 where not. Operational days
  always miss some parent (SMAP revisit, RFI, flags): the models learn to predict from what is there
  instead of dropping the day;
* ``<parent>_mean7`` — the parent's trailing 7-day mean (standardised, over the days it has);
* ``doy_sin``, ``doy_cos`` — day of year on the unit circle;
* static covariates of the domain (``elevation`` [m], ``slope`` [degree]) standardised like the
  parents.

The random forest sees one day; the LSTM and the CNN see a trailing window of ``window`` days of
the same features (:func:`sequence_windows`). Arrays keep their names up to the last moment: the
feature table is a :class:`pandas.DataFrame`, the windows come with their column list.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from smflow.config import REPO_ROOT

#: Trailing mean of each parent [days]: the one-day models (RF) see the recent wetness that a single
#: noisy retrieval hides; NaN-aware (the days the parent has), 0 (the training mean) when it had none.
SMOOTHING_DAYS = 7

#: Static covariates the project derived itself from public-domain DEMs, per domain
#: (:func:`export_static_covariates`).
STATIC_COVARIATES_DIR = REPO_ROOT / "data" / "derived"


@dataclass(frozen=True)
class FeatureSpec:
    """What a merging model was trained on: parents, covariates, window and the standardisation.

    Attributes
    ----------
    parents : tuple of str
        Parent products, in column order (names of the product catalogue).
    static : tuple of str
        Static covariates (variables of the domain's static dataset).
    window : int
        Trailing window [days] of the sequence models (LSTM, CNN), the target day included.
    center, scale : dict of str to float
        Standardisation of the parents and static covariates (training mean and standard
        deviation), fitted on the training split only (:meth:`fit`).
    target_center, target_scale : float
        Standardisation of the target soil moisture [m3 m-3] for the neural networks.
    """

    parents: tuple[str, ...]
    static: tuple[str, ...] = ()
    window: int = 30
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    target_center: float = 0.0
    target_scale: float = 1.0

    @property
    def columns(self) -> list[str]:
        """Feature names, in model-input order."""
        return [*self.parents, *(f"{p}_present" for p in self.parents),
                *(f"{p}_mean{SMOOTHING_DAYS}" for p in self.parents), "doy_sin", "doy_cos", *self.static]

    def head_indices(self) -> dict[str, list[int]]:
        """Columns of each parent (value and mask): one convolutional head each (Zhang et al. 2022, Fig. 4)."""
        cols = self.columns
        return {p: [cols.index(p), cols.index(f"{p}_present")] for p in self.parents}

    def fit(self, parents: xr.Dataset, static: xr.Dataset | None, target: np.ndarray) -> "FeatureSpec":
        """A copy with the standardisation fitted on the training data.

        Parameters
        ----------
        parents : xr.Dataset
            One variable per parent, any dims (the training period only).
        static : xr.Dataset or None
            Static covariates on the domain grid.
        target : numpy.ndarray
            Training targets [m3 m-3] (NaN ignored).
        """
        center, scale = {}, {}
        for name in self.parents:
            center[name], scale[name] = _moments(parents[name].values, name)
        for name in self.static:
            if static is None or name not in static:
                raise KeyError(f"static covariate {name!r} is not in the domain's static dataset")
            center[name], scale[name] = _moments(static[name].values, name)
        t_center, t_scale = _moments(np.asarray(target, dtype=float), "target soil moisture")
        return FeatureSpec(self.parents, self.static, self.window, center, scale, t_center, t_scale)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parents"], d["static"] = list(self.parents), list(self.static)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureSpec":
        return cls(parents=tuple(d["parents"]), static=tuple(d.get("static", ())), window=int(d["window"]),
                   center={k: float(v) for k, v in d["center"].items()},
                   scale={k: float(v) for k, v in d["scale"].items()},
                   target_center=float(d["target_center"]), target_scale=float(d["target_scale"]))


def _moments(values: np.ndarray, name: str) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        raise ValueError(f"{name}: fewer than 2 valid values in the training data; it cannot be a feature")
    sd = float(v.std())
    return float(v.mean()), sd if sd > 0 else 1.0


def feature_cube(parents: xr.Dataset, static: xr.Dataset | None, spec: FeatureSpec) -> xr.DataArray:
    """Standardised features of every cell and day.

    Parameters
    ----------
    parents : xr.Dataset
        One variable per parent of ``spec.parents`` with dims ``(time, lat, lon)`` (or
        ``(time, cell)``) [m3 m-3]; a parent the day lacks is NaN there. A parent absent from the
        dataset altogether raises.
    static : xr.Dataset or None
        ``spec.static`` variables on the same spatial dims.
    spec : FeatureSpec
        Fitted specification (:meth:`FeatureSpec.fit`).

    Returns
    -------
    xr.DataArray
        ``(time, <spatial dims>, feature)`` float32, the ``feature`` coordinate = ``spec.columns``.
        Never NaN: missing parents are 0 with their ``_present`` column 0.

    Raises
    ------
    KeyError
        A parent or static covariate of the spec is missing from the inputs.
    """
    missing = [p for p in spec.parents if p not in parents]
    if missing:
        raise KeyError(f"parents {missing} are missing from the input dataset (has {sorted(parents.data_vars)}); "
                       "pass an all-NaN field for a parent that has no data")
    first = parents[spec.parents[0]]
    dims = first.dims
    if dims[0] != "time":
        raise ValueError(f"parents must have 'time' as first dim, got {dims}")
    shape = first.shape
    out = np.zeros((*shape, len(spec.columns)), dtype=np.float32)
    k = 0
    values = {}
    for p in spec.parents:
        v = np.asarray(parents[p].transpose(*dims).values, dtype=float)
        values[p] = v
        z = (v - spec.center[p]) / spec.scale[p]
        out[..., k] = np.where(np.isfinite(z), z, 0.0)
        k += 1
    for p in spec.parents:
        out[..., k] = np.isfinite(values[p])
        k += 1
    for p in spec.parents:
        out[..., k] = _trailing_mean((values[p] - spec.center[p]) / spec.scale[p], SMOOTHING_DAYS)
        k += 1
    doy_sin, doy_cos = day_of_year_sin_cos(first["time"].values)
    expand = (slice(None),) + (None,) * (len(shape) - 1)
    out[..., k] = np.broadcast_to(doy_sin[expand], shape)
    out[..., k + 1] = np.broadcast_to(doy_cos[expand], shape)
    k += 2
    for name in spec.static:
        if static is None or name not in static:
            raise KeyError(f"static covariate {name!r} is missing; the model was trained with {list(spec.static)}")
        s = np.asarray(static[name].transpose(*dims[1:]).values, dtype=float)
        z = (s - spec.center[name]) / spec.scale[name]
        out[..., k] = np.broadcast_to(np.where(np.isfinite(z), z, 0.0)[None], shape)
        k += 1
    coords = {d: first[d] for d in dims if d in first.coords}
    return xr.DataArray(out, dims=(*dims, "feature"), coords={**coords, "feature": spec.columns})


def day_of_year_sin_cos(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``doy_sin``, ``doy_cos``: day of year on the unit circle, angle 2 pi (doy - 1) / 365.25; shape (time,)."""
    angle = 2 * np.pi * (pd.DatetimeIndex(times).day_of_year.to_numpy() - 1) / 365.25
    return np.sin(angle), np.cos(angle)


def _trailing_mean(z: np.ndarray, days: int) -> np.ndarray:
    """NaN-aware mean of the last ``days`` steps along axis 0 (the day included); 0 where all are NaN."""
    valid = np.isfinite(z)
    csum = np.cumsum(np.where(valid, z, 0.0), axis=0)
    ccount = np.cumsum(valid, axis=0)
    lag_sum = np.concatenate([np.zeros((days, *z.shape[1:])), csum[:-days]]) if z.shape[0] > days else np.zeros_like(csum)
    lag_count = np.concatenate([np.zeros((days, *z.shape[1:])), ccount[:-days]]) if z.shape[0] > days else np.zeros_like(ccount)
    total, count = csum - lag_sum[: z.shape[0]], ccount - lag_count[: z.shape[0]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def any_parent_present(cube: xr.DataArray, spec: FeatureSpec) -> np.ndarray:
    """True where at least one parent has a value (else the merged value is NaN, flagged, never invented)."""
    masks = cube.sel(feature=[f"{p}_present" for p in spec.parents]).values
    return masks.max(axis=-1) > 0


def sequence_windows(cube: np.ndarray, window: int) -> np.ndarray:
    """Trailing windows of a feature cube, ending at each day.

    Parameters
    ----------
    cube : numpy.ndarray, shape (time, ..., feature)
        Features (:func:`feature_cube` values).
    window : int
        Window length [days], the target day included.

    Returns
    -------
    numpy.ndarray, shape (time - window + 1, ..., window, feature)
        A read-only view (no copy): element ``[i]`` is the window ending on day ``i + window - 1``.
    """
    if cube.shape[0] < window:
        raise ValueError(f"{cube.shape[0]} days of features are fewer than the {window}-day window: "
                         f"read {window - 1} more days of history")
    view = np.lib.stride_tricks.sliding_window_view(cube, window, axis=0)  # (n, ..., feature, window)
    return np.moveaxis(view, -1, -2)


@dataclass(frozen=True)
class StationSamples:
    """Training samples at the in-situ stations: features and targets, one row per (station, day).

    Attributes
    ----------
    table : pandas.DataFrame
        The day's features (``spec.columns``), for the random forest.
    windows : numpy.ndarray, shape (n, window, feature)
        Trailing windows of the same features, for the LSTM and the CNN.
    target : numpy.ndarray, shape (n,)
        Daily mean in-situ soil moisture [m3 m-3] (ISMN, flag G).
    station : numpy.ndarray of str, shape (n,)
    time : numpy.ndarray of datetime64[ns], shape (n,)
    cell : numpy.ndarray of int, shape (n,)
        Flat index (lat * n_lon + lon) of the station's cell.
    """

    table: pd.DataFrame
    windows: np.ndarray
    target: np.ndarray
    station: np.ndarray
    time: np.ndarray
    cell: np.ndarray

    def subset(self, mask: np.ndarray) -> "StationSamples":
        mask = np.asarray(mask, dtype=bool)
        return StationSamples(self.table.loc[mask].reset_index(drop=True), self.windows[mask], self.target[mask],
                              self.station[mask], self.time[mask], self.cell[mask])

    def __len__(self) -> int:
        return int(self.target.size)


def station_samples(cube: xr.DataArray, insitu: xr.Dataset, cell_of_station: np.ndarray, window: int) -> StationSamples:
    """Samples where a station has a daily in-situ value and a full feature window exists.

    Parameters
    ----------
    cube : xr.DataArray
        ``(time, cell, feature)`` features (:func:`feature_cube` on flattened cells), whose first
        ``window - 1`` days serve as history only.
    insitu : xr.Dataset
        ``soil_moisture(station, time)`` [m3 m-3] on the same days
        (:func:`smflow.insitu.load_insitu_soil_moisture`).
    cell_of_station : numpy.ndarray of int, shape (station,)
        Flat cell index of each station.
    window : int
        Window length [days].

    Returns
    -------
    StationSamples
        One row per station and day with a finite in-situ value and ``window - 1`` days of history
        in the cube, station after station (days ascending).

    Raises
    ------
    ValueError
        The cube holds fewer than ``window`` days (:func:`sequence_windows`).
    """
    values = cube.values  # (time, cell, feature)
    times = cube["time"].values
    obs = insitu["soil_moisture"].transpose("station", "time").reindex(time=times).values
    windows = sequence_windows(values, window)  # (time - w + 1, cell, w, f)
    rows = []
    for s, cell in enumerate(np.asarray(cell_of_station, dtype=int)):
        t_idx = np.flatnonzero(np.isfinite(obs[s]) & (np.arange(times.size) >= window - 1))
        rows.append((s, cell, t_idx))
    n = sum(r[2].size for r in rows)
    f = values.shape[-1]
    win = np.empty((n, window, f), dtype=np.float32)
    target = np.empty(n)
    station = np.empty(n, dtype=object)
    time = np.empty(n, dtype="datetime64[ns]")
    cell_idx = np.empty(n, dtype=int)
    i = 0
    names = insitu["station"].values
    for s, cell, t_idx in rows:
        k = t_idx.size
        win[i:i + k] = windows[t_idx - (window - 1), cell]
        target[i:i + k] = obs[s, t_idx]
        station[i:i + k] = str(names[s])
        time[i:i + k] = times[t_idx]
        cell_idx[i:i + k] = cell
        i += k
    table = pd.DataFrame(win[:, -1, :].astype(np.float64), columns=list(cube["feature"].values))
    return StationSamples(table, win, target, station.astype(str), time, cell_idx)


def fingerprint(*arrays: Any) -> str:
    """SHA-256 (first 16 hex digits) of the training data: logged with every model (reproducibility)."""
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, pd.DataFrame):
            h.update(json.dumps(list(a.columns)).encode())
            a = a.to_numpy()
        arr = np.ascontiguousarray(np.asarray(a))
        if arr.dtype == object:
            h.update("\x00".join(map(str, arr.ravel())).encode())
        else:
            h.update(str(arr.dtype).encode())
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
    return h.hexdigest()[:16]


def static_covariates_path(domain: str) -> Path:
    return STATIC_COVARIATES_DIR / f"static_{domain}.json"


def load_static_covariates(grid) -> xr.Dataset:
    """Static covariates of the domain (elevation [m], slope [degree]) on its grid.

    From the project's derived file ``data/derived/static_<domain>.json`` (made by
    :func:`export_static_covariates` from a public-domain DEM). Raises ``FileNotFoundError`` when the
    domain has none: models of such a domain are trained without static covariates.
    """
    path = static_covariates_path(grid.name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no static covariates for domain {grid.name!r} "
                                "(run python -m smflow.ml.features --export-static DOMAIN)")
    doc = json.loads(path.read_text())
    if list(doc["shape"]) != list(grid.shape):
        raise ValueError(f"{path}: grid shape {doc['shape']} differs from the domain's {list(grid.shape)}; re-export it")
    data = {k: (("lat", "lon"), np.asarray(v, dtype=float).reshape(grid.shape), {"units": doc["units"][k]})
            for k, v in doc["variables"].items()}
    return xr.Dataset(data, coords={"lat": grid.lat, "lon": grid.lon}, attrs={"source": doc["source"]})


def export_static_covariates(domain: str, dem_path: Path) -> Path:
    """Write elevation and slope of ``domain`` from a DEM (ETOPO5 Hawaii: NOAA, public domain)."""
    from smflow.domain import load_domain
    from smflow.readers.native import open_native
    from smflow.regrid import terrain_covariates

    grid = load_domain(domain)
    dem = open_native(dem_path)
    # ETOPO carries bathymetry: a coastal cell's mean would mix sea-floor depths into its elevation.
    dem["elevation"] = dem["elevation"].where(dem["elevation"] > 0)
    terrain = terrain_covariates(dem, grid)
    land = grid.land_mask
    doc = {
        "description": f"Static covariates of the {domain} domain for the ML merging models (derived data).",
        "source": f"{dem_path.name}: NOAA NGDC ETOPO5 (public domain), mean elevation and slope per cell "
                  "of the pixels above sea level (smflow.regrid.terrain_covariates)",
        "shape": list(grid.shape),
        "units": {"elevation": "m", "slope": "degree"},
        "variables": {k: [None if not (np.isfinite(x) and m) else round(float(x), 3)
                          for x, m in zip(terrain[k].values.ravel(), land.ravel())]
                      for k in ("elevation", "slope")},
    }
    path = static_covariates_path(domain)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


if __name__ == "__main__":  # pragma: no cover - maintenance command
    import argparse

    parser = argparse.ArgumentParser(description="export the static covariates of a domain")
    parser.add_argument("--export-static", metavar="DOMAIN", required=True)
    parser.add_argument("--dem", type=Path, default=REPO_ROOT.parent / "shared/data/real/dem_hawaii/HI_topo_04.nc")
    args = parser.parse_args()
    print(export_static_covariates(args.export_static, args.dem))
