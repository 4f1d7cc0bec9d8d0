"""S3 stopped for ~60 s while a day runs on a real Airflow (the fault stack, ``fault_day`` DAG):
the day completes on retry, with nothing left staged and no day of half-new, half-old files."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.faults.conftest import day_objects, staging_objects, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.e2e]
OUTAGE_SECONDS = 60


def _run_day(client, tmp_path, **conf) -> tuple[str, object]:
    marker = tmp_path / f"marker-{uuid.uuid4().hex}.txt"
    run_id = client.request("POST", "/dags/fault_day/dagRuns", json={
        "logical_date": None, "conf": {**conf, "marker": str(marker)}})["dag_run_id"]
    return run_id, marker


def _tries(client, run_id: str) -> dict[str, int]:
    out = client.request("GET", f"/dags/fault_day/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {ti["task_id"]: ti["try_number"] for ti in out if ti["state"] == "success"}


def _publish_in_process(s3, settings, day: str, wetter: float) -> dict:
    """What a fault-free publication of this product gives (the publisher is idempotent)."""
    import datetime as dt

    from smflow.publish.publisher import Publisher
    from tests.publish.synthetic import daily_product, provenance

    d = dt.date.fromisoformat(day)
    published = Publisher(settings, s3=s3).publish_day(daily_product(d, wetter=wetter), d, provenance(d))
    return {"unchanged": published.unchanged, "keys": list(published.keys)}


def test_s3_stopped_while_the_day_is_computed(fault_airflow, stack, s3_client, s3_outage, fault_table, tmp_path):
    settings, day = stack, "2019-01-05"
    client = fault_airflow.client()
    reference_run, _ = _run_day(client, tmp_path, day=day)
    assert client.wait_run("fault_day", reference_run, timeout=600, poll=2) == "success"
    reference = day_objects(s3_client, settings, day)
    assert len(reference) >= 5, reference

    run_id, marker = _run_day(client, tmp_path, day=day, hold_seconds=15)
    wait_for(lambda: marker.is_file() and "compute 1" in marker.read_text(), 300, "compute started")
    t0 = time.monotonic()
    s3_outage.stop()
    time.sleep(OUTAGE_SECONDS)
    s3_outage.start()
    assert client.wait_run("fault_day", run_id, timeout=1200, poll=3) == "success"
    recovery = time.monotonic() - t0
    tries = _tries(client, run_id)
    assert tries["compute"] >= 2, tries  # the outage cost the compute step an attempt
    assert day_objects(s3_client, settings, day) == reference  # same objects, same bytes
    assert not staging_objects(s3_client, settings)
    fault_table.record(f"S3 stopped {OUTAGE_SECONDS} s mid-compute (compute try {tries['compute']})",
                       "completed on retry", recovery_s=recovery)


def test_s3_stopped_while_the_day_is_published(fault_airflow, stack, s3_client, s3_outage, fault_table, tmp_path):
    """A new version of a published day: S3 is killed as soon as the publisher stages its first
    object (a graceful stop takes seconds, the publisher less); after the retries every file of
    the day is the new version (none left old) and nothing is left staged."""
    from smflow.publish.publisher import STAGING_PREFIX, published_assets
    from smflow.s3 import list_keys

    settings, day = stack, "2019-01-06"
    client = fault_airflow.client()
    old_run, _ = _run_day(client, tmp_path, day=day, wetter=0.0)
    assert client.wait_run("fault_day", old_run, timeout=600, poll=2) == "success"
    old = day_objects(s3_client, settings, day)
    old_assets = set(published_assets(s3_client, settings.products_bucket, day).values())

    wetter = round(0.01 + (time.time() % 1000) / 1e5, 6)  # a version this day never had
    run_id, marker = _run_day(client, tmp_path, day=day, wetter=wetter)
    wait_for(lambda: marker.is_file() and "publish 1" in marker.read_text(), 600, "publish started")
    hit = threading.Event()

    def first_staged():
        while not hit.is_set():
            try:
                if list(list_keys(s3_client, settings.products_bucket, STAGING_PREFIX)):
                    hit.set()
            except Exception:  # noqa: BLE001 - S3 going away under the watcher
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=first_staged, daemon=True)
    watcher.start()
    assert hit.wait(120), "the publisher never staged an object"
    t0 = time.monotonic()
    s3_outage.kill()
    time.sleep(OUTAGE_SECONDS)
    s3_outage.start()
    assert client.wait_run("fault_day", run_id, timeout=1200, poll=3) == "success"
    recovery = time.monotonic() - t0
    tries = _tries(client, run_id)
    assert tries["publish"] >= 2, f"the outage missed the publish step: {tries}"
    new = day_objects(s3_client, settings, day)
    new_assets = set(published_assets(s3_client, settings.products_bucket, day).values())
    # the day's STAC item links a complete new version; the version it replaced stays readable
    assert new_assets and new_assets.isdisjoint(old_assets) and new_assets <= set(new)
    assert old_assets <= set(new) and new != old
    # every file is the new version: publishing it again fault-free changes nothing
    assert _publish_in_process(s3_client, settings, day, wetter)["unchanged"]
    assert day_objects(s3_client, settings, day) == new
    left = staging_objects(s3_client, settings)
    assert not left, f"staging objects left after the outage: {left}"
    fault_table.record(f"S3 killed for {OUTAGE_SECONDS} s mid-publish (publish try {tries['publish']})",
                       "completed on retry", recovery_s=recovery)
