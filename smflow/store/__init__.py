"""The internal time-series store: the gridded daily fields of each product on the domain grid, in S3.

Two layouts behind one interface (``put``, ``get``, ``window``, ``days``, ``put_many``, ``delete``,
``key``, ``uri``; the same values out: dtype, fill, coordinates, name, attributes):

* ``zarr`` (default): one chunked Zarr v3 array per product in an Icechunk repository
  (:mod:`smflow.store.chunked`); a 180-day window is a handful of chunk requests.
* ``netcdf``: one netCDF object per product and day (:mod:`smflow.store.daily_objects`, the
  layout before issue 16); a 180-day window is 180 GET requests per product.

:func:`TimeSeriesStore` opens the layout the settings name (``SMFLOW_STORE_BACKEND``);
``python -m smflow.store migrate`` copies the per-day objects into the chunked store (docs/store.md);
until it has, the chunked layout refuses a domain whose per-day objects exist
(:class:`UnmigratedStoreError`). ``python -m smflow.store expire`` expires old snapshots
(:mod:`smflow.store.maintenance`).
"""

from __future__ import annotations

from smflow.config import Settings
from smflow.domain import DomainGrid
from smflow.store.chunked import ChunkedTimeSeriesStore
from smflow.store.daily_objects import PREFIX, DailyObjectStore
from smflow.store.maintenance import UnmigratedStoreError, check_migrated

#: Layouts by their ``Settings.store_backend`` name.
BACKENDS = {"zarr": ChunkedTimeSeriesStore, "netcdf": DailyObjectStore}

__all__ = ["BACKENDS", "PREFIX", "ChunkedTimeSeriesStore", "DailyObjectStore", "TimeSeriesStore",
           "UnmigratedStoreError"]


def TimeSeriesStore(  # noqa: N802 - the name callers construct, whichever layout it opens
    settings: Settings | None = None,
    s3=None,
    *,
    grid: DomainGrid | None = None,
    max_workers: int = 8,
    backend: str | None = None,
) -> DailyObjectStore | ChunkedTimeSeriesStore:
    """The time-series store of the configured layout.

    Parameters
    ----------
    settings : Settings, optional
        Deployment settings (default :meth:`Settings.load`); ``settings.store_backend`` names the layout.
    s3 : boto3 S3 client, optional
    grid : DomainGrid, optional
        The domain grid every field is on (default ``load_domain()``).
    max_workers : int
        Threads of the per-day layout's window reads.
    backend : {"zarr", "netcdf"}, optional
        Overrides ``settings.store_backend``.

    Raises
    ------
    ValueError
        For a layout name other than those of :data:`BACKENDS`.
    UnmigratedStoreError
        The chunked layout, on a domain whose per-day netCDF objects exist in the store bucket
        while the chunked store has no such product (``python -m smflow.store migrate`` first;
        :func:`smflow.store.maintenance.check_migrated`: one list call per process and domain).
    """
    settings = settings or Settings.load()
    name = backend or settings.store_backend
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown time-series store layout {name!r} (SMFLOW_STORE_BACKEND); "
                         f"choose one of {', '.join(BACKENDS)}") from None
    store = cls(settings, s3, grid=grid, max_workers=max_workers)
    if isinstance(store, ChunkedTimeSeriesStore):
        check_migrated(store)
    return store
