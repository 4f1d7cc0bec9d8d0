"""Moving-block bootstrap of the TC metrics: per-resample metrics from block sums, and the
percentile intervals of every cell."""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from smflow.science._kernels.common import _JIT
from smflow.science._kernels.tc import _cumulative_terms


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
