"""Every real file in ``../shared/data/real`` is read by a native reader and checked against
the ranges measured in its MANIFEST.

The files are read where they are (licences: ISMN, EUMETSAT/H SAF, ESA CCI and MERIT-derived
files must never be copied into the repository); without ``../shared`` the tests skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from smflow.config import Settings
from smflow.readers.native import open_native, product_for_path

REPO = Path(__file__).resolve().parents[3]
SHARED = Settings.load().shared_data_dir
#: Files that are documentation, not data (no reader on purpose).
DOCUMENTATION = {"MANIFEST.md", "ismn_hawaii/ISMN_TESTDATA_HAWAII/Readme.txt"}
BIG_ISLAND = (-156.1, 18.8, -154.7, 20.4)  # lon_min, lat_min, lon_max, lat_max (MANIFEST §13)


def _real_files() -> list[str]:
    if SHARED is None:
        return []
    return sorted(p.relative_to(SHARED).as_posix() for p in SHARED.rglob("*") if p.is_file()
                  and not p.name.endswith(".idx"))


REAL = _real_files()
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available "
                                  "on this machine (licensed data are never in the repository)")


def _open(rel: str, **kw):
    options = {"bbox": BIG_ISLAND} if rel.endswith(".npz") else {}
    return open_native(SHARED / rel, chunks=None, **options, **kw)


def _count(da) -> int:
    return int(np.isfinite(da.values).sum())


def _range(da) -> tuple[float, float]:
    return float(np.nanmin(da.values)), float(np.nanmax(da.values))


def _box(ds, name, bbox=BIG_ISLAND):
    lon_min, lat_min, lon_max, lat_max = bbox
    return ds[name].sel(lat=slice(*sorted((lat_min, lat_max))) if ds.lat[0] < ds.lat[-1]
                        else slice(lat_max, lat_min), lon=slice(lon_min, lon_max))


# -- expected values: MANIFEST sections in brackets ------------------------------------------
def check_smap_l2(ds, rel):  # §4
    raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
    sm = raw.soil_moisture
    assert float(np.nanmin(sm)) >= 0.02 and float(np.nanmax(sm)) <= 0.5
    lat = raw.lat.values[np.isfinite(sm.values)]
    if "02801" in rel:
        assert _count(sm) == 1152  # of 1333 non-fill values, 1152 inside 0.02-0.5
        assert lat.min() >= 35.6 and lat.max() <= 71.0
        assert str(ds.attrs["time_coverage_start"]).startswith("2015-08-11 01:31:19")
    else:
        assert lat.min() >= 54.3 and lat.max() <= 78.4
    assert 0 < int(ds.quality_mask.sum()) <= _count(sm)
    flags = ds.retrieval_qual_flag.values
    np.testing.assert_array_equal(ds.quality_mask.values,
                                  np.isfinite(sm.values) & ((flags & 1) == 0) & (flags != 65534))
    assert ds.soil_moisture.attrs["units"] == "m3 m-3"
    assert list(ds.retrieval_qual_flag.attrs["flag_masks"]) == [1, 2, 4, 8]


SMOS_VALID = {"20150506": 3563, "20150507": 5254, "20150508": 4019}


def check_smos_l3(ds, rel):  # §5
    day = re.search(r"CLF31A_(\d{8})", rel).group(1)
    assert _count(ds.soil_moisture) == SMOS_VALID[day]
    lo, hi = _range(ds.soil_moisture)
    assert 0.0 <= lo and hi <= 1.0
    assert ds.lat.values[0] < ds.lat.values[-1]  # ascending in these files
    t = ds.observation_time.values[np.isfinite(ds.soil_moisture.values)]
    assert (t.astype("datetime64[D]") == np.datetime64(f"{day[:4]}-{day[4:6]}-{day[6:]}")).all()


def check_gldas(ds, rel):  # §6
    assert _count(ds.soil_moisture) == 243_883
    lo, hi = _range(ds.soil_moisture)
    assert 0.0199 <= lo and hi <= 0.477  # 2.0 .. 47.6 kg m-2 / 100 mm
    lo, hi = _range(ds.soil_moisture_10_40cm)
    assert 0.0 < lo and hi < 1.0
    hour = re.search(r"\.(\d\d)00\.021", rel).group(1)
    assert ds.time.values[0] == np.datetime64(f"2016-01-01T{hour}:00", "ns")


CCI_VALID = {"COMBINED-20160607": 170_984, "COMBINED-20160608": 171_048,
             "PASSIVE-20160606": 125_577, "PASSIVE-20160607": 125_851,
             "ACTIVE-20160606": 172_561, "ACTIVE-20160607": 175_117}


def check_cci(ds, rel):  # §7
    key = re.search(r"(ACTIVE|PASSIVE|COMBINED)-(\d{8})", rel).group(0)
    name = "degree_of_saturation" if "ACTIVE" in key else "soil_moisture"
    raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
    assert _count(raw[name]) == CCI_VALID[key]
    lo, hi = _range(raw[name])
    assert 0.0 <= lo and hi <= (100.0 if name == "degree_of_saturation" else 1.0)
    assert ds[name].attrs["units"] == ("percent" if "ACTIVE" in key else "m3 m-3")
    # flag == 0 exactly where a value exists (measured rule, MANIFEST §3 / §7)
    assert int(ds.quality_mask.sum()) == _count(ds[name])


ASCAT_NC = {"41500_53652_eps_o_125": 59_850, "41500_53652_eps_o_250": 15_372,
            "55700_53653_eps_o_250": 14_701, "50900_22966_eps_o_250": 14_663}


def check_ascat_nc(ds, rel):  # §8
    raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
    key = next(k for k in ASCAT_NC if k in rel)
    assert _count(raw.degree_of_saturation) == ASCAT_NC[key]
    lo, hi = _range(raw.degree_of_saturation)
    assert lo >= 0.0 and hi <= 100.0  # the 65535 fill (655.35 %) is masked
    assert raw.degree_of_saturation.attrs["units"] == "percent"
    if "_125_" in rel:
        lat = raw.lat.values[np.isfinite(raw.degree_of_saturation.values)]
        assert 5.9 <= lat.min() and lat.max() <= 77.1
    assert 0 < int(ds.quality_mask.sum()) < ASCAT_NC[key]


ASCAT_BUFR = {  # file key: (subsets, valid SM, lat range)
    "M02-ASCA": (68_544, 15_372, (-89.4, 89.3)),
    "20170220041500_53652_eps_o_250_ssm_l2.bin": (2016, None, (33.7, 68.8)),
    "20170220041800_53652_eps_o_250_ssm_l2.bin": (2016, None, (33.7, 68.8)),
    "20170220042100_53652_eps_o_250_ssm_l2.bin": (2016, None, (33.7, 68.8)),
    "h101_": (2016, 1591, (52.9, 68.1)),
    "h102_": (7872, 6216, (52.9, 68.1)),
    "h103_": (7872, 1647, (-1.6, 12.3)),
    "h16_": (2016, 637, (-32.5, -18.5)),
}


def check_ascat_bufr(ds, rel):  # §8, §9
    n, valid, (lat0, lat1) = next(v for k, v in ASCAT_BUFR.items() if k in rel)
    raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
    assert raw.sizes["obs"] == n
    if valid is not None:
        assert _count(raw.degree_of_saturation) == valid
    lo, hi = _range(raw.degree_of_saturation)
    assert lo >= 0.0 and hi <= 100.0
    assert lat0 <= float(raw.lat.min()) and float(raw.lat.max()) <= lat1
    assert str(raw.time.values.min()).startswith("2017-02-20")


def check_ascat_bufr_vs_nc(ds, rel):
    """The same Metop-A orbit 53652 in BUFR and netCDF: identical valid values (§8)."""
    check_ascat_bufr(ds, rel)
    nc = open_native(next(SHARED.glob("ascat_eumetsat_l2/nc_25km/*53652_eps_o_250*.nc")),
                     chunks=None, apply_quality=False)
    bufr = open_native(SHARED / rel, chunks=None, apply_quality=False)
    a = np.sort(nc.degree_of_saturation.values[np.isfinite(nc.degree_of_saturation.values)])
    b = np.sort(bufr.degree_of_saturation.values[np.isfinite(bufr.degree_of_saturation.values)])
    np.testing.assert_allclose(a, b, atol=0.051)


def check_h14(ds, rel):  # §10
    swi = ds.soil_wetness_index
    assert list(ds.layer.values) == [1, 2, 3, 4]
    assert [int(np.isfinite(swi.values[k]).sum()) for k in range(4)] == [243_786] * 4
    lo, hi = _range(swi)
    assert 0.0 <= lo and hi <= 1.0
    assert -89.83 <= float(ds.lat.min()) and float(ds.lat.max()) <= 89.83
    assert ds.time.values == np.datetime64("2014-05-15T00:00", "ns")


CGLS_SSM = {"20170601": 27_563, "20170602": 0, "20170603": 4_448}


def check_cgls(ds, rel):  # §11
    if "SSM1km" in rel:
        day = re.search(r"SSM1km_(\d{8})", rel).group(1)
        assert _count(ds.degree_of_saturation) == CGLS_SSM[day]  # 06-02: the real empty day
        if CGLS_SSM[day]:
            lo, hi = _range(ds.degree_of_saturation)
            assert 0.0 <= lo and hi <= 100.0
        flagged = int((ds.ssm_flag.values > 0).sum())
        assert flagged == (3_517 if day == "20170601" else flagged)
    else:
        raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
        swi5 = raw.soil_water_index.sel(characteristic_time=5)
        assert _count(swi5) == 155_881
        assert int((raw.swi_flag.sel(characteristic_time=5).values > 0).sum()) == 44_814
        lo, hi = _range(raw.soil_water_index)
        assert 0.0 <= lo and hi <= 100.0
    assert ds.sizes["lat"] == 448 and ds.sizes["lon"] == 448
    assert 41.0 < float(ds.lat.min()) and float(ds.lat.max()) < 45.0
    assert ds.lat.values[0] > ds.lat.values[-1]


def check_mod11a1(ds, rel):  # §12
    assert ds.sizes == {"y": 1200, "x": 1200}
    assert -10.0 <= float(ds.lat.min()) and float(ds.lat.max()) <= 0.0
    assert -40.7 <= float(ds.lon.min()) and float(ds.lon.max()) <= -29.9
    raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
    for when in ("day", "night"):
        lo, hi = _range(raw[f"land_surface_temperature_{when}"])
        assert 150.0 <= lo and hi <= 1310.7  # 7500 .. 65535 x 0.02 K
        assert 240.0 < float(np.nanmedian(raw[f"land_surface_temperature_{when}"])) < 330.0
    assert ds.time.values == np.datetime64("2019-11-01", "ns")


NDVI_MEANS = {"065": 0.39, "209": 0.75, "353": 0.50}


def check_mod13(ds, rel):  # §16
    doy = re.search(r"_(\d{3})\.tif$", rel).group(1)
    n = _count(ds.ndvi)
    assert 7_697 <= n <= 7_930 and ds.ndvi.size == 7_930
    lo, hi = _range(ds.ndvi)
    assert -0.2001 <= lo and hi <= 1.0
    if doy in NDVI_MEANS:
        assert abs(float(np.nanmean(ds.ndvi)) - NDVI_MEANS[doy]) < 0.01
    assert ds.ndvi.attrs["encoding"] == ("float32, already scaled" if doy in ("337", "353")
                                         else "int16 x 1e-4")
    assert 9.15 <= float(ds.lon.min()) and float(ds.lon.max()) <= 9.64


def check_mod09(ds, rel):  # §16
    raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
    lo, hi = _range(raw.ndvi)
    assert abs(lo - 0.02) < 0.01 and abs(hi - 0.93) < 0.01
    assert abs(float(np.nanmean(raw.ndvi)) - 0.75) < 0.01
    assert np.isfinite(raw.nsdsi.values).all()
    # UL / LR corners at 9.78 / 10.12 E (MANIFEST); on the sinusoidal grid the LL and UR
    # pixels reach 9.73 / 10.17 E
    np.testing.assert_allclose([float(ds.lon[0, 0]), float(ds.lon[-1, -1])], [9.78, 10.12],
                               atol=0.01)
    assert 45.84 <= float(ds.lat.min()) and float(ds.lat.max()) <= 46.16


def check_srtm(ds, rel):  # §15
    z = ds.elevation.values
    assert z.shape == (1201, 1201) and np.isfinite(z).all()  # no voids in this tile
    assert float(np.nanmax(z)) == 1024.0 and int((z > 0).sum()) == 77_150
    assert ds.lat.values[0] == 39.0 and ds.lon.values[0] == -28.0
    assert float(np.nanmax(ds.slope)) < 90.0


def check_gtopo(ds, rel):  # §15
    assert ds.elevation.shape == (360, 480)
    assert _range(ds.elevation) == (1.0, 817.0)
    assert "assumed" in ds.attrs["crs_assumed"]


def check_etopo20(ds, rel):  # §14
    assert ds.elevation.shape == (540, 1080)
    assert _range(ds.elevation) == pytest.approx((-9027.0, 6229.0), abs=0.5)
    assert -180.0 <= float(ds.lon.min()) and float(ds.lon.max()) <= 180.0
    assert abs(float((ds.elevation > 0).mean()) - 0.33) < 0.02


def check_gmt(ds, rel):  # §13, §14
    z = ds.elevation
    if "HI_topo" in rel:
        assert _range(z) == pytest.approx((-5784.0, 2804.0))
        box = _box(ds, "elevation")
        assert float(box.max()) == pytest.approx(2804.0) and int((box > 0).sum()) == 98
    elif "Kilauea" in rel:
        assert _range(z) == (0.0, 1505.0)
        assert abs(float(np.nanmean(z)) - 728.0) < 1.0
        assert int(np.isnan(z.values).sum()) == 20_656
        assert 19.24 <= float(ds.lat.min()) and float(ds.lat.max()) <= 19.47
        assert -155.35 <= float(ds.lon.min()) and float(ds.lon.max()) <= -155.09
    else:
        assert _range(z) == (-5035.0, 4086.0)
        assert ds.attrs["registration"] == "pixel"


def check_landmask(ds, rel):  # §21
    if rel.endswith(".npz"):
        assert int(ds.land_mask.sum()) == 13_193
        return
    box = _box(ds, "land_mask")
    land, sea = int(box.sum()), int((~box).sum())
    assert (land, sea) == ((11, 25) if "0.25" in rel else (89, 119))


GLCNMO_COUNTS = {11: 30_981, 20: 15_420, 19: 3, 5: 11_922}


def check_glcnmo(ds, rel):  # §22
    lc = ds.land_cover.values
    for cls, n in GLCNMO_COUNTS.items():
        assert int((lc == cls).sum()) == n
    assert ds.land_cover.shape == (384, 336)


def check_wflow(ds, rel):  # §23
    assert _range(ds.elevation) == pytest.approx((105.0, 2829.0), abs=1.0)
    lai = ds.leaf_area_index
    assert abs(float(lai.isel(time=1).mean()) - 0.38) < 0.01
    assert abs(float(lai.isel(time=6).mean()) - 2.86) < 0.01
    lo, hi = _range(ds.soil_porosity)
    assert 0.43 < lo and hi < 0.59


CHIRPS = {"04.30": (28.0, 4.55), "05.01": (27.2, 4.11), "05.02": (27.4, 2.46),
          "05.03": (41.9, 7.64), "05.04": (13.5, 0.33), "05.05": (8.6, 0.49),
          "05.06": (7.8, 0.10)}


def check_chirps(ds, rel):  # §17
    mx, mean = CHIRPS[re.search(r"2017\.(\d\d\.\d\d)", rel).group(1)]
    p = ds.precipitation_amount
    assert _count(p) == 18_126
    assert abs(float(p.max()) - mx) < 0.05 and abs(float(p.mean()) - mean) < 0.005


def check_radolan(ds, rel):  # §18
    p = ds.precipitation_amount
    assert p.shape == (24, 900, 900)
    assert abs(float(np.nanmax(p)) - 32.2) < 0.05
    all_hours = np.isfinite(p.values).all(axis=0)
    daily = p.values.sum(axis=0)[all_hours]
    assert int(all_hours.sum()) == 662_117
    assert abs(daily.max() - 70.6) < 0.05 and abs(daily.mean() - 3.6) < 0.05
    assert abs(float(ds.lon.values[-1, 0]) - 3.589) < 0.01  # LL corner (row -1 = south)


def check_nws(ds, rel):  # §19
    p = ds.precipitation_amount.values
    assert int(np.isnan(p).sum()) == 349_947
    assert int((p > 0).sum()) == 249_305 and int((p == 0).sum()) == 255_211
    assert abs(float(np.nanmax(p)) - 237.67) < 0.005
    assert ds.time.values == np.datetime64("2006-12-22T12:00", "ns")


ISMN = {  # station folder, variable: records, min, max (MANIFEST §2)
    ("IslandDairy", "p"): (15_319, 0.0, 39.9), ("IslandDairy", "sm"): (15_312, 0.069, 0.670),
    ("Kainaliu", "p"): (17_509, 0.0, 61.5), ("Kainaliu", "sm"): (17_509, 0.173, 0.568),
    ("Kukuihaele", "p"): (17_513, 0.0, 65.8), ("Kukuihaele", "sm"): (17_513, 0.146, 0.613),
    ("PuaAkala", "p"): (16_411, 0.0, 65.5), ("PuaAkala", "sm"): (16_359, 0.144, 0.714),
    ("SilverSword", "p"): (17_513, 0.0, 33.8), ("KemoleGulch", "sm"): (17_512, 0.084, 0.480),
    ("ManaHouse", "sm"): (14_199, 0.095, 0.434),
}


def check_ismn(ds, rel):  # §2
    if rel.endswith(".stm"):
        station = Path(rel).parent.name
        var = re.search(r"_(sm|p)_\d", Path(rel).name).group(1)
        raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
        name = "soil_moisture" if var == "sm" else "precipitation_amount"
        if "COSMOS" in rel:
            n, lo, hi = 14_832, 0.177, 0.633
        elif station == "SilverSword" and var == "sm":
            n, lo, hi = 8_196, 0.059, 0.328
        else:
            n, lo, hi = ISMN[(station, var)]
        assert raw.sizes["time"] == n
        # MANIFEST rounds soil moisture to 0.001 m3 m-3 and rain to 0.1 mm
        assert _range(raw[name]) == pytest.approx((lo, hi), abs=0.0006 if var == "sm" else 0.05)
        assert 19.5 <= float(ds.lat) <= 20.2
        if station == "PuaAkala" and var == "sm":
            only_c02 = ds.ismn_flag.values == 2  # bit of C02 alone (> 0.6 m3 m-3)
            assert int(only_c02.sum()) == 4_905  # the real out-of-range example
    elif rel.endswith(".csv"):
        assert "saturation" in ds.quantity.values
        assert ds.unit.values[list(ds.quantity.values).index("saturation")] == "m^3*m^-3"
    elif rel.endswith(".txt"):
        assert {"C01", "C02", "D04", "D05", "M", "G"} <= set(ds.flag.values)
    else:
        assert ds.attrs["geospatial_westBoundLongitude"] == pytest.approx(-161.149, abs=1e-3)
        assert ds.attrs["time_coverage_begin"].startswith("2017-01-01")


SM2RAIN = {"CER": (8759, 0.046, 0.897, 9.4, 303.0), "K10": (8759, 0.038, 0.962, 19.1, 574.2),
           "VOB": (8785, 0.040, 0.960, 46.5, 2477.1)}
SM2RAIN_PAR = {"CER": (27.395, 19.966, 15.697), "K10": (34.580, 1800.0, 65.575),
               "VOB": (81.557, 27.487, 4.571)}


def check_sm2rain(ds, rel):  # §1
    site = re.search(r"(CER|K10|VOB)", rel).group(1)
    if rel.endswith(".dat"):
        assert (float(ds.Z), float(ds.a), float(ds.b)) == pytest.approx(SM2RAIN_PAR[site],
                                                                         abs=1e-3)
        return
    n, lo, hi, pmax, ptot = SM2RAIN[site]
    assert ds.sizes["time"] == n
    assert _range(ds.degree_of_saturation) == pytest.approx((100 * lo, 100 * hi), abs=0.06)
    assert float(ds.precipitation_amount.max()) == pytest.approx(pmax, abs=0.05)
    assert float(ds.precipitation_amount.sum()) == pytest.approx(ptot, abs=0.1)
    assert (ds.time.values.astype("datetime64[m]").astype(int) % 60 == 0).all()


def check_ecmwf_grib(ds, rel):  # §20
    if "soil-surface" in rel:
        lo, hi = _range(ds.soil_moisture)
        assert 0.017 <= lo and hi == pytest.approx(0.406, abs=5e-4)
        # sea points are ~0, not missing: masked by soil type 0
        assert int(ds.quality_mask.sum()) == 25 and ds.soil_moisture.attrs["units"] == "m3 m-3"
        assert {"swvl2", "swvl3", "swvl4", "stl2"} <= set(ds.data_vars)
        assert ds.time.values == np.datetime64("2022-01-01T00:00", "ns")
    elif "tp_on" in rel:
        assert float(ds.precipitation_amount.max()) == pytest.approx(52.0, abs=0.5)
        assert float(ds.precipitation_amount_2.max()) == pytest.approx(161.1, abs=0.5)
        assert ds.precipitation_amount.shape == (37, 72)
        assert ds.precipitation_amount_2.shape == (46, 90)
    else:
        assert _range(ds.air_temperature) == pytest.approx((263.3, 292.1), abs=0.05)
        assert ds.air_temperature.shape == (121, 201)


CELLS = {  # folder: (main variable, valid range, extra check)
    "SMAP_L3_V9_AM_PM": ("soil_moisture", (0.02, 0.5)),
    "ERA5_LAND_V20190904": ("soil_moisture", (0.049, 0.520)),
    "ERA5_20190613": ("soil_moisture", (0.0, 1.0)),
    "GLDAS_NOAH025_3H_2_1": ("soil_moisture", (0.0, 1.0)),
    "C3S_SM_COMBINED_V202505": ("soil_moisture", (0.0, 1.0)),
    "SMOS_L3_v339_ASC": ("soil_moisture", (0.0, 1.0)),
    "SMOS_IC_105_ASC": ("soil_moisture", (0.0, 1.0)),
    "ASCAT_H119": ("degree_of_saturation", (0.0, 100.0)),
    "ASCAT_H113": ("degree_of_saturation", (0.0, 100.0)),
}


def check_cells(ds, rel):  # §3
    folder = rel.split("/")[1]
    name, (lo, hi) = CELLS[folder]
    raw = open_native(SHARED / rel, chunks=None, apply_quality=False)
    vmin, vmax = _range(raw[name])
    assert lo - 1e-3 <= vmin and vmax <= hi + 1e-3
    if folder == "C3S_SM_COMBINED_V202505":
        assert _count(raw[name]) == 14_439
    if folder == "SMOS_L3_v339_ASC":
        assert _count(raw[name]) == 19_504 and raw.sizes["location"] == 456
    if folder == "ASCAT_H119":
        assert raw.sizes["location"] == 33  # 22 of 55 slots are unused
    if folder == "ASCAT_H113":
        assert raw.sizes["location"] == (55 if "0165" in rel else 41)
    # the time-series product name (smflow.products), so daily_means & co. work on it
    assert ds.attrs["product"] == ds.attrs["timeseries_product"]
    # one name per product: the cell file's native_product is the catalogue entry's name
    assert ds.attrs["native_product"] == ds.attrs["timeseries_product"]
    assert ds.attrs["reader"].endswith("CellFileHandler")


def check_grid(ds, rel):  # §3
    if "WARP5" in rel:
        assert ds.sizes["gpi"] == 3_264_391
        assert set(np.unique(ds.land_flag.values)) <= {0, 1}
    assert (np.abs(ds.lat.values) <= 90).all() and (np.abs(ds.lon.values) <= 180).all()


CHECKS = [  # (pattern in the relative path, product, check)
    (r"^smap_l2/", "smap_l2", check_smap_l2),
    (r"^smos_l3_catds/", "smos_l3", check_smos_l3),
    (r"^gldas_noah21/", "gldas", check_gldas),
    (r"^esa_cci_sm_v05\.2/", "esa_cci_sm", check_cci),
    (r"^ascat_eumetsat_l2/nc_", "ascat_l2_ssm_nc", check_ascat_nc),
    (r"^ascat_eumetsat_l2/bufr_25km/", "ascat_l2_ssm_bufr", check_ascat_bufr_vs_nc),
    (r"^ascat_eumetsat_l2/bufr_pdu_25km/", "ascat_l2_ssm_bufr", check_ascat_bufr),
    (r"^hsaf_ascat_nrt_bufr/h(\d+)_", None, check_ascat_bufr),
    (r"^hsaf_h14_rzsm_grib/", "hsaf_h14", check_h14),
    (r"^cgls_1km/", None, check_cgls),
    (r"^modis_lst/", "modis_mod11a1", check_mod11a1),
    (r"^modis_ndvi/VI_16Days", "modis_mod13_ndvi_tif", check_mod13),
    (r"^modis_ndvi/MOD09A1", "modis_mod09a1", check_mod09),
    (r"^dem_srtm_gtopo/N38W028", "srtm_hgt", check_srtm),
    (r"^dem_srtm_gtopo/bonn_gtopo", "gtopo30_tif", check_gtopo),
    (r"^dem_etopo/etopo20", "etopo20_text", check_etopo20),
    (r"^dem_(hawaii|etopo)/.*\.nc$", "gmt_dem_grid", check_gmt),
    (r"^land_masks/landmask", "ecmwf_landmask", check_landmask),
    (r"^land_masks/globe", "globe_land_mask", check_landmask),
    (r"^landcover_glcnmo/", "glcnmo", check_glcnmo),
    (r"^wflow_piave_staticmaps/", "wflow_staticmaps", check_wflow),
    (r"^precip_chirps/", "chirps_daily", check_chirps),
    (r"^precip_radolan/", "radolan_rw", check_radolan),
    (r"^precip_nws_conus/", "nws_qpe_conus", check_nws),
    (r"^ismn_hawaii/", None, check_ismn),
    (r"^sm2rain_example/", None, check_sm2rain),
    (r"^ecmwf_grib/", "ecmwf_grib", check_ecmwf_grib),
    (r"^hawaii_timeseries/.*/grid\.nc$|TUW_WARP5", "grid_points", check_grid),
    (r"^hawaii_timeseries/", None, check_cells),
]


def _check_for(rel: str):
    for pattern, product, check in CHECKS:
        if re.search(pattern, rel):
            return product, check
    raise AssertionError(f"{rel}: no value check in this test; add one from the MANIFEST")


@needs_shared
@pytest.mark.parametrize("rel", [r for r in REAL if r not in DOCUMENTATION])
def test_real_file_is_read_and_matches_manifest(rel):
    product, check = _check_for(rel)
    facts = product_for_path(SHARED / rel)
    assert facts is not None, f"{rel}: no native reader recognises the name"
    if product is not None:
        assert facts.name == product
    ds = _open(rel)
    assert ds.attrs["source_file"] == Path(rel).name
    assert ds.attrs["licence"] and ds.attrs["attribution"]
    check(ds, rel)


@needs_shared
def test_every_real_file_has_a_reader_except_documentation():
    assert REAL, "../shared/data/real is empty"
    unread = [r for r in REAL if product_for_path(SHARED / r) is None]
    assert sorted(unread) == sorted(DOCUMENTATION)


@needs_shared
def test_docs_table_maps_every_real_file_to_its_reader():
    table = (REPO / "docs" / "readers.md").read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", table, flags=re.M))
    missing = [r for r in REAL if r not in rows]
    assert not missing, f"docs/readers.md lacks rows for {missing}"
    for rel, product in rows.items():
        if rel in DOCUMENTATION:
            assert product == "-"
            continue
        facts = product_for_path(SHARED / rel)
        assert facts is not None and facts.name == product, rel


@needs_shared
def test_chunks_give_dask_arrays_with_coordinates_in_memory():
    ds = open_native(SHARED / "smos_l3_catds" /
                     "SM_OPER_MIR_CLF31A_20150506T000000_20150506T235959_300_002_7.DBL.nc")
    assert ds.soil_moisture.chunks is not None
    assert ds.lat.chunks is None
