"""Compiled per-cell kernels of the science core (numba): SM2RAIN calibration, SWI filters, TC sums.

Private package. The public functions of :mod:`smflow.science.sm2rain`, :mod:`~smflow.science.tc`
and :mod:`~smflow.science.bootstrap` validate their inputs, call these kernels cell by cell and
assemble the results. Each kernel fuses what numpy had to do in a dozen separate passes over the
series (every temporary array of numpy costs a pass through memory): one loop over the time steps
of one cell does all the arithmetic of a stage while the cell's data sit in the CPU caches.

Modules, along the seams of the science core:

- :mod:`~smflow.science._kernels.common`: compiler options, the thread pool of the cell loops
  (:func:`run_in_threads`, :func:`single_threaded`), :func:`finite_range` and shared scalar math
  (clip, NaN-aware min/max, the vectorisable ``exp`` :func:`_powers`);
- :mod:`~smflow.science._kernels.sm2rain_objective`: the (Z, a) least squares and the RMSE / KGE
  score of the SM2RAIN daily calibration;
- :mod:`~smflow.science._kernels.sm2rain_calibration`: the search over b, :func:`sm2rain_daily`;
- :mod:`~smflow.science._kernels.swi`: the soil water index filter;
- :mod:`~smflow.science._kernels.tc`: triple-collocation moments and lag-1 autocorrelation;
- :mod:`~smflow.science._kernels.bootstrap`: the moving-block bootstrap of the TC metrics.

The kernels release the GIL (``nogil=True``): :func:`run_in_threads` splits the cells over
threads (numba's thread count, ``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``), and dask's
threaded scheduler runs chunks side by side. They are compiled once and cached on disk
(``cache=True``, in ``__pycache__`` beside each module). ``error_model="numpy"``: a division by
zero gives inf/NaN as in numpy (the callers test for finiteness) instead of raising. ``fastmath``
is off: sums are accumulated in order, so results agree with the numpy formulation to rounding.

numba's cache is keyed by the source file of the kernel it compiles: a kernel that inlines a
helper from another module (e.g. :func:`_powers` of ``common``) is not recompiled when only that
helper's file changes. After editing ``common.py`` or ``sm2rain_objective.py``, delete
``smflow/science/_kernels/__pycache__/*.nb[ic]`` (or touch the modules that call the helper).

:func:`smflow.science.warmup.warm_up` compiles (or loads) every kernel; it lives above the
kernels' users so that this package imports none of them.
"""

from __future__ import annotations

from smflow.science._kernels.bootstrap import (
    _intervals,
    _tc_resample,
    bootstrap_block_sums,
    bootstrap_from_sums,
    bootstrap_gather,
)
from smflow.science._kernels.common import (
    LOG_ZERO,
    _powers,
    finite_range,
    run_in_threads,
    single_threaded,
    thread_count,
)
from smflow.science._kernels.sm2rain_calibration import SCAN_MARGIN, sm2rain_daily
from smflow.science._kernels.sm2rain_objective import OBJECTIVE_KGE, OBJECTIVE_RMSE
from smflow.science._kernels.swi import exponential_filter_rows
from smflow.science._kernels.tc import lag1_autocorrelation, tc_moments

__all__ = [
    "LOG_ZERO",
    "OBJECTIVE_KGE",
    "OBJECTIVE_RMSE",
    "SCAN_MARGIN",
    "bootstrap_block_sums",
    "bootstrap_from_sums",
    "bootstrap_gather",
    "exponential_filter_rows",
    "finite_range",
    "lag1_autocorrelation",
    "run_in_threads",
    "single_threaded",
    "sm2rain_daily",
    "tc_moments",
    "thread_count",
]
