"""Layout readers and product handlers on the real Hawaii cell files and on the bundle.

Expected numbers are the ones measured in ../shared/data/real/MANIFEST.md (section 3).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from smflow.config import REPO_ROOT, Settings
from smflow.products import PRODUCTS
from smflow.readers import (
    read_contiguous_ragged,
    read_indexed_ragged,
    read_orthogonal,
    read_product,
    subset_files,
)

BUNDLE = REPO_ROOT / "data" / "sample" / "hawaii"
BUNDLED = ("smap", "era5_land", "gldas", "c3s")


@pytest.fixture(scope="module")
def real() -> Path:
    shared = Settings.load().shared_data_dir
    if shared is None or not (shared / "hawaii_timeseries").is_dir():
        pytest.skip("../shared/data/real/hawaii_timeseries is not available on this machine")
    return shared / "hawaii_timeseries"


def cells(root: Path, product: str) -> list[Path]:
    p = PRODUCTS[product]
    return [root / p.folder / f"{c}.nc" for c in p.cells]


# -- layout readers on the real files ---------------------------------------------------------
def test_orthogonal_era5_land_two_cells(real):
    ds = read_orthogonal(cells(real, "era5_land"), variables=["swvl1"])
    assert dict(ds.sizes) == {"location": 71 + 65, "time": 730}
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    times = pd.DatetimeIndex(ds["time"].values)
    assert times[0] == pd.Timestamp("2017-01-01 06:00") and times[-1] == pd.Timestamp("2018-12-31 06:00")
    assert (times.hour == 6).all() and (times.minute == 0).all()  # daily sample at 06 UTC (MJD decoded)
    sw = ds["swvl1"].values
    assert np.isfinite(sw).all()
    assert 0.048 < sw.min() < 0.050 and 0.519 < sw.max() < 0.521
    for name in ("lat", "lon", "location_id"):
        assert ds[name].dims == ("location",)
    assert ds["lat"].attrs["standard_name"] == "latitude" and ds["lon"].attrs["units"] == "degrees_east"
    assert ds["location_id"].attrs["cf_role"] == "timeseries_id"
    assert ds.attrs["featureType"] == "timeSeries"


def test_orthogonal_gldas_three_hourly(real):
    ds = read_orthogonal(cells(real, "gldas"), variables=["SoilMoi0_10cm_inst", "SoilTMP0_10cm_inst"])
    assert dict(ds.sizes) == {"location": 13 + 8, "time": 5840}
    times = pd.DatetimeIndex(ds["time"].values)
    assert times[0] == pd.Timestamp("2017-01-01 03:00") and times[-1] == pd.Timestamp("2019-01-01 00:00")
    assert (np.diff(ds["time"].values) == np.timedelta64(3, "h")).all()
    assert 7.8 < float(ds["SoilMoi0_10cm_inst"].min()) and float(ds["SoilMoi0_10cm_inst"].max()) < 52


def test_orthogonal_c3s_flags(real):
    ds = read_orthogonal(cells(real, "c3s"), variables=["sm", "flag"])
    assert dict(ds.sizes) == {"location": 14, "time": 16863}
    assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("1978-11-01")
    assert pd.Timestamp(ds["time"].values[-1]) == pd.Timestamp("2024-12-31")
    valid = np.isfinite(ds["sm"].values)
    assert valid.sum() == 14439
    np.testing.assert_array_equal(valid, ds["flag"].values == 0)  # measured: sm valid <=> flag == 0
    assert ds["flag"].dtype.kind == "i"  # integer flags stay raw


def test_indexed_ragged_smap(real):
    ds = read_indexed_ragged(cells(real, "smap"),
                             variables=["soil_moisture", "retrieval_qual_flag", "Overpass"])
    assert ds.sizes["location"] == 8 + 5
    overpass = ds["Overpass"].values
    assert (overpass != -9999).sum() == 23050 + 12774  # every observation placed once
    assert np.isfinite(ds["soil_moisture"].values).sum() == 16875 + 7837  # -9999 -> NaN
    assert set(np.unique(overpass[overpass != -9999])) == {1, 2}
    # J2000 decoding: first raw time of 0165 is 481134705.3228015 s since 2000-01-01 12:00.
    with netCDF4.Dataset(cells(real, "smap")[0]) as raw:
        t_raw = raw["time"][:]
        li = raw["locationIndex"][:]
    k = int(np.argmin(t_raw))
    expected = datetime(2000, 1, 1, 12) + timedelta(seconds=float(t_raw[k]))
    got = pd.Timestamp(ds["time"].values[0])
    assert abs((got - pd.Timestamp(expected)).total_seconds()) < 1e-3
    assert got.strftime("%Y-%m-%d %H:%M") == "2015-04-01 04:31"
    # that observation belongs to the location its locationIndex names
    loc = int(li[k])
    assert ds["Overpass"].values[loc, 0] != -9999
    assert pd.Timestamp(ds["time"].values[-1]).date().isoformat() == "2025-01-26"


def test_contiguous_ragged_ascat_h119(real):
    ds = read_contiguous_ragged(cells(real, "ascat_h119"), variables=["sm", "proc_flag"])
    assert ds.sizes["location"] == 33  # 22 of 55 slots have masked lat/lon and no data
    with netCDF4.Dataset(cells(real, "ascat_h119")[0]) as raw:
        raw.set_auto_mask(False)
        row_size = raw["row_size"][:33]
        t_first = raw["time"][0]
    # proc_flag has no fill attribute: cells without an observation hold the int8 default fill
    placed = ds["proc_flag"].values != netCDF4.default_fillvals["i1"]
    np.testing.assert_array_equal(placed.sum(axis=1), row_size)
    assert placed.sum() == 158708
    sm = ds["sm"].values
    assert np.nanmin(sm) >= 0 and np.nanmax(sm) <= 100  # scale_factor 0.01 applied
    assert (placed & ~np.isfinite(sm)).sum() == 1586  # missing_value 65535 -> NaN
    # days since 1900-01-01 decoding, first observation of the first location
    expected = pd.Timestamp("1900-01-01") + pd.Timedelta(seconds=float(t_first) * 86400)
    first = pd.Timestamp(ds["time"].values[placed[0]][0])
    assert abs((first - expected).total_seconds()) < 1e-3
    assert first.strftime("%Y-%m-%d %H:%M") == "2007-01-09 20:30"


def test_time_window_and_bbox(real):
    ds = read_orthogonal(cells(real, "era5_land"), variables=["swvl1"], start="2017-03-01",
                         end="2017-03-03", bbox=(-156.05, 18.95, -155.05, 20.25))
    assert ds.sizes["time"] == 3 and ds.sizes["location"] == 84
    smap = read_indexed_ragged(cells(real, "smap"), variables=["soil_moisture"],
                               start="2017-03-01", end="2017-03-01")
    t = pd.DatetimeIndex(smap["time"].values)
    assert ((t >= "2017-03-01") & (t < "2017-03-02")).all()


# -- product handler --------------------------------------------------------------------------
def test_read_product_smap_flags(real):
    ds = read_product("smap", "2017-01-01", "2018-12-31", source_dir=real)
    assert ds.attrs["product"] == "smap"
    sm = ds["soil_moisture"]
    assert sm.attrs["units"] == "m3 m-3"
    assert sm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert "long_name" in sm.attrs
    flag = ds["retrieval_qual_flag"].values
    passed = ds["quality_mask"].values
    # bit 2 set = retrieval failed -> rejected (see smflow.products.SMAP for why not bit 0);
    # NaN exactly where the mask is False
    assert not passed[(flag & 4) == 4].any()
    np.testing.assert_array_equal(np.isfinite(sm.values), passed)
    vals = sm.values[passed]
    assert vals.min() >= 0.02 and vals.max() <= 0.5
    # Measured (whole cells 0165+0166, all islands): with "recommended quality" (bit 0) only 502
    # obs at one grid point survive in 2017-2018; with "retrieval succeeded" (bit 2) and the valid
    # range 5,156 (4,171 at 8 points inside the Big-Island bundle).
    assert ((flag & 1) == 0)[passed].sum() == 502
    assert passed.sum() == 5156
    assert set(np.unique(ds["Overpass"].values[passed])) == {1, 2}


def test_read_product_gldas_units_and_aux(real):
    ds = read_product("gldas", "2017-07-01", "2017-07-02", source_dir=real)
    raw = read_orthogonal(cells(real, "gldas"), variables=["SoilMoi0_10cm_inst"],
                          start="2017-07-01", end="2017-07-02")
    np.testing.assert_allclose(ds["soil_moisture"].values, raw["SoilMoi0_10cm_inst"].values / 100.0)
    assert ds["soil_moisture"].attrs["source_units"] == "kg m-2"
    assert ds["soil_temperature"].attrs["units"] == "K"
    assert 270 < float(ds["soil_temperature"].min()) and float(ds["soil_temperature"].max()) < 330
    assert ds.sizes["time"] == 16


def test_read_product_c3s_and_era5_land(real):
    c3s = read_product("c3s", "2017-01-01", "2018-12-31", source_dir=real)
    np.testing.assert_array_equal(c3s["quality_mask"].values, c3s["flag"].values == 0)
    assert int(c3s["quality_mask"].sum()) == 706 + 702
    era = read_product("era5_land", "2017-01-01", "2017-01-31", source_dir=real)
    assert bool(era["quality_mask"].all())
    assert "flag" not in era and era.sizes["time"] == 31


def test_read_product_ascat_degree_of_saturation(real):
    ds = read_product("ascat_h119", "2017-01-01", "2018-12-31")  # default source: ../shared
    assert "degree_of_saturation" in ds and "soil_moisture" not in ds
    dos = ds["degree_of_saturation"]
    assert dos.attrs["units"] == "percent" and "standard_name" not in dos.attrs
    assert float(dos.min()) >= 0 and float(dos.max()) <= 100
    assert int(ds["quality_mask"].sum()) == 26404
    assert not ds["quality_mask"].values[ds["proc_flag"].values > 0].any()


def test_read_product_default_source_is_bundle():
    ds = read_product("era5_land", "2017-05-01", "2017-05-02")
    assert str(BUNDLE) in str(Settings.load().sample_data_dir / "hawaii")
    assert ds.sizes["time"] == 2 and ds.sizes["location"] >= 84


# -- bundle -----------------------------------------------------------------------------------
def test_bundle_is_small_and_only_redistributable():
    files = sorted(BUNDLE.rglob("*"))
    data = [f for f in files if f.is_file()]
    assert sum(f.stat().st_size for f in data) < 5e6
    folders = {f.parent.name for f in data}
    assert folders == {PRODUCTS[p].folder for p in BUNDLED}
    assert not list(REPO_ROOT.glob("data/**/*.stm"))  # ISMN never copied
    assert not list(REPO_ROOT.glob("data/**/ASCAT*"))  # H SAF never copied
    attribution = (REPO_ROOT / "data" / "sample" / "ATTRIBUTION.md").read_text()
    assert "Contains modified Copernicus Climate Change Service information 2026" in attribution
    assert "4b4799e58fce" in attribution and "10.5067/K7Y2D8QQVZ4L" in attribution


@pytest.mark.parametrize("product", BUNDLED)
def test_bundle_equals_originals_on_overlap(real, product):
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("make_bundle", REPO_ROOT / "data" / "sample" / "make_bundle.py")
    make_bundle = module_from_spec(spec)
    spec.loader.exec_module(make_bundle)
    bbox = make_bundle.bundle_bbox(product)
    bundled = read_product(product, "2017-01-01", "2018-12-31", source_dir=BUNDLE)
    original = read_product(product, "2017-01-01", "2018-12-31", source_dir=real, bbox=bbox)
    assert bundled.sizes == original.sizes
    for name in list(bundled.data_vars) + ["lat", "lon", "location_id", "time"]:
        np.testing.assert_array_equal(bundled[name].values, original[name].values, err_msg=name)
    # same layout, names, attributes and encoding as the original files
    p = PRODUCTS[product]
    for cell in p.cells:
        with netCDF4.Dataset(BUNDLE / p.folder / f"{cell}.nc") as b, \
                netCDF4.Dataset(real / p.folder / f"{cell}.nc") as o:
            assert set(b.variables) <= set(o.variables)
            assert p.variable in b.variables
            for name, var in b.variables.items():
                src = o[name]
                assert var.dtype == src.dtype and var.dimensions == src.dimensions
                assert {k: str(var.getncattr(k)) for k in var.ncattrs()} == \
                    {k: str(src.getncattr(k)) for k in src.ncattrs()}
                assert var.filters()["zlib"] == src.filters()["zlib"]
            assert b.dimensions["time"].isunlimited() == o.dimensions["time"].isunlimited()


def test_make_bundle_reproduces_committed_bytes(real, tmp_path):
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("make_bundle", REPO_ROOT / "data" / "sample" / "make_bundle.py")
    make_bundle = module_from_spec(spec)
    spec.loader.exec_module(make_bundle)
    assert make_bundle.main(["--shared", str(real.parent), "--out", str(tmp_path)]) == 0
    for f in sorted(BUNDLE.rglob("*.nc")):
        rebuilt = tmp_path / f.relative_to(BUNDLE)
        assert hashlib.sha256(rebuilt.read_bytes()).digest() == hashlib.sha256(f.read_bytes()).digest(), f


def test_subset_empty_window_gives_valid_empty_granule(tmp_path):
    p = PRODUCTS["smap"]
    dest = subset_files([BUNDLE / p.folder / f"{c}.nc" for c in p.cells], tmp_path / "empty.nc",
                        start="2017-06-05", end="2017-06-05")  # no overpass over Hawaii that day
    with netCDF4.Dataset(dest) as ds:
        assert len(ds.dimensions["time"]) == 0 and len(ds.dimensions["locations"]) == 9
    decoded = read_indexed_ragged(dest)
    assert decoded.sizes["time"] == 0
