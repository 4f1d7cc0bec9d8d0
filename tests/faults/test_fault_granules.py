"""Faulty granules of every input product of daily_soil_moisture, through the DAG's ingest task.

For SMAP, ERA5-Land, GLDAS and C3S a real granule (cut by the archive stand-in from the Hawaii
time series, as the providers' stand-ins serve it) is first ingested into the store; then a faulty
granule of the same day lands and goes through ``smflow.operators.daily.ingest_granule`` on the
real S3 server. Each fault must be quarantined (or, for an empty granule of a product whose suite
allows days without data, recorded missing) with a reason that says what is wrong, and the good
field in the store must stay as it was (same ETag); nothing is left under a staging prefix.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from smflow.config import REPO_ROOT
from smflow.quality.suites import INPUT_PRODUCTS

pytestmark = pytest.mark.faults
DAY = date(2017, 6, 1)
REAL_TIMESERIES = REPO_ROOT.parent / "shared" / "data" / "real" / "hawaii_timeseries"

#: fault -> (text the reason must contain, products whose suite accepts an empty day)
FAULTS: dict[str, str] = {
    "wrong units (percent)": "wrong units?",
    "truncated": "truncated",
    "empty file (0 bytes)": "empty (0 bytes)",
    "all values missing": "values missing",
    "wrong day": "timestamps outside the day",
    "wrong grid (coordinates shifted 0.05 deg)": "wrong grid",
    "another region (lon + 20 deg)": "outside the domain",
}


def _corrupt(good: Path, dest: Path, fault: str, variable: str) -> Path:
    """A copy of ``good`` with ``fault``."""
    shutil.copyfile(good, dest)
    if fault == "truncated":
        data = good.read_bytes()
        dest.write_bytes(data[: len(data) // 2 + 7])
        return dest
    if fault == "empty file (0 bytes)":
        dest.write_bytes(b"")
        return dest
    with netCDF4.Dataset(dest, "r+") as nc:
        if fault == "wrong units (percent)":
            var = nc[variable]
            var.set_auto_maskandscale(True)
            var[:] = var[:] * 100.0
        elif fault == "all values missing":  # as a provider writes a day without data
            var = nc[variable]
            var.set_auto_maskandscale(True)
            var[:] = np.ma.masked_all(var.shape)
        elif fault == "wrong day":
            step = {"days": 1, "hours": 24, "seconds": 86400}[nc["time"].units.split()[0]]
            nc["time"][:] = nc["time"][:] + step
        elif fault.startswith("wrong grid"):
            nc["lat"][:] = nc["lat"][:] + 0.05
            nc["lon"][:] = nc["lon"][:] + 0.05
        elif fault.startswith("another region"):
            nc["lon"][:] = nc["lon"][:] + 20.0
        else:
            raise ValueError(fault)
    return dest


def _etags(s3, bucket: str, prefix: str) -> dict[str, str]:
    from smflow.s3 import list_keys

    return {key: s3.head_object(Bucket=bucket, Key=key)["ETag"] for key in list_keys(s3, bucket, prefix)}


@pytest.fixture(scope="module")
def good_granules(stack, tmp_path_factory):
    """product -> path of the real granule of DAY (cut by the archive stand-in)."""
    if not REAL_TIMESERIES.is_dir():
        pytest.skip(f"real data not available at {REAL_TIMESERIES}")
    from infra.archive_stand_in import ArchiveStandIn

    folder = tmp_path_factory.mktemp("good")
    return {p: ArchiveStandIn(stack).write_granule(p, DAY, folder / f"{p}_{DAY:%Y%m%d}.nc") for p in INPUT_PRODUCTS}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("product", INPUT_PRODUCTS)
def test_a_faulty_granule_is_quarantined_and_the_stored_field_kept(product, fault, stack, s3_client, good_granules,
                                                                     fault_table, tmp_path):
    from smflow.landing import LandingZone
    from smflow.operators.daily import STAGING_PREFIX, ingest_granule
    from smflow.products import get_product
    from smflow.publish.publisher import STAGING_PREFIX as PUBLISH_STAGING
    from smflow.store import TimeSeriesStore

    settings = stack
    zone = LandingZone(settings, s3=s3_client)
    key = zone.granule_key(product, DAY)
    ref = {"product": product, "day": DAY.isoformat(), "bucket": zone.bucket, "key": key}
    good = good_granules[product]

    s3_client.put_object(Bucket=zone.bucket, Key=key, Body=good.read_bytes())
    assert ingest_granule(ref, settings=settings)["status"] == "stored"
    store = TimeSeriesStore(settings, s3=s3_client)
    before = store.get(product, DAY)

    bad = _corrupt(good, tmp_path / good.name, fault, get_product(product).variable)
    s3_client.put_object(Bucket=zone.bucket, Key=key, Body=bad.read_bytes())
    try:
        t0 = time.monotonic()
        result = ingest_granule(ref, settings=settings)
        seconds = time.monotonic() - t0
    finally:  # the landing zone holds the good granule again for the other cases
        s3_client.put_object(Bucket=zone.bucket, Key=key, Body=good.read_bytes())

    expected = FAULTS[fault]
    if result["status"] == "empty":  # a day without data is legitimate for this product's suite
        assert fault == "all values missing" and get_product(product).name in ("smap", "c3s"), result
        assert result["reason"] == "no valid value on the domain grid"
        outcome = "recorded missing with a reason"
    else:
        assert result["status"] == "quarantined", result
        assert expected in result["reason"], result["reason"]
        assert "/tmp" not in result["reason"], result["reason"]  # the landing object is named, not a temp copy
        if fault == "all values missing":  # fill values are missing values, not values in other units
            assert "wrong units" not in result["reason"], result["reason"]
        sidecar = json.loads(s3_client.get_object(Bucket=settings.store_bucket,
                                                  Key=result["quarantine_key"] + ".validation.json")["Body"].read())
        assert sidecar["reason"] == result["reason"]
        quarantined = s3_client.get_object(Bucket=settings.store_bucket, Key=result["quarantine_key"])["Body"].read()
        assert quarantined == bad.read_bytes()  # the faulty bytes, kept for inspection
        outcome = "quarantined with a reason"
    after = store.get(product, DAY)
    assert after is not None and after.values.tobytes() == before.values.tobytes(), \
        "the good stored field was overwritten"
    assert not _etags(s3_client, settings.store_bucket, f"{STAGING_PREFIX}/{DAY:%Y%m%d}/")
    assert not _etags(s3_client, settings.products_bucket, PUBLISH_STAGING)
    fault_table.record(f"{product}: {fault}", outcome, recovery_s=seconds)
