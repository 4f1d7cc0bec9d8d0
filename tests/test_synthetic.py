"""The labelled synthetic history (:mod:`smflow.synthetic`) against the real S3 server of the local stack.

The generator writes a block of days per product in one store call (one Icechunk commit per block
on the chunked layout); the values must be those of the day-by-day writer it replaced, bit for bit,
on both layouts: the digests below are of the fields the day-by-day writer (commit 485b5b3) stored
for this seed on the Big Island grid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from datetime import date, timedelta

import numpy as np
import pytest

from smflow.domain import load_domain
from smflow.store import TimeSeriesStore
from smflow.synthetic import (GLOBAL_PARENT_MODELS, SYNTHETIC_ATTR, generate_history, manifest_key,
                              read_manifest)
from tests.conftest import remove_bucket

GRID = load_domain()
#: 45 days across three 32-day time chunks of the chunked store (day 16,820 = 525 x 32 + 20 .. 527 x 32):
#: blocks of 12, 32 and 1 days.
START, END = date(2016, 1, 20), date(2016, 3, 4)
N_DAYS = (END - START).days + 1
#: A real granule fills these product-days: never generated.
SKIP = {"esa_cci_sm_active": {date(2016, 1, 25), date(2016, 2, 20)}, "gldas_noah025": {END}}
#: sha256 of the window ``START..END`` (float64, C order) of each product, as the day-by-day writer stored it.
DIGESTS = {
    "esa_cci_sm_active": "bf53a3980508cfa4d5c697532fc4ccff170eb4eac909832751b5f52a32a9b8ce",
    "esa_cci_sm_passive": "7613f5eff67ff61464df5e23aec7bceeba7b842c55e598486a91f48c9aa3848b",
    "gldas_noah025": "57a79a8e0410c1137748d8f6a05cbc6f16af22ebc90ebd49ef849ac5e11ea7f1",
}


def _anchor() -> np.ndarray:
    """A climatology [m3 m-3] varying over the grid, NaN in one land cell (no value is generated there)."""
    ny, nx = GRID.shape
    anchor = 0.1 + 0.3 * np.add.outer(np.arange(ny) / ny, np.arange(nx) / nx) / 2
    anchor[np.argwhere(GRID.land_mask)[0][0], np.argwhere(GRID.land_mask)[0][1]] = np.nan
    return anchor


def _coverage() -> np.ndarray:
    """PASSIVE's coverage: the western half of the grid."""
    mask = np.zeros(GRID.shape, dtype=bool)
    mask[:, : GRID.shape[1] // 2] = True
    return mask


@pytest.fixture(params=["zarr", "netcdf"])
def store(request, stack, s3_client):
    """An empty store of the layout ``request.param`` in a scratch bucket."""
    settings = dataclasses.replace(stack, store_bucket=f"test-synthetic-{uuid.uuid4().hex[:8]}",
                                   store_backend=request.param)
    yield TimeSeriesStore(settings, s3=s3_client, grid=GRID)
    remove_bucket(s3_client, settings.store_bucket)


@pytest.mark.parametrize("store, block_days", [("zarr", None), ("netcdf", None), ("zarr", 5)], indirect=["store"],
                         ids=["zarr-chunk-blocks", "netcdf-chunk-blocks", "zarr-5-day-blocks"])
def test_the_history_is_the_day_by_day_writers_bit_for_bit_and_labelled(store, s3_client, block_days):
    blocks = {} if block_days is None else {"block_days": block_days}
    written = generate_history(store, GRID, START, END, anchor=_anchor(), coverage_masks={"esa_cci_sm_passive": _coverage()},
                               skip=SKIP, seed=7, settings=store.settings, **blocks)

    all_days = [START + timedelta(days=k) for k in range(N_DAYS)]
    for product in GLOBAL_PARENT_MODELS:
        expected_days = [d for d in all_days if d not in SKIP.get(product, set())]
        assert written[product] == [d.isoformat() for d in expected_days]
        assert store.days(product, START, END) == expected_days
        window = store.window(product, END, N_DAYS)
        values = np.ascontiguousarray(window.values, dtype=np.float64)
        assert hashlib.sha256(values.tobytes()).hexdigest() == DIGESTS[product], product
        assert window.attrs[SYNTHETIC_ATTR].startswith("SYNTHETIC") and "seed 7" in window.attrs[SYNTHETIC_ATTR]
        land = GRID.land_mask & np.isfinite(_anchor())
        for k, day in enumerate(all_days):
            if day in SKIP.get(product, set()):
                assert not np.isfinite(values[k]).any()  # left to the real granule
            else:
                assert not np.isfinite(values[k][~land]).any()
        assert np.isfinite(values[:, land]).any()

    manifest = read_manifest(s3_client, store.settings, GRID.name)
    assert manifest["products"] == written and manifest["seed"] == 7
    body = s3_client.get_object(Bucket=store.settings.store_bucket, Key=manifest_key(GRID.name))["Body"].read()
    assert json.loads(body)["label"].startswith("SYNTHETIC")


@pytest.mark.parametrize("store", ["zarr"], indirect=True)
def test_a_block_of_no_days_is_refused(store):
    with pytest.raises(ValueError, match="block_days"):
        generate_history(store, GRID, START, END, anchor=_anchor(), skip={}, block_days=0, settings=store.settings)
