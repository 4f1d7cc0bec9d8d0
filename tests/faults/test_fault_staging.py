"""The publisher's staging orphans of a day's earlier attempts are removed once the day is published
(found by test_fault_s3.py: S3 killed mid-publish left ``staging/{uuid}/...`` behind)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.faults


def test_a_published_day_removes_the_staging_orphans_of_its_earlier_attempts(stack, s3_client):
    from smflow.operators.daily import sweep_day_publish_staging
    from smflow.publish.publisher import STAGING_PREFIX
    from smflow.s3 import list_keys

    settings = stack
    final = "daily/2019/01/07/smflow_merged-sm_20190107.nc"
    orphan = f"{STAGING_PREFIX}{uuid.uuid4().hex}/{final}"
    other_day = f"{STAGING_PREFIX}{uuid.uuid4().hex}/daily/2019/01/08/smflow_merged-sm_20190108.nc"
    for key in (orphan, other_day):
        s3_client.put_object(Bucket=settings.products_bucket, Key=key, Body=b"left by an attempt S3 failed")
    try:
        assert sweep_day_publish_staging(s3_client, settings, [final, "stac/items/x.json"]) == [orphan]
        left = list_keys(s3_client, settings.products_bucket, STAGING_PREFIX)
        assert orphan not in left and other_day in left  # another day's upload may be in flight
    finally:
        s3_client.delete_object(Bucket=settings.products_bucket, Key=other_day)
