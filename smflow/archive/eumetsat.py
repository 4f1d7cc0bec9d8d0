"""EUMETSAT Data Store: ASCAT Level-2 soil moisture (SOMO25 / SOMO12) search and download.

Protocol (the Data Store APIs behind ``api.eumetsat.int``, as used by ``eumdac``):

1. **Token** (OAuth2 client credentials): ``POST {api}/token`` with HTTP basic auth
   ``consumer_key:consumer_secret`` and the form body ``grant_type=client_credentials`` →
   ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``; ``401`` on a wrong pair.
   The token is reused until shortly before ``expires_in`` runs out, and renewed once if the
   download endpoint refuses it.
2. **Search** (OpenSearch, GeoJSON answer, anonymous):
   ``GET {api}/data/search-products/1.0.0/os?format=json&pi=<collection>&dtstart=<ISO>&dtend=<ISO>
   [&bbox=W,S,E,N]&si=<start index>&c=<count>`` → ``{"type": "FeatureCollection",
   "totalResults", "itemsPerPage", "features": [{"id", "properties": {"identifier",
   "parentIdentifier", "date": "start/end", "productInformation": {"size" [KB], ...},
   "extraInformation": {"md5"}, "links": {"data": [{"href"}], "sip-entries": [{"title", "href"}]}}}]}``,
   walked page by page until ``totalResults``.
3. **Download**: ``GET {api}/data/download/1.0.0/collections/{collection}/products/{id}`` with
   ``Authorization: Bearer <token>`` returns the product as a **zip** (``Content-Disposition:
   attachment; filename="<id>.zip"``). The zip is written to ``<id>.zip.part`` and checked
   against ``Content-Length`` and the announced MD5, then its data file (netCDF / BUFR) is
   extracted (zip CRC checked, format signature checked) to ``<file>.part`` and renamed; the
   zip is removed. Collection and product ids are URL-quoted (ids contain ``,`` and ``+``).

Credentials: the Airflow connection ``conn_id`` (login = consumer key, password = consumer
secret, ``host`` = API root) or the environment (``EUMETSAT_CONSUMER_KEY`` /
``EUMETSAT_CONSUMER_SECRET``, ``EUMETSAT_API_URL``). Neither the secret nor the token is logged.
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote

import requests

from smflow.archive.base import (SIGNATURES, ArchiveError, AtomicDownload, RemoteFile, day_bounds,
                                 save_response)
from smflow.archive.credentials import Credentials, connection_host, resolve

log = logging.getLogger(__name__)

API_URL = "https://api.eumetsat.int"
SEARCH_PATH = "/data/search-products/1.0.0/os"
DOWNLOAD_PATH = "/data/download/1.0.0/collections/{collection}/products/{product}"

#: smflow names → Data Store collections of Metop ASCAT L2 surface soil moisture.
COLLECTIONS: dict[str, str] = {
    "ascat_somo25": "EO:EUM:DAT:METOP:SOMO25",
    "ascat_somo12": "EO:EUM:DAT:METOP:SOMO12",
}
_TOKEN_MARGIN = 60.0  # renew this many seconds before the token expires


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _product_from_feature(feature: dict, download_url: str) -> RemoteFile:
    props = feature["properties"]
    start, _, end = props["date"].partition("/")
    links = props.get("links", {})
    href = (links.get("data") or [{}])[0].get("href") or download_url
    return RemoteFile(
        product=props.get("parentIdentifier", ""), name=feature.get("id") or props["identifier"],
        url=href, start=_parse_time(start), end=_parse_time(end) if end else None,
        checksum=(props.get("extraInformation") or {}).get("md5"),
        checksum_algorithm="MD5" if (props.get("extraInformation") or {}).get("md5") else None,
    )


class EumetsatClient:
    """Search and download Data Store products.

    :param api_url: API root (default: the connection's host, env ``EUMETSAT_API_URL``, :data:`API_URL`).
    :param credentials: ``username`` = consumer key, ``password`` = consumer secret.
    :param conn_id: Airflow connection holding them.
    :param page_size: products per search request (``c``).
    :param timeout: HTTP timeout [s].
    :param session: a ``requests.Session`` to reuse.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        credentials: Credentials | None = None,
        conn_id: str | None = None,
        page_size: int = 100,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        self.api_url = (api_url or connection_host(conn_id) or os.environ.get("EUMETSAT_API_URL")
                        or API_URL).rstrip("/")
        self._credentials = credentials
        self.conn_id = conn_id
        self.page_size = page_size
        self.timeout = timeout
        self.session = session or requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = resolve(conn_id=self.conn_id, username_env="EUMETSAT_CONSUMER_KEY",
                                        password_env="EUMETSAT_CONSUMER_SECRET")
        return self._credentials

    def token(self, *, renew: bool = False) -> str:
        """A bearer token from ``POST /token`` (client credentials), cached until it nearly expires."""
        if self._token and not renew and time.monotonic() < self._token_expires:
            return self._token
        creds = self.credentials
        url = f"{self.api_url}/token"
        if not (creds.username and creds.password):
            raise ArchiveError(f"no EUMETSAT credentials for {url}: set EUMETSAT_CONSUMER_KEY and "
                               "EUMETSAT_CONSUMER_SECRET or pass conn_id= of an Airflow connection.")
        response = self.session.post(url, data={"grant_type": "client_credentials"},
                                     auth=(creds.username, creds.password), timeout=self.timeout)
        if response.status_code in (400, 401, 403):
            raise ArchiveError(f"{url} refused the consumer key/secret ({response.status_code}): "
                               "check EUMETSAT_CONSUMER_KEY / EUMETSAT_CONSUMER_SECRET or the "
                               f"Airflow connection ({creds.source or 'none'}).")
        if response.status_code != 200:
            raise ArchiveError(f"{url} answered {response.status_code}.")
        reply = response.json()
        self._token = reply["access_token"]
        self._token_expires = time.monotonic() + float(reply.get("expires_in", 3600)) - _TOKEN_MARGIN
        return self._token

    def download_url(self, collection: str, product_id: str) -> str:
        return self.api_url + DOWNLOAD_PATH.format(collection=quote(collection, safe=""),
                                                   product=quote(product_id, safe=""))

    def search(self, collection: str, start: datetime, end: datetime,
               bbox: tuple[float, float, float, float] | None = None) -> list[RemoteFile]:
        """Products of ``collection`` sensed in ``[start, end]`` (UTC), optionally within ``bbox`` (W, S, E, N)."""
        url = f"{self.api_url}{SEARCH_PATH}"
        params: dict[str, str | int] = {"format": "json", "pi": collection, "dtstart": _iso(start),
                                        "dtend": _iso(end), "c": self.page_size}
        if bbox is not None:
            params["bbox"] = ",".join(str(v) for v in bbox)
        found: list[RemoteFile] = []
        while True:
            response = self.session.get(url, params={**params, "si": len(found)}, timeout=self.timeout)
            if response.status_code != 200:
                raise ArchiveError(f"Data Store search {response.url} answered "
                                   f"{response.status_code}: {response.text[:300]}")
            page = response.json()
            features = page.get("features", [])
            found.extend(_product_from_feature(f, self.download_url(collection, f["id"]))
                         for f in features)
            if not features or len(found) >= int(page.get("totalResults", 0)):
                return found

    def granules(self, product: str, day: date) -> list[RemoteFile]:
        """Products of ``product`` (an smflow name of :data:`COLLECTIONS` or a collection id) starting on UTC ``day``."""
        collection = COLLECTIONS.get(product, product)
        start, end = day_bounds(day)
        return sorted((g for g in self.search(collection, start, end) if start <= g.start < end),
                      key=lambda g: (g.start, g.name))

    def _get(self, url: str) -> requests.Response:
        for renew in (False, True):
            response = self.session.get(url, headers={"Authorization": f"Bearer {self.token(renew=renew)}"},
                                        stream=True, timeout=self.timeout)
            if response.status_code != 401:
                return response
            response.close()
        raise ArchiveError(f"{url} refused the download token (401) twice: check that the "
                           "consumer key has accepted the collection's licence.")

    def download(self, granule: RemoteFile, dest_dir: str | Path) -> Path:
        """Download product ``granule`` (a zip), verify it, and extract its data file into ``dest_dir``."""
        dest_dir = Path(dest_dir)
        archive = dest_dir / f"{granule.name}.zip"
        log.info("downloading %s", granule.url)
        with self._get(granule.url) as response:
            save_response(response, archive, checksum=granule.checksum,
                          algorithm=granule.checksum_algorithm, source=granule.url)
        try:
            return self._extract(archive, dest_dir, granule.url)
        finally:
            archive.unlink(missing_ok=True)

    @staticmethod
    def _extract(archive: Path, dest_dir: Path, source: str) -> Path:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                data = [m for m in members if Path(m.filename).suffix.lower() in SIGNATURES]
                if not data:
                    raise ArchiveError(f"{source}: the zip holds no data file "
                                       f"({[m.filename for m in members]}).")
                for member in data:
                    with zf.open(member) as src, AtomicDownload(
                            dest_dir / Path(member.filename).name, size=member.file_size,
                            source=f"{source} [{member.filename}]") as out:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
        except zipfile.BadZipFile as exc:
            raise ArchiveError(f"{source}: damaged zip ({exc}).") from exc
        return dest_dir / Path(data[0].filename).name
