"""Daily science at scale: wall time and peak memory against the number of cells (issue 16).

Each configuration runs in a fresh process (its peak resident memory, ``ru_maxrss``, is its own):
the day's TC merging, TC bootstrap diagnostics (500 resamples) and SM2RAIN rainfall over 180-day
windows of three parents and the soil temperature, for 10^3 ... 10^6 cells, through the project's
public function :func:`smflow.daily.daily_science` with its defaults (bands of
``CHUNK_CELLS`` cells; dask's threaded scheduler, ``SMFLOW_DASK_SCHEDULER`` unset).

Modes (``--mode``):

* ``lazy``: the windows are dask arrays made band by band (what a chunked store hands over): the
  inputs never exist whole, so the peak should not grow with the domain;
* ``memory``: the windows are numpy arrays in memory before the science starts (what the
  per-day-object store of ``smflow.store`` hands over today): the peak is the inputs plus the
  tasks in flight;
* ``before``: the whole-domain computation as ``smflow.daily`` made it before issue 16 (one call
  of each public function over all cells, ``apply_tc_merging`` as it was), for comparison.

The synthetic inputs are labelled as such: a pool of 4,096 distinct cells (AR(1) truth with a
persistence from 0.05 to 0.97, three parents with known gains, offsets and AR(1) errors, 5 % gaps,
soil temperature around 285 K with frozen spells) served as rolled slices, TC merging parameters
fitted on the pool and SM2RAIN parameters drawn over realistic ranges.

    .venv/bin/python benchmarks/bench_daily_memory.py                 # full table (~10 min)
    .venv/bin/python benchmarks/bench_daily_memory.py --quick         # 10^3 ... 10^5, lazy
    .venv/bin/python benchmarks/bench_daily_memory.py --one lazy 400000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

import _common  # noqa: F401 - puts the work tree on sys.path

DAYS = 180
POOL = 4096
_POOL: dict[str, np.ndarray] = {}


def _pool() -> dict[str, np.ndarray]:
    """The synthetic cells of this process, made on first use: parents (3, DAYS, POOL), temperature."""
    if not _POOL:
        rng = np.random.default_rng(16)
        phi = np.linspace(0.05, 0.97, POOL)

        def ar1() -> np.ndarray:
            out = np.empty((DAYS, POOL))
            out[0] = rng.normal(size=POOL)
            for t in range(1, DAYS):
                out[t] = phi * out[t - 1] + rng.normal(size=POOL) * np.sqrt(1 - phi**2)
            return out

        truth = 0.25 + 0.05 * ar1()
        gain, offset, sigma = np.array([1.0, 0.7, 1.3]), np.array([0.02, -0.03, 0.05]), np.array([0.02, 0.015, 0.03])
        parents = np.stack([offset[k] + gain[k] * truth + sigma[k] * ar1() for k in range(3)])
        parents[rng.random(parents.shape) < 0.05] = np.nan
        temperature = 285.0 + 4.0 * rng.normal(size=(DAYS, POOL))
        temperature[:, : POOL // 20] -= 15.0
        _POOL.update(parents=parents, temperature=temperature)
    return _POOL


def _field_block(which: int, block_info: dict | None = None) -> np.ndarray:
    """Block (DAYS, rows, lon) of field `which` (0-2 parents, 3 temperature): rolled slices of the pool."""
    info = block_info[None]
    (t0, t1), (r0, r1), (c0, c1) = info["array-location"]
    nx = info["shape"][2]
    cells = (np.arange(r0, r1)[:, None] * nx + np.arange(c0, c1)[None]).reshape(-1)
    pool = _pool()
    source = pool["temperature"] if which == 3 else pool["parents"][which]
    values = np.roll(source[:, cells % POOL], (r0 // max(1, r1 - r0)) % 17, axis=0)
    return values.reshape(DAYS, r1 - r0, c1 - c0)


def _grid(cells: int) -> tuple[int, int]:
    nx = min(cells, 1000)
    return cells // nx, nx


def inputs(cells: int, lazy: bool):
    """(parents dict, temperature, merging parameters, SM2RAIN GridParameters) of a synthetic domain."""
    import dask.array as da

    from smflow.daily import CHUNK_CELLS
    from smflow.ml.models import PARENTS, GridParameters
    from smflow.science.merging import MergingParameters, fit_tc_merging

    ny, nx = _grid(cells)
    rows = max(1, CHUNK_CELLS // nx)
    chunks = ((DAYS,), tuple(min(rows, ny - r) for r in range(0, ny, rows)), (nx,))
    fields = [da.map_blocks(_field_block, k, dtype=np.float64, chunks=chunks) for k in range(4)]
    if not lazy:
        fields = [f.compute(scheduler="threads") for f in fields]
    pool = _pool()
    fitted = fit_tc_merging(np.moveaxis(pool["parents"], 1, 2)).to_dict()
    index = np.arange(ny * nx) % POOL
    merging = MergingParameters.from_dict({k: np.take(v, index, axis=-1) for k, v in fitted.items()})
    rng = np.random.default_rng(4)
    rain = {"Z": rng.uniform(30, 150, POOL), "a": rng.uniform(2, 40, POOL), "b": rng.uniform(2, 15, POOL),
            "saturation_lower": np.full(POOL, 0.12), "saturation_upper": np.full(POOL, 0.42)}
    rain_model = GridParameters(arrays={k: v[index].reshape(ny, nx) for k, v in rain.items()}, metadata={})
    return dict(zip(PARENTS, fields[:3])), fields[3], merging, rain_model


def _apply_tc_merging_before(params, data: np.ndarray):
    """``apply_tc_merging`` as it was before issue 16 (every temporary shaped (3, cells, time))."""
    from smflow.science.merging import (
        METHOD_ARITHMETIC_MEAN, METHOD_NO_DATA, METHOD_PARTIAL, METHOD_TC_LEAST_SQUARES, MergedResult,
    )

    expand = (slice(None), slice(None)) + (None,) * (data.ndim - 2)
    cell_expand = expand[1:]
    rescaled = params.offset[expand] + params.gain[expand] * data
    available = np.isfinite(rescaled)
    n_available = available.sum(axis=0)
    resolved = np.broadcast_to(params.resolved[cell_expand], n_available.shape)
    weights = np.where(available, params.weights[expand], 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.where(available, weights * rescaled, 0.0).sum(axis=0) / total
        precision = np.where(available, 1.0 / params.reference_error_variance[expand], 0.0).sum(axis=0)
        error_variance = np.where(resolved, 1.0 / precision, np.nan)
    no_data = n_available == 0
    merged = np.where(no_data, np.nan, merged)
    error_variance = np.where(no_data, np.nan, error_variance)
    method = np.full(n_available.shape, METHOD_TC_LEAST_SQUARES, dtype=np.int8)
    method[resolved & (n_available < 3)] = METHOD_PARTIAL
    method[~resolved] = METHOD_ARITHMETIC_MEAN
    method[no_data] = METHOD_NO_DATA
    return MergedResult(soil_moisture=merged, error_variance=error_variance, method=method)


def _before(parents: dict, temperature: np.ndarray, merging, rain_model, seed: int) -> dict:
    """The whole-domain science of smflow.daily before issue 16."""
    from smflow.daily import TC_CONFIDENCE, TC_MIN_SAMPLES, TC_RESAMPLES
    from smflow.ml.models import sm2rain_parameters
    from smflow.science.bootstrap import triple_collocation_ci
    from smflow.science.sm2rain import apply_sm2rain, frozen_soil_mask, precipitation_status, relative_saturation

    stack = np.stack(list(parents.values()))
    t, ny, nx = temperature.shape
    cells = np.moveaxis(stack.reshape(3, t, ny * nx), -1, -2)
    merged = _apply_tc_merging_before(merging, cells)
    ci = triple_collocation_ci(cells[0], cells[1], cells[2], min_samples=TC_MIN_SAMPLES, n_resamples=TC_RESAMPLES,
                               confidence=TC_CONFIDENCE, seed=seed)
    params = sm2rain_parameters(rain_model)
    lower = rain_model.arrays["saturation_lower"].reshape(-1)
    upper = rain_model.arrays["saturation_upper"].reshape(-1)
    s = relative_saturation(merged.soil_moisture, lower[:, None], upper[:, None])
    frozen = frozen_soil_mask(soil_temperature=np.moveaxis(temperature.reshape(-1, ny * nx), -1, 0))
    rain = apply_sm2rain(s, params, frozen=frozen)[:, -1]
    status = precipitation_status(merged.soil_moisture, frozen, params, lower, upper)
    return {"soil_moisture": merged.soil_moisture[:, -1], "precipitation_amount": rain,
            "precipitation_status": status, "error_variance_lower": ci.error_variance.lower}


def run_one(mode: str, cells: int) -> dict:
    from smflow.daily import daily_science

    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # noqa: E731 - KiB -> GiB
    t0 = time.perf_counter()
    parents, temperature, merging, rain_model = inputs(cells, lazy=mode == "lazy")
    prepared = time.perf_counter() - t0
    before_science = rss()
    t0 = time.perf_counter()
    if mode == "before":
        out = _before(parents, temperature, merging, rain_model, seed=737_000)
    else:
        out = daily_science(parents, temperature, merging=merging, rain_model=rain_model, seed=737_000)
    seconds = time.perf_counter() - t0
    finite = float(np.isfinite(out["soil_moisture"]).mean())
    return {"mode": mode, "cells": cells, "days": DAYS, "seconds": seconds, "prepare_s": prepared,
            "rss_before_science_gib": before_science, "peak_gib": rss(), "finite_soil_moisture": finite}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", nargs=2, metavar=("MODE", "CELLS"))
    parser.add_argument("--quick", action="store_true", help="10^3 ... 10^5 cells, lazy windows only")
    args = parser.parse_args()
    if args.one:
        import bench_daily_memory  # functions pickled by reference, pool cached in the module

        print(json.dumps(bench_daily_memory.run_one(args.one[0], int(args.one[1]))))
        return
    print(f"machine: {_common.machine()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {DAYS}-day windows, 500 bootstrap resamples")
    sizes = [1_000, 10_000, 100_000] if args.quick else [1_000, 10_000, 100_000, 400_000, 1_000_000]
    configs = [("lazy", c) for c in sizes]
    if not args.quick:
        configs += [("memory", c) for c in (10_000, 100_000, 400_000)] + [("before", c) for c in (10_000, 100_000)]
    print("| mode | cells | days | science wall time [s] | us per cell | inputs ready [s] | peak RSS before the science [GiB] "
          "| peak RSS [GiB] |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, cells in configs:
        try:
            r = _common.run_fresh(__file__, mode, str(cells))
        except RuntimeError as exc:
            print(f"| {mode} | {cells:,} | {DAYS} | failed: {exc} | | | | |", flush=True)
            continue
        print(f"| {mode} | {cells:,} | {DAYS} | {r['seconds']:.1f} | {r['seconds'] / cells * 1e6:.0f} | "
              f"{r['prepare_s']:.1f} | {r['rss_before_science_gib']:.2f} | {r['peak_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
