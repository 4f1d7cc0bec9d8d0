"""Shared pieces of the benchmarks: machine description, synthetic data, timing helpers.

The benchmarks import the science core from this work tree (no install needed) and run the
reference implementations in the same process on identical data.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

#: Reference cost figures quoted in the issue, for the 250k-cell extrapolation.
GRID_CELLS = 250_000
DAYS = 3650


def machine() -> str:
    """One line describing the machine the numbers come from."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    import scipy

    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}, {platform.system()} {platform.release()}")


#: Threads the compiled kernels use by default (numba's setting; the machine's cores).
THREADS = 1


def timed_on_threads(fn: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """Best of two wall times [s] of ``fn`` on all of numba's threads and on one thread (the
    per-core cost), and the result."""
    global THREADS
    import numba

    THREADS = numba.get_num_threads()
    all_threads, result = best_time(fn, repeat=2)
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    try:
        with threadpool_limits(1):  # BLAS too (the i.i.d. bootstrap's matrix products)
            one, _ = best_time(fn, repeat=2)
    finally:
        numba.set_num_threads(THREADS)
    return (all_threads, one), result


def best_time(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Smallest wall time [s] of `repeat` runs and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def synthetic_sm2rain(cells: int, days: int, seed: int, *, gap_fraction: float = 0.02,
                      noise: float = 0.01) -> dict[str, np.ndarray]:
    """Daily saturation and gauge rain for `cells` cells with known SM2RAIN parameters.

    The true saturation follows a soil-water balance driven by intermittent rain (explicit
    scheme, vectorised over cells); the observed saturation adds sensor noise and gaps; the gauge
    records the rain that fell. Parameters vary per cell over realistic ranges (Z 30-150 mm,
    a 2-40 mm/day, b 2-15).
    """
    rng = np.random.default_rng(seed)
    z = rng.uniform(30, 150, cells)
    a = rng.uniform(2, 40, cells)
    b = rng.uniform(2, 15, cells)
    wet_fraction = rng.uniform(0.15, 0.45, cells)[:, None]
    rain = np.where(rng.random((cells, days)) < wet_fraction, rng.gamma(0.7, 12.0, (cells, days)), 0.0)
    s = np.empty((cells, days))
    s[:, 0] = rng.uniform(0.2, 0.8, cells)
    for t in range(1, days):
        previous = s[:, t - 1]
        s[:, t] = np.clip(previous + (rain[:, t] - a * previous**b) / z, 0.0, 1.0)
    observed = np.clip(s + rng.normal(0.0, noise, s.shape), 0.0, 1.0)
    observed[rng.random(s.shape) < gap_fraction] = np.nan
    gauge = rain.copy()
    gauge[:, 0] = np.nan
    return {"s": observed, "p_obs": gauge, "Z": z, "a": a, "b": b}


def run_fresh(script: str, *args: str) -> dict[str, Any]:
    """Run ``script --one *args`` in a fresh interpreter (its peak memory is its own) and return
    the JSON record it prints last.

    Raises
    ------
    RuntimeError
        The run failed; the message is its last line of stderr.
    """
    import json
    import subprocess

    out = subprocess.run([sys.executable, script, "--one", *args], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(script)))
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        raise RuntimeError(lines[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])
