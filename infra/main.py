"""The main job on its embedded default: a month of real daily products for the Big Island.

Steps (each visible in the Airflow UI): present the month's granules in the landing zone, seed the
time-series store with the TC window's history, train + register + promote the models on 2017,
backfill ``daily_soil_moisture`` for the month with Airflow's own backfill, then print the products
written, the skill table and the UI addresses. Run it through ``infra/main.sh`` (installs and starts
the stack first).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.airflow_client import AirflowClient  # noqa: E402
from smflow.config import Settings  # noqa: E402


def step(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", default="2018-06-01")
    p.add_argument("--end", default="2018-06-30")
    p.add_argument("--train", nargs=2, default=["2017-01-01", "2017-12-31"])
    p.add_argument("--evaluate", nargs=2, default=["2018-01-01", "2018-12-31"])
    p.add_argument("--api", default="http://127.0.0.1:8080")
    args = p.parse_args(argv)
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)

    from operators.daily import INPUT_PRODUCTS, TC_WINDOW_DAYS
    from smflow import s3 as s3mod
    from smflow.landing import LandingZone

    settings = Settings.load()
    airflow_home = Path(__import__("os").environ.get("AIRFLOW_HOME", settings.home / "airflow"))
    af = AirflowClient(args.api, airflow_home)

    step(f"landing zone: presenting the granules of {start}..{end} as the archive would")
    refs = LandingZone(settings).publish_range(INPUT_PRODUCTS, start, end)
    step(f"  {len(refs)} granules in s3://{settings.landing_bucket}/")

    for dag_id in ("seed_timeseries_store", "train_models", "daily_soil_moisture"):
        af.wait_for_dag(dag_id)

    seed_start = start - timedelta(days=TC_WINDOW_DAYS)
    seed_end = start - timedelta(days=1)
    step(f"seed_timeseries_store {seed_start}..{seed_end} and train_models (train {args.train}, evaluate {args.evaluate})")
    seed_run = af.trigger("seed_timeseries_store", {"start": seed_start.isoformat(), "end": seed_end.isoformat()})
    train_run = af.trigger("train_models", {"train_start": args.train[0], "train_end": args.train[1],
                                            "evaluate_start": args.evaluate[0], "evaluate_end": args.evaluate[1]})
    for dag_id, run_id in (("seed_timeseries_store", seed_run), ("train_models", train_run)):
        state = af.wait_run(dag_id, run_id)
        step(f"  {dag_id}: {state}")
        if state != "success":
            print(f"{dag_id} failed in tasks {af.failed_tasks(dag_id, run_id)}: see the Airflow UI / logs under "
                  f"{settings.home / 'logs'}", file=sys.stderr)
            return 1

    step(f"backfill daily_soil_moisture {start}..{end}")
    af.backfill("daily_soil_moisture", f"{start}T00:00:00Z", f"{end}T00:00:00Z")
    lo, hi = f"{start}T00:00:00Z", f"{end}T00:00:00Z"
    n_days = (end - start).days + 1
    t0 = time.monotonic()
    while True:
        runs = af.runs_between("daily_soil_moisture", lo, hi)
        states = [r["state"] for r in runs]
        done = sum(s in ("success", "failed") for s in states)
        if len(runs) >= n_days and done == len(runs):
            break
        if time.monotonic() - t0 > 3600:
            print("backfill did not finish within an hour", file=sys.stderr)
            return 1
        time.sleep(10)
        step(f"  {states.count('success')} success, {states.count('failed')} failed, {len(runs) - done} running/queued of {n_days}")
    failed = [r for r in runs if r["state"] == "failed"]
    for r in failed:
        print(f"  FAILED {r['dag_run_id']}: {af.failed_tasks('daily_soil_moisture', r['dag_run_id'])}", file=sys.stderr)

    from smflow.skill import format_table, skill_table

    s3 = s3mod.client(settings)
    keys = s3mod.list_keys(s3, settings.products_bucket)
    print("\nProducts written (s3://%s/):" % settings.products_bucket)
    for k in keys:
        print(f"  s3://{settings.products_bucket}/{k}")
    nc = [k for k in keys if k.endswith(".nc")]
    png = [k for k in keys if k.endswith(".png")]
    stac = [k for k in keys if k.startswith("stac/items/")]
    print(f"  -> {len(nc)} netCDF, {len(png)} PNG quicklooks, {len(stac)} STAC items for {n_days} days")

    print(f"\nSkill {start}..{end} (published products):")
    print(format_table(skill_table(start, end, settings=settings)))

    pw_file = airflow_home / "simple_auth_manager_passwords.json.generated"
    print("\nAirflow UI: %s   user: admin   password: in %s" % (args.api, pw_file))
    print(f"MLflow UI:  {settings.mlflow_tracking_uri}   (models tc_merging@champion, sm2rain@champion)")
    print(f"S3:         {settings.s3_endpoint_url}   (credentials in {settings.home / 'stack.env'})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
