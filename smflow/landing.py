"""The landing zone: the "archive" the daily DAG fetches from, kept in our own S3 bucket.

``LandingZone.publish(product, day)`` cuts that UTC day out of the product's time series and
writes it as one netCDF granule in the product's **native** layout, units and flags (SMAP:
indexed ragged, raw cm3/cm3 + ``retrieval_qual_flag`` + ``Overpass``; GLDAS: raw kg m-2,
3-hourly; ERA5-Land: ``swvl1`` at 06 UTC; C3S: ``sm`` + ``flag``), under

    s3://{landing_bucket}/{product}/{YYYY}/{MM}/{product}_{YYYYMMDD}.nc

so the DAG can fetch and decode it exactly as from a provider's archive. A day inside the
product's coverage without any observation (no SMAP overpass) still gets a granule, with an
empty ``time``/``obs`` dimension: "the archive answered, with nothing", which the DAG can tell
from "the granule is missing". Days outside the coverage raise ``LookupError``.

Publishing is idempotent: the same day always gets the same key and the same bytes (no time
stamps are written), and a re-publish replaces the object.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from smflow import s3 as s3mod
from smflow.config import Settings
from smflow.products import Product, get_product
from smflow.readers.timeseries import BBox, cell_files, read_layout, subset_files

GRANULE_SUFFIX = ".nc"


def _as_date(day: date | datetime | str | np.datetime64) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return pd.Timestamp(day).date()


@dataclass(frozen=True)
class GranuleRef:
    """Where one product-day granule sits in the landing zone (small: passes through XCom).

    Attributes
    ----------
    product : str
        Product name.
    day : date
        UTC day of the granule.
    bucket, key : str
        S3 location.
    """

    product: str
    day: date
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, str]:
        """JSON-able form (for XCom)."""
        return {"product": self.product, "day": self.day.isoformat(), "bucket": self.bucket,
                "key": self.key}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "GranuleRef":
        return cls(data["product"], _as_date(data["day"]), data["bucket"], data["key"])


def granule_filename(product: str, day: date | str) -> str:
    d = _as_date(day)
    return f"{product}_{d:%Y%m%d}{GRANULE_SUFFIX}"


class LandingZone:
    """Publish, list and fetch daily granules in the landing bucket.

    :param settings: deployment settings (bucket names, S3 endpoint).
    :param s3: a boto3 S3 client (default: :func:`smflow.s3.client` for ``settings``).
    :param source_dir: root holding ``<folder>/<cell>.nc`` for the products (default: the bundle
        for redistributable products, ../shared for the others).
    :param bbox: keep only locations inside ``(lon_min, lat_min, lon_max, lat_max)``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        s3=None,
        *,
        source_dir: str | Path | None = None,
        bbox: BBox | None = None,
    ) -> None:
        self.settings = settings or Settings.load()
        self._s3 = s3
        self.source_dir = Path(source_dir) if source_dir is not None else None
        self.bbox = bbox
        self._bucket_ready = False

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = s3mod.client(self.settings)
        return self._s3

    @property
    def bucket(self) -> str:
        return self.settings.landing_bucket

    # -- keys --------------------------------------------------------------------------------
    def granule_key(self, product: str | Product, day: date | str) -> str:
        """``{product}/{YYYY}/{MM}/{product}_{YYYYMMDD}.nc``."""
        name = get_product(product).name
        d = _as_date(day)
        return f"{name}/{d:%Y}/{d:%m}/{granule_filename(name, d)}"

    def ref(self, product: str | Product, day: date | str) -> GranuleRef:
        name = get_product(product).name
        return GranuleRef(name, _as_date(day), self.bucket, self.granule_key(name, day))

    # -- writing granules --------------------------------------------------------------------
    def coverage(self, product: str | Product) -> tuple[date, date]:
        """First and last UTC day with a time stamp in the product's source files."""
        p = get_product(product)
        files = [f.path for f in cell_files(p, self.source_dir)]
        raw = read_layout(p.layout, files, variables=[p.variable], bbox=self.bbox)
        times = raw["time"].values
        if times.size == 0:
            raise LookupError(f"{p.name}: the source files hold no observation.")
        return pd.Timestamp(times.min()).date(), pd.Timestamp(times.max()).date()

    def write_granule(self, product: str | Product, day: date | str, dest: str | Path) -> Path:
        """Write the ``day`` granule of ``product`` to the local file ``dest`` (native layout)."""
        p = get_product(product)
        d = _as_date(day)
        first, last = self._coverage_cached(p)
        if not first <= d <= last:
            raise LookupError(
                f"{p.name} has no data for {d}: its source covers {first} .. {last}."
            )
        files = [f.path for f in cell_files(p, self.source_dir)]
        filename = granule_filename(p.name, d)
        return subset_files(
            files,
            dest,
            start=d,
            end=d,
            bbox=self.bbox,
            variables=p.keep_variables or None,
            global_attrs={"id": filename, "smflow_product": p.name, "smflow_day": d.isoformat()},
            history=f"smflow.landing: UTC day {d} of {p.folder} cells "
            f"{'+'.join(p.cells)} in the native layout",
        )

    def _coverage_cached(self, p: Product) -> tuple[date, date]:
        cache = self.__dict__.setdefault("_coverage", {})
        if p.name not in cache:
            cache[p.name] = self.coverage(p)
        return cache[p.name]

    def _ensure_bucket(self) -> None:
        if not self._bucket_ready:
            s3mod.ensure_bucket(self.s3, self.bucket)
            self._bucket_ready = True

    def _upload(self, path: Path, ref: GranuleRef) -> None:
        data = path.read_bytes()
        self.s3.put_object(
            Bucket=ref.bucket,
            Key=ref.key,
            Body=data,
            ContentType="application/x-netcdf",
            Metadata={"sha256": s3mod.sha256_hex(data), "product": ref.product,
                      "day": ref.day.isoformat()},
        )

    def publish(self, product: str | Product, day: date | str) -> GranuleRef:
        """Write the ``day`` granule of ``product`` to the landing bucket (replaces it)."""
        ref = self.ref(product, day)
        self._ensure_bucket()
        with tempfile.TemporaryDirectory(prefix="smflow-landing-") as tmp:
            path = self.write_granule(product, day, Path(tmp) / ref.filename)
            self._upload(path, ref)
        return ref

    def publish_range(
        self,
        products: str | Product | Sequence[str | Product],
        start: date | str,
        end: date | str,
        *,
        skip_outside_coverage: bool = True,
    ) -> list[GranuleRef]:
        """Publish every day ``start .. end`` (inclusive) of each product.

        The source files are cut once per product to the whole range, and each day is cut from
        that small file. Days outside a product's coverage are skipped (or raise with
        ``skip_outside_coverage=False``).
        """
        if isinstance(products, (str, Product)):
            products = [products]
        d0, d1 = _as_date(start), _as_date(end)
        refs: list[GranuleRef] = []
        self._ensure_bucket()
        with tempfile.TemporaryDirectory(prefix="smflow-landing-") as tmp:
            for product in products:
                p = get_product(product)
                first, last = self._coverage_cached(p)
                lo, hi = max(d0, first), min(d1, last)
                if not skip_outside_coverage and (d0 < first or d1 > last):
                    raise LookupError(f"{p.name} covers {first} .. {last}, not {d0} .. {d1}.")
                if lo > hi:
                    continue
                # One pass over the (large) cell files; the daily cuts read the small range file.
                range_file = Path(tmp) / f"{p.name}_range.nc"
                subset_files([f.path for f in cell_files(p, self.source_dir)], range_file,
                             start=lo, end=hi, bbox=self.bbox,
                             variables=p.keep_variables or None)
                day_zone = _RangeSource(self, p, range_file)
                day = lo
                while day <= hi:
                    ref = self.ref(p, day)
                    path = day_zone.write_granule(day, Path(tmp) / ref.filename)
                    self._upload(path, ref)
                    path.unlink()
                    refs.append(ref)
                    day += timedelta(days=1)
        return refs

    # -- reading the landing zone ------------------------------------------------------------
    def list_granules(
        self, day: date | str, products: Iterable[str | Product] | None = None
    ) -> list[GranuleRef]:
        """Granules present for ``day`` (all products, or only ``products``), by product name."""
        d = _as_date(day)
        from smflow.products import PRODUCTS

        names = [get_product(p).name for p in products] if products is not None else sorted(PRODUCTS)
        refs = []
        for name in names:
            key = self.granule_key(name, d)
            prefix = key.rsplit("/", 1)[0] + "/"
            try:
                keys = s3mod.list_keys(self.s3, self.bucket, prefix)
            except self.s3.exceptions.NoSuchBucket:
                return []
            if key in keys:
                refs.append(GranuleRef(name, d, self.bucket, key))
        return refs

    # -- native granules (provider files, one folder per product and day) -------------------
    @staticmethod
    def is_native(product: str) -> bool:
        """True for products read by :func:`smflow.readers.native.open_native` from provider files
        (not cut from the time-series archive by :meth:`publish`)."""
        from smflow.products import PRODUCTS

        return product not in PRODUCTS

    def native_prefix(self, product: str, day: date | str) -> str:
        """``native/{product}/{YYYY}/{MM}/{DD}/``: the provider's files of that UTC day, named as
        the provider names them (the readers recognise products by file name)."""
        d = _as_date(day)
        return f"native/{product}/{d:%Y}/{d:%m}/{d:%d}/"

    def put_native(self, product: str, day: date | str, path: str | Path) -> GranuleRef:
        """Land one provider file of ``product`` for ``day`` under :meth:`native_prefix`.

        Idempotent: the same file lands at the same key with the same bytes.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file to land as {product} {day}")
        ref = GranuleRef(product, _as_date(day), self.bucket, self.native_prefix(product, day) + path.name)
        self._ensure_bucket()
        self._upload(path, ref)
        return ref

    def native_keys(self, product: str, day: date | str) -> list[str]:
        """Keys of all files of ``product`` landed for ``day`` (sorted; empty when none)."""
        try:
            return sorted(s3mod.list_keys(self.s3, self.bucket, self.native_prefix(product, day)))
        except self.s3.exceptions.NoSuchBucket:
            return []

    def expected(self, product: str, day: date | str) -> str:
        """Where the day's granule of ``product`` is awaited (a key, or a prefix for native files)."""
        if self.is_native(product):
            return f"s3://{self.bucket}/{self.native_prefix(product, day)}"
        return self.ref(product, day).uri

    def find(self, product: str, day: date | str) -> GranuleRef | None:
        """The day's granule of ``product`` if it has landed (native: its first file), else None."""
        if self.is_native(product):
            keys = self.native_keys(product, day)
            return GranuleRef(product, _as_date(day), self.bucket, keys[0]) if keys else None
        ref = self.ref(product, day)
        return ref if self.exists(ref) else None

    def exists(self, ref: GranuleRef) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def fetch(self, ref: GranuleRef, dest_dir: str | Path) -> Path:
        """Download ``ref`` into ``dest_dir`` (created if needed); returns the local file."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / ref.filename
        partial = dest.with_name(dest.name + ".part")
        self.s3.download_file(ref.bucket, ref.key, str(partial))
        partial.replace(dest)  # never leave a half-written granule under the real name
        return dest


class _RangeSource:
    """Cut single days from a pre-cut range file of one product."""

    def __init__(self, zone: LandingZone, product: Product, range_file: Path) -> None:
        self.zone, self.product, self.range_file = zone, product, range_file

    def write_granule(self, day: date, dest: Path) -> Path:
        p = self.product
        filename = granule_filename(p.name, day)
        return subset_files(
            [self.range_file],
            dest,
            start=day,
            end=day,
            variables=p.keep_variables or None,
            global_attrs={"id": filename, "smflow_product": p.name, "smflow_day": day.isoformat()},
            history=f"smflow.landing: UTC day {day} of {p.folder} cells "
            f"{'+'.join(p.cells)} in the native layout",
        )
