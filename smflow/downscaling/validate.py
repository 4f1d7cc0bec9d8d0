"""Upscale-recover validation of the downscaling methods on the real CGLS 1 km SSM (Ebro-Pyrenees).

Protocol: the Copernicus CGLS Sentinel-1 1 km SSM of a day (degree of saturation, percent) is put on
the 0.01 deg fine grid (``native_to_domain`` ``mean``: 1-2 pixels of 1/112 deg per cell), aggregated
to the 0.1 deg domain grid (block mean, coarse cells with >= ``min_fraction`` valid fine cells),
downscaled back with each method and compared with the original fine field on the fine cells
that hold a value. The fine field of the compared day is never used for fitting:

* ``loo`` -- the regression is fitted on the coarse fields of the *other* days (how a registered
  model is used on a new day);
* ``sameday`` -- fitted on the compared day's own coarse field (the input of the downscaling,
  as in Lv et al. 2021, where the NN is fitted on the coarse field it downscales).

Scores: R and ubRMSE pooled over the compared fine cells of all days, bias, and rho_spatial = the
mean over days of the day's Pearson correlation across the domain (Lv et al. 2021, Sect. 2.3:
days whose correlation is significant at 95 %), plus the largest |block mean - coarse| (mass
conservation). ``python -m smflow.downscaling.validate`` prints the table.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from smflow.downscaling.grid import block_mean, factor_of, fine_grid

DOMAIN = "ebro_pyrenees"
DAYS = (date(2017, 6, 1), date(2017, 6, 2), date(2017, 6, 3))
SSM_FILE = "cgls_1km/CGLS_SSM1km_V1.1_img/c_gls_SSM1km_{date:%Y%m%d}0000_CEURO_S1CSAR_V1.1.1.nc"
METHODS = ("bilinear", "nn", "nn_kriging", "lstm_kriging")


@dataclass
class DayData:
    """One day of the upscale-recover experiment."""

    day: date
    reference: np.ndarray          # fine (ny, nx), percent
    coarse: np.ndarray             # coarse (n_lat, n_lon), percent
    features_fine: np.ndarray      # (p, ny, nx)
    features_coarse: np.ndarray    # (p, n_lat, n_lon)


@dataclass
class Experiment:
    """Grids, covariates and the days with data (``missing_days``: all-NaN SSM, no product)."""

    domain: object
    fine: object
    names: list[str]
    missing_covariates: list[str]
    days: list[DayData] = field(default_factory=list)
    missing_days: list[str] = field(default_factory=list)


def reference_fine(path: Path, fine) -> np.ndarray:
    """CGLS SSM of ``path`` on the fine grid (percent of saturation, NaN = no value)."""
    from smflow.readers.native import open_native
    from smflow.regrid import native_to_domain

    ds = open_native(path, chunks=None)
    return native_to_domain(ds, fine, method="mean",
                            variables=["degree_of_saturation"])["degree_of_saturation"].values


def load_experiment(shared_dir: Path, *, days=DAYS, min_fraction: float = 0.5,
                    names: list[str] | None = None) -> Experiment:
    """Read the SSM and the covariates of ``days`` (``../shared/data/real``)."""
    from smflow.domain import load_domain
    from smflow.downscaling.covariates import build_stack

    domain = load_domain(DOMAIN)
    fine = fine_grid(domain, shared_dir=shared_dir)
    factor = factor_of(domain, fine)
    exp = None
    for day in days:
        ref = reference_fine(Path(shared_dir) / SSM_FILE.format(date=day), fine)
        stack = build_stack(domain, fine, day, shared_dir, names=names)
        if exp is None:
            exp = Experiment(domain, fine, stack.names, stack.missing)
        coarse = block_mean(ref, factor, min_fraction=min_fraction)
        if not np.isfinite(coarse).any():
            exp.missing_days.append(f"{day}: no valid SSM pixel (no Sentinel-1 overpass) -> no "
                                    "fine product, recorded as missing")
            continue
        exp.days.append(DayData(day, ref, coarse, stack.fine_array(), stack.coarse_array()))
    return exp


def coarse_samples(days: list[DayData]) -> tuple[np.ndarray, np.ndarray]:
    """``X (n, p)``, ``y (n,)``: coarse cells with a value and all covariates, over ``days``."""
    Xs, ys = [], []
    for d in days:
        X = d.features_coarse.reshape(d.features_coarse.shape[0], -1).T
        y = d.coarse.ravel()
        ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
        Xs.append(X[ok])
        ys.append(y[ok])
    return np.concatenate(Xs), np.concatenate(ys)


def downscale_day(method: str, model, d: DayData, domain, fine, *, tile: int = 4,
                  halo: int = 3) -> tuple[np.ndarray, dict]:
    """Downscale the coarse field of ``d`` with ``method`` (``model``: a FittedRegressor)."""
    from smflow.downscaling.methods import (
        bilinear, fill_gaps, predict_fine, residual_kriging,
    )

    base = bilinear(d.coarse, domain, fine)
    if method == "bilinear":
        return base, {}
    pred_fine = predict_fine(model, d.features_fine)
    if method == "nn":
        return fill_gaps(pred_fine, base, fine), {}
    pred_coarse = predict_fine(model, d.features_coarse)
    result = residual_kriging(d.coarse, pred_coarse, pred_fine, domain, fine, tile=tile,
                              halo=halo, fallback_fine=base)
    return result.field, {"variogram": result.variogram,
                          "correction_abs_mean": result.correction_abs_mean}


def _spatial_r(est: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    ok = np.isfinite(est) & np.isfinite(ref)
    if ok.sum() < 3:
        return float("nan"), float("nan")
    r, p = stats.pearsonr(est[ok], ref[ok])
    return float(r), float(p)


def score(outputs: dict[date, np.ndarray], days: list[DayData], factor: int) -> dict:
    """Pooled R, ubRMSE, bias, rho_spatial and the largest aggregation error of one method."""
    from smflow.science.metrics import bias, pearson_r, ubrmse

    est, ref, rhos, agg = [], [], [], []
    for d in days:
        out = outputs[d.day]
        ok = np.isfinite(out) & np.isfinite(d.reference) & np.isfinite(
            np.repeat(np.repeat(d.coarse, factor, 0), factor, 1))
        est.append(out[ok])
        ref.append(d.reference[ok])
        r, p = _spatial_r(out[ok], d.reference[ok])
        if np.isfinite(r) and p < 0.05:
            rhos.append(r)
        err = np.abs(block_mean(out, factor) - d.coarse)
        agg.append(float(np.nanmax(err)) if np.isfinite(err).any() else float("nan"))
    e, r_ = np.concatenate(est), np.concatenate(ref)
    return {"r": float(pearson_r(e, r_)), "ubrmse": float(ubrmse(e, r_)), "bias": float(bias(e, r_)),
            "rho_spatial": float(np.mean(rhos)) if rhos else float("nan"),
            "n_days_rho": len(rhos), "n_pixels": int(e.size),
            "max_aggregation_error": float(np.nanmax(agg))}


def fit(method: str, train_days: list[DayData], names: list[str], *, seed: int,
        lstm_epochs: int = 200):
    """Fit the regression behind ``method`` on the coarse samples of ``train_days``."""
    from smflow.downscaling.methods import fit_lstm_downscaler, fit_nn

    if method == "bilinear":
        return None
    X, y = coarse_samples(train_days)
    if method in ("nn", "nn_kriging"):
        return fit_nn(X, y, feature_names=names, seed=seed)
    return fit_lstm_downscaler(X, y, feature_names=names, seed=seed, epochs=lstm_epochs)


def run(exp: Experiment, *, methods=METHODS, modes=("loo", "sameday"), seed: int = 13,
        lstm_epochs: int = 200) -> list[dict]:
    """Rows of the upscale-recover table (one per method and fitting mode)."""
    factor = factor_of(exp.domain, exp.fine)
    rows = []
    for mode in modes:
        if mode == "loo" and len(exp.days) < 2:
            continue
        for method in methods:
            if method == "bilinear" and mode != modes[0]:
                continue
            t0 = time.perf_counter()
            outputs, extra, models = {}, {}, {}
            for d in exp.days:
                train = [o for o in exp.days if o.day != d.day] if mode == "loo" else [d]
                key = tuple(o.day for o in train)
                if key not in models:
                    models[key] = fit(method, train, exp.names, seed=seed, lstm_epochs=lstm_epochs)
                outputs[d.day], extra[d.day] = downscale_day(method, models[key], d, exp.domain,
                                                             exp.fine)
            row = {"method": method, "fit": "-" if method == "bilinear" else mode,
                   **score(outputs, exp.days, factor), "seconds": time.perf_counter() - t0}
            row["variograms"] = {str(k): v.get("variogram") for k, v in extra.items() if v}
            rows.append(row)
    return rows


def format_table(rows: list[dict], exp: Experiment) -> str:
    """Plain-text table (what the README quotes)."""
    head = (f"{'method':<14} {'fit':<8} {'R':>7} {'ubRMSE':>8} {'bias':>7} {'rho_sp':>7} "
            f"{'days':>4} {'pixels':>7} {'max|agg-coarse|':>16} {'s':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<14} {r['fit']:<8} {r['r']:7.3f} {r['ubrmse']:8.3f} "
                     f"{r['bias']:7.3f} {r['rho_spatial']:7.3f} {r['n_days_rho']:>4} "
                     f"{r['n_pixels']:>7} {r['max_aggregation_error']:16.2e} {r['seconds']:6.1f}")
    lines.append("CGLS S1 SSM 1 km (percent of saturation) on 0.01 deg, aggregated to 0.1 deg and "
                 "downscaled back; days " + ", ".join(str(d.day) for d in exp.days) +
                 "; covariates " + ", ".join(exp.names))
    lines.extend("missing day: " + m for m in exp.missing_days)
    lines.extend("missing covariate: " + m for m in exp.missing_covariates)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m smflow.downscaling.validate [--shared DIR] [--quick]``: print the table."""
    from smflow.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=None,
                        help="../shared/data/real (default: the configured shared data dir)")
    parser.add_argument("--min-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--lstm-epochs", type=int, default=200)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args(argv)
    shared = args.shared or Settings.load().shared_data_dir
    if shared is None or not (Path(shared) / "cgls_1km").is_dir():
        print(f"no CGLS 1 km data under {shared}: the upscale-recover validation needs "
              "../shared/data/real/cgls_1km; nothing to do.")
        return 0
    exp = load_experiment(Path(shared), min_fraction=args.min_fraction)
    rows = run(exp, methods=tuple(args.methods.split(",")), seed=args.seed,
               lstm_epochs=args.lstm_epochs)
    print(format_table(rows, exp))
    for r in rows:
        for day, v in r["variograms"].items():
            if v:
                print(f"variogram {r['method']}/{r['fit']} {day}: " + ", ".join(
                    f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}"
                    for k, val in v.items() if k != "bin_edges_km"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
