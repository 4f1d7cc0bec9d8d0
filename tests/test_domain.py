"""The big_island DomainGrid: coordinates, land mask (vs ERA5-Land points and the ECMWF mask)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr

from smflow.config import REPO_ROOT, Settings
from smflow.domain import DomainGrid, load_domain

BUNDLE = REPO_ROOT / "data" / "sample" / "hawaii"


@pytest.fixture(scope="module")
def grid() -> DomainGrid:
    return load_domain("big_island")


def era5_land_cells(root, grid) -> np.ndarray:
    """Boolean (lat, lon): cells of ``grid`` holding an ERA5-Land grid point in the cell files."""
    mask = np.zeros(grid.shape, dtype=bool)
    for cell in ("0165", "0166"):
        with xr.open_dataset(root / "ERA5_LAND_V20190904" / f"{cell}.nc", engine="netcdf4") as ds:
            lat, lon = ds["lat"].values.astype(float), ds["lon"].values.astype(float)
        lon_min, lat_min, lon_max, lat_max = grid.bounds
        inside = (lat > lat_min) & (lat < lat_max) & (lon > lon_min) & (lon < lon_max)
        rows, cols = grid.cell_index(lat[inside], lon[inside])
        # ERA5-Land points sit exactly on the cell centres
        np.testing.assert_allclose(grid.lat[rows], lat[inside], atol=1e-5)
        np.testing.assert_allclose(grid.lon[cols], lon[inside], atol=1e-5)
        mask[rows, cols] = True
    return mask


def test_coordinates(grid):
    assert grid.name == "big_island" and grid.crs == "EPSG:4326" and grid.resolution == 0.1
    assert grid.shape == (13, 10)
    np.testing.assert_allclose(grid.lat, np.round(np.arange(19.0, 20.21, 0.1), 1))
    np.testing.assert_allclose(grid.lon, np.round(np.arange(-156.0, -155.09, 0.1), 1))
    assert grid.lat[3] == 19.3  # rounded, not 19.300000000000001
    assert grid.bounds == (-156.05, 18.95, -155.05, 20.25)


def test_land_mask(grid):
    mask = grid.land_mask
    assert mask.shape == grid.shape and mask.dtype == bool
    assert grid.n_land == 84
    mask[:] = False  # a copy: the grid is not modified
    assert grid.n_land == 84


def test_land_mask_equals_era5_land_points_in_bundle(grid):
    np.testing.assert_array_equal(era5_land_cells(BUNDLE, grid), grid.land_mask)


def test_land_mask_equals_era5_land_points_in_real_files(grid):
    shared = Settings.load().shared_data_dir
    if shared is None or not (shared / "hawaii_timeseries").is_dir():
        pytest.skip("../shared/data/real/hawaii_timeseries is not available on this machine")
    np.testing.assert_array_equal(era5_land_cells(shared / "hawaii_timeseries", grid), grid.land_mask)


def test_land_mask_agrees_with_ecmwf_models_landmask(grid):
    shared = Settings.load().shared_data_dir
    path = shared / "land_masks" / "landmask_0.1_0.1.nc" if shared else None
    if path is None or not path.is_file():
        pytest.skip("../shared/data/real/land_masks/landmask_0.1_0.1.nc is not available")
    # engine given: guessing it would import cfgrib/eccodes, which breaks pyproj in this process
    with xr.open_dataset(path, engine="netcdf4") as ds:
        # 0-360 longitudes, descending latitudes
        sub = ds["land"].sel(latitude=grid.lat, longitude=np.round(grid.lon % 360, 1), method="nearest")
        np.testing.assert_allclose(sub["latitude"].values, grid.lat, atol=1e-4)
        land = sub.values == 1
    np.testing.assert_array_equal(land, grid.land_mask)


def test_area_definition(grid):
    area = grid.area_definition()
    assert area.shape == grid.shape
    assert tuple(area.area_extent) == pytest.approx(grid.bounds)
    lons, lats = area.get_lonlats()
    # pyresample rows are north-up
    assert lats[0, 0] == pytest.approx(grid.lat[-1]) and lats[-1, 0] == pytest.approx(grid.lat[0])
    assert lons[0, 0] == pytest.approx(grid.lon[0])


def test_template(grid):
    t = grid.template("soil_moisture", "m3 m-3", long_name="x")
    assert t.dims == ("lat", "lon") and t.shape == grid.shape and np.isnan(t.values).all()
    assert t.name == "soil_moisture" and t.attrs["units"] == "m3 m-3" and t.attrs["long_name"] == "x"
    assert t["lat"].attrs["standard_name"] == "latitude" and t["lon"].attrs["units"] == "degrees_east"
    assert grid.is_on_grid(t)


def test_cell_index(grid):
    assert grid.cell_index(19.0, -156.0) == (0, 0)
    assert grid.cell_index(20.2, -155.1) == (12, 9)
    assert grid.cell_index(19.533, -155.933) == (5, 1)  # Kainaliu SCAN station
    assert grid.cell_index(19.533, 360 - 155.933) == (5, 1)  # 0-360 longitude
    rows, cols = grid.cell_index(np.array([19.04, 20.24]), np.array([-156.04, -155.06]))
    np.testing.assert_array_equal(rows, [0, 12])
    np.testing.assert_array_equal(cols, [0, 9])
    with pytest.raises(ValueError, match="outside domain"):
        grid.cell_index(21.0, -157.0)


def test_frozen_and_cached(grid):
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.resolution = 0.25  # type: ignore[misc]
    assert load_domain() is grid
    with pytest.raises(FileNotFoundError, match="known domains"):
        load_domain("atlantis")


def test_eccodes_loaded_after_smflow_leaves_pyproj_working():
    """eccodes (cfgrib) loaded first leaves PROJ without its database; importing smflow prevents it."""
    import subprocess
    import sys

    code = "import smflow, eccodes, pyproj; print(pyproj.CRS('EPSG:4326').name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "WGS 84", out.stderr[-2000:]
