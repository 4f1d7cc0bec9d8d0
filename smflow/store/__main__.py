"""``python -m smflow.store migrate``: copy the per-day netCDF objects into the chunked (Zarr) store.

Examples::

    python -m smflow.store migrate                                 # every product, every day
    python -m smflow.store migrate --products smap,gldas --start 2017-01-01 --end 2017-12-31

Reads the stack's settings (``SMFLOW_HOME`` / ``SMFLOW_*``); prints the report as JSON. Exit
status 1 when a copied day does not read back identical (the source is never deleted).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smflow.store", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("migrate", help="copy the per-day objects into the chunked store and verify them")
    m.add_argument("--products", help="comma-separated store products (default: all found)")
    m.add_argument("--start", help="first day (YYYY-MM-DD)")
    m.add_argument("--end", help="last day (YYYY-MM-DD)")
    m.add_argument("--domain", help="domain name (config/domains/<name>.json; default: the default domain)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    from smflow.config import Settings
    from smflow.domain import load_domain
    from smflow.store.chunked import ChunkedTimeSeriesStore
    from smflow.store.daily_objects import DailyObjectStore
    from smflow.store.migrate import MigrationError, migrate

    settings = Settings.load()
    grid = load_domain(args.domain) if args.domain else load_domain()
    products = [p for p in (args.products or "").split(",") if p] or None
    try:
        report = migrate(DailyObjectStore(settings, grid=grid), ChunkedTimeSeriesStore(settings, grid=grid),
                         products=products, start=args.start, end=args.end)
    except MigrationError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
