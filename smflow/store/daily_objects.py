"""The per-day layout of the time-series store: one netCDF object per product and day, in S3.

Key: ``s3://{store_bucket}/timeseries/{product}/{YYYY}/{product}_{YYYYMMDD}.nc`` (one object per
product and day; a re-run replaces it). Each object is a small netCDF-4 file with the
``(lat, lon)`` field on the domain grid plus a length-1 ``time`` axis (the UTC day at 00:00).
The same field always serialises to the same bytes (netCDF4 engine, fixed encoding, no time
stamps), so a re-run that changes nothing rewrites an identical object.

A window of ``n`` days is ``n`` GET requests per product; the chunked layout
(:mod:`smflow.store.chunked`) reads it in a handful of chunk requests. :func:`smflow.store.TimeSeriesStore`
picks the layout from the settings; ``python -m smflow.store migrate`` copies this layout into the other.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import xarray as xr

from smflow import s3 as s3mod
from smflow.config import Settings
from smflow.dates import DayLike, as_date
from smflow.domain import DEFAULT_DOMAIN, DomainGrid, load_domain

PREFIX = "timeseries"
_KEY_RE = re.compile(r"_(\d{8})\.nc$")
#: The HDF5 library under netCDF4 is not thread-safe; (de)serialising is cheap, so serialise it
#: and let only the S3 transfers run in parallel.
_NETCDF_LOCK = threading.Lock()


def _encode(field: xr.DataArray, day: date) -> bytes:
    """Deterministic netCDF-4 bytes of ``field`` for ``day``."""
    name = field.name or "soil_moisture"
    ds = field.to_dataset(name=name).expand_dims(time=[np.datetime64(day, "ns")])
    ds["time"].attrs = {"standard_name": "time", "long_name": "UTC day", "axis": "T"}
    encoding = {
        name: {"zlib": True, "complevel": 4, "shuffle": True, "_FillValue": np.nan,
               "dtype": "float64" if field.dtype == np.float64 else "float32"},
        "time": {"units": "days since 1970-01-01 00:00:00", "calendar": "standard",
                 "dtype": "int32"},
        "lat": {"_FillValue": None},
        "lon": {"_FillValue": None},
    }
    # netCDF4 engine via a file: deterministic bytes (h5netcdf in-memory writes differ run to run).
    with tempfile.TemporaryDirectory(prefix="smflow-store-") as tmp, _NETCDF_LOCK:
        path = Path(tmp) / "field.nc"
        ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=encoding)
        return path.read_bytes()


def _decode(data: bytes) -> xr.DataArray:
    with tempfile.TemporaryDirectory(prefix="smflow-store-") as tmp, _NETCDF_LOCK:
        path = Path(tmp) / "field.nc"
        path.write_bytes(data)
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    name = next(iter(ds.data_vars))
    return ds[name].isel(time=0)


def _decode_values(data: bytes) -> tuple[str, np.ndarray]:
    """Fast path of :func:`_decode` for :meth:`TimeSeriesStore.window`: the data variable's values
    ``(lat, lon)`` read with h5py from memory (~1 ms instead of ~30 ms through xarray)."""
    import io

    import h5py

    with _NETCDF_LOCK, h5py.File(io.BytesIO(data), "r") as f:
        names = [k for k, v in f.items() if isinstance(v, h5py.Dataset) and k not in ("lat", "lon", "time")]
        if len(names) != 1:
            raise ValueError(f"store object has data variables {names}, expected exactly one")
        values = f[names[0]][()]
    return names[0], np.asarray(values[0], dtype=np.float64)


def check_field(grid: DomainGrid, field: xr.DataArray) -> None:
    """Raise ``ValueError`` unless ``field`` is a ``(lat, lon)`` field on ``grid`` (what both layouts store)."""
    if tuple(field.dims) != ("lat", "lon"):
        raise ValueError(
            f"field has dims {field.dims}; the store holds (lat, lon) fields on the "
            f"{grid.name} grid (select one day with .isel(time=k))."
        )
    if not grid.is_on_grid(field):
        raise ValueError(
            f"field is not on the {grid.name} grid {grid.shape}; regrid it with "
            "smflow.regrid.to_domain first."
        )


class FieldStoreBase(s3mod.BucketClient):
    """What both layouts share: the settings, the S3 client, the store bucket and the domain grid.

    :param settings: deployment settings (``store_bucket``, S3 endpoint).
    :param s3: boto3 S3 client (default: :func:`smflow.s3.client`).
    :param grid: the domain grid every field must be on (default: ``load_domain()``).
    :param max_workers: threads used by :meth:`window` (per-day layout) and :meth:`put_many`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        s3=None,
        *,
        grid: DomainGrid | None = None,
        max_workers: int = 8,
    ) -> None:
        super().__init__(settings, s3)
        self.grid = grid or load_domain()
        self.max_workers = max_workers

    @property
    def bucket(self) -> str:
        return self.settings.store_bucket


class DailyObjectStore(FieldStoreBase):
    """Gridded daily fields per product, one S3 object each (constructor: :class:`FieldStoreBase`)."""

    #: Name of this layout (``Settings.store_backend``).
    backend = "netcdf"

    def key(self, product: str, day: DayLike) -> str:
        """``timeseries/{product}/{YYYY}/{product}_{YYYYMMDD}.nc`` on the default domain,
        ``timeseries/{domain}/{product}/...`` on any other (each domain has its own grid)."""
        d = as_date(day)
        base = PREFIX if self.grid.name == DEFAULT_DOMAIN else f"{PREFIX}/{self.grid.name}"
        return f"{base}/{product}/{d:%Y}/{product}_{d:%Y%m%d}.nc"

    def uri(self, product: str, day: DayLike) -> str:
        return f"s3://{self.bucket}/{self.key(product, day)}"

    def put(self, product: str, day: DayLike, field: xr.DataArray) -> str:
        """Store ``field`` ``(lat, lon)`` for ``product`` and ``day`` (replaces); returns the key."""
        d = as_date(day)
        check_field(self.grid, field)
        field = field.drop_vars([c for c in field.coords if c not in ("lat", "lon")])
        data = _encode(field, d)
        self.ensure_bucket()
        key = self.key(product, d)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data,
                           ContentType="application/x-netcdf",
                           Metadata={"sha256": s3mod.sha256_hex(data)})
        return key

    def put_many(self, product: str, days: list[DayLike], series: xr.DataArray) -> list[str]:
        """Store ``series`` ``(time, lat, lon)``: day ``days[k]`` is ``series.isel(time=k)``; returns the keys.

        The objects are written in parallel (:attr:`max_workers` threads).
        """
        if len(days) != series.sizes.get("time", -1):
            raise ValueError(f"{len(days)} days for a series of {series.sizes.get('time')} time steps")
        self.ensure_bucket()  # once, before the threads
        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            return list(pool.map(lambda k: self.put(product, days[k], series.isel(time=k, drop=True)),
                                 range(len(days))))

    def delete(self, product: str, day: DayLike) -> None:
        """Remove the field of ``product`` and ``day`` (nothing happens when there is none)."""
        self.s3.delete_object(Bucket=self.bucket, Key=self.key(product, day))

    def _fetch(self, product: str, day: date) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.key(product, day))
        except ClientError as exc:
            if s3mod.is_missing(exc, bucket_too=True):
                return None
            raise
        return obj["Body"].read()

    def get(self, product: str, day: DayLike) -> xr.DataArray | None:
        """The stored ``(lat, lon)`` field, or None if there is none."""
        d = as_date(day)
        data = self._fetch(product, d)
        if data is None:
            return None
        return _decode(data).assign_coords(time=np.datetime64(d, "ns"))

    def window(self, product: str, end_day: DayLike, n_days: int, *, lazy: bool = False) -> xr.DataArray:
        """The ``n_days`` days ending with ``end_day`` (inclusive), ``(time, lat, lon)`` ``float64``.

        Missing days are all-NaN (listed in the ``missing_days`` attribute). Objects are fetched
        in parallel. ``lazy`` is accepted for the chunked layout's interface
        (:meth:`smflow.store.chunked.ChunkedTimeSeriesStore.window`) and ignored: a day is one
        object, so the window is read in memory (numpy) either way.
        """
        if n_days < 1:
            raise ValueError(f"n_days must be >= 1, got {n_days}.")
        end = as_date(end_day)
        days = [end - timedelta(days=n_days - 1 - k) for k in range(n_days)]
        workers = max(1, min(self.max_workers, n_days, (os.cpu_count() or 4) * 2))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            blobs = list(pool.map(lambda d: self._fetch(product, d), days))
        fields = [None if b is None else _decode_values(b)[1] for b in blobs]
        template = self.grid.template(product, "m3 m-3")
        name, attrs = None, {}
        first = next((b for b in blobs if b is not None), None)
        if first is not None:
            sample = _decode(first)
            name, attrs = sample.name, dict(sample.attrs)
        stack = np.stack([
            (f if f is not None else template.values) for f in fields
        ]).astype(np.float64)
        return xr.DataArray(
            stack,
            dims=("time", "lat", "lon"),
            coords={"time": ("time", np.array(days, dtype="datetime64[ns]")),
                    "lat": self.grid.lat_coord(), "lon": self.grid.lon_coord()},
            name=name or "soil_moisture",
            attrs={**attrs, "product": product,
                   "missing_days": ",".join(d.isoformat() for d, f in zip(days, fields) if f is None)},
        )

    def days(self, product: str, start: DayLike, end: DayLike) -> list[date]:
        """Days ``start .. end`` (inclusive) for which a field is stored, ascending."""
        d0, d1 = as_date(start), as_date(end)
        found: list[date] = []
        for year in range(d0.year, d1.year + 1):
            prefix = self.key(product, date(year, 1, 1)).rsplit("/", 1)[0] + "/"
            for key in s3mod.list_keys(self.s3, self.bucket, prefix, empty_if_no_bucket=True):
                m = _KEY_RE.search(key)
                if m and key.startswith(f"{prefix}{product}_"):
                    d = datetime.strptime(m.group(1), "%Y%m%d").date()
                    if d0 <= d <= d1:
                        found.append(d)
        return sorted(found)
