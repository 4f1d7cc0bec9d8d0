"""Operating the chunked store: snapshot expiry with garbage collection, and the migration guard.

* :func:`expire_snapshots`: every stored day is an Icechunk commit, so a repository grows by a
  snapshot (and by the chunks the commit replaced) every day. Expiry drops the snapshots older than
  the retention (``Settings.store_retention_days``, ``SMFLOW_STORE_RETENTION_DAYS``, 30 days) from
  the history of ``main``, then Icechunk's garbage collection deletes the objects (chunks,
  manifests, snapshots, transaction logs) no branch or tag reaches any more and that are older than
  the same threshold. The tip of ``main`` is never expired: the data read back is unchanged.
  ``python -m smflow.store expire`` and the ``store_maintenance`` DAG run it.
* :func:`check_migrated`: a deployment that holds per-day netCDF objects and switched to the
  chunked layout without running ``python -m smflow.store migrate`` would otherwise read an empty
  store (a 180-day window of NaN, every input "missing") and then start writing a one-day history
  into it. :func:`smflow.store.TimeSeriesStore` calls this once per process and domain: one
  ``ListObjectsV2`` with ``MaxKeys=1``; only when that finds a per-day object is the chunked
  repository opened.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from smflow.domain import DEFAULT_DOMAIN
from smflow.store.chunked import BRANCH, ChunkedTimeSeriesStore
from smflow.store.daily_objects import PREFIX as LEGACY_PREFIX

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpiryReport:
    """What :func:`expire_snapshots` did on one domain's repository.

    Attributes
    ----------
    domain : str
    repository : str
        ``s3://{store_bucket}/timeseries-zarr/{domain}/``.
    older_than : str
        The threshold (ISO 8601, UTC): snapshots and unreachable objects older than it go.
    expired_snapshots : int
        Snapshots dropped from the history (0 when there is no repository).
    snapshots_deleted, manifests_deleted, chunks_deleted, transaction_logs_deleted, attributes_deleted : int
        Objects the garbage collection deleted.
    bytes_deleted : int
        Their size [bytes].
    exists : bool
        False when the domain has no repository yet (nothing done, nothing created).
    """

    domain: str
    repository: str
    older_than: str
    expired_snapshots: int = 0
    snapshots_deleted: int = 0
    manifests_deleted: int = 0
    chunks_deleted: int = 0
    transaction_logs_deleted: int = 0
    attributes_deleted: int = 0
    bytes_deleted: int = 0
    exists: bool = True

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def expire_snapshots(store: ChunkedTimeSeriesStore, retention: timedelta, *,
                     now: datetime | None = None) -> ExpiryReport:
    """Expire the snapshots of ``store``'s repository older than ``retention`` and garbage-collect.

    Icechunk 1.1 ``Repository.expire_snapshots(older_than)`` re-parents the oldest kept snapshot of
    every branch on the repository's first commit (the tip of ``main`` is always kept, however old);
    ``Repository.garbage_collect(older_than)`` then deletes what no branch or tag reaches and was
    written before ``older_than``. The same threshold for both: an object written by a commit still
    in progress is younger than the retention, so it is never collected under a running writer.
    Idempotent: a second run expires and deletes nothing.

    Parameters
    ----------
    store : ChunkedTimeSeriesStore
        The domain's chunked store (its bucket, prefix and credentials).
    retention : timedelta
        How far back the history stays (time travel to a snapshot inside it keeps working).
        Must be positive.
    now : datetime, optional
        The present (UTC; default the clock).

    Returns
    -------
    ExpiryReport

    Raises
    ------
    ValueError
        ``retention`` is not positive.
    icechunk.IcechunkError
        S3 refused or is unreachable (an outage is never read as "no repository").
    """
    if retention <= timedelta(0):
        raise ValueError(f"retention must be positive, got {retention}; use e.g. timedelta(days=30)")
    older_than = (now or datetime.now(timezone.utc)) - retention
    repository = f"s3://{store.bucket}/{store.prefix}/"
    repo = store._read_repo()
    if repo is None:
        log.info("store %s: no repository, nothing to expire", repository)
        return ExpiryReport(store.grid.name, repository, older_than.isoformat(), exists=False)
    expired = repo.expire_snapshots(older_than)
    summary = repo.garbage_collect(older_than)
    report = ExpiryReport(
        store.grid.name, repository, older_than.isoformat(), expired_snapshots=len(expired),
        snapshots_deleted=summary.snapshots_deleted, manifests_deleted=summary.manifests_deleted,
        chunks_deleted=summary.chunks_deleted, transaction_logs_deleted=summary.transaction_logs_deleted,
        attributes_deleted=summary.attributes_deleted, bytes_deleted=summary.bytes_deleted,
    )
    log.info("store %s: expired %d snapshots older than %s on %s; deleted %d chunks, %d manifests, "
             "%d snapshots (%d bytes)", repository, report.expired_snapshots, report.older_than, BRANCH,
             report.chunks_deleted, report.manifests_deleted, report.snapshots_deleted, report.bytes_deleted)
    return report


class UnmigratedStoreError(RuntimeError):
    """The per-day objects of a domain exist and the chunked store does not hold their product."""


#: (endpoint, bucket, domain) already checked in this process (see :func:`check_migrated`).
_CHECKED: set[tuple[str, str, str]] = set()
_CHECKED_LOCK = threading.Lock()


def legacy_prefix(domain: str) -> str:
    """Key prefix of a domain's per-day netCDF objects (:class:`~smflow.store.daily_objects.DailyObjectStore`)."""
    return f"{LEGACY_PREFIX}/" if domain == DEFAULT_DOMAIN else f"{LEGACY_PREFIX}/{domain}/"


def check_migrated(store: ChunkedTimeSeriesStore) -> None:
    """Refuse a chunked store whose domain still holds unmigrated per-day objects.

    One ``ListObjectsV2`` (``MaxKeys=1``) under the domain's per-day prefix; when it finds an object
    ``{prefix}{product}/{YYYY}/{product}_{YYYYMMDD}.nc``, the chunked repository must hold
    ``product``. Passed checks are remembered for the process (per endpoint, bucket and domain),
    so a task pays one list call, not one per read. Nothing is ever deleted.

    Parameters
    ----------
    store : ChunkedTimeSeriesStore

    Raises
    ------
    UnmigratedStoreError
        Per-day objects are present and the chunked store has no such product: the message names
        the bucket, the prefix and the migration command.
    botocore.exceptions.ClientError
        S3 refused the listing (other than "no such bucket", which means nothing is stored).
    """
    from botocore.exceptions import ClientError

    from smflow.s3 import is_missing

    key = (store.settings.s3_endpoint_url, store.bucket, store.grid.name)
    if key in _CHECKED:
        return
    prefix = legacy_prefix(store.grid.name)
    try:
        listing = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as exc:
        if not is_missing(exc, bucket_too=True):
            raise
        listing = {}
    contents = listing.get("Contents") or []
    if contents:
        found = contents[0]["Key"]
        m = re.match(rf"^{re.escape(prefix)}([^/]+)/\d{{4}}/\1_\d{{8}}\.nc$", found)
        # On the default domain the prefix also holds other domains' objects (timeseries/{domain}/...):
        # those say nothing about this domain.
        if m is not None and store._read_group(m.group(1)) is None:
            domain_arg = "" if store.grid.name == DEFAULT_DOMAIN else f" --domain {store.grid.name}"
            raise UnmigratedStoreError(
                f"s3://{store.bucket}/{prefix} holds per-day netCDF objects of the time-series store (e.g. {found}) "
                f"but the chunked store s3://{store.bucket}/{store.prefix}/ has no product {m.group(1)!r}: this "
                f"deployment has not been migrated. Run `python -m smflow.store migrate{domain_arg}` (copies and "
                "verifies every day, deletes nothing; docs/store.md), or keep the per-day layout with "
                "SMFLOW_STORE_BACKEND=netcdf."
            )
    with _CHECKED_LOCK:
        _CHECKED.add(key)


def configured_domains() -> list[str]:
    """The domains of the daily pipelines (``config/daily_pipelines.json``), each once, in file order."""
    from smflow.catalog.pipelines import pipelines

    return list(dict.fromkeys(p.domain for p in pipelines().values()))


def expire_store(settings=None, *, domains: list[str] | None = None, retention: timedelta | None = None,
                 s3=None) -> list[ExpiryReport]:
    """:func:`expire_snapshots` on the chunked store of every domain (what the CLI and the DAG run).

    Parameters
    ----------
    settings : Settings, optional
        Deployment settings (default :meth:`Settings.load`).
    domains : list of str, optional
        Domain names (default :func:`configured_domains`); a domain without a repository is reported
        with ``exists`` False and left alone.
    retention : timedelta, optional
        Default ``settings.store_retention_days``.
    s3 : boto3 S3 client, optional

    Returns
    -------
    list of ExpiryReport
        One per domain, in order.
    """
    from smflow.config import Settings
    from smflow.domain import load_domain

    settings = settings or Settings.load()
    retention = retention if retention is not None else timedelta(days=settings.store_retention_days)
    now = datetime.now(timezone.utc)
    return [expire_snapshots(ChunkedTimeSeriesStore(settings, s3, grid=load_domain(name)), retention, now=now)
            for name in (domains or configured_domains())]
