"""Compile (or load from numba's on-disk cache) every kernel of the science core, once per process.

It sits above the kernels' users (:mod:`~smflow.science.sm2rain`, :mod:`~smflow.science.tc`,
:mod:`~smflow.science.bootstrap`) and calls their public functions on small inputs, so that it
compiles exactly the type signatures the pipeline uses, while :mod:`smflow.science._kernels`
imports none of its users.
"""

from __future__ import annotations

import time

import numpy as np

from smflow.science.bootstrap import triple_collocation_ci
from smflow.science.sm2rain import calibrate_sm2rain, exponential_filter
from smflow.science.tc import triple_collocation


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every kernel the public functions use.

    The first call on a machine compiles for ~15-20 s (2 cores); later processes load the cache in
    ~1 s. Call it where the science stack is preloaded (e.g. the Airflow executor), or once after
    installing, so that no task pays the compilation.

    Returns
    -------
    float
        Seconds it took (wall clock).
    """
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
