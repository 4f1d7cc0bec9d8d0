"""Fixtures of the quality tests: real decoded granules, a synthetic daily product, S3 buckets.

``stack`` and ``s3_client`` come from tests/conftest.py (the repo's local stack).
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from quality_fixtures import decode_day, make_product


@pytest.fixture(scope="session")
def real_granules() -> dict:
    """Decoded granules of :data:`GOOD_DAY` for the four input products (read once)."""
    return {p: decode_day(p) for p in ("smap", "era5_land", "gldas", "c3s")}


@pytest.fixture
def granule(real_granules):
    """``granule(product)`` -> a fresh deep copy of the real decoded granule (safe to corrupt)."""
    return lambda product: real_granules[product].copy(deep=True)


@pytest.fixture
def product():
    """``product(day=GOOD_DAY)`` -> a fresh valid synthetic daily product."""
    return make_product


# -- S3 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def quality_settings(stack, s3_client):
    """``stack`` settings with a landing and a store bucket of this test session only."""
    from smflow.s3 import ensure_bucket, list_keys

    tag = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(stack, landing_bucket=f"qtest-landing-{tag}", store_bucket=f"qtest-store-{tag}")
    for bucket in (settings.landing_bucket, settings.store_bucket):
        ensure_bucket(s3_client, bucket)
    yield settings
    for bucket in (settings.landing_bucket, settings.store_bucket):
        for key in list_keys(s3_client, bucket):
            s3_client.delete_object(Bucket=bucket, Key=key)
        try:
            s3_client.delete_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - cleanup is best effort
            pass
