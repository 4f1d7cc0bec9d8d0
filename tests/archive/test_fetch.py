"""The daily fetch through the providers' protocols: the Hawaii stand-in (CMR + CDS) in a thread, the
real local S3, credentials from Airflow connections. Search, verified download, landing with
provenance, and the faults: checksum mismatch, truncated transfer, wrong-date granule, outage, 429,
late granule, missing or wrong credentials (never logged)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
import uuid
from datetime import date, timedelta

import pytest

from smflow.archive.base import CredentialsError, ProviderUnavailable, UnexpectedGranule
from smflow.archive.fetch import FetchFailed, fetch_to_landing, find_granule, provider_inventory

DAY = date(2018, 6, 1)
TOKEN = "edl-" + uuid.uuid4().hex
CDS_TOKEN = uuid.uuid4().hex


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from infra.providers.hawaii import HawaiiArchive

    with HawaiiArchive(token=TOKEN, cds_token=CDS_TOKEN, cache_dir=tmp_path_factory.mktemp("cuts")) as server:
        server.prepare(DAY, DAY + timedelta(days=3))
        yield server


@pytest.fixture
def provider(archive, monkeypatch):
    """The Airflow connections pointing at the stand-in; its state reset afterwards."""
    monkeypatch.setenv("AIRFLOW_CONN_SMFLOW_EARTHDATA",
                       json.dumps({"conn_type": "http", "host": archive.url, "password": TOKEN}))
    monkeypatch.setenv("AIRFLOW_CONN_SMFLOW_CDS",
                       json.dumps({"conn_type": "http", "host": f"{archive.url}/api", "password": CDS_TOKEN}))
    yield archive
    archive.reset()


@pytest.fixture
def zone(stack, s3_client):
    from smflow import s3 as s3mod
    from smflow.landing import LandingZone

    bucket = f"sm-landing-fetch-{uuid.uuid4().hex[:8]}"
    yield LandingZone(dataclasses.replace(stack, landing_bucket=bucket), s3=s3_client)
    for key in s3mod.list_keys(s3_client, bucket, empty_if_no_bucket=True):
        s3_client.delete_object(Bucket=bucket, Key=key)
    try:
        s3_client.delete_bucket(Bucket=bucket)
    except s3_client.exceptions.NoSuchBucket:
        pass


@pytest.mark.parametrize("product", ["smap", "gldas", "era5_land", "c3s"])
def test_each_input_is_found_fetched_verified_and_landed_with_its_provenance(provider, zone, product, caplog,
                                                                             tmp_path):
    import hashlib

    import xarray as xr

    caplog.set_level(logging.DEBUG)
    granule = find_granule(product, DAY)
    assert granule is not None and granule.day == DAY and granule.product == product
    landed = fetch_to_landing(granule, zone=zone, backoff=0.1)
    assert landed["status"] == "landed" and landed["key"] == zone.granule_key(product, DAY)
    head = zone.head(landed["key"])
    body = zone.s3.get_object(Bucket=zone.bucket, Key=landed["key"])["Body"].read()
    meta = head["Metadata"]
    assert meta["sha256"] == hashlib.sha256(body).hexdigest() == landed["sha256"]
    assert meta["provider"] == granule.provider and meta["granule-id"] == granule.granule_id
    assert meta["source-url"] == granule.url and meta["collection"] == granule.collection
    if granule.provider == "cmr":  # CMR announces size and SHA-256: the landed bytes are those
        assert meta["source-checksum"] == granule.checksum == landed["sha256"]
        assert meta["revision"] == granule.revision and meta["collection-version"] == granule.version
    path = zone.fetch(zone.ref(product, DAY), tmp_path)
    with xr.open_dataset(path) as ds:
        assert ds.attrs.get("smflow_day") == DAY.isoformat()
    # fetched again: the same bytes are not rewritten
    again = fetch_to_landing(find_granule(product, DAY), zone=zone, backoff=0.1)
    assert again["status"] == "unchanged" and zone.head(landed["key"])["ETag"] == head["ETag"]
    assert TOKEN not in caplog.text and CDS_TOKEN not in caplog.text


def test_a_granule_not_yet_published_is_not_found_and_a_range_is_one_search(provider):
    provider.publish_until(DAY)
    assert find_granule("smap", DAY + timedelta(days=1)) is None
    assert find_granule("era5_land", DAY + timedelta(days=1)) is None
    provider.publish_until(None)
    n = len(provider.requests)
    inventory = provider_inventory("smap", DAY, DAY + timedelta(days=3))
    assert sorted(inventory) == [DAY + timedelta(days=k) for k in range(4)]
    assert sum("/search/granules" in r for r in provider.requests[n:]) == 1


@pytest.mark.parametrize("mode, message", [("checksum", "checksum mismatch"), ("truncate", "cut short|transfer failed")])
def test_a_corrupt_or_truncated_download_is_retried_then_fails_and_nothing_is_landed(provider, zone, mode, message):
    provider.corrupt("smap", DAY, mode)
    granule = find_granule("smap", DAY)
    n = len(provider.requests)
    with pytest.raises(FetchFailed, match=message) as err:
        fetch_to_landing(granule, zone=zone, attempts=3, backoff=0.05)
    assert "3 download attempts" in str(err.value)
    assert sum("/data/SPL3SMP/" in r for r in provider.requests[n:]) == 3
    assert zone.head(zone.granule_key("smap", DAY)) is None
    provider.heal("smap", DAY)
    assert fetch_to_landing(granule, zone=zone, backoff=0.05)["status"] == "landed"


def test_a_granule_of_another_day_is_refused(provider, zone):
    provider.corrupt("gldas", DAY, "wrong_date")
    with pytest.raises(UnexpectedGranule, match="refused"):
        find_granule("gldas", DAY)
    provider.corrupt("c3s", DAY, "wrong_date")  # the CDS delivers the next day's file under this day
    granule = find_granule("c3s", DAY)
    with pytest.raises(UnexpectedGranule, match=r"c3s for 2018-06-01 holds data of 2018-06-02"):
        fetch_to_landing(granule, zone=zone, backoff=0.05)
    assert zone.head(zone.granule_key("c3s", DAY)) is None


def test_an_outage_and_a_rate_limit_are_provider_unavailable_with_retry_after(provider):
    provider.outage(1, status=503)
    with pytest.raises(ProviderUnavailable) as err:
        find_granule("smap", DAY)
    assert err.value.status == 503
    provider.rate_limit(1, retry_after=7)
    with pytest.raises(ProviderUnavailable) as err:
        find_granule("era5_land", DAY)
    assert err.value.status == 429 and err.value.retry_after == 7
    assert find_granule("smap", DAY) is not None


def test_missing_or_wrong_credentials_name_the_connection_and_never_show_the_secret(provider, zone, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    granule = find_granule("smap", DAY)
    monkeypatch.delenv("AIRFLOW_CONN_SMFLOW_EARTHDATA")
    with pytest.raises(CredentialsError, match="smflow_earthdata.*AIRFLOW_CONN_SMFLOW_EARTHDATA"):
        fetch_to_landing(granule, zone=zone, backoff=0.05)
    monkeypatch.setenv("AIRFLOW_CONN_SMFLOW_EARTHDATA",
                       json.dumps({"conn_type": "http", "host": provider.url, "password": "wrong-" + TOKEN}))
    with pytest.raises(CredentialsError, match="smflow_earthdata"):
        fetch_to_landing(granule, zone=zone, backoff=0.05)
    monkeypatch.setenv("AIRFLOW_CONN_SMFLOW_CDS",
                       json.dumps({"conn_type": "http", "host": f"{provider.url}/api", "password": "wrong" + CDS_TOKEN}))
    with pytest.raises(CredentialsError, match="smflow_cds"):
        fetch_to_landing(find_granule("era5_land", DAY), zone=zone, backoff=0.05)
    assert zone.head(zone.granule_key("smap", DAY)) is None
    assert TOKEN not in caplog.text and CDS_TOKEN not in caplog.text


# -- the sensor's trigger: waiting on the provider --------------------------------------------------
async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload


def _trigger(product: str, day: date, seconds: float, poke: float = 0.2):
    from smflow.operators.triggers import ProviderGranuleTrigger, deadline_after

    return ProviderGranuleTrigger(product=product, day=day.isoformat(), deadline=deadline_after(seconds),
                                  poke_interval=poke, max_backoff=1.0)


def test_the_trigger_waits_out_an_outage_and_a_rate_limit_and_then_finds_the_granule(provider):
    provider.outage(3, status=503)
    t0 = time.monotonic()
    event = asyncio.run(_first_event(_trigger("smap", DAY, 30)))
    assert event["status"] == "found" and event["granule"]["product"] == "smap"
    provider.rate_limit(1, retry_after=1)
    t0 = time.monotonic()
    event = asyncio.run(_first_event(_trigger("era5_land", DAY, 30)))
    assert event["status"] == "found" and time.monotonic() - t0 >= 0.9  # waited the Retry-After


def test_the_trigger_picks_up_a_late_granule_and_times_out_into_a_reason(provider):
    provider.withhold("smap", DAY)
    event = asyncio.run(_first_event(_trigger("smap", DAY, 1.0)))
    assert event["status"] == "timeout" and "not yet published" in event["reason"]
    threading.Timer(0.8, provider.release, args=("smap", DAY)).start()
    event = asyncio.run(_first_event(_trigger("smap", DAY, 20)))
    assert event["status"] == "found" and event["granule"]["day"] == DAY.isoformat()


def test_the_trigger_reports_a_refused_granule_and_missing_credentials(provider, monkeypatch):
    provider.corrupt("gldas", DAY, "wrong_date")
    event = asyncio.run(_first_event(_trigger("gldas", DAY, 10)))
    assert event["status"] == "refused" and "refused" in event["reason"]
    monkeypatch.delenv("AIRFLOW_CONN_SMFLOW_CDS")
    event = asyncio.run(_first_event(_trigger("c3s", DAY, 10)))
    assert event["status"] == "error" and "smflow_cds" in event["reason"]


def test_the_sensor_returns_a_published_granule_at_once_and_defers_to_the_provider_otherwise(provider):
    from airflow.sdk.exceptions import AirflowException, TaskDeferred

    from smflow.operators.sensors import GranuleSensor
    from smflow.operators.triggers import ProviderGranuleTrigger

    sensor = GranuleSensor(task_id="wait_smap", product="smap", day=DAY.isoformat(), source="provider",
                           wait_timeout=60, poke_interval=5)
    found = sensor.execute({})
    assert found["status"] == "found" and found["granule"]["provider"] == "cmr"
    assert found["granule"]["checksum"] and TOKEN not in json.dumps(found)  # XCom: no credential
    provider.withhold("smap", DAY)
    late = GranuleSensor(task_id="wait_smap", product="smap", day=DAY.isoformat(), source="provider",
                         wait_timeout=60, poke_interval=5, wait_hours="0.001", poke_seconds="1")
    with pytest.raises(TaskDeferred) as deferred:
        late.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, ProviderGranuleTrigger) and trigger.poke_interval == 1.0
    event = asyncio.run(_first_event(trigger))  # the run-time wait (3.6 s) applies
    missing = late.execute_complete({}, event)
    assert missing["status"] == "missing" and missing["key"] is None and "not yet published" in missing["reason"]
    refused = late.execute_complete({}, {"status": "refused", "reason": "CMR answered ... refused."})
    assert refused["status"] == "refused" and refused["reason"].endswith("refused.")
    with pytest.raises(AirflowException, match="smflow_cds"):
        late.execute_complete({}, {"status": "error", "reason": "the Airflow connection 'smflow_cds' is not defined"})


def test_a_missing_connection_fails_the_sensor_at_once_naming_it(provider, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from smflow.operators.sensors import GranuleSensor

    monkeypatch.delenv("AIRFLOW_CONN_SMFLOW_EARTHDATA")
    sensor = GranuleSensor(task_id="wait_gldas", product="gldas", day=DAY.isoformat(), source="provider")
    with pytest.raises(AirflowFailException, match="'smflow_earthdata' is not defined"):
        sensor.execute({})  # not retried: a retry cannot define the connection
