"""``python -m smflow.store migrate | expire``: copy the per-day objects into the chunked store; expire old snapshots.

Examples::

    python -m smflow.store migrate                                 # every product, every day
    python -m smflow.store migrate --products smap,gldas --start 2017-01-01 --end 2017-12-31
    python -m smflow.store expire                                  # every pipeline's domain, SMFLOW_STORE_RETENTION_DAYS
    python -m smflow.store expire --domain global_025 --retention-days 7

Reads the stack's settings (``SMFLOW_HOME`` / ``SMFLOW_*``); prints the report as JSON. ``migrate``
exits with status 1 when a copied day does not read back identical (the source is never deleted).
``expire`` drops the Icechunk snapshots older than the retention from the history and deletes the
objects only they referenced (:mod:`smflow.store.maintenance`); the latest data is never touched.
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
    e = sub.add_parser("expire", help="expire snapshots older than the retention and garbage-collect their objects")
    e.add_argument("--domain", help="comma-separated domain names (default: the domains of config/daily_pipelines.json)")
    e.add_argument("--retention-days", type=float,
                   help="history to keep [days] (default: SMFLOW_STORE_RETENTION_DAYS, 30); must be > 0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "expire":
        return _expire(args.domain, args.retention_days)

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


def _expire(domains: str | None, retention_days: float | None) -> int:
    from datetime import timedelta

    from smflow.store.maintenance import expire_store

    if retention_days is not None and retention_days <= 0:
        print(f"--retention-days must be > 0, got {retention_days}", file=sys.stderr)
        return 2
    retention = timedelta(days=retention_days) if retention_days is not None else None
    reports = expire_store(domains=[d for d in (domains or "").split(",") if d] or None, retention=retention)
    print(json.dumps([r.as_dict() for r in reports], indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
