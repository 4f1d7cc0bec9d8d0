"""read_granule on day granules (native layout) and its errors; daily means."""

from __future__ import annotations

import pickle
import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest

from smflow.config import REPO_ROOT
from smflow.products import PRODUCTS
from smflow.readers import GranuleError, daily_mean, daily_means, read_granule, read_product, subset_files

BUNDLE = REPO_ROOT / "data" / "sample" / "hawaii"


def day_granule(product: str, day: str, dest) -> "pathlib.Path":  # noqa: F821
    p = PRODUCTS[product]
    return subset_files([BUNDLE / p.folder / f"{c}.nc" for c in p.cells], dest,
                        start=day, end=day, variables=p.keep_variables)


@pytest.mark.parametrize("product", ["smap", "era5_land", "gldas", "c3s"])
def test_read_granule_equals_read_product_for_the_day(product, tmp_path):
    day = "2017-06-01"
    path = day_granule(product, day, tmp_path / f"{product}.nc")
    decoded = read_granule(product, path)
    direct = read_product(product, day, day)
    assert decoded.attrs["product"] == product and decoded.attrs["source_file"] == path.name
    assert decoded["time"].dtype == np.dtype("datetime64[ns]")
    for name in direct.data_vars:
        np.testing.assert_array_equal(decoded[name].values, direct[name].values, err_msg=name)
    assert decoded["quality_mask"].dtype == bool
    assert set(decoded.dims) == {"location", "time"}
    for flag in PRODUCTS[product].flag_variables:
        assert flag in decoded


def test_smap_day_granule_keeps_raw_native_content(tmp_path):
    path = day_granule("smap", "2017-06-01", tmp_path / "smap.nc")
    with netCDF4.Dataset(path) as ds:
        assert ds.timeSeries_format == "IndexedRaggedTs"
        assert ds["soil_moisture"].units == "cm**3/cm**3"
        assert "retrieval_qual_flag" in ds.variables and "Overpass" in ds.variables
        assert ds["time"].units == "seconds since 2000-01-01 12:00:00"
        assert len(ds.dimensions["time"]) > 0


# -- errors -----------------------------------------------------------------------------------
@pytest.fixture
def good_granule(tmp_path):
    return day_granule("smap", "2017-06-01", tmp_path / "smap_20170601.nc")


def test_truncated_granule(good_granule, tmp_path):
    bad = tmp_path / "smap_truncated.nc"
    data = good_granule.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(GranuleError, match="smap_truncated.nc") as info:
        read_granule("smap", bad)
    assert "truncated" in str(info.value)
    assert isinstance(info.value, ValueError) and info.value.path == bad


def test_not_netcdf(tmp_path):
    bad = tmp_path / "smap_html.nc"
    bad.write_text("<html><body>503 Service Unavailable</body></html>")
    with pytest.raises(GranuleError, match="smap_html.nc.*not a netCDF file"):
        read_granule("smap", bad)


def test_empty_and_missing_file(tmp_path):
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    with pytest.raises(GranuleError, match="empty.nc.*empty"):
        read_granule("gldas", empty)
    with pytest.raises(GranuleError, match="nothere.nc.*does not exist"):
        read_granule("gldas", tmp_path / "nothere.nc")


def test_wrong_variable_name(good_granule, tmp_path):
    bad = tmp_path / "smap_renamed.nc"
    shutil.copy(good_granule, bad)
    with netCDF4.Dataset(bad, "a") as ds:
        ds.renameVariable("soil_moisture", "sm")
    with pytest.raises(GranuleError, match=r"smap_renamed.nc.*no variable 'soil_moisture'"):
        read_granule("smap", bad)


def test_wrong_layout(tmp_path):
    era = day_granule("era5_land", "2017-06-01", tmp_path / "era5.nc")
    with pytest.raises(GranuleError, match=r"era5.nc.*orthogonal layout, expected indexed_ragged"):
        read_granule("smap", era)
    with pytest.raises(GranuleError, match=r"era5.nc.*no variable 'SoilMoi0_10cm_inst'"):
        read_granule("gldas", era)


def test_granule_error_pickles():
    err = GranuleError("/x/y.nc", "broken")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.problem == "broken"


# -- daily means ------------------------------------------------------------------------------
def test_daily_mean_gldas_is_mean_of_the_eight_steps():
    decoded = read_product("gldas", "2017-07-01", "2017-07-02")
    mean = daily_mean(decoded, "2017-07-01")
    assert mean.dims == ("location",)
    assert mean.attrs["units"] == "m3 m-3"
    expected = decoded["soil_moisture"].sel(time=slice("2017-07-01", "2017-07-01T23:59")).mean("time")
    np.testing.assert_allclose(mean.values, expected.values, rtol=1e-12)
    assert (mean["n_obs"].values == 8).all()
    assert pd.Timestamp(mean["time"].values) == pd.Timestamp("2017-07-01")


def test_daily_mean_smap_uses_only_passing_obs_in_utc_day():
    decoded = read_product("smap", "2017-01-01", "2018-12-31")
    passing_days = pd.DatetimeIndex(decoded["time"].values[decoded["quality_mask"].values.any(axis=0)])
    day = passing_days[0].normalize()
    mean = daily_mean(decoded, day)
    inside = (decoded["time"].values >= day.to_datetime64()) & (
        decoded["time"].values < (day + pd.Timedelta(days=1)).to_datetime64())
    block = np.where(decoded["quality_mask"].values[:, inside], decoded["soil_moisture"].values[:, inside], np.nan)
    with np.errstate(invalid="ignore"):
        expected = np.array([np.nan if not np.isfinite(r).any() else np.nanmean(r) for r in block])
    np.testing.assert_allclose(mean.values, expected, rtol=1e-12, equal_nan=True)
    assert np.isfinite(mean.values).sum() == np.isfinite(expected).sum() >= 1


def test_daily_means_over_a_period_equal_single_days():
    decoded = read_product("smap", "2017-03-01", "2017-03-31")
    many = daily_means(decoded, "2017-03-01", "2017-03-31")
    assert many.dims == ("location", "time") and many.sizes["time"] == 31
    for k, day in enumerate(pd.date_range("2017-03-01", "2017-03-31")):
        np.testing.assert_array_equal(many.values[:, k], daily_mean(decoded, day).values)


def test_daily_mean_of_empty_granule_is_all_nan(tmp_path):
    path = day_granule("smap", "2017-06-05", tmp_path / "smap_20170605.nc")  # no overpass
    decoded = read_granule("smap", path)
    assert decoded.sizes["time"] == 0
    mean = daily_mean(decoded, "2017-06-05")
    assert mean.sizes["location"] == 9 and np.isnan(mean.values).all()
