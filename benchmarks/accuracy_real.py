"""Accuracy of the SM2RAIN calibration on real data (not a timing benchmark).

1. The three IRPI stations of the SM2RAIN paper (Brocca et al. 2013; ``sm2rain_example``): hourly
   saturation and gauge, the authors' set-up (24-record sums, threshold 0.005 on the hourly
   increments, bounds Z in [1, 200], a in [0, 1800], b in [1, 150]); our calibrated RMSE against
   the RMSE of the authors' published parameters.
2. Hawaii: ERA5-Land top-layer soil moisture (06 UTC) at the cells of the 5 SCAN rain gauges,
   gauge sums over the same 06-06 UTC days; calibrate on 2017, validate on 2018; R, RMSE, bias,
   KGE per station for the 3-parameter, exponential-filter (T) and wetness-filter (Tpot) variants,
   and the per-cell scipy-TNC reference fit for comparison.

Run with the project's venv (it reads the internal data under ../shared/data/real)::

    .venv/bin/python benchmarks/accuracy_real.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the work tree on sys.path)
import reference
from smflow.science.metrics import bias, kge, pearson_r, rmse
from smflow.science.sm2rain import (
    aggregate_sums,
    apply_sm2rain,
    calibrate_sm2rain,
    relative_saturation,
    saturation_bounds,
    sm2rain,
)

SHARED = _common.REPO_ROOT.parent / "shared" / "data" / "real"
IRPI = dict(dt=1.0, aggregation=24, z_bounds=(1.0, 200.0), a_bounds=(0.0, 1800.0), b_bounds=(1.0, 150.0))


def irpi_stations() -> list[dict]:
    rows = []
    for name in ("CER_1hour_2011", "K10_1hour_2007", "VOB_1hour_2008"):
        data = np.loadtxt(SHARED / "sm2rain_example" / f"{name}.txt")
        s, rain = data[:, 1], data[:, 2]
        p_obs = np.full_like(rain, np.nan)
        p_obs[1:] = rain[:-1]  # the reference compares rain record t-1 with the increment ending at t
        authors = np.loadtxt(SHARED / "sm2rain_example" / f"PAR_{name}.dat")
        t0 = time.perf_counter()
        cal = calibrate_sm2rain(s, p_obs, delta_s_threshold=0.005, **IRPI)
        seconds = time.perf_counter() - t0

        def daily(par: np.ndarray) -> float:
            sim = sm2rain(s, *par, dt=1.0, delta_s_threshold=0.005)
            return float(rmse(aggregate_sums(sim[1:], 24), aggregate_sums(p_obs[1:], 24)))

        rows.append({"station": name, "authors": daily(authors), "ours": float(cal.rmse), "seconds": seconds,
                     "Z": float(cal.Z), "a": float(cal.a), "b": float(cal.b), "authors_par": authors})
    return rows


def hawaii_series() -> dict:
    """ERA5-Land saturation at the gauge cells and 06-06 UTC gauge sums, 2017-2018."""
    import pandas as pd

    from smflow.domain import load_domain
    from smflow.ingest import gridded_series
    from smflow.insitu import find_stm_files, read_stm

    grid = load_domain()
    era = gridded_series("era5_land", "2017-01-01", "2018-12-31", grid)
    days = pd.DatetimeIndex(era["time"].values)
    stations, theta, rain = [], [], []
    for f in find_stm_files(SHARED, "p"):
        records, info = read_stm(f.path)
        good = records.loc[records["ismn_flag"] == "G", "value"]
        # ERA5-Land is the 06 UTC state: the rain between two states is the sum over (06, 06] UTC.
        shifted = good.copy()
        shifted.index = shifted.index - pd.Timedelta(hours=7)  # hour ending 07..06 -> previous day
        grouped = shifted.groupby(shifted.index.floor("D"))
        total = grouped.sum().reindex(days - pd.Timedelta(days=1))
        count = grouped.count().reindex(days - pd.Timedelta(days=1)).fillna(0)
        iy, ix = grid.cell_index(info["lat"], info["lon"])
        stations.append(info["station"])
        theta.append(era.values[:, iy, ix])
        rain.append(np.where(count.to_numpy() >= 20, total.to_numpy(), np.nan))
    return {"station": stations, "theta": np.array(theta), "rain": np.array(rain), "days": days}


def hawaii_table(cells_tnc: bool = True) -> list[dict]:
    data = hawaii_series()
    days = data["days"]
    train = np.asarray(days.year == 2017)
    test = np.asarray(days.year == 2018)
    theta, rain = data["theta"], data["rain"]
    lower, upper = saturation_bounds(np.where(train[None], theta, np.nan))
    s = relative_saturation(theta, lower, upper)
    s_train, rain_train = np.where(train[None], s, np.nan), np.where(train[None], rain, np.nan)
    rows = []
    for variant, kwargs in (("3-parameter", {}), ("T filter", {"swi_filter": "exponential"}),
                            ("Tpot filter", {"swi_filter": "wetness"})):
        t0 = time.perf_counter()
        # The filters need their spin-up: calibrate on 2017 only, apply over 2017-2018.
        cal = calibrate_sm2rain(s[:, train], rain[:, train], min_samples=100, **kwargs)
        seconds = time.perf_counter() - t0
        sim = apply_sm2rain(s, cal)
        for k, name in enumerate(data["station"]):
            est, obs = sim[k, test], rain[k, test]
            rows.append({"variant": variant, "station": name, "n_cal": int(cal.n[k]),
                         "rmse_cal": float(cal.rmse[k]), "r": float(pearson_r(est, obs)),
                         "rmse": float(rmse(est, obs)), "bias": float(bias(est, obs)), "kge": float(kge(est, obs)),
                         "seconds": seconds, "T": float(cal.T[k]), "T_pot": float(cal.T_pot[k])})
    if cells_tnc:
        for k, name in enumerate(data["station"]):
            t0 = time.perf_counter()
            sm = s[k, train]
            obs = rain[k, train][1:]
            a, b, z = reference.calibrate_tnc(sm, obs)
            seconds = time.perf_counter() - t0
            sim = sm2rain(s[k], z, a, b)
            est, ob = sim[test], rain[k, test]
            rows.append({"variant": "reference TNC (3-parameter)", "station": name, "n_cal": int(np.isfinite(
                sm[1:] - sm[:-1] + obs).sum()), "rmse_cal": reference.rmse_3(sm, obs, a, b, z),
                "r": float(pearson_r(est, ob)), "rmse": float(rmse(est, ob)), "bias": float(bias(est, ob)),
                "kge": float(kge(est, ob)), "seconds": seconds, "T": float("nan"), "T_pot": float("nan")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    print(f"machine: {_common.machine()}")
    print("\n## IRPI stations (hourly, 24-h sums, authors' bounds and threshold 0.005)")
    print("| station | RMSE authors' parameters [mm/day] | RMSE smflow [mm/day] | smflow Z, a, b | time [s] |")
    print("|---|---|---|---|---|")
    for r in irpi_stations():
        print(f"| {r['station']} | {r['authors']:.4f} | {r['ours']:.4f} | {r['Z']:.2f}, {r['a']:.2f}, {r['b']:.2f} "
              f"| {r['seconds']:.2f} |")
    print("\n## Hawaii: ERA5-Land at the SCAN gauges, calibrate 2017, validate 2018 (daily, 06-06 UTC)")
    print("| variant | station | n cal | RMSE cal [mm/day] | R val | RMSE val [mm/day] | bias val [mm/day] | KGE val | T [d] | Tpot |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in hawaii_table():
        print(f"| {r['variant']} | {r['station']} | {r['n_cal']} | {r['rmse_cal']:.3f} | {r['r']:.3f} | "
              f"{r['rmse']:.3f} | {r['bias']:+.3f} | {r['kge']:.3f} | {r['T']:.3g} | {r['T_pot']:.3g} |")


if __name__ == "__main__":
    main()
