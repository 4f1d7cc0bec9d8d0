"""Skill of the published products: merged vs each parent against C3S and in-situ; SM2RAIN vs gauges.

Reads what was published (the products bucket), not the pipeline's internals, so the table says
what users get.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from smflow.config import Settings


@dataclass(frozen=True)
class SkillRow:
    """One line of the skill table (medians over cells or stations)."""

    product: str
    reference: str
    r: float
    ubrmse: float
    bias: float
    n_sites: int
    n_days: int
    extra: str = ""


def _open_published(s3, settings: Settings, name: str, days: list[date]):
    import xarray as xr

    from smflow.publish.publisher import published_assets

    parts = []
    for d in days:
        try:  # through the day's STAC item, the commit point of a published day
            key = published_assets(s3, settings.products_bucket, d)[name]
        except FileNotFoundError:
            continue
        body = s3.get_object(Bucket=settings.products_bucket, Key=key)["Body"].read()
        parts.append(xr.load_dataset(io.BytesIO(body), engine="h5netcdf"))
    if not parts:
        raise FileNotFoundError(f"no published {name} files in s3://{settings.products_bucket}/daily/ for {days[0]}..{days[-1]}")
    return xr.concat(parts, dim="time")


def _cells(a: np.ndarray) -> np.ndarray:
    """(time, lat, lon) -> (cells, time)."""
    return a.reshape(a.shape[0], -1).T


def _fine_at_stations(s3, settings: Settings, days: list[date], insitu, times) -> tuple[str, np.ndarray] | None:
    """(method, (station, time) values) of the published 0.01 deg product at the stations, or None
    when no day of ``days`` has one."""
    import json

    from smflow.publish.fine import item_key_1km, open_published_1km

    methods = set()
    for d in days:
        try:
            item = json.loads(s3.get_object(Bucket=settings.products_bucket, Key=item_key_1km(d))["Body"].read())
        except s3.exceptions.NoSuchKey:
            continue
        methods.add(str(item["properties"].get("smflow:method")))
    if not methods:
        return None
    values = open_published_1km(s3, settings.products_bucket, days, insitu["lat"].values, insitu["lon"].values)
    by_day = pd.DataFrame(values.T, index=pd.DatetimeIndex(days)).reindex(times)
    return ", ".join(sorted(methods)), by_day.values.T


def skill_table(start: date, end: date, *, settings: Settings | None = None, min_samples: int = 10,
                days: list[date] | None = None, s3=None) -> list[SkillRow]:
    """Compute the skill rows for the published days ``start..end`` (or only ``days``, e.g. the days
    one model version made: :mod:`smflow.ml.drift`); days not published are skipped."""
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.ingest import gridded_series
    from smflow.science.metrics import bias, pearson_r, ubrmse

    settings = settings or Settings.load()
    s3 = s3 or s3mod.client(settings)
    grid = load_domain()
    days = sorted(days) if days is not None else list(pd.date_range(start, end, freq="D").date)
    sm = _open_published(s3, settings, "merged-sm", days)
    n_days = sm.sizes["time"]
    times = pd.DatetimeIndex(sm["time"].values)
    methods = sorted(set(str(m) for m in np.atleast_1d(sm.attrs.get("merging_method", "tc"))))
    label = {"tc": "TC least squares", "bma": "BMA of RF, LSTM, CNN"}
    candidates = {f"merged ({', '.join(label.get(m, m) for m in methods)})": sm["soil_moisture"].values}
    if "member_soil_moisture" in sm:  # the ML champion's members, as published
        for k, member in enumerate(sm["member"].values):
            candidates[f"member {member}"] = sm["member_soil_moisture"].values[:, k]
    for k, src in enumerate(sm["source"].values):
        candidates[str(src)] = sm["source_soil_moisture"].values[:, k]

    rows: list[SkillRow] = []
    c3s = gridded_series("c3s", times[0].date(), times[-1].date(), grid).reindex(time=times).values
    for name, values in candidates.items():
        x, y = _cells(values), _cells(c3s)
        r = pearson_r(x, y, min_samples=min_samples)
        rows.append(SkillRow(name, "C3S SM COMBINED (cells)", float(np.nanmedian(r)), float(np.nanmedian(ubrmse(x, y, min_samples=min_samples))),
                             float(np.nanmedian(bias(x, y, min_samples=min_samples))), int(np.isfinite(r).sum()), n_days))

    shared = settings.shared_data_dir
    if shared is not None and (shared / "ismn_hawaii").is_dir():
        from smflow.insitu import load_gauges, load_insitu_soil_moisture

        insitu = load_insitu_soil_moisture(shared / "ismn_hawaii", times[0].date(), times[-1].date())
        iy, ix = grid.cell_index(insitu["lat"].values, insitu["lon"].values)
        obs = insitu["soil_moisture"].reindex(time=times).values  # (station, time)
        for name, values in candidates.items():
            x = values[:, iy, ix].T
            r = pearson_r(x, obs, min_samples=min_samples)
            rows.append(SkillRow(name, "ISMN in-situ 0-5 cm (stations)", float(np.nanmedian(r)),
                                 float(np.nanmedian(ubrmse(x, obs, min_samples=min_samples))),
                                 float(np.nanmedian(bias(x, obs, min_samples=min_samples))), int(np.isfinite(r).sum()), n_days))
        fine = _fine_at_stations(s3, settings, days, insitu, times)
        if fine is not None:  # the 0.01 deg product (pipelines with 'downscaled'): point vs 1 km pixel
            method, x = fine
            r = pearson_r(x, obs, min_samples=min_samples)
            rows.append(SkillRow(f"merged 0.01 deg ({method})", "ISMN in-situ 0-5 cm (stations)",
                                 float(np.nanmedian(r)), float(np.nanmedian(ubrmse(x, obs, min_samples=min_samples))),
                                 float(np.nanmedian(bias(x, obs, min_samples=min_samples))), int(np.isfinite(r).sum()),
                                 int(np.isfinite(x).any(axis=0).sum()), extra="station point vs its 0.01 deg pixel"))
        rain = _open_published(s3, settings, "sm2rain-precip", days)["precipitation_amount"].values
        gauges = load_gauges(shared / "ismn_hawaii", times[0].date(), times[-1].date())
        gy, gx = grid.cell_index(gauges["lat"].values, gauges["lon"].values)
        p_obs = gauges["precipitation_amount"].reindex(time=times).values
        p_sim = rain[:, gy, gx].T
        r = pearson_r(p_sim, p_obs, min_samples=min_samples)
        from smflow.science.metrics import kge, rmse

        rows.append(SkillRow("SM2RAIN rainfall", "SCAN rain gauges (stations)", float(np.nanmedian(r)),
                             float(np.nanmedian(rmse(p_sim, p_obs, min_samples=min_samples))),
                             float(np.nanmedian(bias(p_sim, p_obs, min_samples=min_samples))), int(np.isfinite(r).sum()), n_days,
                             extra=f"KGE {np.nanmedian(kge(p_sim, p_obs, min_samples=min_samples)):.2f}; RMSE/bias in mm/day"))
    return rows


def format_table(rows: list[SkillRow]) -> str:
    head = f"{'product':<28} {'reference':<32} {'R':>6} {'ubRMSE':>8} {'bias':>8} {'sites':>5} {'days':>4}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.product:<28} {r.reference:<32} {r.r:6.3f} {r.ubrmse:8.4f} {r.bias:8.4f} {r.n_sites:5d} {r.n_days:4d}  {r.extra}")
    lines.append("R: Pearson correlation; ubRMSE, bias in m3 m-3 (soil moisture) or mm/day (rainfall); medians over sites.")
    return "\n".join(lines)
