"""ML merging in the set-up of Zhang, Hou & Huang 2022 (Heihe), on the Hawaii ISMN stations.

The paper merges SMOS, SMAP and ASCAT soil moisture with RF, LSTM and CNN (and their BMA,
Eq. 17) and reports daily RMSE against the Heihe network (RF 0.052, CNN 0.060, LSTM 0.058
m3 m-3). This script reproduces that set-up with the library's own code (smflow.ml.features,
smflow.ml.merging, smflow.ml.evaluation, smflow.ml.splits):

* parents SMOS L3, SMAP and ASCAT H119 (degree of saturation in percent, divided by 100: a
  saturation feature in [0, 1], not a volumetric content), elevation as static covariate;
* targets: Hawaii ISMN stations (flag G, daily means);
* folds: train 2017, test 2018 (period fold) and leave-one-station-out over 2017-2018;
* no TC rows (TC needs three volumetric parents; ASCAT here is a saturation index).

Prints the candidate table (ubRMSE, R, bias, KGE) and the plain RMSE (median over stations) of
each candidate next to the paper's Heihe figures. Not a test: numbers differ by region, network
and sensor depth, the comparison is indicative only.

    .venv/bin/python benchmarks/bench_merging_paper_setup.py [--epochs 60] [--no-loso]
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import date

import numpy as np

import _common  # noqa: F401  (puts the work tree on sys.path)

PARENTS = ("smos_l3", "smap", "ascat_h119")
TRAIN = (date(2017, 1, 1), date(2017, 12, 31))
TEST = (date(2018, 1, 1), date(2018, 12, 31))
#: Zhang et al. 2022, daily RMSE on Heihe [m3 m-3].
PAPER_RMSE = {"rf": 0.052, "cnn": 0.060, "lstm": 0.058}


def build(grid, train: tuple[date, date], end: date):
    """Parents (time, cell), fitted FeatureSpec and station samples, by the library's build_inputs."""
    from smflow.config import Settings
    from smflow.ml.train_merging import build_inputs

    shared = Settings.load().shared_data_dir
    if shared is None:
        raise SystemExit("needs ../shared/data/real (the ISMN stations)")
    inputs = build_inputs(train, end, grid, shared / "ismn_hawaii", None, parents=PARENTS)
    return inputs.parents, inputs.spec, inputs.samples


def evaluate(parents, spec, samples, *, loso: bool, hyper: dict, seed: int = 20170101):
    """Predictions of parents and candidates per fold set; fit time per member (period fold)."""
    from smflow.ml.merging import fit_ensemble
    from smflow.ml.splits import loso_folds, period_fold

    times = parents["time"].values
    t_idx = np.searchsorted(times, samples.time)
    base = {p: parents[p].values[t_idx, samples.cell] for p in PARENTS}
    fold_sets = {"period": [period_fold(samples.time, TRAIN, TEST)]}
    if loso:
        fold_sets["loso"] = list(loso_folds(samples.station, samples.time))
    out, fit_seconds = {}, None
    for label, folds in fold_sets.items():
        pred = {m: np.full(len(samples), np.nan) for m in (*PARENTS, "rf", "lstm", "cnn", "bma")}
        tested = np.zeros(len(samples), dtype=bool)
        for fold in folds:
            t0 = time.perf_counter()
            ens = fit_ensemble(samples.subset(fold.fit), samples.subset(fold.validation), spec, seed=seed, hyper=hyper)
            if label == "period":
                fit_seconds = time.perf_counter() - t0
            mean, _, members = ens.predict(samples.subset(fold.test).windows)
            for k, v in members.items():
                pred[k][fold.test] = v
            pred["bma"][fold.test] = mean
            for p in PARENTS:
                pred[p][fold.test] = base[p][fold.test]
            tested |= fold.test
        out[label] = (pred, tested)
    return out, fit_seconds


def median_rmse(pred: np.ndarray, target: np.ndarray, station: np.ndarray) -> float:
    """Median over stations of the plain RMSE [same unit as the inputs] (smflow.science.metrics.rmse)."""
    from smflow.science.metrics import rmse

    values = [float(rmse(pred[station == s], target[station == s])) for s in np.unique(station)]
    values = [v for v in values if np.isfinite(v)]
    return float(np.median(values)) if values else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60, help="max epochs of LSTM and CNN (early stopping)")
    parser.add_argument("--no-loso", action="store_true", help="period fold only (faster)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from smflow.domain import load_domain
    from smflow.ml.evaluation import format_candidates, score_candidates

    print(_common.machine())
    t0 = time.perf_counter()
    grid = load_domain("big_island")
    parents, spec, samples = build(grid, TRAIN, TEST[1])
    t_build = time.perf_counter() - t0
    print(f"inputs: {len(samples)} samples, {len(np.unique(samples.station))} stations, "
          f"features {spec.columns}; built in {t_build:.1f} s")
    hyper = {"lstm": {"epochs": args.epochs}, "cnn": {"epochs": args.epochs}}
    t1 = time.perf_counter()
    results, fit_seconds = evaluate(parents, spec, samples, loso=not args.no_loso, hyper=hyper)
    t_eval = time.perf_counter() - t1
    scores, rmse_rows = [], []
    for label, (pred, tested) in results.items():
        sub = {m: v[tested] for m, v in pred.items()}
        scores += score_candidates(sub, samples.target[tested], samples.station[tested], samples.time[tested],
                                   folds=label, seed=0)
        for m, v in sub.items():
            rmse_rows.append((label, m, median_rmse(v, samples.target[tested], samples.station[tested])))
    print(format_candidates(scores))
    print("\nplain RMSE, median over stations [m3 m-3; ascat_h119 row is a saturation index, not comparable]:")
    for label, m, v in rmse_rows:
        paper = f"   paper (Heihe): {PAPER_RMSE[m]:.3f}" if m in PAPER_RMSE else ""
        print(f"  {label:<7} {m:<11} {v:.4f}{paper}")
    period = {m: v for label, m, v in rmse_rows if label == "period"}
    print("\ncomparison (period fold, daily RMSE): "
          + ", ".join(f"{m.upper()} {period[m]:.3f} vs paper {PAPER_RMSE[m]:.3f}" for m in ("rf", "cnn", "lstm"))
          + f"; BMA {period['bma']:.3f}")
    print(f"timing: inputs {t_build:.1f} s, period-fold ensemble fit {fit_seconds:.1f} s, "
          f"all folds fit + predict {t_eval:.1f} s, epochs <= {args.epochs}, loso={not args.no_loso}")


if __name__ == "__main__":
    main()
