"""Reconcile the providers' archives and the landing zone with the time-series store.

With ``providers=True`` the provider of each product (``smflow.archive.fetch``) is asked for the
range in one search: a granule the provider publishes that is not landed arrived **late**, one
landed with another granule id, revision or checksum was **reprocessed**: both are to fetch
again. A day whose granule sits in the landing zone but whose field is not in the store was
missed (failed run, quarantine since fixed): it is a gap to ingest. A day the archive does not
have is reported, not backfilled: there is nothing to ingest yet. The days with anything to
fetch or ingest are the days to re-run, and only those.

What the *provider* archives hold is asked through :data:`ARCHIVE_SOURCES` (smflow archive
product → client and the provider's product name) and :func:`provider_granules`: every client
has the same ``granules(product, day)`` / ``download(granule, dest_dir)`` interface
(:class:`smflow.archive.base.ArchiveClient`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType


from smflow import s3 as s3mod
from smflow.catalog import canonical_name
from smflow.archive.base import ARCHIVE_CLIENTS, archive_client  # noqa: F401 - part of this module's API
from smflow.catalog import entries as catalog_entries
from smflow.config import Settings
from smflow.dates import as_date
from smflow.landing import LandingZone


#: smflow archive product → (client kind, the provider's product / collection name): a view of
#: the ``archive`` sections of the catalogue (``smflow/catalog/products/<name>.yaml``). The key is
#: the product's name, or the ``order`` name of one of its collections (``ascat_somo25``).
ARCHIVE_SOURCES: Mapping[str, tuple[str, str]] = MappingProxyType({
    source.order: (source.client, source.collection)
    for entry in catalog_entries().values() for source in entry.archive})


def provider_granules(product: str, day: date, *, client=None, **kwargs) -> list:
    """Granules the provider archive holds for smflow archive ``product`` on UTC ``day``.

    :param product: a key of :data:`ARCHIVE_SOURCES`.
    :param client: an :class:`~smflow.archive.base.ArchiveClient` to ask (default: one built by
        :func:`archive_client` with ``kwargs``, e.g. ``conn_id=``).
    """
    try:
        kind, name = ARCHIVE_SOURCES[canonical_name(product)]
    except KeyError:
        raise ValueError(f"no provider archive known for {product!r}; add an 'archive' section "
                         f"to smflow/catalog/products/{product}.yaml, which ARCHIVE_SOURCES "
                         f"derives from (known: {sorted(ARCHIVE_SOURCES)}).") from None
    return (client or archive_client(kind, **kwargs)).granules(name, day)


@dataclass(frozen=True)
class Reconciliation:
    """Outcome of :func:`reconcile` (JSON-able via :meth:`to_dict`).

    Attributes
    ----------
    start, end : date
        Inclusive range compared.
    to_ingest : list of dict
        Granule references ``{"product", "day", "bucket", "key"}`` in the landing zone, not in the store.
    to_fetch : list of dict
        Provider granules to fetch again, as the sensors give them (``{"product", "day", "status":
        "found", "granule"}``) plus ``"why"``: ``late`` (not landed) or ``reprocessed``.
    not_in_archive : dict
        Per product, the days the archive (the provider, or else the landing zone) does not have.
    in_store : dict
        Per product, the number of days already stored.
    unavailable : dict
        Per product, why its provider could not be asked (then only the landing zone is compared).
    """

    start: date
    end: date
    to_ingest: list[dict] = field(default_factory=list)
    not_in_archive: dict[str, list[str]] = field(default_factory=dict)
    in_store: dict[str, int] = field(default_factory=dict)
    to_fetch: list[dict] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def days_to_backfill(self) -> list[str]:
        """Days with at least one granule to fetch or ingest, ascending (ISO)."""
        return sorted({r["day"] for r in (*self.to_ingest, *self.to_fetch)})

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "to_ingest": self.to_ingest, "to_fetch": self.to_fetch,
                "days_to_backfill": self.days_to_backfill, "not_in_archive": self.not_in_archive,
                "in_store": self.in_store, "unavailable": self.unavailable}


def archive_days(zone: LandingZone, product: str, start: date, end: date) -> list[date]:
    """Days ``start .. end`` whose granule of ``product`` is in the landing zone (one listing per month)."""
    found: list[date] = []
    month = date(start.year, start.month, 1)
    while month <= end:
        prefix = f"{product}/{month:%Y}/{month:%m}/"
        try:
            keys = set(s3mod.list_keys(zone.s3, zone.bucket, prefix))
        except zone.s3.exceptions.NoSuchBucket:
            return []
        d = max(start, month)
        while d <= end and d.month == month.month:
            if zone.granule_key(product, d) in keys:
                found.append(d)
            d += timedelta(days=1)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return found


def reconcile(
    start: date | str,
    end: date | str,
    products: Iterable[str],
    *,
    settings: Settings | None = None,
    s3=None,
    zone: LandingZone | None = None,
    store=None,
    providers: bool = False,
) -> Reconciliation:
    """Compare the providers (optionally), the landing zone and the store for ``products`` over ``start .. end``.

    :param start, end: UTC days (inclusive).
    :param products: smflow product names.
    :param settings: deployment settings (default: :meth:`Settings.load`).
    :param s3: boto3 S3 client shared by the landing zone and the store.
    :param zone, store: a :class:`LandingZone` / :class:`~smflow.store.TimeSeriesStore` to use.
    :param providers: ask each product's provider archive (one search per product) for late and
        reprocessed granules; a provider that is down is reported in ``unavailable``.
    :raises smflow.archive.base.CredentialsError: when a provider's connection is not defined.
    """
    from smflow.store import TimeSeriesStore

    d0, d1 = as_date(start), as_date(end)
    if d1 < d0:
        raise ValueError(f"end {d1} is before start {d0}; swap them.")
    settings = settings or Settings.load()
    s3 = s3 or s3mod.client(settings)
    zone = zone or LandingZone(settings, s3=s3)
    store = store or TimeSeriesStore(settings, s3=s3)
    all_days = [d0 + timedelta(days=k) for k in range((d1 - d0).days + 1)]
    result = Reconciliation(d0, d1)
    for product in products:
        have = set(archive_days(zone, product, d0, d1))
        stored = set(store.days(product, d0, d1))
        result.in_store[product] = len(stored)
        fetching: set[date] = set()
        published = _provider_days(result, zone, product, d0, d1) if providers else None
        if published is not None:
            fetching = {as_date(r["day"]) for r in result.to_fetch if r["product"] == product}
            result.not_in_archive[product] = [d.isoformat() for d in all_days if d not in published]
        else:
            result.not_in_archive[product] = [d.isoformat() for d in all_days if d not in have]
        result.to_ingest.extend(zone.ref(product, d).to_dict() for d in sorted(have - stored - fetching))
    result.to_ingest.sort(key=lambda r: (r["day"], r["product"]))
    result.to_fetch.sort(key=lambda r: (r["day"], r["product"]))
    return result


def _provider_days(result: Reconciliation, zone: LandingZone, product: str, d0: date, d1: date) -> set[date] | None:
    """Add the late / reprocessed granules of ``product`` to ``result.to_fetch``; the provider's days.

    None when the product has no provider the fetch speaks, or the provider did not answer
    (recorded in ``result.unavailable``).
    """
    from smflow.archive.base import ProviderUnavailable, UnexpectedGranule
    from smflow.archive.fetch import is_current, landed_provenance, provider_inventory, provider_source

    if provider_source(product) is None:
        return None
    try:
        inventory = provider_inventory(product, d0, d1)
    except (ProviderUnavailable, UnexpectedGranule) as exc:
        result.unavailable[product] = str(exc)
        return None
    for d, granule in sorted(inventory.items()):
        landed = landed_provenance(zone, product, d)
        if is_current(landed, granule):
            continue
        why = "late" if landed is None else "reprocessed"
        result.to_fetch.append({"product": product, "day": d.isoformat(), "status": "found",
                                "granule": granule.to_dict(), "why": why})
    return set(inventory)
