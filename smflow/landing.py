"""The landing zone: the "archive" the daily DAG fetches from, kept in our own S3 bucket.

Granules sit under

    s3://{landing_bucket}/{product}/{YYYY}/{MM}/{product}_{YYYYMMDD}.nc

one netCDF file per product and UTC day, in the product's **native** layout, units and flags, so
the DAG fetches and decodes it exactly as from a provider's archive. Products read from provider
files (:func:`smflow.readers.native.open_native`) land as the provider names them, one folder per
day: ``s3://{landing_bucket}/native/{product}/{YYYY}/{MM}/{DD}/``.

This module is what production uses: keys, listing, waiting (:meth:`LandingZone.find`) and
fetching. Filling the landing zone "as the archive would" (cutting a day out of the bundled time
series, landing a provider file) is the local stack's stand-in for the providers and lives in
``infra/archive_stand_in.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from smflow.config import Settings
from smflow.dates import DayLike, as_date
from smflow.products import Product, get_product
from smflow.s3 import BucketClient, list_keys

GRANULE_SUFFIX = ".nc"
#: Prefix of the provider files of the native products.
NATIVE_PREFIX = "native"


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
        return cls(data["product"], as_date(data["day"]), data["bucket"], data["key"])


def granule_filename(product: str, day: DayLike) -> str:
    """``{product}_{YYYYMMDD}.nc``: the file name of a product's granule of ``day``."""
    return f"{product}_{as_date(day):%Y%m%d}{GRANULE_SUFFIX}"


class LandingZone(BucketClient):
    """List, find and fetch daily granules in the landing bucket.

    :param settings: deployment settings (bucket names, S3 endpoint).
    :param s3: a boto3 S3 client (default: :func:`smflow.s3.client` for ``settings``).

    The default identity (the pipelines') may only read the landing zone; the code that lands
    granules uses :meth:`for_landing` (docs/security.md).
    """

    @classmethod
    def for_landing(cls, settings: Settings | None = None) -> "LandingZone":
        """The landing zone with a client of the ``landing`` S3 identity, the one allowed to write it.

        :param settings: deployment settings (default :meth:`Settings.load`); without
            ``SMFLOW_S3_LANDING_*`` keys the default identity is used.
        """
        zone = cls(settings)
        zone.s3_role = "landing"
        return zone

    @property
    def bucket(self) -> str:
        return self.settings.landing_bucket

    # -- keys --------------------------------------------------------------------------------
    def granule_key(self, product: str | Product, day: DayLike) -> str:
        """``{product}/{YYYY}/{MM}/{product}_{YYYYMMDD}.nc``."""
        name = get_product(product).name
        d = as_date(day)
        return f"{name}/{d:%Y}/{d:%m}/{granule_filename(name, d)}"

    def ref(self, product: str | Product, day: DayLike) -> GranuleRef:
        name = get_product(product).name
        return GranuleRef(name, as_date(day), self.bucket, self.granule_key(name, day))

    # -- reading the landing zone ------------------------------------------------------------
    def list_granules(
        self, day: DayLike, products: Iterable[str | Product] | None = None
    ) -> list[GranuleRef]:
        """Granules present for ``day`` (all products, or only ``products``), by product name."""
        d = as_date(day)
        from smflow.products import PRODUCTS

        names = [get_product(p).name for p in products] if products is not None else sorted(PRODUCTS)
        refs = []
        for name in names:
            key = self.granule_key(name, d)
            keys = list_keys(self.s3, self.bucket, key.rsplit("/", 1)[0] + "/", empty_if_no_bucket=True)
            if key in keys:
                refs.append(GranuleRef(name, d, self.bucket, key))
        return refs

    # -- native granules (provider files, one folder per product and day) -------------------
    @staticmethod
    def is_native(product: str) -> bool:
        """True for products read by :func:`smflow.readers.native.open_native` from provider files
        (not cut from the time-series archive)."""
        from smflow.products import PRODUCTS

        return product not in PRODUCTS

    def native_prefix(self, product: str, day: DayLike) -> str:
        """``native/{product}/{YYYY}/{MM}/{DD}/``: the provider's files of that UTC day, named as
        the provider names them (the readers recognise products by file name)."""
        d = as_date(day)
        return f"{NATIVE_PREFIX}/{product}/{d:%Y}/{d:%m}/{d:%d}/"

    def native_ref(self, product: str, day: DayLike, filename: str) -> GranuleRef:
        """Where the provider file ``filename`` of ``product`` for ``day`` lands."""
        return GranuleRef(product, as_date(day), self.bucket, self.native_prefix(product, day) + filename)

    def native_keys(self, product: str, day: DayLike) -> list[str]:
        """Keys of all files of ``product`` landed for ``day`` (sorted; empty when none)."""
        return list_keys(self.s3, self.bucket, self.native_prefix(product, day), empty_if_no_bucket=True)

    def expected(self, product: str, day: DayLike) -> str:
        """Where the day's granule of ``product`` is awaited (a key, or a prefix for native files)."""
        if self.is_native(product):
            return f"s3://{self.bucket}/{self.native_prefix(product, day)}"
        return self.ref(product, day).uri

    def find(self, product: str, day: DayLike) -> GranuleRef | None:
        """The day's granule of ``product`` if it has landed (native: its first file), else None."""
        if self.is_native(product):
            keys = self.native_keys(product, day)
            return GranuleRef(product, as_date(day), self.bucket, keys[0]) if keys else None
        ref = self.ref(product, day)
        return ref if self.exists(ref) else None

    def exists(self, ref: GranuleRef) -> bool:
        """True if the granule ``ref`` is in the landing zone."""
        return self.has_object(ref.key, bucket=ref.bucket)

    def fetch(self, ref: GranuleRef, dest_dir: str | Path) -> Path:
        """Download ``ref`` into ``dest_dir`` (created if needed); returns the local file."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / ref.filename
        partial = dest.with_name(dest.name + ".part")
        self.s3.download_file(ref.bucket, ref.key, str(partial))
        partial.replace(dest)  # never leave a half-written granule under the real name
        return dest
