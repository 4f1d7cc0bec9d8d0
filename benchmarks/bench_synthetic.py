"""The synthetic history generator on the global 0.25 deg grid: wall time and peak memory of one write.

:func:`smflow.synthetic.generate_history` into an empty scratch bucket of the local stack's S3
server (``infra/stack.py``, started beforehand; the store layout of the settings, the chunked
Icechunk one by default), anchored on the real GLDAS granule and the real CCI coverage of
2016-06-06 as the e2e test and ``bench_global.py`` do. Needs ``../shared/data/real``.

* ``box``: the e2e test's history (``tests/e2e/test_global_dag.py``: 32 days, western Europe, no
  dropout; ``--days`` changes the length);
* ``full``: the 180-day window on every land cell (``bench_global.py``'s generate step).

``--block-days 1`` writes one product-day per store call (one Icechunk commit each): the write
pattern of the day-by-day generator before the blocks. The time excludes the anchor and coverage
regridding; the peak resident memory is the whole process's (``ru_maxrss``, regridding included).

    .venv/bin/python benchmarks/bench_synthetic.py box
    .venv/bin/python benchmarks/bench_synthetic.py full [--block-days 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DAY = date(2016, 6, 6)
CCI = {"esa_cci_sm_active": "esa_cci_sm_v05.2/active/ESACCI-SOILMOISTURE-L3S-SSMS-ACTIVE-20160606000000-fv05.2.nc",
       "esa_cci_sm_passive": "esa_cci_sm_v05.2/passive/ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160606000000-fv05.2.nc"}
GLDAS_ANCHOR = "gldas_noah21/GLDAS_NOAH025_3H.A20160101.1200.021.nc4"
BOX = (-10.0, 36.0, 20.0, 56.0)


def main(argv: list[str] | None = None) -> int:
    from smflow import s3 as s3mod
    from smflow.catalog import pipeline
    from smflow.config import Settings
    from smflow.domain import load_domain
    from smflow.store import TimeSeriesStore
    from smflow.synthetic import GLOBAL_PARENT_MODELS, anchor_climatology, coverage, generate_history
    from tests.conftest import remove_bucket

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=("box", "full"))
    parser.add_argument("--days", type=int, default=None, help="window length (box: 32, full: 180)")
    parser.add_argument("--block-days", type=int, default=None, help="days per store call (default: the generator's)")
    args = parser.parse_args(argv)
    base = Settings.load().as_s3_role("admin")
    if base.shared_data_dir is None:
        parser.error("../shared/data/real is not available")
    client = s3mod.client(base)
    grid = load_domain(pipeline("global_025").domain)
    anchor = anchor_climatology([base.shared_data_dir / GLDAS_ANCHOR], grid)
    masks = {p: coverage(base.shared_data_dir / path, grid, p) for p, path in CCI.items()}
    settings = dataclasses.replace(base, store_bucket=f"bench-synthetic-{uuid.uuid4().hex[:8]}")
    kwargs: dict = {} if args.block_days is None else {"block_days": args.block_days}
    if args.case == "box":
        n_days = args.days or 32
        kwargs.update(bbox=BOX, parents={p: dataclasses.replace(m, dropout=0.0) for p, m in GLOBAL_PARENT_MODELS.items()})
    else:
        n_days = args.days or 180
    start = DAY - timedelta(days=n_days - 1)
    try:
        t0 = time.monotonic()
        written = generate_history(TimeSeriesStore(settings, s3=client, grid=grid), grid, start, DAY, anchor=anchor,
                                   coverage_masks=masks, skip={p: {DAY} for p in CCI}, settings=settings, **kwargs)
        seconds = time.monotonic() - t0
    finally:
        remove_bucket(client, settings.store_bucket)
    print(f"{args.case} {start}..{DAY}, {sum(map(len, written.values()))} fields, block_days "
          f"{args.block_days or 'default'}, {settings.store_backend} layout: {seconds:.1f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
