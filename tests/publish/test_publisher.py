"""Publishing against the real S3 server: layout, atomicity, idempotency, STAC last."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import pytest
import xarray as xr
from PIL import Image

import synthetic
from smflow.publish.publisher import (
    CATALOG_KEY,
    COLLECTION_KEY,
    CATALOGUE_PAGE_KEY,
    PublishError,
    Publisher,
    daily_key,
    day_version,
    item_key,
    published_assets,
)
from smflow.publish.stac import ALTERNATE_SCHEMA, MODEL_REL, asset_s3_uri
from smflow.s3 import list_keys

DAY_PREFIX = "daily/2024/01/02/"
NETCDF = ["merged-sm", "sm2rain-precip", "tc-diagnostics"]
PNG = ["soil_moisture", "soil_moisture_error_variance", "precipitation_amount", "snr_db_smap",
       "snr_db_era5_land", "snr_db_gldas"]
ASSETS = NETCDF + [f"quicklook-{v}" for v in PNG]


def _version(published) -> str:
    """The version prefix ``v...`` of a publication's assets (the one path segment after the day)."""
    versions = {key[len(DAY_PREFIX):].split("/")[0] for key in published.keys}
    assert len(versions) == 1, versions
    return versions.pop()[1:]


@pytest.fixture
def publisher(products_settings, s3_client):
    return Publisher(products_settings, s3=s3_client)


def _objects(s3, bucket: str) -> dict[str, tuple]:
    """key -> (sha256 metadata, ETag, size, LastModified) of every object in the bucket."""
    out = {}
    for key in list_keys(s3, bucket):
        head = s3.head_object(Bucket=bucket, Key=key)
        out[key] = (head["Metadata"].get("sha256"), head["ETag"], head["ContentLength"],
                    head["LastModified"])
    return out


def _body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_layout_and_content(publisher, s3_client, product, day, provenance):
    published = publisher.publish_day(product, day, provenance)
    bucket = publisher.bucket

    version = _version(published)
    # the version is the digest of the asset set's contents
    assert version == day_version({a: published.checksums[k] for a, k in zip(ASSETS, published.keys, strict=True)})
    expected_assets = [f"{DAY_PREFIX}v{version}/smflow_{n}_20240102.nc" for n in NETCDF] + [
        f"{DAY_PREFIX}v{version}/smflow_{v}_20240102.png" for v in PNG]
    assert list(published.keys) == expected_assets
    assert published.stac_key == "stac/items/smflow-daily-20240102.json" == item_key(day)
    assert daily_key(day, "merged-sm", "nc", version) == expected_assets[0]
    assert published_assets(s3_client, bucket, day) == dict(zip(ASSETS, expected_assets, strict=True))
    cards = ["models/smflow-sm2rain/v2.json", "models/smflow-tc-merging/v3.json"]
    assert list_keys(s3_client, bucket) == sorted(
        expected_assets + [published.stac_key, COLLECTION_KEY, CATALOG_KEY, CATALOGUE_PAGE_KEY, *cards])
    assert not published.unchanged
    assert list_keys(s3_client, bucket, "staging/") == []

    # every object's sha256 metadata is the sha256 of its bytes
    for key in list_keys(s3_client, bucket):
        body = _body(s3_client, bucket, key)
        head = s3_client.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest(), key
        if key in published.checksums:
            assert published.checksums[key] == head["Metadata"]["sha256"]

    merged = xr.load_dataset(io.BytesIO(_body(s3_client, bucket, expected_assets[0])),
                             engine="h5netcdf")
    assert merged.attrs["Conventions"] == "CF-1.8, ACDD-1.3"
    assert merged["soil_moisture"].attrs["units"] == "m3 m-3"
    assert s3_client.head_object(Bucket=bucket, Key=expected_assets[0])["ContentType"] == \
        "application/netcdf"
    for key in expected_assets[3:]:
        Image.open(io.BytesIO(_body(s3_client, bucket, key))).verify()
    assert json.loads(json.dumps(published.to_dict()))["stac_key"] == published.stac_key


def test_stac_item_links_assets_granules_and_models(publisher, s3_client, product, day,
                                                    provenance):
    published = publisher.publish_day(product, day, provenance)
    bucket = publisher.bucket
    item = json.loads(_body(s3_client, bucket, published.stac_key))

    # hrefs: the public HTTP URLs; the s3:// URI of each is its `s3` alternate
    base = publisher.settings.products_url()
    assert base == f"{publisher.settings.s3_endpoint_url}/{bucket}/"
    hrefs = {asset["href"]: asset for asset in item["assets"].values()}
    assert set(hrefs) == {base + key for key in published.keys}
    assert ALTERNATE_SCHEMA in item["stac_extensions"]
    for key in published.keys:
        asset = hrefs[base + key]
        assert asset["alternate"]["s3"]["href"] == asset_s3_uri(asset) == f"s3://{bucket}/{key}"
        body = _body(s3_client, bucket, key)
        assert asset["file:checksum"] == "1220" + hashlib.sha256(body).hexdigest()
        assert asset["file:size"] == len(body)
    assert item["assets"]["merged-sm"]["type"] == "application/netcdf"
    assert "soil_moisture [m3 m-3]" in item["assets"]["merged-sm"]["description"]
    assert item["assets"]["quicklook-snr_db_smap"]["type"] == "image/png"

    derived = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    assert derived == provenance["input_granules"]
    assert item["properties"]["smflow:tc_merging_model"] == provenance["tc_merging_model"]
    assert item["properties"]["smflow:sm2rain_model"] == provenance["sm2rain_model"]
    assert item["properties"]["proj:code"] == "EPSG:4326"
    assert item["bbox"] == [-156.05, 18.95, -155.05, 20.25]
    links = {link["rel"]: link["href"] for link in item["links"] if link["rel"] != "derived_from"}
    assert links["self"] == base + published.stac_key
    assert links["collection"] == base + COLLECTION_KEY
    # the model versions: one public card each, in the products bucket
    models = {link["title"]: link["href"] for link in item["links"] if link["rel"] == MODEL_REL}
    assert models == {"sm2rain_model: smflow-sm2rain v2": base + "models/smflow-sm2rain/v2.json",
                      "tc_merging_model: smflow-tc-merging v3": base + "models/smflow-tc-merging/v3.json"}
    card = json.loads(_body(s3_client, bucket, "models/smflow-tc-merging/v3.json"))
    assert (card["name"], card["version"], card["registry_uri"]) == ("smflow-tc-merging", "3",
                                                                     "models:/smflow-tc-merging/3")

    collection = json.loads(_body(s3_client, bucket, COLLECTION_KEY))
    assert [l["href"] for l in collection["links"] if l["rel"] == "item"] == [links["self"]]
    # item_assets describe every asset the items carry; summaries the fixed properties
    assert set(item["assets"]) <= set(collection["item_assets"]) == set(ASSETS)
    for key, asset in item["assets"].items():
        assert collection["item_assets"][key]["type"] == asset["type"]
        assert collection["item_assets"][key]["roles"] == asset["roles"]
    assert collection["summaries"]["proj:code"] == [item["properties"]["proj:code"]]
    assert collection["summaries"]["processing:level"] == [item["properties"]["processing:level"]]
    page = s3_client.get_object(Bucket=bucket, Key=CATALOGUE_PAGE_KEY)
    assert page["ContentType"].startswith("text/html") and b"stac/catalog.json" in page["Body"].read()
    catalog = json.loads(_body(s3_client, bucket, CATALOG_KEY))
    assert [l["href"] for l in catalog["links"] if l["rel"] == "child"] == [links["collection"]]


def test_same_day_twice_changes_nothing(publisher, s3_client, product, day, provenance):
    first = publisher.publish_day(product, day, provenance)
    before = _objects(s3_client, publisher.bucket)
    second = publisher.publish_day(synthetic.daily_product(day), day, dict(provenance))
    after = _objects(s3_client, publisher.bucket)

    assert second.unchanged and second.written == ()
    assert second.keys == first.keys and second.checksums == first.checksums
    # same keys, same sha256 and ETag, and not even rewritten (LastModified unchanged)
    assert after == before
    assert list_keys(s3_client, publisher.bucket, "staging/") == []


class _CommitWatchingClient:
    """The real client; after every write it reads the day's STAC item as a reader would and
    records whether every asset the item links exists with the item's checksum."""

    def __init__(self, client, bucket: str, day):
        self._client, self.bucket, self.day, self.views = client, bucket, day, []

    def _look(self):
        try:
            item = json.loads(self._client.get_object(Bucket=self.bucket, Key=item_key(self.day))["Body"].read())
        except self._client.exceptions.NoSuchKey:
            return
        prefix = f"s3://{self.bucket}/"
        complete = all(
            "1220" + hashlib.sha256(_body(self._client, self.bucket, asset_s3_uri(a)[len(prefix):])).hexdigest()
            == a["file:checksum"] for a in item["assets"].values())
        self.views.append((asset_s3_uri(item["assets"]["merged-sm"]), complete))

    def put_object(self, **kwargs):
        out = self._client.put_object(**kwargs)
        self._look()
        return out

    def copy_object(self, **kwargs):
        out = self._client.copy_object(**kwargs)
        self._look()
        return out

    def delete_object(self, **kwargs):
        out = self._client.delete_object(**kwargs)
        self._look()
        return out

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_changed_day_switches_atomically_to_a_new_version(products_settings, s3_client, product, day, provenance):
    """Readers starting from the STAC item see the old day or the new day, never a mix: the
    assets of a new version go under their own prefix and the item, written last, switches."""
    watcher = _CommitWatchingClient(s3_client, products_settings.products_bucket, day)
    publisher = Publisher(products_settings, s3=watcher)
    bucket = publisher.bucket
    first = publisher.publish_day(product, day, provenance)
    second = publisher.publish_day(synthetic.daily_product(day, seed=1, wetter=0.05), day, provenance)

    assert not second.unchanged and _version(second) != _version(first)
    for key in second.keys:
        assert s3_client.head_object(Bucket=bucket, Key=key)["Metadata"]["sha256"] == second.checksums[key]
    assert second.checksums[second.stac_key] != first.checksums[first.stac_key]
    item = json.loads(_body(s3_client, bucket, second.stac_key))
    assert item["assets"]["merged-sm"]["file:checksum"] == "1220" + second.checksums[second.keys[0]]
    assert published_assets(s3_client, bucket, day) == dict(zip(ASSETS, second.keys, strict=True))
    # every view a reader had during both publications was one complete version, first then second
    hrefs = [href for href, _ in watcher.views]
    assert all(complete for _, complete in watcher.views)
    assert {hrefs[0], hrefs[-1]} == {f"s3://{bucket}/{first.keys[0]}", f"s3://{bucket}/{second.keys[0]}"}
    assert hrefs.index(f"s3://{bucket}/{second.keys[0]}") > max(
        i for i, h in enumerate(hrefs) if h == f"s3://{bucket}/{first.keys[0]}")
    # the version replaced stays readable (a reader holding the previous item); older ones go
    assert all(s3_client.head_object(Bucket=bucket, Key=key) for key in first.keys)
    third = publisher.publish_day(synthetic.daily_product(day, seed=2), day, provenance)
    day_keys = set(list_keys(s3_client, bucket, DAY_PREFIX))
    assert day_keys == set(second.keys) | set(third.keys)
    # the collection did not change: same single item
    assert COLLECTION_KEY not in second.written and CATALOG_KEY not in second.written
    assert list_keys(s3_client, bucket, "staging/") == []


def test_collection_lists_every_published_day(publisher, s3_client, provenance):
    days = [dt.date(2024, 1, 3), dt.date(2024, 1, 1)]
    for day in days:
        publisher.publish_day(synthetic.daily_product(day), day, synthetic.provenance(day))
    collection = json.loads(_body(s3_client, publisher.bucket, COLLECTION_KEY))
    items = [l["href"] for l in collection["links"] if l["rel"] == "item"]
    assert items == [publisher.settings.products_url(item_key(d)) for d in sorted(days)]
    assert collection["extent"]["temporal"]["interval"] == [["2024-01-01T00:00:00Z",
                                                             "2024-01-03T23:59:59Z"]]


class _CorruptingClient:
    """The real client, except that uploads lose their last byte on the way (a bad transfer)."""

    def __init__(self, client):
        self._client = client

    def put_object(self, **kwargs):
        kwargs = {**kwargs, "Body": kwargs["Body"][:-1]}
        kwargs.pop("ContentMD5", None)  # as if the corruption happened after the MD5 check
        return self._client.put_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_failed_verification_keeps_the_published_object(publisher, products_settings, s3_client,
                                                        product, day, provenance):
    first = publisher.publish_day(product, day, provenance)
    before = _objects(s3_client, publisher.bucket)

    broken = Publisher(products_settings, s3=_CorruptingClient(s3_client))
    with pytest.raises(PublishError, match="failed verification.*left in place"):
        broken.publish_day(synthetic.daily_product(day, seed=1), day, provenance)

    assert _objects(s3_client, publisher.bucket) == before
    body = _body(s3_client, publisher.bucket, first.keys[0])
    assert hashlib.sha256(body).hexdigest() == first.checksums[first.keys[0]]
    assert list_keys(s3_client, publisher.bucket, "staging/") == []


def test_invalid_product_writes_nothing(publisher, s3_client, product, day, provenance):
    with pytest.raises(ValueError, match="lacks"):
        publisher.publish_day(product.drop_vars("precipitation_amount"), day, provenance)
    assert not _bucket_exists(s3_client, publisher.bucket) or not list_keys(s3_client,
                                                                             publisher.bucket)


def _bucket_exists(s3, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError:
        return False


def test_orphaned_staging_objects_are_swept_young_ones_kept(publisher, s3_client, product, day, provenance):
    """A staging object whose cleanup failed (S3 down at that moment) does not outlive the next publication."""
    import datetime as _dt

    publisher.publish_day(product, day, provenance)
    orphan = "staging/0123456789abcdef/daily/2018/06/02/smflow_merged-sm_20180602.nc"
    s3_client.put_object(Bucket=publisher.bucket, Key=orphan, Body=b"left by a publication that could not clean up")
    publisher.publish_day(product, day, provenance)  # young: may belong to a publication in flight
    assert list_keys(s3_client, publisher.bucket, "staging/") == [orphan]
    assert publisher.sweep_staging(older_than=_dt.timedelta(0)) == [orphan]
    assert list_keys(s3_client, publisher.bucket, "staging/") == []


def test_product_bytes_hold_no_host_path_or_wall_clock(publisher, s3_client, product, day, provenance):
    """Deterministic outputs: no temporary path, host name or time of the run in any published object
    (the same inputs give the same bytes, whoever publishes them and whenever)."""
    import socket
    import tempfile

    published = publisher.publish_day(product, day, provenance)
    today = dt.datetime.now(dt.timezone.utc).date()
    forbidden = {socket.gethostname(), tempfile.gettempdir() + "/", "smflow-publish-", today.isoformat(),
                 f"{today:%Y%m%d}", f"{today:%d %b %Y}"}

    def texts(key: str, body: bytes) -> list[str]:
        """The text a reader sees: JSON, netCDF attributes (global and per variable), PNG text chunks."""
        if key.endswith(".json"):
            return [body.decode()]
        if key.endswith(".png"):
            return [f"{k}={v}" for k, v in Image.open(io.BytesIO(body)).info.items()]
        ds = xr.open_dataset(io.BytesIO(body), engine="h5netcdf")
        return [f"{k}={v}" for var in [ds, *ds.variables.values()] for k, v in var.attrs.items()]

    for key in [*published.keys, published.stac_key, COLLECTION_KEY, CATALOG_KEY]:
        body = _body(s3_client, publisher.bucket, key)
        text = "\n".join(texts(key, body))
        assert text, key
        found = {f for f in forbidden if f in text} | {f for f in forbidden if len(f) >= 8 and f.encode() in body}
        assert not found, f"{key} holds {found}"


@pytest.mark.parametrize("policy", ["flag", "withhold"])
def test_an_experimental_rainfall_is_flagged_or_withheld_as_configured(publisher, s3_client, product, day,
                                                                        provenance, policy):
    """A SM2RAIN champion that does not beat its no-skill baseline: never published silently."""
    lineage = {**provenance, "sm2rain_skill_status": "experimental", "experimental_policy": policy,
               "sm2rain_skill": "median validation KGE -0.350 vs -0.300 of the no-skill baseline: does NOT beat it"}
    published = publisher.publish_day(product, day, lineage)
    item = json.loads(_body(s3_client, publisher.bucket, published.stac_key))
    assert item["properties"]["smflow:sm2rain_skill_status"] == "experimental"
    if policy == "withhold":
        assert "sm2rain-precip" not in item["assets"] and "quicklook-precipitation_amount" not in item["assets"]
        assert not [k for k in published.keys if "precip" in k]
        return
    rain = xr.load_dataset(io.BytesIO(_body(s3_client, publisher.bucket, asset_s3_uri(item["assets"]["sm2rain-precip"])
                                            .split("/", 3)[3])), engine="h5netcdf")
    assert rain.attrs["product_status"] == "experimental" and rain.attrs["title"].startswith("EXPERIMENTAL: ")
    assert "does NOT beat it" in rain.attrs["product_status_reason"]
    assert item["assets"]["sm2rain-precip"]["title"].startswith("EXPERIMENTAL: ")
    assert "(EXPERIMENTAL)" in item["assets"]["quicklook-precipitation_amount"]["title"]
    merged = xr.load_dataset(io.BytesIO(_body(s3_client, publisher.bucket, asset_s3_uri(item["assets"]["merged-sm"])
                                              .split("/", 3)[3])), engine="h5netcdf")
    assert merged.attrs["product_status"] == "operational"
