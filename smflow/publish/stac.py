"""STAC metadata of the published days: one item per day, a static collection and root catalog.

The item says what a STAC client needs to find and trust a day's files: the day it covers
(``start_datetime``/``end_datetime``), where it is (bbox/geometry, EPSG:4326), every asset with
its media type, roles, size and checksum (file extension, multihash), and where it came from: the
input granules as ``derived_from`` links, the missing inputs, the model versions and the software
version (processing extension).

Everything serialises deterministically (:func:`to_json_bytes`): no ``created``/``updated``
wall-clock fields, fixed key order, so re-publishing an unchanged day rewrites nothing.

Remote JSON-schema validation (``item.validate()``) needs the network; the tests check structure
and a ``to_dict``/``from_dict`` round trip instead.
"""

from __future__ import annotations

import datetime as dt
import json
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pystac
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension

from smflow.publish.cf import REFERENCES, code_version, product_day

__all__ = [
    "COLLECTION_ID",
    "AssetSpec",
    "build_catalog",
    "build_collection",
    "build_item",
    "ALTERNATE_SCHEMA",
    "MODEL_REL",
    "asset_s3_uri",
    "item_id",
    "multihash_sha256",
    "s3_alternate",
    "to_json_bytes",
]

COLLECTION_ID: Final = "smflow-daily"
CATALOG_ID: Final = "smflow"

_PROCESSING_SCHEMA: Final = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
_SCIENTIFIC_SCHEMA: Final = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
ALTERNATE_SCHEMA: Final = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"
#: ``rel`` of an item's links to the public card of each model version that made it.
MODEL_REL: Final = "smflow:model"
_PUBLICATIONS: Final = (
    {"citation": REFERENCES[0]},
    {"citation": REFERENCES[1], "doi": "10.3390/rs14215355"},
    {"citation": REFERENCES[2], "doi": "10.1002/grl.50173"},
)
_LICENSE: Final = "CC-BY-4.0"
_KNOWN_PROVENANCE: Final = frozenset(
    {"tc_merging_model", "sm2rain_model", "sm2rain_parameters_source", "input_granules",
     "missing_inputs", "code_version", "input_granule_provenance"}
)


@dataclass(frozen=True)
class AssetSpec:
    """One published file as the STAC item describes it.

    Attributes
    ----------
    href : str
        Where the file is: its public HTTP(S) URL (any STAC client resolves it), or an ``s3://`` URI.
    media_type : str
        IANA media type, e.g. ``application/netcdf`` or ``image/png``.
    roles : tuple of str
        STAC asset roles, e.g. ``("data",)`` or ``("overview", "visual")``.
    checksum : str
        SHA-256 of the file, hex (written as a multihash in ``file:checksum``).
    title : str
        Human-readable title.
    size : int or None
        Size in bytes (``file:size``).
    description : str or None
        Longer description (variables, units).
    s3_href : str or None
        The same file as an ``s3://bucket/key`` URI, written as the ``s3`` alternate of the asset
        (alternate-assets extension): what S3 clients and :func:`asset_s3_uri` read.
    """

    href: str
    media_type: str
    roles: tuple[str, ...]
    checksum: str
    title: str
    size: int | None = None
    description: str | None = None
    extra_fields: Mapping[str, Any] = field(default_factory=dict)
    s3_href: str | None = None

    @classmethod
    def coerce(cls, value: AssetSpec | Sequence[Any]) -> AssetSpec:
        """Accept an :class:`AssetSpec` or a tuple ``(href, media_type, roles, checksum, title[,
        size])``."""
        if isinstance(value, AssetSpec):
            return value
        if not 5 <= len(value) <= 6:
            raise ValueError(
                "an asset is (href, media_type, roles, checksum, title[, size]); "
                f"got {len(value)} fields"
            )
        href, media_type, roles, checksum, title, *rest = value
        return cls(str(href), str(media_type), tuple(roles), str(checksum), str(title),
                   int(rest[0]) if rest else None)


def multihash_sha256(sha256_hex: str) -> str:
    """SHA-256 hex digest as a multihash (``1220`` + digest), the form ``file:checksum`` wants."""
    digest = sha256_hex.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a SHA-256 hex digest: {sha256_hex!r}")
    return "1220" + digest


def s3_alternate(s3_href: str) -> dict[str, Any]:
    """``alternate`` field of an asset whose file is also ``s3_href`` (alternate-assets extension)."""
    return {"s3": {"href": s3_href, "title": "S3 URI (the products bucket on the S3 endpoint; "
                                            "anonymous read, unsigned requests)"}}


def asset_s3_uri(asset: Mapping[str, Any]) -> str:
    """The ``s3://`` URI of an asset dictionary: its ``s3`` alternate, else its ``href`` (items
    written before the public hrefs had ``s3://`` hrefs); ``""`` when it has neither."""
    alternate = (asset.get("alternate") or {}).get("s3") or {}
    for href in (alternate.get("href"), asset.get("href")):
        if isinstance(href, str) and href.startswith("s3://"):
            return href
    return ""


def item_id(day: dt.date | str) -> str:
    """``smflow-daily-YYYYMMDD``."""
    return f"{COLLECTION_ID}-{product_day(day):%Y%m%d}"


def build_item(
    day: dt.date | str,
    assets: Mapping[str, AssetSpec | Sequence[Any]],
    *,
    bbox: Sequence[float],
    geometry: Mapping[str, Any],
    provenance: Mapping[str, Any],
    self_href: str | None = None,
    collection_href: str | None = None,
    root_href: str | None = None,
    proj_shape: Sequence[int] | None = None,
    model_cards: Mapping[str, tuple[str, str]] | None = None,
) -> pystac.Item:
    """The STAC item of one published day.

    Parameters
    ----------
    day : datetime.date or str
        Product day; the item covers ``day 00:00:00Z`` to ``day 23:59:59Z``.
    assets : mapping of str to AssetSpec or tuple
        Asset key -> ``AssetSpec`` or ``(href, media_type, roles, checksum_sha256_hex, title[,
        size_bytes])``.
    bbox : sequence of float
        ``[west, south, east, north]`` of the grid-cell edges, degrees (EPSG:4326).
    geometry : mapping
        GeoJSON geometry of the footprint.
    provenance : mapping
        ``tc_merging_model``, ``sm2rain_model``, ``input_granules``, ``missing_inputs``,
        ``sm2rain_parameters_source``, optional ``code_version`` (as for
        :func:`smflow.publish.cf.build_product_datasets`).
    self_href, collection_href, root_href : str, optional
        Absolute hrefs of the item, its collection and the root catalog (links are only written
        when given).
    proj_shape : sequence of int, optional
        ``[n_lat, n_lon]`` of the grid (projection extension).
    model_cards : mapping of str to (str, str), optional
        Provenance key (e.g. ``tc_merging_model``) -> ``(href, title)`` of the public card of the
        model version it names: one ``smflow:model`` link each.

    Returns
    -------
    pystac.Item
        Deterministic: no ``created``/``updated`` timestamps.
    """
    day = product_day(day)
    version = str(provenance.get("code_version") or code_version())
    granules = _entries(provenance.get("input_granules"))
    fetched = _granule_provenance(provenance.get("input_granule_provenance"))
    by_url = {record.get("url"): record for record in fetched}
    missing = _entries(provenance.get("missing_inputs"))
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    end = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)

    properties: dict[str, Any] = {
        "title": f"smflow daily soil moisture, SM2RAIN rainfall and TC diagnostics {day}",
        "description": "Merged surface soil moisture (triple-collocation least-squares merge of "
        "SMAP, ERA5-Land and GLDAS) with its error variance, SM2RAIN rainfall and the TC "
        "diagnostics of the parents, Big Island of Hawaii, 0.1 degree, one day."
        if not provenance.get("merged_parents") else
        f"Merged surface soil moisture (triple-collocation least-squares merge of "
        f"{provenance['merged_parents']}) with its error variance, SM2RAIN rainfall and the TC "
        f"diagnostics of the parents, one day"
        + (" (SYNTHETIC history inside: see smflow:smflow_synthetic)." if provenance.get("smflow_synthetic") else "."),
        "license": _LICENSE,
        "processing:level": "L4",
        "processing:software": {"smflow": version},
        "processing:version": version,
        "processing:lineage": "Input granules (derived_from links) regridded to the "
        f"{'pipeline' if provenance.get('merged_parents') else '0.1 degree'} "
        f"domain grid; merged with TC merging model {provenance.get('tc_merging_model')}; "
        f"rainfall by SM2RAIN model {provenance.get('sm2rain_model')}.",
        "smflow:tc_merging_model": _json_value(provenance.get("tc_merging_model")),
        "smflow:sm2rain_model": _json_value(provenance.get("sm2rain_model")),
        "smflow:sm2rain_parameters_source": _json_value(
            provenance.get("sm2rain_parameters_source")
        ),
        "smflow:input_granules": granules,
        "smflow:input_granule_provenance": fetched,
        "smflow:missing_inputs": missing,
        "sci:publications": [dict(p) for p in _PUBLICATIONS],
    }
    for key in sorted(set(provenance) - _KNOWN_PROVENANCE):  # further lineage, e.g. tc_window_days
        properties[f"smflow:{key}"] = _json_value(provenance[key])
    item = pystac.Item(
        id=item_id(day),
        geometry=dict(geometry),
        bbox=[float(v) for v in bbox],
        datetime=start,
        start_datetime=start,
        end_datetime=end,
        properties=properties,
        collection=COLLECTION_ID,
        stac_extensions=[_PROCESSING_SCHEMA, _SCIENTIFIC_SCHEMA],
    )
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    projection.code = "EPSG:4326"
    if proj_shape is not None:
        projection.shape = [int(n) for n in proj_shape]
    projection.bbox = [float(v) for v in bbox]

    FileExtension.add_to(item)
    specs = {key: AssetSpec.coerce(assets[key]) for key in sorted(assets)}
    if any(spec.s3_href for spec in specs.values()):
        item.stac_extensions.append(ALTERNATE_SCHEMA)
    for key, spec in specs.items():
        extra = dict(spec.extra_fields)
        if spec.s3_href:
            extra["alternate"] = s3_alternate(spec.s3_href)
        asset = pystac.Asset(
            href=spec.href,
            title=spec.title,
            description=spec.description,
            media_type=spec.media_type,
            roles=list(spec.roles),
            extra_fields=extra,
        )
        item.add_asset(key, asset)
        file_info = FileExtension.ext(asset)
        file_info.checksum = multihash_sha256(spec.checksum)
        if spec.size is not None:
            file_info.size = int(spec.size)

    for granule in granules:
        record = by_url.get(granule, {})
        extra = {f"smflow:{k}": record[k] for k in ("product", "provider", "collection", "version",
                                                   "granule_id", "revision", "landed") if record.get(k)}
        if record.get("checksum") and str(record.get("checksum_algorithm", "")).upper() in ("SHA-256", "SHA256"):
            extra["file:checksum"] = multihash_sha256(record["checksum"])
        item.add_link(
            pystac.Link(rel="derived_from", target=granule,
                        title=record.get("granule_id") or granule.rsplit("/", 1)[-1], extra_fields=extra)
        )
    for role in sorted(model_cards or {}):
        href, title = (model_cards or {})[role]
        item.add_link(pystac.Link(rel=MODEL_REL, target=href, media_type="application/json",
                                  title=f"{role}: {title}"))
    _add_structure_links(item, self_href, collection_href, root_href)
    return item


def build_collection(
    item_hrefs: Mapping[dt.date, str],
    *,
    bbox: Sequence[float],
    self_href: str | None = None,
    root_href: str | None = None,
    item_assets: Mapping[str, Mapping[str, Any]] | None = None,
    summaries: Mapping[str, Sequence[Any]] | None = None,
) -> pystac.Collection:
    """The static collection of all published days, with one ``item`` link per day, by date.

    The temporal extent spans the first to the last day; built from the full set of items each
    time, so it is the same whatever order the days were published in. ``item_assets`` (asset key
    -> title, type, roles, description: what every item carries, STAC 1.1 core) and ``summaries``
    (property -> the values the items take) are written when given.
    """
    days = sorted(item_hrefs)
    if days:
        interval = [
            dt.datetime.combine(days[0], dt.time(0, 0), tzinfo=dt.UTC),
            dt.datetime.combine(days[-1], dt.time(23, 59, 59), tzinfo=dt.UTC),
        ]
    else:
        interval = [None, None]
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="smflow daily soil moisture products (Big Island of Hawaii)",
        description="Daily merged surface soil moisture (TC least-squares merge of SMAP L3, "
        "ERA5-Land and GLDAS Noah), SM2RAIN rainfall and triple-collocation diagnostics as "
        "CF-1.8 netCDF files with quicklook PNGs, on a 0.1 degree grid.",
        extent=pystac.Extent(
            pystac.SpatialExtent([[float(v) for v in bbox]]),
            pystac.TemporalExtent([interval]),
        ),
        license=_LICENSE,
        keywords=["soil moisture", "rainfall", "SM2RAIN", "triple collocation", "SMAP",
                  "ERA5-Land", "GLDAS", "Hawaii"],
        providers=[pystac.Provider(name="smflow", roles=[pystac.ProviderRole.PROCESSOR,
                                                         pystac.ProviderRole.HOST])],
        stac_extensions=[_SCIENTIFIC_SCHEMA],
        summaries=pystac.Summaries({key: list(values) for key, values in sorted((summaries or {}).items())}),
        extra_fields={"sci:publications": [dict(p) for p in _PUBLICATIONS],
                      **({"item_assets": {key: dict(item_assets[key]) for key in sorted(item_assets)}}
                         if item_assets else {})},
    )
    collection.clear_links()
    if root_href:
        collection.add_link(pystac.Link(rel="root", target=root_href, media_type="application/json"))
        collection.add_link(pystac.Link(rel="parent", target=root_href, media_type="application/json"))
    if self_href:
        collection.add_link(pystac.Link(rel="self", target=self_href, media_type="application/json"))
    for day in days:
        collection.add_link(
            pystac.Link(rel="item", target=item_hrefs[day], media_type="application/geo+json",
                        title=item_id(day))
        )
    return collection


def build_catalog(collection_href: str, *, self_href: str | None = None) -> pystac.Catalog:
    """The root catalog: one child, the daily collection."""
    catalog = pystac.Catalog(
        id=CATALOG_ID,
        title="smflow products",
        description="Products of the smflow operational soil-moisture system.",
    )
    catalog.clear_links()
    if self_href:
        catalog.add_link(pystac.Link(rel="root", target=self_href, media_type="application/json"))
        catalog.add_link(pystac.Link(rel="self", target=self_href, media_type="application/json"))
    catalog.add_link(
        pystac.Link(rel="child", target=collection_href, media_type="application/json",
                    title=COLLECTION_ID)
    )
    return catalog


def to_json_bytes(stac_object: pystac.STACObject) -> bytes:
    """Deterministic JSON of a STAC object: hrefs as given, fixed key order, trailing newline."""
    document = stac_object.to_dict(include_self_link=True, transform_hrefs=False)
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _add_structure_links(
    item: pystac.Item,
    self_href: str | None,
    collection_href: str | None,
    root_href: str | None,
) -> None:
    if root_href:
        item.add_link(pystac.Link(rel="root", target=root_href, media_type="application/json"))
    if collection_href:
        item.add_link(
            pystac.Link(rel="collection", target=collection_href, media_type="application/json")
        )
        item.add_link(pystac.Link(rel="parent", target=collection_href, media_type="application/json"))
    if self_href:
        item.add_link(pystac.Link(rel="self", target=self_href, media_type="application/geo+json"))


def _entries(value: Any) -> list[str]:
    """A list provenance value (list, or text with one entry per line) as a list of str."""
    if value is None:
        return []
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    return [str(v) for v in value]


def _json_value(value: Any) -> Any:
    """A provenance value as JSON (mappings/lists kept, everything else as text)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in sorted(value.items())}
    if isinstance(value, Iterable):
        return [_json_value(v) for v in value]
    return str(value)


def _granule_provenance(value: Any) -> list[dict[str, Any]]:
    """The fetched granules' provenance records (a JSON list, as the lineage carries it, or a list)."""
    if not value:
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return [dict(record) for record in value]
