"""The published STAC item, collection and catalog validate against the STAC 1.1.0 JSON schemas
pinned with pystac (bundled in the package: no network). The extension schemas (file, proj,
processing, sci) are not bundled and are not fetched here (the tests run offline)."""

from __future__ import annotations

import json

import pytest
from pystac.validation import validate_dict

from smflow.publish.publisher import CATALOG_KEY, COLLECTION_KEY, Publisher


def test_published_stac_documents_validate(products_settings, s3_client, product, day, provenance):
    publisher = Publisher(products_settings, s3=s3_client)
    published = publisher.publish_day(product, day, provenance)
    for key in (published.stac_key, COLLECTION_KEY, CATALOG_KEY):
        doc = json.loads(s3_client.get_object(Bucket=publisher.bucket, Key=key)["Body"].read())
        assert doc["stac_version"] == "1.1.0"
        validate_dict(doc, extensions=[])  # raises STACValidationError with the failing rule


def test_a_broken_item_is_caught(products_settings, s3_client, product, day, provenance):
    from pystac.errors import STACValidationError

    publisher = Publisher(products_settings, s3=s3_client)
    published = publisher.publish_day(product, day, provenance)
    doc = json.loads(s3_client.get_object(Bucket=publisher.bucket, Key=published.stac_key)["Body"].read())
    del doc["properties"]["datetime"]
    doc["properties"].pop("start_datetime")
    with pytest.raises(STACValidationError):
        validate_dict(doc, extensions=[])
