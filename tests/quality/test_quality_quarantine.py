"""Quarantine and stored validation results against the real S3 server."""

from __future__ import annotations

import json

import pytest

from quality_fixtures import GOOD_DAY, REAL_TIMESERIES
from smflow.quality.quarantine import (
    list_quarantine,
    load_validation_result,
    quarantine_failure,
    quarantine_granule,
    store_validation_result,
)
from smflow.quality.validate import validate_granule, validate_product


def _get_json(s3, bucket, key):
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def landing_object(quality_settings, s3_client):
    """A real ERA5-Land cell file uploaded as a landing granule; returns (bucket, key, bytes)."""
    data = (REAL_TIMESERIES / "ERA5_LAND_V20190904" / "0165.nc").read_bytes()
    key = "era5_land/2017/06/era5_land_20170601.nc"
    s3_client.put_object(Bucket=quality_settings.landing_bucket, Key=key, Body=data)
    return quality_settings.landing_bucket, key, data


def test_failing_granule_is_quarantined_with_its_result(quality_settings, s3_client, landing_object, granule):
    bucket, source_key, data = landing_object
    decoded = granule("era5_land")
    decoded["soil_moisture"] = decoded["soil_moisture"] * 100
    outcome = validate_granule("era5_land", decoded, GOOD_DAY)
    assert not outcome.success

    key = quarantine_granule(
        s3_client, quality_settings, product="era5_land", day=GOOD_DAY,
        source_bucket=bucket, source_key=source_key, outcome_or_error=outcome,
    )
    assert key == "quarantine/era5_land/20170601/era5_land_20170601.nc"
    store = quality_settings.store_bucket
    assert s3_client.get_object(Bucket=store, Key=key)["Body"].read() == data
    sidecar = _get_json(s3_client, store, key + ".validation.json")
    assert sidecar["reason"] == outcome.reason
    assert sidecar["suite_name"] == "granule_era5_land"
    assert sidecar["failed_checks"] == ["physical_range"]
    assert sidecar["source_uri"] == f"s3://{bucket}/{source_key}"
    assert sidecar["quarantined_at"].endswith("+00:00")
    assert sidecar["statistics"]["n_observations"] == 136
    assert sidecar["result"]["success"] is False
    assert sidecar["source_size"] == len(data)
    # the landing original stays
    assert s3_client.get_object(Bucket=bucket, Key=source_key)["Body"].read() == data

    # idempotent: same keys, first time kept
    again = quarantine_granule(
        s3_client, quality_settings, product="era5_land", day=GOOD_DAY,
        source_bucket=bucket, source_key=source_key, outcome_or_error=outcome,
    )
    assert again == key
    sidecar2 = _get_json(s3_client, store, key + ".validation.json")
    assert sidecar2["first_quarantined_at"] == sidecar["first_quarantined_at"]
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=store, Prefix="quarantine/era5_land/")["Contents"]]
    assert keys == [key, key + ".validation.json"]

    listed = list_quarantine(s3_client, quality_settings, day=GOOD_DAY)
    assert [e["key"] for e in listed] == [key]
    assert listed[0]["product"] == "era5_land" and listed[0]["day"] == GOOD_DAY
    assert listed[0]["failed_checks"] == ["physical_range"]
    assert list_quarantine(s3_client, quality_settings, day="2017-06-02") == []
    assert [e["key"] for e in list_quarantine(s3_client, quality_settings, product="era5_land")] == [key]


def test_unreadable_file_is_quarantined_with_the_error(quality_settings, s3_client):
    bucket = quality_settings.landing_bucket
    source_key = "gldas/2017/06/gldas_20170601.nc"
    s3_client.put_object(Bucket=bucket, Key=source_key, Body=b"<html>503 Service Unavailable</html>")
    error = ValueError("gldas_20170601.nc: not a netCDF file (starts with b'<html>50')")
    try:
        from smflow.readers.granule import GranuleError
    except ImportError:
        pass
    else:
        error = GranuleError("gldas_20170601.nc", "not a netCDF file (starts with b'<html>50')")

    key = quarantine_granule(
        s3_client, quality_settings, product="gldas", day="20170601",
        source_bucket=bucket, source_key=source_key, outcome_or_error=error,
    )
    sidecar = _get_json(s3_client, quality_settings.store_bucket, key + ".validation.json")
    assert sidecar["reason"] == str(error)
    assert sidecar["error_type"] == type(error).__name__
    assert sidecar["failed_checks"] == ["unreadable"]
    assert s3_client.head_object(Bucket=bucket, Key=source_key)["ContentLength"] > 0


def test_quarantine_failure_returns_the_task_record_and_logs(quality_settings, s3_client, caplog):
    """The step every ingest task shares: quarantine, log one warning, return the result record."""
    from smflow.readers.granule import GranuleError

    bucket = quality_settings.landing_bucket
    source_key = "c3s/2017/06/c3s_20170603.nc"
    s3_client.put_object(Bucket=bucket, Key=source_key, Body=b"CDF\x01 truncated")
    error = GranuleError("c3s_20170603.nc", "truncated netCDF file; re-fetch it from the landing zone")
    with caplog.at_level("WARNING", logger="smflow.quality.quarantine"):
        record = quarantine_failure(
            s3_client, quality_settings, product="c3s", day="2017-06-03T00:00:00+00:00",
            source_bucket=bucket, source_key=source_key, outcome_or_error=error,
        )
    assert record == {"status": "quarantined", "reason": str(error),
                      "quarantine_key": "quarantine/c3s/20170603/c3s_20170603.nc"}
    sidecar = _get_json(s3_client, quality_settings.store_bucket, record["quarantine_key"] + ".validation.json")
    assert sidecar["reason"] == str(error) and sidecar["day"] == "2017-06-03"
    assert [r.getMessage() for r in caplog.records] == [
        f"quarantined s3://{bucket}/{source_key} as s3://{quality_settings.store_bucket}/"
        f"{record['quarantine_key']}: {error}"
    ]


def test_missing_source_is_not_quarantined(quality_settings, s3_client):
    with pytest.raises(FileNotFoundError, match="missing input"):
        quarantine_granule(
            s3_client, quality_settings, product="smap", day=GOOD_DAY,
            source_bucket=quality_settings.landing_bucket, source_key="smap/2017/06/smap_20170601.nc",
            outcome_or_error=RuntimeError("x"),
        )


def test_validation_results_are_kept(quality_settings, s3_client, granule, product):
    granule_outcome = validate_granule("c3s", granule("c3s"), GOOD_DAY)
    key = store_validation_result(s3_client, quality_settings, "granule", "c3s", GOOD_DAY, granule_outcome)
    assert key == "validation/granule/c3s/20170601.json"
    stored = load_validation_result(s3_client, quality_settings, "granule", "c3s", GOOD_DAY)
    assert stored["success"] is True and stored["kind"] == "granule" and stored["day"] == GOOD_DAY
    assert stored["result"]["statistics"]["evaluated_expectations"] >= 10

    product_outcome = validate_product(product(), GOOD_DAY)
    key = store_validation_result(s3_client, quality_settings, "product", "daily", GOOD_DAY, product_outcome.to_dict())
    assert key == "validation/product/daily/20170601.json"
    assert load_validation_result(s3_client, quality_settings, "product", "daily", GOOD_DAY)["success"] is True
    assert load_validation_result(s3_client, quality_settings, "product", "daily", "2017-06-02") is None
