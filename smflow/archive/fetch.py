"""The day's granule of an input product: found at its provider, fetched with verification, landed with provenance.

This is the first step of the daily pipelines (``dags/daily_soil_moisture.py``) and of
``reconcile_archive``:

1. **Search** (:func:`find_granule`, :func:`provider_inventory`): the catalogue entry of the product
   names its provider archive (``archive: [{client, collection}]`` in
   ``smflow/catalog/products/<name>.yaml``); the provider's search API is asked for the UTC day.
   NASA CMR answers with the granule's id, revision, size and SHA-256; the Copernicus CDS has no
   granule search, its catalogue's temporal extent says whether the day is published. An answer
   that is not the granule asked for (another day, another collection) raises
   :class:`~smflow.archive.base.UnexpectedGranule`; a provider that is down or rate-limits raises
   :class:`~smflow.archive.base.ProviderUnavailable` (the sensor keeps waiting).
2. **Fetch** (:func:`fetch_to_landing`): downloaded to a temporary directory through the client's
   verified, atomic download (size and checksum where the provider announces them; a format
   signature always), retried with backoff, then the contents are checked to be of the day; only
   then the bytes are put in the landing zone at :meth:`smflow.landing.LandingZone.granule_key`
   in one ``PUT`` (an S3 object appears whole or not at all) with the provenance as object
   metadata (provider, collection, version, granule id, revision, URL, checksum). A granule
   whose bytes are already landed is not rewritten (idempotent). A download that keeps failing
   raises :class:`FetchFailed`: nothing is landed.

Credentials come from the Airflow connection of the archive kind (:data:`CONNECTIONS`: host = the
provider's API URL, password = the access token), never from code; they are not logged, not in
XCom, not in the provenance. Pointing the DAGs at the real providers is configuration only: define
the connections with the real endpoints (``docs/providers.md``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from smflow.archive.base import (ArchiveError, CredentialsError, ProviderUnavailable, UnexpectedGranule,
                                 archive_client, day_bounds)
from smflow.dates import DayLike, as_date

log = logging.getLogger(__name__)

#: Airflow connection per archive client kind: ``host`` = the provider's API root (CMR root, CDS
#: ``.../api``), ``password`` = the access token (Earthdata Login user token, CDS personal access
#: token). ``SMFLOW_CONN_<KIND>`` (e.g. ``SMFLOW_CONN_CMR``) names another connection.
CONNECTIONS: dict[str, str] = {
    "cmr": "smflow_earthdata",
    "cds": "smflow_cds",
}

#: Archive kinds the daily fetch speaks (the others are listed by ``reconcile`` only).
FETCH_KINDS = frozenset(CONNECTIONS)

#: Landing-object metadata keys holding the provenance (S3 user metadata, lower case).
PROVENANCE_KEYS = ("provider", "collection", "collection-version", "granule-id", "revision", "source-url",
                   "source-checksum", "source-checksum-algorithm")


class FetchFailed(ArchiveError):
    """The granule could not be fetched intact after the retries; nothing was landed."""


@dataclass(frozen=True)
class ProviderGranule:
    """The provider's granule of one product and UTC day (small and JSON-able: passes through XCom).

    Attributes
    ----------
    product : str
        smflow product (catalogue name).
    day : date
        UTC day.
    provider : str
        Archive client kind (``cmr``, ``cds``).
    collection : str
        The provider's collection: CMR short name, CDS dataset.
    version : str or None
        Collection version (CMR ``CollectionReference.Version``).
    granule_id : str
        The provider's id of the granule (CMR concept id; ``dataset:YYYYMMDD`` for the CDS).
    name : str
        The provider's file name.
    url : str
        Where it is downloaded from (CDS: the dataset's process URL).
    size : int or None
        Announced size [bytes].
    checksum, checksum_algorithm : str or None
        Announced checksum and its algorithm (CMR: ``SHA-256``); None where the provider gives none.
    revision : str or None
        The provider's revision of the granule (CMR ``revision-id``); grows on reprocessing.
    record : dict
        The client's own record of the granule (its ``to_dict()``), used to download it.
    """

    product: str
    day: date
    provider: str
    collection: str
    version: str | None
    granule_id: str
    name: str
    url: str
    size: int | None = None
    checksum: str | None = None
    checksum_algorithm: str | None = None
    revision: str | None = None
    record: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProviderGranule":
        return cls(**{**data, "day": as_date(data["day"])})

    def provenance(self) -> dict[str, Any]:
        """What the products' lineage records of this granule (no credentials, no client record)."""
        return {"product": self.product, "day": self.day.isoformat(), "provider": self.provider,
                "collection": self.collection, "version": self.version, "granule_id": self.granule_id,
                "revision": self.revision, "url": self.url, "checksum": self.checksum,
                "checksum_algorithm": self.checksum_algorithm}

    def metadata(self) -> dict[str, str]:
        """The provenance as S3 user metadata of the landed object (ASCII strings)."""
        values = {"provider": self.provider, "collection": self.collection, "collection-version": self.version,
                  "granule-id": self.granule_id, "revision": self.revision, "source-url": self.url,
                  "source-checksum": self.checksum, "source-checksum-algorithm": self.checksum_algorithm}
        return {k: str(v) for k, v in values.items() if v is not None}


# -- sources and clients ----------------------------------------------------------------------------
def provider_source(product: str):
    """The catalogue's provider archive of ``product`` that the daily fetch speaks, or None.

    :returns: :class:`smflow.catalog.model.ArchiveSource` (``client``, ``collection``) or None when
        the product has no archive section of a kind in :data:`FETCH_KINDS`.
    """
    from smflow.catalog import canonical_name, entries

    entry = entries().get(canonical_name(product))
    if entry is None:
        return None
    for source in entry.archive:
        if source.client in FETCH_KINDS:
            return source
    return None


def connection_id(kind: str) -> str:
    """Airflow connection of archive kind ``kind`` (:data:`CONNECTIONS`, or ``SMFLOW_CONN_<KIND>``)."""
    return os.environ.get(f"SMFLOW_CONN_{kind.upper()}") or CONNECTIONS[kind]


def fetch_client(kind: str, *, conn_id: str | None = None):
    """The :func:`~smflow.archive.base.archive_client` of kind ``kind`` on the Airflow connection
    ``conn_id`` (default :func:`connection_id`).

    :raises ValueError: for a kind the daily fetch does not speak.
    :raises CredentialsError: when the connection is not defined (names it).
    """
    if kind not in FETCH_KINDS:
        raise ValueError(f"the daily fetch does not speak archive kind {kind!r} (use one of {sorted(FETCH_KINDS)}).")
    return archive_client(kind, conn_id=conn_id or connection_id(kind))


def _require_source(product: str):
    source = provider_source(product)
    if source is None:
        raise ValueError(f"{product!r} has no provider archive the daily fetch speaks; add an 'archive' "
                         f"section with a client in {sorted(FETCH_KINDS)} to smflow/catalog/products/{product}.yaml.")
    return source


# -- search -----------------------------------------------------------------------------------------
def _cmr_inventory(product: str, source, start: date, end: date, client) -> dict[date, ProviderGranule]:
    from smflow.archive.cmr import COLLECTIONS

    short_name, version = COLLECTIONS.get(source.collection, (source.collection, None))
    t0, _ = day_bounds(start)
    _, t1 = day_bounds(end)
    found = client.search(short_name, version=version, temporal=(t0, t1 - timedelta(seconds=1)), page_size=500)
    by_day: dict[date, list] = {}
    for g in found:
        what = f"CMR answered granule {g.name!r} ({g.concept_id})"
        if g.collection and g.collection != short_name or version and g.collection_version and g.collection_version != version:
            raise UnexpectedGranule(f"{what} of collection {g.collection} {g.collection_version}, asked for "
                                    f"{short_name} {version}: refused.")
        if g.end < t0 or g.start >= t1:
            raise UnexpectedGranule(f"{what} covering {g.start:%Y-%m-%d %H:%M} .. {g.end:%Y-%m-%d %H:%M} UTC, outside "
                                    f"the days asked for ({start} .. {end}): refused.")
        if not t0 <= g.start < t1:
            continue  # began the day before: the previous day's granule
        by_day.setdefault(g.start.date(), []).append(g)
    out: dict[date, ProviderGranule] = {}
    for d, granules in by_day.items():
        if len(granules) > 1:
            names = ", ".join(sorted(g.name for g in granules))
            raise UnexpectedGranule(f"CMR has {len(granules)} granules of {short_name} starting on {d} ({names}); "
                                    "the daily pipeline takes one granule per product and day.")
        g = granules[0]
        out[d] = ProviderGranule(product=product, day=d, provider="cmr", collection=short_name,
                                 version=g.collection_version or version, granule_id=g.concept_id,
                                 name=g.filename, url=g.urls[0] if g.urls else "", size=g.size,
                                 checksum=g.checksum, checksum_algorithm=g.checksum_algorithm,
                                 revision=g.revision, record=g.to_dict())
    return out


def _cds_inventory(product: str, source, start: date, end: date, client) -> dict[date, ProviderGranule]:
    from smflow.archive.cds import DAILY_REQUESTS

    if source.collection not in DAILY_REQUESTS:
        raise ValueError(f"no daily request known for CDS dataset {source.collection!r} ({product}); add one "
                         "to smflow.archive.cds.DAILY_REQUESTS.")
    last = client.published_until(source.collection)
    out: dict[date, ProviderGranule] = {}
    d = start
    while d <= min(end, last):
        f = client.daily_file(source.collection, d)
        out[d] = ProviderGranule(product=product, day=d, provider="cds", collection=source.collection,
                                 version=None, granule_id=f"{source.collection}:{d:%Y%m%d}", name=f.name, url=f.url,
                                 record=f.to_dict())
        d += timedelta(days=1)
    return out


def provider_inventory(product: str, start: DayLike, end: DayLike, *, client=None) -> dict[date, ProviderGranule]:
    """The granules the provider holds for ``product``, UTC days ``start .. end`` (inclusive), by day.

    One search for the whole range (CMR: paged granule search; CDS: one catalogue request).

    :param product: smflow product with a provider archive (:func:`provider_source`).
    :param client: the archive client to ask (default: :func:`fetch_client` on the kind's connection).
    :raises ProviderUnavailable: when the provider is down or rate-limits (``retry_after`` set).
    :raises UnexpectedGranule: when the provider answers with a granule of another day or
        collection, or with several granules for one day.
    :raises CredentialsError: when the connection is not defined.
    """
    d0, d1 = as_date(start), as_date(end)
    if d1 < d0:
        raise ValueError(f"end {d1} is before start {d0}; swap them.")
    source = _require_source(product)
    client = client or fetch_client(source.client)
    if source.client == "cmr":
        return _cmr_inventory(product, source, d0, d1, client)
    return _cds_inventory(product, source, d0, d1, client)


def find_granule(product: str, day: DayLike, *, client=None) -> ProviderGranule | None:
    """The provider's granule of ``product`` for UTC ``day``, or None while it is not published.

    Raises as :func:`provider_inventory`.
    """
    d = as_date(day)
    return provider_inventory(product, d, d, client=client).get(d)


# -- fetch and land ---------------------------------------------------------------------------------
def _client_record(granule: ProviderGranule):
    record = dict(granule.record or {})
    if granule.provider == "cmr":
        from smflow.archive.cmr import Granule

        for key in ("start", "end"):
            record[key] = datetime.fromisoformat(record[key])
        record["urls"] = tuple(record["urls"])
        return Granule(**record)
    from smflow.archive.base import RemoteFile

    record["start"] = datetime.fromisoformat(record["start"])
    record["end"] = datetime.fromisoformat(record["end"]) if record.get("end") else None
    return RemoteFile(**record)


def check_granule_day(product: str, day: DayLike, path: str | Path, *, source: str = "") -> None:
    """Refuse a downloaded granule whose time stamps are not on UTC ``day``.

    Reads only the ``time`` coordinate (CF-decoded). A granule without a ``time`` variable, or
    with an empty one (no overpass that day), passes.

    :raises UnexpectedGranule: naming the file, the days found and the day asked for.
    """
    import numpy as np
    import xarray as xr

    d = as_date(day)
    try:
        # An explicit engine: letting xarray guess imports every backend (cfgrib loads eccodes, which
        # breaks pyproj in the same process).
        with xr.open_dataset(path, engine="netcdf4", decode_times=True) as ds:
            if "time" not in ds.variables:
                return
            times = np.asarray(ds["time"].values).ravel()
    except (OSError, ValueError) as exc:
        raise UnexpectedGranule(f"{source or path}: not a readable netCDF granule ({exc}).") from exc
    if not np.issubdtype(times.dtype, np.datetime64):
        return
    times = times[~np.isnat(times)]
    if times.size == 0:
        return
    days = np.unique(times.astype("datetime64[D]"))
    if days.size != 1 or days[0] != np.datetime64(d.isoformat(), "D"):
        found = ", ".join(str(x) for x in days[:5])
        raise UnexpectedGranule(f"{source or path}: the granule of {product} for {d} holds data of {found}: refused.")


def _download(granule: ProviderGranule, client, dest_dir: Path, *, attempts: int, backoff: float) -> Path:
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return client.download(_client_record(granule), dest_dir)
        except CredentialsError:
            raise
        except ArchiveError as exc:  # short, corrupt, refused mid-way, provider down: try again
            last = exc
            log.warning("%s %s: download %d/%d of %s failed: %s", granule.product, granule.day, attempt, attempts,
                        granule.url, exc)
            if attempt < attempts:
                wait = getattr(exc, "retry_after", None)
                time.sleep(wait if wait is not None else backoff * 2 ** (attempt - 1))
    raise FetchFailed(f"{granule.product} {granule.day}: {granule.url} failed {attempts} download attempts; "
                      f"last: {last}")


def fetch_to_landing(
    granule: ProviderGranule,
    *,
    zone=None,
    client=None,
    attempts: int = 3,
    backoff: float = 2.0,
) -> dict[str, Any]:
    """Download ``granule``, verify it and land it in the landing zone with its provenance.

    Parameters
    ----------
    granule : ProviderGranule
        From :func:`find_granule`.
    zone : smflow.landing.LandingZone, optional
        Where to land (default: the deployment's, with the ``landing`` S3 identity:
        :meth:`smflow.landing.LandingZone.for_landing`).
    client : optional
        The archive client (default: :func:`fetch_client` on the kind's connection).
    attempts : int
        Downloads tried before giving up.
    backoff : float
        First pause between attempts [s], doubled each time (or the provider's ``Retry-After``).

    Returns
    -------
    dict
        ``{"product", "day", "bucket", "key", "status", "sha256", "provenance"}`` with ``status``
        ``"landed"`` (new or changed bytes) or ``"unchanged"`` (the same bytes were landed before:
        nothing written).

    Raises
    ------
    FetchFailed
        When every attempt failed (truncated, checksum mismatch, provider down); nothing landed.
    UnexpectedGranule
        When the file holds another day; nothing landed.
    CredentialsError
        When the credentials are missing or refused (names the connection).
    """
    from smflow.landing import LandingZone

    zone = zone or LandingZone.for_landing()
    client = client or fetch_client(granule.provider)
    ref = zone.ref(granule.product, granule.day)
    with tempfile.TemporaryDirectory(prefix="smflow-fetch-") as tmp:
        path = _download(granule, client, Path(tmp), attempts=attempts, backoff=backoff)
        check_granule_day(granule.product, granule.day, path, source=granule.url)
        data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    out = {**ref.to_dict(), "sha256": digest, "provenance": granule.provenance()}
    head = zone.head(ref.key)
    if head is not None and head.get("Metadata", {}).get("sha256") == digest \
            and all(head["Metadata"].get(k) == v for k, v in granule.metadata().items()):
        return {**out, "status": "unchanged"}
    zone.ensure_bucket()
    zone.s3.put_object(Bucket=ref.bucket, Key=ref.key, Body=data, ContentType="application/x-netcdf",
                       Metadata={"sha256": digest, "product": granule.product, "day": granule.day.isoformat(),
                                 **granule.metadata()})
    log.info("landed %s (%d bytes, sha256 %s) from %s %s", ref.uri, len(data), digest[:12], granule.provider,
             granule.granule_id)
    return {**out, "status": "landed"}


def landed_provenance(zone, product: str, day: DayLike) -> dict[str, str] | None:
    """The provenance metadata of the landed granule of ``product`` on ``day`` (None when not landed)."""
    head = zone.head(zone.granule_key(product, day))
    if head is None:
        return None
    return {k: v for k, v in head.get("Metadata", {}).items() if k in PROVENANCE_KEYS or k == "sha256"}


def is_current(landed: dict[str, str] | None, granule: ProviderGranule) -> bool:
    """True when the landed object is the provider's current version of ``granule``.

    Compared: granule id, revision and the announced checksum (where the provider gives them). A
    CDS day (no checksum, no revision) is current once landed.
    """
    if not landed:
        return False
    wanted = granule.metadata()
    return all(landed.get(k) == wanted[k] for k in ("granule-id", "revision", "source-checksum") if k in wanted)


__all__ = ["CONNECTIONS", "FetchFailed", "ProviderGranule", "ProviderUnavailable", "UnexpectedGranule",
           "CredentialsError", "check_granule_day", "fetch_client", "connection_id", "fetch_to_landing",
           "find_granule", "is_current", "landed_provenance", "provider_inventory", "provider_source"]
