"""The chunked layout of the time-series store: one Zarr v3 array per product, in an Icechunk repository in S3.

Layout
------
One Icechunk repository per domain at ``s3://{store_bucket}/timeseries-zarr/{domain}/``, branch
``main``. One Zarr group per product (``/{product}``) holding

* ``{variable}`` ``(time, lat, lon)``: the fields (``float32``, or ``float64`` when the field is
  ``float64``: the same rule as the per-day netCDF objects), fill value NaN, Blosc-zstd with
  byte shuffle, chunks ``(CHUNK_DAYS, tile_lat, tile_lon)`` (:func:`chunk_shape`);
* ``stored`` ``(time,)`` ``uint8``: 1 on the days a field was stored (a stored day may be all NaN
  off the overpasses; a day never stored is "missing"), chunks ``(CHUNK_DAYS,)``;
* ``time`` ``(time,)`` ``int32`` days since 1970-01-01 (CF), ``lat`` / ``lon`` (the grid's
  coordinates with their CF attributes), so ``xr.open_zarr(session.store, group=product)`` reads it.

The time axis is fixed: index ``k`` is day ``1970-01-01 + k``, up to :data:`LAST_DAY`. Arrays are
sparse (a chunk nobody wrote is not stored and reads as NaN), so appending a day is writing its
chunk(s) and never changes array metadata: writers of different days meet only on a shared chunk.

Chunk shape, for the two access patterns
----------------------------------------
``CHUNK_DAYS`` = 32 days x tiles of at most ``TILE`` = 256 x 256 cells: 8 MiB per ``float32`` chunk
before compression. A cell's (or the domain's) 180-day window touches 6-7 time chunks per tile: on
the Big Island (13 x 10 cells, one tile) that is 7 chunk GETs instead of 180 objects; on a
500 x 500 domain (250,000 cells, 4 tiles) 28. A day's map touches one chunk per tile (it reads
32 days to use one: the price of the window read being cheap). Longer time chunks make windows
cheaper still but a day's write rewrites the whole chunk (write amplification ``CHUNK_DAYS``) and
every writer of the same month meets on it.

Why Icechunk (transactional commits) and not bare Zarr on S3
------------------------------------------------------------
A day is a slice of a chunk shared with 31 other days: storing it is read-modify-write of that
chunk. Two Airflow tasks storing different days of one product (a backfill with several active
runs, reconcile's re-runs, the bulk seed) would, on bare Zarr, both read the chunk and the second
write would silently drop the first day (a lost update). Icechunk commits are transactions on a
branch (conditional PUT of the branch reference: SeaweedFS, S3 and MinIO honour ``If-Match``):
a commit based on a stale snapshot is rebased with :class:`icechunk.ConflictDetector`, which
passes when the other commit touched other chunks and fails when it touched the same chunk; then
:meth:`ChunkedTimeSeriesStore.put` re-reads the chunk from the new tip and writes again
(:data:`MAX_ATTEMPTS`), so no day is ever lost and no lock service is needed. Readers see whole
commits only (never half a day). Consolidated metadata is what Icechunk's snapshot is: one object
holding the metadata of every group and array (no per-array ``zarr.json`` GETs), which is why
:func:`zarr.consolidate_metadata` is not used on top of it.

Idempotent per day: a re-run replaces the day's slice (an index, never an append). A re-run with
the same values commits nothing (compared first), so re-runs do not grow the repository. Replaced
chunks stay in older snapshots until ``repo.expire_snapshots`` + ``repo.garbage_collect`` (Icechunk's
maintenance) remove them.

Icechunk 1.1 and Zarr 3.1 are the releases that support Python 3.11 (the project's interpreter).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from smflow import s3 as s3mod
from smflow.config import Settings
from smflow.dates import DayLike, as_date

from smflow.store.daily_objects import FieldStoreBase, check_field

if TYPE_CHECKING:
    import icechunk

log = logging.getLogger(__name__)

#: Key prefix of the repositories in the store bucket (one per domain below it).
PREFIX = "timeseries-zarr"
#: Day of time index 0 and the last day the fixed time axis holds.
EPOCH = date(1970, 1, 1)
LAST_DAY = date(2099, 12, 31)
N_DAYS = (LAST_DAY - EPOCH).days + 1
#: Days per chunk along time; cells per chunk side along lat and lon (see the module docstring).
CHUNK_DAYS = 32
TILE = 256
#: Commits of one write before giving up when other writers keep touching the same chunk.
MAX_ATTEMPTS = 20
BRANCH = "main"
#: Coordinate, flag and time arrays of a product group (every other array is the data variable).
_AUX_ARRAYS = ("stored", "time", "lat", "lon")


def chunk_shape(grid_shape: tuple[int, int]) -> tuple[int, int, int]:
    """Chunk shape ``(days, lat, lon)`` of a product's field array on a grid of ``grid_shape`` cells."""
    ny, nx = grid_shape
    return CHUNK_DAYS, min(ny, TILE), min(nx, TILE)


def day_index(day: DayLike) -> int:
    """Time index of ``day`` (days since 1970-01-01); ``ValueError`` outside the fixed axis."""
    d = as_date(day)
    if not EPOCH <= d <= LAST_DAY:
        raise ValueError(f"{d} is outside the chunked store's time axis {EPOCH}..{LAST_DAY}")
    return (d - EPOCH).days


def _json_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` with numpy scalars and arrays as JSON values (Zarr attributes are JSON)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[str(k)] = v
    return out


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality, NaN equal to NaN (what decides whether a re-run changes anything)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


class ChunkedTimeSeriesStore(FieldStoreBase):
    """Gridded daily fields per product in one chunked Zarr v3 array each (Icechunk in S3).

    The same interface as :class:`smflow.store.daily_objects.DailyObjectStore` (``put``, ``get``,
    ``window``, ``days``, ``put_many``, ``delete``, ``key``, ``uri``) and the same values out:
    dtype, fill (NaN), coordinates, name and attributes.

    :param settings: deployment settings (``store_bucket``, S3 endpoint and the default identity's
        keys, which Icechunk signs with).
    :param s3: boto3 S3 client (creates the bucket; default :func:`smflow.s3.client`).
    :param grid: the domain grid every field must be on (default: ``load_domain()``).
    :param max_workers: unused (Zarr fetches a window's chunks concurrently).
    """

    #: Name of this layout (``Settings.store_backend``).
    backend = "zarr"

    def __init__(self, settings: Settings | None = None, s3=None, **kwargs: Any) -> None:
        super().__init__(settings, s3, **kwargs)
        self._repo: icechunk.Repository | None = None
        # one writer per instance at a time: threads of one process need not race through commits
        self._write_lock = threading.Lock()

    @property
    def prefix(self) -> str:
        """Key prefix of this domain's repository in :attr:`bucket`."""
        return f"{PREFIX}/{self.grid.name}"

    def key(self, product: str, day: DayLike) -> str:
        """Address of a stored day: ``timeseries-zarr/{domain}/{product}/{YYYYMMDD}`` (repository
        prefix, Zarr group, day; not an S3 object: the day lives inside shared chunks)."""
        return f"{self.prefix}/{product}/{as_date(day):%Y%m%d}"

    def uri(self, product: str, day: DayLike) -> str:
        return f"s3://{self.bucket}/{self.key(product, day)}"

    # -- repository --------------------------------------------------------------------------
    def _storage(self) -> icechunk.Storage:
        import icechunk

        access_key, secret_key = self.settings.s3_keys(None)
        return icechunk.s3_storage(
            bucket=self.bucket, prefix=self.prefix, endpoint_url=self.settings.s3_endpoint_url,
            allow_http=self.settings.s3_endpoint_url.startswith("http://"), access_key_id=access_key,
            secret_access_key=secret_key, region="us-east-1", force_path_style=True,
        )

    def _config(self) -> icechunk.RepositoryConfig:
        import icechunk

        config = icechunk.RepositoryConfig.default()
        # No manifest preloading: by default Icechunk fetches the manifests of arrays named like
        # coordinates (time, lat, lon) at every session, which a window read never needs.
        config.manifest = icechunk.ManifestConfig(preload=icechunk.ManifestPreloadConfig(max_total_refs=0))
        return config

    @property
    def repo(self) -> icechunk.Repository:
        """The domain's Icechunk repository (created on first use)."""
        if self._repo is None:
            import icechunk

            self.ensure_bucket()
            storage = self._storage()
            try:
                self._repo = icechunk.Repository.open_or_create(storage, config=self._config())
            except icechunk.IcechunkError:
                # another process created it between our existence check and our create
                self._repo = icechunk.Repository.open(storage, config=self._config())
        return self._repo

    def _read_repo(self) -> icechunk.Repository | None:
        """The repository for reading (never creates one), or None when there is none yet."""
        if self._repo is None:
            import icechunk

            storage = self._storage()
            try:
                exists = icechunk.Repository.exists(storage)
            except icechunk.IcechunkError:
                if self.head_bucket() is None:
                    return None  # no bucket yet: nothing stored
                raise  # S3 unreachable or refusing: never read that as "nothing stored"
            if not exists:
                return None
            self._repo = icechunk.Repository.open(storage, config=self._config())
        return self._repo

    def head_bucket(self) -> dict | None:
        """``head_bucket`` of :attr:`bucket`, None when it does not exist (other S3 errors raise)."""
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return None
            raise

    def _read_group(self, product: str):
        """The product's Zarr group at the tip of ``main`` (read-only), or None."""
        import zarr

        repo = self._read_repo()
        if repo is None:
            return None
        session = repo.readonly_session(branch=BRANCH)
        try:
            return zarr.open_group(session.store, path=product, mode="r")
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            return None

    @staticmethod
    def _variable(group) -> str:
        return group.attrs["variable"]

    def _create_group(self, root, product: str, field: xr.DataArray):
        """Create the product's group and arrays (see the module docstring) for ``field``'s variable."""
        import zarr
        from zarr.codecs import BloscCodec

        name = str(field.name or "soil_moisture")
        if name in _AUX_ARRAYS:
            raise ValueError(f"a field named {name!r} clashes with the store's own arrays {_AUX_ARRAYS}; rename it")
        dtype = "float64" if field.dtype == np.float64 else "float32"
        group = root.create_group(product, attributes={"variable": name, "product": product,
                                                       "domain": self.grid.name})
        compressor = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
        ny, nx = self.grid.shape
        group.create_array(name, shape=(N_DAYS, ny, nx), chunks=chunk_shape((ny, nx)), dtype=dtype,
                           fill_value=np.nan, compressors=compressor, dimension_names=("time", "lat", "lon"),
                           attributes=_json_attrs(field.attrs))
        group.create_array("stored", shape=(N_DAYS,), chunks=(CHUNK_DAYS,), dtype="uint8", fill_value=0,
                           dimension_names=("time",),
                           attributes={"long_name": "1 where a field is stored for the day", "units": "1"})
        time_axis = group.create_array("time", shape=(N_DAYS,), chunks=(N_DAYS,), dtype="int32",
                                       fill_value=-1, dimension_names=("time",),
                                       attributes={"standard_name": "time", "long_name": "UTC day", "axis": "T",
                                                   "units": "days since 1970-01-01 00:00:00",
                                                   "calendar": "standard"})
        time_axis[:] = np.arange(N_DAYS, dtype="int32")
        for dim in ("lat", "lon"):
            coord = field[dim]
            arr = group.create_array(dim, shape=(coord.size,), chunks=(coord.size,), dtype=coord.dtype,
                                     dimension_names=(dim,), attributes=_json_attrs(coord.attrs))
            arr[:] = coord.values
        return zarr.open_group(root.store, path=product, mode="r+")

    def _write(self, product: str, days: list[date], fields: list[xr.DataArray], message: str) -> None:
        """Write ``fields[k]`` as day ``days[k]`` of ``product`` in one commit (retried on conflict)."""
        import icechunk
        import zarr

        for f in fields:
            check_field(self.grid, f)
        index = np.array([day_index(d) for d in days])
        k0, k1 = int(index.min()), int(index.max()) + 1
        delay = 0.05
        with self._write_lock:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                session = self.repo.writable_session(BRANCH)
                root = zarr.open_group(session.store, mode="a")
                try:
                    group = zarr.open_group(session.store, path=product, mode="r+")
                except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
                    group = self._create_group(root, product, fields[0])
                name = self._variable(group)
                names = {str(f.name or "soil_moisture") for f in fields}
                if names != {name}:
                    raise ValueError(f"store product {product!r} holds variable {name!r}; got fields named "
                                     f"{sorted(names)} (one variable per product: store the other under its own product name)")
                data, stored = group[name], group["stored"]
                if data.dtype == np.float32 and any(f.dtype == np.float64 for f in fields):
                    raise ValueError(f"store product {product!r} holds float32 fields; a float64 field would lose "
                                     "precision: cast it to float32 or store it under another product name")
                values = np.stack([np.asarray(f.values, dtype=data.dtype) for f in fields])
                # The existing slab of the days written: days in between keep their values.
                slab, flags = data[k0:k1], stored[k0:k1]
                new_slab, new_flags = slab.copy(), flags.copy()
                new_slab[index - k0] = values
                new_flags[index - k0] = 1
                attrs = _json_attrs(fields[-1].attrs)
                if _same_values(slab, new_slab) and _same_values(flags, new_flags) and dict(data.attrs) == attrs:
                    return  # a re-run with the same values: nothing to commit
                data[k0:k1] = new_slab
                stored[k0:k1] = new_flags
                if dict(data.attrs) != attrs:
                    data.attrs.put(attrs)
                try:
                    session.commit(message, rebase_with=icechunk.ConflictDetector(), rebase_tries=5)
                    return
                except (icechunk.RebaseFailedError, icechunk.ConflictError) as exc:
                    # Another writer changed one of our chunks (or created the group) meanwhile:
                    # start again from the new tip, re-reading the chunk, so its day is kept.
                    log.info("store %s: commit conflict (%s), attempt %d/%d", product, type(exc).__name__,
                             attempt, MAX_ATTEMPTS)
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
        raise RuntimeError(f"store {self.uri(product, days[0])}: {MAX_ATTEMPTS} commits of {message!r} conflicted "
                           "with other writers of the same chunks; re-run the task")

    # -- the store interface -----------------------------------------------------------------
    def put(self, product: str, day: DayLike, field: xr.DataArray) -> str:
        """Store ``field`` ``(lat, lon)`` for ``product`` and ``day`` (replaces); returns :meth:`key`.

        Raises ``ValueError`` when the field is not a ``(lat, lon)`` field on the grid.
        """
        d = as_date(day)
        check_field(self.grid, field)
        self._write(product, [d], [field], f"put {product} {d.isoformat()}")
        return self.key(product, d)

    def put_many(self, product: str, days: list[DayLike], series: xr.DataArray) -> list[str]:
        """Store ``series`` ``(time, lat, lon)``: day ``days[k]`` is ``series.isel(time=k)``, in one commit.

        Returns the :meth:`key` of each day.
        """
        if len(days) != series.sizes.get("time", -1):
            raise ValueError(f"{len(days)} days for a series of {series.sizes.get('time')} time steps")
        ds = [as_date(d) for d in days]
        if not ds:
            return []
        fields = [series.isel(time=k, drop=True) for k in range(len(ds))]
        self._write(product, ds, fields, f"put {product} {min(ds).isoformat()}..{max(ds).isoformat()} ({len(ds)} days)")
        return [self.key(product, d) for d in ds]

    def delete(self, product: str, day: DayLike) -> None:
        """Remove the field of ``product`` and ``day`` (nothing happens when there is none)."""
        import icechunk

        d = as_date(day)
        k = day_index(d)
        group = self._read_group(product)
        if group is None or not group["stored"][k]:
            return
        import zarr

        with self._write_lock:
            for _ in range(MAX_ATTEMPTS):
                session = self.repo.writable_session(BRANCH)
                g = zarr.open_group(session.store, path=product, mode="r+")
                g[self._variable(g)][k] = np.nan
                g["stored"][k] = 0
                try:
                    session.commit(f"delete {product} {d.isoformat()}", rebase_with=icechunk.ConflictDetector())
                    return
                except (icechunk.RebaseFailedError, icechunk.ConflictError):
                    time.sleep(0.05 * (1 + random.random()))
        raise RuntimeError(f"store {self.uri(product, d)}: could not delete the day (conflicting writers)")

    def get(self, product: str, day: DayLike) -> xr.DataArray | None:
        """The stored ``(lat, lon)`` field, or None if there is none."""
        d = as_date(day)
        k = day_index(d)
        group = self._read_group(product)
        if group is None or not group["stored"][k]:
            return None
        name = self._variable(group)
        data = group[name]
        coords = {dim: xr.DataArray(group[dim][:], dims=dim, attrs=dict(group[dim].attrs)) for dim in ("lat", "lon")}
        field = xr.DataArray(data[k], dims=("lat", "lon"), coords=coords, name=name, attrs=dict(data.attrs))
        return field.assign_coords(time=np.datetime64(d, "ns"))

    def window(self, product: str, end_day: DayLike, n_days: int, *, lazy: bool = False) -> xr.DataArray:
        """The ``n_days`` days ending with ``end_day`` (inclusive), ``(time, lat, lon)``.

        Parameters
        ----------
        product : str
            Store product.
        end_day : date or str
            Last day of the window.
        n_days : int
            Days in the window (>= 1).
        lazy : bool, default False
            False: the window in memory, numpy ``float64`` (one read of the chunks it overlaps,
            fetched concurrently by Zarr). True: a dask array over the store's chunks, one dask
            chunk per spatial tile ``(n_days, tile_lat, tile_lon)`` (:func:`chunk_shape`), in the
            stored dtype (``float32`` for ``float32`` products: exact in ``float64``, which the
            consumer converts to band by band); nothing but the ``stored`` flags is read until it
            is computed. A tile never written (all ocean) is not stored and reads as NaN without
            being fetched or decoded. It reads the repository's snapshot of this call.

        Returns
        -------
        xr.DataArray
            ``(time, lat, lon)``, named after the product's variable, with its attributes.
            Missing days (never stored) are all-NaN and listed in the ``missing_days``
            attribute (comma-separated ISO days), in both modes.

        Raises
        ------
        ValueError
            ``n_days < 1`` or a day outside the store's time axis.
        """
        if n_days < 1:
            raise ValueError(f"n_days must be >= 1, got {n_days}.")
        end = as_date(end_day)
        days = [end - timedelta(days=n_days - 1 - k) for k in range(n_days)]
        k0, k1 = day_index(days[0]), day_index(end) + 1
        group = self._read_group(product)
        ny, nx = self.grid.shape
        name, attrs = "soil_moisture", {}
        if group is None:
            stored = np.zeros(n_days, dtype=bool)
            if lazy:
                import dask.array as da

                stack = da.full((n_days, ny, nx), np.nan, dtype=np.float64, chunks=(n_days, *chunk_shape((ny, nx))[1:]))
            else:
                stack = np.full((n_days, ny, nx), np.nan)
        else:
            stored = group["stored"][k0:k1].astype(bool)
            variable = self._variable(group)
            data = group[variable]
            if lazy:
                stack = _lazy_window(data, k0, stored, f"{self.grid.name}-{product}-{k0}-{n_days}")
            else:
                stack = np.asarray(data[k0:k1], dtype=np.float64)
                stack[~stored] = np.nan
            if stored.any():
                name, attrs = variable, dict(data.attrs)
        return xr.DataArray(
            stack,
            dims=("time", "lat", "lon"),
            coords={"time": ("time", np.array(days, dtype="datetime64[ns]")),
                    "lat": self.grid.lat_coord(), "lon": self.grid.lon_coord()},
            name=name,
            attrs={**attrs, "product": product,
                   "missing_days": ",".join(d.isoformat() for d, s in zip(days, stored) if not s)},
        )

    def days(self, product: str, start: DayLike, end: DayLike) -> list[date]:
        """Days ``start .. end`` (inclusive) for which a field is stored, ascending."""
        d0, d1 = as_date(start), as_date(end)
        group = self._read_group(product)
        if group is None or d1 < d0:
            return []
        k0 = day_index(d0)
        flags = group["stored"][k0:day_index(d1) + 1]
        return [EPOCH + timedelta(days=k0 + int(i)) for i in np.flatnonzero(flags)]


class _WindowBlocks:
    """Array-like view of days ``k0 .. k0 + len(stored)`` of a product's Zarr array (what
    :func:`dask.array.from_array` slices): each slice reads only its chunks, the days never
    stored set to NaN."""

    def __init__(self, data, k0: int, stored: np.ndarray) -> None:
        self.data, self.k0, self.missing = data, k0, ~np.asarray(stored, dtype=bool)
        self.shape = (self.missing.size, *data.shape[1:])
        self.dtype = np.dtype(data.dtype)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        t, y, x = key
        start, stop, step = t.indices(self.shape[0])
        if step != 1:
            raise IndexError("a store window is read in contiguous day ranges")
        block = np.asarray(self.data[self.k0 + start:self.k0 + stop, y, x])
        block[self.missing[start:stop]] = np.nan
        return block


def _lazy_window(data, k0: int, stored: np.ndarray, label: str):
    """Dask array ``(days, lat, lon)`` over days ``k0 ..`` of ``data``, one chunk per spatial tile."""
    import uuid

    import dask.array as da

    _, tile_lat, tile_lon = data.chunks
    blocks = _WindowBlocks(data, k0, stored)
    # a fresh name per call: two windows of the same days read from different snapshots may differ
    return da.from_array(blocks, chunks=(blocks.shape[0], tile_lat, tile_lon), lock=False, asarray=False,
                         name=f"store-window-{label}-{uuid.uuid4().hex}", meta=np.empty((0, 0, 0), blocks.dtype))
