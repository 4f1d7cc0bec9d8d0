"""Readers without a real sample file, tested on fixtures built from the format specifications,
plus reader behaviour that needs no licensed data (no index files, library load order, slope).

* SMAP SPL3SMP: no real L3 granule exists in ``../shared`` (MANIFEST gaps). The fixture follows
  the SPL3SMP product specification (O'Neill et al., SMAP L3 Radiometer Global Daily 36 km,
  v9): groups ``Soil_Moisture_Retrieval_Data_AM`` and ``..._PM``, 406 x 964 EASE-2 M36 arrays,
  PM variables suffixed ``_pm``, fill -9999 / 65534, ``retrieval_qual_flag`` bit 0 = not
  recommended. The real SPL2SMP granules (same variable names, fills and flags in the
  ``Soil_Moisture_Retrieval_Data`` group) are read in test_native_real_files.py.
* AMSR2 L3 brightness temperature: no real file exists. The fixture is built strictly from
  JAXA's published format description (AMSR2 Higher Level Product Format Specification, level 3
  part, as distributed by G-Portal): file name ``GW1AM2_<date>_01D_EQM<A|D>_L3SGT<band><H|L>A
  <version>.h5``, root datasets ``Brightness Temperature (H)`` / ``(V)``, uint16, attribute
  ``SCALE FACTOR`` = 0.01, 65534/65535 = missing, 0.1 deg (1800 x 3600) or 0.25 deg
  (720 x 1440) equirectangular grid starting at 90 N, 180 W. It has not been checked against a
  real JAXA file.
* ERA5 netCDF: no real native ERA5 netCDF image exists; the fixtures follow the two CDS netCDF
  layouts (until 2024: ``time``/``latitude``/``longitude`` with int16 packing; since 2024:
  ``valid_time`` with float32 and an ``expver`` coordinate).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest

from smflow.config import Settings
from smflow.readers.native import GranuleError, open_native, product_for_path
from smflow.readers.native.terrain import slope_degrees

SHARED = Settings.load().shared_data_dir
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available "
                                  "on this machine (licensed data are never in the repository)")


# -- SMAP SPL3SMP ------------------------------------------------------------------------------
def _spl3smp(path: Path) -> Path:
    shape = (406, 964)
    with h5py.File(path, "w") as h5:
        for group, suffix, value, flag in (("Soil_Moisture_Retrieval_Data_AM", "", 0.25, 0),
                                           ("Soil_Moisture_Retrieval_Data_PM", "_pm", 0.30, 1)):
            g = h5.create_group(group)
            sm = np.full(shape, -9999.0, np.float32)
            sm[100, 100] = value
            sm[100, 101] = 0.61  # above valid_max 0.5
            sm[100, 102] = 0.20
            q = np.full(shape, 65534, np.uint16)
            q[100, 100:103] = (flag, 0, 0)  # bit 0 set = not recommended
            lat = np.full(shape, -9999.0, np.float32)  # filled where no retrieval (spec)
            for name, data in (("soil_moisture", sm), ("retrieval_qual_flag", q),
                               ("latitude", lat), ("longitude", lat),
                               ("surface_flag", np.zeros(shape, np.uint16))):
                d = g.create_dataset(name + suffix, data=data, compression="gzip")
                if name == "soil_moisture":
                    d.attrs.update({"_FillValue": np.float32(-9999.0), "units": b"cm**3/cm**3",
                                    "valid_min": 0.02, "valid_max": 0.5})
                if name == "retrieval_qual_flag":
                    d.attrs.update({"_FillValue": np.uint16(65534),
                                    "flag_masks": b"1s, 2s, 4s, 8s",
                                    "flag_meanings": b"Soil_moisture_retrieval_recommended "
                                    b"Soil_moisture_retrieval_attempted Soil_moisture_retrieval_"
                                    b"success FT_retrieval_success"})
    return path


def test_spl3smp_am_pm_groups_flags_and_grid(tmp_path):
    path = _spl3smp(tmp_path / "SMAP_L3_SM_P_20170101_R18290_001.h5")
    assert product_for_path(path).name == "smap"
    ds = open_native(path, chunks=None)
    assert ds.soil_moisture.dims == ("overpass", "y", "x")
    assert list(ds.overpass.values) == ["AM", "PM"]
    am, pm = ds.soil_moisture.sel(overpass="AM"), ds.soil_moisture.sel(overpass="PM")
    assert float(am[100, 100]) == pytest.approx(0.25) and np.isnan(pm[100, 100])  # PM flag bit 0
    assert np.isnan(am[100, 101]) and np.isnan(pm[100, 101])  # outside 0.02-0.5
    assert float(am[100, 102]) == pytest.approx(0.20) and float(pm[100, 102]) == pytest.approx(0.2)
    assert int(ds.quality_mask.sum()) == 3
    raw = open_native(path, chunks=None, apply_quality=False)
    assert float(raw.soil_moisture.sel(overpass="PM")[100, 100]) == pytest.approx(0.30)
    # EASE-2 M36 grid from its definition (the file's lat/lon are filled without retrieval)
    assert ds.lat.shape == (406, 964)
    # first-row centre = geospatial_lat_max of the real SMAP grid.nc (83.632, MANIFEST §3)
    assert float(ds.lat[0, 0]) == pytest.approx(83.632, abs=0.001)
    assert float(ds.lat[202, 0]) == pytest.approx(-float(ds.lat[203, 0]), abs=1e-6)
    assert float(ds.lon[0, 0]) == pytest.approx(-179.81, abs=0.01)


def test_spl3smp_missing_pm_group_raises(tmp_path):
    path = _spl3smp(tmp_path / "SMAP_L3_SM_P_20170101_R18290_001.h5")
    with h5py.File(path, "a") as h5:
        del h5["Soil_Moisture_Retrieval_Data_PM"]
    with pytest.raises(GranuleError, match="Soil_Moisture_Retrieval_Data_PM"):
        open_native(path)


# -- AMSR2 L3 ----------------------------------------------------------------------------------
def _amsr2(path: Path, rows: int = 720, cols: int = 1440) -> Path:
    with h5py.File(path, "w") as h5:
        for pol, value in (("H", 25_000), ("V", 27_512)):
            tb = np.full((rows, cols), 65534, np.uint16)
            tb[0, 0] = value
            tb[280, 96] = value + 100  # 19.875 N, -155.875 E (Big Island)
            tb[1, 1] = 65535
            d = h5.create_dataset(f"Brightness Temperature ({pol})", data=tb,
                                  compression="gzip")
            d.attrs["SCALE FACTOR"] = np.array([0.01], np.float32)
            d.attrs["UNIT"] = b"K"
    return path


def test_amsr2_l3_tb_from_the_jaxa_format_description(tmp_path):
    path = _amsr2(tmp_path / "GW1AM2_20170101_01D_EQMA_L3SGT36LA2220220.h5")
    assert product_for_path(path).name == "amsr2_l3_tb"
    ds = open_native(path, chunks=None)
    tb = ds.brightness_temperature
    assert tb.dims == ("polarization", "lat", "lon") and tb.attrs["units"] == "K"
    assert tb.attrs["frequency_ghz"] == 36.5 and tb.attrs["pass"] == "ascending"
    assert float(tb.sel(polarization="H")[0, 0]) == pytest.approx(250.0)
    assert float(tb.sel(polarization="V")[0, 0]) == pytest.approx(275.12)
    assert float(ds.lat[0]) == pytest.approx(89.875) and float(ds.lon[0]) == pytest.approx(-179.875)
    hawaii = tb.sel(polarization="H").sel(lat=19.875, lon=-155.875, method="nearest")
    assert float(hawaii) == pytest.approx(251.0)
    assert int(np.isfinite(tb.values).sum()) == 4  # 65534 and 65535 are missing
    assert ds.time.values == np.datetime64("2017-01-01", "ns")


def test_amsr2_wrong_grid_and_missing_polarisation_raise(tmp_path):
    path = _amsr2(tmp_path / "GW1AM2_20170101_01D_EQMD_L3SGT06HA2220220.h5")  # H = 0.1 deg
    with pytest.raises(GranuleError, match="1800, 3600"):
        open_native(path)
    path = _amsr2(tmp_path / "GW1AM2_20170102_01D_EQMD_L3SGT06LA2220220.h5")
    with h5py.File(path, "a") as h5:
        del h5["Brightness Temperature (V)"]
    with pytest.raises(GranuleError, match=r"Brightness Temperature \(V\)"):
        open_native(path)


# -- ERA5 netCDF (CDS) --------------------------------------------------------------------------
def _era5_nc(path: Path, new_cds: bool) -> Path:
    lat = np.array([20.5, 20.0, 19.5, 19.0])
    lon = np.array([203.5, 204.0, 204.5, 205.0])  # 0..360 as in CDS downloads
    swvl1 = np.array([[0.30, 0.0, 0.25, 0.10]] * 4)
    lsm = np.array([[1.0, 0.0, 0.9, 0.7]] * 4)
    with netCDF4.Dataset(path, "w") as nc:
        tname = "valid_time" if new_cds else "time"
        nc.createDimension(tname, 1)
        nc.createDimension("latitude", 4)
        nc.createDimension("longitude", 4)
        t = nc.createVariable(tname, "i8" if new_cds else "i4", (tname,))
        t.units = "seconds since 1970-01-01" if new_cds else "hours since 1900-01-01 00:00:00.0"
        t[:] = [1483228800] if new_cds else [1025616]  # 2017-01-01 00:00 in both units
        nc.createVariable("latitude", "f4", ("latitude",))[:] = lat
        nc.createVariable("longitude", "f4", ("longitude",))[:] = lon
        for name, data, units in (("swvl1", swvl1, "m**3 m**-3"), ("tp", np.full((4, 4), 0.002),
                                                                    "m"), ("lsm", lsm, "(0 - 1)")):
            if new_cds:
                v = nc.createVariable(name, "f4", (tname, "latitude", "longitude"),
                                      fill_value=np.float32(np.nan))
                v[:] = data[None]
            else:  # int16 packing with scale_factor / add_offset, as the old CDS did
                lo, hi = float(data.min()) - 0.001, float(data.max()) + 0.001
                scale = (hi - lo) / (2 ** 16 - 2)
                v = nc.createVariable(name, "i2", (tname, "latitude", "longitude"),
                                      fill_value=np.int16(-32767))
                v.scale_factor, v.add_offset, v.missing_value = scale, (hi + lo) / 2, -32767
                v[:] = data[None]
            v.units = units
        if new_cds:
            nc.createVariable("expver", str, (tname,))[0] = "0001"
    return path


@pytest.mark.parametrize("new_cds", [False, True])
def test_era5_netcdf_both_cds_layouts(tmp_path, new_cds):
    path = _era5_nc(tmp_path / f"era5_land_20170101_{int(new_cds)}.nc", new_cds)
    assert product_for_path(path).name == "era5_netcdf"
    ds = open_native(path, chunks=None)
    assert ds.soil_moisture.dims == ("time", "lat", "lon")
    assert ds.time.values[0] == np.datetime64("2017-01-01T00:00", "ns")
    assert list(ds.lon.values) == [-156.5, -156.0, -155.5, -155.0]  # wrapped, sorted
    sm = ds.soil_moisture.values[0, 0]
    np.testing.assert_allclose(sm[[0, 2, 3]], [0.30, 0.25, 0.10], atol=1e-4)
    assert np.isnan(sm[1])  # sea (lsm 0) is masked, not 0 m3 m-3
    assert ds.quality_mask.values[0, 0].tolist() == [True, False, True, True]
    np.testing.assert_allclose(ds.precipitation_amount.values, 2.0, atol=1e-3)  # m -> kg m-2
    assert ds.precipitation_amount.attrs["units"] == "kg m-2"


def test_era5_netcdf_without_known_variables_raises(tmp_path):
    path = _era5_nc(tmp_path / "era5_20170101.nc", False)
    with netCDF4.Dataset(path, "a") as nc:
        for name in ("swvl1", "tp", "lsm"):
            nc.renameVariable(name, name + "_x")
    with pytest.raises(GranuleError, match="not an ERA5 netCDF"):
        open_native(path)


# -- GRIB: no index file next to the input ----------------------------------------------------
@needs_shared
def test_grib_reading_writes_no_index_file_next_to_the_input(tmp_path):
    folder = tmp_path / "input"
    folder.mkdir()
    for rel in ("ecmwf_grib/soil-surface-level-mix.grib", "hsaf_h14_rzsm_grib/H14_2014051500.grib"):
        shutil.copyfile(SHARED / rel, folder / Path(rel).name)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    open_native(folder / "soil-surface-level-mix.grib", chunks=None)
    open_native(folder / "H14_2014051500.grib", chunks=None)
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert after == before
    assert not list(SHARED.rglob("*.idx"))


# -- process-level behaviour ------------------------------------------------------------------
@needs_shared
def test_pyproj_and_rasterio_work_after_eccodes_and_the_process_exits_cleanly():
    """The eccodes wheel bundles its own PROJ; reading BUFR first must not break pyproj."""
    script = (
        "from smflow.readers.native import open_native\n"
        f"root = {str(SHARED)!r}\n"
        "open_native(root + '/hsaf_ascat_nrt_bufr/h16_20170220_111500_METOPB_22969_EUM.buf')\n"
        "open_native(root + '/hsaf_h14_rzsm_grib/H14_2014051500.grib')\n"
        "ds = open_native(root + '/dem_hawaii/Kilauea.utm.nc')\n"
        "assert 19.2 < float(ds.lat.min()) < 19.3\n"
        "ds = open_native(root + '/modis_ndvi/VI_16Days_500m_v6/NDVI/MOD13A1_NDVI_2016_001.tif')\n"
        "assert 45.6 < float(ds.lat.min()) < 45.7\n"
        "from pyproj import Transformer\n"
        "x, y = Transformer.from_crs('EPSG:4326', 'EPSG:32605', always_xy=True).transform(-155.0, 19.5)\n"
        "assert 200_000 < x < 400_000\n"  # UTM 5N: central meridian -153
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env={**os.environ})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


# -- slope --------------------------------------------------------------------------------------
def test_slope_of_a_plane_is_its_angle():
    x = np.arange(0.0, 1000.0, 30.0)
    y = np.arange(0.0, 900.0, 30.0)[::-1]
    z = 0.1 * x[None, :] + 0.0 * y[:, None]
    np.testing.assert_allclose(slope_degrees(z, x=x, y=y), np.degrees(np.arctan(0.1)))
    lat = np.linspace(19.0, 20.0, 11)
    lon = np.linspace(-156.0, -155.0, 11)
    metres_north = np.radians(lat - 19.0) * 6_371_007.181
    z = np.repeat((0.05 * metres_north)[:, None], lon.size, axis=1)
    np.testing.assert_allclose(slope_degrees(z, lat=lat, lon=lon), np.degrees(np.arctan(0.05)),
                               rtol=1e-9)
