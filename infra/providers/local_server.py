"""A local archive on 127.0.0.1 that speaks the real protocols, serving real files.

- CMR granule search: ``GET /search/granules.json`` and ``/search/granules.umm_json`` with
  ``short_name``, ``version``, ``temporal``, ``bounding_box``, ``page_size``, ``page_num``;
  ``CMR-Hits`` / ``CMR-Took`` headers; ``400 {"errors": [...]}`` on bad parameters.
- Data files: ``GET /data/{short_name}/{file}``; ``401`` with ``WWW-Authenticate`` unless the
  request carries ``Authorization: Bearer <token>`` (or basic ``user:password``).
- Copernicus CDS, the protocol of ``cdsapi``'s ``uid:key`` client: ``POST /api/resources/{dataset}``
  (basic auth) → ``{"state": "queued", "request_id": ...}``; ``GET /api/tasks/{id}`` →
  ``queued`` … ``completed`` with ``location``, ``content_length``, ``content_type``;
  ``GET /api/status.json``; ``GET /api/download/{id}/{file}``.
- Copernicus CDS, the new protocol (``ecmwf-datastores-client``, which ``cdsapi`` uses for a key
  without a colon; ``PRIVATE-TOKEN: <key>`` header): ``GET /api/catalogue/v1/messages``;
  ``GET /api/retrieve/v1/processes/{dataset}``; ``POST .../processes/{dataset}/execution``
  (``{"inputs": request}``) → ``201`` with a ``monitor`` link; ``GET /api/retrieve/v1/jobs/{id}``
  → ``accepted`` … ``successful`` with a ``results`` link; ``GET .../jobs/{id}/results`` →
  ``{"asset": {"value": {"href", "file:size", "type"}}}``; errors as ``{"title", "detail"}``.

Other archives have their own local servers in this package: ``local_ftp`` (H SAF FTP),
``local_eumetsat`` (EUMETSAT Data Store), ``local_catds`` (CATDS directory listings), and
``hawaii`` (the local stack's archive of the daily inputs, an :class:`ArchiveServer` whose
granules are cut from the bundled time series). They share :class:`LocalHttpServer` and
:class:`BaseHandler`.

Used by the archive-client tests (no Python mock of the archives) and the local stack; not part
of the installed package. For a demo, from the repository root::

    from infra.providers.local_server import ArchiveServer

    with ArchiveServer(token="t") as server:
        CmrClient(server.url, credentials=Credentials(token="t")).search("SPL2SMP")
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from smflow.config import REPO_ROOT, Settings

#: The real files served: ``../shared/data/real`` beside the checkout (``SMFLOW_SHARED_DATA``
#: overrides it; see :class:`smflow.config.Settings`).
REAL_DATA = Settings.load().shared_data_dir or REPO_ROOT.parent / "shared" / "data" / "real"


@dataclass(frozen=True)
class ArchivedFile:
    """One file the local archive serves, with the CMR metadata it is found by.

    ``filename`` is the name it is served under when it is not the name of ``path``;
    ``revision`` the CMR ``revision-id`` (grows when the provider re-ingests the granule).
    """

    path: Path
    short_name: str
    version: str
    start: datetime
    end: datetime
    bbox: tuple[float, float, float, float]  # W, S, E, N
    filename: str | None = None
    revision: int = 1

    @property
    def name(self) -> str:
        return self.filename or self.path.name


@dataclass(frozen=True)
class Delivery:
    """The answer to one download: the bytes sent and the size announced for them.

    ``size`` is what the archive's metadata announces (CMR ``SizeInBytes``, CDS ``file:size``).
    With ``cut``, ``Content-Length`` announces ``size`` too and the connection is closed after
    ``body``, as when a transfer is cut short; otherwise ``Content-Length`` is ``len(body)``.
    """

    name: str
    body: bytes
    size: int
    content_type: str = "application/octet-stream"
    cut: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def damaged(cls, name: str, body: bytes, how: str | None, content_type: str, *, cut: bool = True,
                headers: dict[str, str] | None = None) -> "Delivery":
        """``body`` sent intact (``how`` None), cut short at half its size (``"short"``; with
        ``cut=False`` the half is sent with a matching ``Content-Length``) or with bytes
        flipped (``"corrupt"``: same size, other checksum, see :func:`flip_bytes`)."""
        if how == "short":
            return cls(name, body[: len(body) // 2], len(body), content_type, cut, headers or {})
        if how == "corrupt":
            body = flip_bytes(body)
        elif how is not None:
            raise ValueError(f"damage must be 'short' or 'corrupt', got {how!r}")
        return cls(name, body, len(body), content_type, False, headers or {})


def flip_bytes(body: bytes, count: int = 64) -> bytes:
    """``body`` with ``count`` bytes in its middle inverted: same size, the format signature at
    its start intact, any checksum broken."""
    middle = len(body) // 2
    return body[:middle] + bytes(b ^ 0xFF for b in body[middle: middle + count]) + body[middle + count:]


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file ``path`` (memoised on its modification time and size)."""
    st = path.stat()
    return _sha256(str(path), st.st_mtime_ns, st.st_size)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def real_catalog(root: str | Path = REAL_DATA) -> list[ArchivedFile]:
    """The real NASA granules in ``../shared/data/real``, with their true CMR metadata.

    SMAP SPL2SMP half-orbits (2015-08-11; start from the file name, ~49 min each), GLDAS-2.1
    Noah 3-hourly (2016-01-01; instantaneous at the file-name hour, global land 60S..90N),
    MODIS MOD11A1 tile h14v09 (2019-11-01).
    """
    root = Path(root)
    files: list[ArchivedFile] = []
    for p in sorted((root / "smap_l2").glob("SMAP_L2_SM_P_*.h5")):
        t0 = datetime.strptime(p.name.split("_")[6], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        files.append(ArchivedFile(p, "SPL2SMP", "009", t0, t0 + timedelta(minutes=49),
                                  (-180.0, -85.0, 180.0, 85.0)))
    for p in sorted((root / "gldas_noah21").glob("GLDAS_NOAH025_3H.A*.nc4")):
        _, stamp, hhmm = p.name.split(".")[:3]
        t = datetime.strptime(stamp[1:] + hhmm, "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
        files.append(ArchivedFile(p, "GLDAS_NOAH025_3H", "2.1", t, t, (-180.0, -60.0, 180.0, 90.0)))
    modis = root / "modis_lst" / "MOD11A1.hdf"
    if modis.exists():
        files.append(ArchivedFile(modis, "MOD11A1", "061", _utc(2019, 11, 1),
                                  _utc(2019, 11, 1, 23, 59, 59), (-40.6, -10.0, -30.0, 0.0)))
    return files


#: The real ERA5 GRIB the local CDS hands out for every retrieve request.
ERA5_GRIB = REAL_DATA / "ecmwf_grib" / "era5-single-level-scalar-time.grib"


def _parse_temporal(value: str) -> tuple[datetime | None, datetime | None]:
    parts = value.split(",")
    if len(parts) < 2:
        raise ValueError(f"temporal must be 'start,end', got {value!r}")

    def one(s: str) -> datetime | None:
        s = s.strip()
        if not s:
            return None
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    return one(parts[0]), one(parts[1])


def _parse_bbox(value: str) -> tuple[float, float, float, float]:
    w, s, e, n = (float(x) for x in value.split(","))
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90):
        raise ValueError(f"bounding_box {value!r} is not W,S,E,N in degrees")
    return w, s, e, n


def _intersects(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


class BaseHandler(BaseHTTPRequestHandler):
    """Request handler helpers shared by the local archive servers (``archive`` is the server)."""

    archive: "LocalHttpServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # requests are recorded in ``archive.requests``, not printed
        pass

    def _deliver(self, delivery: Delivery) -> None:
        """Send ``delivery``; a ``cut`` one announces its full size and stops halfway."""
        if not delivery.cut:
            return self._send(200, delivery.body, delivery.content_type, delivery.headers)
        self.send_response(200)
        self.send_header("Content-Type", delivery.content_type)
        self.send_header("Content-Length", str(delivery.size))
        for k, v in delivery.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(delivery.body)
            self.wfile.flush()
        self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json;charset=utf-8", headers)

    def _basic(self) -> tuple[str, str] | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user, password

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_HEAD(self) -> None:
        self.do_GET()


class LocalHttpServer:
    """Start/stop of a threaded HTTP server on ``127.0.0.1`` (random port), as a context manager.

    Subclasses set :attr:`handler` (a :class:`BaseHandler`) and hold a ``requests`` list.
    """

    handler: type[BaseHandler]
    _httpd = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0):
        """Listen on ``127.0.0.1:port`` (0: a free port) and serve from a daemon thread."""
        server = self

        class Handler(self.handler):
            archive = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True,
                         name=type(self).__name__).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class _CdsJob:
    dataset: str
    request: dict
    polls: int = 0


@dataclass
class ArchiveServer(LocalHttpServer):
    """Threaded HTTP server on ``127.0.0.1`` (random port); a context manager.

    :param files: what the CMR side serves (default: :func:`real_catalog`).
    :param token: bearer token the file endpoint accepts.
    :param username, password: basic-auth pair the file endpoint also accepts.
    :param cds_key: ``"uid:key"`` the CDS side accepts (basic auth).
    :param cds_file: file a completed CDS request downloads (default: :data:`ERA5_GRIB`).
    :param cds_polls: task status polls answered ``running`` before ``completed``.
    :param cds_token: ``PRIVATE-TOKEN`` the new CDS protocol accepts (a key without a colon).
    :param cds_short: serve only half of :attr:`cds_file` (announcing its full size), as a
        download cut short would.
    """

    files: list[ArchivedFile] | None = None
    token: str = "test-token"
    username: str | None = None
    password: str | None = None
    cds_key: str = "12345:test-cds-key"
    cds_file: Path = ERA5_GRIB
    cds_polls: int = 0
    cds_token: str = "00112233-4455-6677-c899-aabbccddeeff"
    cds_short: bool = False
    requests: list[str] = field(default_factory=list)
    _jobs: dict[str, _CdsJob] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.handler = _Handler
        if self.files is None:
            self.files = real_catalog()

    @property
    def cds_url(self) -> str:
        return f"{self.url}/api"

    # -- CMR -------------------------------------------------------------------------------
    def data_url(self, f: ArchivedFile) -> str:
        return f"{self.url}/data/{f.short_name}/{f.name}"

    def umm(self, f: ArchivedFile) -> dict:
        digest = sha256_of(f.path)
        # Stable across processes (``hash()`` of a str is salted per process).
        concept = f"G{int(hashlib.sha256(f'{f.short_name}/{f.name}'.encode()).hexdigest(), 16) % 10**10:010d}-LOCAL"
        return {
            "meta": {"concept-id": concept, "provider-id": "LOCAL", "native-id": f.name,
                     "revision-id": f.revision},
            "umm": {
                "GranuleUR": f"{f.short_name}.{f.version}:{f.name}",
                "CollectionReference": {"ShortName": f.short_name, "Version": f.version},
                "TemporalExtent": {"RangeDateTime": {
                    "BeginningDateTime": f.start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "EndingDateTime": f.end.strftime("%Y-%m-%dT%H:%M:%S.000Z")}},
                "SpatialExtent": {"HorizontalSpatialDomain": {"Geometry": {"BoundingRectangles": [
                    {"WestBoundingCoordinate": f.bbox[0], "SouthBoundingCoordinate": f.bbox[1],
                     "EastBoundingCoordinate": f.bbox[2], "NorthBoundingCoordinate": f.bbox[3]}]}}},
                "DataGranule": {"ArchiveAndDistributionInformation": [{
                    "Name": f.name, "SizeInBytes": f.path.stat().st_size,
                    "Checksum": {"Value": digest, "Algorithm": "SHA-256"}}]},
                "RelatedUrls": [{"URL": self.data_url(f), "Type": "GET DATA"}],
            },
        }

    def legacy_json(self, f: ArchivedFile) -> dict:
        u = self.umm(f)
        return {
            "id": u["meta"]["concept-id"], "title": u["umm"]["GranuleUR"],
            "producer_granule_id": f.name, "dataset_id": f"{f.short_name} V{f.version}",
            "time_start": f.start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "time_end": f.end.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "granule_size": f"{f.path.stat().st_size / 1024**2:.4f}",
            "boxes": [f"{f.bbox[1]} {f.bbox[0]} {f.bbox[3]} {f.bbox[2]}"],
            "links": [{"rel": "http://esipfed.org/ns/fedsearch/1.1/data#", "href": self.data_url(f)}],
        }

    def search(self, query: dict[str, list[str]]) -> Sequence:
        """The hits of a CMR granule search, in CMR's order (:meth:`record` turns one into a file)."""
        names = query.get("short_name", [])
        found = [f for f in self.files if not names or f.short_name in names]
        if "version" in query:
            found = [f for f in found if f.version in query["version"]]
        for value in query.get("temporal", []):
            t0, t1 = _parse_temporal(value)
            found = [f for f in found if (t0 is None or f.end >= t0) and (t1 is None or f.start <= t1)]
        for value in query.get("bounding_box", []):
            box = _parse_bbox(value)
            found = [f for f in found if _intersects(f.bbox, box)]
        return sorted(found, key=lambda f: (f.start, f.name))

    def record(self, hit) -> ArchivedFile:
        """The file of one search hit (here the hits are the files themselves)."""
        return hit

    def lookup(self, short_name: str, name: str) -> ArchivedFile | None:
        """The file served at ``/data/{short_name}/{name}``, or None (404)."""
        return next((f for f in self.files if f.short_name == short_name and f.name == name), None)

    def delivery(self, f: ArchivedFile) -> Delivery:
        """What a download of ``f`` sends."""
        body = f.path.read_bytes()
        return Delivery(f.name, body, len(body))

    # -- CDS -------------------------------------------------------------------------------
    def cds_known(self, dataset: str) -> bool:
        """Whether ``dataset`` is a process of the retrieve API (any name is, here)."""
        return True

    def cds_refusal(self, dataset: str, request: dict) -> tuple[int, str, str] | None:
        """``(status, title, detail)`` when the CDS refuses ``request`` at submission, else None."""
        return None

    def cds_collection(self, dataset: str) -> dict | None:
        """The catalogue's STAC collection of ``dataset`` (``/api/catalogue/v1/collections/``), or None."""
        return None

    def cds_submit(self, dataset: str, request: dict) -> dict:
        rid = uuid.uuid4().hex
        self._jobs[rid] = _CdsJob(dataset, request)
        return {"state": "queued", "request_id": rid}

    def cds_delivery(self, rid: str) -> Delivery:
        """What the download of job ``rid`` sends (:attr:`cds_file`, half of it with :attr:`cds_short`)."""
        body = self.cds_file.read_bytes()
        return Delivery(self.cds_file.name, body[: len(body) // 2] if self.cds_short else body,
                        len(body), "application/x-grib")

    def cds_job(self, rid: str) -> dict | None:
        """The new protocol's job document (``accepted``, ``running`` …, then ``successful``)."""
        job = self._jobs.get(rid)
        if job is None:
            return None
        job.polls += 1
        status = "successful" if job.polls > self.cds_polls + 1 else ("accepted" if job.polls == 1 else "running")
        href = f"{self.url}/api/retrieve/v1/jobs/{rid}"
        return {"processID": job.dataset, "type": "process", "jobID": rid, "status": status,
                "created": "2026-01-01T00:00:00", "updated": "2026-01-01T00:00:00",
                "metadata": {"request": {"ids": job.request}},
                "links": [{"href": href, "rel": "self", "type": "application/json"},
                          {"href": f"{href}/results", "rel": "results"}]}

    def cds_task(self, rid: str) -> dict | None:
        job = self._jobs.get(rid)
        if job is None:
            return None
        job.polls += 1
        if job.polls <= self.cds_polls:
            return {"state": "running", "request_id": rid}
        out = self.cds_delivery(rid)
        return {"state": "completed", "request_id": rid,
                "location": f"/api/download/{rid}/{out.name}",
                "content_length": out.size, "content_type": out.content_type}


class _Handler(BaseHandler):
    archive: ArchiveServer

    def _file_authorised(self) -> bool:
        a = self.archive
        auth = self.headers.get("Authorization", "")
        if auth == f"Bearer {a.token}":
            return True
        return a.username is not None and self._basic() == (a.username, a.password)

    def _cds_authorised(self) -> bool:
        return self._basic() == tuple(self.archive.cds_key.split(":", 1))

    def _cds_token_ok(self) -> bool:
        return self.headers.get("PRIVATE-TOKEN") == self.archive.cds_token

    def _cds_refused(self) -> None:
        self._json(401, {"type": "authentication failed", "title": "Authentication failed",
                         "detail": "Authentication failed: the API key is not valid; copy it "
                                   "from your profile page.", "status": 401})

    # -- routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.archive.requests.append(f"{self.command} {self.path}")
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        try:
            if url.path in ("/search/granules.json", "/search/granules.umm_json"):
                return self._search(url.path.endswith("umm_json"), parse_qs(url.query))
            if len(parts) == 3 and parts[0] == "data":
                return self._file(parts[1], parts[2])
            if url.path == "/api/status.json":
                return self._json(200, {"info": [], "warning": []})
            if len(parts) == 3 and parts[:2] == ["api", "tasks"]:
                if not self._cds_authorised():
                    return self._json(401, {"message": "Authentication failed"})
                reply = self.archive.cds_task(parts[2])
                if reply is None:
                    return self._json(404, {"message": f"task {parts[2]} not found"})
                return self._json(200, reply)
            if len(parts) == 4 and parts[:2] == ["api", "download"] and parts[2] in self.archive._jobs:
                return self._deliver(self.archive.cds_delivery(parts[2]))
            if parts[:2] == ["api", "catalogue"] and parts[2:] == ["v1", "messages"]:
                return self._json(200, {"messages": []})
            if parts[:4] == ["api", "catalogue", "v1", "collections"] and len(parts) == 5:
                collection = self.archive.cds_collection(parts[4])
                if collection is None:
                    return self._json(404, {"title": "collection not found",
                                            "detail": f"collection {parts[4]} not found"})
                return self._json(200, collection)
            if parts[:4] == ["api", "retrieve", "v1", "processes"] and len(parts) == 5:
                if not self.archive.cds_known(parts[4]):
                    return self._process_not_found(parts[4])
                href = f"{self.archive.url}{url.path}"
                return self._json(200, {"id": parts[4], "links": [
                    {"href": f"{href}/execution", "rel": "execute"}]})
            if parts[:4] == ["api", "retrieve", "v1", "jobs"] and len(parts) in (5, 6):
                return self._cds_job(parts[4], results=len(parts) == 6 and parts[5] == "results")
        except ValueError as exc:
            return self._json(400, {"errors": [str(exc)]})
        self._json(404, {"errors": [f"no route {url.path}"]})

    def _cds_job(self, rid: str, *, results: bool) -> None:
        if not self._cds_token_ok():
            return self._cds_refused()
        if rid not in self.archive._jobs:
            return self._json(404, {"title": "job not found", "detail": f"job {rid} not found"})
        if not results:
            return self._json(200, self.archive.cds_job(rid))
        out = self.archive.cds_delivery(rid)
        return self._json(200, {"asset": {"value": {
            "type": out.content_type, "href": f"{self.archive.url}/api/download/{rid}/{out.name}",
            "file:size": out.size}}})

    def _process_not_found(self, dataset: str) -> None:
        self._json(404, {"type": "not found", "title": "process not found",
                         "detail": f"process {dataset} has not been found", "status": 404})

    def do_POST(self) -> None:
        self.archive.requests.append(f"{self.command} {self.path}")
        parts = [p for p in urlparse(self.path).path.split("/") if p]
        body = self._body()
        if parts[:4] == ["api", "retrieve", "v1", "processes"] and parts[5:] == ["execution"]:
            if not self._cds_token_ok():
                return self._cds_refused()
            try:
                inputs = json.loads(body or b"{}")["inputs"]
            except (json.JSONDecodeError, KeyError):
                return self._json(400, {"title": "invalid request", "detail": "body must be {\"inputs\": {...}}"})
            if not self.archive.cds_known(parts[4]):
                return self._process_not_found(parts[4])
            refusal = self.archive.cds_refusal(parts[4], inputs)
            if refusal is not None:
                status, title, detail = refusal
                return self._json(status, {"type": title, "title": title, "detail": detail, "status": status})
            rid = self.archive.cds_submit(parts[4], inputs)["request_id"]
            return self._json(201, {"processID": parts[4], "type": "process", "jobID": rid,
                                    "status": "accepted", "links": [
                                        {"href": f"{self.archive.url}/api/retrieve/v1/jobs/{rid}",
                                         "rel": "monitor", "type": "application/json"}]})
        if len(parts) == 3 and parts[:2] == ["api", "resources"]:
            if not self._cds_authorised():
                return self._json(401, {"message": "Authentication failed",
                                        "reason": "invalid UID or API key"})
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError:
                return self._json(400, {"message": "request body is not JSON"})
            refusal = (None if self.archive.cds_known(parts[2]) else
                       (404, "Resource not found", f"resource {parts[2]} does not exist"))
            refusal = refusal or self.archive.cds_refusal(parts[2], request)
            if refusal is not None:
                status, title, detail = refusal
                return self._json(status, {"message": title, "reason": detail})
            return self._json(202, self.archive.cds_submit(parts[2], request))
        self._json(404, {"message": f"no route {self.path}"})

    def _search(self, umm: bool, query: dict[str, list[str]]) -> None:
        page_size = int(query.get("page_size", ["10"])[0])
        page_num = int(query.get("page_num", ["1"])[0])
        if not 0 <= page_size <= 2000:
            raise ValueError("page_size must be a number between 0 and 2000")
        if page_num < 1:
            raise ValueError("page_num must be a number greater than or equal to 1")
        found = self.archive.search(query)
        page = [self.archive.record(hit) for hit in found[(page_num - 1) * page_size: page_num * page_size]]
        headers = {"CMR-Hits": str(len(found)), "CMR-Took": "1"}
        if umm:
            payload = {"hits": len(found), "took": 1, "items": [self.archive.umm(f) for f in page]}
        else:
            payload = {"feed": {"updated": datetime.now(timezone.utc).isoformat(), "id": self.path,
                                "title": "ECHO granule metadata",
                                "entry": [self.archive.legacy_json(f) for f in page]}}
        self._json(200, payload, headers)

    def _file(self, short_name: str, name: str) -> None:
        if not self._file_authorised():
            return self._send(401, b"Unauthorized", "text/plain",
                              {"WWW-Authenticate": 'Bearer realm="Earthdata Login"'})
        f = self.archive.lookup(short_name, name)
        if f is None:
            return self._send(404, b"Not Found", "text/plain")
        self._deliver(self.archive.delivery(f))
