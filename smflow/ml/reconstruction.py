"""ANN reconstruction of the missing SMAP retrievals: seamless daily SMAP-like soil moisture.

Wang & Xu 2021 (Remote Sens. 13, 5156; "W&X") reconstruct SMAP soil moisture where it is missing
with a small feed-forward network trained, grid cell by grid cell, on the days SMAP exists, from
predictors that always exist (Sect. 3.1). This module is that method on the project's grids:

* **Predictors** (W&X Sect. 2.2.3 and 3.1: AMSR2 Tb 6.9-23.8 GHz H/V, GLDAS SM / LST / soil
  temperature, MODIS LAI). The Big Island has no AMSR2 or MODIS file (``../shared`` MANIFEST,
  "Gaps"), so the documented substitutes that the daily store always holds are used
  (:data:`PREDICTORS`): ERA5-Land ``swvl1`` [m3 m-3] (a second model soil moisture in place of
  the brightness temperatures), GLDAS Noah 0-10 cm soil moisture [m3 m-3] (W&X's GLDAS SM),
  GLDAS Noah 0-10 cm soil temperature [K] (W&X's GLDAS ST), day of year as sin / cos (the
  seasonal cycle in place of MODIS LAI). Not used, and why: GLDAS LST and the deeper GLDAS
  layers are not read by the catalogue's GLDAS cell files nor stored daily; ERA5-Land ``stl1`` is
  in the cell files but not in the daily store; elevation is constant within a cell, so a per-cell
  network cannot use it. The list is recorded in the model and in every product.
* **Normalisation**: min-max to [0, 1] of every predictor and of the target, fitted on the
  training split of the cell only (W&X Sect. 3.1, "each variable was normalized to 0-1").
* **Network**: one hidden layer of ``hidden`` tanh neurons (W&X Sect. 3.2.2 and 4.1: 12 was best;
  a parameter here), linear output; scikit-learn ``MLPRegressor`` with L-BFGS and a fixed seed
  (W&X used MATLAB's Levenberg-Marquardt; L-BFGS is the comparable full-batch second-order-like
  optimiser; a small L2 penalty stands in for validation-halted training).
* **Split**: 80 / 10 / 10 (W&X Sect. 3.2.3 and 4.1) by contiguous blocks of
  :data:`BLOCK_DAYS` days, never by random day (autocorrelation), cycling
  train x8 / validation / test so every split spans the seasons (:func:`block_split`).
* **Matched pairs**: at least :data:`MIN_PAIRS` days with the target and every predictor per cell
  (W&X Sect. 3.1, "grid cells with less than 50 matching pairs ... were removed"); a cell below
  stays unreconstructed and says why (:data:`CELL_STATUS`).
* **Heavy-rain filter** (W&X Sect. 3.2.4): training days following heavy rain are removed. The
  paper's threshold is 8.75 mm per 7 h = 15 mm per 12 h (heavy rain, GB/T 28592-2012) x 7/12, the
  rain between the AMSR2 and SMAP overpasses. Scaled the same way (linearly in duration) to the
  daily step used here: 15 mm / 12 h x 24 h = 8.75 mm x 24/7 = **30 mm per day**
  (:data:`HEAVY_RAIN_MM_PER_DAY`); a training day whose UTC-day rain reaches it is dropped
  (:func:`heavy_rain_days`). The rain comes from a configured source: the rain gauges where a
  cell has one and the day has a gauge sum, else the project's own SM2RAIN rainfall; the source
  of each cell-day is counted in the model's metadata.
* **Uncertainty**: each cell's RMSE on its validation split [m3 m-3] is the
  ``smap_reconstructed_uncertainty`` of every value reconstructed there.
* **Flags** (:data:`SOURCE_FLAGS`): observed / reconstructed / reconstructed but extrapolated (a
  predictor outside the cell's training range: reconstructed, never clipped) / none because the
  cell has too few pairs / none because a predictor is missing that day.

The fitted networks of all cells are one :class:`smflow.ml.models.GridParameters` (weights as
arrays with the grid as trailing dims), registered as ``smap_reconstruction`` with the registry
code every other grid model uses, and evaluated by :mod:`smflow.ml.evaluation` (R, ubRMSE, bias,
KGE with moving-block bootstrap intervals).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from smflow.ml.models import GridParameterModel, GridParameters
from smflow.publish.cf_facts import SMAP_RECONSTRUCTION_ATTRS, SMAP_SOURCE_FLAGS

log = logging.getLogger(__name__)

#: Registered model name.
RECONSTRUCTION_MODEL = "smap_reconstruction"
#: Store field of the reconstructed target.
TARGET = "smap"

#: Predictors of the Big Island model: name -> (catalogue product, decoded variable or None for the
#: soil moisture). The name is the time-series store field (:func:`smflow.ingest.auxiliary_field`).
PREDICTORS: dict[str, tuple[str, str | None]] = {
    "era5_land": ("era5_land", None),
    "gldas": ("gldas", None),
    "gldas_soil_temperature": ("gldas", "soil_temperature"),
}
#: Predictors computed from the date (always present).
SEASONAL = ("doy_sin", "doy_cos")
#: What each predictor stands for in Wang & Xu 2021 (written into the model card and products).
PREDICTOR_ROLES = {
    "era5_land": "ERA5-Land swvl1 0-7 cm [m3 m-3] (substitute for AMSR2 Tb 6.9-23.8 GHz: absent on the domain)",
    "gldas": "GLDAS Noah 0-10 cm soil moisture [m3 m-3] (W&X GLDAS SM)",
    "gldas_soil_temperature": "GLDAS Noah 0-10 cm soil temperature [K] (W&X GLDAS ST)",
    "doy_sin": "sin(2 pi (doy-1)/365.25) (seasonal cycle; substitute for MODIS LAI: absent on the domain)",
    "doy_cos": "cos(2 pi (doy-1)/365.25) (seasonal cycle; substitute for MODIS LAI: absent on the domain)",
}

HIDDEN = 12
SEED = 20210101
MIN_PAIRS = 50
#: Fewest validation pairs for a cell's uncertainty (its validation RMSE) to mean anything.
MIN_VALIDATION_PAIRS = 5
BLOCK_DAYS = 30
#: Moving-block length of the bootstrap intervals [days]: a cell has about 2 x 30 withheld days, so
#: the 30-day blocks of the merging evaluation would resample one block; a week keeps the
#: autocorrelation of daily soil moisture inside a block.
BOOTSTRAP_BLOCK_DAYS = 7
#: Block pattern of :func:`block_split`: 8 training, 1 validation, 1 test block (80/10/10).
BLOCK_PATTERN = ("train",) * 8 + ("validation", "test")
#: Wang & Xu 2021, Sect. 3.2.4: 8.75 mm / 7 h = 15 mm / 12 h x 7/12, scaled to one day.
PAPER_THRESHOLD_MM = 8.75
PAPER_THRESHOLD_HOURS = 7.0
HEAVY_RAIN_MM_PER_DAY = PAPER_THRESHOLD_MM * 24.0 / PAPER_THRESHOLD_HOURS  # 30.0
#: L2 penalty of the network weights (on the [0, 1]-scaled data) and L-BFGS iterations: chosen on the
#: validation blocks of 2017-2018 (docs/reconstruction.md, :func:`validation_comparison`), never the test.
L2_PENALTY = 0.1
MAX_ITER = 150

#: ``status`` of a cell in the model.
CELL_STATUS = {0: "trained", 1: "too_few_matched_pairs", 2: "too_few_validation_pairs", 3: "not_land"}
#: ``smap_source`` flag of the daily product (CF flag_values / flag_meanings).
OBSERVED, RECONSTRUCTED, EXTRAPOLATED, NONE_TOO_FEW_PAIRS, NONE_PREDICTOR_MISSING = 0, 1, 2, 3, 4
#: The flag table and the CF attributes of the product variables are facts of the published files
#: (:mod:`smflow.publish.cf_facts`); the codes above index that table.
SOURCE_FLAGS = SMAP_SOURCE_FLAGS
PRODUCT_ATTRS = SMAP_RECONSTRUCTION_ATTRS


# --------------------------------------------------------------------------------- building blocks


def predictor_names(fields: tuple[str, ...] | None = None) -> list[str]:
    """Model-input order: the gridded predictors, then day-of-year sin / cos."""
    return [*(fields if fields is not None else PREDICTORS), *SEASONAL]


def seasonal_predictors(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``doy_sin``, ``doy_cos`` of each day, shape (time,): those of the merging features
    (:func:`smflow.ml.features.day_of_year_sin_cos`)."""
    from smflow.ml.features import day_of_year_sin_cos

    return day_of_year_sin_cos(times)


def heavy_rain_days(rain_mm: np.ndarray, threshold_mm: float = HEAVY_RAIN_MM_PER_DAY) -> np.ndarray:
    """Days removed from training by the precipitation threshold (Wang & Xu 2021, Sect. 3.2.4).

    Parameters
    ----------
    rain_mm : numpy.ndarray
        Daily rain [mm = kg m-2] of each (..., day); NaN where unknown.
    threshold_mm : float
        Daily threshold; default 30 mm = the paper's 8.75 mm per 7 h scaled to 24 h.

    Returns
    -------
    numpy.ndarray of bool, same shape
        True where rain >= threshold (heavy rain starts at the threshold). Unknown rain is not a
        reason to drop a day (False).
    """
    r = np.asarray(rain_mm, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(r) & (r >= threshold_mm)


def block_split(times: np.ndarray, block_days: int = BLOCK_DAYS) -> np.ndarray:
    """80/10/10 split of the days by contiguous blocks (Wang & Xu 2021, Sect. 3.2.3).

    Day ``i`` of the period (counted from the first) falls in block ``i // block_days``; blocks
    cycle through :data:`BLOCK_PATTERN` (8 training, 1 validation, 1 test), so each split is made of
    whole blocks spread over the seasons, never of random days.

    Parameters
    ----------
    times : numpy.ndarray of datetime64, shape (time,)
        Consecutive days.

    Returns
    -------
    numpy.ndarray of str, shape (time,)
        ``"train"``, ``"validation"`` or ``"test"``.
    """
    t = pd.DatetimeIndex(times)
    days = np.asarray((t - t[0]).days)
    return np.asarray(BLOCK_PATTERN, dtype=object)[(days // block_days) % len(BLOCK_PATTERN)].astype(str)


@dataclass(frozen=True)
class CellNetwork:
    """One cell's fitted network in numpy form (tanh hidden layer, linear output)."""

    w1: np.ndarray  # (n_in, hidden)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden,)
    b2: float


def fit_cell(x: np.ndarray, y: np.ndarray, *, hidden: int = HIDDEN, seed: int = SEED,
             alpha: float = L2_PENALTY) -> CellNetwork:
    """Fit one cell's network on min-max scaled inputs ``x`` (n, n_in) and target ``y`` (n,)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    net = MLPRegressor(hidden_layer_sizes=(hidden,), activation="tanh", solver="lbfgs", alpha=alpha,
                       max_iter=MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net.fit(x, y)
    return CellNetwork(net.coefs_[0], net.intercepts_[0], net.coefs_[1][:, 0], float(net.intercepts_[1][0]))


def _forward(x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Batched forward pass: x (..., n_in), w1 (..., n_in, h), b1/w2 (..., h), b2 (...) -> (...)."""
    h = np.tanh(np.einsum("...i,...ih->...h", x, w1) + b1)
    return np.einsum("...h,...h->...", h, w2) + b2


# --------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Reconstruction:
    """Fitted per-cell networks and their bookkeeping (cells flattened).

    Attributes
    ----------
    predictors : list of str
        Input order (:func:`predictor_names`).
    hidden, seed : int
    w1 : (cells, n_in, hidden); b1, w2 : (cells, hidden); b2 : (cells,)
        Network weights on the scaled inputs; NaN where the cell is not trained.
    x_min, x_max : (cells, n_in)
        Training range of each predictor (min-max scaling; extrapolation test).
    y_min, y_max : (cells,)
        Training range of the target [m3 m-3].
    uncertainty : (cells,)
        RMSE on the validation split [m3 m-3].
    status : (cells,) int8
        :data:`CELL_STATUS`.
    n_pairs, n_train, n_validation, n_test, n_heavy_rain : (cells,) int
        Matched pairs (after the rain filter), per split, and days dropped by the rain filter.
    metadata : dict
    """

    predictors: list[str]
    hidden: int
    seed: int
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    x_min: np.ndarray
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    uncertainty: np.ndarray
    status: np.ndarray
    n_pairs: np.ndarray
    n_train: np.ndarray
    n_validation: np.ndarray
    n_test: np.ndarray
    n_heavy_rain: np.ndarray
    metadata: dict

    def reasons(self) -> dict[str, str]:
        """Why each untrained cell (flat index) is not reconstructed."""
        out = {}
        for c in np.flatnonzero(self.status != 0):
            code = int(self.status[c])
            if code == 1:
                out[str(c)] = f"{CELL_STATUS[code]}: {int(self.n_pairs[c])} < {MIN_PAIRS}"
            elif code == 2:
                out[str(c)] = f"{CELL_STATUS[code]}: {int(self.n_validation[c])} < {MIN_VALIDATION_PAIRS}"
            else:
                out[str(c)] = CELL_STATUS[code]
        return out

    def take(self, cells: np.ndarray) -> "Reconstruction":
        """The networks of ``cells`` (flat indices, repeats allowed), in that order."""
        cells = np.asarray(cells, dtype=int)
        per_cell = ("w1", "b1", "w2", "b2", "x_min", "x_max", "y_min", "y_max", "uncertainty", "status",
                    "n_pairs", "n_train", "n_validation", "n_test", "n_heavy_rain")
        return Reconstruction(self.predictors, self.hidden, self.seed,
                              *(getattr(self, k)[cells] for k in per_cell), metadata=self.metadata)

    # -- prediction -------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reconstruct from raw predictors ``x`` of shape (cells, time, n_in).

        Returns
        -------
        (value, flag, missing) : (cells, time) float [m3 m-3], (cells, time) int8, (cells, time, n_in) bool
            ``flag`` is :data:`RECONSTRUCTED`, :data:`EXTRAPOLATED`, :data:`NONE_TOO_FEW_PAIRS` or
            :data:`NONE_PREDICTOR_MISSING`; ``value`` is NaN where the flag is a ``none``.
            Values are never clipped to the training range.
        """
        x = np.asarray(x, dtype=float)
        if x.shape[0] != self.status.size or x.shape[-1] != len(self.predictors):
            raise ValueError(f"predictors have shape {x.shape}; expected (cells={self.status.size}, time, "
                             f"{len(self.predictors)}) in the order {self.predictors}")
        span = np.where(self.x_max > self.x_min, self.x_max - self.x_min, 1.0)
        z = (x - self.x_min[:, None]) / span[:, None]
        missing = ~np.isfinite(x)
        trained = self.status == 0
        with np.errstate(invalid="ignore"):
            out = _forward(np.where(missing, 0.0, z), self.w1[:, None], self.b1[:, None], self.w2[:, None],
                           self.b2[:, None])
            outside = ((x < self.x_min[:, None]) | (x > self.x_max[:, None])) & ~missing
        y_span = np.where(self.y_max > self.y_min, self.y_max - self.y_min, 1.0)
        value = out * y_span[:, None] + self.y_min[:, None]
        flag = np.where(outside.any(-1), EXTRAPOLATED, RECONSTRUCTED)
        flag = np.where(missing.any(-1), NONE_PREDICTOR_MISSING, flag)
        flag = np.where(trained[:, None], flag, NONE_TOO_FEW_PAIRS).astype(np.int8)
        value = np.where(flag <= EXTRAPOLATED, value, np.nan)
        return value, flag, missing

    # -- persistence -------------------------------------------------------------------------
    def to_grid(self, shape: tuple[int, int]) -> GridParameters:
        """Arrays with the grid as trailing dims (the registry's grid-model format)."""
        def g(a):
            a = np.asarray(a)
            return np.moveaxis(a.reshape(a.shape[0], -1), 0, -1).reshape(*a.shape[1:], *shape) if a.ndim > 1 \
                else a.reshape(shape)

        n_in, h = len(self.predictors), self.hidden
        arrays = {"w1": g(self.w1.reshape(-1, n_in * h)), "b1": g(self.b1), "w2": g(self.w2), "b2": g(self.b2),
                  "x_min": g(self.x_min), "x_max": g(self.x_max), "y_min": g(self.y_min), "y_max": g(self.y_max),
                  "uncertainty": g(self.uncertainty), "status": g(self.status),
                  **{k: g(getattr(self, k)) for k in ("n_pairs", "n_train", "n_validation", "n_test", "n_heavy_rain")}}
        meta = {**self.metadata, "predictors": self.predictors, "hidden": self.hidden, "seed": self.seed,
                "reasons": self.reasons(), "cell_status": {str(k): v for k, v in CELL_STATUS.items()}}
        return GridParameters(arrays, meta)

    @classmethod
    def from_grid(cls, params: GridParameters) -> "Reconstruction":
        """Inverse of :meth:`to_grid`."""
        a, meta = params.arrays, params.metadata
        predictors, h = list(meta["predictors"]), int(meta["hidden"])

        def f(name):
            v = np.asarray(a[name])
            return v.reshape(*v.shape[:-2], -1).T if v.ndim > 2 else v.reshape(-1)

        w1 = f("w1").reshape(-1, len(predictors), h)
        return cls(predictors, h, int(meta["seed"]), w1, f("b1"), f("w2"), f("b2"), f("x_min"), f("x_max"),
                   f("y_min"), f("y_max"), f("uncertainty"), f("status").astype(np.int8),
                   *(f(k).astype(int) for k in ("n_pairs", "n_train", "n_validation", "n_test", "n_heavy_rain")),
                   {k: v for k, v in meta.items() if k not in ("predictors", "hidden", "seed")})


def fit_reconstruction(target: np.ndarray, x: np.ndarray, split: np.ndarray, *, predictors: list[str],
                       rain_mm: np.ndarray | None = None, land: np.ndarray | None = None,
                       hidden: int = HIDDEN, seed: int = SEED, min_pairs: int = MIN_PAIRS,
                       threshold_mm: float = HEAVY_RAIN_MM_PER_DAY, alpha: float = L2_PENALTY,
                       metadata: dict | None = None) -> Reconstruction:
    """Fit one network per cell (Wang & Xu 2021, Sect. 3.1).

    Parameters
    ----------
    target : numpy.ndarray, shape (cells, time)
        SMAP soil moisture [m3 m-3]; NaN where SMAP is missing (or withheld).
    x : numpy.ndarray, shape (cells, time, n_in)
        Raw predictors in ``predictors`` order; NaN where missing.
    split : numpy.ndarray of str, shape (time,)
        :func:`block_split` labels; only ``train`` days are fitted, ``validation`` days give the
        uncertainty, ``test`` days are never touched here.
    predictors : list of str
    rain_mm : numpy.ndarray, shape (cells, time), optional
        Daily rain [mm]; days at or above ``threshold_mm`` leave the training and validation pairs.
    land : numpy.ndarray of bool, shape (cells,), optional
        Cells to reconstruct (others get status ``not_land``).
    hidden, seed, min_pairs : int
    threshold_mm : float
    alpha : float
        L2 penalty of the weights.
    metadata : dict, optional
        Stored with the model (sources, period, ...).

    Returns
    -------
    Reconstruction
    """
    target = np.asarray(target, dtype=float)
    x = np.asarray(x, dtype=float)
    n_cells, n_time = target.shape
    n_in = x.shape[-1]
    if x.shape[:2] != (n_cells, n_time) or n_in != len(predictors):
        raise ValueError(f"predictors have shape {x.shape}; expected ({n_cells}, {n_time}, {len(predictors)})")
    split = np.asarray(split)
    heavy = heavy_rain_days(rain_mm, threshold_mm) if rain_mm is not None else np.zeros_like(target, dtype=bool)
    land = np.ones(n_cells, dtype=bool) if land is None else np.asarray(land, dtype=bool).ravel()
    nan = np.nan
    w1 = np.full((n_cells, n_in, hidden), nan)
    b1, w2 = np.full((n_cells, hidden), nan), np.full((n_cells, hidden), nan)
    b2, y_min, y_max, unc = (np.full(n_cells, nan) for _ in range(4))
    x_min, x_max = np.full((n_cells, n_in), nan), np.full((n_cells, n_in), nan)
    status = np.full(n_cells, 3, dtype=np.int8)
    counts = {k: np.zeros(n_cells, dtype=int) for k in ("n_pairs", "n_train", "n_validation", "n_test", "n_heavy_rain")}
    from threadpoolctl import threadpool_limits

    # Small per-cell problems: one BLAS thread is faster than several fighting over the cores.
    with threadpool_limits(limits=1):
        _fit_cells(target, x, split, heavy, land, hidden, seed, alpha, min_pairs,
                   (w1, b1, w2, b2, x_min, x_max, y_min, y_max, unc, status), counts)
    meta = {"min_pairs": min_pairs, "heavy_rain_mm_per_day": threshold_mm, "block_days": BLOCK_DAYS,
            "split": "80/10/10 by contiguous blocks (train x8, validation, test)",
            "activation": "tanh", "solver": "lbfgs", "l2_penalty": alpha, "max_iter": MAX_ITER,
            **(metadata or {})}
    return Reconstruction(list(predictors), hidden, seed, w1, b1, w2, b2, x_min, x_max, y_min, y_max, unc, status,
                          **counts, metadata=meta)


def _fit_cells(target, x, split, heavy, land, hidden, seed, alpha, min_pairs, out, counts) -> None:
    """The per-cell loop of :func:`fit_reconstruction`; fills ``out`` and ``counts`` in place."""
    w1, b1, w2, b2, x_min, x_max, y_min, y_max, unc, status = out
    for c in np.flatnonzero(land):
        matched = np.isfinite(target[c]) & np.isfinite(x[c]).all(-1)
        counts["n_heavy_rain"][c] = int((matched & heavy[c]).sum())
        matched &= ~heavy[c]
        tr, va, te = (matched & (split == s) for s in ("train", "validation", "test"))
        counts["n_pairs"][c], counts["n_train"][c] = int(matched.sum()), int(tr.sum())
        counts["n_validation"][c], counts["n_test"][c] = int(va.sum()), int(te.sum())
        if matched.sum() < min_pairs or tr.sum() < 2:
            status[c] = 1
            continue
        if va.sum() < MIN_VALIDATION_PAIRS:
            status[c] = 2
            continue
        lo, hi = x[c, tr].min(0), x[c, tr].max(0)
        ylo, yhi = target[c, tr].min(), target[c, tr].max()
        span = np.where(hi > lo, hi - lo, 1.0)
        yspan = yhi - ylo if yhi > ylo else 1.0
        net = fit_cell((x[c, tr] - lo) / span, (target[c, tr] - ylo) / yspan, hidden=hidden, seed=seed, alpha=alpha)
        w1[c], b1[c], w2[c], b2[c] = net.w1, net.b1, net.w2, net.b2
        x_min[c], x_max[c], y_min[c], y_max[c] = lo, hi, ylo, yhi
        pred = _forward((x[c, va] - lo) / span, net.w1, net.b1, net.w2, np.asarray(net.b2)) * yspan + ylo
        unc[c] = float(np.sqrt(np.mean((pred - target[c, va]) ** 2)))
        status[c] = 0


class ReconstructionModel(GridParameterModel):
    """pyfunc of ``smap_reconstruction``: per-cell ANN weights and scaling (Wang & Xu 2021, Sect. 3.1).

    Input: a table with ``lat_index``, ``lon_index`` and one column per predictor of the model
    (``metadata["predictors"]``, raw units); output ``smap_reconstructed`` [m3 m-3],
    ``smap_reconstructed_uncertainty`` [m3 m-3] and ``smap_source`` (:data:`SOURCE_FLAGS`). A table
    with only the indices returns the cell parameters (as every grid model).
    """

    def predict(self, context, model_input, params=None):  # noqa: D401 - mlflow hook
        frame = pd.DataFrame(model_input)
        if self.parameters is None:
            raise RuntimeError("model parameters are not loaded; load the model with mlflow.pyfunc.load_model")
        predictors = list(self.parameters.metadata["predictors"])
        if not set(predictors) <= set(frame.columns):
            return super().predict(context, model_input, params)
        shape = self.parameters.arrays["status"].shape
        cell = frame["lat_index"].to_numpy(int) * shape[1] + frame["lon_index"].to_numpy(int)
        rows = Reconstruction.from_grid(self.parameters).take(cell)  # one "cell" per input row
        value, flag, _ = rows.predict(frame[predictors].to_numpy(float)[:, None, :])
        value, flag = value[:, 0], flag[:, 0]
        unc = np.where(flag <= EXTRAPOLATED, rows.uncertainty, np.nan)
        return pd.DataFrame({"smap_reconstructed": value, "smap_reconstructed_uncertainty": unc,
                             "smap_source": flag.astype(np.int8)})


# --------------------------------------------------------------------------------- data of a domain


@dataclass
class ReconstructionInputs:
    """Gridded target, predictors and rain of a period, cells flattened (cell = lat * n_lon + lon)."""

    times: np.ndarray            # (time,) datetime64
    target: np.ndarray           # (cells, time) SMAP [m3 m-3]
    x: np.ndarray                # (cells, time, n_in)
    predictors: list[str]
    rain: np.ndarray             # (cells, time) [mm]
    rain_source: np.ndarray      # (cells, time) str: "gauge", "sm2rain" or ""
    land: np.ndarray             # (cells,) bool
    shape: tuple[int, int]
    precipitation_source: str    # words for the model card

    def fingerprint(self) -> str:
        from smflow.ml.features import fingerprint

        return fingerprint(self.target, self.x, self.rain)


def _cells(a: np.ndarray) -> np.ndarray:
    """(time, lat, lon) -> (cells, time)."""
    a = np.asarray(a, dtype=float)
    return a.reshape(a.shape[0], -1).T


def gridded_predictors(start: date, end: date, grid, fields: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw predictors of ``start..end`` on the grid: (cells, time, n_in) and the days (time,).

    The gridded fields come from :func:`smflow.ingest.gridded_series` (the same readers, flags and
    regridding as the daily store); ``doy_sin`` / ``doy_cos`` from the dates.
    """
    from smflow.ingest import gridded_series

    fields = tuple(fields if fields is not None else PREDICTORS)
    cols, times = [], None
    for name in fields:
        product, variable = PREDICTORS[name]
        series = gridded_series(product, start, end, grid, variable=variable)
        times = series["time"].values
        cols.append(_cells(series.values))
    if times is None:
        times = pd.date_range(start, end, freq="D").values
    s, c = seasonal_predictors(times)
    n_cells = int(np.prod(grid.shape))
    cols += [np.broadcast_to(s, (n_cells, s.size)), np.broadcast_to(c, (n_cells, c.size))]
    return np.stack(cols, axis=-1), times


def sm2rain_rainfall(start: date, end: date, grid, *, tc_params: GridParameters | None = None,
                     sm2rain: GridParameters | None = None) -> tuple[np.ndarray, str]:
    """The project's SM2RAIN daily rain [mm] of ``start..end`` on the grid, (cells, time), and its label.

    SM2RAIN (Brocca et al. 2013; Zhang et al. 2022, Eqs. 1-2) with ``sm2rain`` (default: the shipped
    parameter set ``data/derived/sm2rain_big_island.json``) on the TC least-squares merge of the
    three parents (``tc_params``, default: fitted on the period itself, Ming et al. 2022, Eqs. 11-17)
    — the rainfall the daily product publishes.
    """
    from smflow.ml.models import sm2rain_parameters
    from smflow.ml.train import _parents_series, fit_merging_parameters, load_shipped_sm2rain, merge_series
    from smflow.science.sm2rain import apply_sm2rain, relative_saturation

    parents = _parents_series(start, end, grid)
    label_tc = "TC least squares fitted on the period" if tc_params is None else "the tc_merging champion"
    tc_params = tc_params or fit_merging_parameters(parents, grid)
    merged, _ = merge_series(tc_params, parents)
    label_rain = "the sm2rain champion"
    if sm2rain is None:
        sm2rain, _ = load_shipped_sm2rain()
        label_rain = "the shipped SM2RAIN parameters (data/derived/sm2rain_big_island.json)"
    s = relative_saturation(_cells(merged), sm2rain.arrays["saturation_lower"].reshape(-1)[:, None],
                            sm2rain.arrays["saturation_upper"].reshape(-1)[:, None])
    rain = apply_sm2rain(s, sm2rain_parameters(sm2rain))
    return np.asarray(rain, dtype=float), f"SM2RAIN rainfall ({label_rain}) on the merge of {label_tc}"


def gauge_rainfall(start: date, end: date, grid, shared_dir: Path | None) -> np.ndarray:
    """Daily gauge rain [mm] at the cells that hold a gauge, (cells, time); NaN elsewhere / unknown.

    Several gauges in one cell: their mean. Without ``shared_dir`` (no internal gauge files): all NaN.
    """
    n_cells = int(np.prod(grid.shape))
    n_time = (end - start).days + 1
    out = np.full((n_cells, n_time), np.nan)
    if shared_dir is None or not Path(shared_dir).is_dir():
        return out
    from smflow.insitu import find_stm_files, load_gauges

    if not find_stm_files(shared_dir, "p"):
        return out
    gauges = load_gauges(shared_dir, start, end)
    iy, ix = grid.cell_index(gauges["lat"].values, gauges["lon"].values)
    cells = np.asarray(iy) * grid.shape[1] + np.asarray(ix)
    rain = gauges["precipitation_amount"].transpose("station", "time").values
    for c in np.unique(cells):
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[c] = np.nanmean(rain[cells == c], axis=0)
    return out


def build_inputs(start: date, end: date, grid, *, shared_dir: Path | None = None,
                 tc_params: GridParameters | None = None, sm2rain: GridParameters | None = None) -> ReconstructionInputs:
    """SMAP, predictors and training rain of ``start..end`` (inclusive) on ``grid``.

    Rain: the gauges (``shared_dir`` = the ISMN folder, internal) where a cell has one and the day
    a gauge sum, else the project's SM2RAIN rainfall (:func:`sm2rain_rainfall`).
    """
    from smflow.ingest import gridded_series

    x, times = gridded_predictors(start, end, grid)
    target = _cells(gridded_series(TARGET, start, end, grid).values)
    gauge = gauge_rainfall(start, end, grid, shared_dir)
    sm2r, label = sm2rain_rainfall(start, end, grid, tc_params=tc_params, sm2rain=sm2rain)
    use_gauge = np.isfinite(gauge)
    rain = np.where(use_gauge, gauge, sm2r)
    source = np.where(use_gauge, "gauge", np.where(np.isfinite(sm2r), "sm2rain", ""))
    words = (f"daily rain of the SCAN gauges (ISMN, internal) at the {int(use_gauge.any(1).sum())} gauge cells on "
             f"the days they report ({int(use_gauge.sum())} cell-days), elsewhere {label}")
    if not use_gauge.any():
        words = f"{label} (no gauge data on this machine)"
    return ReconstructionInputs(times, target, x, predictor_names(), rain, source, grid.land_mask.ravel().copy(),
                                grid.shape, words)


# --------------------------------------------------------------------------------- evaluation


def mean_std_baseline(inputs: ReconstructionInputs, split: np.ndarray, reference: str = "era5_land") -> np.ndarray:
    """Baseline: ``reference`` rescaled to SMAP by per-cell mean / std matching on the training split.

    Returns (cells, time) [m3 m-3]; NaN where the cell has fewer than 2 training pairs.
    """
    k = inputs.predictors.index(reference)
    ref = inputs.x[..., k]
    tr = (split == "train")[None] & np.isfinite(inputs.target) & np.isfinite(ref)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = np.where(tr, inputs.target, np.nan)
        r = np.where(tr, ref, np.nan)
        mt, st, mr, sr = np.nanmean(t, 1), np.nanstd(t, 1), np.nanmean(r, 1), np.nanstd(r, 1)
    ok = tr.sum(1) >= 2
    scaled = (ref - mr[:, None]) / np.where(sr > 0, sr, 1.0)[:, None] * st[:, None] + mt[:, None]
    return np.where(ok[:, None], scaled, np.nan)


def withheld_scores(rec: Reconstruction, inputs: ReconstructionInputs, split: np.ndarray, *, part: str = "test",
                    seed: int = SEED, n_resamples: int = 300):
    """Withheld-SMAP protocol: SMAP days of the ``part`` blocks, masked from the fit, reconstructed.

    Scores (R, ubRMSE, bias, KGE; per cell, median over cells, moving-block bootstrap intervals:
    :func:`smflow.ml.evaluation.score_candidates`) of the reconstruction and of the baseline
    (:func:`mean_std_baseline`) against the withheld retrievals, on the same cell-days: those
    the reconstruction covers.

    Returns
    -------
    list of smflow.ml.evaluation.CandidateScores
        ``reconstruction`` then ``era5_land_rescaled``.
    """
    from smflow.ml.evaluation import score_candidates

    value, flag, _ = rec.predict(inputs.x)
    held = (split == part)[None] & np.isfinite(inputs.target) & np.isfinite(value)
    base = mean_std_baseline(inputs, split)
    c, t = np.nonzero(held)
    return score_candidates({"reconstruction": value[c, t], "era5_land_rescaled": base[c, t]}, inputs.target[c, t],
                            np.asarray([f"cell{k}" for k in c]), inputs.times[t], folds=f"withheld-{part}",
                            seed=seed, n_resamples=n_resamples, block_days=BOOTSTRAP_BLOCK_DAYS)


def insitu_scores(rec: Reconstruction, inputs: ReconstructionInputs, shared_dir: Path, grid, *, seed: int = SEED,
                  n_resamples: int = 300):
    """Against the ISMN stations: SMAP on the days it was observed vs the reconstruction on the days
    it was missing (the values a seamless product fills), and the reconstruction on the observed days.

    Returns
    -------
    list of smflow.ml.evaluation.CandidateScores
        ``observed_days_smap``, ``reconstructed_days`` (SMAP missing, ANN value), ``observed_days_ann``.
    """
    from smflow.insitu import load_insitu_soil_moisture
    from smflow.ml.evaluation import score_candidates

    t0, t1 = pd.Timestamp(inputs.times[0]).date(), pd.Timestamp(inputs.times[-1]).date()
    insitu = load_insitu_soil_moisture(shared_dir, t0, t1)
    iy, ix = grid.cell_index(insitu["lat"].values, insitu["lon"].values)
    cells = np.asarray(iy) * grid.shape[1] + np.asarray(ix)
    obs = insitu["soil_moisture"].transpose("station", "time").reindex(time=inputs.times).values
    value, flag, _ = rec.predict(inputs.x)
    names = insitu["station"].values.astype(str)
    smap_st, ann_st = inputs.target[cells], value[cells]
    observed = np.isfinite(smap_st)
    preds = {"observed_days_smap": np.where(observed, smap_st, np.nan),
             "reconstructed_days": np.where(~observed, ann_st, np.nan),
             "observed_days_ann": np.where(observed, ann_st, np.nan)}
    keep = np.isfinite(obs)
    s_idx, t_idx = np.nonzero(keep)
    return score_candidates({k: v[s_idx, t_idx] for k, v in preds.items()}, obs[s_idx, t_idx], names[s_idx],
                            inputs.times[t_idx], folds="insitu", seed=seed, n_resamples=n_resamples,
                            block_days=BOOTSTRAP_BLOCK_DAYS)


def validation_comparison(inputs: ReconstructionInputs, split: np.ndarray, sizes=(6, 12, 24),
                          penalties=(L2_PENALTY,), *, seed: int = SEED) -> dict[str, dict[str, float]]:
    """Validation-split skill of hidden-layer sizes and L2 penalties (Wang & Xu 2021, Sect. 3.2.2).

    Scored on the validation blocks only, never on the test blocks (which stay the withheld test).

    Returns
    -------
    dict of str to dict
        Per ``"hidden=<h> alpha=<a>"``: median over cells of R, ubRMSE and RMSE [m3 m-3] on the
        validation days, and the number of cells scored.
    """
    from smflow.science.metrics import pearson_r, rmse, ubrmse

    out = {}
    val = (split == "validation")[None] & np.isfinite(inputs.target)
    ref = np.where(val, inputs.target, np.nan)
    for alpha in penalties:
        for h in sizes:
            rec = fit_reconstruction(inputs.target, inputs.x, split, predictors=inputs.predictors,
                                     rain_mm=inputs.rain, land=inputs.land, hidden=h, seed=seed, alpha=alpha)
            est = np.where(val, rec.predict(inputs.x)[0], np.nan)
            r, ub, rm = (f(est, ref, min_samples=10) for f in (pearson_r, ubrmse, rmse))
            with np.errstate(all="ignore"):
                out[f"hidden={h} alpha={alpha:g}"] = {
                    "r": float(np.nanmedian(r)), "ubrmse": float(np.nanmedian(ub)), "rmse": float(np.nanmedian(rm)),
                    "cells": int(np.isfinite(r).sum())}
    return out


@dataclass
class Validation:
    """What :func:`validate_hawaii` measured (the numbers of docs/reconstruction.md)."""

    reconstruction: Reconstruction
    inputs: ReconstructionInputs
    split: np.ndarray
    withheld: list
    insitu: list | None
    hidden: dict[str, dict[str, float]] | None

    def report(self) -> str:
        from smflow.ml.evaluation import format_candidates

        rec = self.reconstruction
        lines = [f"predictors: {', '.join(rec.predictors)}; hidden {rec.hidden}; seed {rec.seed}",
                 f"precipitation: {self.inputs.precipitation_source}; threshold {HEAVY_RAIN_MM_PER_DAY:.1f} mm/day",
                 f"cells: {int((rec.status == 0).sum())} reconstructed, "
                 + ", ".join(f"{int((rec.status == k).sum())} {v}" for k, v in CELL_STATUS.items() if k),
                 f"heavy-rain days removed from the matched pairs: {int(rec.n_heavy_rain.sum())}",
                 "", "withheld-SMAP test blocks (per cell vs the withheld retrievals):",
                 format_candidates(self.withheld)]
        if self.insitu is not None:
            lines += ["", "against the ISMN stations (per station):", format_candidates(self.insitu)]
        if self.hidden is not None:
            lines += ["", "hidden-layer size / L2 penalty on the validation blocks (median over cells):"]
            lines += [f"  {h:<22}: R {v['r']:.3f}  ubRMSE {v['ubrmse']:.4f}  RMSE {v['rmse']:.4f}  cells {v['cells']}"
                      for h, v in self.hidden.items()]
        return "\n".join(lines)


def validate_hawaii(start: date = date(2017, 1, 1), end: date = date(2018, 12, 31), *, grid=None,
                    shared_dir: Path | None = None, hidden: int = HIDDEN, sizes=(6, 12, 24),
                    penalties=(L2_PENALTY,), n_resamples: int = 300) -> Validation:
    """Fit on the training blocks of ``start..end`` and run the withheld-SMAP, in-situ and hidden-size checks.

    Parameters
    ----------
    shared_dir : Path, optional
        The ISMN folder (internal): gauges for the rain filter and stations for the in-situ scores;
        without it both are skipped (SM2RAIN rain only).
    sizes : tuple of int or None
        Hidden sizes to compare on the validation blocks (None: skip).
    penalties : tuple of float
        L2 penalties to compare with each size.
    """
    from smflow.domain import load_domain

    grid = grid or load_domain()
    inputs = build_inputs(start, end, grid, shared_dir=shared_dir)
    split = block_split(inputs.times)
    rec = fit_reconstruction(inputs.target, inputs.x, split, predictors=inputs.predictors, rain_mm=inputs.rain,
                             land=inputs.land, hidden=hidden,
                             metadata={"precipitation_source": inputs.precipitation_source})
    withheld = withheld_scores(rec, inputs, split, n_resamples=n_resamples)
    insitu = None
    if shared_dir is not None and Path(shared_dir).is_dir():
        insitu = insitu_scores(rec, inputs, shared_dir, grid, n_resamples=n_resamples)
    hid = validation_comparison(inputs, split, sizes, penalties) if sizes else None
    return Validation(rec, inputs, split, withheld, insitu, hid)


# --------------------------------------------------------------------------------- daily product

def reconstruct_day(day: date, *, store, grid, model: GridParameters, missing: Mapping[str, str]) -> dict[str, Any]:
    """The day's seamless SMAP from the store: observed where SMAP is, else the reconstruction.

    Parameters
    ----------
    day : date
    store : smflow.store.TimeSeriesStore
        Holds ``smap`` and the gridded predictors (store fields named as the predictors).
    grid : DomainGrid
    model : GridParameters
        ``models:/smap_reconstruction@champion``.
    missing : dict of str to str
        Inputs this run rejected or did not receive (product -> reason): their store objects of
        the day (auxiliary fields included) are never used.

    Returns
    -------
    dict
        ``value``, ``uncertainty`` [m3 m-3] and ``flag`` (:data:`SOURCE_FLAGS`, NaN off land), each
        (lat, lon); ``missing_predictors``: list of ``"<predictor>: <reason>"`` for the predictors
        absent that day on some land cell.
    """
    rec = Reconstruction.from_grid(model)
    land = grid.land_mask.ravel()

    def today(field: str) -> np.ndarray:
        product = PREDICTORS[field][0] if field in PREDICTORS else field
        if product in missing:
            return np.full(land.size, np.nan)
        return store.window(field, day, 1).values[-1].ravel()

    smap = today(TARGET)
    times = np.array([np.datetime64(day.isoformat(), "ns")])
    s, c = seasonal_predictors(times)
    cols = {"doy_sin": np.full(land.size, s[0]), "doy_cos": np.full(land.size, c[0])}
    unknown = [p for p in rec.predictors if p not in cols and p not in PREDICTORS]
    if unknown:
        raise ValueError(f"smap_reconstruction needs predictors {unknown} that the daily store does not hold "
                         f"(known: {sorted(PREDICTORS)} and {list(SEASONAL)})")
    for p in rec.predictors:
        if p not in cols:
            cols[p] = today(p)
    x = np.stack([cols[p] for p in rec.predictors], axis=-1)[:, None]  # (cells, 1, n_in)
    value, flag, absent = rec.predict(x)
    value, flag, absent = value[:, 0], flag[:, 0], absent[:, 0]
    observed = np.isfinite(smap)
    uncertainty = np.where(flag <= EXTRAPOLATED, rec.uncertainty, np.nan)
    value = np.where(observed, smap, value)
    uncertainty = np.where(observed, np.nan, uncertainty)
    flag = np.where(observed, OBSERVED, flag).astype(float)
    needs = land & ~observed & (rec.status == 0)
    reasons = []
    for k, p in enumerate(rec.predictors):
        if (absent[:, k] & needs).any():
            product = PREDICTORS.get(p, (p,))[0]
            reasons.append(f"{p}: {missing.get(product, 'no value in the store for the day')}")
    shape = grid.shape
    return {"value": np.where(land, value, np.nan).reshape(shape),
            "uncertainty": np.where(land, uncertainty, np.nan).reshape(shape),
            "flag": np.where(land, flag, np.nan).reshape(shape), "missing_predictors": reasons,
            "predictors": rec.predictors}


def add_to_product(ds: xr.Dataset, day: date, *, store, grid, model: GridParameters, ref,
                   missing: Mapping[str, str]) -> dict[str, Any]:
    """Add ``smap_reconstructed``, ``smap_reconstructed_uncertainty`` and ``smap_source`` to the day's
    product dataset ``ds`` (in place) and return the provenance entries to add.

    The one call :func:`smflow.daily.compute_daily_product` makes; ``ref`` is the
    ``smap_reconstruction`` version applied (its label goes into the lineage).
    """
    got = reconstruct_day(day, store=store, grid=grid, model=model, missing=missing)
    predictors = " ".join(got["predictors"])
    grid3 = ("time", "lat", "lon")
    ds["smap_reconstructed"] = (grid3, got["value"][None],
                                {**PRODUCT_ATTRS["smap_reconstructed"], "predictors": predictors,
                                 "model": ref.label()})
    ds["smap_reconstructed_uncertainty"] = (grid3, got["uncertainty"][None],
                                            dict(PRODUCT_ATTRS["smap_reconstructed_uncertainty"]))
    ds["smap_source"] = (grid3, got["flag"][None].astype("float32"),
                         {**PRODUCT_ATTRS["smap_source"], "flag_values": np.array(sorted(SOURCE_FLAGS), dtype="i1"),
                          "flag_meanings": " ".join(SOURCE_FLAGS[k] for k in sorted(SOURCE_FLAGS))})
    return {"smap_reconstruction_model": ref.label(), "smap_reconstruction_predictors": predictors,
            "smap_reconstruction_missing_predictors": got["missing_predictors"]}


def load_reconstruction_champion():
    """``models:/smap_reconstruction@champion`` as (GridParameters, ModelRef), or (None, reason) when
    no version was promoted (the product then says so in its lineage)."""
    from smflow.ml.registry import load_champion

    try:
        return load_champion(RECONSTRUCTION_MODEL)
    except LookupError as exc:
        return None, str(exc)


def choose(withheld) -> tuple[bool, str]:
    """Gate: the reconstruction's median ubRMSE on the withheld test blocks beats the baseline's.

    The baseline is ERA5-Land rescaled to SMAP by per-cell mean / std matching on the training
    blocks (:func:`mean_std_baseline`), scored on the same withheld cell-days.
    """
    by = {s.method: s for s in withheld}
    ann, base = by["reconstruction"], by["era5_land_rescaled"]
    ok = bool(np.isfinite(ann.ubrmse.median) and ann.ubrmse.median < base.ubrmse.median)
    words = (f"withheld-SMAP median ubRMSE {ann.ubrmse.median:.4f} (R {ann.r.median:.3f}) "
             f"{'<' if ok else '>='} baseline ERA5-Land rescaled to SMAP (mean/std per cell) "
             f"{base.ubrmse.median:.4f} (R {base.r.median:.3f}) on {ann.n_samples} withheld cell-days")
    return ok, words + (": passed" if ok else ": not promoted")


def small_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics without their bootstrap bounds (``*_lower`` / ``*_upper``)."""
    return {k: v for k, v in metrics.items() if not k.endswith(("_lower", "_upper"))}


def model_card(rec: Reconstruction, inputs: ReconstructionInputs, withheld, gate: str, period: tuple[date, date]) -> str:
    """The registered version's description: what it is, what it was trained on, how good it is."""
    by = {s.method: s for s in withheld}
    ann = by["reconstruction"]
    roles = "; ".join(f"{p}: {PREDICTOR_ROLES.get(p, p)}" for p in rec.predictors)
    return (f"ANN reconstruction of missing SMAP L3 soil moisture (Wang & Xu 2021, Sect. 3.1), one network per "
            f"0.1 deg cell, {rec.hidden} tanh hidden neurons, seed {rec.seed}, trained on the training blocks "
            f"(80/10/10 by {BLOCK_DAYS}-day blocks) of {period[0]}..{period[1]}. Predictors: {roles}. "
            f"Training days with rain >= {HEAVY_RAIN_MM_PER_DAY:.0f} mm/day removed (paper: 8.75 mm/7 h); "
            f"rain: {inputs.precipitation_source}. Cells: {int((rec.status == 0).sum())} reconstructed, "
            f"{int((rec.status == 1).sum())} with < {MIN_PAIRS} matched pairs left unreconstructed. "
            f"Withheld-SMAP test blocks: R {ann.r}, ubRMSE {ann.ubrmse} m3 m-3, bias {ann.bias} m3 m-3 "
            f"(median over cells [95 % moving-block bootstrap]). Gate: {gate}. Uncertainty of each value: "
            f"the cell's validation-block RMSE.")


def train_reconstruction(train: tuple[date, date], evaluate: tuple[date, date], *, settings=None,
                         domain: str = "big_island", hidden: int = HIDDEN, seed: int = SEED):
    """Fit, score on the withheld test blocks, log, register ``smap_reconstruction``; the gate promotes
    only a first champion (:func:`smflow.ml.gates.promote_after_training`: a later version stays
    ``challenger`` and ``evaluate_challenger`` compares it with the champion against the stations).

    Gap filling is interpolation in time within the SMAP era, so the model is fitted on the
    training blocks of the whole period ``train[0]..evaluate[1]`` and scored on its test blocks
    (whole 30-day blocks withheld from the fit), not on a separate year. Rain for the
    heavy-rain filter: the gauges (``../shared``, internal) where present, else the project's
    SM2RAIN rainfall with the ``sm2rain`` champion on the ``tc_merging`` champion's merge (the
    shipped SM2RAIN set and an in-period TC fit when no champion exists yet). Without ``../shared``
    the bundled SMAP / ERA5-Land / GLDAS series are used and SM2RAIN gives all the rain; the run
    says so. Returns a :class:`smflow.ml.train.TrainingResult`.
    """
    import mlflow
    from mlflow import MlflowClient

    from smflow.domain import load_domain
    from smflow.ml.cards import ModelCard, write_card
    from smflow.ml.evaluation import format_candidates
    from smflow.ml.gates import promote_after_training
    from smflow.ml.registry import configure, load_champion, log_grid_model
    from smflow.ml.train import TrainingResult

    settings = configure(settings)
    grid = load_domain(domain)
    shared = settings.shared_data_dir
    ismn = shared / "ismn_hawaii" if shared is not None and (shared / "ismn_hawaii").is_dir() else None
    champions = {}
    for name in ("tc_merging", "sm2rain"):
        try:
            champions[name] = load_champion(name)
        except LookupError:
            log.warning("no %s champion: the training rain uses the shipped / in-period fallback", name)
    period = (train[0], evaluate[1])
    inputs = build_inputs(*period, grid, shared_dir=ismn,
                          tc_params=champions.get("tc_merging", (None,))[0],
                          sm2rain=champions.get("sm2rain", (None,))[0])
    split = block_split(inputs.times)
    fp = inputs.fingerprint()
    rec = fit_reconstruction(inputs.target, inputs.x, split, predictors=inputs.predictors, rain_mm=inputs.rain,
                             land=inputs.land, hidden=hidden, seed=seed,
                             metadata={"precipitation_source": inputs.precipitation_source, "domain": domain,
                                       "period": f"{period[0]}..{period[1]}", "training_data_fingerprint": fp,
                                       "predictor_roles": {p: PREDICTOR_ROLES[p] for p in inputs.predictors},
                                       "paper": "Wang & Xu 2021, Remote Sens. 13, 5156, Sect. 3.1-3.2"})
    withheld = withheld_scores(rec, inputs, split, seed=seed)
    passed, gate = choose(withheld)
    table = format_candidates(withheld)
    card = model_card(rec, inputs, withheld, gate, period)
    params = rec.to_grid(grid.shape)
    example = pd.DataFrame({"lat_index": [0, 5], "lon_index": [0, 5],
                            **{p: [float(np.nanmedian(inputs.x[..., k]))] * 2 for k, p in enumerate(rec.predictors)}})
    metrics = {f"withheld_{s.method}_{m}{suffix}": float(v)
               for s in withheld for m in ("r", "ubrmse", "bias", "kge")
               for suffix, v in (("", getattr(s, m).median), ("_lower", getattr(s, m).lower),
                                 ("_upper", getattr(s, m).upper)) if np.isfinite(v)}
    metrics.update({"cells_reconstructed": float((rec.status == 0).sum()),
                    "cells_too_few_pairs": float((rec.status == 1).sum()),
                    "median_validation_rmse": float(np.nanmedian(rec.uncertainty)),
                    "heavy_rain_days_removed": float(rec.n_heavy_rain.sum())})
    mlflow.set_experiment(RECONSTRUCTION_MODEL)
    with mlflow.start_run(run_name=f"smap_reconstruction {period[0]}..{period[1]}"):
        mlflow.log_params({"domain": domain, "train_start": str(train[0]), "train_end": str(train[1]),
                           "evaluate_start": str(evaluate[0]), "evaluate_end": str(evaluate[1]),
                           "predictors": ",".join(rec.predictors), "hidden": hidden, "seed": seed,
                           "l2_penalty": L2_PENALTY, "heavy_rain_mm_per_day": HEAVY_RAIN_MM_PER_DAY,
                           "min_pairs": MIN_PAIRS, "split": f"80/10/10 by {BLOCK_DAYS}-day blocks",
                           "precipitation_source": inputs.precipitation_source[:500],
                           "training_data_fingerprint": fp, "shared_data": str(ismn is not None)})
        mlflow.log_metrics(metrics)
        mlflow.log_text(table + "\n" + gate + "\n", "withheld.txt")
        mlflow.log_dict({"withheld": [s.to_dict() for s in withheld], "gate": gate, "reasons": rec.reasons()},
                        "withheld.json")
        mlflow.set_tag("evaluation_gate", gate)
        ref = log_grid_model(ReconstructionModel(), params, registered_name=RECONSTRUCTION_MODEL, example=example)
        client = MlflowClient()
        write_card(RECONSTRUCTION_MODEL, ref.version, ModelCard(
            RECONSTRUCTION_MODEL, "reconstruction", f"training blocks of {period[0]}..{period[1]}",
            f"{domain} ({grid.resolution:g} deg)", rec.predictors, fp, small_metrics(metrics), gate,
            evaluated_on="withheld SMAP test blocks, median over cells", notes=card))
        for k, v in {"predictors": ",".join(rec.predictors), "seed": str(seed), "hidden": str(hidden),
                     "training_data_fingerprint": fp, "baseline": "era5_land rescaled to SMAP (mean/std per cell)",
                     "precipitation_source": inputs.precipitation_source[:5000]}.items():
            client.set_model_version_tag(RECONSTRUCTION_MODEL, ref.version, k, v)
    # a first champion only; later versions stay challenger for evaluate_challenger (issue 14)
    ref, promoted, gate = promote_after_training(ref, passed, gate)
    log.info("smap_reconstruction v%s: %s\n%s", ref.version, gate, table)
    small = small_metrics(metrics)
    return TrainingResult(RECONSTRUCTION_MODEL, ref.version, ref.run_id, promoted, gate, small, passed)


def champion_summary() -> list[str]:
    """The champion's withheld-day skill as printed by the main job (``infra/main.py``)."""
    import mlflow
    from mlflow import MlflowClient

    from smflow.ml.registry import champion_ref

    try:
        ref = champion_ref(RECONSTRUCTION_MODEL)
    except LookupError as exc:
        return [f"  {RECONSTRUCTION_MODEL}: none promoted ({exc})"]
    run = MlflowClient().get_run(ref.run_id).data
    lines = [f"  {ref.label()} predictors {run.params.get('predictors', '')}: {run.tags.get('evaluation_gate', '')}",
             "  SMAP reconstruction on withheld SMAP days (test blocks; champion's training run):"]
    table = mlflow.artifacts.load_text(f"runs:/{ref.run_id}/withheld.txt")
    return lines + ["    " + line for line in table.rstrip().splitlines()]


def downstream_effect(v: Validation, grid, shared_dir: Path, train: tuple[date, date], evaluate: tuple[date, date], *,
                      seed: int = SEED, n_resamples: int = 300) -> tuple[list, dict[str, float]]:
    """Merged soil moisture and SM2RAIN skill with SMAP as is and with the seamless SMAP as parent.

    TC least squares (Ming et al. 2022, Eqs. 11-17) is fitted on ``train`` with either SMAP series as
    the first parent and applied to ``evaluate``; the merges are scored against the ISMN stations on
    ``evaluate`` (:func:`smflow.ml.evaluation.score_candidates`), and SM2RAIN (the shipped parameter
    set, saturation bounds frozen on each merge's ``train`` period) against the gauges' daily sums.
    An experiment of docs/reconstruction.md: the daily product still merges SMAP as observed.

    Returns
    -------
    (list of CandidateScores, dict)
        Merged-soil-moisture scores (``merged_smap``, ``merged_seamless_smap``) and the median R of
        SM2RAIN against the gauges on ``evaluate`` per variant (``sm2rain_r_<variant>``).
    """
    from smflow.insitu import load_gauges, load_insitu_soil_moisture
    from smflow.ml.evaluation import score_candidates
    from smflow.ml.models import sm2rain_parameters
    from smflow.ml.train import _parents_series, fit_merging_parameters, load_shipped_sm2rain, merge_series
    from smflow.science.metrics import pearson_r
    from smflow.science.sm2rain import apply_sm2rain, relative_saturation

    start, end = v.inputs.times[0], v.inputs.times[-1]
    parents = _parents_series(pd.Timestamp(start).date(), pd.Timestamp(end).date(), grid)
    value, flag, _ = v.reconstruction.predict(v.inputs.x)
    seamless = np.where(np.isfinite(v.inputs.target), v.inputs.target, value)  # (cells, time)
    t = pd.DatetimeIndex(v.inputs.times)
    in_train = np.asarray((t >= pd.Timestamp(train[0])) & (t <= pd.Timestamp(train[1])))
    in_eval = np.asarray((t >= pd.Timestamp(evaluate[0])) & (t <= pd.Timestamp(evaluate[1])))
    variants = {"smap": parents, "seamless_smap": np.concatenate([seamless.T.reshape(1, t.size, *grid.shape),
                                                                  parents[1:]])}
    merged = {}
    for name, p in variants.items():
        tc = fit_merging_parameters(p[:, in_train], grid)
        merged[name] = _cells(merge_series(tc, p)[0])  # (cells, time)
    insitu = load_insitu_soil_moisture(shared_dir, evaluate[0], evaluate[1])
    iy, ix = grid.cell_index(insitu["lat"].values, insitu["lon"].values)
    cells = np.asarray(iy) * grid.shape[1] + np.asarray(ix)
    obs = insitu["soil_moisture"].transpose("station", "time").values
    s_idx, t_idx = np.nonzero(np.isfinite(obs))
    days = np.flatnonzero(in_eval)
    preds = {f"merged_{k}": m[cells][:, days][s_idx, t_idx] for k, m in merged.items()}
    scores = score_candidates(preds, obs[s_idx, t_idx], insitu["station"].values.astype(str)[s_idx],
                              insitu["time"].values[t_idx], folds="insitu-eval", seed=seed,
                              n_resamples=n_resamples, block_days=BOOTSTRAP_BLOCK_DAYS)
    rain_params, _ = load_shipped_sm2rain()
    gauges = load_gauges(shared_dir, evaluate[0], evaluate[1])
    gy, gx = grid.cell_index(gauges["lat"].values, gauges["lon"].values)
    gcells = np.asarray(gy) * grid.shape[1] + np.asarray(gx)
    gauge_rain = gauges["precipitation_amount"].transpose("station", "time").values
    rain_r = {}
    for name, m in merged.items():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(m[:, in_train], 1, axis=1), np.nanpercentile(m[:, in_train], 99, axis=1)
        rain = apply_sm2rain(relative_saturation(m, lo[:, None], hi[:, None]), sm2rain_parameters(rain_params))
        rain_r[f"sm2rain_r_{name}"] = float(np.nanmedian(pearson_r(rain[gcells][:, days], gauge_rain, min_samples=30)))
    return scores, rain_r


def main(argv: list[str] | None = None) -> None:
    """Print the validation numbers of docs/reconstruction.md."""
    import argparse

    from smflow.config import Settings

    parser = argparse.ArgumentParser(description="validate the SMAP reconstruction on the Big Island")
    parser.add_argument("--period", nargs=2, default=["2017-01-01", "2018-12-31"])
    parser.add_argument("--hidden", type=int, default=HIDDEN)
    parser.add_argument("--sizes", type=int, nargs="*", default=[6, 12, 24])
    parser.add_argument("--penalties", type=float, nargs="*", default=[0.001, 0.01, 0.1])
    parser.add_argument("--downstream", action="store_true",
                        help="also score the TC merge and SM2RAIN with SMAP and with the seamless SMAP (2017 fit, 2018 test)")
    args = parser.parse_args(argv)
    shared = Settings.load().shared_data_dir
    ismn = shared / "ismn_hawaii" if shared is not None and (shared / "ismn_hawaii").is_dir() else None
    v = validate_hawaii(date.fromisoformat(args.period[0]), date.fromisoformat(args.period[1]), shared_dir=ismn,
                        hidden=args.hidden, sizes=tuple(args.sizes) or None, penalties=tuple(args.penalties))
    print(v.report())
    if args.downstream and ismn is not None:
        from smflow.domain import load_domain
        from smflow.ml.evaluation import format_candidates

        scores, rain = downstream_effect(v, load_domain(), ismn, (date(2017, 1, 1), date(2017, 12, 31)),
                                         (date(2018, 1, 1), date(2018, 12, 31)))
        print("\ndownstream (TC merge fitted on 2017, scored on 2018 against the ISMN stations):")
        print(format_candidates(scores))
        print("SM2RAIN (shipped parameters) median R against the gauges in 2018: "
              + ", ".join(f"{k} {x:.3f}" for k, x in rain.items()))


if __name__ == "__main__":
    main()
