"""Shared pieces of the compiled kernels: compiler options, the thread pool of the cell loops,
and small scalar / vectorisable math used by several kernels.

``_JIT`` / ``_SUMS`` are the options of every kernel (see :mod:`smflow.science._kernels`).
:func:`_powers` is the vectorisable ``exp(b * log s)`` of the SM2RAIN calibration.
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


@numba.njit(**_JIT)
def _clip(x: float, lo: float, hi: float) -> float:
    # np.clip semantics: NaN stays NaN
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


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
