"""ISMN reader, daily gauges and daily in-situ soil moisture (read from ../shared only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smflow.config import REPO_ROOT, Settings
from smflow.insitu import find_stm_files, load_gauges, load_insitu_soil_moisture, read_stm


@pytest.fixture(scope="module")
def shared():
    shared = Settings.load().shared_data_dir
    if shared is None or not (shared / "ismn_hawaii").is_dir():
        pytest.skip("ISMN data (../shared/data/real/ismn_hawaii) is not available; it is "
                    "internal-only and never bundled")
    return shared


def test_ismn_files_are_never_in_the_repo():
    for folder in ("data", "config", "smflow", "tests"):
        assert not list((REPO_ROOT / folder).rglob("*.stm")), folder


def test_find_files(shared):
    p = find_stm_files(shared, "p")
    sm = find_stm_files(shared, "sm")
    assert len(p) == 5 and len(sm) == 8
    assert {f.network for f in sm} == {"SCAN", "COSMOS"}
    cosmos = next(f for f in sm if f.network == "COSMOS")
    assert (cosmos.depth_from, cosmos.depth_to) == (0.0, 0.17)


def test_read_stm_island_dairy_precipitation(shared):
    path = next(f.path for f in find_stm_files(shared, "p") if f.station_folder == "IslandDairy")
    records, station = read_stm(path)
    assert len(records) == 15319
    assert records.index[0] == pd.Timestamp("2017-01-01 00:00")
    assert records.index[-1] == pd.Timestamp("2018-11-29 09:00")
    assert (records["ismn_flag"] == "G").all()
    assert records["value"].max() == pytest.approx(39.9, abs=0.05)
    assert records["value"].sum() == pytest.approx(2351, abs=1)
    assert station == {"network": "SCAN", "station": "Island_Dairy", "lat": 20.0, "lon": -155.283,
                       "elevation": 353.57, "depth_from": 0.0, "depth_to": 0.0}


def test_read_stm_flags(shared):
    path = next(f.path for f in find_stm_files(shared, "sm") if f.station_folder == "PuaAkala")
    records, _ = read_stm(path)
    assert len(records) == 16359
    assert (records["ismn_flag"] == "C02").sum() == 4905  # > 0.6 m3 m-3
    assert (records.loc[records["ismn_flag"] == "C02", "value"] > 0.6).all()


def test_load_gauges(shared):
    g = load_gauges(shared, "2017-01-01", "2018-12-31")
    assert g.sizes == {"station": 5, "time": 730}
    assert list(g["name"].values) == ["Island_Dairy", "Kainaliu", "Kukuihaele", "Pua_Akala", "Silver_Sword"]
    p = g["precipitation_amount"]
    assert p.attrs["units"] == "kg m-2" and p.attrs["standard_name"] == "precipitation_amount"
    hours = g["hours_present"].values
    np.testing.assert_array_equal(np.isfinite(p.values), hours >= 20)
    assert np.nanmin(p.values) >= 0
    # Kukuihaele has (almost) every hour: the daily sums add up to the MANIFEST total
    assert float(p.sel(station="SCAN_Kukuihaele").sum()) == pytest.approx(5622, abs=2)
    # Island_Dairy stops 2018-11-29: later days are missing, not zero
    assert np.isnan(p.sel(station="SCAN_Island_Dairy", time=slice("2018-11-30", None))).all()
    assert float(g["lat"].sel(station="SCAN_Kainaliu")) == pytest.approx(19.533)


def test_daily_gauge_sum_by_hand(shared):
    path = next(f.path for f in find_stm_files(shared, "p") if f.station_folder == "Kainaliu")
    records, _ = read_stm(path)
    day = records.loc["2017-02-10", "value"]
    g = load_gauges(shared, "2017-02-10", "2017-02-10")
    assert len(day) >= 20
    assert float(g["precipitation_amount"].sel(station="SCAN_Kainaliu").item()) == pytest.approx(day.sum())


def test_load_insitu_soil_moisture(shared):
    sm = load_insitu_soil_moisture(shared, "2017-01-01", "2018-12-31")
    assert sm.sizes == {"station": 8, "time": 730}
    assert "COSMOS_Silver_Sword" in sm["station"].values and "SCAN_Silver_Sword" in sm["station"].values
    assert sm["soil_moisture"].attrs["units"] == "m3 m-3"
    assert float(sm["depth"].sel(station="COSMOS_Silver_Sword")) == pytest.approx(0.085)
    assert float(sm["depth"].sel(station="SCAN_Kainaliu")) == pytest.approx(0.0508)
    v = sm["soil_moisture"]
    # only flag G: Pua_Akala's C02 values (> 0.6) are excluded
    assert float(v.sel(station="SCAN_Pua_Akala").max()) <= 0.6
    # SCAN Silver_Sword soil moisture starts 2018-01-24
    ss = v.sel(station="SCAN_Silver_Sword")
    assert np.isnan(ss.sel(time=slice(None, "2018-01-23"))).all()
    assert np.isfinite(ss.sel(time="2018-01-25")).item()
    assert 0.05 < float(v.min()) and float(v.max()) <= 0.6
