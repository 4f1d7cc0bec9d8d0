"""CF-1.8 netCDF files of the daily product: content, metadata, determinism."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import synthetic
from smflow.publish.cf import FILL_VALUE, build_product_datasets, to_netcdf_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(product, day, provenance):
    """name -> netCDF bytes of the three files."""
    datasets = build_product_datasets(product, day, provenance=provenance)
    return {name: to_netcdf_bytes(ds) for name, ds in datasets.items()}


def _open(body: bytes, engine: str = "netcdf4") -> xr.Dataset:
    if engine == "netcdf4":
        import netCDF4

        nc = netCDF4.Dataset("inmemory.nc", memory=body)
        return xr.load_dataset(xr.backends.NetCDF4DataStore(nc))
    return xr.load_dataset(io.BytesIO(body), engine=engine)


def _raw_attrs(body: bytes) -> dict[str, dict]:
    """Attributes per variable exactly as stored (``_FillValue`` included)."""
    import netCDF4

    with netCDF4.Dataset("inmemory.nc", memory=body) as nc:
        return {name: {a: var.getncattr(a) for a in var.ncattrs()} for name, var in nc.variables.items()}


def test_three_files_with_the_contract_variables(files):
    assert set(files) == {"merged-sm", "sm2rain-precip", "tc-diagnostics"}
    expected = {
        "merged-sm": {"soil_moisture", "soil_moisture_error_variance", "merge_method",
                      "source_soil_moisture"},
        "sm2rain-precip": {"precipitation_amount", "frozen_soil"},
        "tc-diagnostics": {"error_variance", "correlation_with_truth", "snr_db", "tc_resolved",
                           "tc_sample_size", "tc_block_length",
                           "error_variance_lower", "error_variance_upper", "correlation_with_truth_lower",
                           "correlation_with_truth_upper", "snr_db_lower", "snr_db_upper"},
    }
    for name, body in files.items():
        ds = _open(body)
        data = {v for v in ds.data_vars}
        assert expected[name] <= data, (name, data)
        assert ds.sizes["time"] == 1 and ds.sizes["lat"] == 13 and ds.sizes["lon"] == 10


@pytest.mark.parametrize(
    ("name", "variable", "standard_name", "units"),
    [
        ("merged-sm", "soil_moisture", "volume_fraction_of_condensed_water_in_soil", "m3 m-3"),
        ("merged-sm", "soil_moisture_error_variance", None, "m6 m-6"),
        ("merged-sm", "source_soil_moisture", "volume_fraction_of_condensed_water_in_soil", "m3 m-3"),
        ("sm2rain-precip", "precipitation_amount", "precipitation_amount", "kg m-2"),
        ("tc-diagnostics", "error_variance", None, "m6 m-6"),
        ("tc-diagnostics", "correlation_with_truth", None, "1"),
        ("tc-diagnostics", "snr_db", None, "1"),  # decibels; UDUNITS has no dB
        ("tc-diagnostics", "snr_db_lower", None, "1"),
        ("tc-diagnostics", "error_variance_upper", None, "m6 m-6"),
        ("tc-diagnostics", "correlation_with_truth_lower", None, "1"),
        ("tc-diagnostics", "tc_block_length", None, "day"),
        ("tc-diagnostics", "tc_sample_size",
         "volume_fraction_of_condensed_water_in_soil number_of_observations", "1"),
    ],
)
def test_variables_carry_cf_attributes(files, name, variable, standard_name, units):
    attrs = _raw_attrs(files[name])[variable]
    assert attrs["units"] == units
    assert attrs.get("standard_name") == standard_name
    assert attrs["long_name"]
    assert attrs["grid_mapping"] == "crs"
    assert "_FillValue" in attrs
    if variable not in ("tc_sample_size", "tc_block_length"):
        assert attrs["_FillValue"] == FILL_VALUE and attrs["_FillValue"].dtype == np.float32


def test_storage_is_float32_with_zlib(files):
    import netCDF4

    with netCDF4.Dataset("inmemory.nc", memory=files["merged-sm"]) as nc:
        sm = nc["soil_moisture"]
        assert sm.dtype == np.float32
        assert sm.filters()["zlib"] and sm.filters()["shuffle"]
        assert nc.data_model == "NETCDF4"


def test_precipitation_is_a_daily_sum_with_time_bounds(files, day):
    ds = _open(files["sm2rain-precip"])
    rain = ds["precipitation_amount"]
    assert rain.attrs["cell_methods"] == "time: sum"
    assert ds["time"].attrs["bounds"] == "time_bnds"
    start, end = ds["time_bnds"].values[0]
    assert str(start)[:10] == day.isoformat()
    assert (end - start) == np.timedelta64(1, "D")
    assert ds["time"].values[0] == start


def test_coordinates_bounds_and_grid_mapping(files):
    for name, body in files.items():
        ds = _open(body)
        raw = _raw_attrs(body)
        assert raw["lat"]["standard_name"] == "latitude" and raw["lat"]["units"] == "degrees_north"
        assert raw["lon"]["standard_name"] == "longitude" and raw["lon"]["units"] == "degrees_east"
        assert "_FillValue" not in raw["lat"] and "_FillValue" not in raw["lon"]
        np.testing.assert_allclose(ds["lat"].values, synthetic.LAT)
        np.testing.assert_allclose(ds["lon"].values, synthetic.LON)
        np.testing.assert_allclose(ds["lat_bnds"].values[0], [18.95, 19.05])
        np.testing.assert_allclose(ds["lon_bnds"].values[-1], [-155.15, -155.05])
        crs = raw["crs"]
        assert crs["grid_mapping_name"] == "latitude_longitude"
        assert crs["semi_major_axis"] == 6378137.0
        assert crs["inverse_flattening"] == pytest.approx(298.257223563)
        assert 'ID["EPSG",4326]' in crs["crs_wkt"]
        # bounds and grid mapping are not data with coordinates of their own
        assert "coordinates" not in raw["lat_bnds"] and "coordinates" not in raw["crs"]


def test_global_attributes_carry_lineage_without_wall_clock(files, provenance, day):
    for name, body in files.items():
        attrs = _open(body).attrs
        assert attrs["Conventions"] == "CF-1.8, ACDD-1.3"
        for key in ("title", "summary", "institution", "source", "references", "comment",
                    "license"):
            assert attrs[key], (name, key)
        assert attrs["history"] == f"{day.isoformat()}: smflow 0.1.0 daily_soil_moisture ({name})"
        assert "Remote Sensing 14, 1744" in attrs["references"]
        assert "10.3390/rs14215355" in attrs["references"]
        assert "10.1002/grl.50173" in attrs["references"]
        assert attrs["input_granules"].splitlines() == provenance["input_granules"]
        assert attrs["missing_inputs"] == ""
        assert attrs["tc_merging_model"] == "models:/smflow-tc-merging/3"
        assert attrs["sm2rain_model"] == "models:/smflow-sm2rain/2"
        assert attrs["sm2rain_parameters_source"].startswith("data/derived/sm2rain/")
        assert attrs["code_version"] == "0.1.0"
        assert attrs["tc_window_days"] == 90
        assert attrs["product_date"] == day.isoformat()
        assert attrs["time_coverage_start"] == "2024-01-02T00:00:00Z"
        assert attrs["time_coverage_end"] == "2024-01-03T00:00:00Z"
        assert attrs["geospatial_lat_min"] == pytest.approx(18.95)
        assert attrs["geospatial_lon_max"] == pytest.approx(-155.05)


def test_values_survive_the_round_trip_with_nan_off_land(files, product):
    land = synthetic.land_mask()
    merged = _open(files["merged-sm"])
    sm = merged["soil_moisture"].values[0]
    assert np.isnan(sm[~land]).all() and np.isfinite(sm[land]).all()
    assert 0.1 <= np.nanmin(sm) and np.nanmax(sm) <= 0.5
    np.testing.assert_allclose(sm, product["soil_moisture"].values[0].astype("f4"))
    parents = merged["source_soil_moisture"]
    assert list(parents["source"].values) == ["smap", "era5_land", "gldas"]
    assert np.nanmax(parents.values) <= 0.6

    rain = _open(files["sm2rain-precip"])["precipitation_amount"].values[0]
    assert np.isnan(rain[~land]).all()
    assert 0.0 <= np.nanmin(rain) and np.nanmax(rain) <= 50.0

    tc = _open(files["tc-diagnostics"])
    r = tc["correlation_with_truth"].values
    assert -1 <= np.nanmin(r) and np.nanmax(r) <= 1
    assert np.nanmin(tc["error_variance"].values) > 0
    np.testing.assert_allclose(tc["snr_db"].values, product["snr_db"].values.astype("f4"),
                               rtol=1e-6)


def test_flag_variables_describe_their_values(files, product):
    raw = _raw_attrs(files["merged-sm"])["merge_method"]
    assert raw["flag_values"].tolist() == [0, 1, 2, 3, 4, 5]
    assert raw["flag_meanings"] == ("tc_least_squares arithmetic_mean partial no_data machine_learning "
                                    "machine_learning_partial")
    assert raw["flag_values"].dtype == np.int8
    with __import__("netCDF4").Dataset("inmemory.nc", memory=files["merged-sm"]) as nc:
        stored = nc["merge_method"][:].filled(-1)[0]
    np.testing.assert_array_equal(stored, product["merge_method"].values[0])

    raw = _raw_attrs(files["tc-diagnostics"])["tc_resolved"]
    assert raw["flag_values"].tolist() == [0, 1]
    assert raw["flag_meanings"] == "tc_not_resolved tc_resolved"


def test_files_read_with_h5netcdf_too(files):
    """The DAG's tests and many users open products with h5netcdf."""
    ds = _open(files["tc-diagnostics"], engine="h5netcdf")
    assert list(ds["source"].values) == ["smap", "era5_land", "gldas"]
    assert ds["snr_db"].attrs["units"] == "1" and "decibels" in ds["snr_db"].attrs["long_name"]


def test_tc_diagnostics_without_time_dimension_are_accepted(product, day, provenance):
    for name in ("error_variance", "correlation_with_truth", "snr_db", "tc_resolved",
                 "tc_sample_size"):
        product[name] = product[name].isel(time=0, drop=True)
    datasets = build_product_datasets(product, day, provenance=provenance)
    assert datasets["tc-diagnostics"]["snr_db"].dims == ("time", "source", "lat", "lon")


def test_sources_are_put_in_the_canonical_order(product, day, provenance):
    shuffled = product.isel(source=[2, 0, 1])
    a = to_netcdf_bytes(build_product_datasets(product, day, provenance=provenance)["tc-diagnostics"])
    b = to_netcdf_bytes(build_product_datasets(shuffled, day, provenance=provenance)["tc-diagnostics"])
    assert a == b


def test_same_dataset_gives_the_same_bytes(product, day, provenance):
    first = build_product_datasets(product, day, provenance=provenance)
    second = build_product_datasets(product.copy(deep=True), day, provenance=dict(provenance))
    for name in first:
        assert to_netcdf_bytes(first[name]) == to_netcdf_bytes(second[name]), name


def test_bytes_are_identical_across_processes(files):
    """Two fresh interpreters (different HDF5 library state, later clock) write the same bytes."""
    script = textwrap.dedent(
        f"""
        import datetime as dt, hashlib, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import synthetic
        from smflow.publish.cf import build_product_datasets, to_netcdf_bytes
        day = dt.date(2024, 1, 2)
        datasets = build_product_datasets(synthetic.daily_product(day), day,
                                          provenance=synthetic.provenance(day))
        for name in sorted(datasets):
            print(name, hashlib.sha256(to_netcdf_bytes(datasets[name])).hexdigest())
        """
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       cwd=REPO).stdout
        for _ in range(2)
    ]
    expected = "".join(
        f"{name} {hashlib.sha256(files[name]).hexdigest()}\n" for name in sorted(files)
    )
    assert runs[0] == runs[1] == expected


def test_wrong_units_are_refused(product, day, provenance):
    product["soil_moisture"].attrs["units"] = "%"
    with pytest.raises(ValueError, match="convert it before publishing"):
        build_product_datasets(product, day, provenance=provenance)


def test_missing_variable_is_refused(product, day, provenance):
    with pytest.raises(ValueError, match="snr_db"):
        build_product_datasets(product.drop_vars("snr_db"), day, provenance=provenance)


def test_incomplete_provenance_is_refused(product, day, provenance):
    del provenance["sm2rain_model"]
    with pytest.raises(ValueError, match="sm2rain_model"):
        build_product_datasets(product, day, provenance=provenance)


def test_product_of_another_day_is_refused(product, provenance):
    import datetime as dt

    with pytest.raises(ValueError, match="does not match"):
        build_product_datasets(product, dt.date(2024, 1, 3), provenance=provenance)


def test_undeclared_merge_method_value_is_refused(product, day, provenance):
    product["merge_method"].values[0, 5, 5] = 7
    with pytest.raises(ValueError, match="flag_values"):
        build_product_datasets(product, day, provenance=provenance)


def test_missing_inputs_with_reasons_are_kept_one_per_line(product, day, provenance):
    provenance["missing_inputs"] = ["smap: quarantined (truncated file)", "gldas: not_found ()"]
    ds = build_product_datasets(product, day, provenance=provenance)["merged-sm"]
    assert ds.attrs["missing_inputs"].splitlines() == provenance["missing_inputs"]
