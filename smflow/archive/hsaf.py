"""EUMETSAT H SAF: ASCAT NRT soil moisture (H101, H102, H103, H16 BUFR) and H14 GRIB over FTP.

H SAF disseminates its products on ``ftp://ftphsaf.meteoam.it`` (registered user name and
password, plain FTP, the last 60 days online), one directory per product. File names carry
the sensing time::

    h101_20170220_104500_METOPA_53656_EUM.buf   (product_YYYYMMDD_HHMMSS_platform_orbit_centre)
    H14_2014051500.grib                          (product_YYYYMMDDHH)

Protocol used here (RFC 959 + RFC 3659, Python's stdlib :mod:`ftplib`):

1. ``USER`` / ``PASS`` (``530`` on wrong credentials), ``TYPE I``;
2. ``CWD <directory of the product>``; ``MLSD`` (name, type, size) to list it, falling back to
   ``NLST`` + ``SIZE`` on servers without ``MLSD``;
3. select the files whose time stamp falls on the UTC day;
4. ``SIZE <file>`` then ``RETR <file>`` into ``<file>.part``, renamed only when the byte count
   equals the announced size and the file starts as BUFR / GRIB should
   (:class:`~smflow.archive.base.AtomicDownload`). FTP has no checksum to check.

Credentials: the Airflow connection ``conn_id`` (login / password, ``host`` = FTP host) or the
environment (``HSAF_USERNAME`` / ``HSAF_PASSWORD``, ``HSAF_FTP_HOST``). The password is sent
only in ``PASS`` and is never logged.
"""

from __future__ import annotations

import ftplib
import logging
import os
import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from smflow.archive.base import ArchiveError, AtomicDownload, RemoteFile, day_bounds
from smflow.archive.credentials import Credentials, connection_host, resolve

log = logging.getLogger(__name__)

HSAF_HOST = "ftphsaf.meteoam.it"

#: Soil-moisture products on the H SAF FTP.
PRODUCTS: dict[str, str] = {
    "h101": "ASCAT-A NRT surface soil moisture 12.5 km, BUFR",
    "h102": "ASCAT-A NRT surface soil moisture 25 km, BUFR",
    "h103": "ASCAT-B NRT surface soil moisture 25 km, BUFR",
    "h16": "ASCAT-B NRT surface soil moisture 12.5 km, BUFR",
    "h14": "SM-DAS-2 root-zone soil wetness index (IFS assimilation of ASCAT), daily GRIB",
}

#: Directory of each product on the server (``{product}`` is filled in); one per product.
DIRECTORY_TEMPLATE = "/products/{product}"

_STAMP = re.compile(r"^(?P<product>h\d+[a-z]?)_(?P<day>\d{8})_?(?P<time>\d{2,6})?", re.IGNORECASE)


def sensing_time(name: str) -> datetime | None:
    """Sensing time (UTC) from an H SAF file name, or ``None`` if the name has no time stamp."""
    m = _STAMP.match(name)
    if m is None:
        return None
    clock = (m["time"] or "").ljust(6, "0")
    return datetime.strptime(m["day"] + clock, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


class HsafClient:
    """List and download H SAF products from the H SAF FTP server.

    :param host: FTP host (default: the connection's host, env ``HSAF_FTP_HOST``, :data:`HSAF_HOST`);
        ``host:port`` is accepted.
    :param credentials: user name and password.
    :param conn_id: Airflow connection with login / password (and optionally the host).
    :param directories: product → directory, for servers laid out otherwise than
        :data:`DIRECTORY_TEMPLATE`.
    :param timeout: socket timeout [s].
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        credentials: Credentials | None = None,
        conn_id: str | None = None,
        directories: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        address = host or connection_host(conn_id) or os.environ.get("HSAF_FTP_HOST") or HSAF_HOST
        address = address.removeprefix("ftp://").rstrip("/")
        self.host, _, port = address.partition(":")
        self.port = int(port or 21)
        self._credentials = credentials
        self.conn_id = conn_id
        self.directories = dict(directories or {})
        self.timeout = timeout

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = resolve(conn_id=self.conn_id, username_env="HSAF_USERNAME",
                                        password_env="HSAF_PASSWORD")
        return self._credentials

    def directory(self, product: str) -> str:
        return self.directories.get(product, DIRECTORY_TEMPLATE.format(product=product))

    def _url(self, path: str) -> str:
        return f"ftp://{self.host}:{self.port}{path}"

    def _connect(self) -> ftplib.FTP:
        creds = self.credentials
        if not (creds.username and creds.password):
            raise ArchiveError(f"no H SAF credentials for {self._url('/')}: set HSAF_USERNAME and "
                               "HSAF_PASSWORD or pass conn_id= of an Airflow connection with them.")
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(self.host, self.port)
            ftp.login(creds.username, creds.password)
            ftp.voidcmd("TYPE I")
        except ftplib.error_perm as exc:
            ftp.close()
            raise ArchiveError(
                f"{self._url('/')} refused the login of {creds.username!r} ({str(exc)[:3]}): check "
                "HSAF_USERNAME / HSAF_PASSWORD or the Airflow connection "
                f"({creds.source or 'none'})."
            ) from None
        except OSError as exc:
            ftp.close()
            raise ArchiveError(f"cannot reach {self._url('/')}: {exc}") from exc
        return ftp

    def list_files(self, product: str) -> dict[str, int | None]:
        """Files in ``product``'s directory: name → size [bytes] (``None`` if not given)."""
        directory = self.directory(product)
        ftp = self._connect()
        try:
            try:
                ftp.cwd(directory)
            except ftplib.error_perm as exc:
                raise ArchiveError(f"{self._url(directory)}: no such product directory "
                                   f"({exc}); known products: {sorted(PRODUCTS)}.") from None
            try:
                return {name: int(facts["size"]) if "size" in facts else None
                        for name, facts in ftp.mlsd(facts=["type", "size"])
                        if facts.get("type", "file") == "file"}
            except ftplib.error_perm:  # no MLSD (RFC 3659) on this server
                files: dict[str, int | None] = {}
                for name in ftp.nlst():
                    try:
                        files[name] = ftp.size(name)
                    except ftplib.error_perm:
                        files[name] = None
                return files
        finally:
            ftp.close()

    def granules(self, product: str, day: date) -> list[RemoteFile]:
        """Files of ``product`` (``h101``, ``h14``, ...) whose time stamp falls on UTC ``day``, by time."""
        start, end = day_bounds(day)
        directory = self.directory(product)
        found = []
        for name, size in self.list_files(product).items():
            t = sensing_time(name)
            if t is not None and start <= t < end and name.lower().startswith(product.lower() + "_"):
                found.append(RemoteFile(product, name, self._url(f"{directory}/{name}"), t, size=size))
        return sorted(found, key=lambda g: (g.start, g.name))

    def download(self, granule: RemoteFile, dest_dir: str | Path) -> Path:
        """``RETR`` ``granule`` into ``dest_dir`` (atomic; size and format checked); returns the file."""
        path = urlparse(granule.url).path or granule.url
        dest = Path(dest_dir) / granule.name
        log.info("downloading %s", granule.url)
        ftp = self._connect()
        try:
            try:
                size = ftp.size(path)
            except ftplib.error_perm as exc:
                raise ArchiveError(f"{granule.url}: not on the server ({exc}).") from None
            with AtomicDownload(dest, size=size if size is not None else granule.size,
                                source=granule.url) as out:
                try:
                    ftp.retrbinary(f"RETR {path}", out.write, blocksize=1 << 16)
                except (ftplib.Error, OSError, EOFError) as exc:
                    raise ArchiveError(f"{granule.url}: transfer failed ({exc}).") from exc
        finally:
            ftp.close()
        return dest
