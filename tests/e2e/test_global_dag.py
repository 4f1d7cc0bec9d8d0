"""End to end on the global 0.25 deg domain fed by real granules: ``daily_soil_moisture_global_025``.

The real ESA CCI SM v05.2 ACTIVE and PASSIVE images of 2016-06-06 are landed as a provider delivers
them. The real days are too few for the window, so the history before the day, and GLDAS on the day
(the real GLDAS granules are of 2016-01-01), are made by :mod:`smflow.synthetic` anchored on a real
GLDAS granule and on the CCI images' coverage, over a reduced window (32 days) and a reduced box
(western Europe: the cells where TC can resolve; no random dropout, so that the 31 training days
and the day's 32-day window give TC its ``smflow.daily.TC_MIN_SAMPLES`` = 30 common samples), then
the domain's TC merging and SM2RAIN models are trained and registered. ``airflow dags test`` then
ingests the real CCI files (native readers, regridding, GX suites), merges, runs SM2RAIN and TC,
validates and publishes to the domain's own bucket. The published files must be valid CF with land values everywhere the real CCI has them, the
STAC item must list the assets, and the synthetic label must be in the files and the item.

Part of the default run (``SMFLOW_SKIP_GLOBAL_E2E=1`` leaves it out); the fixture prints the time
of each of its stages (``pytest -s``): the daily science of ``airflow dags test`` on the 864,000
grid cells is most of it.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from smflow.config import Settings
from tests.e2e.test_native_domain_dag import _airflow  # the same `airflow` CLI runner

REPO = Path(__file__).resolve().parents[2]
SHARED = Settings.load().shared_data_dir
pytestmark = [pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available"),
              pytest.mark.skipif(os.environ.get("SMFLOW_SKIP_GLOBAL_E2E") == "1",
                                 reason="SMFLOW_SKIP_GLOBAL_E2E=1: the global e2e is left out"),
              pytest.mark.e2e, pytest.mark.slow]

PIPELINE = "global_025"
DAG_ID = "daily_soil_moisture_global_025"
DAY = date(2016, 6, 6)
#: Days of the TC window: TC_MIN_SAMPLES (30) + 2, the daily science's cost is linear in it.
WINDOW = 32
#: lon_min, lat_min, lon_max, lat_max of the reduced history (western Europe)
BOX = (-10.0, 36.0, 20.0, 56.0)
CCI = {
    "esa_cci_sm_active": "esa_cci_sm_v05.2/active/ESACCI-SOILMOISTURE-L3S-SSMS-ACTIVE-20160606000000-fv05.2.nc",
    "esa_cci_sm_passive": "esa_cci_sm_v05.2/passive/ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160606000000-fv05.2.nc",
}
GLDAS_ANCHOR = "gldas_noah21/GLDAS_NOAH025_3H.A20160101.1200.021.nc4"


@pytest.fixture(scope="module")
def published(stack, s3_client, airflow_env):
    from infra.archive_stand_in import ArchiveStandIn
    from smflow.catalog import pipeline
    from smflow.domain import load_domain
    from smflow.ml.train import train_domain_models
    from smflow.operators.daily import products_settings
    from smflow.store import TimeSeriesStore
    from smflow.synthetic import GLOBAL_PARENT_MODELS, anchor_climatology, coverage, generate_history

    settings = stack
    stages: dict[str, float] = {}
    t0 = time.monotonic()

    def stage(name: str) -> None:
        nonlocal t0
        stages[name], t0 = time.monotonic() - t0, time.monotonic()

    grid = load_domain(pipeline(PIPELINE).domain)
    zone = ArchiveStandIn(stack, s3=s3_client)
    for product, path in CCI.items():
        zone.put_native(product, DAY, SHARED / path)
    stage("land")
    start = DAY - timedelta(days=WINDOW - 1)
    anchor = anchor_climatology([SHARED / GLDAS_ANCHOR], grid)
    masks = {p: coverage(SHARED / path, grid, p) for p, path in CCI.items()}
    stage("anchor+coverage")
    generate_history(TimeSeriesStore(settings, s3=s3_client, grid=grid), grid, start, DAY, anchor=anchor,
                     parents={p: replace(m, dropout=0.0) for p, m in GLOBAL_PARENT_MODELS.items()},
                     coverage_masks=masks, bbox=BOX, settings=settings)
    stage("history")
    trained = train_domain_models(PIPELINE, (start, DAY - timedelta(days=1)), settings=settings)
    assert all(r.promoted for r in trained), [r.gate for r in trained]
    stage("train")
    _airflow(airflow_env, "dags", "test", DAG_ID, DAY.isoformat(),
             "-c", json.dumps({"granule_wait_hours": 0, "tc_window_days": WINDOW}), timeout=1200)
    stage("dags test")
    print("global e2e fixture [s]: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    return products_settings(settings, grid.name), grid


def _get(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_global_day_is_published_valid_and_labelled_synthetic(published, s3_client):
    import xarray as xr

    from smflow.publish.publisher import item_key

    target, grid = published
    item = json.loads(_get(s3_client, target.products_bucket, item_key(DAY)))
    props = item["properties"]
    assert "SYNTHETIC" in props["smflow:smflow_synthetic"]
    assert "esa_cci_sm_active: real granule" in props["smflow:smflow_synthetic"]
    assert "gldas_noah025: synthetic" in props["smflow:smflow_synthetic"]
    assert props["smflow:missing_inputs"] == []  # GLDAS of the day is the labelled synthetic field
    assert any("ESACCI-SOILMOISTURE-L3S-SSMS-ACTIVE-20160606" in g for g in props["smflow:input_granules"])
    assert {"merged-sm", "sm2rain-precip", "tc-diagnostics", "quicklook-soil_moisture"} <= set(item["assets"])
    assert item["bbox"] == [-180.0, -60.0, 180.0, 90.0]

    def dataset(asset: str) -> xr.Dataset:
        key = item["assets"][asset]["alternate"]["s3"]["href"].split(f"{target.products_bucket}/", 1)[1]
        return xr.load_dataset(io.BytesIO(_get(s3_client, target.products_bucket, key)), engine="h5netcdf")

    merged = dataset("merged-sm")
    assert "CF-1.8" in merged.attrs["Conventions"] and merged.attrs["domain"] == "global_025"
    assert merged.attrs["smflow_synthetic"].startswith("SYNTHETIC")
    assert "ESA CCI Soil Moisture L3S daily image, ACTIVE product" in merged.attrs["source"]
    sm = merged["soil_moisture"]
    assert sm.attrs["units"] == "m3 m-3" and sm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert sm.shape[-2:] == grid.shape
    values = sm.values.reshape(grid.shape)
    land = grid.land_mask
    assert np.isfinite(values[land]).sum() > 100_000  # the real CCI day covers most land cells
    assert not np.isfinite(values[~land]).any()
    assert 0.0 <= np.nanmin(values) and np.nanmax(values) <= 1.0
    tc = dataset("tc-diagnostics")
    assert tc.attrs["smflow_synthetic"].startswith("SYNTHETIC") and int(tc.attrs["tc_window_days"]) == WINDOW
    resolved = tc["tc_resolved"].values.reshape(grid.shape)
    assert 500 < resolved.sum() < 40_000  # inside the generated box only
    rain = dataset("sm2rain-precip")
    assert rain.attrs["product_status"] == "experimental" and rain.attrs["smflow_synthetic"].startswith("SYNTHETIC")
    png = _get(s3_client, target.products_bucket,
               item["assets"]["quicklook-soil_moisture"]["alternate"]["s3"]["href"].split(f"{target.products_bucket}/", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
