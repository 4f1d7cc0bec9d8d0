"""Compiled per-cell kernels of the science core (numba): SM2RAIN calibration, SWI filters, TC sums.

Private module. The public functions of :mod:`smflow.science.sm2rain`, :mod:`~smflow.science.tc`
and :mod:`~smflow.science.bootstrap` validate their inputs, call these kernels cell by cell and
assemble the results. Each kernel fuses what numpy had to do in a dozen separate passes over the
series (every temporary array of numpy costs a pass through memory): one loop over the time steps
of one cell does all the arithmetic of a stage while the cell's data sit in the CPU caches.

The kernels release the GIL (``nogil=True``): :func:`run_in_threads` splits the cells over
threads (numba's thread count, ``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``), and dask's
threaded scheduler runs chunks side by side. They are compiled once and cached on disk
(``cache=True``). ``error_model="numpy"``: a division by zero gives inf/NaN as in numpy (the
callers test for finiteness) instead of raising. ``fastmath`` is off: sums are accumulated in
order, so results agree with the numpy formulation to rounding.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np
from numpy.typing import NDArray

_JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
#: Reductions: the compiler may reorder the sums (and fuse multiply-adds) to vectorise them. NaN
#: and inf keep their IEEE meaning (no "nnan"/"ninf"); the results change only by rounding.
_SUMS = {**_JIT, "fastmath": {"reassoc", "nsz", "contract"}}

#: Stand-in for log(0): exp(b * -1e4) underflows to exactly 0 for every b >= 0.01, so s = 0 gives
#: s^b = 0 and s^b ln s = 0 without NaN from 0 * -inf.
LOG_ZERO = -1.0e4

#: Objective codes of the SM2RAIN kernel.
OBJECTIVE_RMSE = 0
OBJECTIVE_KGE = 1


_local = threading.local()


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the cell loops in the calling thread (e.g. inside a dask task: dask runs the chunks in
    parallel already, and more threads than cores only slow each other down)."""
    previous = getattr(_local, "serial", False)
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = previous


def thread_count() -> int:
    """Threads for the cell loops: numba's setting (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``);
    1 inside :func:`single_threaded`."""
    if getattr(_local, "serial", False):
        return 1
    try:
        return max(1, int(numba.get_num_threads()))
    except Exception:  # noqa: BLE001 - e.g. the threading layer cannot start: run serially
        return 1


def run_in_threads(kernel: Callable[[int, int], None], cells: int, *, min_cells: int = 64) -> None:
    """Call ``kernel(start, stop)`` on contiguous ranges of cells, in parallel threads.

    The kernels release the GIL, so the threads run on separate cores. Small jobs run in the
    calling thread (a thread pool costs ~0.1 ms).
    """
    threads = min(thread_count(), os.cpu_count() or 1, max(1, cells // min_cells))
    if threads <= 1:
        kernel(0, cells)
        return
    bounds = np.linspace(0, cells, threads + 1).astype(np.int64)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(kernel, int(bounds[i]), int(bounds[i + 1])) for i in range(threads)]
        for future in futures:
            future.result()


@numba.njit(**_JIT)
def finite_range(values: NDArray[np.float64]) -> tuple[int, float, float]:
    """Number, minimum and maximum of the finite values of a C-contiguous array, without the
    temporary copies of ``values[np.isfinite(values)]``."""
    flat = values.reshape(-1)
    count = 0
    low, high = math.inf, -math.inf
    for v in flat:
        if math.isfinite(v):
            count += 1
            low = min(low, v)
            high = max(high, v)
    return count, low, high


# --------------------------------------------------------------------------------------------------
# SM2RAIN daily calibration (method="fast"), one cell at a time
# --------------------------------------------------------------------------------------------------


@numba.njit(**_JIT)
def _clip(x: float, lo: float, hi: float) -> float:
    # np.clip semantics: NaN stays NaN
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


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
def _fmax(x: float, y: float) -> float:
    # np.fmax: NaN is ignored unless both are NaN
    if x != x:
        return y
    if y != y:
        return x
    return x if x >= y else y


@numba.njit(**_JIT)
def _fmin(x: float, y: float) -> float:
    return -_fmax(-x, -y)


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


#: Cody-Waite split of ln 2 and 1/ln 2 for :func:`_powers`.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.44269504088896338700e00


@numba.njit(**_JIT)
def _powers(log_s: NDArray[np.float64], b: float, power: NDArray[np.float64], exponent: NDArray[np.int64]) -> None:
    """``power = exp(b * log_s)``, vectorisable: libm's scalar ``exp`` was half the cost of a pass.

    exp(x) = 2^k exp(r) with k = round(x / ln 2), r = x - k ln 2 (Cody-Waite, |r| <= ln 2 / 2),
    exp(r) by its Taylor polynomial of degree 13 (truncation < 1e-17), 2^k added to the exponent
    bits. Agrees with libm to a few ulp. x < -708 (below the normal range) gives 0: s^b of s = 0
    (``LOG_ZERO``) is exactly 0 as before.
    """
    size = log_s.size
    for t in range(size):
        x = log_s[t] * b
        k = math.floor(x * _LOG2E + 0.5)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        normal = x >= -708.0
        power[t] = p if normal else 0.0
        exponent[t] = np.int64(k) << 52 if normal else 0
    bits = power.view(np.int64)
    for t in range(size):
        bits[t] += exponent[t]


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


# --------------------------------------------------------------------------------------------------
# Soil water index filter (exponential, optionally wetness-dependent), one cell at a time
# --------------------------------------------------------------------------------------------------


@numba.njit(**_JIT)
def _power(x: float, p: float) -> float:
    """``x ** p`` for x >= 0 as exp(p log x) (libm's pow costs several exp), with pow's x ** 0 = 1
    (also for x = 0, the first step of a dry series)."""
    if p == 0.0:
        return 1.0
    return math.exp(p * math.log(x))


#: Rows filtered side by side: the recursion is sequential in time, so one row at a time waits on
#: the latency of exp/pow at every step; interleaving rows keeps the core busy.
_FILTER_ROWS = 32


@numba.njit(**_JIT)
def exponential_filter_rows(data: NDArray[np.float64], T: NDArray[np.float64], T_pot: NDArray[np.float64],
                            wetness: bool, dt: float, iterations: int, start: int, stop: int,
                            out: NDArray[np.float64]) -> None:
    """Recursive exponential filter (Albergel et al. 2008; IRPI ``swi_pot_nan`` with ``wetness``)
    of the rows ``start:stop``; gaps are skipped and the decay follows the elapsed time."""
    steps = data.shape[1]
    swi = np.empty(_FILTER_ROWS)
    gain = np.empty(_FILTER_ROWS)
    elapsed = np.empty(_FILTER_ROWS)
    started = np.empty(_FILTER_ROWS, dtype=np.bool_)
    for first in range(start, stop, _FILTER_ROWS):
        last = min(first + _FILTER_ROWS, stop)
        swi[:] = math.nan
        gain[:] = 1.0
        elapsed[:] = 0.0
        started[:] = False
        for k in range(steps):
            for i in range(last - first):
                row = first + i
                x = data[row, k]
                ok = x == x
                elapsed[i] += dt
                if ok and started[i]:
                    s, g, e = swi[i], gain[i], elapsed[i]
                    if not wetness:
                        g_new = g / (g + math.exp(-e / T[row]))
                        new = s + g_new * (x - s)
                    else:
                        # T SWI^-Tpot as exp(-Tpot log SWI): libm's pow costs several exp
                        pot = T_pot[row]
                        t_now = T[row] * _power(s, -pot)
                        new = s
                        g_new = g
                        for _ in range(max(iterations, 1)):
                            g_new = g / (g + math.exp(-e / t_now))
                            new = s + g_new * (x - s)
                            t_now = T[row] * _power(new, -pot)
                    swi[i] = new
                    gain[i] = g_new
                elif ok:
                    swi[i] = x
                if ok:
                    started[i] = True
                    elapsed[i] = 0.0
                    out[row, k] = swi[i]
                else:
                    out[row, k] = math.nan


# --------------------------------------------------------------------------------------------------
# Triple collocation: moments of the common samples, and the moving-block bootstrap
# --------------------------------------------------------------------------------------------------


@numba.njit(**_SUMS)
def _anomalies(a: float, b: float, d: float, ma: float, mb: float, md: float) -> tuple[bool, float, float, float]:
    """Whether a step is a common sample, and its anomalies (exact zeros where it is not)."""
    ok = (a == a) & (b == b) & (d == d)
    return ok, (a - ma if ok else 0.0), (b - mb if ok else 0.0), (d - md if ok else 0.0)


@numba.njit(**_SUMS)
def tc_moments(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64], start: int, stop: int,
               n_out: NDArray[np.int64], mean_out: NDArray[np.float64], cov_out: NDArray[np.float64]) -> None:
    """Count, means and covariances (ddof=1) on the common finite samples of the cells ``start:stop``.

    Cross-products about a provisional mean (that of the first 16 common samples) with the exact
    correction for the remaining offset, sum (a - m)(b - m') = S_ab - S_a S_b / n: one pass over
    the data, branch-free (masked samples contribute exact zeros), vectorised by the compiler.
    """
    steps = x.shape[1]
    for c in range(start, stop):
        xr, yr, zr = x[c], y[c], z[c]
        thin = 0
        px = py = pz = 0.0
        for t in range(steps):
            a, b, d = xr[t], yr[t], zr[t]
            if a == a and b == b and d == d:
                thin += 1
                px += a
                py += b
                pz += d
                if thin == 16:
                    break
        m = max(thin, 1)
        px, py, pz = px / m, py / m, pz / m
        n = 0
        sx = sy = sz = sxx = syy = szz = sxy = sxz = syz = 0.0
        for t in range(steps):
            ok, a, b, d = _anomalies(xr[t], yr[t], zr[t], px, py, pz)
            n += ok
            sx += a
            sy += b
            sz += d
            sxx += a * a
            syy += b * b
            szz += d * d
            sxy += a * b
            sxz += a * d
            syz += b * d
        n_out[c] = n
        mean_out[0, c] = px + sx / n
        mean_out[1, c] = py + sy / n
        mean_out[2, c] = pz + sz / n
        scale = (n - 1) if n > 1 else math.nan
        cross = ((0, 0, sxx, sx, sx), (1, 1, syy, sy, sy), (2, 2, szz, sz, sz),
                 (0, 1, sxy, sx, sy), (0, 2, sxz, sx, sz), (1, 2, syz, sy, sz))
        for i, j, s_ij, s_i, s_j in cross:
            value = (s_ij - s_i * s_j / n) / scale
            cov_out[i, j, c] = value
            cov_out[j, i, c] = value


@numba.njit(**_SUMS)
def _common_mean(xr: NDArray[np.float64], yr: NDArray[np.float64], zr: NDArray[np.float64]
                 ) -> tuple[int, float, float, float]:
    """Number of common finite samples of one cell and the means of x, y, z on them."""
    n = 0
    mx = my = mz = 0.0
    for t in range(xr.size):
        a, b, d = xr[t], yr[t], zr[t]
        ok = (a == a) & (b == b) & (d == d)
        n += ok
        mx += a if ok else 0.0
        my += b if ok else 0.0
        mz += d if ok else 0.0
    return n, mx / n, my / n, mz / n


@numba.njit(**_SUMS)
def lag1_autocorrelation(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64], start: int,
                         stop: int, out: NDArray[np.float64]) -> None:
    """Lag-1 autocorrelation (3, cells) of each data set's anomalies on the common samples of the
    cells ``start:stop`` (lagged products over pairs of consecutive common samples)."""
    steps = x.shape[1]
    for c in range(start, stop):
        xr, yr, zr = x[c], y[c], z[c]
        n, mx, my, mz = _common_mean(xr, yr, zr)
        both = 0
        lx = ly = lz = vx = vy = vz = 0.0
        px = py = pz = 0.0  # anomalies of the previous step (0 where masked)
        for t in range(steps):
            ok, a, b, d = _anomalies(xr[t], yr[t], zr[t], mx, my, mz)
            lx += a * px
            ly += b * py
            lz += d * pz
            vx += a * a
            vy += b * b
            vz += d * d
            if t > 0:
                previous_ok = (xr[t - 1] == xr[t - 1]) & (yr[t - 1] == yr[t - 1]) & (zr[t - 1] == zr[t - 1])
                both += ok & previous_ok
            px, py, pz = a, b, d
        out[0, c] = (lx / both) / (vx / n)
        out[1, c] = (ly / both) / (vy / n)
        out[2, c] = (lz / both) / (vz / n)


@numba.njit(**_SUMS)
def _cumulative_terms(xr: NDArray[np.float64], yr: NDArray[np.float64], zr: NDArray[np.float64],
                      cumulative: NDArray[np.float64]) -> None:
    """Cumulative sums (time + 1, 10) of the per-step TC terms on the common samples, centred on
    the cell's common-sample means: count, x, y, z, xx, yy, zz, xy, xz, yz (zero where masked)."""
    steps = xr.size
    _, mx, my, mz = _common_mean(xr, yr, zr)
    cumulative[0, :] = 0.0
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = 0.0
    for t in range(steps):
        ok, a, b, d = _anomalies(xr[t], yr[t], zr[t], mx, my, mz)
        s0 += 1.0 if ok else 0.0
        s1 += a
        s2 += b
        s3 += d
        s4 += a * a
        s5 += b * b
        s6 += d * d
        s7 += a * b
        s8 += a * d
        s9 += b * d
        row = cumulative[t + 1]
        row[0], row[1], row[2], row[3], row[4] = s0, s1, s2, s3, s4
        row[5], row[6], row[7], row[8], row[9] = s5, s6, s7, s8, s9


@numba.njit(**_JIT)
def _tc_resample(sums: NDArray[np.float64], metrics: NDArray[np.float64]) -> bool:
    """TC metrics of one resample from its ten sums: error variance, sign R^2 (for the correlation
    with the truth), signal / error variance (for the SNR), scaling; 3 each. False where unresolved (the rules of ``tc_from_moments`` with
    ``min_samples=3, min_pair_correlation=-1``)."""
    n = sums[0]
    fx, fy, fz = sums[1] / n, sums[2] / n, sums[3] / n
    c00 = (sums[4] - n * fx * fx) / (n - 1)
    c11 = (sums[5] - n * fy * fy) / (n - 1)
    c22 = (sums[6] - n * fz * fz) / (n - 1)
    c01 = (sums[7] - n * fx * fy) / (n - 1)
    c02 = (sums[8] - n * fx * fz) / (n - 1)
    c12 = (sums[9] - n * fy * fz) / (n - 1)
    ok = n >= 3
    ok &= c01 / math.sqrt(c00 * c11) >= -1.0
    ok &= c02 / math.sqrt(c00 * c22) >= -1.0
    ok &= c12 / math.sqrt(c11 * c22) >= -1.0
    signal = (c01 * c02 / c12, c01 * c12 / c02, c02 * c12 / c01)
    diagonal = (c00, c11, c22)
    sign = (1.0, np.sign(c02 * c12), np.sign(c01 * c12))
    scaling = (1.0, c12 / c02, c12 / c01)
    for i in range(3):
        error_variance = diagonal[i] - signal[i]
        rho2 = signal[i] / diagonal[i]
        ok &= (error_variance > 0) & (rho2 > 0) & (rho2 <= 1)
        metrics[i] = error_variance
        # sign R^2 and signal / error variance: monotone in R and SNR, which are taken of the
        # selected order statistics only (see _intervals)
        metrics[3 + i] = sign[i] * rho2
        metrics[6 + i] = signal[i] / error_variance
        metrics[9 + i] = scaling[i]
    return ok


@numba.njit(**_JIT)
def _smallest(values: NDArray[np.float64], count: int, sign: float, buffer: NDArray[np.float64], k: int) -> None:
    """The ``k`` smallest of ``sign * values[:count]``, sorted, into ``buffer[:k]`` (insertion into a
    sorted buffer: after the first values most candidates are rejected by one comparison)."""
    size = 0
    for i in range(count):
        v = sign * values[i]
        if size == k and not v < buffer[k - 1]:
            continue
        j = size if size < k else k - 1
        while j > 0 and buffer[j - 1] > v:
            buffer[j] = buffer[j - 1]
            j -= 1
        buffer[j] = v
        if size < k:
            size += 1


@numba.njit(**_JIT)
def _metric(m: int, v: float) -> float:
    """Metric m from its stored stand-in (R from sign R^2, SNR [dB] from the power ratio)."""
    if 3 <= m < 6:
        return math.copysign(math.sqrt(abs(v)), v)
    if 6 <= m < 9:
        return 10.0 * math.log10(v)
    return v


@numba.njit(**_JIT)
def _intervals(sums: NDArray[np.float64], tail: float, values: NDArray[np.float64], metrics: NDArray[np.float64],
               counts: NDArray[np.int64], lower: NDArray[np.float64], upper: NDArray[np.float64]) -> int:
    """Percentile bounds (numpy's 'linear' quantiles at ``tail`` and ``1 - tail``) of the 12 metrics
    over the resolved resamples, from the sums (10, resamples); returns the number resolved.

    Only the two order statistics around each quantile are needed: they are selected among the
    stand-ins of :func:`_tc_resample` (monotone in the metric, so the same resamples) and then
    transformed, and interpolated as numpy does."""
    resamples = sums.shape[1]
    counts[:] = 0
    resolved = 0
    for r in range(resamples):
        if _tc_resample(sums[:, r], metrics):
            resolved += 1
            for m in range(12):
                v = metrics[m]
                if math.isfinite(v) and (v > 0 or not 6 <= m < 9):  # the SNR of a ratio 0 is -inf
                    values[m, counts[m]] = v
                    counts[m] += 1
    buffer = np.empty(resamples + 1)
    for m in range(12):
        count = counts[m]
        if count == 0:
            lower[m] = upper[m] = math.nan
            continue
        for q in range(2):
            position = (tail if q == 0 else 1.0 - tail) * (count - 1)
            below = int(math.floor(position))
            above = min(below + 1, count - 1)
            if q == 0:
                _smallest(values[m], count, 1.0, buffer, above + 1)
                lo, hi = buffer[below], buffer[above]
            else:  # from the top: the j-th largest is the (count - 1 - j)-th smallest
                _smallest(values[m], count, -1.0, buffer, count - below)
                lo, hi = -buffer[count - 1 - below], -buffer[count - 1 - above]
            lo, hi = _metric(m, lo), _metric(m, hi)
            value = lo + (position - below) * (hi - lo)
            if q == 0:
                lower[m] = value
            else:
                upper[m] = value
    return resolved


@numba.njit(**_JIT)
def bootstrap_gather(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
                     rows: NDArray[np.int64], start: int, stop: int, length: int, step: int,
                     draws: NDArray[np.int64], partial: int, tail: float, lower: NDArray[np.float64],
                     upper: NDArray[np.float64], resolved: NDArray[np.int64]) -> None:
    """Moving-block bootstrap intervals of the cells ``rows[start:stop]``, sums gathered per draw.

    A resample concatenates ``draws.shape[1]`` blocks of ``length`` steps starting at ``step * draws``
    (the last one truncated to ``partial`` steps when ``partial > 0``); its ten sums are sums of
    block sums, differences of the cumulative sums. Writes (12, cells) bounds and the number of
    resolved resamples per cell.
    """
    steps = x.shape[1]
    resamples, blocks = draws.shape
    full = blocks - 1 if partial > 0 else blocks
    n_starts = (steps - length) // step + 1
    cumulative = np.empty((steps + 1, 10))
    block = np.empty((n_starts, 10))
    sums = np.empty((10, resamples))
    acc = np.empty(10)
    values = np.empty((12, resamples))
    metrics = np.empty(12)
    counts = np.empty(12, dtype=np.int64)
    out_lo = np.empty(12)
    out_hi = np.empty(12)
    for i in range(start, stop):
        c = rows[i]
        _cumulative_terms(x[c], y[c], z[c], cumulative)
        for j in range(n_starts):
            block[j, :] = cumulative[j * step + length, :] - cumulative[j * step, :]
        for r in range(resamples):
            # ten scalar accumulators: independent add chains (an array would go through memory)
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = 0.0
            for d in range(full):
                b = block[draws[r, d]]
                a0 += b[0]
                a1 += b[1]
                a2 += b[2]
                a3 += b[3]
                a4 += b[4]
                a5 += b[5]
                a6 += b[6]
                a7 += b[7]
                a8 += b[8]
                a9 += b[9]
            acc[0], acc[1], acc[2], acc[3], acc[4] = a0, a1, a2, a3, a4
            acc[5], acc[6], acc[7], acc[8], acc[9] = a5, a6, a7, a8, a9
            if partial > 0:
                j = draws[r, blocks - 1] * step
                for k in range(10):
                    acc[k] += cumulative[j + partial, k] - cumulative[j, k]
            sums[:, r] = acc
        resolved[c] = _intervals(sums, tail, values, metrics, counts, out_lo, out_hi)
        lower[:, c] = out_lo
        upper[:, c] = out_hi


@numba.njit(**_JIT)
def bootstrap_block_sums(x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
                         rows: NDArray[np.int64], start: int, stop: int, length: int, step: int,
                         last: NDArray[np.int64], partial: int, block: NDArray[np.float64],
                         tails: NDArray[np.float64]) -> None:
    """Block sums (cells, 10, starts) at the lattice starts and the sums of the truncated last block
    of each resample (cells, 10, resamples) of the cells ``rows[start:stop]`` (local index i)."""
    steps = x.shape[1]
    n_starts = block.shape[2]
    cumulative = np.empty((steps + 1, 10))
    for i in range(start, stop):
        c = rows[i]
        _cumulative_terms(x[c], y[c], z[c], cumulative)
        for k in range(10):
            for j in range(n_starts):
                block[i, k, j] = cumulative[j * step + length, k] - cumulative[j * step, k]
            if partial > 0:
                for r in range(last.size):
                    j = last[r] * step
                    tails[i, k, r] = cumulative[j + partial, k] - cumulative[j, k]


@numba.njit(**_JIT)
def bootstrap_from_sums(sums: NDArray[np.float64], rows: NDArray[np.int64], start: int, stop: int, tail: float,
                        lower: NDArray[np.float64], upper: NDArray[np.float64],
                        resolved: NDArray[np.int64]) -> None:
    """Intervals of the cells ``rows[start:stop]`` from their resample sums (cells, 10, resamples)."""
    resamples = sums.shape[2]
    values = np.empty((12, resamples))
    metrics = np.empty(12)
    counts = np.empty(12, dtype=np.int64)
    out_lo = np.empty(12)
    out_hi = np.empty(12)
    for i in range(start, stop):
        c = rows[i]
        resolved[c] = _intervals(sums[i], tail, values, metrics, counts, out_lo, out_hi)
        lower[:, c] = out_lo
        upper[:, c] = out_hi


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every kernel the public functions use; returns the
    seconds it took.

    The first call on a machine compiles for ~15-20 s (2 cores); later processes load the cache in
    ~1 s. Call it where the science stack is preloaded (e.g. the Airflow executor), or once after
    installing, so that no task pays the compilation.
    """
    import time

    from smflow.science.bootstrap import triple_collocation_ci
    from smflow.science.sm2rain import calibrate_sm2rain, exponential_filter
    from smflow.science.tc import triple_collocation

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    s = rng.random((2, 120))
    rain = rng.gamma(0.5, 5.0, (2, 120))
    for objective in ("rmse", "kge"):
        calibrate_sm2rain(s, rain, objective=objective, min_samples=3)
    calibrate_sm2rain(s, rain, delta_s_threshold=0.001, min_samples=3)
    exponential_filter(s, np.array([1.0, 2.0]))
    exponential_filter(s, np.array([1.0, 2.0]), T_pot=np.array([0.1, 0.2]))
    truth = rng.normal(size=(1, 2, 120))
    x, y, z = truth + 0.3 * rng.normal(size=(3, 2, 120))
    triple_collocation(x, y, z)
    for block in (1, 20):
        for precision in ("float32", "float64"):
            triple_collocation_ci(x, y, z, n_resamples=10, block=block, precision=precision, seed=0)
    return time.perf_counter() - start
