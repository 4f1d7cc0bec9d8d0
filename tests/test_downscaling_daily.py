"""Daily 0.01 deg product on the Big Island: COG + quicklook + STAC on the stack's real S3."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
pytestmark = pytest.mark.skipif(not (SHARED / "dem_hawaii").is_dir(),
                                reason=f"real covariate files absent ({SHARED})")


def _coarse_field(domain, value=None):
    da = domain.template("soil_moisture", "m3 m-3")
    lat = np.broadcast_to(domain.lat[:, None], domain.shape)
    lon = np.broadcast_to(domain.lon[None, :], domain.shape)
    field = 0.15 + 0.1 * (lat - 19.0) / 1.2 + 0.05 * np.sin(8 * lon) if value is None else value
    da.values[...] = np.where(domain.land_mask, field, np.nan)
    return da


def test_daily_product_is_a_mass_conserving_cog_with_quicklook_and_stac(stack, tmp_path):
    import rioxarray

    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.downscaling.daily import run_day
    from smflow.downscaling.grid import block_mean

    day = dt.date(2018, 6, 3)
    domain = load_domain("big_island")
    coarse = _coarse_field(domain)
    s3 = s3mod.client(stack)
    s3mod.ensure_bucket(s3, stack.products_bucket)
    out = run_day(day, method="nn_kriging", settings=stack, coarse=coarse)
    assert out["status"] == "ok" and out["mass_conservation"]["passed"]
    assert out["mass_conservation"]["max_abs_block_mean_minus_coarse"] < 1e-9
    tif, png, item_key = out["keys"]
    body = s3.get_object(Bucket=stack.products_bucket, Key=tif)["Body"].read()
    path = tmp_path / "1km.tif"
    path.write_bytes(body)
    cog = rioxarray.open_rasterio(path).squeeze("band", drop=True)
    assert cog.rio.crs.to_epsg() == 4326 and cog.shape == (130, 100)
    values = cog.values[::-1].astype(np.float64)  # north-up -> latitude ascending
    agg = block_mean(values, 10)
    ok = np.isfinite(agg) & np.isfinite(coarse.values)
    assert ok.sum() > 50 and np.nanmax(np.abs(agg[ok] - coarse.values[ok])) < 1e-6  # float32
    assert s3.get_object(Bucket=stack.products_bucket, Key=png)["Body"].read()[:4] == b"\x89PNG"
    item = json.loads(s3.get_object(Bucket=stack.products_bucket, Key=item_key)["Body"].read())
    targets = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    # the coarse field was given in memory (not published): no link to it; the covariates are linked
    assert not any("merged-sm" in t for t in targets) and any("HI_topo_04" in t for t in targets)
    assert item["properties"]["smflow:method"] == "nn_kriging"
    assert item["properties"]["smflow:mass_conservation"]["passed"] is True
    assert "lst" in " ".join(item["properties"]["smflow:missing_covariates"])
    # Re-running the unchanged day writes nothing (idempotent placement).
    again = run_day(day, method="nn_kriging", settings=stack, coarse=coarse)
    assert again["written"] == []


def test_all_nan_coarse_field_gives_no_product(stack):
    from smflow.domain import load_domain
    from smflow.downscaling.daily import run_day

    domain = load_domain("big_island")
    out = run_day(dt.date(2018, 6, 4), method="bilinear", settings=stack,
                  coarse=_coarse_field(domain, value=np.nan))
    assert out["status"] == "missing" and "no value" in out["reason"] and "keys" not in out


def test_published_fine_values_are_read_back_at_points_through_the_item(stack):
    from smflow import s3 as s3mod
    from smflow.domain import load_domain
    from smflow.downscaling.daily import open_published_1km, run_day

    domain = load_domain("big_island")
    day, absent = dt.date(2018, 6, 5), dt.date(1999, 1, 1)
    s3 = s3mod.client(stack)
    s3mod.ensure_bucket(s3, stack.products_bucket)
    # a uniform coarse field: bilinear keeps it uniform on land, so every land pixel reads 0.2
    run_day(day, method="bilinear", settings=stack, coarse=_coarse_field(domain, value=0.2))
    iy, ix = np.argwhere(domain.land_mask)[len(np.argwhere(domain.land_mask)) // 2]
    lat, lon = domain.lat[iy], domain.lon[ix]
    got = open_published_1km(s3, stack.products_bucket, [day, absent], [lat, 10.0], [lon, 10.0])
    assert got.shape == (2, 2)
    assert abs(got[0, 0] - 0.2) < 1e-6  # float32 COG
    assert np.isnan(got[1, 0])  # a point outside the grid
    assert np.isnan(got[:, 1]).all()  # a day with no 1 km item
