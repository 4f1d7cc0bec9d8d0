"""SM2RAIN daily calibration, objective side: box least squares of (Z, a), the RMSE / KGE score,
the histogram search over a grid of b, and the clipped model's fit for given (Z, a, b).

Used by :mod:`smflow.science._kernels.sm2rain_calibration` (the per-cell search over b).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from smflow.science._kernels.common import _JIT, _SUMS, _clip, _fmax, _fmin


#: Objective codes of the SM2RAIN kernel.
OBJECTIVE_RMSE = 0
OBJECTIVE_KGE = 1


@numba.njit(**_JIT)
def _box_least_squares(s11: float, s12: float, s22: float, t1: float, t2: float,
                       z_lo: float, z_hi: float, a_lo: float, a_hi: float) -> tuple[float, float]:
    """Minimise ``|X theta - y|^2`` over the box from the normal-equation sums (exact: the
    unconstrained solution if feasible, else the best of the four clipped edge minimisers)."""
    det = s11 * s22 - s12 * s12
    z_free = (s22 * t1 - s12 * t2) / det
    a_free = (s11 * t2 - s12 * t1) / det
    interior = (det > 1e-12 * s11 * s22) and z_lo <= z_free <= z_hi and a_lo <= a_free <= a_hi
    best_z = z_free if interior else z_lo
    best_a = a_free if interior else a_lo
    best = s11 * best_z * best_z + 2 * s12 * best_z * best_a + s22 * best_a * best_a - 2 * (t1 * best_z + t2 * best_a)
    if not math.isfinite(best):
        best = math.inf
    for k in range(4):
        if k < 2:
            z = z_lo if k == 0 else z_hi
            a = _clip((t2 - s12 * z) / s22 if s22 > 0 else a_lo, a_lo, a_hi)
        else:
            a = a_lo if k == 2 else a_hi
            z = _clip((t1 - s12 * a) / s11 if s11 > 0 else z_lo, z_lo, z_hi)
        value = s11 * z * z + 2 * s12 * z * a + s22 * a * a - 2 * (t1 * z + t2 * a)
        if not math.isfinite(value):
            value = math.inf
        if value < best:
            best, best_z, best_a = value, z, a
    return best_z, best_a


@numba.njit(**_JIT)
def _score(n: int, sum_sim: float, sum_sim2: float, sum_simy: float, sum_y: float, sum_y2: float,
           objective: int) -> tuple[float, float]:
    """Objective to minimise (MSE, or the KGE distance 1 - KGE) and the KGE-optimal scale of (Z, a)."""
    nn = max(n, 1)
    if objective != OBJECTIVE_KGE:
        mse = (sum_sim2 - 2.0 * sum_simy + sum_y2) / nn
        return (max(mse, 0.0) if math.isfinite(mse) else math.inf), 1.0
    mean_sim, mean_y = sum_sim / nn, sum_y / nn
    var_sim = max(sum_sim2 / nn - mean_sim * mean_sim, 0.0)
    var_y = max(sum_y2 / nn - mean_y * mean_y, 0.0)
    cov = sum_simy / nn - mean_sim * mean_y
    r = cov / math.sqrt(var_sim * var_y)
    alpha = math.sqrt(var_sim / var_y)
    beta = mean_sim / mean_y
    distance = math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
    # Scaling (Z, a) by c scales the clipped rain by c: KGE's alpha and beta scale, r does not.
    scale = (alpha + beta) / (alpha * alpha + beta * beta)
    return (distance if math.isfinite(distance) else math.inf), (scale if math.isfinite(scale) else 1.0)


@numba.njit(**_JIT)
def _feasible_scale(scale: float, z: float, a: float, z_lo: float, z_hi: float, a_lo: float, a_hi: float) -> float:
    # Scaling (Z, a) by c scales the clipped rain by c; keep c Z and c a inside the bounds.
    lo = _fmax(z_lo / z, a_lo / a if a > 0 else 0.0)
    hi = _fmin(z_hi / z, a_hi / a if a > 0 else math.inf)
    top = max(lo, hi)
    if scale != scale or lo != lo or hi != hi:  # np.clip / np.maximum propagate NaN
        return math.nan
    return min(max(scale, lo), top)


@numba.njit(**_JIT)
def _kge_rescale(value: float, z: float, a: float, sum_sim: float, sum_sim2: float, sum_simy: float, scale: float,
                 n: int, sum_y: float, sum_y2: float, bounds: NDArray[np.float64]
                 ) -> tuple[float, float, float, float, float, float]:
    """KGE: the least-squares (Z, a) rescaled by the feasible KGE-optimal factor, and its sums."""
    c = _feasible_scale(scale, z, a, bounds[0], bounds[1], bounds[2], bounds[3])
    sum_sim, sum_sim2, sum_simy = c * sum_sim, c * c * sum_sim2, c * sum_simy
    value, _ = _score(n, sum_sim, sum_sim2, sum_simy, sum_y, sum_y2, OBJECTIVE_KGE)
    return value, z * c, a * c, sum_sim, sum_sim2, sum_simy


@numba.njit(**_JIT)
def _histograms(ds: NDArray[np.float64], y: NDArray[np.float64], event_h: NDArray[np.float64],
                mask: NDArray[np.bool_], h: NDArray[np.float64], node: NDArray[np.int64],
                product_node: NDArray[np.int64]) -> tuple[float, float, float]:
    """Histograms h[0..3] (ds, y, one, product) of the steps of ``mask`` on the saturation nodes
    (``node`` of s_t, ``product_node`` of s_t s_{t-1}), weighted by dt/2; returns the sums s11,
    t1, d1 over the same steps."""
    steps = ds.size
    h[:] = 0.0
    previous_ds = previous_y = previous_m = 0.0
    s11 = t1 = d1 = 0.0
    for t in range(steps):
        on = 1.0 if mask[t] else 0.0
        m = event_h[t] * on
        d = ds[t]
        x_ds, x_y = d * m, y[t] * m
        # s_t is the new value of step t-1 and the previous value of step t
        k = node[t]
        h[0, k] += x_ds + previous_ds
        h[1, k] += x_y + previous_y
        h[2, k] += m + previous_m
        h[3, product_node[t]] += m
        d_on = d * on
        s11 += d_on * d
        t1 += d_on * y[t]
        d1 += d_on
        previous_ds, previous_y, previous_m = x_ds, x_y, m
    k = node[steps]
    h[0, k] += previous_ds
    h[1, k] += previous_y
    h[2, k] += previous_m
    return s11, t1, d1


@numba.njit(**_JIT)
def _value_from_moments(s11: float, t1: float, d1: float, s12: float, t2: float, s22: float, g1: float, n: int,
                        sum_y: float, sum_y2: float, objective: int, bounds: NDArray[np.float64]) -> float:
    z, a = _box_least_squares(s11, s12, s22, t1, t2, bounds[0], bounds[1], bounds[2], bounds[3])
    sum_sim2 = z * z * s11 + 2 * z * a * s12 + a * a * s22
    sum_simy = z * t1 + a * t2
    sum_sim = z * d1 + a * g1
    value, scale = _score(n, sum_sim, sum_sim2, sum_simy, sum_y, sum_y2, objective)
    if objective == OBJECTIVE_KGE:
        value = _kge_rescale(value, z, a, sum_sim, sum_sim2, sum_simy, scale, n, sum_y, sum_y2, bounds)[0]
    return value


@numba.njit(**_SUMS)
def _grid_moments(h: NDArray[np.float64], power: NDArray[np.float64], moments: NDArray[np.float64]) -> None:
    """Moments (5, b) of the histograms h (4, nodes) for every b of the grid: ds.p, y.p, one.p,
    one.p^2, product.p with p = nodes**b (``power``, (b, nodes)); vectorised dot products."""
    nodes = h.shape[1]
    h_ds, h_y, h_1, h_p = h[0], h[1], h[2], h[3]
    for j in range(power.shape[0]):
        p_row = power[j]
        m0 = m1 = m2 = m3 = m4 = 0.0
        for k in range(nodes):
            p = p_row[k]
            m0 += h_ds[k] * p
            m1 += h_y[k] * p
            m2 += h_1[k] * p
            m3 += h_1[k] * (p * p)
            m4 += h_p[k] * p
        moments[0, j], moments[1, j], moments[2, j], moments[3, j], moments[4, j] = m0, m1, m2, m3, m4


@numba.njit(**_JIT)
def _search_b(ds: NDArray[np.float64], y: NDArray[np.float64], event_h: NDArray[np.float64],
              mask: NDArray[np.bool_], n: int, sum_y: float, sum_y2: float, dt: float, objective: int,
              bounds: NDArray[np.float64], grid: NDArray[np.float64], power: NDArray[np.float64],
              log_nodes: NDArray[np.float64], refine: bool, h: NDArray[np.float64], node: NDArray[np.int64],
              product_node: NDArray[np.int64], moments: NDArray[np.float64], scores: NDArray[np.float64],
              first: int, last: int) -> float:
    """Best b among ``grid[first:last + 1]`` from the histograms of ``mask`` (refined by a parabola
    in log b).

    ``power`` is the table ``nodes**grid`` shaped (b, nodes), shared by all cells."""
    n_bins = log_nodes.size - 1
    s11, t1, d1 = _histograms(ds, y, event_h, mask, h, node, product_node)
    half = 0.5 * dt
    _grid_moments(h, power[first:last + 1], moments[:, first:last + 1])
    index = first
    for j in range(first, last + 1):
        s22 = half * (moments[3, j] + 2.0 * moments[4, j])
        scores[j] = _value_from_moments(s11, t1, d1, moments[0, j], moments[1, j], s22, moments[2, j], n,
                                        sum_y, sum_y2, objective, bounds)
        if scores[j] < scores[index]:
            index = j
    b = grid[index]
    if refine and last - first >= 2:
        k = min(max(index, first + 1), last - 1)
        x0, x1, x2 = math.log(grid[k - 1]), math.log(grid[k]), math.log(grid[k + 1])
        f0, f1, f2 = scores[k - 1], scores[k], scores[k + 1]
        denominator = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
        vertex = x1 - 0.5 * ((x1 - x0) ** 2 * (f1 - f2) - (x1 - x2) ** 2 * (f1 - f0)) / denominator
        if math.isfinite(vertex) and denominator != 0:
            vertex = _clip(vertex, x0, x2)
        else:
            vertex = math.log(b)
        candidate = math.exp(vertex)
        s12 = t2 = g1 = q1 = qp = 0.0
        for k in range(n_bins + 1):
            p = math.exp(candidate * log_nodes[k])
            s12 += h[0, k] * p
            t2 += h[1, k] * p
            g1 += h[2, k] * p
            q1 += h[2, k] * (p * p)
            qp += h[3, k] * p
        value = _value_from_moments(s11, t1, d1, s12, t2, half * (q1 + 2.0 * qp), g1, n, sum_y, sum_y2,
                                    objective, bounds)
        if value < scores[index]:
            b = candidate
    return b


@numba.njit(**_JIT)
def _store_fit(b: float, z: float, a: float, sum_sim: float, sum_sim2: float, sum_simy: float, n: int, sum_y: float,
               sum_y2: float, objective: int, bounds: NDArray[np.float64], fit: NDArray[np.float64]) -> None:
    """Objective of the clipped model from its sums (KGE: (Z, a) rescaled) into ``fit`` = (value, Z,
    a, b, sum_sim, sum_sim2, sum_simy, slope: NaN)."""
    value, scale = _score(n, sum_sim, sum_sim2, sum_simy, sum_y, sum_y2, objective)
    fit_z, fit_a = z, a
    if objective == OBJECTIVE_KGE:
        value, fit_z, fit_a, sum_sim, sum_sim2, sum_simy = _kge_rescale(
            value, z, a, sum_sim, sum_sim2, sum_simy, scale, n, sum_y, sum_y2, bounds)
    fit[0], fit[1], fit[2], fit[3] = value, fit_z, fit_a, b
    fit[4], fit[5], fit[6], fit[7] = sum_sim, sum_sim2, sum_simy, math.nan


@numba.njit(**_SUMS)
def _score_clipped(b: float, z: float, a: float, ds: NDArray[np.float64], g: NDArray[np.float64],
                   y: NDArray[np.float64], event: NDArray[np.bool_], fixed: bool, new_mask: NDArray[np.bool_], n: int,
                   sum_y: float, sum_y2: float, objective: int, bounds: NDArray[np.float64],
                   fit: NDArray[np.float64]) -> None:
    """Clipped model of (z, a) with the loss term g: its fit (:func:`_store_fit`) and the steps
    where it rains (``event`` with a fixed active set) into ``new_mask``."""
    sum_sim = sum_sim2 = sum_simy = 0.0
    for t in range(ds.size):
        raw = ds[t] * z + g[t] * a
        positive = raw > 0
        sim = raw if positive else 0.0
        sum_sim += sim
        sum_sim2 += sim * sim
        sum_simy += sim * y[t]
        new_mask[t] = event[t] if fixed else positive
    _store_fit(b, z, a, sum_sim, sum_sim2, sum_simy, n, sum_y, sum_y2, objective, bounds, fit)


@numba.njit(**_SUMS)
def _refit(z: float, a: float, ds: NDArray[np.float64], g: NDArray[np.float64], y: NDArray[np.float64],
           bounds: NDArray[np.float64], mask: NDArray[np.bool_], from_mask: bool) -> tuple[float, float]:
    """Box least-squares (Z, a) with the loss term g on the steps of ``mask`` (``from_mask``) or on
    the steps where (z, a) rains (the clipping's active set)."""
    # Branch-free sums (0/1 weights instead of ifs): the active set is a random pattern that
    # would defeat branch prediction. Adding exact zeros leaves the sums unchanged.
    s11 = t1 = s12 = s22 = t2 = 0.0
    for t in range(ds.size):
        d, gt = ds[t], g[t]
        if from_mask:
            m = 1.0 if mask[t] else 0.0
        else:
            m = 1.0 if d * z + gt * a > 0 else 0.0
        dm, gm = d * m, gt * m
        s11 += dm * d
        t1 += dm * y[t]
        s12 += gm * d
        s22 += gm * gt
        t2 += gm * y[t]
    return _box_least_squares(s11, s12, s22, t1, t2, bounds[0], bounds[1], bounds[2], bounds[3])
