"""Quicklook PNG maps: they decode, show no-data grey, and are byte-reproducible."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

import synthetic
from smflow.publish.quicklook import QUICKLOOKS, render_day_quicklooks, render_quicklook

GREY = (0xBD, 0xBD, 0xBD)


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
    # off-land cells are drawn grey, land cells in colour
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
