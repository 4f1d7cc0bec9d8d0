"""native_to_domain / terrain_covariates: synthetic known answers and the real native granules."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smflow.config import REPO_ROOT, Settings
from smflow.domain import DomainGrid, load_domain
from smflow.regrid import REGRID_METHODS, all_land, native_to_domain, terrain_covariates, to_domain

SHARED = Settings.load().shared_data_dir


def _load_make_domain():
    spec = importlib.util.spec_from_file_location("make_domain", REPO_ROOT / "infra" / "make_domain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def box_grid(lat=(41.05, 44.95), lon=(-0.95, 2.95), res=0.1, land=None, name="box") -> DomainGrid:
    n_lat = int(round((lat[1] - lat[0]) / res)) + 1
    n_lon = int(round((lon[1] - lon[0]) / res)) + 1
    mask = np.ones((n_lat, n_lon), bool) if land is None else land
    return DomainGrid(name, "EPSG:4326", res, lat[0], lat[1], lon[0], lon[1],
                      tuple(tuple(bool(v) for v in row) for row in mask))


def regular(values, lat, lon, name="soil_moisture", product="esa_cci_sm", **attrs) -> xr.Dataset:
    return xr.Dataset(
        {name: (("lat", "lon"), values, {"units": "m3 m-3", "long_name": "test field",
                                          "standard_name": "volume_fraction_of_condensed_water_in_soil",
                                          **attrs})},
        coords={"lat": ("lat", lat), "lon": ("lon", lon)},
        attrs={"product": product, "native_product": product},
    )


def linear(lat, lon):
    return 0.2 + 0.01 * lat - 0.02 * lon


# -- synthetic known answers --------------------------------------------------------------------


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("lon360", [False, True])
def test_bilinear_reproduces_a_linear_field_from_a_regular_grid(descending, lon360):
    grid = box_grid()
    lat = np.arange(40.0, 46.01, 0.25)[::-1 if descending else 1]
    lon = np.arange(-3.0, 5.01, 0.25)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ds = regular(linear(la, lo), lat, lon % 360 if lon360 else lon)
    if lon360:
        ds = ds.sortby("lon")  # 0..360 source, as ERA5/ECMWF files store it
    out = native_to_domain(ds, grid, method="bilinear")
    expected = linear(*np.meshgrid(grid.lat, grid.lon, indexing="ij"))
    np.testing.assert_allclose(out["soil_moisture"].values, expected, atol=1e-12)
    assert out["soil_moisture"].dims == ("lat", "lon")
    np.testing.assert_array_equal(out["lat"].values, grid.lat)
    np.testing.assert_array_equal(out["lon"].values, grid.lon)
    assert out.attrs["regrid_method"] == "bilinear" and out.attrs["crs"] == grid.crs
    assert out.attrs["domain"] == grid.name
    assert out["soil_moisture"].attrs["units"] == "m3 m-3"
    assert out["soil_moisture"].attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert np.isnan(out["soil_moisture"].encoding["_FillValue"])


def test_bilinear_reproduces_a_linear_field_from_a_point_list():
    grid = box_grid(res=0.25, lat=(41.125, 44.875), lon=(-0.875, 2.875))
    lat2, lon2 = np.meshgrid(np.arange(40.0, 46.01, 0.3), np.arange(-3.0, 5.01, 0.3), indexing="ij")
    ds = xr.Dataset({"soil_moisture": (("cell",), linear(lat2, lon2).ravel(), {"units": "m3 m-3"})},
                    coords={"lat": ("cell", lat2.ravel()), "lon": ("cell", lon2.ravel())},
                    attrs={"native_product": "smap_l2"})
    out = native_to_domain(ds, grid)  # SMAP default: pyresample bilinear
    assert out.attrs["regrid_method"] == "bilinear" and "scipy" in out.attrs["regrid_library"]
    expected = linear(*np.meshgrid(grid.lat, grid.lon, indexing="ij"))
    np.testing.assert_allclose(out["soil_moisture"].values, expected, atol=1e-6)


def test_block_mean_equals_the_analytic_cell_mean_and_ignores_nan():
    grid = box_grid(lat=(41.05, 41.45), lon=(0.05, 0.45))  # 5 x 5 cells
    step = 0.01  # 10 x 10 pixels per cell, centres at x.xx5
    lat = np.round(np.arange(41.0 + step / 2, 41.5, step), 6)[::-1]  # descending, as CGLS
    lon = np.round(np.arange(0.0 + step / 2, 0.5, step), 6)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    field = 3.0 + 2.0 * la - 5.0 * lo + 0.5 * la * lo  # bilinear: cell mean = value at centre
    ds = regular(field, lat, lon, product="cgls_ssm_1km")
    out = native_to_domain(ds, grid)
    assert out.attrs["regrid_method"] == "mean"
    gla, glo = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    np.testing.assert_allclose(out["soil_moisture"].values, 3.0 + 2.0 * gla - 5.0 * glo + 0.5 * gla * glo,
                               rtol=1e-12)
    assert (out["soil_moisture_count"].values == 100).all()
    assert out["soil_moisture"].attrs["cell_methods"] == "area: mean"

    holes = field.copy()
    rng = np.random.default_rng(1)
    holes[rng.random(holes.shape) < 0.3] = np.nan
    holes[:10, :10] = np.nan  # one whole cell (north-west) without a valid pixel
    out = native_to_domain(regular(holes, lat, lon, product="cgls_ssm_1km"), grid)
    blocks = holes[::-1].reshape(5, 10, 5, 10)  # ascending rows, (cell_row, pixel, cell_col, pixel)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(blocks, axis=(1, 3))
    np.testing.assert_allclose(out["soil_moisture"].values, expected, rtol=1e-12)
    np.testing.assert_array_equal(out["soil_moisture_count"].values, np.isfinite(blocks).sum(axis=(1, 3)))
    assert np.isnan(out["soil_moisture"].values[-1, 0]) and out["soil_moisture_count"].values[-1, 0] == 0


def test_nearest_of_a_swath_takes_the_nearest_point_within_the_radius():
    grid = box_grid(lat=(41.05, 41.45), lon=(0.05, 0.45))
    lat = np.array([41.06, 41.24, 41.46, 45.0])
    lon = np.array([0.04, 0.26, 0.44, 0.0])
    ds = xr.Dataset({"degree_of_saturation": (("obs",), [10.0, 20.0, np.nan, 99.0], {"units": "percent"})},
                    coords={"lat": ("obs", lat), "lon": ("obs", lon)}, attrs={"native_product": "hsaf_h102"})
    out = native_to_domain(ds, grid, radius_m=3_000.0)
    v = out["degree_of_saturation"].values
    assert v[0, 0] == 10.0  # 1.4 km from point 0
    assert v[2, 2] == 20.0  # 1.4 km from point 1
    assert np.isnan(v[4, 4])  # nearest point has no valid value: NaN, no borrowing
    assert np.isfinite(v).sum() == 2  # everything else beyond 3 km
    out = native_to_domain(ds, grid, radius_m=30_000.0)
    v = out["degree_of_saturation"].values
    assert v[1, 1] in (10.0, 20.0) and np.isfinite(v).sum() > 2
    assert out.attrs["regrid_radius_m"] == 30_000.0


def test_nearest_matches_the_time_series_regridder():
    grid = load_domain("big_island")
    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(18.9, 20.3, 300), rng.uniform(-156.1, -155.0, 300)
    values = rng.random(300)
    ds = xr.Dataset({"soil_moisture": (("location",), values)}, coords={"lat": ("location", lat),
                    "lon": ("location", lon)})
    a = native_to_domain(ds, grid, method="nearest", radius_m=10_000.0)["soil_moisture"].values
    b = to_domain(values, lat, lon, grid, radius_m=10_000.0).values
    np.testing.assert_array_equal(a, b)


def test_leading_time_dim_sea_cells_and_no_pixel_in_domain():
    land = np.ones((5, 5), bool)
    land[0, :] = False
    grid = box_grid(lat=(41.05, 41.45), lon=(0.05, 0.45), land=land)
    lat = np.arange(40.0, 42.5, 0.25)
    lon = np.arange(-1.0, 1.5, 0.25)
    cube = np.stack([np.full((lat.size, lon.size), 0.1), np.full((lat.size, lon.size), 0.3)])
    ds = xr.Dataset({"soil_moisture": (("time", "lat", "lon"), cube, {"units": "m3 m-3"})},
                    coords={"time": pd.date_range("2016-01-01 03:00", periods=2, freq="3h"), "lat": lat, "lon": lon},
                    attrs={"native_product": "gldas"})
    out = native_to_domain(ds, grid)
    assert out["soil_moisture"].dims == ("time", "lat", "lon")
    assert out.sizes["time"] == 2 and (out["time"].values == ds["time"].values).all()
    np.testing.assert_allclose(out["soil_moisture"].values[:, 1:], np.array([0.1, 0.3])[:, None, None]
                               * np.ones((2, 4, 5)))
    assert np.isnan(out["soil_moisture"].values[:, 0]).all()  # sea row

    far = ds.assign_coords(lat=lat - 30.0)  # no sample near the domain: all NaN, no error
    for method in ("nearest", "bilinear", "mean"):
        empty = native_to_domain(far, grid, method=method)
        assert np.isnan(empty["soil_moisture"].values).all()
        assert empty["soil_moisture"].shape == (2, 5, 5)


def test_unknown_product_needs_a_method():
    ds = regular(np.zeros((2, 2)), [41.0, 41.5], [0.0, 0.5], product="not_a_product")
    with pytest.raises(KeyError, match="pass method="):
        native_to_domain(ds, box_grid())
    assert REGRID_METHODS["ascat_l2_ssm_nc"].method == "nearest"
    assert REGRID_METHODS["smap_l2"].method == "bilinear"
    assert REGRID_METHODS["cgls_ssm_1km"].method == "mean"


# -- real files ---------------------------------------------------------------------------------

real = pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available on this machine")
CGLS = "cgls_1km/CGLS_SSM1km_V1.1_img/c_gls_SSM1km_201706010000_CEURO_S1CSAR_V1.1.1.nc"
SWI = "cgls_1km/CGLS_SWI1km_V1.0_img/c_gls_SWI1km_201706011200_CEURO_SCATSAR_V1.0.1.nc"
ASCAT = ("ascat_eumetsat_l2/nc_25km/W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,METOPA+ASCAT_C_EUMP_"
         "20170220041500_53652_eps_o_250_ssm_l2.nc")
SMAP = "smap_l2/SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5"
GLDAS = "gldas_noah21/GLDAS_NOAH025_3H.A20160101.0300.021.nc4"


def _open(rel):
    from smflow.readers.native import open_native

    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{rel} is not in ../shared/data/real")
    return open_native(path)


def _direct_bin_mean(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, grid: DomainGrid) -> np.ndarray:
    """Reference: pandas groupby over the cell each valid pixel centre falls in."""
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    lon_min, lat_min, _, _ = grid.bounds
    frame = pd.DataFrame({"v": values.ravel(), "r": np.floor((la.ravel() - lat_min) / grid.resolution),
                          "c": np.floor((lo.ravel() - lon_min) / grid.resolution)}).dropna()
    frame = frame[(frame.r >= 0) & (frame.r < grid.shape[0]) & (frame.c >= 0) & (frame.c < grid.shape[1])]
    means = frame.groupby(["r", "c"])["v"].mean()
    out = np.full(grid.shape, np.nan)
    out[means.index.get_level_values(0).astype(int), means.index.get_level_values(1).astype(int)] = means.values
    out[~grid.land_mask] = np.nan
    return out


@real
def test_ebro_pyrenees_domain_is_the_globe_land_mask():
    grid = load_domain("ebro_pyrenees")
    assert grid.shape == (40, 40) and grid.resolution == 0.1
    assert grid.lat[0] == 41.05 and grid.lat[-1] == 44.95 and grid.lon[0] == -0.95 and grid.lon[-1] == 2.95
    make_domain = _load_make_domain()
    path = SHARED / "land_masks" / "globe_combined_mask_compressed.npz"
    fraction = make_domain.land_fraction(path, lat=(41.05, 44.95), lon=(-0.95, 2.95), resolution=0.1)
    np.testing.assert_array_equal(fraction >= 0.5, grid.land_mask)
    assert 1400 < grid.n_land < 1600  # the Mediterranean in the south-east corner
    assert not grid.land_mask[0, -1] and grid.land_mask[-1, 0]  # off Barcelona / Gascony


@real
def test_cgls_ssm_1km_mean_equals_a_direct_block_mean():
    grid = load_domain("ebro_pyrenees")
    ds = _open(CGLS)
    out = native_to_domain(ds, grid)
    assert out.attrs["regrid_method"] == "mean"
    expected = _direct_bin_mean(ds["degree_of_saturation"].values, ds["lat"].values, ds["lon"].values, grid)
    np.testing.assert_allclose(out["degree_of_saturation"].values, expected, rtol=1e-6)
    assert np.isfinite(expected).sum() > 200
    assert out["degree_of_saturation"].attrs["units"] == "percent"
    # quality_fraction 0 <=> no pixel passing the flags <=> no value
    q = out["quality_fraction"].values
    assert np.isnan(out["degree_of_saturation"].values[q == 0]).all()
    assert (out["degree_of_saturation_count"].values[np.isfinite(expected)] >= 1).all()


@real
def test_cgls_swi_1km_mean_keeps_characteristic_time():
    grid = load_domain("ebro_pyrenees")
    ds = _open(SWI)
    out = native_to_domain(ds, grid)
    swi = out["soil_water_index"]
    assert swi.dims == ("characteristic_time", "lat", "lon")
    for k in range(ds.sizes["characteristic_time"]):
        expected = _direct_bin_mean(ds["soil_water_index"].isel(characteristic_time=k).values,
                                    ds["lat"].values, ds["lon"].values, grid)
        np.testing.assert_allclose(swi.isel(characteristic_time=k).values, expected, rtol=1e-6)
    assert np.isfinite(swi.values).mean() > 0.5


@real
def test_etopo2_terrain_covariates():
    ds = _open("dem_etopo/FR+IT.nc")
    grid = load_domain("ebro_pyrenees")
    everywhere = all_land(grid)
    cov = terrain_covariates(ds, everywhere)
    # ETOPO2 is 1/30 deg: exactly 3 x 3 pixels per cell, so the mean of the cell means is the box
    # mean, which MANIFEST gives as 468 m (120 x 120 pixels, -2075 .. 3032 m).
    assert cov["elevation"].mean().item() == pytest.approx(468.0, abs=1.0)
    assert (cov["elevation_count"].values == 9).all()
    box = ds.sel(lat=slice(41.0, 45.0), lon=slice(-1.0, 3.0))
    assert box["elevation"].shape == (120, 120)
    blocks = box["elevation"].values.reshape(40, 3, 40, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(cov["elevation"].values, blocks, rtol=1e-6)
    # slope at native resolution, then cell mean (the reader's slope uses the same formula)
    slope_blocks = box["slope"].values.reshape(40, 3, 40, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(cov["slope"].values, slope_blocks, rtol=1e-4, atol=1e-4)
    assert cov["slope"].attrs["units"] == "degree" and cov["elevation"].attrs["units"] == "m"
    assert cov["elevation"].attrs["standard_name"] == "height_above_mean_sea_level"
    assert 1.0 < np.nanmean(cov["slope"].values) < 10.0  # the Pyrenees
    on_land = terrain_covariates(ds, grid)
    assert np.isnan(on_land["elevation"].values[~grid.land_mask]).all()
    assert np.nanmean(on_land["elevation"].values) > 468.0  # the sea cells were the deep ones


@real
def test_ascat_25km_swath_nearest():
    make_domain = _load_make_domain()
    config = make_domain.domain_config(
        "ganges", lat=(22.125, 25.875), lon=(84.125, 87.875), resolution=0.25,
        mask_path=SHARED / "land_masks" / "globe_combined_mask_compressed.npz", description="test")
    from smflow.domain import domain_from_dict

    grid = domain_from_dict(config)
    ds = _open(ASCAT)
    out = native_to_domain(ds, grid)
    assert out.attrs["regrid_method"] == "nearest"
    v = out["degree_of_saturation"].values
    assert np.isfinite(v).sum() > 50
    # each valid cell holds the value of the swath node nearest to its centre (brute force)
    lat = ds["lat"].values.ravel()
    lon = ds["lon"].values.ravel()
    sm = ds["degree_of_saturation"].values.ravel()
    rows, cols = np.nonzero(np.isfinite(v))
    for r, c in list(zip(rows, cols))[::10]:
        d = _haversine(grid.lat[r], grid.lon[c], lat, lon)
        assert d.min() <= REGRID_METHODS["ascat_l2_ssm_nc"].radius_m
        assert v[r, c] == sm[np.nanargmin(d)]
    times = out["observation_time"].values[np.isfinite(v)]
    assert (times >= np.datetime64("2017-02-20T04:15")).all() and (times <= np.datetime64("2017-02-20T06:00")).all()


def _haversine(lat0, lon0, lat, lon):
    p0, p = np.radians(lat0), np.radians(lat)
    a = np.sin((p - p0) / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin(np.radians(lon - lon0) / 2) ** 2
    return 2 * 6_371_000.0 * np.arcsin(np.sqrt(a))


@real
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_smap_l2_swath(method):
    grid = box_grid(lat=(62.125, 65.875), lon=(-139.875, -132.125), res=0.25, name="yukon")
    ds = _open(SMAP)
    out = native_to_domain(ds, grid, method=method)
    v = out["soil_moisture"].values
    assert np.isfinite(v).sum() > 20
    src = ds["soil_moisture"].values
    inside = (ds["lat"].values > 61) & (ds["lat"].values < 67) & (ds["lon"].values > -141) & (ds["lon"].values < -131)
    assert np.nanmin(src[inside]) - 1e-9 <= np.nanmin(v) and np.nanmax(v) <= np.nanmax(src[inside]) + 1e-9
    assert out["soil_moisture"].attrs["units"] == "m3 m-3"
    t = out["observation_time"].values[np.isfinite(v)]
    assert (t >= np.datetime64("2015-08-11T01:31")).all() and (t <= np.datetime64("2015-08-11T02:25")).all()


@real
def test_gldas_to_coarser_and_finer_grids():
    ds = _open(GLDAS)
    coarse = box_grid(lat=(41.25, 44.75), lon=(-0.75, 2.75), res=0.5, name="coarse")
    out = native_to_domain(ds, coarse, method="mean")
    sub = ds["soil_moisture"].isel(time=0).sel(lat=slice(41.0, 45.0), lon=slice(-1.0, 3.0)).values
    assert sub.shape == (16, 16)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(sub.reshape(8, 2, 8, 2), axis=(1, 3))
    np.testing.assert_allclose(out["soil_moisture"].values[0], expected, rtol=1e-6)
    assert out["soil_moisture"].dims == ("time", "lat", "lon")

    fine = load_domain("ebro_pyrenees")
    out = native_to_domain(ds, fine)  # GLDAS default: bilinear
    from scipy.interpolate import RegularGridInterpolator

    src = ds["soil_moisture"].isel(time=0)
    interp = RegularGridInterpolator((src["lat"].values, src["lon"].values), src.values,
                                     bounds_error=False)
    la, lo = np.meshgrid(fine.lat, fine.lon, indexing="ij")
    expected = interp(np.stack([la.ravel(), lo.ravel()], axis=-1)).reshape(fine.shape)
    expected[~fine.land_mask] = np.nan
    np.testing.assert_allclose(out["soil_moisture"].values[0], expected, rtol=1e-6)
    assert np.isfinite(expected).sum() > 1000
