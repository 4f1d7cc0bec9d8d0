"""Atomic, idempotent publishing of one day's products to the products bucket.

Layout (``s3://{products_bucket}/``)::

    daily/{YYYY}/{MM}/{DD}/v{version}/smflow_{name}_{YYYYMMDD}.nc        name: merged-sm,
                                                                    sm2rain-precip, tc-diagnostics
    daily/{YYYY}/{MM}/{DD}/v{version}/smflow_{quicklook}_{YYYYMMDD}.png  quicklook: soil_moisture, ...
    stac/items/smflow-daily-{YYYYMMDD}.json       the day's STAC item: the commit point of the day
    stac/collections/smflow-daily.json            static collection (links every item)
    stac/catalog.json                             root catalog
    models/{name}/v{version}.json                 public card of each model version a day used
    index.html                                    the catalogue page (lists the days, opens an item)
    staging/{uuid}/...                            transient, empty after every call

The bucket is read anonymously (``docs/security.md``): STAC hrefs and links are the public HTTP(S)
URLs of the objects (:meth:`smflow.config.Settings.products_url`), every asset keeping its
``s3://`` URI as its ``s3`` alternate (alternate-assets extension).

A day switches atomically: its assets are written under a version prefix that is a digest of their
contents (:func:`day_version`), and the STAC item (a stable key, one PUT) is written last and is the
commit point. A reader who starts from the item (STAC clients, :func:`published_assets`) sees the
old day or the new day, never a mix. The version an item replaces stays readable (a reader holding
the previous item can still fetch its files) until the day is published once more; older versions
are deleted then (:meth:`Publisher.sweep_superseded`). Identical contents give the same version,
so a re-run writes nothing.

Every object is placed the same way (:meth:`Publisher.place`):

1. if the final key already holds an object with the same SHA-256 (``x-amz-meta-sha256``), skip
   it: a re-run of an unchanged day writes nothing;
2. upload to ``staging/{uuid}/{final key}`` with the SHA-256 in the object metadata;
3. HEAD it (size, metadata) and GET it back, and compare the SHA-256 of what the server returns;
4. server-side copy to the final key, check the final object (size, metadata, SHA-256 of a GET);
5. delete the staging object (also when a step fails); a staging object whose delete failed too
   (S3 down at that moment) is swept by the next publication once it is
   :data:`STALE_STAGING` old (:meth:`Publisher.sweep_staging`).

A failed verification in step 3 raises :class:`PublishError` before the final key is touched, so
the previously published object stays as it was. The day's STAC item is placed after all its
assets, and the collection after the item, so a reader never follows a link to a missing file.
The bytes themselves are reproducible (see :mod:`smflow.publish.cf`,
:mod:`smflow.publish.quicklook`, :mod:`smflow.publish.stac`), which is what makes step 1 work.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import xarray as xr

from smflow import s3 as s3mod
from smflow.config import Settings
from smflow.publish.cf import (
    PRODUCT_NAMES,
    build_product_datasets,
    product_day,
    resolve_provenance,
    to_netcdf_bytes,
)
from smflow.publish.quicklook import QUICKLOOKS, render_day_quicklooks
from smflow.publish.stac import (
    COLLECTION_ID,
    AssetSpec,
    asset_s3_uri,
    build_catalog,
    build_collection,
    build_item,
    to_json_bytes,
)

__all__ = [
    "CATALOGUE_PAGE_KEY",
    "CATALOG_KEY",
    "COLLECTION_KEY",
    "STAGING_PREFIX",
    "PublishError",
    "PublishedDay",
    "Publisher",
    "catalogue_page",
    "catalogue_page_url",
    "daily_key",
    "day_prefix",
    "day_version",
    "item_assets_definition",
    "item_key",
    "model_card_key",
    "model_cards",
    "published_assets",
]

log = logging.getLogger(__name__)

STAGING_PREFIX: Final = "staging/"
#: Age after which a staging object is an orphan of a publication that could not clean up (a
#: publication in flight holds its staging objects for seconds).
STALE_STAGING: Final = dt.timedelta(hours=1)
ITEMS_PREFIX: Final = "stac/items/"
COLLECTION_KEY: Final = f"stac/collections/{COLLECTION_ID}.json"
CATALOG_KEY: Final = "stac/catalog.json"
MODELS_PREFIX: Final = "models/"
#: The catalogue page (``smflow/publish/catalogue.html``), at the bucket root.
CATALOGUE_PAGE_KEY: Final = "index.html"
_HTML: Final = "text/html; charset=utf-8"
#: A registry label as the products record it: ``name[@alias] vN (run R)`` or ``models:/name/N``.
_MODEL_LABEL: Final = re.compile(
    r"^(?:models:/(?P<uri_name>[\w.-]+)/(?P<uri_version>\d+)"
    r"|(?P<name>[\w.-]+)(?:@[\w-]+)? v(?P<version>\d+)(?: \(run (?P<run>\w+)\))?)$")

_NETCDF: Final = "application/netcdf"
_PNG: Final = "image/png"
_GEOJSON: Final = "application/geo+json"
_JSON: Final = "application/json"
_ITEM_KEY_PATTERN: Final = re.compile(rf"^{ITEMS_PREFIX}{COLLECTION_ID}-(\d{{8}})\.json$")

_NETCDF_TITLES: Final = {
    "merged-sm": "Merged surface soil moisture with TC error variance (CF-1.8 netCDF)",
    "sm2rain-precip": "SM2RAIN daily rainfall (CF-1.8 netCDF)",
    "tc-diagnostics": "Triple-collocation diagnostics of SMAP, ERA5-Land, GLDAS (CF-1.8 netCDF)",
}


class PublishError(RuntimeError):
    """An object could not be placed; the previously published object under its key is intact."""


def day_prefix(day: dt.date | str) -> str:
    """``daily/YYYY/MM/DD/``: every version of the day's assets lies under it."""
    return f"daily/{product_day(day):%Y/%m/%d}/"


def daily_key(day: dt.date | str, name: str, extension: str, version: str) -> str:
    """``daily/YYYY/MM/DD/v{version}/smflow_{name}_{YYYYMMDD}.{extension}``."""
    return f"{day_prefix(day)}v{version}/{_filename(day, name, extension)}"


def _filename(day: dt.date | str, name: str, extension: str) -> str:
    return f"smflow_{name}_{product_day(day):%Y%m%d}.{extension}"


def day_version(checksums: Mapping[str, str]) -> str:
    """Version of a day's asset set: the first 16 hex digits of the SHA-256 of its ``name:sha256``
    lines (sorted). Same contents, same version: a re-run of an unchanged day writes nothing."""
    lines = "\n".join(f"{name}:{checksums[name]}" for name in sorted(checksums))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def published_assets(s3: Any, bucket: str, day: dt.date | str, *, key: str | None = None) -> dict[str, str]:
    """Keys of the day's published assets (asset name -> key), read from its STAC item.

    The item is the commit point of a day (module docstring): resolving the assets through it
    gives one consistent version. ``key`` names another item than the day's coarse one (e.g. the
    0.01 deg item of :mod:`smflow.downscaling.daily`).

    Raises
    ------
    FileNotFoundError
        The day has no STAC item in ``bucket`` (not published).
    """
    import json

    key = key or item_key(day)
    try:
        item = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        raise FileNotFoundError(f"s3://{bucket}/{key}: day {product_day(day)} is not published") from None
    prefix = f"s3://{bucket}/"
    uris = {name: asset_s3_uri(asset) for name, asset in item["assets"].items()}
    return {name: uri[len(prefix):] for name, uri in uris.items() if uri.startswith(prefix)}


def catalogue_page_url(settings: Settings) -> str:
    """Public address of the catalogue page (anonymous; lists the days, opens an item)."""
    return settings.products_url(CATALOGUE_PAGE_KEY)


def model_card_key(name: str, version: str) -> str:
    """``models/{name}/v{version}.json``: the public card of a registered model version."""
    return f"{MODELS_PREFIX}{name}/v{version}.json"


def model_cards(lineage: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Provenance key -> public card of the model version it names (registry labels only).

    A card says what a reader outside may know of a model version: its registry name, version,
    training run and registry URI (the registry itself is private). Only facts fixed for the
    version are written (no alias: it moves), so the card of a version never changes.
    """
    cards: dict[str, dict[str, Any]] = {}
    for role in sorted(lineage):
        if not (role.endswith("_model") or role == "member_models"):
            continue
        value = lineage[role]
        labels = [value] if isinstance(value, str) else (
            [value[k] for k in sorted(value)] if isinstance(value, Mapping)
            else list(value) if isinstance(value, list | tuple) else [])
        for n, label in enumerate(labels):
            match = _MODEL_LABEL.match(str(label).strip())
            if not match:
                continue
            name = match.group("name") or match.group("uri_name")
            version = match.group("version") or match.group("uri_version")
            card = {"type": "smflow-model-card", "name": name, "version": version,
                    "registry_uri": f"models:/{name}/{version}",
                    "registry": "MLflow model registry of the smflow deployment (not public)"}
            if match.group("run"):
                card["run_id"] = match.group("run")
            if role == "sm2rain_model":
                for key in ("sm2rain_parameters_source", "sm2rain_skill_status", "sm2rain_skill",
                            "sm2rain_variant"):
                    if lineage.get(key):
                        card[key.removeprefix("sm2rain_")] = str(lineage[key])
            cards[role if len(labels) == 1 else f"{role}[{n}]"] = card
    return cards


def item_assets_definition() -> dict[str, dict[str, Any]]:
    """The collection's ``item_assets``: every asset a day's item may carry (the rainfall file and
    map are absent on a day whose experimental rainfall is withheld)."""
    assets = {name: {"title": _NETCDF_TITLES[name], "type": _NETCDF, "roles": ["data"]}
              for name in PRODUCT_NAMES}
    for spec in QUICKLOOKS:
        assets[f"quicklook-{spec.name}"] = {"title": f"Quicklook: {spec.title} [{spec.units}]",
                                            "type": _PNG, "roles": ["overview", "visual"]}
    return assets


def catalogue_page() -> bytes:
    """The catalogue page's bytes (``smflow/publish/catalogue.html``)."""
    from importlib.resources import files

    return files("smflow.publish").joinpath("catalogue.html").read_bytes()


def item_key(day: dt.date | str) -> str:
    """``stac/items/smflow-daily-YYYYMMDD.json``."""
    return f"{ITEMS_PREFIX}{COLLECTION_ID}-{product_day(day):%Y%m%d}.json"


@dataclass(frozen=True)
class PublishedDay:
    """What :meth:`Publisher.publish_day` placed: small, so it can travel through XCom.

    Attributes
    ----------
    day : datetime.date
        Product day.
    bucket : str
        Products bucket.
    keys : tuple of str
        Final keys of the day's assets (netCDF files, then quicklooks).
    checksums : mapping of str to str
        SHA-256 (hex) per key, the assets and the STAC item.
    stac_key : str
        Key of the day's STAC item (placed after every asset).
    unchanged : bool
        True when every object (assets, item, collection, catalog) was already published with the
        same content: nothing was written.
    written : tuple of str
        Keys this call (re)wrote.
    """

    day: dt.date
    bucket: str
    keys: tuple[str, ...]
    checksums: Mapping[str, str]
    stac_key: str
    unchanged: bool
    written: tuple[str, ...] = field(default=())

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for XCom / logs)."""
        return {
            "day": self.day.isoformat(),
            "bucket": self.bucket,
            "keys": list(self.keys),
            "checksums": dict(self.checksums),
            "stac_key": self.stac_key,
            "unchanged": self.unchanged,
            "written": list(self.written),
        }


class Publisher:
    """Publishes daily products to ``settings.products_bucket``.

    :param settings: deployment settings (default: :meth:`Settings.load`).
    :param s3: a boto3 S3 client (default: :func:`smflow.s3.client` for ``settings``).
    """

    def __init__(self, settings: Settings | None = None, s3: Any = None) -> None:
        self.settings = settings or Settings.load()
        self.s3 = s3 if s3 is not None else s3mod.client(self.settings)
        self.bucket = self.settings.products_bucket

    # ------------------------------------------------------------------ public API

    def publish_day(
        self, product: xr.Dataset, day: dt.date | str, provenance: Mapping[str, Any]
    ) -> PublishedDay:
        """Publish one day: three CF netCDF files, the quicklooks, the STAC item, the collection.

        :param product: the daily product dataset (docs/DESIGN.md contract).
        :param day: product day.
        :param provenance: lineage (``tc_merging_model``, ``sm2rain_model``, ``input_granules``,
            ``missing_inputs``, ``sm2rain_parameters_source``, optional ``code_version``).
        :return: the keys, checksums and whether anything changed.
        :raises PublishError: when an object fails verification (nothing published is lost).
        :raises ValueError: when the product breaks the contract (nothing is written).
        """
        day = product_day(day)
        lineage = resolve_provenance(product, provenance)
        # Everything is rendered before the first upload: a bad product writes nothing.
        datasets = build_product_datasets(product, day, provenance=lineage)
        files: list[tuple[str, str, bytes, str, tuple[str, ...], str, str]] = []
        for name in PRODUCT_NAMES:
            ds = datasets[name]
            files.append(
                (name, _filename(day, name, "nc"), to_netcdf_bytes(ds), _NETCDF, ("data",),
                 f"EXPERIMENTAL: {_NETCDF_TITLES[name]}" if ds.attrs.get("product_status") == "experimental"
                 else _NETCDF_TITLES[name], _describe(ds))
            )
        fields = xr.merge(
            [ds.drop_vars(["crs", *[v for v in ds.data_vars if str(v).endswith("_bnds")]])
             for ds in datasets.values()],
            combine_attrs="drop",
        )
        # A rainfall whose champion does not beat its no-skill baseline: flagged or withheld (config).
        experimental = lineage.get("sm2rain_skill_status") == "experimental"
        withhold = experimental and lineage.get("experimental_policy") == "withhold"
        if withhold:
            log.warning("%s: SM2RAIN rainfall withheld (experimental: %s)", day, lineage.get("sm2rain_skill"))
            files = [f for f in files if f[0] != "sm2rain-precip"]
        images = render_day_quicklooks(fields, domain=_domain_of(product),
                                       experimental={"precipitation_amount"} if experimental else set())
        for spec in QUICKLOOKS:
            if (withhold and spec.variable == "precipitation_amount") or spec.name not in images:
                continue
            scale = (f"colour scale adapted to the day from {spec.vmin:g} (printed on the map)" if spec.adaptive
                     else f"colour range {spec.vmin:g} to {spec.vmax:g} {spec.units}")
            files.append(
                (f"quicklook-{spec.name}", _filename(day, spec.name, "png"), images[spec.name],
                 _PNG, ("overview", "visual"),
                 f"Quicklook: {spec.title}{' (EXPERIMENTAL)' if experimental and spec.variable == 'precipitation_amount' else ''} [{spec.units}]",
                 f"Map of {spec.variable}"
                 + (f" of {spec.source}" if spec.source else "")
                 + f", {scale}; coastline from the GLOBE 30\" land mask; dark grey: no value on land; "
                 "hatched: off land.")
            )

        # The version prefix of this asset set (a digest of the contents), then the final keys.
        version = day_version({asset: s3mod.sha256_hex(body) for asset, _, body, *_ in files})
        files = [(asset, f"{day_prefix(day)}v{version}/{name}", *rest) for asset, name, *rest in files]

        s3mod.ensure_bucket(self.s3, self.bucket)
        self.sweep_staging()
        written: list[str] = []
        checksums: dict[str, str] = {}
        assets: dict[str, AssetSpec] = {}
        for asset_key, key, body, media_type, roles, title, description in files:
            sha256, changed = self.place(key, body, media_type)
            checksums[key] = sha256
            written += [key] if changed else []
            assets[asset_key] = AssetSpec(
                href=self.href(key), media_type=media_type, roles=roles, checksum=sha256,
                title=title, size=len(body), description=description, s3_href=self._uri(key),
            )
        cards = {}
        for role, card in model_cards(lineage).items():
            key = model_card_key(card["name"], card["version"])
            written += [key] if self.place(key, to_card_bytes(card), _JSON)[1] else []
            cards[role] = (self.href(key), f"{card['name']} v{card['version']}")

        bbox, geometry, shape = _footprint(datasets["merged-sm"])
        item = build_item(
            day, assets, bbox=bbox, geometry=geometry, provenance=lineage,
            self_href=self.href(item_key(day)),
            collection_href=self.href(COLLECTION_KEY), root_href=self.href(CATALOG_KEY),
            proj_shape=shape, model_cards=cards,
        )
        # The commit point: one PUT of the item switches readers to this version.
        stac_key = item_key(day)
        previous = self._published_version(day)
        sha256, changed = self.place(stac_key, to_json_bytes(item), _GEOJSON)
        checksums[stac_key] = sha256
        written += [stac_key] if changed else []
        if changed:  # the day switched: drop the versions older than the one just replaced
            self.sweep_superseded(day, {version} | ({previous} if previous else set()))

        written += self._update_catalog(bbox)
        published = PublishedDay(
            day=day,
            bucket=self.bucket,
            keys=tuple(key for _, key, *_ in files),
            checksums=checksums,
            stac_key=stac_key,
            unchanged=not written,
            written=tuple(written),
        )
        log.info("published %s to s3://%s: %d of %d objects written", day, self.bucket,
                 len(written), len(files) + len(cards) + 4)  # + item, collection, catalog, page
        return published

    def place(self, key: str, body: bytes, content_type: str) -> tuple[str, bool]:
        """Place ``body`` under ``key`` atomically; skip it when it is already there.

        :return: ``(sha256_hex, written)``; ``written`` is False when the final object already had
            this content.
        :raises PublishError: when the staged or the final object does not verify.
        """
        sha256 = s3mod.sha256_hex(body)
        if self._stored_sha256(key) == sha256:
            return sha256, False

        staging_key = f"{STAGING_PREFIX}{uuid.uuid4().hex}/{key}"
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=staging_key,
                Body=body,
                ContentType=content_type,
                ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode("ascii"),
                Metadata={"sha256": sha256},
            )
            # Until this passes, the final key has not been touched.
            self._verify(staging_key, sha256, len(body))
            self.s3.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": staging_key},
                MetadataDirective="COPY",
            )
            self._verify(key, sha256, len(body))
        finally:
            self._delete_quietly(staging_key)
        return sha256, True

    def withdraw_day(self, day: dt.date | str) -> list[str]:
        """Take a published day out of the catalogue: its STAC item first (readers stop finding
        it), then every version of its assets; the collection is rebuilt. Model cards stay (other
        days may link them). Returns the deleted keys; ``[]`` when the day was not published.
        """
        import json

        stac_key = item_key(day)
        if self._head(stac_key) is None:
            return []
        self.s3.delete_object(Bucket=self.bucket, Key=stac_key)
        deleted = [stac_key, *self.sweep_superseded(day, set())]
        collection = json.loads(self.s3.get_object(Bucket=self.bucket, Key=COLLECTION_KEY)["Body"].read())
        self._update_catalog(collection["extent"]["spatial"]["bbox"][0])
        log.info("withdrew %s from s3://%s (%d objects deleted)", product_day(day), self.bucket, len(deleted))
        return deleted

    def sweep_superseded(self, day: dt.date | str, keep: set[str]) -> list[str]:
        """Delete the day's assets of every version not in ``keep`` (versions, without the ``v``).

        :meth:`publish_day` keeps the current version and the one it replaced: a reader who
        fetched the previous STAC item a moment ago can still read the files it links, until the
        day is published once more. Returns the deleted keys.
        """
        prefix = day_prefix(day)
        stale = [key for key in s3mod.list_keys(self.s3, self.bucket, prefix)
                 if key[len(prefix):].split("/", 1)[0][1:] not in keep]
        for key in stale:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        if stale:
            log.info("deleted %d assets of superseded versions of %s", len(stale), product_day(day))
        return stale

    def sweep_staging(self, older_than: dt.timedelta = STALE_STAGING) -> list[str]:
        """Delete staging objects older than ``older_than`` (orphans of failed cleanups); returns their keys."""
        stale = s3mod.delete_older_than(self.s3, self.bucket, STAGING_PREFIX, older_than)
        if stale:
            log.warning("swept %d orphaned staging objects from s3://%s/%s", len(stale), self.bucket, STAGING_PREFIX)
        return stale

    # ------------------------------------------------------------------ internals

    def _published_version(self, day: dt.date) -> str | None:
        """Version of the day's assets its current STAC item links (None: not published or an
        item of the unversioned layout)."""
        try:
            keys = published_assets(self.s3, self.bucket, day)
        except FileNotFoundError:
            return None
        prefix = day_prefix(day)
        versions = {key[len(prefix):].split("/", 1)[0] for key in keys.values() if key.startswith(prefix)}
        return next(iter(versions))[1:] if len(versions) == 1 and next(iter(versions)).startswith("v") else None

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def href(self, key: str) -> str:
        """Public HTTP(S) URL of ``key`` (what STAC hrefs and links say)."""
        return self.settings.products_url(key)

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _stored_sha256(self, key: str) -> str | None:
        """SHA-256 of the object under ``key`` (None if absent): metadata, else of its bytes."""
        head = self._head(key)
        if head is None:
            return None
        recorded = head.get("Metadata", {}).get("sha256")
        if recorded:
            return recorded
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return s3mod.sha256_hex(body)

    def _verify(self, key: str, sha256: str, size: int) -> None:
        head = self._head(key)
        if head is None:
            raise PublishError(f"s3://{self.bucket}/{key} is missing right after it was written")
        problems = []
        if head.get("ContentLength") != size:
            problems.append(f"size {head.get('ContentLength')} != {size}")
        recorded = head.get("Metadata", {}).get("sha256")
        if recorded != sha256:
            problems.append(f"metadata sha256 {recorded} != {sha256}")
        returned = s3mod.sha256_hex(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        if returned != sha256:
            problems.append(f"content sha256 {returned} != {sha256}")
        if problems:
            raise PublishError(
                f"s3://{self.bucket}/{key} failed verification ({'; '.join(problems)}); the "
                "previously published object was left in place. Re-run the task; if it repeats, "
                "check the S3 server's health and free space."
            )

    def _delete_quietly(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except Exception:  # noqa: BLE001 - cleanup must not hide the original error
            log.warning("could not delete staging object s3://%s/%s", self.bucket, key,
                        exc_info=True)

    def _update_catalog(self, bbox: list[float]) -> list[str]:
        """Rebuild the collection from the items present and place it, the root catalog and the
        catalogue page.

        Built from a listing, not by editing the previous collection: the result depends only on
        which items exist, so it is idempotent and heals itself after an interrupted run.
        """
        item_hrefs: dict[dt.date, str] = {}
        for key in s3mod.list_keys(self.s3, self.bucket, ITEMS_PREFIX):
            match = _ITEM_KEY_PATTERN.match(key)
            if match:
                item_hrefs[dt.datetime.strptime(match.group(1), "%Y%m%d").date()] = self.href(key)
        collection = build_collection(
            item_hrefs, bbox=bbox, self_href=self.href(COLLECTION_KEY),
            root_href=self.href(CATALOG_KEY), item_assets=item_assets_definition(),
            summaries=_SUMMARIES,
        )
        catalog = build_catalog(self.href(COLLECTION_KEY), self_href=self.href(CATALOG_KEY))
        written = []
        for key, body, media_type in (
            (COLLECTION_KEY, to_json_bytes(collection), _JSON),
            (CATALOG_KEY, to_json_bytes(catalog), _JSON),
            (CATALOGUE_PAGE_KEY, catalogue_page(), _HTML),
        ):
            if self.place(key, body, media_type)[1]:
                written.append(key)
        return written


#: The collection's summaries: the values every item's properties take (fixed by the product).
_SUMMARIES: Final = {
    "proj:code": ["EPSG:4326"],
    "processing:level": ["L4"],
    "smflow:parents": ["ERA5-Land", "GLDAS Noah 2.1", "SMAP L3"],
}


def to_card_bytes(card: Mapping[str, Any]) -> bytes:
    """Deterministic JSON of a model card (sorted keys, trailing newline)."""
    import json

    return (json.dumps(dict(card), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _domain_of(product: xr.Dataset):
    """The product's domain grid (its ``domain`` attribute, else the default domain); None when the
    domain is unknown here (the maps are then drawn without land mask and coastline)."""
    from smflow.domain import DEFAULT_DOMAIN, load_domain

    try:
        return load_domain(str(product.attrs.get("domain") or DEFAULT_DOMAIN))
    except FileNotFoundError:
        return None


def _describe(ds: xr.Dataset) -> str:
    """``variable [units]`` of every data variable, for the asset description."""
    parts = []
    for name, var in ds.data_vars.items():
        if name == "crs" or str(name).endswith("_bnds"):
            continue
        units = var.attrs.get("units")
        parts.append(f"{name} [{units}]" if units else f"{name} (flag)")
    return "Variables: " + ", ".join(parts) + "."


def _footprint(ds: xr.Dataset) -> tuple[list[float], dict[str, Any], list[int]]:
    """bbox (cell edges), GeoJSON polygon and [n_lat, n_lon] of a product dataset."""
    west, east = float(ds["lon_bnds"].min()), float(ds["lon_bnds"].max())
    south, north = float(ds["lat_bnds"].min()), float(ds["lat_bnds"].max())
    bbox = [round(v, 6) for v in (west, south, east, north)]
    west, south, east, north = bbox
    geometry = {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }
    return bbox, geometry, [int(ds.sizes["lat"]), int(ds.sizes["lon"])]
