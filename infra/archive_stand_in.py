"""The local stack's stand-in for the provider archives: it fills the landing zone as they would.

``ArchiveStandIn.publish(product, day)`` cuts that UTC day out of the product's time series and
writes it as one netCDF granule in the product's **native** layout, units and flags (SMAP:
indexed ragged, raw cm3/cm3 + ``retrieval_qual_flag`` + ``Overpass``; GLDAS: raw kg m-2,
3-hourly; ERA5-Land: ``swvl1`` at 06 UTC; C3S: ``sm`` + ``flag``) at the key
:meth:`smflow.landing.LandingZone.granule_key` names, so the DAG fetches and decodes it exactly as
from a provider's archive. A day inside the product's coverage without any observation (no SMAP
overpass) still gets a granule, with an empty ``time``/``obs`` dimension: "the archive answered,
with nothing", which the DAG can tell from "the granule is missing". Days outside the coverage
raise ``LookupError``. ``put_native`` lands one provider file of a native product.

Publishing is idempotent: the same day always gets the same key and the same bytes (no time
stamps are written), and a re-publish replaces the object.

Used by the main job (``infra/main.py``) and the tests; production only reads the landing zone
(:class:`smflow.landing.LandingZone`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from smflow import s3 as s3mod
from smflow.config import Settings
from smflow.dates import DayLike, as_date
from smflow.landing import GranuleRef, LandingZone, granule_filename
from smflow.products import Product, get_product
from smflow.readers.timeseries import BBox, cell_files, read_layout, subset_files


class ArchiveStandIn(LandingZone):
    """A landing zone that can also be filled from the bundled time series, as the archive would.

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
        super().__init__(settings, s3)
        self.source_dir = Path(source_dir) if source_dir is not None else None
        self.bbox = bbox
        self._coverage: dict[str, tuple[date, date]] = {}

    def _source_files(self, p: Product) -> list[Path]:
        return [f.path for f in cell_files(p, self.source_dir)]

    def coverage(self, product: str | Product) -> tuple[date, date]:
        """First and last UTC day with a time stamp in the product's source files.

        :raises LookupError: when the source files hold no observation.
        """
        p = get_product(product)
        if p.name not in self._coverage:
            raw = read_layout(p.layout, self._source_files(p), variables=[p.variable], bbox=self.bbox)
            times = raw["time"].values
            if times.size == 0:
                raise LookupError(f"{p.name}: the source files hold no observation.")
            self._coverage[p.name] = (as_date(times.min()), as_date(times.max()))
        return self._coverage[p.name]

    def write_granule(self, product: str | Product, day: DayLike, dest: str | Path) -> Path:
        """Write the ``day`` granule of ``product`` to the local file ``dest`` (native layout).

        :raises LookupError: when ``day`` is outside the product's coverage.
        """
        p = get_product(product)
        d = as_date(day)
        first, last = self.coverage(p)
        if not first <= d <= last:
            raise LookupError(f"{p.name} has no data for {d}: its source covers {first} .. {last}.")
        return _cut_day(p, self._source_files(p), d, Path(dest), bbox=self.bbox)

    def _upload(self, path: Path, ref: GranuleRef) -> None:
        self.ensure_bucket()
        data = path.read_bytes()
        self.s3.put_object(
            Bucket=ref.bucket,
            Key=ref.key,
            Body=data,
            ContentType="application/x-netcdf",
            Metadata={"sha256": s3mod.sha256_hex(data), "product": ref.product,
                      "day": ref.day.isoformat()},
        )

    def publish(self, product: str | Product, day: DayLike) -> GranuleRef:
        """Write the ``day`` granule of ``product`` to the landing bucket (replaces it)."""
        ref = self.ref(product, day)
        with tempfile.TemporaryDirectory(prefix="smflow-landing-") as tmp:
            self._upload(self.write_granule(product, day, Path(tmp) / ref.filename), ref)
        return ref

    def publish_range(
        self,
        products: str | Product | Sequence[str | Product],
        start: DayLike,
        end: DayLike,
        *,
        skip_outside_coverage: bool = True,
    ) -> list[GranuleRef]:
        """Publish every day ``start .. end`` (inclusive) of each product.

        The source files are cut once per product to the whole range, and each day is cut from
        that small file. Days outside a product's coverage are skipped (or raise ``LookupError``
        with ``skip_outside_coverage=False``).
        """
        if isinstance(products, (str, Product)):
            products = [products]
        d0, d1 = as_date(start), as_date(end)
        refs: list[GranuleRef] = []
        with tempfile.TemporaryDirectory(prefix="smflow-landing-") as tmp:
            for product in products:
                p = get_product(product)
                first, last = self.coverage(p)
                lo, hi = max(d0, first), min(d1, last)
                if not skip_outside_coverage and (d0 < first or d1 > last):
                    raise LookupError(f"{p.name} covers {first} .. {last}, not {d0} .. {d1}.")
                if lo > hi:
                    continue
                # One pass over the (large) cell files; the daily cuts read the small range file.
                range_file = Path(tmp) / f"{p.name}_range.nc"
                subset_files(self._source_files(p), range_file, start=lo, end=hi, bbox=self.bbox,
                             variables=p.keep_variables or None)
                day = lo
                while day <= hi:
                    ref = self.ref(p, day)
                    path = _cut_day(p, [range_file], day, Path(tmp) / ref.filename)
                    self._upload(path, ref)
                    path.unlink()
                    refs.append(ref)
                    day += timedelta(days=1)
        return refs

    def put_native(self, product: str, day: DayLike, path: str | Path) -> GranuleRef:
        """Land one provider file of ``product`` for ``day`` under :meth:`native_prefix`.

        Idempotent: the same file lands at the same key with the same bytes.

        :raises FileNotFoundError: when ``path`` is not a file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file to land as {product} {day}")
        ref = self.native_ref(product, day, path.name)
        self._upload(path, ref)
        return ref


def _cut_day(p: Product, files: list[Path], day: date, dest: Path, *, bbox: BBox | None = None) -> Path:
    """Write UTC ``day`` of ``files`` (cell files or a pre-cut range file) as the granule ``dest``."""
    filename = granule_filename(p.name, day)
    return subset_files(
        files,
        dest,
        start=day,
        end=day,
        bbox=bbox,
        variables=p.keep_variables or None,
        global_attrs={"id": filename, "smflow_product": p.name, "smflow_day": day.isoformat()},
        history=f"smflow.landing: UTC day {day} of {p.folder} cells {'+'.join(p.cells)} in the native layout",
    )
