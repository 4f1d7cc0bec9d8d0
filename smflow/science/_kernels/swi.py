"""Soil water index filter (exponential, optionally wetness-dependent), one cell at a time."""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from smflow.science._kernels.common import _JIT


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
