"""Product facts: registry, flag rules, and agreement with the real files' own attributes."""

from __future__ import annotations

import dataclasses

import netCDF4
import numpy as np
import pytest

from smflow.config import Settings
from smflow.products import MERGED_TRIPLET, PRODUCTS, FlagRule, get_product


def _real_dir():
    shared = Settings.load().shared_data_dir
    if shared is None or not (shared / "hawaii_timeseries").is_dir():
        pytest.skip("../shared/data/real/hawaii_timeseries is not available on this machine")
    return shared / "hawaii_timeseries"


def test_registry_names_and_triplet():
    # every catalogue entry with time-series cells (the pipeline's and the others')
    assert set(PRODUCTS) == {"smap", "era5_land", "gldas", "c3s", "ascat_h119", "era5", "smos_l3",
                             "smos_ic", "ascat_h113"}
    assert MERGED_TRIPLET == ("smap", "era5_land", "gldas")
    assert get_product("smap") is PRODUCTS["smap"]
    assert get_product(PRODUCTS["gldas"]) is PRODUCTS["gldas"]


def test_unknown_product_message_lists_known_names():
    with pytest.raises(KeyError, match="known time-series products are"):
        get_product("smos")


def test_products_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRODUCTS["smap"].variable = "sm"  # type: ignore[misc]


def test_redistributable_only_nasa_and_copernicus():
    assert {n for n, p in PRODUCTS.items() if p.redistributable} == {"smap", "era5_land", "gldas", "c3s",
                                                                   "era5"}
    for internal in ("ascat_h119", "ascat_h113", "smos_l3", "smos_ic"):
        assert not PRODUCTS[internal].redistributable, internal
    assert "Copernicus Climate Change Service information" in PRODUCTS["era5_land"].attribution
    assert "Copernicus Climate Change Service information" in PRODUCTS["c3s"].attribution
    assert "10.5067" in PRODUCTS["smap"].attribution and "10.5067" in PRODUCTS["gldas"].attribution


def test_output_names_and_units():
    for name in ("smap", "era5_land", "gldas", "c3s"):
        assert PRODUCTS[name].output_name == "soil_moisture"
        assert PRODUCTS[name].units == "m3 m-3"
    ascat = PRODUCTS["ascat_h119"]
    assert ascat.output_name == "degree_of_saturation" and ascat.units == "percent"
    assert PRODUCTS["gldas"].conversion_factor == pytest.approx(0.01)


def test_flag_rule_semantics():
    bits = FlagRule("f", "bits_clear", value=0b1)
    np.testing.assert_array_equal(bits.passes(np.array([0, 1, 8, 9, 13, 15], dtype=np.uint16)),
                                  [True, False, True, False, False, False])
    eq = FlagRule("f", "equals", value=0)
    np.testing.assert_array_equal(eq.passes(np.array([0, 1, 256])), [True, False, False])
    inset = FlagRule("f", "in_set", values=(0, 1))
    np.testing.assert_array_equal(inset.passes(np.array([0, 1, 2, 3])), [True, True, False, False])


def test_regrid_radius_covers_half_diagonal():
    for p in PRODUCTS.values():
        assert p.regrid_radius_m > p.native_resolution_m / np.sqrt(2)
        assert p.regrid_radius_m < p.native_resolution_m


def test_smap_facts_match_file_attributes():
    root = _real_dir()
    p = PRODUCTS["smap"]
    with netCDF4.Dataset(root / p.folder / "0165.nc") as ds:
        sm = ds[p.variable]
        assert float(sm.getncattr("_FillValue")) == p.fill_value
        assert (float(sm.valid_min), float(sm.valid_max)) == pytest.approx(p.valid_range)
        assert sm.units == p.source_units
        flag = ds["retrieval_qual_flag"]
        # Bit 0 is the "recommended quality" bit (set = NOT recommended, SPL3SMP spec).
        assert flag.flag_meanings.split()[0] == "Retrieval_recommended"
        assert flag.flag_masks.split(",")[0].strip() == "1s"
        assert ds.timeSeries_format == "IndexedRaggedTs"
        for name in p.keep_variables:
            assert name in ds.variables


def test_orthogonal_and_ascat_facts_match_file_attributes():
    root = _real_dir()
    with netCDF4.Dataset(root / PRODUCTS["gldas"].folder / "0165.nc") as ds:
        assert ds[PRODUCTS["gldas"].variable].units == "kg m-2"
        assert ds["SoilTMP0_10cm_inst"].units == "K"
    with netCDF4.Dataset(root / PRODUCTS["era5_land"].folder / "0165.nc") as ds:
        assert ds["swvl1"].units == PRODUCTS["era5_land"].source_units
    with netCDF4.Dataset(root / PRODUCTS["c3s"].folder / "0165.nc") as ds:
        assert ds["sm"].units == PRODUCTS["c3s"].source_units
        assert "flag" in ds.variables
    ascat = PRODUCTS["ascat_h119"]
    with netCDF4.Dataset(root / ascat.folder / "0165.nc") as ds:
        assert int(ds["sm"].getncattr("missing_value")) == int(ascat.fill_value)
        assert float(ds["sm"].scale_factor) == pytest.approx(0.01)
        assert ds["proc_flag"].flag_meanings.split()[0].startswith("soil_moisture_set_to_nan")
