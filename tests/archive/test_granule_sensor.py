"""GranuleAvailableTrigger.run() with asyncio and GranuleSensor, against the real local S3."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from airflow.sdk.exceptions import TaskDeferred

from smflow.operators.sensors import GranuleSensor
from smflow.operators.triggers import GranuleAvailableTrigger, deadline_after


@pytest.fixture
def landing(stack, s3_client, monkeypatch):
    """A fresh landing bucket (deleted afterwards) and a function putting a granule into it.

    The sensors and triggers load their settings themselves: here they sign as the stack's admin
    (the pipelines identity may read only the deployment's landing bucket; docs/security.md).
    """
    from smflow import s3 as s3mod
    from smflow.landing import LandingZone

    monkeypatch.setenv("SMFLOW_S3_ACCESS_KEY", stack.s3_access_key)
    monkeypatch.setenv("SMFLOW_S3_SECRET_KEY", stack.s3_secret_key)

    bucket = f"sm-landing-test-{uuid.uuid4().hex[:8]}"
    s3mod.ensure_bucket(s3_client, bucket)
    import dataclasses

    zone = LandingZone(dataclasses.replace(stack, landing_bucket=bucket), s3=s3_client)

    def put(product: str, day: str) -> str:
        key = zone.granule_key(product, day)
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"CDF\x01granule")
        return key

    yield bucket, put
    for key in s3mod.list_keys(s3_client, bucket):
        s3_client.delete_object(Bucket=bucket, Key=key)
    s3_client.delete_bucket(Bucket=bucket)


async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload


def test_trigger_times_out_with_an_event_not_an_error(landing):
    bucket, _ = landing
    trigger = GranuleAvailableTrigger(product="smap", day="2017-06-01", deadline=deadline_after(0.6),
                                      poke_interval=0.2, landing_bucket=bucket)
    event = asyncio.run(asyncio.wait_for(_first_event(trigger), 10))
    assert event["status"] == "timeout" and event["expected"] == f"s3://{bucket}/smap/2017/06/smap_20170601.nc"
    assert event["waited_seconds"] >= 0.5


def test_trigger_finds_a_late_native_granule_under_its_day_folder(landing, s3_client):
    bucket, _ = landing
    name = "c_gls_SSM1km_201706010000_CEURO_S1CSAR_V1.1.1.nc"
    trigger = GranuleAvailableTrigger(product="cgls_ssm_1km", day="2017-06-01", deadline=deadline_after(20),
                                      poke_interval=0.2, landing_bucket=bucket)
    key = f"native/cgls_ssm_1km/2017/06/01/{name}"
    threading.Timer(0.5, lambda: s3_client.put_object(Bucket=bucket, Key=key, Body=b"\x89HDF")).start()
    event = asyncio.run(asyncio.wait_for(_first_event(trigger), 15))
    assert event == {"status": "found", "product": "cgls_ssm_1km", "day": "2017-06-01", "bucket": bucket,
                     "key": key}


def test_trigger_fires_when_the_late_granule_lands(landing):
    bucket, put = landing
    trigger = GranuleAvailableTrigger(product="gldas", day="2017-06-02", deadline=deadline_after(20),
                                      poke_interval=0.2, landing_bucket=bucket)
    threading.Timer(0.5, put, args=("gldas", "2017-06-02")).start()
    event = asyncio.run(asyncio.wait_for(_first_event(trigger), 15))
    assert event == {"status": "found", "product": "gldas", "day": "2017-06-02", "bucket": bucket,
                     "key": "gldas/2017/06/gldas_20170602.nc"}
    # what the triggerer stores and rebuilds it from
    path, kwargs = trigger.serialize()
    assert path == "smflow.operators.triggers.GranuleAvailableTrigger"
    assert GranuleAvailableTrigger(**kwargs).serialize() == (path, kwargs)


def test_sensor_returns_a_present_granule_without_deferring(landing):
    bucket, put = landing
    key = put("smap", "2017-06-03")
    sensor = GranuleSensor(task_id="wait_smap", product="smap", day="2017-06-03", landing_bucket=bucket)
    assert sensor.execute({}) == {"product": "smap", "day": "2017-06-03", "bucket": bucket, "key": key}


def test_sensor_defers_and_on_timeout_records_the_missing_input(landing):
    bucket, _ = landing
    sensor = GranuleSensor(task_id="wait_c3s", product="c3s", day="2017-06-04", wait_timeout=0.5,
                           poke_interval=0.1, landing_bucket=bucket)
    assert sensor.deferrable
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert deferred.value.method_name == "execute_complete"
    event = asyncio.run(asyncio.wait_for(_first_event(deferred.value.trigger), 10))
    result = sensor.execute_complete({}, event)
    assert result == {"product": "c3s", "day": "2017-06-04", "bucket": None, "key": None,
                      "status": "missing", "reason": "not in archive after 0.00833333 min"}


def test_sensor_found_event_gives_the_reference(landing):
    bucket, put = landing
    key = put("era5_land", "2017-06-05")
    sensor = GranuleSensor(task_id="w", product="era5_land", day="2017-06-05", landing_bucket=bucket)
    trigger = GranuleAvailableTrigger(product="era5_land", day="2017-06-05",
                                      deadline=deadline_after(5), poke_interval=0.1, landing_bucket=bucket)
    event = asyncio.run(asyncio.wait_for(_first_event(trigger), 10))
    assert sensor.execute_complete({}, event)["key"] == key
    with pytest.raises(Exception, match="unexpected event"):
        sensor.execute_complete({}, {"status": "error"})


def test_sensor_without_deferral_also_returns_the_missing_record(landing):
    bucket, _ = landing
    sensor = GranuleSensor(task_id="w", product="smap", day="2017-06-06", wait_timeout=0.4,
                           poke_interval=0.1, landing_bucket=bucket, deferrable=False)
    assert sensor.execute({})["status"] == "missing"


@pytest.mark.slow
def test_airflow_dags_test_defers_and_the_run_goes_on_without_the_late_granule(
        landing, airflow_env, s3_client, tmp_path):
    """``airflow dags test``: smap is there, gldas never comes; the run succeeds and records both."""
    import json
    import os
    import subprocess
    from pathlib import Path

    bucket, put = landing
    smap_key = put("smap", "2017-06-07")
    # A bundle of its own, so the probe DAG never mixes with the deployed dags/ folder.
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    dagfile = bundle / "granule_sensor_probe.py"
    dagfile.write_text((Path(__file__).parent / "dags" / "granule_sensor_probe.py").read_text())
    # The scratch landing bucket is the test's: its tasks sign as admin (the pipelines identity
    # may read only the deployment's landing bucket and write none; docs/security.md).
    env = {**airflow_env, "SMFLOW_S3_ACCESS_KEY": airflow_env["SMFLOW_S3_ADMIN_ACCESS_KEY"],
           "SMFLOW_S3_SECRET_KEY": airflow_env["SMFLOW_S3_ADMIN_SECRET_KEY"],
           "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([{
        "name": "smflow-test-probes", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(bundle), "refresh_interval": 0}}]),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), airflow_env.get("PYTHONPATH", "")])}
    conf = json.dumps({"landing_bucket": bucket, "out_key": "probe/result.json"})
    run = subprocess.run(
        ["airflow", "dags", "test", "granule_sensor_probe", "2017-06-07", "-f", str(dagfile), "-c", conf],
        env=env, capture_output=True, text=True, timeout=240, cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    refs = json.loads(s3_client.get_object(Bucket=bucket, Key="probe/result.json")["Body"].read())
    assert refs[0] == {"product": "smap", "day": "2017-06-07", "bucket": bucket, "key": smap_key}
    assert refs[1]["product"] == "gldas" and refs[1]["key"] is None and refs[1]["status"] == "missing"


def test_trigger_rides_out_an_s3_outage_and_says_so_at_the_deadline(monkeypatch):
    """S3 unreachable: the trigger keeps looking with backoff instead of crashing (no task retry)."""
    monkeypatch.setenv("SMFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    trigger = GranuleAvailableTrigger(product="smap", day="2017-06-03", deadline=deadline_after(4),
                                      poke_interval=0.2, landing_bucket="sm-landing-outage", max_backoff=1.0)
    event = asyncio.run(asyncio.wait_for(_first_event(trigger), 120))
    assert event["status"] == "timeout" and "S3 unavailable (EndpointConnectionError)" in event["reason"]
    sensor = GranuleSensor(task_id="w", product="smap", day="2017-06-03", landing_bucket="sm-landing-outage")
    missing = sensor.execute_complete({}, event)
    assert missing["status"] == "missing" and "S3 unavailable" in missing["reason"]
