"""What every archive client shares: the error, the granule record, verified atomic downloads.

Each client (:mod:`~smflow.archive.cmr`, :mod:`~smflow.archive.hsaf`,
:mod:`~smflow.archive.eumetsat`, :mod:`~smflow.archive.catds`) answers the same two questions,
so that :mod:`smflow.archive.reconcile` and the DAGs can use any of them (:class:`ArchiveClient`):

- ``granules(product, day)``: which files of archive product ``product`` exist for UTC ``day``;
- ``download(granule, dest_dir)``: fetch one of them, verified, under its real name.

A download is written to ``<name>.part`` by :class:`AtomicDownload` and renamed only after its
size, its checksum (when the protocol gives one) and its format signature (``BUFR``, ``GRIB``,
netCDF/HDF5 magic) check out; on any failure the ``.part`` file is removed, so a file under
its real name is always complete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Protocol, runtime_checkable


class ArchiveError(RuntimeError):
    """The archive answered with an error, or a download failed its checks."""


class ProviderUnavailable(ArchiveError):
    """The provider did not answer usefully for now (connection refused, timeout, HTTP 5xx or 429).

    Not a fault of the request: ask again later. ``retry_after`` [s] is the provider's own
    ``Retry-After`` when it sent one (HTTP 429 / 503), else None.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class UnexpectedGranule(ArchiveError):
    """The provider answered with a granule that is not the one asked for (other day or collection)."""


class CredentialsError(ArchiveError):
    """Credentials are missing or were refused; the message names the connection or variable to fix."""


def retry_after_seconds(value: str | None) -> float | None:
    """The ``Retry-After`` header as seconds (delta-seconds or an HTTP date), None if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def check_availability(response, what: str) -> None:
    """Raise :class:`ProviderUnavailable` for a 429 or 5xx answer (with its ``Retry-After``)."""
    status = response.status_code
    if status == 429 or status >= 500:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        kind = "rate-limited the request" if status == 429 else "is unavailable"
        raise ProviderUnavailable(f"{what} {kind} (HTTP {status}"
                                  + (f", Retry-After {wait:g} s)" if wait is not None else ")"),
                                  retry_after=wait, status=status)


@dataclass(frozen=True)
class RemoteFile:
    """One file of an archive product (small: passes through XCom via :meth:`to_dict`).

    Attributes
    ----------
    product : str
        Archive product or collection (``h101``, ``EO:EUM:DAT:METOP:SOMO25``, ``MIR_CLF31A``).
    name : str
        File (or Data Store product) name.
    url : str
        Where it is fetched from (``ftp://``, ``https://``).
    start : datetime
        Sensing start (UTC), from the name or the archive's metadata.
    end : datetime or None
        Sensing end (UTC) when known.
    size : int or None
        Size [bytes] the archive announces.
    checksum, checksum_algorithm : str or None
        Checksum the archive announces and its algorithm (``MD5``, ``SHA-256``).
    """

    product: str
    name: str
    url: str
    start: datetime
    end: datetime | None = None
    size: int | None = None
    checksum: str | None = None
    checksum_algorithm: str | None = None

    @property
    def filename(self) -> str:
        return self.name

    def to_dict(self) -> dict:
        return {"product": self.product, "name": self.name, "url": self.url,
                "start": self.start.isoformat(), "end": self.end.isoformat() if self.end else None,
                "size": self.size, "checksum": self.checksum,
                "checksum_algorithm": self.checksum_algorithm}


@runtime_checkable
class ArchiveClient(Protocol):
    """The interface :mod:`smflow.archive.reconcile` uses to ask any archive."""

    def granules(self, product: str, day: date) -> list: ...

    def download(self, granule, dest_dir: str | Path) -> Path: ...


#: Archive client classes by kind (imported on use); ``kind`` is the catalogue's ``archive.client``.
ARCHIVE_CLIENTS: dict[str, str] = {
    "cmr": "smflow.archive.cmr:CmrClient",
    "cds": "smflow.archive.cds:CdsClient",
    "hsaf": "smflow.archive.hsaf:HsafClient",
    "eumetsat": "smflow.archive.eumetsat:EumetsatClient",
    "catds": "smflow.archive.catds:CatdsClient",
}


def archive_client(kind: str, **kwargs):
    """A client of :data:`ARCHIVE_CLIENTS` (``cmr``, ``cds``, ``hsaf``, ``eumetsat``, ``catds``), built with ``kwargs``.

    :raises ValueError: for an unknown kind.
    """
    from importlib import import_module

    try:
        module, _, name = ARCHIVE_CLIENTS[kind].partition(":")
    except KeyError:
        raise ValueError(f"unknown archive {kind!r}; use one of {sorted(ARCHIVE_CLIENTS)}.") from None
    return getattr(import_module(module), name)(**kwargs)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[00:00, next day 00:00)`` of UTC ``day``, timezone-aware."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


#: Format signatures found within the first bytes of a valid file, by suffix. BUFR files may
#: carry a length prefix or a GTS bulletin header before ``BUFR``, hence "within".
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    ".buf": (b"BUFR",), ".bfr": (b"BUFR",), ".bufr": (b"BUFR",), ".bin": (b"BUFR",),
    ".grib": (b"GRIB",), ".grb": (b"GRIB",), ".grib2": (b"GRIB",),
    ".nc": (b"CDF\x01", b"CDF\x02", b"\x89HDF"), ".nc4": (b"\x89HDF",), ".h5": (b"\x89HDF",),
    ".zip": (b"PK\x03\x04",), ".tgz": (b"\x1f\x8b",),
}
_SIGNATURE_WINDOW = 4096


def _digest(algorithm: str | None):
    name = (algorithm or "").replace("-", "").lower()
    return hashlib.new(name) if name in hashlib.algorithms_available else None


class AtomicDownload:
    """Write a download to ``<dest>.part``; verify and rename on a clean exit, else delete.

    Use as a context manager and feed it with :meth:`write` (a ``requests`` chunk loop or an
    ``ftplib`` ``retrbinary`` callback)::

        with AtomicDownload(dest, size=n, checksum=md5, algorithm="MD5", source=url) as out:
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)

    Parameters
    ----------
    dest : path
        Final file.
    size : int, optional
        Expected size [bytes].
    checksum, algorithm : str, optional
        Expected hex digest and its algorithm (``MD5``, ``SHA-256``, ...).
    source : str
        URL or archive path, for error messages.
    signature : bool
        Check the format signature of :data:`SIGNATURES` for the file's suffix.
    """

    def __init__(self, dest: str | Path, *, size: int | None = None, checksum: str | None = None,
                 algorithm: str | None = None, source: str = "", signature: bool = True) -> None:
        self.dest = Path(dest)
        self.partial = self.dest.with_name(self.dest.name + ".part")
        self.size, self.checksum, self.algorithm = size, checksum, algorithm
        self.source = source or self.dest.name
        self.signature = signature
        self.written = 0
        self._digest = _digest(algorithm) if checksum else None
        self._head = b""
        self._file = None

    def __enter__(self) -> "AtomicDownload":
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.partial, "wb")
        return self

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.written += len(chunk)
        if self._digest is not None:
            self._digest.update(chunk)
        if len(self._head) < _SIGNATURE_WINDOW:
            self._head += chunk[: _SIGNATURE_WINDOW - len(self._head)]

    def _verify(self) -> None:
        if self.size is not None and self.written != self.size:
            raise ArchiveError(f"{self.source}: got {self.written} bytes, the archive announced "
                               f"{self.size}; the transfer was cut short, retry the download.")
        if self._digest is not None and self._digest.hexdigest() != self.checksum.lower():
            raise ArchiveError(f"{self.source}: {self.algorithm} checksum mismatch "
                               f"(got {self._digest.hexdigest()}, announced {self.checksum}).")
        magic = SIGNATURES.get(self.dest.suffix.lower())
        if self.signature and magic and not any(m in self._head for m in magic):
            raise ArchiveError(f"{self.source}: not a {self.dest.suffix} file (no "
                               f"{' / '.join(repr(m) for m in magic)} signature in its first bytes).")

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._file.close()
        try:
            if exc_type is None:
                self._verify()
        except BaseException:
            self.partial.unlink(missing_ok=True)
            raise
        if exc_type is not None:
            self.partial.unlink(missing_ok=True)
            return False
        self.partial.replace(self.dest)
        return False


def save_response(response, dest: str | Path, *, size: int | None = None, checksum: str | None = None,
                  algorithm: str | None = None, source: str = "") -> Path:
    """Stream an open, streamed ``requests`` response into ``dest`` through :class:`AtomicDownload`.

    ``size`` defaults to ``Content-Length`` (unless the body is content-encoded). A non-200
    answer and a broken transfer (connection dropped mid-body) raise :class:`ArchiveError`.
    """
    import requests

    source = source or response.url
    if response.status_code != 200:
        raise ArchiveError(f"{source} answered {response.status_code}: {response.text[:300]}")
    length = response.headers.get("Content-Length")
    if size is None and length and not response.headers.get("Content-Encoding"):
        size = int(length)
    try:
        with AtomicDownload(dest, size=size, checksum=checksum, algorithm=algorithm, source=source) as out:
            for chunk in response.iter_content(chunk_size=1 << 20):
                out.write(chunk)
    except requests.RequestException as exc:
        raise ArchiveError(f"{source}: transfer failed ({exc.__class__.__name__}); "
                           "retry the download.") from exc
    return Path(dest)
