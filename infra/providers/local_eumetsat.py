"""A local EUMETSAT Data Store on 127.0.0.1 serving the real ASCAT L2 SSM products.

Speaks the subset of the Data Store APIs that :mod:`smflow.archive.eumetsat` uses: ``POST
/token`` (client credentials, basic auth, ``invalid_client`` ``401``), the OpenSearch JSON
search ``GET /data/search-products/1.0.0/os`` (``pi``, ``dtstart``, ``dtend``, ``bbox``, ``si``,
``c``; GeoJSON features with ``date``, ``productInformation.size`` [KB],
``extraInformation.md5``, ``links.data`` / ``links.sip-entries``) and the bearer-protected
download ``GET /data/download/1.0.0/collections/{collection}/products/{id}`` answering a zip
with ``Content-Disposition``.

The products are the real files of ``../shared/data/real/ascat_eumetsat_l2``: the netCDF 25 km
orbits and the BUFR 25 km orbit in ``EO:EUM:DAT:METOP:SOMO25``, the netCDF 12.5 km orbit in
``EO:EUM:DAT:METOP:SOMO12``. Each zip holds the real file, unchanged, with a fixed time stamp
so that its MD5 is stable. Sensing end times: from the BUFR name; for netCDF the start plus one
Metop orbit (101 min 40 s).

``damaged={product_id: "short"}`` drops the connection halfway through the zip (after a full
``Content-Length``); ``"corrupt"`` flips bytes in it (same length, MD5 no longer matches).
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from infra.providers.local_server import REAL_DATA, BaseHandler, Delivery, LocalHttpServer, _parse_bbox

ORBIT = timedelta(minutes=101, seconds=40)
_NC = re.compile(r"_(\d{14})_\d+_eps_o_\d+_ssm_l2\.nc$")
_BUFR = re.compile(r"-(\d{14})\.\d+Z-(\d{14})-")


def _t(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class StoreProduct:
    """One Data Store product: a real file, its collection and sensing period."""

    path: Path
    collection: str
    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        return self.path.name.rsplit(".", 1)[0]

    @cached_property
    def zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            info = zipfile.ZipInfo(self.path.name, date_time=self.start.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, self.path.read_bytes())
        return buffer.getvalue()


def eumetsat_catalog(root: str | Path = REAL_DATA) -> list[StoreProduct]:
    """The real ASCAT L2 SSM products in ``root/ascat_eumetsat_l2`` with their collections."""
    base = Path(root) / "ascat_eumetsat_l2"
    products = []
    for folder, collection in (("nc_25km", "EO:EUM:DAT:METOP:SOMO25"),
                               ("nc_12.5km", "EO:EUM:DAT:METOP:SOMO12")):
        for p in sorted((base / folder).glob("*.nc")):
            start = _t(_NC.search(p.name).group(1))
            products.append(StoreProduct(p, collection, start, start + ORBIT))
    for p in sorted((base / "bufr_25km").glob("*.bfr")):
        m = _BUFR.search(p.name)
        products.append(StoreProduct(p, "EO:EUM:DAT:METOP:SOMO25", _t(m.group(1)), _t(m.group(2))))
    return products


@dataclass
class EumetsatServer(LocalHttpServer):
    """The local Data Store; a context manager (see the module docstring).

    :param root: the real-data directory.
    :param consumer_key, consumer_secret: the one API key pair.
    :param expires_in: token lifetime [s].
    :param damaged: product id → ``"short"`` or ``"corrupt"``.
    """

    root: Path = REAL_DATA
    consumer_key: str = "consumer-key"
    consumer_secret: str = "consumer-secret"
    expires_in: int = 3600
    damaged: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.handler = _DataStoreHandler
        self.products = eumetsat_catalog(self.root)

    def feature(self, p: StoreProduct) -> dict:
        href = (f"{self.url}/data/download/1.0.0/collections/{quote(p.collection, safe='')}"
                f"/products/{quote(p.id, safe='')}")
        return {
            "type": "Feature", "id": p.id,
            "geometry": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90],
                                                              [-180, 90], [-180, -90]]]},
            "properties": {
                "identifier": p.id, "parentIdentifier": p.collection, "title": p.id,
                "date": f"{p.start:%Y-%m-%dT%H:%M:%S.000Z}/{p.end:%Y-%m-%dT%H:%M:%S.000Z}",
                "updated": f"{p.end:%Y-%m-%dT%H:%M:%S.000Z}",
                "productInformation": {"productType": p.collection.rsplit(":", 1)[-1],
                                       "size": max(1, round(len(p.zip_bytes) / 1024)),
                                       "timeliness": "NT"},
                "extraInformation": {"md5": hashlib.md5(p.zip_bytes).hexdigest()},
                "acquisitionInformation": [{"platform": {"platformShortName": "Metop"},
                                            "instrument": {"instrumentShortName": "ASCAT"}}],
                "links": {"data": [{"href": href, "title": "Product download", "mediaType": "application/zip"}],
                          "sip-entries": [{"href": f"{href}/entry?name={quote(p.path.name)}",
                                           "title": p.path.name, "mediaType": "application/octet-stream"}]},
            },
        }


class _DataStoreHandler(BaseHandler):
    archive: EumetsatServer

    def do_POST(self) -> None:
        a = self.archive
        a.requests.append(f"POST {self.path}")
        body = parse_qs(self._body().decode())
        if urlparse(self.path).path != "/token":
            return self._json(404, {"error": f"no route {self.path}"})
        if body.get("grant_type") != ["client_credentials"]:
            return self._json(400, {"error": "unsupported_grant_type"})
        if self._basic() != (a.consumer_key, a.consumer_secret):
            return self._json(401, {"error": "invalid_client",
                                    "error_description": "A valid OAuth client could not be found"})
        token = uuid.uuid4().hex
        a.tokens.add(token)
        self._json(200, {"access_token": token, "scope": "am_application_scope default",
                         "token_type": "Bearer", "expires_in": a.expires_in})

    def do_GET(self) -> None:
        a = self.archive
        a.requests.append(f"{self.command} {self.path}")
        url = urlparse(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if url.path == "/data/search-products/1.0.0/os":
            return self._search(parse_qs(url.query))
        if len(parts) == 7 and parts[:4] == ["data", "download", "1.0.0", "collections"] \
                and parts[5] == "products":
            return self._download(parts[4], parts[6])
        self._json(404, {"error": f"no route {url.path}"})

    def _search(self, query: dict[str, list[str]]) -> None:
        try:
            if query.get("format") != ["json"]:
                raise ValueError("only format=json is served here")
            if "pi" not in query:
                raise ValueError("pi (the collection id) is required")
            found = [p for p in self.archive.products if p.collection == query["pi"][0]]
            if "dtstart" in query:
                t0 = datetime.fromisoformat(query["dtstart"][0].replace("Z", "+00:00"))
                found = [p for p in found if p.end >= t0]
            if "dtend" in query:
                t1 = datetime.fromisoformat(query["dtend"][0].replace("Z", "+00:00"))
                found = [p for p in found if p.start <= t1]
            if "bbox" in query:
                _parse_bbox(query["bbox"][0])  # validated; the swaths are global
            si, c = int(query.get("si", ["0"])[0]), int(query.get("c", ["10"])[0])
            if not 0 < c <= 500 or si < 0:
                raise ValueError("c must be 1..500 and si >= 0")
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        found.sort(key=lambda p: p.start, reverse=True)  # the Data Store answers newest first
        page = found[si: si + c]
        self._json(200, {"type": "FeatureCollection", "totalResults": len(found),
                         "itemsPerPage": c, "features": [self.archive.feature(p) for p in page],
                         "properties": {"totalResults": len(found), "startIndex": si}})

    def _download(self, collection: str, product_id: str) -> None:
        a = self.archive
        auth = self.headers.get("Authorization", "")
        if not (auth.startswith("Bearer ") and auth[7:] in a.tokens):
            return self._json(401, {"error": "Invalid Credentials",
                                    "description": "Make sure you are passing a valid access token"})
        product = next((p for p in a.products if p.collection == collection and p.id == product_id), None)
        if product is None:
            return self._json(404, {"error": f"product {product_id} not found in {collection}"})
        self._deliver(Delivery.damaged(
            f"{product_id}.zip", product.zip_bytes, a.damaged.get(product_id), "application/zip",
            headers={"Content-Disposition": f'attachment; filename="{product_id}.zip"'}))
