"""SM2RAIN daily calibration (``method="fast"``), one cell at a time: the exact pass for one b, the
scan of b and the refinement of its best basins, and the per-cell driver :func:`sm2rain_daily`.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from smflow.science._kernels.common import _JIT, _SUMS, LOG_ZERO, _clip, _powers
from smflow.science._kernels.sm2rain_objective import (
    _refit,
    _score_clipped,
    _search_b,
    _store_fit,
)


@numba.njit(**_SUMS)
def _exact_pass(b: float, log_s: NDArray[np.float64], ds: NDArray[np.float64], y: NDArray[np.float64],
                event_h: NDArray[np.float64], event: NDArray[np.bool_], mask: NDArray[np.bool_],
                new_mask: NDArray[np.bool_], fixed: bool, use_previous: bool, z_prev: float, a_prev: float,
                step: bool, n: int, sum_y: float, sum_y2: float, objective: int, bounds: NDArray[np.float64],
                power: NDArray[np.float64], g: NDArray[np.float64], exponent: NDArray[np.int64],
                fit: NDArray[np.float64], fits: int = 1) -> float:
    """Exact fit of (Z, a) at b on the steps ``mask`` (or, with ``use_previous``, on the steps where
    (z_prev, a_prev) gives rain at this b), refitted ``fits - 1`` times on the steps where the
    previous fit rains; the clipped objective of the last fit into ``fit`` = (value, Z, a, b,
    sum_sim, sum_sim2, sum_simy, slope in log b (with ``step``)); the new active set into
    ``new_mask``; returns the Gauss-Newton update of b (b itself when not ``step``)."""
    steps = ds.size
    _powers(log_s, b, power, exponent)
    for t in range(steps):
        g[t] = (power[t + 1] + power[t]) * event_h[t]
    z, a = _refit(z_prev, a_prev, ds, g, y, bounds, mask, not (use_previous and not fixed))
    for _ in range(1, 1 if fixed else fits):
        z, a = _refit(z, a, ds, g, y, bounds, mask, False)
    sum_sim = sum_sim2 = sum_simy = 0.0
    c11 = c12 = c22 = r1 = r2 = r3 = c13 = c23 = c33 = 0.0
    if step:
        for t in range(steps):
            d, gt = ds[t], g[t]
            raw = d * z + gt * a
            positive = raw > 0
            sim = raw if positive else 0.0
            sum_sim += sim
            sum_sim2 += sim * sim
            sum_simy += sim * y[t]
            active = event[t] if fixed else positive
            new_mask[t] = active
            m = 1.0 if active else 0.0
            dg = (power[t + 1] * log_s[t + 1] + power[t] * log_s[t]) * event_h[t]
            dm, gm, dgm = d * m, gt * m, dg * m
            residual = (raw - y[t]) * m
            c11 += dm * d
            c12 += gm * d
            c22 += gm * gt
            r1 += residual * d
            r2 += residual * gt
            r3 += residual * dg
            c13 += dgm * d
            c23 += dgm * gt
            c33 += dgm * dg
    else:
        _score_clipped(b, z, a, ds, g, y, event, fixed, new_mask, n, sum_y, sum_y2, objective, bounds, fit)
        return b
    _store_fit(b, z, a, sum_sim, sum_sim2, sum_simy, n, sum_y, sum_y2, objective, bounds, fit)
    # Slope of the clipped sum of squares in log b at this (Z, a) (= that of the profile over
    # (Z, a) when they are its optimum: envelope theorem), for the line search of _refine_b.
    r3 *= a
    fit[7] = 2.0 * b * r3
    # Gauss-Newton on the clipped model: columns ds, g, a dg/db on the new active set; Cramer's
    # rule for the b component of (J'J) delta = -J'r. A parameter held on its bound by the box
    # (a = 200 mm/day is common) is not free: its column is left out, else the step in b assumes
    # a move of that parameter the bounds forbid and stalls short of the optimum.
    c13 *= a
    c23 *= a
    c33 *= a * a
    z_free = bounds[0] < z < bounds[1]
    a_free = bounds[2] < a < bounds[3]
    if z_free and a_free:
        det = c11 * (c22 * c33 - c23 * c23) - c12 * (c12 * c33 - c23 * c13) + c13 * (c12 * c23 - c22 * c13)
        num = c11 * (c22 * r3 - r2 * c23) - c12 * (c12 * r3 - r2 * c13) + r1 * (c12 * c23 - c22 * c13)
        scale = abs(c11 * c22 * c33)
    elif z_free:
        det = c11 * c33 - c13 * c13
        num = c11 * r3 - c13 * r1
        scale = abs(c11 * c33)
    elif a_free:
        det = c22 * c33 - c23 * c23
        num = c22 * r3 - c23 * r2
        scale = abs(c22 * c33)
    else:
        det = c33
        num = r3
        scale = abs(c33)
    delta = -num / det
    if not (abs(det) > 1e-12 * scale and math.isfinite(delta)):
        delta = 0.0
    # At most a factor e per pass: the loss curve is far from linear in b.
    return _clip(b + delta, b / math.e, b * math.e)


@numba.njit(**_SUMS)
def _scan_b(scan_b: NDArray[np.float64], log_s: NDArray[np.float64], ds: NDArray[np.float64], y: NDArray[np.float64],
            event_h: NDArray[np.float64], event: NDArray[np.bool_], start_mask: NDArray[np.bool_], fixed: bool,
            iterations: int, n: int, sum_y: float, sum_y2: float, objective: int, bounds: NDArray[np.float64],
            power: NDArray[np.float64], exponent: NDArray[np.int64], g: NDArray[np.float64],
            scan_values: NDArray[np.float64], scan_masks: NDArray[np.bool_], fit: NDArray[np.float64],
            best: NDArray[np.float64]) -> None:
    """Clipped objective at every b of ``scan_b`` (increasing; where a value doubles the previous
    one, ``s^b`` is the square of the previous power, without ``exp``).

    At each b, (Z, a) are fitted on ``start_mask``, then `iterations` - 1 times again on the steps
    where the previous fit rains; the clipped model of the last fit is scored. Writes the values
    into ``scan_values``, the steps where that fit rains into ``scan_masks`` (b, steps), and keeps
    the best fit in ``best`` (as ``fit`` of :func:`_exact_pass`)."""
    steps = ds.size
    for k in range(scan_b.size):
        b = scan_b[k]
        if k > 0 and b == 2.0 * scan_b[k - 1]:
            for t in range(steps + 1):
                power[t] = power[t] * power[t]
        else:
            _powers(log_s, b, power, exponent)
        for t in range(steps):
            g[t] = (power[t + 1] + power[t]) * event_h[t]
        z, a = _refit(0.0, 0.0, ds, g, y, bounds, start_mask, True)
        for _ in range(1, 1 if fixed else iterations):
            z, a = _refit(z, a, ds, g, y, bounds, start_mask, False)
        _score_clipped(b, z, a, ds, g, y, event, fixed, scan_masks[k], n, sum_y, sum_y2, objective, bounds, fit)
        scan_values[k] = fit[0]
        if fit[0] < best[0]:
            best[:] = fit


@numba.njit(**_JIT)
def _vertex(x0: float, x1: float, x2: float, f0: float, f1: float, f2: float) -> float:
    """Abscissa of the vertex of the parabola through three points, clipped to [x0, x2]; x1 if
    the parabola is degenerate."""
    denominator = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
    vertex = x1 - 0.5 * ((x1 - x0) ** 2 * (f1 - f2) - (x1 - x2) ** 2 * (f1 - f0)) / denominator
    if denominator != 0 and math.isfinite(vertex):
        return _clip(vertex, x0, x2)
    return x1


@numba.njit(**_JIT)
def _refine_b(x: float, x_lo: float, x_hi: float, passes: int, log_s: NDArray[np.float64], ds: NDArray[np.float64],
              y: NDArray[np.float64], event_h: NDArray[np.float64], event: NDArray[np.bool_],
              mask: NDArray[np.bool_], new_mask: NDArray[np.bool_], fixed: bool, n: int, sum_y: float,
              sum_y2: float, objective: int, bounds: NDArray[np.float64], power_t: NDArray[np.float64],
              g: NDArray[np.float64], exponent: NDArray[np.int64], fit: NDArray[np.float64],
              chain: NDArray[np.float64], fits: int) -> None:
    """Safeguarded line search in ``log b`` from ``x`` inside the bracket [x_lo, x_hi]: at most
    ``passes`` exact passes, each fitting (Z, a) on the steps where the chain's best fit rains at the
    new b (``mask`` for the first), scoring the clipped model and its slope in log b.

    The bracket shrinks to the side the slope (or a worse value) points away from; the next point
    is the secant of the slopes, else the Gauss-Newton step, else the bisection -- whichever first
    falls inside the bracket. The clipped objective is piecewise smooth in b and its residuals are
    large (rain is noisy), where Gauss-Newton alone creeps; the secant on the exact slope converges
    superlinearly and the bracket keeps it in the basin. The best fit goes into ``chain``."""
    chain[:] = np.nan
    chain[0] = math.inf
    x_best = x
    x_prev = slope_prev = math.nan
    for k in range(passes):
        b = math.exp(x)
        b_newton = _exact_pass(b, log_s, ds, y, event_h, event, mask, new_mask, fixed, k > 0, chain[1], chain[2],
                               True, n, sum_y, sum_y2, objective, bounds, power_t, g, exponent, fit, fits)
        slope = fit[7]
        if fit[0] < chain[0]:
            chain[:] = fit
            x_best = x
            if slope > 0:
                x_hi = x
            elif slope < 0:
                x_lo = x
        elif x > x_best:  # worse: the minimum lies between the best point and this one
            x_hi = x
        else:
            x_lo = x
        if not x_hi - x_lo > 1e-7 or slope == 0 or slope != slope:
            break
        step = math.nan
        if slope_prev == slope_prev and slope != slope_prev:
            step = x - slope * (x - x_prev) / (slope - slope_prev)
        if not x_lo < step < x_hi:
            step = math.log(b_newton)
            if not (x_lo < step < x_hi) or step == x:
                step = 0.5 * (x_lo + x_hi)
        if abs(step - x) < 1e-7:
            break
        x_prev, slope_prev = x, slope
        mask[:] = new_mask
        x = step


#: A second local minimum of the coarse scan is refined too when its clipped objective is within
#: this relative margin of the best one (the scan fits (Z, a) on the increments, not on the final
#: active set, so close basins can swap once refined).
SCAN_MARGIN = 0.05


@numba.njit(**_JIT)
def sm2rain_daily(s: NDArray[np.float64], log_s_all: NDArray[np.float64], p_obs: NDArray[np.float64], start: int,
                  stop: int, dt: float,
                  has_threshold: bool, threshold: float, objective: int, bounds: NDArray[np.float64],
                  grid: NDArray[np.float64], power: NDArray[np.float64], log_nodes: NDArray[np.float64],
                  scan_b: NDArray[np.float64], scan_iterations: int, chains: int, refine: bool, passes: int,
                  out: NDArray[np.float64]) -> None:
    """Daily SM2RAIN calibration of the cells ``start:stop`` of ``s`` / ``p_obs`` (cells, time).

    ``log_s_all`` is ``log(fmax(s, 0))`` (numpy's vectorised log; -inf where s is 0 or missing).

    ``bounds`` = (Z lo, Z hi, a lo, a hi, b lo, b hi); ``scan_b`` the increasing values of b of the
    exact scan (:func:`_scan_b`, `scan_iterations` fits each); ``chains`` how many local minima of
    the scan are refined at most (:func:`_refine_b`, `passes` exact passes each); ``grid`` and its
    ``power`` table only serve the histogram search of ``refine=False``. Writes per cell into
    ``out`` (cells, 10): objective, Z, a, b, sum_sim, sum_sim2, sum_simy, n, sum y, sum y^2 (y the
    observations on the valid steps, not clipped at 0). Algorithm: see
    ``smflow.science.sm2rain.solvers._calibrate_daily``.
    """
    size = s.shape[1]
    steps = size - 1
    s0 = np.empty(size)
    log_s = np.empty(size)
    node = np.empty(size, dtype=np.int64)
    product_node = np.empty(steps, dtype=np.int64)
    ds = np.empty(steps)
    y = np.empty(steps)
    event_h = np.empty(steps)
    event = np.empty(steps, dtype=np.bool_)
    base = np.empty(steps, dtype=np.bool_)
    wet = np.empty(steps, dtype=np.bool_)
    mask = np.empty(steps, dtype=np.bool_)
    new_mask = np.empty(steps, dtype=np.bool_)
    power_t = np.empty(size)
    exponent = np.empty(size, dtype=np.int64)
    g = np.empty(steps)
    h = np.empty((4, log_nodes.size))
    moments = np.empty((5, grid.size))
    scores = np.empty(grid.size)
    fit = np.empty(8)
    chain = np.empty(8)
    best = np.empty(8)
    n_scan = scan_b.size
    scan_values = np.empty(n_scan)
    scan_masks = np.empty((n_scan, steps), dtype=np.bool_)
    last_index = grid.size - 1
    n_bins = log_nodes.size - 1
    b_lo, b_hi = bounds[4], bounds[5]
    fixed = has_threshold and threshold >= 0
    for cell in range(start, stop):
        row, obs, log_row = s[cell], p_obs[cell], log_s_all[cell]
        for t in range(size):
            v = row[t]
            x = v if v > 0.0 else 0.0  # NaN -> 0 (s is in [0, 1])
            s0[t] = x
            log_s[t] = log_row[t] if x > 0 else LOG_ZERO
            node[t] = int(x * n_bins + 0.5)
        n = 0
        sum_y = sum_y2 = raw_y = raw_y2 = 0.0
        for t in range(steps):  # branch-free: gaps are scattered
            observed = obs[t + 1]
            valid = (row[t + 1] == row[t + 1]) & (row[t] == row[t]) & (observed == observed)
            d = s0[t + 1] - s0[t]
            on = valid & ((not has_threshold) | (d > threshold))
            event[t] = on
            ds[t] = d if on else 0.0
            o = observed if valid else 0.0
            yt = o if o > 0.0 else 0.0
            y[t] = yt
            event_h[t] = 0.5 * dt if on else 0.0
            base[t] = on & (d >= 0)
            # Rain on a falling step comes only from the loss term: starting the fits on the rising
            # steps alone can lock a at 0 for large b (a local minimum of the clipped fit).
            wet[t] = on & ((d >= 0) | (yt > 0))
            product_node[t] = int(s0[t + 1] * s0[t] * n_bins + 0.5)
            n += valid
            sum_y += yt
            sum_y2 += yt * yt
            raw_y += o
            raw_y2 += o * o
        start_mask = event if fixed else base
        best[:] = np.nan
        best[0] = math.inf
        if not refine:
            b = _search_b(ds, y, event_h, start_mask, n, sum_y, sum_y2, dt, objective, bounds, grid, power,
                          log_nodes, refine, h, node, product_node, moments, scores, 0, last_index)
            b = _clip(b, b_lo, b_hi)
            _exact_pass(b, log_s, ds, y, event_h, event, start_mask, new_mask, fixed, False, 0.0, 0.0, False, n,
                        sum_y, sum_y2, objective, bounds, power_t, g, exponent, best)
        else:
            # Exact scan of the clipped objective over b (doubling steps); its local minima are the
            # basins of b worth refining.
            _scan_b(scan_b, log_s, ds, y, event_h, event, event if fixed else wet, fixed, scan_iterations, n, sum_y,
                    sum_y2, objective, bounds, power_t, exponent, g, scan_values, scan_masks, fit, best)
            order = np.argsort(scan_values)
            top = scan_values[order[0]]
            runs = 0
            for i in range(n_scan):
                k = order[i]
                value = scan_values[k]
                if runs == chains or not value < math.inf or (runs > 0 and value > top + SCAN_MARGIN * abs(top)):
                    break
                if (k > 0 and scan_values[k - 1] < value) or (k < n_scan - 1 and scan_values[k + 1] < value):
                    continue  # not a local minimum
                # The basin: from the vertex of the parabola through the neighbouring scan points
                # (in log b), a line search inside them, starting on the active set of the scan fit.
                x_lo = math.log(scan_b[k - 1]) if k > 0 else math.log(b_lo)
                x_hi = math.log(scan_b[k + 1]) if k < n_scan - 1 else math.log(b_hi)
                x = math.log(scan_b[k])
                if 0 < k < n_scan - 1:
                    x = _vertex(x_lo, x, x_hi, scan_values[k - 1], value, scan_values[k + 1])
                mask[:] = scan_masks[k]
                _refine_b(x, x_lo, x_hi, max(passes, 1), log_s, ds, y, event_h, event, mask, new_mask, fixed, n,
                          sum_y, sum_y2, objective, bounds, power_t, g, exponent, fit, chain, scan_iterations)
                if chain[0] < best[0]:
                    best[:] = chain
                runs += 1
        for k in range(7):
            out[cell, k] = best[k]
        out[cell, 7] = n
        out[cell, 8] = raw_y
        out[cell, 9] = raw_y2
