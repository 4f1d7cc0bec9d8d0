"""Quicklook PNG maps: they decode, tell no-value from off-land, draw the coast, adapt the rainfall
scale, and are byte-reproducible."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

import synthetic
from smflow.domain import load_domain
from smflow.publish.quicklook import QUICKLOOKS, adaptive_vmax, render_day_quicklooks, render_quicklook

GREY = (0x7A, 0x7A, 0x7A)  # no value on land
COAST = (0x20, 0x20, 0x20)


def _chunks(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    names, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        names.append(png[offset + 4:offset + 8])
        offset += 12 + length
    return names


@pytest.fixture
def soil_moisture_png(product):
    return render_quicklook(product["soil_moisture"], title="Merged soil moisture", units="m3 m-3",
                            cmap="YlGnBu", vmin=0.0, vmax=0.5)


def test_png_decodes_to_an_rgba_map(soil_moisture_png):
    image = Image.open(io.BytesIO(soil_moisture_png))
    image.load()
    assert image.format == "PNG"
    assert image.size == (540, 560)
    pixels = np.asarray(image.convert("RGB"))
    # without a land mask every NaN cell is "no value" (dark grey), the others in colour
    assert (pixels == GREY).all(axis=-1).sum() > 1000
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_png_also_decodes_with_matplotlib(soil_moisture_png):
    import matplotlib.image

    rgba = matplotlib.image.imread(io.BytesIO(soil_moisture_png), format="png")
    assert rgba.shape[:2] == (560, 540)


def test_png_has_no_timestamp_or_software_metadata(soil_moisture_png):
    chunks = _chunks(soil_moisture_png)
    assert b"tIME" not in chunks
    assert b"tEXt" not in chunks and b"iTXt" not in chunks and b"zTXt" not in chunks


def test_same_field_renders_the_same_bytes(product, soil_moisture_png):
    again = render_quicklook(product["soil_moisture"].copy(deep=True), title="Merged soil moisture",
                             units="m3 m-3", cmap="YlGnBu", vmin=0.0, vmax=0.5)
    assert again == soil_moisture_png


def test_different_field_renders_different_bytes(day, soil_moisture_png):
    other = synthetic.daily_product(day, seed=1)
    png = render_quicklook(other["soil_moisture"], title="Merged soil moisture", units="m3 m-3",
                           cmap="YlGnBu", vmin=0.0, vmax=0.5)
    assert png != soil_moisture_png


def test_all_day_quicklooks(product):
    images = render_day_quicklooks(product)
    assert list(images) == [spec.name for spec in QUICKLOOKS]
    assert {"soil_moisture", "soil_moisture_error_variance", "precipitation_amount",
            "snr_db_smap", "snr_db_era5_land", "snr_db_gldas"} == set(images)
    for png in images.values():
        Image.open(io.BytesIO(png)).verify()


def test_more_than_one_time_step_is_refused(product):
    import xarray as xr

    two_days = xr.concat([product["soil_moisture"]] * 2, dim="time")
    with pytest.raises(ValueError, match="one time step"):
        render_quicklook(two_days, title="t", units="u", cmap="viridis", vmin=0, vmax=1)


def _count(png: bytes, rgb: tuple[int, int, int], tol: int = 0) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(pixels - np.array(rgb)) <= tol).all(axis=-1).sum())


def test_no_value_on_land_and_off_land_are_drawn_apart_under_the_coastline(product):
    big_island = load_domain("big_island")
    land = big_island.land_mask
    field = product["soil_moisture"].fillna(0.3).where(land)  # a value in every land cell, NaN off land
    kwargs = dict(title="Merged soil moisture", units="m3 m-3", cmap="YlGnBu", vmin=0.0, vmax=0.5)
    on_land = render_quicklook(field, land=land, **kwargs)
    assert _count(on_land, GREY) < 300  # off land is hatched, not "no value" (a cell is ~1,100 px)
    ii, jj = np.argwhere(land)[:3].T
    gaps = field.copy(deep=True)
    gaps.values[0, ii, jj] = np.nan  # three land cells without a value
    with_gaps = render_quicklook(gaps, land=land, **kwargs)
    cell_pixels = _count(with_gaps, GREY)
    assert 3 * 800 < cell_pixels - _count(on_land, GREY) < 3 * 1500, cell_pixels  # three cells (~33 x 33 px)
    # the coastline of the domain (GLOBE 30") is drawn over the cells
    assert big_island.outline and sum(len(line) for line in big_island.outline) > 50
    coast = render_quicklook(field, land=land, outline=big_island.outline, place=big_island.title, **kwargs)
    assert _count(coast, COAST, tol=20) > _count(on_land, COAST, tol=20) + 300


def test_day_quicklooks_use_the_domain(product):
    big_island = load_domain("big_island")
    plain = render_day_quicklooks(product)
    mapped = render_day_quicklooks(product, domain=big_island)
    assert all(plain[k] != mapped[k] for k in plain)
    # another grid: the domain does not apply, the maps are drawn without it
    shifted = product.assign_coords(lon=product["lon"] + 1.0)
    assert render_day_quicklooks(shifted, domain=big_island)["soil_moisture"] == \
        render_day_quicklooks(shifted)["soil_moisture"]


def test_adaptive_rainfall_scale():
    assert adaptive_vmax(np.linspace(0.0, 3.3, 100), 0.0, 200.0, 2.0) == 5.0
    assert adaptive_vmax(np.zeros(50), 0.0, 200.0, 2.0) == 2.0  # a dry day: at least min_span
    assert adaptive_vmax(np.array([np.nan, 12.0, 18.0]), 0.0, 200.0, 2.0) == 20.0
    assert adaptive_vmax(np.full(10, 900.0), 0.0, 200.0, 2.0) == 200.0  # capped
    assert adaptive_vmax(np.array([]), 0.0, 200.0, 2.0) == 2.0
    rain = next(spec for spec in QUICKLOOKS if spec.variable == "precipitation_amount")
    assert rain.adaptive
