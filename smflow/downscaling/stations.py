"""Hawaii: the 0.01 deg soil moisture against the in-situ stations, next to the 0.1 deg product.

Issue 13's point-vs-pixel check. For each day of a period the published 0.1 deg merged soil
moisture (read through the day's STAC item) is downscaled with every method of
:func:`smflow.downscaling.daily.downscale_field`; each ISMN station (0-5 cm) is compared with the
fine pixel that contains it and, on the same days, with its 0.1 deg cell. R, ubRMSE and bias per
station (:mod:`smflow.science.metrics`), medians over stations with 95 % bootstrap intervals of the
median (resampling stations). Bilinear interpolation is the baseline a downscaler must beat.

Needs a stack with the period published (``bash infra/main.sh``) and ``../shared/data/real``::

    python -m smflow.downscaling.stations --start 2018-06-01 --end 2018-06-30
"""

from __future__ import annotations

import argparse
import io
from datetime import date

import numpy as np
import pandas as pd

from smflow.downscaling.daily import METHODS


def _median_ci(values: np.ndarray, *, n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(v, size=(n, v.size), replace=True), axis=1)
    return float(np.median(v)), float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def station_skill(start: date, end: date, *, methods=METHODS, settings=None, min_samples: int = 10) -> list[dict]:
    """Rows (one per product) of median R, ubRMSE, bias over the stations, with intervals.

    Returns
    -------
    list of dict
        ``product``, ``r`` / ``r_ci``, ``ubrmse`` / ``ubrmse_ci`` [m3 m-3], ``bias`` [m3 m-3],
        ``stations``, ``days``, ``seconds`` (downscaling time of the period).

    Raises
    ------
    FileNotFoundError
        No published day in the period, or no ISMN directory under ``../shared/data/real``.
    """
    import time

    import xarray as xr

    from smflow import s3 as s3mod
    from smflow.config import Settings
    from smflow.domain import load_domain
    from smflow.downscaling.covariates import build_stack
    from smflow.downscaling.daily import downscale_field
    from smflow.downscaling.grid import fine_grid
    from smflow.insitu import load_insitu_soil_moisture
    from smflow.publish.publisher import published_assets
    from smflow.science.metrics import bias, pearson_r, ubrmse

    settings = settings or Settings.load()
    shared = settings.shared_data_dir
    if shared is None or not (shared / "ismn_hawaii").is_dir():
        raise FileNotFoundError("the ISMN Hawaii stations (../shared/data/real/ismn_hawaii) are needed")
    s3 = s3mod.client(settings)
    domain = load_domain("big_island")
    fine = fine_grid(domain, shared_dir=shared)
    days = list(pd.date_range(start, end, freq="D").date)
    insitu = load_insitu_soil_moisture(shared / "ismn_hawaii", start, end)
    lat, lon = insitu["lat"].values, insitu["lon"].values
    cy, cx = domain.cell_index(lat, lon)
    fy = np.abs(fine.lat[None, :] - lat[:, None]).argmin(axis=1)
    fx = np.abs(fine.lon[None, :] - lon[:, None]).argmin(axis=1)
    obs = insitu["soil_moisture"].reindex(time=pd.DatetimeIndex(days)).values  # (station, day)
    series = {"merged 0.1 deg (published)": np.full(obs.shape, np.nan)}
    series.update({f"0.01 deg {m}": np.full(obs.shape, np.nan) for m in methods})
    seconds = dict.fromkeys(methods, 0.0)
    stack = None
    used = 0
    for t, day in enumerate(days):
        try:
            key = published_assets(s3, settings.products_bucket, day)["merged-sm"]
        except (FileNotFoundError, KeyError):
            continue
        body = s3.get_object(Bucket=settings.products_bucket, Key=key)["Body"].read()
        coarse = xr.load_dataset(io.BytesIO(body), engine="h5netcdf")["soil_moisture"].squeeze(drop=True)
        coarse = coarse.transpose("lat", "lon").values
        used += 1
        series["merged 0.1 deg (published)"][:, t] = coarse[cy, cx]
        stack = stack or build_stack(domain, fine, day, shared)  # static covariates on the Big Island
        for m in methods:
            t0 = time.perf_counter()
            field, _ = downscale_field(coarse, domain, fine, stack, method=m)
            seconds[m] += time.perf_counter() - t0
            if field is not None:
                series[f"0.01 deg {m}"][:, t] = field[fy, fx]
    if not used:
        raise FileNotFoundError(f"no published merged-sm day in {start}..{end} (run infra/main.sh)")
    rows = []
    for name, x in series.items():
        both = np.isfinite(x) & np.isfinite(obs)
        r = pearson_r(x, obs, min_samples=min_samples)
        u = ubrmse(x, obs, min_samples=min_samples)
        b = bias(x, obs, min_samples=min_samples)
        rm, ub = _median_ci(r), _median_ci(u)
        rows.append({"product": name, "r": rm[0], "r_ci": rm[1:], "ubrmse": ub[0], "ubrmse_ci": ub[1:],
                     "bias": float(np.nanmedian(b)), "stations": int(np.isfinite(r).sum()),
                     "days": int(both.any(axis=0).sum()),
                     "seconds": round(seconds.get(name.removeprefix("0.01 deg "), 0.0), 1)})
    return rows


def format_rows(rows: list[dict]) -> str:
    """Markdown table of :func:`station_skill` rows."""
    out = ["| product | R [95 % CI] | ubRMSE [95 % CI] | bias | stations | days | downscaling s |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['product']} | {r['r']:.3f} [{r['r_ci'][0]:.3f}, {r['r_ci'][1]:.3f}] | "
                   f"{r['ubrmse']:.3f} [{r['ubrmse_ci'][0]:.3f}, {r['ubrmse_ci'][1]:.3f}] | {r['bias']:+.3f} | "
                   f"{r['stations']} | {r['days']} | {r['seconds'] or '-'} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2018, 6, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2018, 6, 30))
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args(argv)
    print(format_rows(station_skill(args.start, args.end, methods=tuple(args.methods.split(",")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
