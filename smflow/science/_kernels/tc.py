"""Triple collocation: count, means and covariances on the common samples of each cell, their
lag-1 autocorrelation, and the cumulative per-step terms the block bootstrap sums.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from smflow.science._kernels.common import _SUMS


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
