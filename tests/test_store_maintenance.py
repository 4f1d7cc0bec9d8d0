"""Operating the chunked store against the real S3 server of the local stack: snapshot expiry with
garbage collection (``python -m smflow.store expire``), and the refusal of a chunked store whose
domain still holds unmigrated per-day objects."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
import xarray as xr

from infra.s3_request_counter import S3RequestCounter
from smflow import s3 as s3mod
from smflow.domain import load_domain
from smflow.s3 import list_keys
from smflow.store import ChunkedTimeSeriesStore, DailyObjectStore, TimeSeriesStore, UnmigratedStoreError
from smflow.store.maintenance import expire_snapshots
from smflow.store.migrate import migrate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID = load_domain()
DAY0 = date(2018, 6, 1)


def _bucket(stack, s3_client, name: str):
    settings = dataclasses.replace(stack, store_bucket=f"test-{name}-{uuid.uuid4().hex[:8]}")
    yield settings
    try:
        for key in list_keys(s3_client, settings.store_bucket):
            s3_client.delete_object(Bucket=settings.store_bucket, Key=key)
        s3_client.delete_bucket(Bucket=settings.store_bucket)
    except Exception:  # noqa: BLE001 - best-effort cleanup of a test bucket
        pass


@pytest.fixture
def settings(stack, s3_client):
    yield from _bucket(stack, s3_client, "maint")


def _field(seed: int, grid=GRID) -> xr.DataArray:
    """A random soil-moisture field (random, so its chunk is a real object, not inlined in a manifest)."""
    values = np.random.default_rng(seed).uniform(0.05, 0.5, grid.shape)
    return xr.DataArray(values, dims=("lat", "lon"), coords={"lat": grid.lat_coord(), "lon": grid.lon_coord()},
                        name="soil_moisture", attrs={"units": "m3 m-3"})


def _history(store: ChunkedTimeSeriesStore) -> list[str]:
    return [s.id for s in store.repo.ancestry(branch="main")]


def test_expiry_drops_old_snapshots_and_their_chunks_and_keeps_the_data(settings, s3_client):
    store = ChunkedTimeSeriesStore(settings, s3=s3_client)
    n_old = 6
    for k in range(n_old):  # six commits, the last two replacing days already stored
        store.put("smap", DAY0 + timedelta(days=k % 4), _field(k))
    time.sleep(1.0)
    cut = datetime.now(timezone.utc)
    time.sleep(1.0)
    for k in range(2):  # two commits inside the retention
        store.put("smap", DAY0 + timedelta(days=4 + k), _field(100 + k))
    before = _history(store)
    assert len(before) == n_old + 2 + 1  # + the repository's first commit
    window = store.window("smap", DAY0 + timedelta(days=5), 8)
    days = store.days("smap", DAY0, DAY0 + timedelta(days=10))
    objects_before = len(list_keys(s3_client, settings.store_bucket, store.prefix + "/"))

    retention = timedelta(hours=1)
    report = expire_snapshots(store, retention, now=cut + retention)

    assert report.exists and report.older_than == cut.isoformat()
    assert report.expired_snapshots == n_old
    assert report.snapshots_deleted == n_old and report.chunks_deleted > 0 and report.bytes_deleted > 0
    assert len(list_keys(s3_client, settings.store_bucket, store.prefix + "/")) < objects_before
    # a fresh reader (a new task process): the two recent commits and the first one are left, the
    # data of the tip is unchanged and the window still reads
    fresh = ChunkedTimeSeriesStore(settings, s3=s3_client)
    after = _history(fresh)
    assert after == [before[0], before[1], before[-1]]
    xr.testing.assert_identical(fresh.window("smap", DAY0 + timedelta(days=5), 8), window)
    assert fresh.days("smap", DAY0, DAY0 + timedelta(days=10)) == days
    xr.testing.assert_identical(fresh.get("smap", DAY0 + 1 * timedelta(days=1)).drop_vars("time"),
                                _field(5).astype("float64"))  # the last value put on that day
    # and it keeps taking writes
    fresh.put("smap", DAY0 + timedelta(days=6), _field(200))
    assert len(_history(fresh)) == 4

    again = expire_snapshots(fresh, retention, now=cut + retention)  # idempotent
    assert again.expired_snapshots == 0 and again.chunks_deleted == again.snapshots_deleted == 0

    with pytest.raises(ValueError, match="positive"):
        expire_snapshots(fresh, timedelta(0))


def test_expire_cli_reports_each_domain_and_creates_nothing(settings, s3_client, tmp_path):
    store = ChunkedTimeSeriesStore(settings, s3=s3_client)
    store.put("smap", DAY0, _field(1))
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "SMFLOW_STORE_BUCKET": settings.store_bucket,
           "SMFLOW_S3_ACCESS_KEY": settings.s3_access_key, "SMFLOW_S3_SECRET_KEY": settings.s3_secret_key,
           "SMFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url, "SMFLOW_STORE_RETENTION_DAYS": "7"}

    def expire(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "smflow.store", "expire", *args], env=env,
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)

    run = expire("--domain", "big_island,global_025")
    assert run.returncode == 0, run.stderr[-2000:]
    big, world = json.loads(run.stdout)
    assert (big["domain"], big["exists"], big["expired_snapshots"]) == ("big_island", True, 0)  # all recent
    assert big["repository"] == f"s3://{settings.store_bucket}/timeseries-zarr/big_island/"
    # the retention of SMFLOW_STORE_RETENTION_DAYS
    older_than = datetime.fromisoformat(big["older_than"])
    assert timedelta(days=7) - timedelta(minutes=5) < datetime.now(timezone.utc) - older_than < timedelta(days=7, minutes=5)
    assert (world["domain"], world["exists"]) == ("global_025", False)
    assert not list_keys(s3_client, settings.store_bucket, "timeseries-zarr/global_025/")  # nothing created
    bad = expire("--retention-days", "0")
    assert bad.returncode == 2 and "--retention-days must be > 0" in bad.stderr


def test_an_unmigrated_deployment_is_refused_with_the_migrate_command(settings, s3_client):
    field = _field(7)
    DailyObjectStore(settings, s3=s3_client).put("smap", DAY0, field)  # a deployment before issue 16
    legacy = list_keys(s3_client, settings.store_bucket, "timeseries/")

    with pytest.raises(UnmigratedStoreError) as refused:
        TimeSeriesStore(settings, s3=s3_client)
    message = str(refused.value)
    assert f"s3://{settings.store_bucket}/timeseries/" in message
    assert "timeseries/smap/2018/smap_20180601.nc" in message
    assert "`python -m smflow.store migrate`" in message and "SMFLOW_STORE_BACKEND=netcdf" in message
    assert TimeSeriesStore(settings, s3=s3_client, backend="netcdf").get("smap", DAY0) is not None
    assert list_keys(s3_client, settings.store_bucket, "timeseries/") == legacy  # nothing deleted
    assert not list_keys(s3_client, settings.store_bucket, "timeseries-zarr/")  # nothing written either

    migrate(DailyObjectStore(settings, s3=s3_client), ChunkedTimeSeriesStore(settings, s3=s3_client))
    store = TimeSeriesStore(settings, s3=s3_client)  # migrated: opens
    xr.testing.assert_identical(store.get("smap", DAY0), DailyObjectStore(settings, s3=s3_client).get("smap", DAY0))
    assert list_keys(s3_client, settings.store_bucket, "timeseries/") == legacy


def test_another_domain_is_named_in_the_command(settings, s3_client):
    grid = load_domain("ebro_pyrenees")
    values = np.full(grid.shape, 0.2)
    field = xr.DataArray(values, dims=("lat", "lon"), coords={"lat": grid.lat_coord(), "lon": grid.lon_coord()},
                         name="soil_moisture")
    DailyObjectStore(settings, s3=s3_client, grid=grid).put("cgls_ssm_1km", DAY0, field)
    with pytest.raises(UnmigratedStoreError, match=r"timeseries/ebro_pyrenees/.*migrate --domain ebro_pyrenees`"):
        TimeSeriesStore(settings, s3=s3_client, grid=grid)
    # the default domain's prefix holds only that other domain's objects: nothing to say about it
    assert isinstance(TimeSeriesStore(settings, s3=s3_client), ChunkedTimeSeriesStore)


def test_the_check_is_one_list_request_per_process_and_domain(stack, s3_client):
    for settings in _bucket(stack, s3_client, "check"):
        s3_client.create_bucket(Bucket=settings.store_bucket)
        with S3RequestCounter(settings.s3_endpoint_url) as counter:
            relayed = dataclasses.replace(settings, s3_endpoint_url=counter.url)
            client = s3mod.client(relayed)
            counter.reset()
            TimeSeriesStore(relayed, s3=client)
            first = list(counter.paths)
            counter.reset()
            TimeSeriesStore(relayed, s3=client)
            TimeSeriesStore(relayed, s3=client)
            again = counter.total
        assert len(first) == 1 and first[0][0] == "GET" and "max-keys=1" in first[0][1].lower(), first
        assert again == 0


@pytest.mark.e2e
def test_the_store_maintenance_dag_runs_the_expiry(stack, s3_client, airflow_env):
    """``airflow dags test store_maintenance`` on the stack's store bucket (written nothing here: the
    session's other tests own its content): the Big Island repository is expired with the run's
    retention, or reported absent; what it holds reads the same afterwards."""
    from pathlib import Path

    def smap_window() -> xr.DataArray | None:
        store = ChunkedTimeSeriesStore(stack, s3=s3_client)
        return None if store._read_repo() is None else store.window("smap", date(2018, 6, 30), 60)

    before = smap_window()
    conf = {"retention_days": "30", "domains": "big_island"}
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", "store_maintenance",
                          "-c", json.dumps(conf)], env=airflow_env, capture_output=True, text=True, timeout=300)
    logs = out.stdout + out.stderr
    assert out.returncode == 0, logs[-3000:]
    repository = f"store s3://{stack.store_bucket}/timeseries-zarr/big_island/"
    assert f"{repository}: expired" in logs or f"{repository}: no repository" in logs, logs[-3000:]
    after = smap_window()
    assert (after is None) == (before is None)
    if before is not None:
        xr.testing.assert_identical(after, before)
