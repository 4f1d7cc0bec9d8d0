"""SM2RAIN calibration: (Z, a, b) per cell against observed rain, optionally with the SWI filter.

:func:`calibrate_sm2rain` validates the options, then calibrates blocks of cells (numpy) or chunks
of a dask array (:mod:`smflow.science.sm2rain.distributed`) with the solvers of
:mod:`smflow.science.sm2rain.solvers`; the SM2RAIN-ASCAT variants search the filter time constant
(and its wetness exponent) around them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from smflow.science.sm2rain.distributed import calibrate_dask, is_dask
from smflow.science.sm2rain.filters import (
    DEFAULT_T_BOUNDS,
    DEFAULT_T_BOUNDS_TPOT,
    DEFAULT_T_POT_BOUNDS,
    SWIFilter,
    exponential_filter,
    mask_frozen_soil,
)
from smflow.science.sm2rain.model import (
    SM2RAINParameters,
    _check_saturation,
    relative_saturation,
    saturation_bounds,
)
from smflow.science.sm2rain.solvers import _calibrate_daily, _calibrate_exact, _Fit

__all__ = [
    "DEFAULT_A_BOUNDS",
    "DEFAULT_B_BOUNDS",
    "DEFAULT_Z_BOUNDS",
    "Method",
    "Objective",
    "calibrate_sm2rain",
]

Objective = Literal["rmse", "kge", "nse"]
Method = Literal["auto", "fast", "exact"]

#: Parameter bounds of the SM2RAIN reference implementation (IRPI) for daily time steps:
#: Z [mm], a [mm/day], b [-].
DEFAULT_Z_BOUNDS: tuple[float, float] = (1.0, 800.0)
DEFAULT_A_BOUNDS: tuple[float, float] = (0.0, 200.0)
DEFAULT_B_BOUNDS: tuple[float, float] = (0.01, 50.0)


def _check_bounds(name: str, bounds: tuple[float, float], *, minimum: float, strict: bool) -> tuple[float, float]:
    lo, hi = (float(v) for v in bounds)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi) or (lo <= minimum if strict else lo < minimum):
        rule = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"`{name}` must be finite (low, high) with low < high and low {rule}, got {bounds!r}.")
    return lo, hi


def calibrate_sm2rain(
    s: ArrayLike,
    p_obs: ArrayLike,
    *,
    dt: float = 1.0,
    aggregation: int = 1,
    delta_s_threshold: float | None = None,
    objective: Objective = "rmse",
    z_bounds: tuple[float, float] = DEFAULT_Z_BOUNDS,
    a_bounds: tuple[float, float] | None = None,
    b_bounds: tuple[float, float] = DEFAULT_B_BOUNDS,
    b_grid: ArrayLike | None = None,
    refine: bool = True,
    min_samples: int = 30,
    max_active_set_iterations: int = 8,
    method: Method = "auto",
    newton_passes: int = 8,
    swi_filter: SWIFilter = "none",
    T_bounds: tuple[float, float] | None = None,
    T_grid: ArrayLike | None = None,
    T_pot_bounds: tuple[float, float] = DEFAULT_T_POT_BOUNDS,
    T_pot_grid: ArrayLike | None = None,
    frozen: ArrayLike | None = None,
    chunk_cells: int | None = None,
    scheduler: str | None = None,
) -> SM2RAINParameters:
    """Calibrate SM2RAIN parameters (Z, a, b, and optionally the filter T, Tpot) per cell.

    Parameters
    ----------
    s : array_like or dask array, shape (cells, time) or (time,)
        Relative saturation [-] in [0, 1], NaN where missing. A dask array is calibrated chunk by
        chunk of cells (the time axis is rechunked whole), with bounded memory.
    p_obs : array_like or dask array, same shape as `s`
        Observed rainfall during the step ending at each time [mm per step], NaN where missing
        (``p_obs[..., t]`` is compared with ``sm2rain(s, ...)[..., t]``).
    dt : float, default 1.0
        Step length in the time unit of `a` (see :func:`sm2rain`) and of `T`.
    aggregation : int, default 1
        Number of consecutive steps summed before comparing (24 for daily sums of hourly data).
        Blocks start at the second step (the first has no previous saturation); only complete
        blocks where every step is finite count.
    delta_s_threshold : float or None, default None
        As in :func:`sm2rain`; calibrate with the threshold you will apply.
    objective : {"rmse", "nse", "kge"}, default "rmse"
        Minimise the RMSE of the aggregated rainfall (as Zhang et al. 2022 and the IRPI code);
        "nse" maximises the Nash-Sutcliffe efficiency, which has the same optimum per cell; "kge"
        maximises the KGE (Gupta et al. 2009).
    z_bounds : (float, float), default (1, 800)
        Bounds of Z [mm].
    a_bounds : (float, float), optional
        Bounds of a [mm per unit of time of `dt`]. Default: ``DEFAULT_A_BOUNDS`` = (0, 200) mm/day,
        which presumes that `dt` is in days (1 for daily steps, 1/24 for hourly steps); a block
        compared (``dt * aggregation``) longer than one day means `dt` is in another unit (e.g.
        the IRPI convention ``dt=1`` hour with ``aggregation=24``) and raises: pass `a_bounds` in
        mm per that unit, or `dt` in days. The default `T_bounds` are checked the same way.
    b_bounds : (float, float), default (0.01, 50)
        Bounds of b [-]. (The IRPI MATLAB reference for hourly data uses Z in [1, 200],
        a in [0, 1800] mm/h and b in [1, 150].)
    b_grid : array_like or None
        Values of b searched for every cell; default 48 log-spaced values spanning `b_bounds`.
    refine : bool, default True
        Refine b per cell beyond the grid ("exact": golden-section search; "fast": exact scan of
        the basins of b, then line searches).
    min_samples : int, default 30
        Minimum number of aggregated samples; cells with fewer get NaN parameters.
    max_active_set_iterations : int, default 8
        ``method="exact"``: re-solutions of (Z, a) on the steps with positive rain (the clipping
        ``max(0, .)`` makes the model piecewise linear) until that set stops changing.
    method : {"auto", "fast", "exact"}, default "auto"
        "fast" (daily comparison, ``aggregation=1`` only): an exact scan of the clipped objective
        over b finds its basins, a line search in each of the best two refines (Z, a, b) under the
        clipping (:func:`smflow.science.sm2rain.solvers._calibrate_daily`); it reaches the global
        optimum of the clipped RMSE (checked against scipy's ``differential_evolution`` on real
        daily station-years, ``tests/science/test_sm2rain_optimum.py``). "exact": every b of the
        grid evaluated on the full series, then a golden-section search (any aggregation).
        "auto" = "fast" for ``aggregation=1``, else "exact".
    newton_passes : int, default 8
        ``method="fast"``: at most this many exact passes over the series per basin of b (each
        fits (Z, a) at the current b, scores the clipped model and its slope in log b, and takes
        a safeguarded secant or Gauss-Newton step); the search stops earlier once converged.
    swi_filter : {"none", "exponential", "wetness"}, default "none"
        SM2RAIN-ASCAT variants (Brocca et al. 2019): filter `s` with :func:`exponential_filter`
        (time constant T; "wetness": T SWI^-Tpot) and min-max scale the filtered series with bounds
        frozen from this calibration period (returned as ``swi_lower`` / ``swi_upper``) before the
        inversion. T (and Tpot) are searched on a grid, then on a finer grid around each cell's best.
    T_bounds : (float, float), optional
        Bounds of T [time unit of `dt`]; default (0.0001, 8) for "exponential" and (0.05, 3) for
        "wetness", as the IRPI reference.
    T_grid : array_like, optional
        Values of T tried first; default 12 ("exponential") or 8 ("wetness") log-spaced values.
    T_pot_bounds : (float, float), default (0.05, 0.75)
        Bounds of Tpot [-] ("wetness").
    T_pot_grid : array_like, optional
        Values of Tpot tried first; default 5 evenly spaced values.
    frozen : array_like of bool, optional
        Steps with frozen soil or snow (:func:`frozen_soil_mask`); treated as missing.
    chunk_cells : int, optional
        Calibrate this many cells at a time (bounded memory; default: all at once for numpy input,
        256 for dask input).
    scheduler : str, optional
        Dask scheduler for dask input ("threads", "processes", "synchronous"); default: dask's.

    Returns
    -------
    SM2RAINParameters
        Z [mm], a, b [-] (T, Tpot and the frozen SWI bounds for the filtered variants), and the
        calibration RMSE [mm per aggregated step], R [-] and sample size per cell (cell axis
        dropped for 1-D input).

    Raises
    ------
    ValueError
        If the shapes differ, `s` is outside [0, 1], the bounds, `aggregation`, `dt`, `objective`,
        `method`, `swi_filter` or `min_samples` are invalid, or the default (per-day) `a_bounds` /
        `T_bounds` are used with a `dt` that is not in days (see `a_bounds`).

    Notes
    -----
    For fixed :math:`b`, and with :math:`A` the set of steps with positive rain, the aggregated
    model of a block :math:`k` is linear in :math:`(Z, a)` (Zhang et al. 2022, Eq. 2):

    .. math::

        \\hat P_k = Z \\sum_{t \\in k \\cap A} (s_t - s_{t-1})
                  + a \\sum_{t \\in k \\cap A} \\Delta t\\,\\frac{s_t^b + s_{t-1}^b}{2}

    so the least-squares :math:`(Z, a)` follow from the 2 x 2 normal equations (sums over the
    valid blocks of every cell), constrained to the bounds exactly by checking the box edges.
    With a non-negative `delta_s_threshold`, :math:`A` is known in advance and the solution is
    exact; otherwise :math:`A` is updated from the solution (Gauss-Newton on the clipped model)
    and the best clipped fit is kept.

    Without aggregation every normal-equation sum is a weighted sum of powers
    :math:`s^b`, :math:`s^{2b}`, :math:`(s_t s_{t-1})^b`; binning the saturation once turns the
    sums for a whole grid of b into a matrix product (``method="fast"``), and Gauss-Newton passes
    on the exact series refine :math:`(Z, a, b)` under the clipping. For ``objective="kge"`` the
    least-squares (Z, a) are rescaled by the factor that maximises KGE (exact, since the clipped
    rainfall is proportional to a common scale of Z and a). ``method="fast"`` runs cell by cell in a
    compiled kernel (numba; cells split over numba's threads, one thread per dask task), the
    exact method for all cells at once over the values of b.

    References
    ----------
    Zhang, Hou & Huang 2022, Remote Sens. 14, 5355, Eqs. 1-2 and Sect. 3.3 (RMSE calibration).
    Brocca, L. et al. (2013). Geophys. Res. Lett. 40, 853-858 (IRPI reference code and bounds).
    Brocca, L. et al. (2019). Earth Syst. Sci. Data 11, 1583-1601 (SM2RAIN-ASCAT filters).
    Gupta, H. V. et al. (2009). J. Hydrol. 377, 80-91 (KGE).
    """
    options = _CalibrationOptions.build(
        dt=dt, aggregation=aggregation, delta_s_threshold=delta_s_threshold, objective=objective,
        z_bounds=z_bounds, a_bounds=a_bounds, b_bounds=b_bounds, b_grid=b_grid, refine=refine,
        min_samples=min_samples, max_active_set_iterations=max_active_set_iterations, method=method,
        newton_passes=newton_passes, swi_filter=swi_filter, T_bounds=T_bounds, T_grid=T_grid,
        T_pot_bounds=T_pot_bounds, T_pot_grid=T_pot_grid,
    )
    if is_dask(s) or is_dask(p_obs):
        return calibrate_dask(s, p_obs, lambda data, obs: _calibrate_block(data, obs, options), frozen=frozen,
                              chunk_cells=chunk_cells or 256, scheduler=scheduler)

    data = _check_saturation(s)
    obs = np.asarray(p_obs, dtype=float)
    if obs.shape != data.shape:
        raise ValueError(
            f"`p_obs` shape {obs.shape} differs from `s` shape {data.shape}; put the observed rain of "
            "the step ending at each time on the same (cells, time) axis, NaN where missing."
        )
    data = mask_frozen_soil(data, frozen)
    one_cell = data.ndim == 1
    if one_cell:
        data, obs = data[None], obs[None]
    if data.shape[1] < options.aggregation + 1:
        raise ValueError(
            f"`s` has {data.shape[1]} time steps, fewer than aggregation + 1 = {options.aggregation + 1}; "
            "pass a longer calibration period."
        )
    if chunk_cells is not None and (isinstance(chunk_cells, bool) or not isinstance(chunk_cells, (int, np.integer))
                                    or chunk_cells < 1):
        raise ValueError(f"`chunk_cells` must be a positive integer, got {chunk_cells!r}.")
    step = data.shape[0] if chunk_cells is None else int(chunk_cells)
    parts = [_calibrate_block(data[i : i + step], obs[i : i + step], options) for i in range(0, data.shape[0], step)]
    result = _concatenate(parts)
    if one_cell:
        result = SM2RAINParameters(**{k: v[0] for k, v in result.to_dict(all_fields=True).items()})
    return result


@dataclass(frozen=True)
class _CalibrationOptions:
    dt: float
    aggregation: int
    delta_s_threshold: float | None
    objective: str
    z_bounds: tuple[float, float]
    a_bounds: tuple[float, float]
    b_bounds: tuple[float, float]
    grid: NDArray[np.float64]
    refine: bool
    min_samples: int
    max_active_set_iterations: int
    method: str
    newton_passes: int
    swi_filter: str
    T_bounds: tuple[float, float]
    T_grid: NDArray[np.float64]
    T_pot_bounds: tuple[float, float]
    T_pot_grid: NDArray[np.float64]

    @classmethod
    def build(cls, **kw: Any) -> _CalibrationOptions:
        objective, aggregation, dt = kw["objective"], kw["aggregation"], kw["dt"]
        if objective not in ("rmse", "kge", "nse"):
            raise ValueError(f"`objective` must be 'rmse', 'nse' or 'kge', got {objective!r}.")
        if isinstance(aggregation, bool) or not isinstance(aggregation, (int, np.integer)) or aggregation < 1:
            raise ValueError(f"`aggregation` must be a positive number of steps, got {aggregation!r}.")
        if not dt > 0:
            raise ValueError(f"`dt` must be a positive time step, got {dt!r}.")
        min_samples = kw["min_samples"]
        if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 3:
            raise ValueError(f"`min_samples` must be an integer >= 3, got {min_samples!r}.")
        threshold = kw["delta_s_threshold"]
        if threshold is not None and not np.isfinite(threshold):
            raise ValueError(f"`delta_s_threshold` must be a finite number or None, got {threshold!r}.")
        method = kw["method"]
        if method not in ("auto", "fast", "exact"):
            raise ValueError(f"`method` must be 'auto', 'fast' or 'exact', got {method!r}.")
        if method == "fast" and aggregation != 1:
            raise ValueError("method='fast' compares every step (aggregation=1); use method='exact' (or 'auto') "
                             f"with aggregation={aggregation}.")
        if method == "auto":
            method = "fast" if aggregation == 1 else "exact"
        swi_filter = kw["swi_filter"]
        if swi_filter not in ("none", "exponential", "wetness"):
            raise ValueError(f"`swi_filter` must be 'none', 'exponential' or 'wetness', got {swi_filter!r}.")
        z_bounds = _check_bounds("z_bounds", kw["z_bounds"], minimum=0.0, strict=True)
        defaults = [name for name in ("a_bounds", "T_bounds")
                    if kw[name] is None and (name == "a_bounds" or swi_filter != "none")]
        if defaults and dt * aggregation > 1.0 + 1e-9:
            raise ValueError(
                f"The default {' and '.join(defaults)} are per day (a in mm/day, T in days) and need `dt` in days, "
                f"but dt={dt!r} x aggregation={aggregation!r} compares blocks of {dt * aggregation:g} time units, "
                "more than one day: `dt` is in another unit (e.g. hours, as IRPI's dt=1 with aggregation=24). "
                "Pass `dt` in days (dt=1/24 for hourly steps) or the bounds in the unit of `dt` "
                "(e.g. a_bounds=(0, 200 / 24) for a in mm/h)."
            )
        a_bounds = _check_bounds("a_bounds", kw["a_bounds"] or DEFAULT_A_BOUNDS, minimum=0.0, strict=False)
        b_bounds = _check_bounds("b_bounds", kw["b_bounds"], minimum=0.0, strict=True)
        grid = _grid_inside("b_grid", kw["b_grid"], b_bounds, np.geomspace(b_bounds[0], b_bounds[1], 48))
        default_t = DEFAULT_T_BOUNDS_TPOT if swi_filter == "wetness" else DEFAULT_T_BOUNDS
        T_bounds = _check_bounds("T_bounds", kw["T_bounds"] or default_t, minimum=0.0, strict=True)
        T_grid = _grid_inside("T_grid", kw["T_grid"], T_bounds,
                              np.geomspace(T_bounds[0], T_bounds[1], 8 if swi_filter == "wetness" else 12))
        T_pot_bounds = _check_bounds("T_pot_bounds", kw["T_pot_bounds"], minimum=0.0, strict=False)
        T_pot_grid = _grid_inside("T_pot_grid", kw["T_pot_grid"], T_pot_bounds,
                                  np.linspace(T_pot_bounds[0], T_pot_bounds[1], 5))
        passes = kw["newton_passes"]
        if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 1:
            raise ValueError(f"`newton_passes` must be a positive integer, got {passes!r}.")
        return cls(
            dt=float(dt), aggregation=int(aggregation), delta_s_threshold=threshold, objective=objective,
            z_bounds=z_bounds, a_bounds=a_bounds, b_bounds=b_bounds, grid=grid, refine=bool(kw["refine"]),
            min_samples=int(min_samples), max_active_set_iterations=int(kw["max_active_set_iterations"]),
            method=method, newton_passes=int(passes), swi_filter=swi_filter, T_bounds=T_bounds, T_grid=T_grid,
            T_pot_bounds=T_pot_bounds, T_pot_grid=T_pot_grid,
        )


def _grid_inside(name: str, values: ArrayLike | None, bounds: tuple[float, float],
                 default: NDArray[np.float64]) -> NDArray[np.float64]:
    if values is None:
        return default
    grid = np.unique(np.asarray(values, dtype=float).ravel())
    if grid.size == 0 or not np.all(np.isfinite(grid)) or grid[0] < bounds[0] or grid[-1] > bounds[1]:
        raise ValueError(f"`{name}` must hold finite values inside the bounds {bounds}, got {values!r}.")
    return grid


def _calibrate_block(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions) -> SM2RAINParameters:
    """Calibrate one block of cells (numpy, (cells, time)), with the filter search if asked."""
    if o.swi_filter == "none":
        return _calibrate_saturation(data, obs, o)
    return _calibrate_filtered(data, obs, o)


def _fit_saturation(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions
                    ) -> tuple[_Fit, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Best fit per cell; returns the fit, sample size, and the sums of y and y^2 (for R)."""
    objective = "rmse" if o.objective == "nse" else o.objective
    if o.method == "fast":
        return _calibrate_daily(
            data, obs, dt=o.dt, delta_s_threshold=o.delta_s_threshold, objective=objective,
            z_bounds=o.z_bounds, a_bounds=o.a_bounds, b_bounds=o.b_bounds, grid=o.grid, refine=o.refine,
            passes=o.newton_passes,
        )
    return _calibrate_exact(
        data, obs, dt=o.dt, aggregation=o.aggregation, delta_s_threshold=o.delta_s_threshold, objective=objective,
        z_bounds=o.z_bounds, a_bounds=o.a_bounds, grid=o.grid, refine=o.refine,
        max_active_set_iterations=o.max_active_set_iterations,
    )


def _finish(fit: _Fit, n: NDArray[np.int64], sum_y: NDArray[np.float64], sum_y2: NDArray[np.float64],
            min_samples: int, **extra: NDArray[np.float64]) -> SM2RAINParameters:
    enough = (n >= min_samples) & np.isfinite(fit.z)
    nn = np.maximum(n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = np.maximum(fit.sum_sim2 - 2 * fit.sum_simy + sum_y2, 0.0) / nn
        cov = fit.sum_simy - fit.sum_sim * sum_y / nn
        var_sim = fit.sum_sim2 - fit.sum_sim**2 / nn
        var_y = sum_y2 - sum_y**2 / nn
        r = np.clip(cov / np.sqrt(var_sim * var_y), -1.0, 1.0)
    masked = {k: np.where(enough, v, np.nan) for k, v in extra.items()}
    return SM2RAINParameters(
        Z=np.where(enough, fit.z, np.nan), a=np.where(enough, fit.a, np.nan), b=np.where(enough, fit.b, np.nan),
        rmse=np.where(enough, np.sqrt(mse), np.nan), r=np.where(enough, r, np.nan), n=n, **masked,
    )


def _calibrate_saturation(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions
                          ) -> SM2RAINParameters:
    fit, n, sum_y, sum_y2 = _fit_saturation(data, obs, o)
    return _finish(fit, n, sum_y, sum_y2, o.min_samples)


def _calibrate_filtered(data: NDArray[np.float64], obs: NDArray[np.float64], o: _CalibrationOptions
                        ) -> SM2RAINParameters:
    """Search T (and Tpot) for every cell: the coarse grid, then a finer grid around each best."""
    cells = data.shape[0]
    wetness = o.swi_filter == "wetness"
    pots = o.T_pot_grid if wetness else np.array([np.nan])
    state = {"value": np.full(cells, np.inf)}
    best: dict[str, Any] = {}

    # The search ranks (T, Tpot) with a short fit (one Gauss-Newton pass); the full fit is run once
    # at each cell's best filter.
    search = replace(o, newton_passes=min(o.newton_passes, 2)) if o.method == "fast" else o

    def consider(T: NDArray[np.float64], T_pot: NDArray[np.float64], options: _CalibrationOptions = search,
                 swi: NDArray[np.float64] | None = None) -> None:
        if swi is None:
            common = np.all(T == T[0]) and not wetness
            swi = exponential_filter(data, float(T[0]) if common else T, dt=o.dt, T_pot=T_pot if wetness else None)
        lower, upper = saturation_bounds(swi)
        s_f = relative_saturation(swi, lower, upper)
        fit, n, sum_y, sum_y2 = _fit_saturation(s_f, obs, options)
        better = fit.value < state["value"]
        state["value"] = np.where(better, fit.value, state["value"])
        candidate = {"fit": fit, "n": n, "sum_y": sum_y, "sum_y2": sum_y2, "T": T, "T_pot": T_pot,
                     "swi_lower": lower, "swi_upper": upper}
        if not best:
            best.update(candidate)
            return
        for key, value in candidate.items():
            if key == "fit":
                best["fit"].offer(_Fit(np.where(better, value.value, np.inf), value.z, value.a, value.b,
                                       value.sum_sim, value.sum_sim2, value.sum_simy))
            else:
                best[key] = np.where(better, value, best[key])

    if wetness:
        # The wetness filter has no closed form: run every (T, Tpot) of the grid in one recursion
        # over time (cells x combinations side by side), a block of cells at a time.
        combos = [(T, pot) for T in o.T_grid for pot in pots]
        block = max(1, 4096 // len(combos))
        swis = [np.empty_like(data) for _ in combos]
        for start in range(0, cells, block):
            rows = slice(start, start + block)
            size = data[rows].shape[0]
            tiled = np.tile(data[rows], (len(combos), 1))
            t_all = np.repeat([c[0] for c in combos], size)
            p_all = np.repeat([c[1] for c in combos], size)
            out = exponential_filter(tiled, t_all, dt=o.dt, T_pot=p_all)
            for k in range(len(combos)):
                swis[k][rows] = out[k * size : (k + 1) * size]
        for (T, pot), swi in zip(combos, swis):
            consider(np.full(cells, T), np.full(cells, pot), swi=swi)
        del swis
    else:
        for T in o.T_grid:
            consider(np.full(cells, T), np.full(cells, np.nan))
    if o.refine:
        # A finer grid around each cell's best (half the coarse spacing, in log T and in Tpot).
        log_step = np.log(o.T_grid[1] / o.T_grid[0]) / 2 if o.T_grid.size > 1 else 0.0
        pot_step = (pots[1] - pots[0]) / 2 if wetness and pots.size > 1 else 0.0
        center_t, center_p = best["T"].copy(), best["T_pot"].copy()
        for dl in (-1, 0, 1):
            for dp in ((-1, 0, 1) if wetness else (0,)):
                if dl == 0 and dp == 0:
                    continue
                T = np.clip(center_t * np.exp(dl * log_step), *o.T_bounds)
                pot = np.clip(center_p + dp * pot_step, *o.T_pot_bounds) if wetness else center_p
                consider(T, pot)
    if search is not o:
        # The full fit at each cell's best filter; its (better) value replaces the search value.
        state["value"] = np.full(cells, np.inf)
        best["fit"].value = np.full(cells, np.inf)
        consider(best["T"].copy(), best["T_pot"].copy(), o)
    return _finish(best["fit"], best["n"], best["sum_y"], best["sum_y2"], o.min_samples,
                   T=best["T"], T_pot=best["T_pot"] if wetness else np.full(cells, np.nan),
                   swi_lower=best["swi_lower"], swi_upper=best["swi_upper"])


def _concatenate(parts: list[SM2RAINParameters]) -> SM2RAINParameters:
    if len(parts) == 1:
        return parts[0]
    fields_ = [p.to_dict(all_fields=True) for p in parts]
    return SM2RAINParameters(**{k: np.concatenate([f[k] for f in fields_]) for k in fields_[0]})
