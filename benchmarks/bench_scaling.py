"""Scaling: wall time and peak memory against the number of cells and the series length.

Each configuration runs in a fresh process (so the peak memory is its own): SM2RAIN calibration
and TC point metrics for 10^3 ... 2.5 10^5 cells of 3,650 days, streamed through dask chunks of
cells (the inputs are generated block by block and never exist whole: each worker makes a pool of
2,048 distinct synthetic cells once, ~1-3 s included in the times, and serves rolled slices of
it), and the TC bootstrap for
10^3 ... 10^4 cells; then 10^3 cells for series of 365 ... 7,300 days.

    benchmarks/.venv-bench/bin/python benchmarks/bench_scaling.py            # full table (~10 min)
    benchmarks/.venv-bench/bin/python benchmarks/bench_scaling.py --quick    # small sizes only
    benchmarks/.venv-bench/bin/python benchmarks/bench_scaling.py --quick --grid-row  # + 250k x 3,650
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import _common

POOL = 2048
_CACHE: dict[tuple[str, int], object] = {}


def _sm2rain_pool(days: int) -> tuple[np.ndarray, np.ndarray]:
    data = _common.synthetic_sm2rain(POOL, days, seed=99)
    return data["s"], data["p_obs"]


def _tc_pool(days: int) -> np.ndarray:
    from bench_tc import synthetic

    return synthetic(POOL // 4, days, seed=5)


def _pool_for(source: str, days: int):
    """The pool of synthetic cells of this worker process, made on first use.

    A module-level function: closures shipped to the workers refer to it by name, so the cache
    lives in the worker (a closure over the dict itself would carry a fresh copy in every task).
    """
    key = (source, days)
    if key not in _CACHE:
        _CACHE[key] = _sm2rain_pool(days) if source == "sm2rain" else _tc_pool(days)
    return _CACHE[key]


def _blocks(cells: int, days: int, chunk: int, source: str, which: int):
    """Dask array (cells, days) whose blocks are rolled slices of a per-process pool of distinct cells."""
    import dask.array as da

    def fn(block_info: dict | None = None) -> np.ndarray:
        info = block_info[None]
        pool = _pool_for(source, days)[which]
        index = info["chunk-location"][0]
        rows = (np.arange(info["chunk-shape"][0]) + index * chunk) % POOL
        return np.roll(pool[rows], index % 97, axis=-1)

    sizes = (chunk,) * (cells // chunk) + ((cells % chunk,) if cells % chunk else ())
    return da.map_blocks(fn, dtype=float, chunks=(sizes, (days,)))


def run_one(kind: str, cells: int, days: int, workers: int, scheduler: str = "threads") -> dict:
    import dask
    import dask.array as da

    from bench_sm2rain import PeakMemory
    from smflow.science import _kernels
    from smflow.science.bootstrap import triple_collocation_ci
    from smflow.science.sm2rain import calibrate_sm2rain
    from smflow.science.tc import triple_collocation

    chunk = 512
    with dask.config.set(scheduler=scheduler, num_workers=workers), PeakMemory() as memory:
        t0 = time.perf_counter()
        if kind == "sm2rain":
            s, p = _blocks(cells, days, chunk, "sm2rain", 0), _blocks(cells, days, chunk, "sm2rain", 1)
            calibrate_sm2rain(s, p, chunk_cells=chunk)
        else:
            sizes = (chunk,) * (cells // chunk) + ((cells % chunk,) if cells % chunk else ())
            bootstrap = kind == "tc_bootstrap"

            def block(block_info: dict | None = None) -> np.ndarray:
                # generation and TC in one task: only the per-cell results leave the worker
                info = block_info[None]
                index = info["chunk-location"][0]
                rows = (np.arange(info["chunk-shape"][0]) + index * chunk) % (POOL // 4)
                x, y, z = np.roll(_pool_for("tc", days)[:, rows], index % 97, axis=-1)
                with _kernels.single_threaded():  # dask runs the chunks in parallel
                    return _tc_block(x, y, z)

            def _tc_block(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
                if bootstrap:
                    r = triple_collocation_ci(x, y, z, n_resamples=1000, seed=1)
                    return np.concatenate([r.error_variance.lower, r.error_variance.upper]).T
                return triple_collocation(x, y, z).error_variance.T

            da.map_blocks(block, dtype=float, chunks=(sizes, (6 if bootstrap else 3,))).compute()
        seconds = time.perf_counter() - t0
    return {"kind": kind, "cells": cells, "days": days, "seconds": seconds, "peak_gib": memory.peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", nargs=3, metavar=("KIND", "CELLS", "DAYS"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--scheduler", default="threads", choices=("threads", "processes"),
                        help="dask scheduler (the compiled kernels release the GIL: threads share one "
                             "process, its memory and its JIT cache)")
    parser.add_argument("--grid-row", action="store_true",
                        help="with --quick: also the 250,000 x 3,650 SM2RAIN row")
    args = parser.parse_args()
    if args.one:
        # Import this file as a module: functions defined in __main__ are pickled by value for the
        # worker processes, together with the pool cache, which would then be rebuilt per task.
        import bench_scaling

        kind, cells, days = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(bench_scaling.run_one(kind, cells, days, args.workers, args.scheduler)))
        return
    print(f"machine: {_common.machine()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}; dask scheduler {args.scheduler}, {args.workers} workers, "
          "chunks of 512 cells")
    big = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 250_000]
    configs = [("sm2rain", c, 3650) for c in big] + [("tc", c, 3650) for c in big]
    configs += [("tc_bootstrap", c, 3650) for c in ([1_000] if args.quick else [1_000, 10_000])]
    configs += [(k, 1_000, d) for k in ("sm2rain", "tc", "tc_bootstrap") for d in (365, 1825, 7300)]
    if args.quick and args.grid_row:
        configs.append(("sm2rain", 250_000, 3650))
    print("| computation | cells | days | wall time [s] | us per cell | peak memory [GiB] |")
    print("|---|---|---|---|---|---|")
    for kind, cells, days in configs:
        try:
            r = _common.run_fresh(__file__, kind, str(cells), str(days), "--workers", str(args.workers),
                                  "--scheduler", args.scheduler)
        except RuntimeError as exc:
            print(f"| {kind} | {cells} | {days} | failed: {exc} | | |")
            continue
        print(f"| {kind} | {cells:,} | {days:,} | {r['seconds']:.1f} | {r['seconds'] / cells * 1e6:.0f} | "
              f"{r['peak_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
