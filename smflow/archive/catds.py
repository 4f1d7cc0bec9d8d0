"""CATDS (CNES/IFREMER SMOS ground segment): SMOS L3 daily soil moisture over HTTPS listings.

CATDS-PDC serves its SMOS products as a directory tree behind HTTP basic auth (the same tree
is on its FTP), one folder per product, year and day of year::

    {base}/MIR_CLF31A/2015/126/SM_OPER_MIR_CLF31A_20150506T000000_20150506T235959_300_002_7.DBL.nc

(class ``OPER`` for operational files, ``RExx`` for reprocessings; ``CLF31A`` / ``CLF31D`` the
daily ascending / descending L3 soil-moisture maps). Operational deliveries may pack the
``.DBL.nc`` with its ``.HDR`` in a ``.tgz``; the client then extracts the ``.DBL.nc``.

Protocol used here:

1. ``GET {base}/{product}/{YYYY}/{DDD}/`` with basic auth → an Apache ``mod_autoindex`` page;
   the ``<a href>`` of its rows are the files (``?C=N;O=D`` sort links and "Parent Directory"
   are skipped); ``404`` means the archive has no folder (no file) for that day; ``401`` wrong
   credentials.
2. Select the files whose sensing start (``_YYYYMMDDThhmmss_`` after the product) is on the day.
3. ``GET`` the file into ``<name>.part``; renamed when the byte count equals ``Content-Length``
   and the netCDF signature (``CDF``/HDF5) is there. The listing's sizes are rounded (``152K``)
   and CATDS publishes no checksums, so nothing finer can be checked.

Credentials: the Airflow connection ``conn_id`` (login / password, ``host`` = base URL) or the
environment (``CATDS_USERNAME`` / ``CATDS_PASSWORD``, ``CATDS_URL``). Never logged.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin

import requests

from smflow.archive.base import ArchiveError, AtomicDownload, RemoteFile, save_response
from smflow.archive.credentials import Credentials, connection_host, resolve

log = logging.getLogger(__name__)

#: CATDS-PDC L3 soil-moisture tree (operational class); set ``CATDS_URL`` for another access point.
CATDS_URL = "https://data.catds.fr/cpdc/Products/L3SM/OPER"

#: Daily SMOS L3 soil-moisture products (ascending / descending overpasses).
PRODUCTS: dict[str, str] = {
    "MIR_CLF31A": "SMOS L3 soil moisture, 1 day, ascending, 25 km EASE-2",
    "MIR_CLF31D": "SMOS L3 soil moisture, 1 day, descending, 25 km EASE-2",
}
_NAME = re.compile(r"^SM_(?:OPER|RE\d\d)_(?P<product>MIR_\w{6})_(?P<start>\d{8}T\d{6})_"
                   r"(?P<end>\d{8}T\d{6})_\d{3}_\d{3}_\d\.(?:DBL\.nc|tgz)$")


class _IndexLinks(HTMLParser):
    """The ``href`` of every ``<a>`` on an index page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def parse_index(html: str) -> list[str]:
    """Entries of an Apache-style directory index: file names, and sub-folders ending in ``/``."""
    parser = _IndexLinks()
    parser.feed(html)
    return [unquote(h) for h in parser.hrefs
            if not h.startswith(("?", "/", "../", "http:", "https:")) and h not in (".", "./")]


def _stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)


class CatdsClient:
    """List and download CATDS SMOS L3 files.

    :param base_url: root of the product folders (default: the connection's host, env
        ``CATDS_URL``, :data:`CATDS_URL`).
    :param credentials: user name and password.
    :param conn_id: Airflow connection holding them.
    :param timeout: HTTP timeout [s].
    :param session: a ``requests.Session`` to reuse.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        credentials: Credentials | None = None,
        conn_id: str | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = (base_url or connection_host(conn_id) or os.environ.get("CATDS_URL")
                         or CATDS_URL).rstrip("/")
        self._credentials = credentials
        self.conn_id = conn_id
        self.timeout = timeout
        self.session = session or requests.Session()

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = resolve(conn_id=self.conn_id, username_env="CATDS_USERNAME",
                                        password_env="CATDS_PASSWORD")
        return self._credentials

    def _get(self, url: str, *, stream: bool = False) -> requests.Response:
        creds = self.credentials
        response = self.session.get(url, auth=creds.basic(), stream=stream, timeout=self.timeout)
        if response.status_code in (401, 403):
            response.close()
            raise ArchiveError(f"{url} refused the credentials ({response.status_code}): set "
                               "CATDS_USERNAME / CATDS_PASSWORD or pass conn_id= of an Airflow "
                               f"connection ({creds.source or 'none'}).")
        return response

    def day_url(self, product: str, day: date) -> str:
        return f"{self.base_url}/{product}/{day:%Y}/{day.timetuple().tm_yday:03d}/"

    def granules(self, product: str, day: date) -> list[RemoteFile]:
        """Files of ``product`` (``MIR_CLF31A``, ...) whose sensing starts on UTC ``day``."""
        url = self.day_url(product, day)
        response = self._get(url)
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise ArchiveError(f"{url} answered {response.status_code}.")
        found = []
        for name in parse_index(response.text):
            m = _NAME.match(name)
            if m and m["product"] == product and _stamp(m["start"]).date() == day:
                found.append(RemoteFile(product, name, urljoin(url, name), _stamp(m["start"]),
                                        _stamp(m["end"])))
        return sorted(found, key=lambda g: (g.start, g.name))

    def download(self, granule: RemoteFile, dest_dir: str | Path) -> Path:
        """Download ``granule`` into ``dest_dir`` (atomic, size and format checked); returns the ``.DBL.nc``."""
        dest = Path(dest_dir) / granule.name
        log.info("downloading %s", granule.url)
        with self._get(granule.url, stream=True) as response:
            save_response(response, dest, size=granule.size, source=granule.url)
        if dest.suffix == ".tgz":
            try:
                return self._extract(dest, granule.url)
            finally:
                dest.unlink(missing_ok=True)
        return dest

    @staticmethod
    def _extract(archive: Path, source: str) -> Path:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".DBL.nc")), None)
                if member is None:
                    raise ArchiveError(f"{source}: the archive holds no .DBL.nc file.")
                dest = archive.parent / Path(member.name).name
                with tar.extractfile(member) as src, AtomicDownload(
                        dest, size=member.size, source=f"{source} [{member.name}]") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(f"{source}: damaged archive ({exc}).") from exc
        return dest
