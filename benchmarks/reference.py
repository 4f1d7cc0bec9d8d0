"""Reference implementations re-implemented from their published descriptions (for benchmarks).

SM2RAIN: the IRPI reference (``sm2rain`` on GitHub, IRPIhydrology/sm2rain, MIT licence;
Brocca et al. 2013, 2019) calibrates one cell at a time with ``scipy.optimize.minimize(...,
method="TNC")`` minimising the RMSE of the clipped rainfall, parameters ordered (a, b, Z):

* 3 parameters: start (20, 5, 80), bounds a in [0, 200], b in [0.01, 50], Z in [1, 800],
  options ``{"ftol": 1e-8, "maxiter": 3000}``; the simulated rain of step t is
  ``Z (s_t - s_{t-1}) + (a s_t^b + a s_{t-1}^b) / 2`` clipped at 0 and compared with the gauge
  by ``sqrt(nanmean((p_obs - p_sim)^2))``.
* T variant (4 parameters a, b, Z, T): bounds as above plus T in [0.0001, 8] days, start at
  (10 %, 10 %, 10 %, 0 %) of each range; the saturation is first filtered by the exponential
  filter with time constant T and min-max rescaled over the whole series.
* Tpot variant (5 parameters a, b, Z, T, c): T in [0.05, 3], c in [0.05, 0.75], start at
  (10 %, 5 %, 10 %, 10 %, 10 %) of each range; time constant T SWI^-c iterated 3 times per step.
  In both filtered variants the reference sets the rain to 0 where |diff(SWI)| <= 1e-4.

The code below is written from that description (no code copied); it runs per cell in a Python
loop exactly as the reference does.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize

BOUNDS_3 = ((0.0, 200.0), (0.01, 50.0), (1.0, 800.0))
START_3 = np.array([20.0, 5.0, 80.0])
BOUNDS_T = BOUNDS_3 + ((0.0001, 8.0),)
BOUNDS_TPOT = BOUNDS_3 + ((0.05, 3.0), (0.05, 0.75))
OPTIONS = {"ftol": 1e-8, "maxiter": 3000, "disp": False}


def _rain(swi: np.ndarray, a: float, b: float, z: float, jd: np.ndarray | None = None) -> np.ndarray:
    dt = 1.0 if jd is None else np.diff(jd)
    with np.errstate(invalid="ignore", over="ignore"):
        p = z * (swi[1:] - swi[:-1]) + (a * swi[1:] ** b + a * swi[:-1] ** b) * dt / 2.0
    return np.clip(p, 0.0, None)


def _rmsd(p_obs: np.ndarray, p_sim: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean((p_obs - p_sim) ** 2) ** 0.5)


def calibrate_tnc(sm: np.ndarray, p_obs: np.ndarray) -> tuple[float, float, float]:
    """3-parameter reference calibration of one cell; ``p_obs`` aligned with ``sm[1:]``. Returns (a, b, Z)."""

    def cost(x: np.ndarray) -> float:
        return _rmsd(p_obs, _rain(sm, x[0], x[1], x[2]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = minimize(cost, START_3, method="TNC", bounds=BOUNDS_3, options=OPTIONS)
    return tuple(float(v) for v in result.x)  # type: ignore[return-value]


def rmse_3(sm: np.ndarray, p_obs: np.ndarray, a: float, b: float, z: float) -> float:
    return _rmsd(p_obs, _rain(sm, a, b, z))


def exponential_filter(sm: np.ndarray, jd: np.ndarray, T: float) -> np.ndarray:
    """Recursive exponential filter over the finite values (Albergel et al. 2008)."""
    out = np.full(sm.size, np.nan)
    idx = np.flatnonzero(np.isfinite(sm))
    if idx.size == 0:
        return out
    swi = sm[idx[0]]
    gain = 1.0
    out[idx[0]] = swi
    for i in range(1, idx.size):
        gain = gain / (gain + np.exp(-(jd[idx[i]] - jd[idx[i - 1]]) / T))
        swi = swi + gain * (sm[idx[i]] - swi)
        out[idx[i]] = swi
    return out


def wetness_filter(sm: np.ndarray, jd: np.ndarray, T: float, c: float) -> np.ndarray:
    """Exponential filter with time constant T SWI^-c, iterated 3 times per step."""
    out = np.full(sm.size, np.nan)
    idx = np.flatnonzero(np.isfinite(sm))
    if idx.size == 0:
        return out
    swi = sm[idx[0]]
    out[idx[0]] = swi
    t_now = T * swi ** (-c)
    gain = 1.0
    for i in range(1, idx.size):
        dt = jd[idx[i]] - jd[idx[i - 1]]
        new = swi
        gain_new = gain
        for _ in range(3):
            gain_new = gain / (gain + np.exp(-dt / t_now))
            new = swi + gain_new * (sm[idx[i]] - swi)
            t_now = T * new ** (-c)
        swi, gain = new, gain_new
        out[idx[i]] = swi
    return out


try:  # the reference jit-compiles its filters when numba is installed (benchmarks/.venv-bench has it)
    from numba import njit
except ImportError:  # pragma: no cover
    NUMBA = False
else:
    NUMBA = True
    exponential_filter = njit(cache=True, nogil=True)(exponential_filter)
    wetness_filter = njit(cache=True, nogil=True)(wetness_filter)


def _rain_filtered(swi: np.ndarray, a: float, b: float, z: float, jd: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scaled = (swi - np.nanmin(swi)) / (np.nanmax(swi) - np.nanmin(swi))
    p = _rain(scaled, a, b, z, jd)
    p[np.abs(np.diff(scaled)) <= 0.0001] = 0.0
    return p


def calibrate_tnc_filtered(sm: np.ndarray, p_obs: np.ndarray, *, wetness: bool) -> tuple[float, ...]:
    """4-parameter (T) or 5-parameter (Tpot) reference calibration of one daily cell."""
    jd = np.arange(sm.size, dtype=float)
    bounds = BOUNDS_TPOT if wetness else BOUNDS_T
    fractions = [0.1, 0.05, 0.1, 0.1, 0.1] if wetness else [0.1, 0.1, 0.1, 0.0]
    x0 = np.array([lo + f * (hi - lo) for (lo, hi), f in zip(bounds, fractions)])

    def cost(x: np.ndarray) -> float:
        swi = wetness_filter(sm, jd, x[3], x[4]) if wetness else exponential_filter(sm, jd, x[3])
        return _rmsd(p_obs, _rain_filtered(swi, x[0], x[1], x[2], jd))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = minimize(cost, x0, method="TNC", bounds=bounds, options=OPTIONS)
    return tuple(float(v) for v in result.x)


def rmse_filtered(sm: np.ndarray, p_obs: np.ndarray, x: tuple[float, ...], *, wetness: bool) -> float:
    jd = np.arange(sm.size, dtype=float)
    swi = wetness_filter(sm, jd, x[3], x[4]) if wetness else exponential_filter(sm, jd, x[3])
    return _rmsd(p_obs, _rain_filtered(swi, x[0], x[1], x[2], jd))
