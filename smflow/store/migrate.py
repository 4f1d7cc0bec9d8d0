"""Copy the per-day netCDF objects of the time-series store into the chunked store, and verify the copy.

``python -m smflow.store migrate`` (see :mod:`smflow.store.__main__`). Idempotent: days whose
values the chunked store already holds are not written again (a second run commits nothing), and
the source objects are never deleted (a deployment on ``SMFLOW_STORE_BACKEND=netcdf`` switches to
the chunked default once the report is clean, and removes the objects later by hand if wanted).
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import xarray as xr

from smflow import s3 as s3mod
from smflow.dates import DayLike, as_date
from smflow.store.chunked import ChunkedTimeSeriesStore
from smflow.store.daily_objects import DailyObjectStore

log = logging.getLogger(__name__)

#: Days read, written (one commit) and verified together.
BATCH_DAYS = 64


class MigrationError(RuntimeError):
    """The chunked store does not return what the per-day object holds (names the product and day)."""


@dataclass
class MigrationReport:
    """What :func:`migrate` did, per product: days found in the source, written, already there, verified."""

    found: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    verified: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"found": self.found, "written": self.written, "unchanged": self.unchanged, "verified": self.verified}


def source_days(source: DailyObjectStore, products: list[str] | None = None, start: DayLike | None = None,
                end: DayLike | None = None) -> dict[str, list[date]]:
    """Product -> days of the per-day objects of ``source``'s domain (one listing), ascending."""
    base = source.key("x", date(2000, 1, 1)).split("/x/")[0]
    pattern = re.compile(rf"^{re.escape(base)}/([^/]+)/(\d{{4}})/\1_(\d{{8}})\.nc$")
    d0 = as_date(start) if start is not None else date.min
    d1 = as_date(end) if end is not None else date.max
    found: dict[str, list[date]] = {}
    for key in s3mod.list_keys(source.s3, source.bucket, f"{base}/", empty_if_no_bucket=True):
        m = pattern.match(key)
        if not m or (products and m.group(1) not in products):
            continue
        d = datetime.strptime(m.group(3), "%Y%m%d").date()
        if d0 <= d <= d1:
            found.setdefault(m.group(1), []).append(d)
    return {p: sorted(ds) for p, ds in sorted(found.items())}


def _verify(source_field: xr.DataArray, target: ChunkedTimeSeriesStore, product: str, day: date) -> None:
    copied = target.get(product, day)
    try:
        if copied is None:
            raise AssertionError("the chunked store has no field for the day")
        xr.testing.assert_identical(copied, source_field)
        if copied.dtype != source_field.dtype:
            raise AssertionError(f"dtype {copied.dtype} != {source_field.dtype}")
    except AssertionError as exc:
        raise MigrationError(f"{target.uri(product, day)} differs from s3://{product}/{day} of the per-day store "
                             f"({exc}); the source is untouched, re-run the migration after fixing") from exc


def migrate(source: DailyObjectStore, target: ChunkedTimeSeriesStore, *, products: list[str] | None = None,
            start: DayLike | None = None, end: DayLike | None = None) -> MigrationReport:
    """Copy the per-day objects of ``source`` into ``target`` and verify every day.

    Parameters
    ----------
    source, target
        The two layouts on the same domain grid and bucket settings.
    products : list of str, optional
        Products to copy (default: every product with objects in the source).
    start, end : date-like, optional
        Only the days in ``start .. end`` (inclusive).

    Returns
    -------
    MigrationReport

    Raises
    ------
    MigrationError
        A day read back from ``target`` is not identical (values bit for bit, dtype, coordinates,
        name, attributes) to the source object; the source is never modified.
    ValueError
        The two stores are on different grids.
    """
    if source.grid.name != target.grid.name:
        raise ValueError(f"source grid {source.grid.name!r} and target grid {target.grid.name!r} differ")
    report = MigrationReport()
    for product, days in source_days(source, products, start, end).items():
        report.found[product] = len(days)
        report.written[product] = report.unchanged[product] = report.verified[product] = 0
        for i in range(0, len(days), BATCH_DAYS):
            batch = days[i:i + BATCH_DAYS]
            with ThreadPoolExecutor(max_workers=source.max_workers) as pool:
                fields = list(pool.map(lambda d: source.get(product, d), batch))
            present = [(d, f) for d, f in zip(batch, fields) if f is not None]  # deleted since the listing
            if not present:
                continue
            held = {d for d in target.days(product, present[0][0], present[-1][0])}
            todo = []
            for d, f in present:
                old = target.get(product, d) if d in held else None
                if old is not None and old.dtype == f.dtype and old.identical(f):
                    report.unchanged[product] += 1
                else:
                    todo.append((d, f))
            if todo:
                series = xr.concat([f.drop_vars("time") for _, f in todo], dim="time")
                target.put_many(product, [d for d, _ in todo], series.assign_attrs(todo[-1][1].attrs))
                report.written[product] += len(todo)
            for d, f in present:
                _verify(f, target, product, d)
                report.verified[product] += 1
        log.info("migrated %s: %d days found, %d written, %d already there, %d verified", product,
                 report.found[product], report.written[product], report.unchanged[product], report.verified[product])
    return report
