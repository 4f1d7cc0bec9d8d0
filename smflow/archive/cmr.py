"""NASA Earthdata: granule search in the Common Metadata Repository (CMR) and download.

Search uses CMR's REST granule search, ``GET {cmr}/search/granules.umm_json`` with the query
parameters ``short_name``, ``version``, ``provider``, ``temporal=start,end`` (ISO 8601, UTC),
``bounding_box=W,S,E,N``, ``page_size`` (≤ 2000) and ``page_num``; the number of matches is in
the ``CMR-Hits`` header. UMM-JSON (not ``granules.json``) is used because it carries the file
sizes and checksums (``DataGranule.ArchiveAndDistributionInformation``) that downloads are
verified against. Data URLs are the ``RelatedUrls`` of type ``GET DATA``.

Downloads send the Earthdata Login bearer token (``Authorization: Bearer ...``; a user token
from urs.earthdata.nasa.gov) or HTTP basic auth, write to ``<name>.part`` and rename only after
the size and checksum check, so a half-written file never sits under the real name.

Why not ``earthaccess``: it logs in against the fixed Earthdata Login hosts at import/login
time, pulls in fsspec/s3fs/pqdm for what is here one ``GET``, and cannot be pointed at a local
CMR and file server for hermetic tests without patching its internals. The protocol subset used
here is small and is tested against ``infra/providers/local_server.py``, which speaks it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import requests

from smflow.archive.base import (ArchiveError, CredentialsError, ProviderUnavailable, check_availability,
                                 day_bounds, save_response)
from smflow.archive.credentials import Credentials, connection_host, resolve

log = logging.getLogger(__name__)

#: The operational CMR.
CMR_URL = "https://cmr.earthdata.nasa.gov"
MAX_PAGE_SIZE = 2000

#: Archive facts of the NASA inputs: CMR short name and version per smflow product.
COLLECTIONS: dict[str, tuple[str, str]] = {
    "smap_l2": ("SPL2SMP", "009"),
    "smap": ("SPL3SMP", "009"),
    "gldas": ("GLDAS_NOAH025_3H", "2.1"),
    "modis_lst": ("MOD11A1", "061"),
}

BBox = tuple[float, float, float, float]

__all__ = ["ArchiveError", "CmrClient", "Granule", "COLLECTIONS", "CMR_URL"]


@dataclass(frozen=True)
class Granule:
    """One granule found in CMR (small: passes through XCom via :meth:`to_dict`).

    Attributes
    ----------
    concept_id : str
        CMR concept id (``G...-PROVIDER``).
    name : str
        ``GranuleUR``.
    start, end : datetime
        Temporal extent (UTC).
    urls : tuple of str
        ``GET DATA`` URLs.
    size : int or None
        File size [bytes] when CMR gives it.
    checksum, checksum_algorithm : str or None
        File checksum and its algorithm (``SHA-256``, ``MD5``) when CMR gives them.
    collection, collection_version : str or None
        ``CollectionReference`` (short name, version) the granule belongs to.
    revision : str or None
        CMR ``revision-id``: it grows when the provider re-ingests (reprocesses) the granule.
    """

    concept_id: str
    name: str
    start: datetime
    end: datetime
    urls: tuple[str, ...]
    size: int | None = None
    checksum: str | None = None
    checksum_algorithm: str | None = None
    collection: str | None = None
    collection_version: str | None = None
    revision: str | None = None

    @property
    def filename(self) -> str:
        return self.urls[0].rsplit("/", 1)[-1] if self.urls else self.name

    def to_dict(self) -> dict:
        return {"concept_id": self.concept_id, "name": self.name, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "urls": list(self.urls), "size": self.size,
                "checksum": self.checksum, "checksum_algorithm": self.checksum_algorithm,
                "collection": self.collection, "collection_version": self.collection_version,
                "revision": self.revision}


_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _granule_from_umm(item: dict) -> Granule:
    umm, meta = item["umm"], item.get("meta", {})
    rng = umm.get("TemporalExtent", {}).get("RangeDateTime", {})
    start = _parse_time(rng["BeginningDateTime"])
    end = _parse_time(rng.get("EndingDateTime") or rng["BeginningDateTime"])
    urls = tuple(u["URL"] for u in umm.get("RelatedUrls", []) if u.get("Type") == "GET DATA")
    size = checksum = algorithm = None
    infos = umm.get("DataGranule", {}).get("ArchiveAndDistributionInformation", [])
    if infos:
        info = infos[0]
        if "SizeInBytes" in info:
            size = int(info["SizeInBytes"])
        elif "Size" in info:
            size = int(round(float(info["Size"]) * _SIZE_UNITS.get(info.get("SizeUnit", "B"), 1)))
        if info.get("Checksum"):
            checksum, algorithm = info["Checksum"]["Value"], info["Checksum"]["Algorithm"]
    ref = umm.get("CollectionReference", {})
    revision = meta.get("revision-id")
    return Granule(meta.get("concept-id", umm.get("GranuleUR", "")), umm.get("GranuleUR", ""),
                   start, end, urls, size, checksum, algorithm,
                   collection=ref.get("ShortName") or ref.get("EntryTitle"), collection_version=ref.get("Version"),
                   revision=None if revision is None else str(revision))


def _iso(value: date | datetime, *, end: bool) -> str:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(23, 59, 59) if end else time(0, 0, 0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CmrClient:
    """Search CMR for granules and download them.

    :param cmr_url: CMR root (default: the ``host`` of connection ``conn_id``, env
        ``SMFLOW_CMR_URL``, or :data:`CMR_URL`).
    :param credentials: Earthdata credentials (default: Airflow connection ``conn_id`` if given,
        else env ``EARTHDATA_TOKEN`` or ``EARTHDATA_USERNAME``/``EARTHDATA_PASSWORD``).
    :param conn_id: Airflow connection holding the Earthdata token (password) or login/password.
    :param timeout: HTTP timeout [s].
    :param session: a ``requests.Session`` to reuse.
    """

    def __init__(
        self,
        cmr_url: str | None = None,
        *,
        credentials: Credentials | None = None,
        conn_id: str | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        self.cmr_url = (cmr_url or connection_host(conn_id) or os.environ.get("SMFLOW_CMR_URL")
                        or CMR_URL).rstrip("/")
        self._credentials = credentials
        self.conn_id = conn_id
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.setdefault("Client-Id", "smflow")

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = resolve(conn_id=self.conn_id, token_env="EARTHDATA_TOKEN",
                                        username_env="EARTHDATA_USERNAME",
                                        password_env="EARTHDATA_PASSWORD")
        return self._credentials

    def search(
        self,
        short_name: str,
        *,
        temporal: tuple[date | datetime, date | datetime] | None = None,
        bounding_box: BBox | None = None,
        version: str | None = None,
        provider: str | None = None,
        page_size: int = 200,
        max_granules: int | None = None,
    ) -> list[Granule]:
        """Granules of collection ``short_name`` overlapping ``temporal`` and ``bounding_box``.

        :param short_name: CMR collection short name (``SPL2SMP``, ``GLDAS_NOAH025_3H``, ...).
        :param temporal: ``(start, end)``; dates mean whole UTC days (end inclusive).
        :param bounding_box: ``(lon_min, lat_min, lon_max, lat_max)`` [degrees].
        :param version, provider: narrow to one collection version / provider.
        :param page_size: granules per request (CMR allows at most 2000).
        :param max_granules: stop after this many.
        :returns: granules in CMR's order (start time ascending).
        """
        return list(self.iter_search(short_name, temporal=temporal, bounding_box=bounding_box,
                                     version=version, provider=provider, page_size=page_size,
                                     max_granules=max_granules))

    def iter_search(self, short_name: str, *, temporal=None, bounding_box=None, version=None,
                    provider=None, page_size: int = 200, max_granules: int | None = None
                    ) -> Iterator[Granule]:
        """Lazy :meth:`search`, one CMR page at a time."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE} (CMR's limit), got {page_size}.")
        params: dict[str, str | int] = {"short_name": short_name, "page_size": page_size,
                                        "sort_key": "start_date"}
        if version:
            params["version"] = version
        if provider:
            params["provider"] = provider
        if temporal is not None:
            params["temporal"] = f"{_iso(temporal[0], end=False)},{_iso(temporal[1], end=True)}"
        if bounding_box is not None:
            w, s, e, n = bounding_box
            params["bounding_box"] = f"{w},{s},{e},{n}"
        url = f"{self.cmr_url}/search/granules.umm_json"
        seen, page = 0, 1
        while True:
            try:
                response = self.session.get(url, params={**params, "page_num": page}, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise ProviderUnavailable(f"CMR search at {self.cmr_url} did not answer "
                                          f"({exc.__class__.__name__})") from exc
            check_availability(response, f"CMR search at {self.cmr_url}")
            if response.status_code != 200:
                raise ArchiveError(f"CMR search {response.url} answered {response.status_code}: "
                                   f"{response.text[:500]}")
            hits = int(response.headers.get("CMR-Hits", "0"))
            items = response.json().get("items", [])
            for item in items:
                yield _granule_from_umm(item)
                seen += 1
                if max_granules is not None and seen >= max_granules:
                    return
            if not items or seen >= hits:
                return
            page += 1

    def granules(self, product: str, day: date) -> list[Granule]:
        """Granules of ``product`` that start on UTC ``day`` (the :class:`~smflow.archive.base.ArchiveClient` interface).

        :param product: an smflow product of :data:`COLLECTIONS` (``smap_l2``, ``gldas``, ...)
            or a CMR short name.
        :param day: UTC day.
        """
        short_name, version = COLLECTIONS.get(product, (product, None))
        start, end = day_bounds(day)
        found = self.search(short_name, version=version,
                            temporal=(start, end - timedelta(seconds=1)))
        return [g for g in found if start <= g.start < end]

    def download(self, granule: Granule, dest_dir: str | Path) -> Path:
        """Download ``granule`` into ``dest_dir``; returns the local file.

        The body goes to ``<name>.part``; it is renamed only when its size and checksum match
        what CMR announced. Raises :class:`~smflow.archive.base.CredentialsError` (an
        :class:`ArchiveError`) on 401/403 (check ``EARTHDATA_TOKEN`` or the Airflow connection),
        :class:`~smflow.archive.base.ProviderUnavailable` when the server is down or busy (5xx /
        429, connection refused), :class:`ArchiveError` on a size or checksum mismatch.
        """
        if not granule.urls:
            raise ArchiveError(f"granule {granule.name} has no GET DATA URL in CMR.")
        dest = Path(dest_dir) / granule.filename
        creds = self.credentials
        url = granule.urls[0]
        log.info("downloading %s (credentials from %s)", url, creds.source or "none")
        try:
            response = self.session.get(url, headers=creds.headers(), auth=creds.basic(), stream=True,
                                        timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ProviderUnavailable(f"{url} did not answer ({exc.__class__.__name__})") from exc
        with response:
            if response.status_code in (401, 403):
                where = (f"the Airflow connection {self.conn_id!r} (its password: an Earthdata Login "
                         "user token)" if self.conn_id else
                         "EARTHDATA_TOKEN (an Earthdata Login user token) or pass conn_id= of an "
                         "Airflow connection holding it")
                raise CredentialsError(f"{url} refused the download ({response.status_code}): "
                                       f"set {where}.")
            check_availability(response, url)
            return save_response(response, dest, size=granule.size, checksum=granule.checksum,
                                 algorithm=granule.checksum_algorithm, source=url)
