"""Landing zone and time-series store against the real S3 server of the local stack.

Uses the ``stack`` (Settings) and ``s3_client`` fixtures of tests/conftest.py; each test module
run gets its own buckets, removed at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import date

import netCDF4
import numpy as np
import pytest
import xarray as xr

from smflow.domain import load_domain
from infra.archive_stand_in import ArchiveStandIn
from smflow.landing import GranuleRef
from smflow.readers import read_granule, read_product
from smflow.s3 import list_keys
from smflow.store import TimeSeriesStore

DAY = date(2017, 6, 1)  # SMAP has AM and PM overpasses, every product has data
NO_OVERPASS = date(2017, 6, 5)  # no SMAP overpass over Hawaii


@pytest.fixture(scope="module")
def settings(stack, s3_client):
    suffix = uuid.uuid4().hex[:8]
    s = dataclasses.replace(stack, landing_bucket=f"test-landing-{suffix}",
                            store_bucket=f"test-store-{suffix}")
    yield s
    for bucket in (s.landing_bucket, s.store_bucket):
        try:
            for key in list_keys(s3_client, bucket):
                s3_client.delete_object(Bucket=bucket, Key=key)
            s3_client.delete_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - best-effort cleanup of a test bucket
            pass


@pytest.fixture(scope="module")
def zone(settings, s3_client):
    return ArchiveStandIn(settings, s3=s3_client)


@pytest.fixture(scope="module")
def store(settings, s3_client):
    return TimeSeriesStore(settings, s3=s3_client)


# -- landing zone -----------------------------------------------------------------------------
def test_granule_key_layout(zone):
    assert zone.granule_key("smap", DAY) == "smap/2017/06/smap_20170601.nc"
    assert zone.granule_key("era5_land", "2018-12-31") == "era5_land/2018/12/era5_land_20181231.nc"
    ref = zone.ref("gldas", DAY)
    assert ref.uri == f"s3://{zone.bucket}/gldas/2017/06/gldas_20170601.nc"
    assert GranuleRef.from_dict(ref.to_dict()) == ref


@pytest.mark.parametrize("product", ["smap", "era5_land", "gldas", "c3s"])
def test_publish_list_fetch_roundtrip(zone, product, tmp_path):
    ref = zone.publish(product, DAY)
    assert ref.key == zone.granule_key(product, DAY)
    assert ref in zone.list_granules(DAY)
    path = zone.fetch(ref, tmp_path)
    assert path.name == f"{product}_20170601.nc"
    decoded = read_granule(product, path)
    direct = read_product(product, DAY, DAY)
    for name in direct.data_vars:
        np.testing.assert_array_equal(decoded[name].values, direct[name].values, err_msg=name)


def test_granules_are_native_layout_units_and_flags(zone, tmp_path):
    files = {p: zone.fetch(zone.publish(p, DAY), tmp_path / p) for p in ("smap", "era5_land", "gldas", "c3s")}
    with netCDF4.Dataset(files["smap"]) as ds:
        assert "locationIndex" in ds.variables  # indexed ragged
        assert ds["soil_moisture"].units == "cm**3/cm**3"
        assert ds["soil_moisture"].getncattr("_FillValue") == -9999
        assert {"retrieval_qual_flag", "Overpass"} <= set(ds.variables)
        assert set(ds["Overpass"][:]) == {1, 2}
    with netCDF4.Dataset(files["gldas"]) as ds:
        assert ds["SoilMoi0_10cm_inst"].units == "kg m-2"  # raw, not converted
        assert len(ds.dimensions["time"]) == 8  # 3-hourly
        assert ds["SoilMoi0_10cm_inst"][:].min() > 5
    with xr.open_dataset(files["era5_land"], engine="netcdf4") as ds:
        assert "swvl1" in ds and ds.sizes["time"] == 1
        assert str(ds["time"].values[0]).startswith("2017-06-01T06:00")
    with netCDF4.Dataset(files["c3s"]) as ds:
        assert {"sm", "flag"} <= set(ds.variables)
        assert ds["sm"].units == "m3 m-3"


def test_day_without_overpass_gives_empty_granule(zone, tmp_path):
    ref = zone.publish("smap", NO_OVERPASS)
    decoded = read_granule("smap", zone.fetch(ref, tmp_path))
    assert decoded.sizes["time"] == 0 and decoded.sizes["location"] > 0


def test_day_outside_coverage_raises(zone):
    with pytest.raises(LookupError, match="2016-12-31"):
        zone.publish("era5_land", "2016-12-31")


def test_republish_is_idempotent(zone, s3_client):
    first = zone.publish("gldas", DAY)
    sha1 = s3_client.head_object(Bucket=first.bucket, Key=first.key)["Metadata"]["sha256"]
    second = zone.publish("gldas", DAY)
    sha2 = s3_client.head_object(Bucket=second.bucket, Key=second.key)["Metadata"]["sha256"]
    assert first == second and sha1 == sha2
    body = s3_client.get_object(Bucket=first.bucket, Key=first.key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha1


def test_publish_range_matches_single_publish(zone, s3_client):
    single = {p: s3_client.head_object(Bucket=zone.bucket, Key=zone.publish(p, DAY).key)["Metadata"]["sha256"]
              for p in ("smap", "c3s")}
    refs = zone.publish_range(["smap", "c3s"], "2017-05-31", "2017-06-02")
    assert len(refs) == 6
    for ref in refs:
        assert ref.key == zone.granule_key(ref.product, ref.day)
        if ref.day == DAY:
            meta = s3_client.head_object(Bucket=ref.bucket, Key=ref.key)["Metadata"]
            assert meta["sha256"] == single[ref.product]
    assert {r.product for r in zone.list_granules("2017-05-31")} == {"smap", "c3s"}
    assert zone.list_granules("2017-05-30") == []


def test_publish_range_skips_days_outside_coverage(zone):
    refs = zone.publish_range("era5_land", "2016-12-30", "2017-01-01")
    assert [r.day for r in refs] == [date(2017, 1, 1)]


# -- time-series store ------------------------------------------------------------------------
def field_for(value: float, name: str = "soil_moisture") -> xr.DataArray:
    grid = load_domain()
    f = grid.template(name, "m3 m-3")
    f.values[grid.land_mask] = value + np.linspace(0, 0.01, grid.n_land)
    return f


def test_store_put_get_roundtrip(store):
    f = field_for(0.25)
    key = store.put("era5_land", DAY, f)
    assert key == store.key("era5_land", DAY) == {
        "netcdf": "timeseries/era5_land/2017/era5_land_20170601.nc",  # the object of the day
        "zarr": "timeseries-zarr/big_island/era5_land/20170601",  # repository / group / day
    }[store.backend]
    back = store.get("era5_land", DAY)
    assert back.dims == ("lat", "lon") and back.name == "soil_moisture"
    np.testing.assert_array_equal(back.values, f.values)
    np.testing.assert_array_equal(back["lat"].values, f["lat"].values)
    assert back.attrs["units"] == "m3 m-3"
    assert store.get("era5_land", date(2001, 1, 1)) is None


def _stored_version(store, s3_client, product: str, day: date) -> str:
    """What a re-run with the same values must leave unchanged: the day's object checksum (per-day
    layout) or the repository's latest snapshot (chunked layout: nothing is committed)."""
    if store.backend == "netcdf":
        return s3_client.head_object(Bucket=store.bucket, Key=store.key(product, day))["Metadata"]["sha256"]
    return next(iter(store.repo.ancestry(branch="main"))).id


def test_store_rerun_replaces_with_deterministic_bytes(store, s3_client):
    store.put("gldas", DAY, field_for(0.1))
    store.put("gldas", DAY, field_for(0.3))
    np.testing.assert_allclose(np.nanmin(store.get("gldas", DAY).values), 0.3)
    version_a = _stored_version(store, s3_client, "gldas", DAY)
    store.put("gldas", DAY, field_for(0.3))
    assert _stored_version(store, s3_client, "gldas", DAY) == version_a
    assert store.days("gldas", DAY, DAY) == [DAY]  # replaced, never duplicated


def test_store_window_and_days(store):
    for k, d in enumerate([date(2017, 3, 1), date(2017, 3, 2), date(2017, 3, 4)]):
        store.put("smap", d, field_for(0.1 * (k + 1)))
    w = store.window("smap", date(2017, 3, 4), 5)
    assert w.dims == ("time", "lat", "lon") and w.shape == (5, 13, 10)
    assert str(w["time"].values[0])[:10] == "2017-02-28" and str(w["time"].values[-1])[:10] == "2017-03-04"
    assert np.isnan(w.values[0]).all() and np.isnan(w.values[3]).all()  # 02-28, 03-03 missing
    np.testing.assert_allclose(np.nanmin(w.values[1]), 0.1)
    np.testing.assert_allclose(np.nanmin(w.values[4]), 0.3)
    assert "2017-03-03" in w.attrs["missing_days"]
    assert store.days("smap", "2017-01-01", "2017-12-31") == [date(2017, 3, 1), date(2017, 3, 2), date(2017, 3, 4)]
    assert store.days("smap", "2017-03-02", "2017-03-03") == [date(2017, 3, 2)]
    assert store.days("nothing", "2017-01-01", "2017-12-31") == []


def test_store_rejects_fields_off_grid(store):
    with pytest.raises(ValueError, match="dims"):
        store.put("smap", DAY, xr.DataArray(np.zeros((2, 13, 10)), dims=("time", "lat", "lon")))
    bad = xr.DataArray(np.zeros((13, 10)), dims=("lat", "lon"),
                       coords={"lat": np.arange(13.0), "lon": np.arange(10.0)})
    with pytest.raises(ValueError, match="not on the big_island grid"):
        store.put("smap", DAY, bad)


def test_ingest_day_end_to_end(zone, store, tmp_path):
    """Landing granule -> fetch -> read_granule -> grid_granule -> store -> window."""
    from smflow.ingest import grid_granule, gridded_series

    grid = load_domain()
    ref = zone.publish("era5_land", DAY)
    field = grid_granule("era5_land", read_granule("era5_land", zone.fetch(ref, tmp_path)), DAY, grid)
    store.put("era5_land", DAY, field)
    w = store.window("era5_land", DAY, 1)
    bulk = gridded_series("era5_land", DAY, DAY, grid)
    np.testing.assert_array_equal(w.values, bulk.values)
    assert np.isfinite(w.values).sum() == grid.n_land == 84
