"""Archive inventory vs store against the real local S3; the reconcile_archive DAG's shape."""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from smflow.archive.reconcile import archive_days, reconcile

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def buckets(stack, s3_client):
    from smflow import s3 as s3mod

    suffix = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(stack, landing_bucket=f"sm-landing-rec-{suffix}",
                                   store_bucket=f"sm-store-rec-{suffix}")
    yield settings
    for bucket in (settings.landing_bucket, settings.store_bucket):
        try:
            for key in s3mod.list_keys(s3_client, bucket):
                s3_client.delete_object(Bucket=bucket, Key=key)
            s3_client.delete_bucket(Bucket=bucket)
        except s3_client.exceptions.NoSuchBucket:
            pass


def test_days_in_the_archive_but_not_in_the_store_are_to_ingest(buckets, s3_client):
    from smflow import s3 as s3mod
    from smflow.landing import LandingZone
    from smflow.store import TimeSeriesStore

    zone = LandingZone(buckets, s3=s3_client)
    s3mod.ensure_bucket(s3_client, zone.bucket)
    # across a month boundary: one listing per month
    for product, day in [("smap", "2017-05-31"), ("smap", "2017-06-01"), ("smap", "2017-06-02"),
                         ("gldas", "2017-06-01"), ("gldas", "2017-07-01")]:
        s3_client.put_object(Bucket=zone.bucket, Key=zone.granule_key(product, day), Body=b"x")
    store = TimeSeriesStore(buckets, s3=s3_client)
    field = store.grid.template("smap", "m3 m-3").copy(data=np.full(store.grid.shape, 0.25))
    store.put("smap", "2017-06-01", field)

    assert archive_days(zone, "smap", date(2017, 5, 30), date(2017, 6, 30)) == [
        date(2017, 5, 31), date(2017, 6, 1), date(2017, 6, 2)]
    result = reconcile("2017-05-31", "2017-06-02", ["smap", "gldas"], settings=buckets, s3=s3_client)
    assert [(r["product"], r["day"]) for r in result.to_ingest] == [
        ("smap", "2017-05-31"), ("gldas", "2017-06-01"), ("smap", "2017-06-02")]
    assert result.to_ingest[0]["key"] == "smap/2017/05/smap_20170531.nc"
    assert result.to_ingest[0]["bucket"] == buckets.landing_bucket
    assert result.days_to_backfill == ["2017-05-31", "2017-06-01", "2017-06-02"]
    assert result.not_in_archive == {"smap": [], "gldas": ["2017-05-31", "2017-06-02"]}
    assert result.in_store == {"smap": 1, "gldas": 0}
    assert result.to_dict()["days_to_backfill"] == result.days_to_backfill


def test_empty_buckets_mean_nothing_to_ingest_and_bad_ranges_say_how_to_fix(buckets, s3_client):
    result = reconcile("2017-06-01", "2017-06-02", ["c3s"], settings=buckets, s3=s3_client)
    assert result.to_ingest == [] and result.not_in_archive == {"c3s": ["2017-06-01", "2017-06-02"]}
    with pytest.raises(ValueError, match="swap"):
        reconcile("2017-06-02", "2017-06-01", ["c3s"], settings=buckets, s3=s3_client)


def test_reconcile_dag_has_the_integrity_attributes(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", os.environ.get("AIRFLOW_HOME") or str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "reconcile_archive.py"))
    assert bag.import_errors == {}
    dag = bag.dags["reconcile_archive"]
    assert dag.tags and len(dag.topological_sort()) == len(dag.tasks)
    for t in dag.tasks:
        assert t.owner == "smflow" and t.retries >= 1 and t.on_failure_callback
    assert dag.get_task("ingest_granule").upstream_task_ids == {"fetch_late_granules"}
    assert dag.get_task("fetch_late_granules").upstream_task_ids == {"find_gaps"}
    assert dag.params["ask_providers"] is True and dag.params["rerun_daily"] is True
    assert dag.get_task("rerun_daily").upstream_task_ids == {"days_to_rerun"}
