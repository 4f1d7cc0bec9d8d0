"""Time-series store: per-day netCDF objects vs the chunked Zarr v3 store (Icechunk), in the stack's S3.

For a 180-day window (what ``compute_products`` reads per input) and for one day's map, on the Big
Island grid (13 x 10 cells) and on a synthetic 500 x 500 grid (250,000 cells, 0.1 deg), prints per
layout: S3 requests (counted by a relay in front of the gateway, :mod:`infra.s3_request_counter`,
in a separate pass: the relay's buffering is not in the timings), wall time (median of
``--repeat`` cold reads: a new store object each time, as a task process has) and the ratio.

Needs the stack's S3 server (``.venv/bin/python infra/stack.py start --only s3``); writes into a
scratch bucket that it removes at the end. The fields are synthetic (uniform random soil moisture
in 0.05..0.5 m3 m-3 on land, NaN on sea, float64 as the ingest writes them): random values
compress worse than real maps, for both layouts alike.

    .venv/bin/python benchmarks/bench_store.py            # both grids, ~3 min on 2 cores
    .venv/bin/python benchmarks/bench_store.py --quick    # the Big Island grid only, ~20 s
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import uuid
from datetime import date, timedelta

import numpy as np
import xarray as xr

from _common import REPO_ROOT, machine  # noqa: F401 - puts the work tree on sys.path

from infra.s3_request_counter import S3RequestCounter
from smflow import s3 as s3mod
from smflow.config import Settings
from smflow.domain import DomainGrid, load_domain
from smflow.store import ChunkedTimeSeriesStore, DailyObjectStore
from smflow.store.chunked import chunk_shape

WINDOW_DAYS = 180
END = date(2018, 6, 30)


def square_grid(n: int) -> DomainGrid:
    """A synthetic ``n`` x ``n`` 0.1 deg domain, every cell land (``n = 500``: 250,000 cells)."""
    return DomainGrid(name=f"bench_{n}x{n}", crs="EPSG:4326", resolution=0.1, lat_first=0.0,
                      lat_last=round(0.1 * (n - 1), 6), lon_first=0.0, lon_last=round(0.1 * (n - 1), 6),
                      land=tuple(tuple(True for _ in range(n)) for _ in range(n)))


def synthetic_series(grid: DomainGrid, days: list[date], seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.05, 0.5, size=(len(days), *grid.shape))
    values[:, ~np.asarray(grid.land_mask)] = np.nan
    return xr.DataArray(values, dims=("time", "lat", "lon"),
                        coords={"time": np.array(days, dtype="datetime64[ns]"),
                                "lat": grid.lat_coord(), "lon": grid.lon_coord()},
                        name="soil_moisture", attrs={"units": "m3 m-3", "long_name": "synthetic soil moisture"})


def measure(settings: Settings, grid: DomainGrid, repeat: int) -> list[dict]:
    days = [END - timedelta(days=WINDOW_DAYS - 1 - k) for k in range(WINDOW_DAYS)]
    series = synthetic_series(grid, days)
    layouts = {"per-day netCDF": DailyObjectStore, "chunked Zarr (Icechunk)": ChunkedTimeSeriesStore}
    t0 = time.perf_counter()
    for cls in layouts.values():
        cls(settings, grid=grid).put_many("bench", days, series)
    print(f"  wrote {WINDOW_DAYS} days into both layouts in {time.perf_counter() - t0:.1f} s")
    rows = []
    for label, cls in layouts.items():
        reads = {"180-day window": lambda s: s.window("bench", END, WINDOW_DAYS),
                 "one day's map": lambda s: s.get("bench", END)}
        for what, read in reads.items():
            times = []
            for _ in range(repeat):
                store = cls(settings, grid=grid)  # cold, as a task process is
                t = time.perf_counter()
                out = read(store)
                times.append(time.perf_counter() - t)
            expected = series.values if what.startswith("180") else series.values[-1]
            assert np.array_equal(out.values, expected, equal_nan=True), f"{label}: wrong values"
            with S3RequestCounter(settings.s3_endpoint_url) as counter:
                relayed = dataclasses.replace(settings, s3_endpoint_url=counter.url)
                read(cls(relayed, s3=s3mod.client(relayed), grid=grid))
                requests = counter.total
            rows.append({"grid": f"{grid.shape[0]} x {grid.shape[1]}", "cells": grid.shape[0] * grid.shape[1],
                         "layout": label, "read": what, "requests": requests,
                         "median_s": statistics.median(times), "min_s": min(times)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the Big Island grid only")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = Settings.load().as_s3_role("admin")
    settings = dataclasses.replace(base, store_bucket=f"bench-store-{uuid.uuid4().hex[:8]}")
    client = s3mod.client(settings)
    print(machine())
    grids = [load_domain()] + ([] if args.quick else [square_grid(500)])
    rows = []
    try:
        for grid in grids:
            print(f"grid {grid.name} {grid.shape}: chunk shape (days, lat, lon) {chunk_shape(grid.shape)}")
            rows += measure(settings, grid, args.repeat)
    finally:
        for key in s3mod.list_keys(client, settings.store_bucket, empty_if_no_bucket=True):
            client.delete_object(Bucket=settings.store_bucket, Key=key)
        try:
            client.delete_bucket(Bucket=settings.store_bucket)
        except Exception:  # noqa: BLE001 - best effort
            pass
    print()
    print("| grid | cells | read | layout | S3 requests | wall time median [s] (min) | ratio per-day / chunked |")
    print("|---|---:|---|---|---:|---:|---:|")
    for r in rows:
        ref = next(x for x in rows if x["grid"] == r["grid"] and x["read"] == r["read"] and x["layout"].startswith("per-day"))
        ratio = "" if r is ref else f"{ref['median_s'] / r['median_s']:.1f} (time), {ref['requests'] / r['requests']:.2g} (requests)"
        print(f"| {r['grid']} | {r['cells']:,} | {r['read']} | {r['layout']} | {r['requests']} | "
              f"{r['median_s']:.3f} ({r['min_s']:.3f}) | {ratio} |")


if __name__ == "__main__":
    main()
