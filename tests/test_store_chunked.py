"""The chunked (Zarr v3 + Icechunk) time-series store against the real S3 server of the local stack.

Same values as the per-day netCDF store; a re-run replaces a day; concurrent writers of one chunk
lose no day; a 180-day window is a handful of S3 requests (counted by a relay in front of the
gateway, :mod:`infra.s3_request_counter`); the migration CLI copies, verifies and is idempotent.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import date, timedelta

import numpy as np
import pytest
import xarray as xr

from infra.s3_request_counter import S3RequestCounter
from smflow.domain import load_domain
from smflow.ingest import gridded_series
from smflow.s3 import list_keys
from smflow.store import ChunkedTimeSeriesStore, DailyObjectStore, TimeSeriesStore
from smflow.store.chunked import CHUNK_DAYS, day_index
from tests.conftest import remove_bucket

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = date(2017, 5, 1), date(2017, 6, 9)  # 40 days of the bundled Hawaii sample
GRID = load_domain()


@pytest.fixture(scope="module")
def settings(stack, s3_client):
    s = dataclasses.replace(stack, store_bucket=f"test-chunked-{uuid.uuid4().hex[:8]}")
    yield s
    remove_bucket(s3_client, s.store_bucket)


@pytest.fixture(scope="module")
def smap():
    """40 days of real SMAP on the Big Island grid (float64), with their CF attributes."""
    return gridded_series("smap", START, END, GRID)


def _days(series: xr.DataArray) -> list[date]:
    return [START + timedelta(days=k) for k in range(series.sizes["time"])]


def test_the_chunked_layout_is_the_default(monkeypatch, tmp_path):
    from smflow.config import Settings

    monkeypatch.delenv("SMFLOW_STORE_BACKEND", raising=False)
    monkeypatch.setenv("SMFLOW_HOME", str(tmp_path))  # no stack.env
    assert Settings.load().store_backend == "zarr"


def test_factory_picks_the_configured_layout(settings):
    assert isinstance(TimeSeriesStore(dataclasses.replace(settings, store_backend="zarr")), ChunkedTimeSeriesStore)
    assert isinstance(TimeSeriesStore(dataclasses.replace(settings, store_backend="netcdf")), DailyObjectStore)
    assert TimeSeriesStore(settings, backend="netcdf").backend == "netcdf"
    with pytest.raises(ValueError, match="SMFLOW_STORE_BACKEND"):
        TimeSeriesStore(dataclasses.replace(settings, store_backend="parquet"))


def test_same_values_coordinates_and_attributes_as_the_per_day_store(settings, s3_client, smap):
    per_day = DailyObjectStore(settings, s3=s3_client)
    chunked = ChunkedTimeSeriesStore(settings, s3=s3_client)
    days = _days(smap)
    kept = [k for k in range(len(days)) if k % 4 != 2]  # some days never stored: "missing"
    for k in kept:
        per_day.put("smap", days[k], smap.isel(time=k, drop=True))
    chunked.put_many("smap", [days[k] for k in kept], smap.isel(time=kept))
    f32 = smap.isel(time=0, drop=True).astype("float32").rename("brightness_temperature")
    for store in (per_day, chunked):
        store.put("tb", START, f32)

    for k in (0, 1, 2, 39):
        a, b = per_day.get("smap", days[k]), chunked.get("smap", days[k])
        if k % 4 == 2:
            assert a is None and b is None
            continue
        assert b.dtype == a.dtype == np.float64
        xr.testing.assert_identical(b, a)
    a, b = per_day.get("tb", START), chunked.get("tb", START)
    assert b.dtype == a.dtype == np.float32 and b.name == "brightness_temperature"
    xr.testing.assert_identical(b, a)
    for end, n in ((END, 40), (END + timedelta(days=3), 10), (START, 1)):  # windows with missing days, past the end
        wa, wb = per_day.window("smap", end, n), chunked.window("smap", end, n)
        xr.testing.assert_identical(wb, wa)
        assert wb.values.tobytes() == wa.values.tobytes()
    xr.testing.assert_identical(chunked.window("nothing", END, 5), per_day.window("nothing", END, 5))
    no_bucket = dataclasses.replace(settings, store_bucket=f"test-none-{uuid.uuid4().hex[:8]}")
    assert ChunkedTimeSeriesStore(no_bucket, s3=s3_client).days("smap", START, END) == []  # nothing stored yet
    unreachable = dataclasses.replace(settings, s3_endpoint_url="http://127.0.0.1:9")
    with pytest.raises(Exception, match="object store"):  # an S3 outage is an error, never "no data"
        ChunkedTimeSeriesStore(unreachable, s3=s3_client).window("smap", END, 5)
    assert chunked.days("smap", START, END) == per_day.days("smap", START, END) == [days[k] for k in kept]
    assert chunked.days("nothing", START, END) == []


def test_rerun_replaces_the_day_and_commits_nothing_when_unchanged(settings, s3_client, smap):
    store = ChunkedTimeSeriesStore(settings, s3=s3_client)
    day = date(2017, 7, 1)
    first, second = smap.isel(time=5, drop=True), smap.isel(time=6, drop=True)
    store.put("rerun", day, first)
    store.put("rerun", day, second)
    np.testing.assert_array_equal(store.get("rerun", day).values, second.values)
    assert store.days("rerun", day - timedelta(days=40), day + timedelta(days=40)) == [day]
    snapshots = len(list(store.repo.ancestry(branch="main")))
    store.put("rerun", day, second)  # the same values again: no new snapshot
    assert len(list(store.repo.ancestry(branch="main"))) == snapshots
    store.delete("rerun", day)
    assert store.get("rerun", day) is None and store.days("rerun", day, day) == []


def test_off_grid_fields_are_refused(settings, s3_client):
    store = ChunkedTimeSeriesStore(settings, s3=s3_client)
    with pytest.raises(ValueError, match="dims"):
        store.put("smap", START, xr.DataArray(np.zeros((2, 13, 10)), dims=("time", "lat", "lon")))
    bad = xr.DataArray(np.zeros((13, 10)), dims=("lat", "lon"), coords={"lat": np.arange(13.0), "lon": np.arange(10.0)})
    with pytest.raises(ValueError, match="not on the big_island grid"):
        store.put("smap", START, bad)
    store.put("f32", START, GRID.template("soil_moisture", "m3 m-3").astype("float32"))
    with pytest.raises(ValueError, match="lose precision"):
        store.put("f32", START, GRID.template("soil_moisture", "m3 m-3"))
    with pytest.raises(ValueError, match="outside the chunked store's time axis"):
        store.get("smap", date(1969, 12, 31))


class _CommitAfter:
    """A session whose first commit happens after ``before()`` ran (another writer's commit)."""

    def __init__(self, session, before) -> None:
        self._session, self._before = session, before

    def __getattr__(self, name):
        return getattr(self._session, name)

    def commit(self, *args, **kwargs):
        before, self._before = self._before, None
        if before is not None:
            before()
        return self._session.commit(*args, **kwargs)


def test_a_concurrent_writer_of_the_same_chunk_loses_no_day(settings, s3_client, smap, caplog):
    """Writer A opens its session, writer B commits another day of the same chunk, then A commits:
    A's commit conflicts, A re-reads the chunk and writes again; both days are stored."""
    a = ChunkedTimeSeriesStore(settings, s3=s3_client)
    b = ChunkedTimeSeriesStore(settings, s3=s3_client)
    day_a, day_b = date(2017, 8, 1), date(2017, 8, 2)
    assert day_index(day_a) // CHUNK_DAYS == day_index(day_b) // CHUNK_DAYS  # one chunk
    a.put("race", date(2017, 8, 10), smap.isel(time=0, drop=True))  # the group exists for both
    repo = a.repo

    class Repo:
        sessions = 0

        def __getattr__(self, name):
            return getattr(repo, name)

        def writable_session(self, branch):
            Repo.sessions += 1
            session = repo.writable_session(branch)
            if Repo.sessions == 1:
                return _CommitAfter(session, lambda: b.put("race", day_b, smap.isel(time=2, drop=True)))
            return session

    a._repo = Repo()
    with caplog.at_level("INFO", logger="smflow.store.chunked"):
        a.put("race", day_a, smap.isel(time=1, drop=True))
    assert Repo.sessions == 2 and "commit conflict" in caplog.text  # A's first commit was refused
    fresh = ChunkedTimeSeriesStore(settings, s3=s3_client)
    np.testing.assert_array_equal(fresh.get("race", day_a).values, smap.isel(time=1).values)
    np.testing.assert_array_equal(fresh.get("race", day_b).values, smap.isel(time=2).values)
    assert fresh.days("race", date(2017, 8, 1), date(2017, 8, 31)) == [day_a, day_b, date(2017, 8, 10)]


def test_threads_writing_days_of_one_chunk_at_once_lose_none(settings, s3_client, smap):
    stores = [ChunkedTimeSeriesStore(settings, s3=s3_client) for _ in range(3)]
    days = [date(2017, 9, 1) + timedelta(days=k) for k in range(12)]
    go = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            go.wait()
            for k in range(i, len(days), len(stores)):
                stores[i].put("threads", days[k], smap.isel(time=k, drop=True))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    w = ChunkedTimeSeriesStore(settings, s3=s3_client).window("threads", days[-1], len(days))
    assert w.attrs["missing_days"] == ""
    np.testing.assert_array_equal(w.values, smap.isel(time=slice(0, len(days))).values)


def test_a_180_day_window_is_a_handful_of_requests_not_180_objects(settings, s3_client, smap):
    n = 180
    end = date(2018, 6, 30)
    days = [end - timedelta(days=n - 1 - k) for k in range(n)]
    series = xr.concat([smap.isel(time=k % smap.sizes["time"], drop=True) for k in range(n)], dim="time")
    with S3RequestCounter(settings.s3_endpoint_url) as counter:
        relayed = dataclasses.replace(settings, s3_endpoint_url=counter.url)
        from smflow import s3 as s3mod

        per_day = DailyObjectStore(relayed, s3=s3mod.client(relayed))
        chunked = ChunkedTimeSeriesStore(relayed, s3=s3mod.client(relayed))
        per_day.put_many("win", days, series)
        chunked.put_many("win", days, series)

        counter.reset()
        w_per_day = per_day.window("win", end, n)
        per_day_requests = counter.total
        counter.reset()  # a cold reader, as a task process is: it opens the repository too
        w_chunked = ChunkedTimeSeriesStore(relayed, s3=s3mod.client(relayed)).window("win", end, n)
        chunked_requests = dict(counter.by_method)
        chunk_gets = sum(1 for method, path in counter.paths if method == "GET" and "/chunks/" in path)
        counter.reset()
        ChunkedTimeSeriesStore(relayed, s3=s3mod.client(relayed)).get("win", end)
        day_requests = counter.total

    xr.testing.assert_identical(w_chunked, w_per_day)
    print(f"180-day window: per-day store {per_day_requests} requests, chunked {chunked_requests}; a day {day_requests}")
    assert per_day_requests >= n
    # 180 days span 6-7 chunks of 32 days on the one tile; + opening the repository (exists, marker,
    # config, branch ref), the branch ref, the snapshot (all metadata: the consolidated metadata) and
    # the two arrays' manifests
    assert chunk_gets <= 7, chunked_requests
    assert sum(chunked_requests.values()) <= 16, chunked_requests
    assert day_requests <= 11  # the same overhead, the manifests of lat and lon, and the one chunk


def test_migrate_cli_copies_verifies_and_is_idempotent(settings, s3_client, smap, tmp_path):
    per_day = DailyObjectStore(settings, s3=s3_client)
    days = _days(smap)[:20]
    per_day.put_many("mig_smap", days, smap.isel(time=slice(0, 20)))
    per_day.put("mig_tb", START, smap.isel(time=0, drop=True).astype("float32").rename("brightness_temperature"))
    source_keys = list_keys(s3_client, settings.store_bucket, "timeseries/")
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "SMFLOW_STORE_BUCKET": settings.store_bucket,
           "SMFLOW_S3_ACCESS_KEY": settings.s3_access_key, "SMFLOW_S3_SECRET_KEY": settings.s3_secret_key,
           "SMFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url}

    def migrate() -> dict:
        run = subprocess.run([sys.executable, "-m", "smflow.store", "migrate", "--products", "mig_smap,mig_tb"],
                             env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads(run.stdout)

    first = migrate()
    assert first["found"] == first["written"] == first["verified"] == {"mig_smap": 20, "mig_tb": 1}
    second = migrate()
    assert second["written"] == {"mig_smap": 0, "mig_tb": 0}
    assert second["unchanged"] == second["verified"] == {"mig_smap": 20, "mig_tb": 1}
    assert list_keys(s3_client, settings.store_bucket, "timeseries/") == source_keys  # source untouched
    chunked = ChunkedTimeSeriesStore(settings, s3=s3_client)
    xr.testing.assert_identical(chunked.window("mig_smap", days[-1], 25), per_day.window("mig_smap", days[-1], 25))
    xr.testing.assert_identical(chunked.get("mig_tb", START), per_day.get("mig_tb", START))
