"""Granule and product validation on real decoded granules and a synthetic product."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from quality_fixtures import GOOD_DAY, REAL_TIMESERIES, REPO_ROOT
from smflow.quality.suites import GRANULE_THRESHOLDS, INPUT_PRODUCTS
from smflow.quality.validate import ValidationOutcome, granule_table, validate_granule, validate_product

PRODUCTS = list(INPUT_PRODUCTS)


def test_importing_quality_does_not_import_great_expectations():
    code = (
        "import sys, smflow.quality, smflow.quality.validate, smflow.quality.quarantine, smflow.quality.suites, smflow.quality.schema; "
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- good granules ----------------------------------------------------------------------------


@pytest.mark.parametrize("product", PRODUCTS)
def test_real_granule_passes(granule, product):
    decoded = granule(product)
    outcome = validate_granule(product, decoded, GOOD_DAY)
    assert outcome.success, outcome.reason
    assert outcome.reason.endswith("expectations passed")
    assert outcome.failed_checks == ()
    assert outcome.suite_name == f"granule_{product}"
    stats = outcome.statistics
    assert stats["n_locations_in_domain"] >= GRANULE_THRESHOLDS[product].min_locations_in_domain
    assert stats["evaluated_expectations"] == stats["successful_expectations"] >= 10
    # the GX result is kept, JSON-serialisable, and says which expectations ran
    text = json.dumps(outcome.to_dict(), allow_nan=False)
    assert "expect_column_values_to_be_between" in text
    assert ValidationOutcome.from_dict(json.loads(text)).success


def test_granule_table_columns(granule):
    decoded = granule("era5_land")
    table = granule_table(decoded, "era5_land", day=GOOD_DAY)
    assert list(table.columns) == ["location_id", "lat", "lon", "time", "hours_from_day_start",
                                   "soil_moisture", "value_as_read", "quality_ok", "flags_pass", "in_domain",
                                   "grid_offset"]
    assert len(table) == decoded.sizes["location"] * decoded.sizes["time"]
    assert table["grid_offset"].max() < 1e-3  # on the ERA5-Land 0.1 deg grid
    assert (table["hours_from_day_start"] == 6.0).all()  # ERA5-Land daily sample at 06 UTC
    assert table["in_domain"].sum() == 84  # the Big Island's land cells


def test_smap_without_overpass_is_legitimate(granule):
    empty = granule("smap").isel(time=slice(0, 0))
    outcome = validate_granule("smap", empty, GOOD_DAY)
    assert outcome.success, outcome.reason
    assert outcome.statistics["n_observations"] == 0


# -- failing granules: each names the failed expectation --------------------------------------


def test_out_of_range_values_fail(granule):
    decoded = granule("era5_land")
    decoded["soil_moisture"] = decoded["soil_moisture"] * 100  # volumetric % instead of m3 m-3
    outcome = validate_granule("era5_land", decoded, GOOD_DAY)
    assert not outcome.success
    assert outcome.failed_checks == ("physical_range",)
    n = decoded["soil_moisture"].size
    assert f"soil_moisture: {n} of {n} values outside [0, 0.766] m3 m-3 [physical_range]" in outcome.reason


def test_gldas_in_kg_m2_fails_range_and_schema(granule):
    decoded = granule("gldas")
    decoded["soil_moisture"] = decoded["soil_moisture"] * 100
    decoded["soil_moisture"].attrs["units"] = "kg m-2"
    outcome = validate_granule("gldas", decoded, GOOD_DAY)
    assert outcome.failed_checks == ("schema", "physical_range")
    assert "schema: soil_moisture: units 'kg m-2'" in outcome.reason


def test_timestamp_outside_the_day_fails(granule):
    decoded = granule("gldas")
    times = decoded["time"].values.copy()
    times[-1] = times[-1] + np.timedelta64(3, "h")  # 21:00 -> 00:00 of the next day
    decoded = decoded.assign_coords(time=times)
    outcome = validate_granule("gldas", decoded, GOOD_DAY)
    assert outcome.failed_checks == ("timestamps",)
    n_loc = decoded.sizes["location"]
    assert (f"hours_from_day_start: {n_loc} of {decoded['soil_moisture'].size} timestamps outside the day "
            "[00:00, 24:00) UTC [timestamps]") in outcome.reason


def test_granule_of_the_wrong_day_fails(granule):
    outcome = validate_granule("era5_land", granule("era5_land"), "2017-06-02")
    assert outcome.failed_checks == ("timestamps",)


def test_coordinates_outside_the_domain_fail(granule):
    decoded = granule("era5_land")
    decoded = decoded.assign_coords(lat=decoded["lat"] + 10.0)  # e.g. a wrong cell / grid offset
    outcome = validate_granule("era5_land", decoded, GOOD_DAY)
    assert outcome.failed_checks == ("domain_coverage",)
    assert "location_id: 0 locations inside the domain" in outcome.reason
    assert "(need at least 84)" in outcome.reason
    assert "in_domain: 136 of 136 observations outside the domain" in outcome.reason


def test_invalid_coordinates_fail(granule):
    decoded = granule("c3s")
    lon = decoded["lon"].values.copy()
    lon[:3] = lon[:3] + 360.0  # 0..360 convention leaking through
    outcome = validate_granule("c3s", decoded.assign_coords(lon=("location", lon)), GOOD_DAY)
    assert "domain_coverage" in outcome.failed_checks
    assert "lon: 3 of 14 longitudes outside [-180, 180] degrees_east" in outcome.reason


def test_flag_inconsistency_fails(granule):
    decoded = granule("c3s")
    mask = decoded["quality_mask"].values.copy()
    valid = np.argwhere(np.isfinite(decoded["soil_moisture"].values))
    assert len(valid) >= 2
    i, j = valid[0]
    mask[i, j] = False  # mask says rejected, value still there
    decoded["quality_mask"] = (("location", "time"), mask)
    outcome = validate_granule("c3s", decoded, GOOD_DAY)
    assert outcome.failed_checks == ("flag_consistency",)
    assert "non-null values have quality_ok false" in outcome.reason
    assert "values rejected by the quality flags are not null" in outcome.reason


def test_value_with_rejecting_raw_flag_fails(granule):
    decoded = granule("c3s")
    flag = decoded["flag"].values.copy()
    valid = np.argwhere(decoded["quality_mask"].values)
    i, j = valid[0]
    flag[i, j] = 8  # "> physical bound" but the value was kept and marked good
    decoded["flag"] = (decoded["flag"].dims, flag, decoded["flag"].attrs)
    outcome = validate_granule("c3s", decoded, GOOD_DAY)
    assert outcome.failed_checks == ("flag_consistency",)
    assert "flags_pass: 1 of" in outcome.reason


def test_too_many_fills_fail(granule):
    decoded = granule("era5_land")
    sm = decoded["soil_moisture"].values.copy()
    sm[::3, :] = np.nan  # a third of the land points lost
    decoded["soil_moisture"] = (("location", "time"), sm, decoded["soil_moisture"].attrs)
    decoded["quality_mask"] = (("location", "time"), np.isfinite(sm))
    outcome = validate_granule("era5_land", decoded, GOOD_DAY)
    assert outcome.failed_checks == ("fill_fraction",)
    n_nan = int(np.isnan(sm).sum())
    assert f"soil_moisture: {n_nan} of {sm.size} values missing (allowed fill fraction 0)" in outcome.reason


def test_several_failures_are_all_listed(granule):
    decoded = granule("gldas")
    decoded["soil_moisture"] = decoded["soil_moisture"] * 100
    decoded = decoded.assign_coords(lon=decoded["lon"] - 20.0)
    outcome = validate_granule("gldas", decoded, "2017-06-03")
    assert outcome.failed_checks == ("physical_range", "domain_coverage", "timestamps")
    assert outcome.reason.startswith("gldas granule 2017-06-03: ")
    assert outcome.reason.count("[domain_coverage]") == 2


def test_malformed_granule_fails_on_schema(granule):
    decoded = granule("smap").drop_vars("soil_moisture")
    outcome = validate_granule("smap", decoded, GOOD_DAY)
    assert not outcome.success
    assert outcome.failed_checks == ("schema",)
    assert "soil_moisture: missing variable" in outcome.reason
    assert outcome.result == {}


def test_wrong_dtypes_fail_on_schema(granule):
    decoded = granule("era5_land")
    decoded["quality_mask"] = decoded["quality_mask"].astype("int8")
    decoded.attrs["product"] = "gldas"
    outcome = validate_granule("era5_land", decoded, GOOD_DAY)
    assert outcome.failed_checks == ("schema",)
    assert "quality_mask: dtype int8, expected bool" in outcome.reason
    assert "attribute product='gldas', expected 'era5_land'" in outcome.reason


def test_unknown_product_is_a_usage_error(granule):
    with pytest.raises(ValueError, match="known|expected one of"):
        validate_granule("ascat", granule("c3s"), GOOD_DAY)


# -- product ----------------------------------------------------------------------------------


def test_valid_product_passes(product):
    outcome = validate_product(product(), GOOD_DAY)
    assert outcome.success, outcome.reason
    assert outcome.suite_name == "daily_product"
    assert outcome.statistics["n_land_cells"] == 84
    assert outcome.statistics["land_coverage"] == 1.0
    json.dumps(outcome.to_dict(), allow_nan=False)


def test_product_with_domain_land_mask(product):
    from smflow.domain import load_domain

    ds = product()
    outcome = validate_product(ds, GOOD_DAY, land_mask=load_domain().land_mask)
    assert outcome.success, outcome.reason
    assert outcome.statistics["land_mask_source"] == "argument"


def test_negative_rainfall_fails(product):
    ds = product()
    pr = ds["precipitation_amount"].values
    land = np.argwhere(np.isfinite(pr[0]))
    pr[0, land[0][0], land[0][1]] = -3.0
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.failed_checks == ("precipitation",)
    assert "precipitation_amount: 1 of 84 values outside [0, 500] kg m-2 [precipitation]" in outcome.reason


def test_negative_error_variance_fails(product):
    ds = product()
    ev = ds["error_variance"].values
    land = np.argwhere(np.isfinite(ev[0, 1]))
    ev[0, 1, land[0][0], land[0][1]] = -1e-4  # era5_land
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.failed_checks == ("error_variance",)
    assert "error_variance__era5_land: 1 of 84 negative error variances (m6 m-6) [error_variance]" in outcome.reason


def test_infinite_snr_where_resolved_fails(product):
    ds = product()
    snr = ds["snr_db"].values
    land = np.argwhere(ds["tc_resolved"].values[0] == 1)
    snr[0, 0, land[0][0], land[0][1]] = np.inf
    snr[0, 2, land[1][0], land[1][1]] = np.nan
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.failed_checks == ("snr",)
    assert "snr_db__smap: 1 of 84 TC-resolved SNRs not finite" in outcome.reason
    assert "snr_db__gldas: 1 of 84 TC-resolved cells without an SNR" in outcome.reason


def test_inverted_or_impossible_confidence_intervals_fail(product):
    ds = product()
    land = np.argwhere(ds["tc_resolved"].values[0] == 1)
    lo, hi = ds["snr_db_lower"].values, ds["snr_db_upper"].values
    lo[0, 1, land[0][0], land[0][1]], hi[0, 1, land[0][0], land[0][1]] = 5.0, 4.0  # era5_land: upper < lower
    ds["correlation_with_truth_upper"].values[0, 0, land[1][0], land[1][1]] = 1.2  # smap: R > 1
    ds["error_variance_lower"].values[0, 2, land[2][0], land[2][1]] = -1e-5  # gldas
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.failed_checks == ("confidence_interval",)
    assert "snr_db_upper__era5_land vs snr_db_lower__era5_land" in outcome.reason
    assert "correlation_with_truth_upper__smap: 1 of 84 upper bounds of R outside [-1, 1]" in outcome.reason
    assert "error_variance_lower__gldas: 1 of 84 negative lower bounds" in outcome.reason


def test_missing_rainfall_over_land_and_low_coverage_fail(product):
    ds = product()
    sm = ds["soil_moisture"].values
    land = np.argwhere(np.isfinite(sm[0]))
    rain, status = ds["precipitation_amount"].values, ds["precipitation_status"].values
    for i, j in land[:50]:
        sm[0, i, j] = rain[0, i, j] = np.nan
        status[0, i, j] = 1  # no_soil_moisture
    i, j = land[60]
    rain[0, i, j] = np.nan  # status still 'computed'
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.failed_checks == ("precipitation", "land_coverage")
    assert "precipitation_amount: 1 of 34 land cells whose precipitation_status is 'computed' but have no precipitation" in outcome.reason
    assert "soil_moisture: 50 of 84 land cells without soil moisture" in outcome.reason


def test_rainfall_missing_for_a_stated_reason_passes_and_present_against_it_fails(product):
    """The day after a day without soil moisture has no SM2RAIN rainfall (it needs D-1): that is
    stated by precipitation_status and passes; rainfall where the status says it cannot exist fails."""
    ds = product()
    land = np.argwhere(np.isfinite(ds["soil_moisture"].values[0]))
    rain, status = ds["precipitation_amount"].values, ds["precipitation_status"].values
    for k, (i, j) in enumerate(land[:10]):
        rain[0, i, j] = np.nan
        status[0, i, j] = 2 if k % 2 else 3  # no soil moisture the day before / frozen
    assert validate_product(ds, GOOD_DAY).success

    i, j = land[20]
    status[0, i, j] = 2  # but the rainfall is there
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.failed_checks == ("precipitation",)
    assert "1 of 11 land cells with precipitation although precipitation_status says it cannot be computed" in outcome.reason


def test_product_of_another_day_fails(product):
    outcome = validate_product(product("2017-06-02"), GOOD_DAY)
    assert outcome.failed_checks == ("timestamps",)
    assert f"cells whose time is not the day {GOOD_DAY}" in outcome.reason


def test_product_schema_problems_fail(product):
    ds = product()
    del ds["precipitation_amount"].attrs["units"]
    del ds.attrs["missing_inputs"]
    ds["soil_moisture"].encoding.pop("_FillValue")
    assert validate_product(ds, GOOD_DAY).success  # recorded as warnings only
    outcome = validate_product(ds, GOOD_DAY, cf_required=True)
    assert outcome.failed_checks == ("schema",)
    for text in ("precipitation_amount: missing CF attribute units",
                 "missing lineage attribute 'missing_inputs'",
                 "soil_moisture: float variable without _FillValue"):
        assert text in outcome.reason


def test_product_missing_variable_fails_but_runs_the_rest(product):
    ds = product().drop_vars("snr_db")
    outcome = validate_product(ds, GOOD_DAY)
    assert "schema" in outcome.failed_checks and "snr" in outcome.failed_checks
    assert "snr_db__smap: could not be checked" in outcome.reason
    assert outcome.result["statistics"]["evaluated_expectations"] > 10


# -- integration with the rest of the system --------------------------------------------------


def test_domain_bounds_from_the_domain_grid(granule):
    from smflow.domain import load_domain

    grid = load_domain()
    decoded = granule("gldas")
    for bounds in (grid.bounds, grid):  # (lon_min, lat_min, lon_max, lat_max) or the grid itself
        outcome = validate_granule("gldas", decoded, GOOD_DAY, domain_bounds=bounds)
        assert outcome.success, outcome.reason
        assert outcome.statistics["domain_bounds"] == {
            "lat_min": 18.95, "lat_max": 20.25, "lon_min": -156.05, "lon_max": -155.05}
    # a box elsewhere (Kauai) leaves no GLDAS point of the Big Island inside
    outcome = validate_granule("gldas", decoded, GOOD_DAY, domain_bounds=(-159.8, 21.8, -159.2, 22.3))
    assert "domain_coverage" in outcome.failed_checks


def test_whole_cell_file_is_not_a_granule_of_one_day():
    """A landing object holding the whole 2017-2018 series (e.g. a mis-sliced upload)."""
    try:
        from smflow.readers.granule import read_granule
    except ImportError:
        pytest.skip("smflow.readers.granule not available")
    decoded = read_granule("era5_land", REAL_TIMESERIES / "ERA5_LAND_V20190904" / "0165.nc")
    outcome = validate_granule("era5_land", decoded, GOOD_DAY)
    assert "timestamps" in outcome.failed_checks
    n_outside = decoded["soil_moisture"].size - decoded.sizes["location"]  # all but 2017-06-01 06:00
    assert f"hours_from_day_start: {n_outside} of {decoded['soil_moisture'].size} timestamps" in outcome.reason
    # cell 0165 alone holds 71 of the 84 Big-Island land points
    assert "location_id: 71 locations inside the domain" in outcome.reason


def test_staged_product_round_trip_passes(product, tmp_path):
    """The daily task stages the product as netCDF with its lineage in ``provenance_json``."""
    import xarray as xr

    ds = product()
    provenance = {key: ds.attrs.pop(key) for key in ("input_granules", "missing_inputs", "tc_merging_model", "sm2rain_model")}
    provenance["missing_inputs"] = ["smap: quarantined (soil_moisture: 3 of 25 values outside ...)"]
    ds.attrs["provenance_json"] = json.dumps(provenance)
    ds["tc_resolved"] = ds["tc_resolved"].astype(bool)
    path = tmp_path / "staged.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    staged = xr.load_dataset(path, engine="h5netcdf")
    outcome = validate_product(staged, GOOD_DAY)
    assert outcome.success, outcome.reason
    assert outcome.statistics["missing_inputs"] == provenance["missing_inputs"]
    assert outcome.statistics["tc_merging_model"] == "models:/tc_merging/1"


def test_bare_product_passes_with_cf_warnings_unless_cf_is_required(product):
    ds = product()
    for name in ds.variables:
        ds[name].attrs = {}
    ds.attrs = {}
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.success, outcome.reason
    assert "soil_moisture: missing CF attribute units" in outcome.statistics["schema_warnings"]
    strict = validate_product(ds, GOOD_DAY, cf_required=True)
    assert strict.failed_checks == ("schema",)
    assert "missing lineage attribute 'missing_inputs'" in strict.reason


def test_wrong_units_fail_even_without_cf_requirement(product):
    ds = product()
    ds["soil_moisture"].attrs["units"] = "%"
    outcome = validate_product(ds, GOOD_DAY)
    assert outcome.failed_checks == ("schema",)
    assert "soil_moisture: units '%'" in outcome.reason
