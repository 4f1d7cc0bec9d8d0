"""Triple collocation: smflow (all cells at once) vs pytesmo (a loop over cells), same data.

Prints, from one run (run it in benchmarks/.venv-bench, which has pytesmo 0.18.1):

* the largest relative difference of the point estimates (SNR [dB], scaled error standard
  deviation, beta) against pytesmo's ``tcol_metrics(x, y, z, ref_ind=0)`` -- must be <= 1e-10;
* the time per cell of the point metrics: a loop of ``tcol_metrics`` vs ``triple_collocation``,
  and the ratio (target >= 10x);
* the time per cell of the bootstrapped confidence intervals (1000 resamples, alpha 0.05):
  pytesmo's i.i.d. ``tcol_metrics_with_bootstrapped_ci`` vs ``triple_collocation_ci`` (i.i.d.
  ``block=1`` for a like-for-like comparison, and the moving-block default), the ratio (target
  >= 1000x) and both extrapolated to 250,000 cells; and the interval widths of both.

    benchmarks/.venv-bench/bin/python benchmarks/bench_tc.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import _common
from smflow.science.bootstrap import triple_collocation_ci
from smflow.science.tc import triple_collocation


def synthetic(cells: int, days: int, seed: int) -> np.ndarray:
    """(3, cells, days): AR(1) truth (phi 0.9) seen by three products with AR(1) errors (phi 0.6)."""
    rng = np.random.default_rng(seed)

    def ar1(phi: float, shape: tuple[int, ...]) -> np.ndarray:
        from scipy.signal import lfilter

        shocks = rng.normal(size=shape) * np.sqrt(1 - phi**2)
        return lfilter([1.0], [1.0, -phi], shocks, axis=-1)

    truth = 0.25 + 0.05 * ar1(0.9, (cells, days))
    sigma = np.array([0.02, 0.015, 0.03])[:, None, None] * rng.uniform(0.5, 1.5, (3, cells, 1))
    beta = np.array([1.0, 0.7, 1.3])[:, None, None]
    data = np.array([0.02, -0.03, 0.05])[:, None, None] + beta * truth[None] + sigma * ar1(0.6, (3, cells, days))
    data[rng.random(data.shape) < 0.05] = np.nan
    return data


def main() -> None:
    from pytesmo.metrics import tcol_metrics, tcol_metrics_with_bootstrapped_ci

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=_common.DAYS)
    parser.add_argument("--cells", type=int, default=2000, help="cells for the point metrics (both)")
    parser.add_argument("--bootstrap-cells", type=int, default=512, help="cells bootstrapped by smflow")
    parser.add_argument("--reference-bootstrap-cells", type=int, default=3, help="cells bootstrapped by pytesmo")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    print(f"machine: {_common.machine()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    data = synthetic(args.cells, args.days, seed=1)
    common = np.isfinite(data).all(axis=0)

    # -- point metrics ---------------------------------------------------------------------------
    triple_collocation(*data[:, :10])  # warm-up (JIT cache load)
    (ours_threads, ours_time), ours = _common.timed_on_threads(
        lambda: triple_collocation(*data, min_samples=3, min_pair_correlation=-1.0))
    t0 = time.perf_counter()
    ref = [tcol_metrics(*data[:, c, common[c]], ref_ind=0) for c in range(args.cells)]
    ref_time = time.perf_counter() - t0
    snr = np.array([r[0] for r in ref]).T
    err_std = np.array([r[1] for r in ref]).T
    beta = np.array([r[2] for r in ref]).T
    ok = ours.resolved
    diffs = {
        "snr": np.max(np.abs(ours.snr_db[:, ok] / snr[:, ok] - 1)),
        "err_std": np.max(np.abs(np.sqrt(ours.error_variance[:, ok]) / ours.scaling[:, ok] / err_std[:, ok] - 1)),
        "beta": np.max(np.abs(1 / ours.scaling[:, ok] / beta[:, ok] - 1)),
    }
    worst = max(diffs.values())
    print(f"\n## TC point metrics, {args.cells} cells x {args.days} days (5 % gaps)")
    print(f"agreement with pytesmo tcol_metrics on {ok.sum()} resolved cells: max relative difference "
          + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
          + f" -> {'OK (<= 1e-10)' if worst <= 1e-10 else 'FAILED'}")
    print(f"pytesmo loop: {ref_time / args.cells * 1e3:.4f} ms/cell; smflow one thread: "
          f"{ours_time / args.cells * 1e3:.4f} ms/cell ({_common.THREADS} threads: {ours_threads / args.cells * 1e3:.4f}); "
          f"ratio one core each {ref_time / ours_time:.0f}x ({ref_time / ours_threads:.0f}x on {_common.THREADS} threads; "
          f"target >= 10x); 250k cells: {ref_time / args.cells * 2.5e5:.0f} s vs {ours_time / args.cells * 2.5e5:.1f} s")

    # -- bootstrap -------------------------------------------------------------------------------
    n_ref = args.reference_bootstrap_cells
    t0 = time.perf_counter()
    ref_ci = [tcol_metrics_with_bootstrapped_ci(*data[:, c, common[c]], nsamples=args.resamples)
              for c in range(n_ref)]
    ref_boot = (time.perf_counter() - t0) / n_ref
    cells = data[:, : args.bootstrap_cells]
    triple_collocation_ci(*cells[:, :4], n_resamples=50)  # warm-up
    timings = {}
    results = {}
    triple_collocation_ci(*cells[:, :4], n_resamples=50, block=1)
    for label, block in (("i.i.d. (block=1, as pytesmo)", 1), ("moving-block (auto block length)", "auto")):
        (threads, one), results[label] = _common.timed_on_threads(
            lambda: triple_collocation_ci(*cells, n_resamples=args.resamples, block=block, seed=3))
        timings[label] = (one / args.bootstrap_cells, threads / args.bootstrap_cells)
    print(f"\n## TC bootstrap confidence intervals, {args.resamples} resamples, 95 %")
    print(f"pytesmo tcol_metrics_with_bootstrapped_ci ({n_ref} cells): {ref_boot:.3f} s/cell -> 250k cells: "
          f"{ref_boot * 2.5e5 / 3600:.1f} h")
    for label, (t, t_threads) in timings.items():
        print(f"smflow {label} ({args.bootstrap_cells} cells), one thread: {t * 1e3:.3f} ms/cell -> 250k cells: "
              f"{t * 2.5e5 / 60:.1f} min; ratio one core each {ref_boot / t:.0f}x (target >= 1000x); "
              f"{_common.THREADS} threads: {t_threads * 1e3:.3f} ms/cell, {ref_boot / t_threads:.0f}x")
    # like-for-like check of the i.i.d. intervals (different random draws: equal up to Monte Carlo)
    iid = results["i.i.d. (block=1, as pytesmo)"]
    mbb = results["moving-block (auto block length)"]
    print("SNR interval width [dB], cell: pytesmo i.i.d. | smflow i.i.d. | smflow moving-block (block length)")
    for c in range(n_ref):
        width_ref = ref_ci[c][0][2] - ref_ci[c][0][1]
        width_iid = iid.snr_db.upper[:, c] - iid.snr_db.lower[:, c]
        width_mbb = mbb.snr_db.upper[:, c] - mbb.snr_db.lower[:, c]
        print(f"  {c}: {np.round(width_ref, 3)} | {np.round(width_iid, 3)} | {np.round(width_mbb, 3)} "
              f"({mbb.block_length[c]})")
    print("(the errors are AR(1), phi = 0.6: i.i.d. intervals are too narrow, the moving-block ones wider)")


if __name__ == "__main__":
    main()
