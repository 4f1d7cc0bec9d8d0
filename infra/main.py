"""The main job on its embedded default: a month of real daily products for the Big Island.

Steps (each visible in the Airflow UI): seed the time-series store with the TC window's history,
train + register + promote the models on 2017, backfill ``daily_soil_moisture`` for the month with
Airflow's own backfill (each day's run searches the providers for its granules, downloads them with
verification and lands them with their provenance: the stack's ``providers`` service stands in for
NASA CMR / Earthdata and the Copernicus CDS, serving the bundled Hawaii sample through their
protocols; nothing here writes the landing zone), then print the granules fetched, the products
written, the skill table, the UI addresses and the address of the public catalogue page. Run it through ``infra/main.sh`` (installs and
starts the stack first).
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


def _current_champions(settings: Settings, train: list[str], evaluate: list[str]) -> list[str]:
    """Labels of the champions of both models if they were trained on exactly these periods, else []
    (so re-running the main job re-publishes identical products instead of new model versions)."""
    from mlflow import MlflowClient

    from smflow.ml.registry import champion_ref, configure

    configure(settings)
    labels = []
    for name in ("tc_merging", "soil_moisture_merging", "sm2rain", "smap_reconstruction"):
        try:
            ref = champion_ref(name)
        except LookupError:
            return []
        params = MlflowClient().get_run(ref.run_id).data.params
        wanted = {"train_start": train[0], "train_end": train[1]}
        if any(params.get(k) != v for k, v in wanted.items()):
            return []
        if params.get("evaluate_start", params.get("validate_start")) != evaluate[0]:
            return []
        labels.append(ref.label())
    return labels


def _champion_metrics(settings: Settings) -> str:
    from mlflow import MlflowClient

    from smflow.ml.registry import champion_ref, configure

    configure(settings)
    lines = []
    for name in ("tc_merging", "soil_moisture_merging", "sm2rain"):
        ref = champion_ref(name)
        run = MlflowClient().get_run(ref.run_id).data
        if name == "soil_moisture_merging":
            import mlflow

            version = MlflowClient().get_model_version(name, ref.version)
            lines.append(f"  {ref.label()} method {version.tags.get('method')}: {run.tags.get('evaluation_gate', '')}")
            try:
                table = mlflow.artifacts.load_text(f"runs:/{ref.run_id}/candidates.txt")
            except Exception:  # noqa: BLE001 - a champion registered without in-situ targets has no table
                table = "  (no candidate table: no in-situ stations on this machine)\n"
            lines.append("  Merging candidates against the ISMN stations (champion's training run):")
            lines.extend("    " + line for line in table.rstrip().splitlines())
            continue
        period = (f"{run.params.get('evaluate_start', run.params.get('validate_start'))}.."
                  f"{run.params.get('evaluate_end', run.params.get('validate_end'))}")
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(run.metrics.items()))
        lines.append(f"  {ref.label()} [{period}]: {metrics}")
    from smflow.ml.reconstruction import champion_summary

    lines.extend(champion_summary())
    return "\n".join(lines)


def _checksums(s3, bucket: str) -> dict[str, str]:
    """key -> sha256 (object metadata written by the publisher; ETag otherwise)."""
    from smflow.s3 import list_keys

    out = {}
    for key in list_keys(s3, bucket):
        head = s3.head_object(Bucket=bucket, Key=key)
        out[key] = head.get("Metadata", {}).get("sha256") or head["ETag"]
    return out


def _prepare_providers(url: str, settings: Settings, start: date, end: date) -> None:
    """Have the stand-in cut the month's granules now (one read of the cell files) instead of day by day."""
    from infra.providers.hawaii import Tokens, control

    tokens = Tokens.read(settings.home / "providers" / "credentials.json")
    t0 = time.monotonic()
    control(url, tokens.token, "prepare", timeout=600, start=start.isoformat(), end=end.isoformat())
    step(f"  the stand-in cut {start}..{end} in {time.monotonic() - t0:.0f} s")


def _fetch_summary(s3, settings: Settings, products, start: date, end: date) -> list[str]:
    """One line per product: granules landed from its provider over the month, and the fetch failures."""
    from smflow.landing import LandingZone
    from smflow.operators.daily import FETCH_FAILURES_PREFIX
    from smflow.s3 import list_keys

    zone = LandingZone(settings, s3=s3)
    failures = list_keys(s3, settings.store_bucket, f"{FETCH_FAILURES_PREFIX}/", empty_if_no_bucket=True)
    lines = []
    for product in products:
        landed, provider = 0, "?"
        day = start
        while day <= end:
            head = zone.head(zone.granule_key(product, day))
            if head is not None and head.get("Metadata", {}).get("granule-id"):
                landed += 1
                provider = f"{head['Metadata'].get('provider')} {head['Metadata'].get('collection')}"
            day += timedelta(days=1)
        failed = [k for k in failures if k.startswith(f"{FETCH_FAILURES_PREFIX}/{product}/")]
        lines.append(f"  {product:<10} {landed:>3} granules landed from {provider} (with provenance); "
                     f"{len(failed)} fetch failures recorded")
    return lines


def seed_and_train(af: AirflowClient, settings: Settings, start: date, *, train: list[str], evaluate: list[str],
                   retrain: bool = False, downscaling: bool = False) -> bool:
    """The main job's preparation, through Airflow: seed the store with the history the day ``start``
    needs (TC window + sequence models' history) and train + register + promote the champions on
    ``train`` (skipped when champions trained on the same periods exist, unless ``retrain``).

    Returns True when both DAG runs succeeded; False after printing the failed tasks.
    Shared with ``benchmarks/bench_run_overhead.py``.
    """
    from smflow.operators.daily import ML_HISTORY_DAYS, TC_WINDOW_DAYS

    for dag_id in ("seed_timeseries_store", "train_models", "daily_soil_moisture"):
        af.wait_for_dag(dag_id)

    champions = _current_champions(settings, train, evaluate)
    seed_start = start - timedelta(days=TC_WINDOW_DAYS + ML_HISTORY_DAYS)
    seed_end = start - timedelta(days=1)
    step(f"seed_timeseries_store {seed_start}..{seed_end} and train_models (train {train}, evaluate {evaluate})")
    runs = [("seed_timeseries_store", af.trigger("seed_timeseries_store",
                                                 {"start": seed_start.isoformat(), "end": seed_end.isoformat()}))]
    if champions and not retrain:
        step(f"  champions trained on the same periods exist ({', '.join(champions)}): not retraining (--retrain forces it)")
    else:
        runs.append(("train_models", af.trigger("train_models", {
            "train_start": train[0], "train_end": train[1],
            "evaluate_start": evaluate[0], "evaluate_end": evaluate[1],
            # The 1 km models are not applied by the daily product yet (no champion beats bilinear):
            # trained on request only, to keep the main job short.
            "downscaling": downscaling})))
    for dag_id, run_id in runs:
        state = af.wait_run(dag_id, run_id)
        step(f"  {dag_id}: {state}")
        if state != "success":
            print(f"{dag_id} failed in tasks {af.failed_tasks(dag_id, run_id)}: see the Airflow UI / logs under "
                  f"{settings.home / 'logs'}", file=sys.stderr)
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", default="2018-06-01")
    p.add_argument("--end", default="2018-06-30")
    p.add_argument("--train", nargs=2, default=["2017-01-01", "2017-12-31"])
    p.add_argument("--evaluate", nargs=2, default=["2018-01-01", "2018-12-31"])
    p.add_argument("--api", default=None, help="Airflow API server (default: the stack's, from stack.env)")
    p.add_argument("--reprocess", action="store_true", help="re-run days whose runs already succeeded "
                   "(publishing is idempotent: unchanged products are not rewritten)")
    p.add_argument("--downscaling", action="store_true",
                   help="also train the 1 km downscaling models (Ebro-Pyrenees CGLS 1 km; a few minutes)")
    p.add_argument("--retrain", action="store_true", help="train new model versions even if champions trained "
                   "on the same periods exist")
    args = p.parse_args(argv)
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)

    from smflow.operators.daily import INPUT_PRODUCTS
    from smflow import s3 as s3mod

    settings = Settings.load()
    import os

    from smflow.config import _read_env_file

    stack_env = {**_read_env_file(settings.home / "stack.env"), **os.environ}
    args.api = args.api or stack_env.get("SMFLOW_AIRFLOW_URL", "http://127.0.0.1:8080")
    airflow_home = Path(stack_env.get("AIRFLOW_HOME", settings.home / "airflow"))
    af = AirflowClient(args.api, airflow_home)

    providers = stack_env.get("SMFLOW_PROVIDERS_URL")
    if not providers:
        print("the provider archives' stand-in is not running (no SMFLOW_PROVIDERS_URL in stack.env): "
              "start the stack with `.venv/bin/python infra/stack.py start`", file=sys.stderr)
        return 1
    step(f"providers: the daily runs fetch {', '.join(INPUT_PRODUCTS)} from the archives' stand-ins at {providers} "
         "(NASA CMR + Earthdata, Copernicus CDS; connections smflow_earthdata, smflow_cds)")
    _prepare_providers(providers, settings, start, end)

    if not seed_and_train(af, settings, start, train=args.train, evaluate=args.evaluate, retrain=args.retrain,
                          downscaling=args.downscaling):
        return 1

    step(f"backfill daily_soil_moisture {start}..{end}")
    s3 = s3mod.client(settings)
    before = _checksums(s3, settings.products_bucket)
    af.backfill("daily_soil_moisture", f"{start}T00:00:00Z", f"{end}T00:00:00Z",
                reprocess_behavior="completed" if args.reprocess else "failed")
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

    import warnings

    from smflow.skill import format_table, skill_table

    warnings.filterwarnings("ignore", category=FutureWarning)

    after = _checksums(s3, settings.products_bucket)
    keys = sorted(after)
    print("\nProducts written (s3://%s/):" % settings.products_bucket)
    for k in keys:
        print(f"  s3://{settings.products_bucket}/{k}")
    nc = [k for k in keys if k.endswith(".nc")]
    png = [k for k in keys if k.endswith(".png")]
    stac = [k for k in keys if k.startswith("stac/items/")]
    print(f"  -> {len(nc)} netCDF, {len(png)} PNG quicklooks, {len(stac)} STAC items for {n_days} days")
    if before:
        changed = sorted(k for k in after if k in before and after[k] != before[k])
        new = sorted(k for k in after if k not in before)
        print(f"  -> against the bucket before this run: {len(after) - len(changed) - len(new)} objects unchanged, "
              f"{len(changed)} changed, {len(new)} new")

    print(f"\nGranules fetched from the providers {start}..{end} (s3://{settings.landing_bucket}/):")
    print("\n".join(_fetch_summary(s3, settings, INPUT_PRODUCTS, start, end)))

    print(f"\nSkill {start}..{end} (published products):")
    print(format_table(skill_table(start, end, settings=settings)))

    print("\nModel evaluation (champions in the MLflow registry, on periods their fit did not see):")
    print(_champion_metrics(settings))

    print()
    print("\n".join(addresses(settings, args.api, airflow_home)))
    return 1 if failed else 0


def addresses(settings: Settings, airflow_url: str, airflow_home: Path) -> list[str]:
    """The summary's last lines: the UIs (where their passwords are, never the passwords) and the
    public catalogue page (no login)."""
    from smflow.publish.publisher import CATALOG_KEY, catalogue_page_url

    pw_file = airflow_home / "simple_auth_manager_passwords.json.generated"
    return [
        f"Airflow UI: {airflow_url}   user: admin   password: in {pw_file}",
        f"MLflow UI:  {settings.mlflow_tracking_uri}   user: {settings.mlflow_username or '-'}   password: "
        f"MLFLOW_TRACKING_PASSWORD in {settings.home / 'stack.env'}   (models soil_moisture_merging@champion, "
        f"tc_merging@champion, sm2rain@champion)",
        f"S3:         {settings.s3_endpoint_url}   (credentials in {settings.home / 'stack.env'})",
        f"Catalogue:  {catalogue_page_url(settings)}   (no login: the products bucket is read-only to anyone; "
        f"STAC root {settings.products_url(CATALOG_KEY)})",
        f"Lifecycle:  every new model version is evaluated against its champion by the evaluate_challenger DAG "
        f"(MLflow webhook -> receiver, log {settings.home / 'logs' / 'webhooks.log'}); request retraining "
        f"with the tag retrain=requested on a model version; docs/lifecycle.md",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
