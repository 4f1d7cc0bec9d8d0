"""The local stack's provider archives for the daily inputs, serving the bundled Hawaii sample.

:class:`HawaiiArchive` is an :class:`~infra.providers.local_server.ArchiveServer` (same routes,
same protocols) whose granules are not fixed files but one per product and UTC day, cut from the
bundled time series by :meth:`infra.archive_stand_in.ArchiveStandIn.write_granule` (native
layout, named :func:`smflow.landing.granule_filename`). Which archive serves which input comes
from the catalogue (the ``archive`` entry of each product of the ``daily_soil_moisture``
pipeline):

- NASA CMR (``client: cmr``; short name and version from :data:`smflow.archive.cmr.COLLECTIONS`):
  ``smap`` as ``SPL3SMP`` 009, ``gldas`` as ``GLDAS_NOAH025_3H`` 2.1. One UMM granule per day
  (``GranuleUR`` ``SPL3SMP.009:smap_20180601.nc``, ``TemporalExtent`` the day 00:00:00 ..
  23:59:59Z, size and SHA-256, ``meta.revision-id``), the file at ``/data/{short_name}/{file}``
  behind the bearer token.
- Copernicus CDS (``client: cds``; the dataset is the catalogue's collection):
  ``era5_land`` as ``reanalysis-era5-land``, ``c3s`` as ``satellite-soil-moisture``. Both CDS
  protocols; a job delivers the cut of the day its ``year`` / ``month`` / ``day`` name (one day
  per request). The catalogue collection (``GET /api/catalogue/v1/collections/{dataset}``) has
  the published days as its temporal extent.

What the archive "has" is set in-process (tests drive a server in a thread) or, for the stack's
process, over HTTP: ``POST /_standin/{action}`` with a JSON body of the method's arguments, from
127.0.0.1 and with the bearer token (:func:`control`). ``GET /_standin/state`` shows it.

=====================================  =======================================================
``publish_until(day, product=None)``   days after ``day`` are not published (yet): not found
                                       by search, outside the CDS extent, refused by the CDS
``withhold(product, day)``             a late granule: not published until ``release``
``reprocess(product, day)``            a new version: other bytes (``product_version = "R2"``,
                                       ``R3`` ...), new checksum, CMR ``revision-id`` + 1
``corrupt(product, day, mode)``        until ``heal(product, day)``: ``checksum`` (other bytes
                                       of the announced size), ``truncate`` (the transfer
                                       stops halfway), ``wrong_date`` (the next day's granule,
                                       metadata and contents, under this day's name)
``outage(n, status=503)``              the next ``n`` requests of any route answer ``status``
``rate_limit(n, retry_after=30)``      the next ``n`` searches / catalogue requests answer 429
                                       with ``Retry-After``
``prepare(start, end)``                cut a range of days now (days are otherwise cut on
                                       first use; both give the same bytes)
``reset()``                            everything published, nothing corrupt or withheld
=====================================  =======================================================

Cut files are cached under ``cache_dir`` (one folder per source-file fingerprint, so a changed
bundle is cut anew); equal days give equal bytes, in any process.

Run for the local stack (``infra/stack.py``, service ``providers``)::

    python -m infra.providers serve --port 8765 --cache-dir D --token-file F [--prepare START END]
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlparse

from infra.archive_stand_in import ArchiveStandIn
from infra.providers.local_server import (
    ArchivedFile,
    ArchiveServer,
    Delivery,
    _Handler,
    _intersects,
    _parse_bbox,
    _parse_temporal,
)
from smflow.archive.cmr import COLLECTIONS
from smflow.catalog import entry, pipeline
from smflow.dates import DayLike, as_date
from smflow.landing import granule_filename
from smflow.products import get_product

#: The inputs of the daily pipeline: the products the stand-in serves by default.
DAILY_INPUTS: tuple[str, ...] = tuple(pipeline("daily_soil_moisture").inputs)

Corruption = Literal["checksum", "truncate", "wrong_date"]
CORRUPTIONS: tuple[str, ...] = get_args(Corruption)

#: Control actions accepted by ``POST /_standin/{action}`` (methods of :class:`HawaiiArchive`).
ACTIONS = ("publish_until", "withhold", "release", "reprocess", "corrupt", "heal", "outage",
           "rate_limit", "prepare", "reset")

#: How each corruption damages the bytes sent (:meth:`Delivery.damaged`).
_DAMAGE = {"checksum": "corrupt", "truncate": "short"}
_CONTROL = "/_standin/"
_REQUEST_LOG_MAX = 10_000


@dataclass(frozen=True)
class Source:
    """Where the stand-in serves one product: CMR ``(short_name, version)`` or a CDS dataset."""

    product: str
    client: Literal["cmr", "cds"]
    short_name: str | None = None
    version: str | None = None
    dataset: str | None = None


def archive_source(product: str) -> Source:
    """The CMR collection or CDS dataset of ``product``, from its catalogue ``archive`` entry.

    :raises ValueError: when the product has no CMR or CDS archive in the catalogue.
    """
    for src in entry(product).archive:
        if src.client == "cmr" and src.collection in COLLECTIONS:
            short_name, version = COLLECTIONS[src.collection]
            return Source(product, "cmr", short_name=short_name, version=version)
        if src.client == "cds":
            return Source(product, "cds", dataset=src.collection)
    raise ValueError(f"{product} has no CMR or CDS archive in its catalogue entry "
                     "(smflow/catalog/products/<name>.yaml, key 'archive').")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _request_day(request: dict) -> date:
    """The one UTC day named by a CDS request's ``year`` / ``month`` / ``day``.

    :raises ValueError: when they are missing or name several days.
    """
    parts = []
    for key in ("year", "month", "day"):
        value = request.get(key)
        values = value if isinstance(value, list) else [value]
        if len(values) != 1 or values[0] in (None, ""):
            raise ValueError(f"this archive delivers one UTC day per request: '{key}' must be one "
                             f"value, got {value!r}; send one request per day.")
        parts.append(int(values[0]))
    return date(*parts)


def _source_fingerprint(files: list[Path]) -> str:
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    return hashlib.sha256(stamp.encode()).hexdigest()[:12]


@dataclass(eq=False)
class HawaiiArchive(ArchiveServer):
    """The provider archives of the daily inputs (CMR + CDS), serving the bundled Hawaii cuts.

    A context manager, as every local server (``with HawaiiArchive(...) as server``);
    ``start(port)`` listens on a given port. Arguments not listed are those of
    :class:`~infra.providers.local_server.ArchiveServer` (``token``: the Earthdata bearer
    token of the data files; ``cds_token``: the colon-less CDS key; ``cds_key``: ``uid:key`` of
    the legacy CDS protocol; ``cds_polls``; ``requests``: the request log).

    :param cache_dir: where cut granules are kept (default: a temporary directory, removed by
        :meth:`stop`).
    :param products: the products served (default :data:`DAILY_INPUTS`).
    :param source_dir: cell files root, as :class:`~infra.archive_stand_in.ArchiveStandIn`
        (default: the bundle, or ../shared for non-redistributable products).
    :param echo: print one line per request on stderr (the stack's log).
    """

    cache_dir: Path | None = None
    products: tuple[str, ...] = DAILY_INPUTS
    source_dir: Path | None = None
    echo: bool = False

    def __post_init__(self) -> None:
        self.handler = _HawaiiHandler
        self.files = []  # no fixed files: every granule is a cut of one day
        self.sources = {p: archive_source(p) for p in self.products}
        self._by_short_name = {s.short_name: s for s in self.sources.values() if s.client == "cmr"}
        self._by_dataset = {s.dataset: s for s in self.sources.values() if s.client == "cds"}
        self.stand_in = ArchiveStandIn(source_dir=self.source_dir)
        self._own_cache = self.cache_dir is None
        self.cache_dir = Path(self.cache_dir or tempfile.mkdtemp(prefix="smflow-providers-"))
        self._cut_lock = threading.RLock()  # netCDF/HDF5 is not thread-safe
        self._lock = threading.RLock()
        self._cache_roots: dict[str, Path] = {}
        self.reset()

    def stop(self) -> None:
        super().stop()
        if self._own_cache:
            import shutil

            shutil.rmtree(self.cache_dir, ignore_errors=True)

    # -- publication state ----------------------------------------------------------------------
    def reset(self) -> dict:
        """Everything in the coverage published, nothing withheld, reprocessed or corrupt."""
        with self._lock:
            self._until: dict[str | None, date | None] = {}
            self._withheld: set[tuple[str, date]] = set()
            self._revisions: dict[tuple[str, date], int] = {}
            self._corrupt: dict[tuple[str, date], str] = {}
            self._outage = [0, 503]
            self._rate_limit = [0, 30]
        return self.state()

    def _product(self, product: str) -> str:
        name = get_product(product).name
        if name not in self.sources:
            raise ValueError(f"{product!r} is not served here; the archive serves {sorted(self.sources)}.")
        return name

    def publish_until(self, day: DayLike | None, product: str | None = None) -> dict:
        """Publish nothing after ``day`` (None: up to the end of the coverage) for ``product``,
        or for every product without its own limit."""
        key = None if product is None else self._product(product)
        with self._lock:
            self._until[key] = None if day is None else as_date(day)
        return self.state()

    def published_until(self, product: str) -> date:
        """The last day published of ``product`` (its own limit, else the global one, at most
        the end of its coverage)."""
        name = self._product(product)
        last = self.coverage(name)[1]
        with self._lock:
            limit = self._until.get(name, self._until.get(None))
        return last if limit is None else min(last, limit)

    def coverage(self, product: str) -> tuple[date, date]:
        """First and last day of ``product`` in the source files."""
        with self._cut_lock:
            return self.stand_in.coverage(product)

    def extent(self, product: str) -> tuple[float, float, float, float]:
        """``(W, S, E, N)`` of ``product``'s locations: the bounding box of each of its granules."""
        with self._cut_lock:
            return self.stand_in.extent(product)

    def is_published(self, product: str, day: DayLike) -> bool:
        """Whether ``day`` of ``product`` is found by a search and delivered by a request."""
        name, d = self._product(product), as_date(day)
        with self._lock:
            withheld = (name, d) in self._withheld
        return not withheld and self.coverage(name)[0] <= d <= self.published_until(name)

    def withhold(self, product: str, day: DayLike) -> dict:
        """Hold ``day`` of ``product`` back (a late granule) until :meth:`release`."""
        with self._lock:
            self._withheld.add((self._product(product), as_date(day)))
        return self.state()

    def release(self, product: str, day: DayLike) -> dict:
        """Publish a granule held back by :meth:`withhold`."""
        with self._lock:
            self._withheld.discard((self._product(product), as_date(day)))
        return self.state()

    def revision(self, product: str, day: DayLike) -> int:
        """The granule's version: 1, + 1 per :meth:`reprocess` (the CMR ``revision-id``)."""
        with self._lock:
            return self._revisions.get((self._product(product), as_date(day)), 1)

    def reprocess(self, product: str, day: DayLike) -> dict:
        """Publish a new version of the granule: other bytes, other checksum, next revision."""
        key = (self._product(product), as_date(day))
        with self._lock:
            self._revisions[key] = self._revisions.get(key, 1) + 1
        return self.state()

    def corrupt(self, product: str, day: DayLike, mode: Corruption) -> dict:
        """Serve the granule damaged in ``mode`` (see the module docstring) until :meth:`heal`."""
        if mode not in CORRUPTIONS:
            raise ValueError(f"mode must be one of {CORRUPTIONS}, got {mode!r}.")
        with self._lock:
            self._corrupt[(self._product(product), as_date(day))] = mode
        return self.state()

    def heal(self, product: str, day: DayLike) -> dict:
        """Serve the granule intact again."""
        with self._lock:
            self._corrupt.pop((self._product(product), as_date(day)), None)
        return self.state()

    def outage(self, n: int, status: int = 503) -> dict:
        """Answer the next ``n`` requests (any route but the control) with HTTP ``status``."""
        with self._lock:
            self._outage = [int(n), int(status)]
        return self.state()

    def rate_limit(self, n: int, retry_after: float = 30) -> dict:
        """Answer the next ``n`` searches / catalogue requests 429 with ``Retry-After: retry_after``."""
        with self._lock:
            self._rate_limit = [int(n), retry_after]
        return self.state()

    def state(self) -> dict:
        """The publication state, as JSON."""
        products = {name: {"published_until": self.published_until(name).isoformat(),
                           "coverage": [d.isoformat() for d in self.coverage(name)]}
                    for name in self.sources}
        with self._lock:
            return {
                "products": products,
                "published_until": {key or "*": value and value.isoformat() for key, value in self._until.items()},
                "withheld": sorted([p, d.isoformat()] for p, d in self._withheld),
                "revisions": sorted([p, d.isoformat(), r] for (p, d), r in self._revisions.items()),
                "corrupt": sorted([p, d.isoformat(), m] for (p, d), m in self._corrupt.items()),
                "outage": {"remaining": self._outage[0], "status": self._outage[1]},
                "rate_limit": {"remaining": self._rate_limit[0], "retry_after": self._rate_limit[1]},
            }

    def gate(self, path: str) -> tuple[int, dict[str, str]] | None:
        """``(status, headers)`` when a simulated outage or rate limit answers this request."""
        with self._lock:
            if self._outage[0] > 0:
                self._outage[0] -= 1
                return self._outage[1], {}
            limited = path.startswith("/search/") or path.startswith("/api/catalogue/")
            if limited and self._rate_limit[0] > 0:
                self._rate_limit[0] -= 1
                return 429, {"Retry-After": f"{self._rate_limit[1]:g}"}
        return None

    # -- granules -------------------------------------------------------------------------------
    def _cache_root(self, product: str) -> Path:
        if product not in self._cache_roots:
            with self._cut_lock:
                files = self.stand_in.source_files(product)
            self._cache_roots[product] = self.cache_dir / product / _source_fingerprint(files)
        return self._cache_roots[product]

    def _cached(self, product: str, day: date, revision: int) -> Path:
        folder = self._cache_root(product) / ("" if revision == 1 else f"R{revision}")
        return folder / granule_filename(product, day)

    def granule_path(self, product: str, day: DayLike, revision: int = 1) -> Path:
        """The cut of ``day`` of ``product`` in version ``revision`` (cut now unless cached).

        :raises LookupError: when ``day`` is outside the product's coverage.
        """
        name, d = self._product(product), as_date(day)
        path = self._cached(name, d, revision)
        if path.is_file():
            return path
        with self._cut_lock:
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                # Written beside and renamed: a reader (or another process) never sees half a file.
                partial = path.with_name(f".{path.name}.{os.getpid()}.part")
                self.stand_in.write_granule(name, d, partial,
                                            product_version=None if revision == 1 else f"R{revision}")
                partial.replace(path)
        return path

    def prepare(self, start: DayLike, end: DayLike) -> dict:
        """Cut the first version of every day ``start .. end`` of every product now (one read of
        the cell files per product; days outside a product's coverage are skipped)."""
        d0, d1 = as_date(start), as_date(end)
        for name in self.sources:
            with self._cut_lock, tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
                for _, day, path in self.stand_in.write_range(name, d0, d1, tmp):
                    target = self._cached(name, day, 1)
                    if not target.is_file():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        path.replace(target)
        return self.state()

    def _content_day(self, product: str, day: date) -> date:
        """The day whose data a ``wrong_date`` granule of ``day`` holds: the next one (or the
        previous one at the end of the coverage)."""
        last = self.coverage(product)[1]
        return day + timedelta(days=1) if day < last else day - timedelta(days=1)

    def granule(self, product: str, day: DayLike) -> ArchivedFile:
        """The granule of ``day`` of ``product`` as the archive announces it (published or not)."""
        name, d = self._product(product), as_date(day)
        source = self.sources[name]
        with self._lock:
            mode = self._corrupt.get((name, d))
        revision = self.revision(name, d)
        content = self._content_day(name, d) if mode == "wrong_date" else d
        start = _day_start(content)
        return ArchivedFile(self.granule_path(name, content, revision), source.short_name or source.dataset,
                            source.version or "", start, start + timedelta(days=1, seconds=-1),
                            self.extent(name), filename=granule_filename(name, d),
                            revision=revision)

    def _days(self, product: str, query: dict[str, list[str]]) -> Iterator[date]:
        first, last = self.coverage(product)[0], self.published_until(product)
        for value in query.get("temporal", []):  # a day's granule spans 00:00:00 .. 23:59:59
            t0, t1 = _parse_temporal(value)
            if t0 is not None:
                first = max(first, t0.astimezone(timezone.utc).date())
            if t1 is not None:
                last = min(last, t1.astimezone(timezone.utc).date())
        day = first
        while day <= last:
            if self.is_published(product, day):
                yield day
            day += timedelta(days=1)

    def search(self, query: dict[str, list[str]]) -> list[tuple[str, date]]:
        """``(product, day)`` of the published granules matching a CMR query, by day."""
        names = query.get("short_name", [])
        hits = []
        for source in self._by_short_name.values():
            if names and source.short_name not in names:
                continue
            if "version" in query and source.version not in query["version"]:
                continue
            bbox = self.extent(source.product)
            if not all(_intersects(bbox, _parse_bbox(v)) for v in query.get("bounding_box", [])):
                continue
            hits.extend((source.product, day) for day in self._days(source.product, query))
        return sorted(hits, key=lambda hit: (hit[1], hit[0]))

    def record(self, hit: tuple[str, date]) -> ArchivedFile:
        return self.granule(*hit)

    def _parse_name(self, name: str) -> tuple[str, date] | None:
        """``(product, day)`` of a granule file name ``{product}_{YYYYMMDD}.nc``, or None."""
        stem, _, suffix = name.rpartition("_")
        if stem not in self.sources or not suffix.endswith(".nc"):
            return None
        try:
            return stem, datetime.strptime(suffix[:-3], "%Y%m%d").date()
        except ValueError:
            return None

    def lookup(self, short_name: str, name: str) -> ArchivedFile | None:
        source = self._by_short_name.get(short_name)
        if source is None:
            return None
        parsed = self._parse_name(name)
        if parsed is None or parsed[0] != source.product or not self.is_published(*parsed):
            return None
        return self.granule(*parsed)

    def delivery(self, f: ArchivedFile) -> Delivery:
        product, day = self._parse_name(f.name)
        with self._lock:
            mode = self._corrupt.get((product, day))
        return Delivery.damaged(f.name, f.path.read_bytes(), _DAMAGE.get(mode), "application/x-netcdf")

    # -- CDS ------------------------------------------------------------------------------------
    def cds_known(self, dataset: str) -> bool:
        return dataset in self._by_dataset

    def cds_refusal(self, dataset: str, request: dict) -> tuple[int, str, str] | None:
        product = self._by_dataset[dataset].product
        try:
            day = _request_day(request)
        except (ValueError, TypeError) as exc:
            return 400, "invalid request", str(exc)
        if not self.is_published(product, day):
            return (400, "invalid request",
                    "Request has not produced a valid combination of values, please check your "
                    f"selection. No data of {dataset} is available for {day}; the latest date "
                    f"available for this dataset is {self.published_until(product)}.")
        return None

    def cds_collection(self, dataset: str) -> dict | None:
        source = self._by_dataset.get(dataset)
        if source is None:
            return None
        first = self.coverage(source.product)[0]
        last = self.published_until(source.product)
        return {
            "type": "Collection", "stac_version": "1.0.0", "id": dataset,
            "title": entry(source.product).title,
            "description": f"Stand-in of the CDS dataset {dataset}: the bundled Hawaii sample of "
                           f"smflow product {source.product}.",
            "license": "other",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                       "temporal": {"interval": [[f"{first}T00:00:00Z", f"{last}T23:00:00Z"]]}},
            "links": [],
        }

    def cds_delivery(self, rid: str) -> Delivery:
        """The cut of the requested day. A ``truncate`` delivery sends half of it with a
        matching ``Content-Length`` (the CDS announces the full size in ``file:size``): a cut
        connection would make the CDS clients retry for ``sleep_max`` seconds per try."""
        job = self._jobs[rid]
        product, day = self._by_dataset[job.dataset].product, _request_day(job.request)
        with self._lock:
            mode = self._corrupt.get((product, day))
        content = self._content_day(product, day) if mode == "wrong_date" else day
        path = self.granule_path(product, content, self.revision(product, day))
        return Delivery.damaged(granule_filename(product, day), path.read_bytes(), _DAMAGE.get(mode),
                                "application/netcdf", cut=False)


class _HawaiiHandler(_Handler):
    archive: HawaiiArchive

    def log_message(self, fmt, *args):
        if self.archive.echo:  # the stack's log; the other servers only keep ``requests``
            BaseHTTPRequestHandler.log_message(self, fmt, *args)

    def _gated(self) -> bool:
        """Answer for an outage or a rate limit; True when answered."""
        path = urlparse(self.path).path
        log = self.archive.requests
        if len(log) > _REQUEST_LOG_MAX:  # the stack's server runs for days
            del log[: len(log) - _REQUEST_LOG_MAX // 2]
        gate = self.archive.gate(path)
        if gate is None:
            return False
        status, headers = gate
        log.append(f"{self.command} {self.path}")
        if self.command == "POST":
            self._body()  # read, so that the connection stays usable
        if status == 429:
            self._json(429, {"errors": ["Too many requests: slow down and retry after the "
                                        "Retry-After delay."]}, headers)
        else:
            self._send(status, f"{status} the archive is unavailable (simulated outage)\n".encode(),
                       "text/plain", headers)
        return True

    def do_GET(self) -> None:
        if self.path.startswith(_CONTROL):
            return self._control()
        if not self._gated():
            super().do_GET()

    def do_POST(self) -> None:
        if self.path.startswith(_CONTROL):
            return self._control()
        if not self._gated():
            super().do_POST()

    def _control(self) -> None:
        body = self._body() if self.command == "POST" else b""
        if self.client_address[0] != "127.0.0.1":
            return self._json(403, {"error": "the stand-in is controlled from 127.0.0.1 only"})
        if self.headers.get("Authorization", "") != f"Bearer {self.archive.token}":
            return self._json(401, {"error": "control needs 'Authorization: Bearer <token>' "
                                             "(the token of the stand-in's token file)"},
                              {"WWW-Authenticate": 'Bearer realm="stand-in control"'})
        action = urlparse(self.path).path[len(_CONTROL):].strip("/")
        if self.command == "GET" and action == "state":
            return self._json(200, self.archive.state())
        if self.command != "POST" or action not in ACTIONS:
            return self._json(404, {"error": f"no control action {action!r}; POST one of {list(ACTIONS)}"})
        try:
            params = json.loads(body or b"{}")
            if not isinstance(params, dict):
                raise ValueError("the body must be a JSON object of the action's arguments")
            return self._json(200, getattr(self.archive, action)(**params))
        except (TypeError, ValueError, KeyError, LookupError) as exc:
            return self._json(400, {"error": f"{action}: {exc}"})


def control(url: str, token: str, action: str, *, timeout: float = 60.0, **params) -> dict:
    """Drive a running stand-in: ``POST {url}/_standin/{action}`` with ``params`` as JSON.

    ``control(url, token, "withhold", product="smap", day="2018-06-03")``; ``action="state"``
    reads the state. Dates may be ``date`` objects.

    :returns: the publication state after the action.
    :raises urllib.error.HTTPError: when the stand-in refuses (the body says why).
    """
    data = None if action == "state" else json.dumps(params, default=str).encode()
    req = urllib.request.Request(f"{url.rstrip('/')}{_CONTROL}{action}", data=data,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass(frozen=True)
class Tokens:
    """The stand-in's credentials, as kept in its token file (JSON, mode 0600).

    :param token: Earthdata bearer token (data files, control).
    :param cds_token: colon-less CDS personal access token (new protocol).
    :param cds_key: ``uid:key`` of the legacy CDS protocol.
    """

    token: str
    cds_token: str
    cds_key: str = ""

    @classmethod
    def read(cls, path: str | Path) -> "Tokens":
        """Read a token file ``{"token": ..., "cds_token": ..., "cds_key": ...}``.

        :raises ValueError: when a key is missing, or the file is readable by others.
        """
        path = Path(path)
        if path.stat().st_mode & 0o077:
            raise ValueError(f"{path} holds secrets and is readable by others: chmod 600 {path}")
        values = json.loads(path.read_text())
        missing = [key for key in ("token", "cds_token") if not values.get(key)]
        if missing:
            raise ValueError(f"{path} lacks {missing}; it must hold {{\"token\": ..., \"cds_token\": ...}}.")
        return cls(values["token"], values["cds_token"],
                   values.get("cds_key") or f"0:{values['cds_token']}")
