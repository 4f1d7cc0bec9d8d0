"""The bundled time series cut into daily granules, as the provider archives would deliver them.

``ArchiveStandIn.write_granule(product, day, dest)`` cuts that UTC day out of the product's time
series and writes it as one netCDF granule in the product's **native** layout, units and flags
(SMAP: indexed ragged, raw cm3/cm3 + ``retrieval_qual_flag`` + ``Overpass``; GLDAS: raw kg m-2,
3-hourly; ERA5-Land: ``swvl1`` at 06 UTC; C3S: ``sm`` + ``flag``), named
:func:`smflow.landing.granule_filename`; ``write_range`` cuts many days at once (one read of the
cell files per product). A day inside the product's coverage without any observation (no SMAP
overpass) still gets a granule, with an empty ``time``/``obs`` dimension: "the archive answered,
with nothing", which the DAG can tell from "the granule is missing". Days outside the coverage
raise ``LookupError``.

The cuts are what the provider stand-ins of the local stack serve
(:mod:`infra.providers.hawaii`). ``publish`` / ``publish_range`` put them straight into the
landing zone instead, at the key :meth:`smflow.landing.LandingZone.granule_key` names;
``put_native`` lands one provider file of a native product.

Cutting is deterministic: the same day always gets the same bytes (no time stamps are written),
whether cut alone or in a range, so a re-publish replaces an object with itself.

Used by the main job (``infra/main.py``), the provider stand-ins and the tests; production only
reads the landing zone (:class:`smflow.landing.LandingZone`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from smflow import s3 as s3mod
from smflow.config import Settings
from smflow.dates import DayLike, as_date
from smflow.landing import GranuleRef, LandingZone, granule_filename
from smflow.products import Product, get_product
from smflow.readers.timeseries import BBox, cell_files, read_layout, subset_files


class ArchiveStandIn(LandingZone):
    """A landing zone that can also be filled from the bundled time series, as the archive would.

    :param settings: deployment settings (bucket names, S3 endpoint).
    :param s3: a boto3 S3 client (default: :func:`smflow.s3.client` for ``settings`` with the
        ``landing`` role: it writes the landing zone, as the fetch does).
    :param source_dir: root holding ``<folder>/<cell>.nc`` for the products (default: the bundle
        for redistributable products, ../shared for the others).
    :param bbox: keep only locations inside ``(lon_min, lat_min, lon_max, lat_max)``.
    """

    s3_role = "landing"

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
        self._facts: dict[str, tuple[date, date, BBox]] = {}

    def source_files(self, product: str | Product) -> list[Path]:
        """The product's cell files the granules are cut from."""
        return [f.path for f in cell_files(get_product(product), self.source_dir)]

    def _read_facts(self, p: Product) -> tuple[date, date, BBox]:
        if p.name not in self._facts:
            raw = read_layout(p.layout, self.source_files(p), variables=[p.variable], bbox=self.bbox)
            times = raw["time"].values
            if times.size == 0:
                raise LookupError(f"{p.name}: the source files hold no observation.")
            lon, lat = raw["lon"].values, raw["lat"].values
            self._facts[p.name] = (as_date(times.min()), as_date(times.max()),
                                   (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())))
        return self._facts[p.name]

    def coverage(self, product: str | Product) -> tuple[date, date]:
        """First and last UTC day with a time stamp in the product's source files.

        :raises LookupError: when the source files hold no observation.
        """
        first, last, _ = self._read_facts(get_product(product))
        return first, last

    def extent(self, product: str | Product) -> BBox:
        """``(lon_min, lat_min, lon_max, lat_max)`` [degrees] of the product's locations.

        :raises LookupError: when the source files hold no observation.
        """
        return self._read_facts(get_product(product))[2]

    def write_granule(
        self, product: str | Product, day: DayLike, dest: str | Path, *, product_version: str | None = None
    ) -> Path:
        """Write the ``day`` granule of ``product`` to the local file ``dest`` (native layout).

        :param product_version: when given, the global attribute ``product_version`` and a
            ``history`` line say the granule was reprocessed (other bytes, same data), as a
            provider's new version of a granule would.
        :raises LookupError: when ``day`` is outside the product's coverage.
        """
        p = get_product(product)
        d = as_date(day)
        first, last = self.coverage(p)
        if not first <= d <= last:
            raise LookupError(f"{p.name} has no data for {d}: its source covers {first} .. {last}.")
        return _cut_day(p, self.source_files(p), d, Path(dest), bbox=self.bbox,
                        product_version=product_version)

    def write_range(
        self,
        products: str | Product | Sequence[str | Product],
        start: DayLike,
        end: DayLike,
        dest_dir: str | Path,
        *,
        skip_outside_coverage: bool = True,
        product_version: str | None = None,
    ) -> list[tuple[str, date, Path]]:
        """Write every day ``start .. end`` (inclusive) of each product as a granule in ``dest_dir``.

        Faster than :meth:`write_granule` day by day for long ranges: the (large) cell files
        are read once per product, cut to the whole range, and each day is cut from that small
        file. A day's bytes are those :meth:`write_granule` writes for it.

        :param dest_dir: folder of the granules, named :func:`smflow.landing.granule_filename`.
        :param skip_outside_coverage: skip days outside a product's coverage (else raise
            ``LookupError``).
        :param product_version: as :meth:`write_granule`.
        :returns: ``(product, day, path)`` of each granule written, by product then day.
        """
        if isinstance(products, (str, Product)):
            products = [products]
        d0, d1 = as_date(start), as_date(end)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        written: list[tuple[str, date, Path]] = []
        with tempfile.TemporaryDirectory(prefix="smflow-range-") as tmp:
            for product in products:
                p = get_product(product)
                first, last = self.coverage(p)
                lo, hi = max(d0, first), min(d1, last)
                if not skip_outside_coverage and (d0 < first or d1 > last):
                    raise LookupError(f"{p.name} covers {first} .. {last}, not {d0} .. {d1}.")
                if lo > hi:
                    continue
                range_file = Path(tmp) / f"{p.name}_range.nc"
                subset_files(self.source_files(p), range_file, start=lo, end=hi, bbox=self.bbox,
                             variables=p.keep_variables or None)
                observed = _observed_days(p, range_file)
                day = lo
                while day <= hi:
                    # A day without observation keeps the chunk shape of the file it is cut from:
                    # cut it from the cell files, as write_granule does, so its bytes are the same.
                    source, bbox = ([range_file], None) if day in observed else (self.source_files(p), self.bbox)
                    path = _cut_day(p, source, day, dest_dir / granule_filename(p.name, day), bbox=bbox,
                                    product_version=product_version)
                    written.append((p.name, day, path))
                    day += timedelta(days=1)
        return written

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

        The granules are cut by :meth:`write_range` (one read of the cell files per product).
        Days outside a product's coverage are skipped (or raise ``LookupError`` with
        ``skip_outside_coverage=False``).
        """
        refs: list[GranuleRef] = []
        with tempfile.TemporaryDirectory(prefix="smflow-landing-") as tmp:
            for product, day, path in self.write_range(products, start, end, tmp,
                                                       skip_outside_coverage=skip_outside_coverage):
                ref = self.ref(product, day)
                self._upload(path, ref)
                path.unlink()
                refs.append(ref)
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


def _observed_days(p: Product, path: Path) -> set[date]:
    """UTC days with at least one time stamp in ``path`` (a file of ``p``'s layout)."""
    times = read_layout(p.layout, [path], variables=[p.variable])["time"].values
    return {as_date(t) for t in np.unique(times.astype("datetime64[D]"))}


def _cut_day(p: Product, files: list[Path], day: date, dest: Path, *, bbox: BBox | None = None,
             product_version: str | None = None) -> Path:
    """Write UTC ``day`` of ``files`` (cell files or a pre-cut range file) as the granule ``dest``."""
    filename = granule_filename(p.name, day)
    attrs = {"id": filename, "smflow_product": p.name, "smflow_day": day.isoformat()}
    history = f"smflow.landing: UTC day {day} of {p.folder} cells {'+'.join(p.cells)} in the native layout"
    if product_version is not None:
        attrs["product_version"] = product_version
        history += f"; reprocessed as {product_version}"
    return subset_files(files, dest, start=day, end=day, bbox=bbox,
                        variables=p.keep_variables or None, global_attrs=attrs, history=history)
