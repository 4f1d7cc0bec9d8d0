"""STAC item, collection and catalog: structure, lineage, determinism, round trip."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pystac
import pytest

from smflow.publish.stac import (
    AssetSpec,
    build_catalog,
    build_collection,
    build_item,
    multihash_sha256,
    to_json_bytes,
)

BBOX = [-156.05, 18.95, -155.05, 20.25]
GEOMETRY = {
    "type": "Polygon",
    "coordinates": [[[-156.05, 18.95], [-155.05, 18.95], [-155.05, 20.25], [-156.05, 20.25],
                     [-156.05, 18.95]]],
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def assets():
    base = "s3://sm-products/daily/2024/01/02"
    return {
        "merged-sm": (f"{base}/smflow_merged-sm_20240102.nc", "application/netcdf", ["data"],
                      _sha("a"), "Merged soil moisture", 56000),
        "sm2rain-precip": AssetSpec(f"{base}/smflow_sm2rain-precip_20240102.nc",
                                    "application/netcdf", ("data",), _sha("b"), "Rainfall", 32000),
        "quicklook-soil_moisture": (f"{base}/smflow_soil_moisture_20240102.png", "image/png",
                                    ["overview", "visual"], _sha("c"), "Quicklook"),
    }


@pytest.fixture
def item(day, assets, provenance):
    return build_item(
        day, assets, bbox=BBOX, geometry=GEOMETRY, provenance=provenance,
        self_href="s3://sm-products/stac/items/smflow-daily-20240102.json",
        collection_href="s3://sm-products/stac/collections/smflow-daily.json",
        root_href="s3://sm-products/stac/catalog.json", proj_shape=[13, 10],
    )


def test_item_covers_the_day(item):
    assert item.id == "smflow-daily-20240102"
    assert item.properties["start_datetime"] == "2024-01-02T00:00:00Z"
    assert item.properties["end_datetime"] == "2024-01-02T23:59:59Z"
    assert item.datetime == dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert item.bbox == BBOX and item.geometry == GEOMETRY
    assert item.properties["proj:code"] == "EPSG:4326"
    assert item.properties["proj:shape"] == [13, 10]
    assert item.collection_id == "smflow-daily"


def test_item_links_every_asset_with_checksum_and_size(item, assets):
    assert set(item.assets) == set(assets)
    merged = item.assets["merged-sm"].to_dict()
    assert merged["href"] == "s3://sm-products/daily/2024/01/02/smflow_merged-sm_20240102.nc"
    assert merged["type"] == "application/netcdf" and merged["roles"] == ["data"]
    assert merged["file:checksum"] == "1220" + _sha("a")
    assert merged["file:size"] == 56000
    quicklook = item.assets["quicklook-soil_moisture"].to_dict()
    assert quicklook["type"] == "image/png" and "overview" in quicklook["roles"]
    assert "file:size" not in quicklook
    assert any("/file/" in uri for uri in item.stac_extensions)


def test_item_carries_lineage(item, provenance):
    links = item.to_dict(transform_hrefs=False)["links"]
    derived = [link["href"] for link in links if link["rel"] == "derived_from"]
    assert derived == provenance["input_granules"]
    props = item.properties
    assert props["smflow:tc_merging_model"] == "models:/smflow-tc-merging/3"
    assert props["smflow:sm2rain_model"] == "models:/smflow-sm2rain/2"
    assert props["smflow:input_granules"] == provenance["input_granules"]
    assert props["smflow:missing_inputs"] == []
    assert props["smflow:sm2rain_parameters_source"] == provenance["sm2rain_parameters_source"]
    assert props["smflow:tc_window_days"] == 90
    assert props["processing:software"] == {"smflow": "0.1.0"}
    assert props["processing:version"] == "0.1.0"
    assert {p.get("doi") for p in props["sci:publications"]} >= {"10.3390/rs14215355",
                                                                 "10.1002/grl.50173"}
    rels = {link["rel"]: link["href"] for link in links if link["rel"] != "derived_from"}
    assert rels == {
        "self": "s3://sm-products/stac/items/smflow-daily-20240102.json",
        "collection": "s3://sm-products/stac/collections/smflow-daily.json",
        "parent": "s3://sm-products/stac/collections/smflow-daily.json",
        "root": "s3://sm-products/stac/catalog.json",
    }


def test_item_json_is_deterministic_and_round_trips(item, day, assets, provenance):
    body = to_json_bytes(item)
    again = build_item(
        day, dict(reversed(list(assets.items()))), bbox=BBOX, geometry=GEOMETRY,
        provenance=dict(provenance),
        self_href="s3://sm-products/stac/items/smflow-daily-20240102.json",
        collection_href="s3://sm-products/stac/collections/smflow-daily.json",
        root_href="s3://sm-products/stac/catalog.json", proj_shape=[13, 10],
    )
    assert to_json_bytes(again) == body
    document = json.loads(body)
    assert "created" not in document["properties"] and "updated" not in document["properties"]
    restored = pystac.Item.from_dict(document)
    assert restored.to_dict(transform_hrefs=False) == item.to_dict(transform_hrefs=False)
    assert to_json_bytes(restored) == body
    assert document["type"] == "Feature" and document["stac_version"] == pystac.get_stac_version()


def test_missing_inputs_given_as_text_become_a_list(day, assets, provenance):
    provenance["missing_inputs"] = "smap: quarantined (truncated)\ngldas: not_found"
    item = build_item(day, assets, bbox=BBOX, geometry=GEOMETRY, provenance=provenance)
    assert item.properties["smflow:missing_inputs"] == ["smap: quarantined (truncated)",
                                                        "gldas: not_found"]


def test_multihash():
    digest = _sha("x")
    assert multihash_sha256(digest.upper()) == "1220" + digest
    with pytest.raises(ValueError):
        multihash_sha256("abc")


def test_collection_and_catalog(day):
    days = {day + dt.timedelta(days=n): f"s3://b/stac/items/smflow-daily-{day + dt.timedelta(days=n):%Y%m%d}.json"
            for n in (2, 0, 1)}
    collection = build_collection(days, bbox=BBOX, self_href="s3://b/stac/collections/smflow-daily.json",
                                  root_href="s3://b/stac/catalog.json")
    document = json.loads(to_json_bytes(collection))
    items = [link["href"] for link in document["links"] if link["rel"] == "item"]
    assert items == [days[d] for d in sorted(days)]
    assert document["extent"]["temporal"]["interval"] == [["2024-01-02T00:00:00Z",
                                                           "2024-01-04T23:59:59Z"]]
    assert pystac.Collection.from_dict(document).id == "smflow-daily"
    catalog = json.loads(to_json_bytes(build_catalog("s3://b/stac/collections/smflow-daily.json",
                                                     self_href="s3://b/stac/catalog.json")))
    assert [link["href"] for link in catalog["links"] if link["rel"] == "child"] == [
        "s3://b/stac/collections/smflow-daily.json"]


def test_public_hrefs_keep_the_s3_uri_as_alternate(day, provenance):
    from smflow.publish.stac import ALTERNATE_SCHEMA, asset_s3_uri

    base = "http://127.0.0.1:8333/sm-products/daily/2024/01/02/v0123/smflow_merged-sm_20240102.nc"
    uri = "s3://sm-products/daily/2024/01/02/v0123/smflow_merged-sm_20240102.nc"
    spec = AssetSpec(base, "application/netcdf", ("data",), _sha("a"), "Merged", 10, s3_href=uri)
    item = build_item(day, {"merged-sm": spec}, bbox=BBOX, geometry=GEOMETRY, provenance=provenance)
    asset = item.to_dict(transform_hrefs=False)["assets"]["merged-sm"]
    assert asset["href"] == base and asset["alternate"]["s3"]["href"] == uri
    assert ALTERNATE_SCHEMA in item.stac_extensions
    assert asset_s3_uri(asset) == uri
    assert asset_s3_uri({"href": uri}) == uri  # an item of the earlier s3:// form
    assert asset_s3_uri({"href": base}) == ""


def test_model_cards_from_the_registry_labels():
    from smflow.publish.publisher import model_cards

    cards = model_cards({
        "tc_merging_model": "tc_merging@champion v7 (run 0a1b2c)",
        "sm2rain_model": "models:/sm2rain/4",
        "smap_reconstruction_model": "none: no champion",
        "sm2rain_skill_status": "operational",
        "input_granules": ["x v1 (run y)"],
    })
    assert set(cards) == {"tc_merging_model", "sm2rain_model"}
    assert cards["tc_merging_model"] == {
        "type": "smflow-model-card", "name": "tc_merging", "version": "7", "run_id": "0a1b2c",
        "registry_uri": "models:/tc_merging/7",
        "registry": "MLflow model registry of the smflow deployment (not public)"}
    assert cards["sm2rain_model"]["skill_status"] == "operational"


def test_public_base_url_setting(monkeypatch, tmp_path):
    import dataclasses

    from smflow.config import Settings

    monkeypatch.setenv("SMFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("SMFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.delenv("SMFLOW_PUBLIC_BASE_URL", raising=False)
    settings = Settings.load()
    assert settings.products_url("stac/catalog.json") == "http://127.0.0.1:8333/sm-products/stac/catalog.json"
    assert dataclasses.replace(settings, products_bucket="b").products_url("k") == "http://127.0.0.1:8333/b/k"
    monkeypatch.setenv("SMFLOW_PUBLIC_BASE_URL", "https://data.example.org/sm-products/")
    assert Settings.load().products_url("index.html") == "https://data.example.org/sm-products/index.html"
