"""Regridding and the two ingest paths: per-day granules and the vectorised bulk series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smflow.config import REPO_ROOT
from smflow.domain import load_domain
from smflow.ingest import grid_granule, gridded_series
from infra.archive_stand_in import ArchiveStandIn
from smflow.products import PRODUCTS
from smflow.readers import daily_mean, read_granule, read_product
from smflow.regrid import neighbour_index, to_domain, to_domain_series

BUNDLE = REPO_ROOT / "data" / "sample" / "hawaii"
DAYS = ("2017-05-29", "2017-06-01", "2017-06-05", "2018-02-14")  # SMAP: obs / obs / none / ...


@pytest.fixture(scope="module")
def grid():
    return load_domain()


# -- regridding -------------------------------------------------------------------------------
def test_era5_land_points_map_one_to_one(grid):
    ds = read_product("era5_land", "2017-06-01", "2017-06-01")
    index = neighbour_index(ds["lat"].values, ds["lon"].values, grid, radius_m=1000.0)
    land = grid.land_mask
    assert (index[land] >= 0).all() and (index[~land] == -1).all()
    assert len(set(index[land])) == 84
    rows, cols = np.nonzero(land)
    np.testing.assert_allclose(ds["lat"].values[index[rows, cols]], grid.lat[rows], atol=1e-5)
    np.testing.assert_allclose(ds["lon"].values[index[rows, cols]], grid.lon[cols], atol=1e-5)
    field = to_domain(ds["soil_moisture"].values[:, 0], ds["lat"].values, ds["lon"].values, grid,
                      radius_m=PRODUCTS["era5_land"].regrid_radius_m)
    assert field.dims == ("lat", "lon") and np.isfinite(field.values).sum() == 84
    assert np.isnan(field.values[~land]).all()


def test_radius_of_influence_and_land_mask(grid):
    # one point in the middle of the island, one far at sea
    lat, lon = np.array([19.6, 21.5]), np.array([-155.5, -158.0])
    field = to_domain(np.array([0.3, 0.9]), lat, lon, grid, radius_m=15_000)
    assert np.nanmax(field.values) == 0.3
    dist_ok = np.isfinite(field.values)
    assert 1 <= dist_ok.sum() < grid.n_land and not dist_ok[~grid.land_mask].any()
    assert np.isnan(to_domain(np.array([0.9]), lat[1:], lon[1:], grid, radius_m=15_000).values).all()


def test_nan_sample_does_not_borrow_a_farther_one(grid):
    lat, lon = np.array([19.6, 19.9]), np.array([-155.5, -155.5])
    field = to_domain(np.array([np.nan, 0.2]), lat, lon, grid, radius_m=50_000)
    assert np.isnan(field.sel(lat=19.6, lon=-155.5).item())
    assert field.sel(lat=19.9, lon=-155.5).item() == 0.2


def test_series_equals_single_days(grid):
    ds = read_product("gldas", "2017-06-01", "2017-06-03")
    values = ds["soil_moisture"].values
    series = to_domain_series(values, ds["lat"].values, ds["lon"].values, grid,
                              radius_m=PRODUCTS["gldas"].regrid_radius_m, time=ds["time"].values)
    assert series.dims == ("time", "lat", "lon") and series.sizes["time"] == values.shape[1]
    for k in range(values.shape[1]):
        one = to_domain(values[:, k], ds["lat"].values, ds["lon"].values, grid,
                        radius_m=PRODUCTS["gldas"].regrid_radius_m)
        np.testing.assert_array_equal(series.values[k], one.values)


def test_unknown_method(grid):
    with pytest.raises(ValueError, match="only 'nearest'"):
        to_domain(np.array([0.1]), [19.5], [-155.5], grid, radius_m=1e4, method="bilinear")


# -- ingest paths -----------------------------------------------------------------------------
@pytest.mark.parametrize("product", ["smap", "era5_land", "gldas", "c3s"])
def test_bulk_equals_per_day_granules(product, grid, tmp_path):
    """gridded_series (one read, vectorised) == grid_granule(read_granule(landing granule))."""
    zone = ArchiveStandIn(s3=object())  # write_granule needs no S3
    bulk = gridded_series(product, "2017-05-29", "2018-02-14", grid)
    assert bulk.dims == ("time", "lat", "lon")
    assert bulk.sizes["time"] == (pd.Timestamp("2018-02-14") - pd.Timestamp("2017-05-29")).days + 1
    assert bulk.attrs["units"] == "m3 m-3"
    for day in DAYS:
        path = zone.write_granule(product, day, tmp_path / f"{product}_{day}.nc")
        field = grid_granule(product, read_granule(product, path), day, grid)
        assert field.dims == ("lat", "lon") and field.name == "soil_moisture"
        np.testing.assert_array_equal(field.values, bulk.sel(time=day).values, err_msg=f"{product} {day}")
        assert np.isnan(field.values[~grid.land_mask]).all()


def test_gridded_era5_land_is_swvl1_itself(grid):
    series = gridded_series("era5_land", "2017-06-01", "2017-06-02", grid)
    raw = read_product("era5_land", "2017-06-01", "2017-06-02")
    for k in range(2):
        for i, j in zip(*np.nonzero(grid.land_mask)):
            loc = np.flatnonzero((np.abs(raw["lat"].values - grid.lat[i]) < 1e-4)
                                 & (np.abs(raw["lon"].values - grid.lon[j]) < 1e-4))
            assert series.values[k, i, j] == raw["soil_moisture"].values[loc[0], k]


def test_gldas_field_is_daily_mean_over_its_cell(grid):
    decoded = read_product("gldas", "2017-06-01", "2017-06-01")
    field = grid_granule("gldas", decoded, "2017-06-01", grid)
    mean = daily_mean(decoded, "2017-06-01")
    finite = field.values[np.isfinite(field.values)]
    assert finite.size >= 80
    assert set(np.round(finite, 12)) <= set(np.round(mean.values, 12))
    assert 0.05 < finite.min() and finite.max() < 0.5


def test_smap_coverage_with_successful_retrievals(grid):
    """8 SMAP grid points with successful retrievals; their 36 km footprints cover most land cells."""
    series = gridded_series("smap", "2017-01-01", "2018-12-31", grid)
    covered = np.isfinite(series.values).any(axis=0)
    assert covered.sum() == 77 and not covered[~grid.land_mask].any()
    assert np.isfinite(series.values).any(axis=(1, 2)).sum() == 448  # days with SMAP data


def test_ascat_bulk_uses_degree_of_saturation(grid):
    from smflow.config import Settings

    if Settings.load().shared_data_dir is None:
        pytest.skip("ASCAT H119 is not bundled and ../shared/data/real is not available")
    series = gridded_series("ascat_h119", "2017-06-01", "2017-06-10", grid)
    assert series.name == "degree_of_saturation" and series.attrs["units"] == "percent"
    assert np.nanmax(series.values) <= 100 and np.isfinite(series.values).sum() > 0
