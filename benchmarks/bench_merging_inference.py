"""ML merging speed: training time per member on the Hawaii stations, and one day of inference on
250,000 cells through :func:`smflow.ml.merging.merge_grid`.

Goal (issue 9, "Speed"): one product day on 250,000 cells with a 30-day window in < 60 s and
< 4 GiB peak resident memory on 2 cores.

Stages (each in a fresh subprocess, so ``ru_maxrss`` is that stage's own peak, TensorFlow included):

1. ``train``: the Hawaii inputs of the paper set-up (``bench_merging_paper_setup.build``: SMOS L3,
   SMAP, ASCAT H119 / 100, elevation; 12 features), period fold train 2017; RF, LSTM and CNN
   fitted one at a time (wall time each, ``--epochs`` max with early stopping), then BMA on the
   validation block; the ensemble is saved to a temporary directory.
2. ``infer``: load that ensemble, build a synthetic standardised cube (30, 250000, 12) float32
   (every parent present), run ``merge_grid`` (one output day) and report wall time and peak RSS.

    .venv/bin/python benchmarks/bench_merging_inference.py [--epochs 10] [--cells 250000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the work tree on sys.path)

HERE = Path(__file__).resolve().parent
GOAL_SECONDS = 60.0
GOAL_GIB = 4.0


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def stage_train(out_dir: Path, epochs: int) -> dict:
    """Fit RF, LSTM, CNN one at a time on the Hawaii period fold, BMA on the validation block; save."""
    from bench_merging_paper_setup import TEST, TRAIN, build
    from smflow.domain import load_domain
    from smflow.ml.merging import MergingEnsemble, fit_ensemble
    from smflow.ml.modelzoo.bma import fit_bma
    from smflow.ml.splits import period_fold

    grid = load_domain("big_island")
    _, spec, samples = build(grid, TRAIN, TEST[1])
    fold = period_fold(samples.time, TRAIN, TEST)
    fit, val = samples.subset(fold.fit), samples.subset(fold.validation)
    members, used, seconds = {}, {}, {}
    fitted_spec = None
    for kind in ("rf", "lstm", "cnn"):
        t0 = time.perf_counter()
        ens = fit_ensemble(fit, val, spec, kinds=(kind,), hyper={"lstm": {"epochs": epochs}, "cnn": {"epochs": epochs}})
        seconds[kind] = time.perf_counter() - t0
        members[kind], used[kind], fitted_spec = ens.members[kind], ens.hyper[kind], ens.spec
    ensemble = MergingEnsemble(fitted_spec, members, None, ens.seed, used)
    t0 = time.perf_counter()
    preds = ensemble.predict_members(val.windows)
    names = list(members)
    ensemble.bma = fit_bma(np.column_stack([preds[k] for k in names]), val.target, member_names=names)
    seconds["bma"] = time.perf_counter() - t0
    artifacts = ensemble.save(out_dir / "ensemble")
    (out_dir / "artifacts.json").write_text(json.dumps(artifacts))
    return {"fit_samples": len(fit), "validation_samples": len(val), "seconds": seconds,
            "features": len(fitted_spec.columns), "peak_gib": _peak_gib(), "epochs": epochs,
            "hyper": used}


def stage_infer(ens_dir: Path, cells: int) -> dict:
    """One day of merge_grid on ``cells`` cells, 30-day window, from a fresh process."""
    from smflow.ml.merging import MergingEnsemble, merge_grid

    artifacts = json.loads((ens_dir / "artifacts.json").read_text())
    t0 = time.perf_counter()
    ensemble = MergingEnsemble.load(artifacts)
    t_load = time.perf_counter() - t0
    spec = ensemble.spec
    n_p = len(spec.parents)
    rng = np.random.default_rng(0)
    cube = rng.standard_normal((spec.window, cells, len(spec.columns)), dtype=np.float32)
    cube[..., n_p:2 * n_p] = 1.0  # every parent present
    rss_before = _peak_gib()
    t0 = time.perf_counter()
    out = merge_grid(ensemble, cube)
    t_merge = time.perf_counter() - t0
    assert out.soil_moisture.shape == (1, cells) and np.isfinite(out.soil_moisture).all()
    # per-member cost on the same windows (members predicted separately)
    windows = np.ascontiguousarray(cube.transpose(1, 0, 2))
    member_seconds = {}
    for kind in ensemble.members:
        t0 = time.perf_counter()
        ensemble._standardised(kind, windows)
        member_seconds[kind] = time.perf_counter() - t0
    return {"cells": cells, "window": spec.window, "features": len(spec.columns), "load_seconds": t_load,
            "merge_grid_seconds": t_merge, "member_seconds": member_seconds,
            "peak_gib_before_merge": rss_before, "peak_gib": _peak_gib(),
            "cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0))}


def _run(args: list[str]) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "2", "TF_NUM_INTRAOP_THREADS": "2",
           "TF_NUM_INTEROP_THREADS": "1"}
    cmd = ["taskset", "-c", "0,1", sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"stage {args[0]} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("train", "infer"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=10, help="max epochs of LSTM and CNN (early stopping)")
    parser.add_argument("--cells", type=int, default=_common.GRID_CELLS)
    args = parser.parse_args(argv)
    if args.stage == "train":
        print(json.dumps(stage_train(args.dir, args.epochs)))
        return
    if args.stage == "infer":
        print(json.dumps(stage_infer(args.dir, args.cells)))
        return

    print(_common.machine())
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-merging-") as tmp:
        t0 = time.perf_counter()
        train = _run(["--stage", "train", "--dir", tmp, "--epochs", str(args.epochs)])
        t_train = time.perf_counter() - t0
        s = train["seconds"]
        print(f"training on Hawaii (period fold, {train['fit_samples']} fit + {train['validation_samples']} "
              f"validation samples, {train['features']} features, epochs <= {train['epochs']}): "
              f"RF {s['rf']:.1f} s (3 leaf sizes tried), LSTM {s['lstm']:.1f} s, CNN {s['cnn']:.1f} s, "
              f"BMA {s['bma']:.2f} s; stage wall {t_train:.1f} s incl. imports and inputs, "
              f"peak RSS {train['peak_gib']:.2f} GiB")
        infer = _run(["--stage", "infer", "--dir", tmp, "--cells", str(args.cells)])
    ms = infer["member_seconds"]
    ok_t, ok_m = infer["merge_grid_seconds"] < GOAL_SECONDS, infer["peak_gib"] < GOAL_GIB
    print(f"inference: merge_grid, 1 day x {infer['cells']:,} cells, window {infer['window']}, "
          f"{infer['features']} features, {infer['affinity']} cores: {infer['merge_grid_seconds']:.1f} s "
          f"(members alone: " + ", ".join(f"{k} {v:.1f} s" for k, v in ms.items())
          + f"; ensemble load {infer['load_seconds']:.1f} s); peak RSS {infer['peak_gib']:.2f} GiB "
          f"(before merge_grid {infer['peak_gib_before_merge']:.2f} GiB)")
    print(f"goal < {GOAL_SECONDS:.0f} s: {'met' if ok_t else 'NOT met'}; goal < {GOAL_GIB:.0f} GiB: "
          f"{'met' if ok_m else 'NOT met'}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
