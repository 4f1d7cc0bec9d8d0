"""Inference rate and peak memory of the downscaling methods on synthetic grids (project venv).

``.venv/bin/python benchmarks/bench_downscaling.py [--sizes 1e6,1e7]``: for each fine-grid size a
fresh process builds a square synthetic domain (0.1 deg coarse, 0.01 deg fine, 3 covariates),
fits the NN on the coarse cells and times (a) NN inference on the fine grid (tiles of rows),
(b) simple kriging of the coarse residuals (10 x 10 coarse tiles, 5-cell halo) with the
block-mean correction, and reports fine pixels per minute and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(n_fine: int) -> dict:
    import numpy as np

    from smflow.domain import DomainGrid
    from smflow.downscaling.grid import block_mean, fine_grid
    from smflow.downscaling.methods import fit_nn, predict_fine, residual_kriging

    side = int(round(np.sqrt(n_fine) / 10))
    coarse = DomainGrid(name="bench", crs="EPSG:4326", resolution=0.1, lat_first=0.05,
                        lat_last=round(0.05 + 0.1 * (side - 1), 6), lon_first=0.05,
                        lon_last=round(0.05 + 0.1 * (side - 1), 6),
                        land=tuple(tuple(True for _ in range(side)) for _ in range(side)))
    fine = fine_grid(coarse, shared_dir=None)
    lat, lon = np.meshgrid(fine.lat, fine.lon, indexing="ij")
    cov = np.stack([np.sin(lat * 30), np.cos(lon * 20), lat * 0.1]).astype(np.float64)
    del lat, lon
    truth = 0.2 + 0.05 * cov[0] + 0.03 * cov[1]
    coarse_sm, cov_c = block_mean(truth, 10), block_mean(cov, 10)
    del truth
    model = fit_nn(cov_c.reshape(3, -1).T[:20000], coarse_sm.ravel()[:20000],
                   feature_names=["a", "b", "c"], seed=1)
    t0 = time.perf_counter()
    pred_f = predict_fine(model, cov, tile_rows=256)
    t_nn = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = residual_kriging(coarse_sm, predict_fine(model, cov_c), pred_f, coarse, fine)
    t_kr = time.perf_counter() - t0
    px = fine.shape[0] * fine.shape[1]
    return {"fine_px": px, "nn_s": t_nn, "nn_px_per_min": px / t_nn * 60,
            "kriging_s": t_kr, "kriging_px_per_min": px / t_kr * 60,
            "max_agg_error": res.max_abs_aggregation_error,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(int(args.one))))
        return
    print(f"{'fine px':>12} {'NN s':>7} {'NN px/min':>12} {'krig s':>7} {'krig px/min':>12} "
          f"{'max|agg|':>9} {'peak RSS MB':>11}")
    for size in args.sizes.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", size], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['fine_px']:>12,} {r['nn_s']:7.1f} {r['nn_px_per_min']:12.3g} "
              f"{r['kriging_s']:7.1f} {r['kriging_px_per_min']:12.3g} {r['max_agg_error']:9.1e} "
              f"{r['peak_rss_mb']:11.0f}")


if __name__ == "__main__":
    main()
