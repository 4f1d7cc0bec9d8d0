"""The global 0.25 deg pipeline on its full window: wall time, peak memory and S3 requests per task.

Runs ``daily_soil_moisture_global_025`` (249,458 land cells of a 600 x 1440 grid) for the real ESA
CCI SM day 2016-06-06 with the full 180-day window, against the real local stack (S3 + MLflow of
``infra/stack.py``, started if needed). Needs ``../shared/data/real`` (the real granules).

Steps (each task in its own process, so that its peak memory is its own; a watchdog kills a task
whose resident memory passes ``--memory-cap`` GiB, so that the benchmark never takes the machine
down, and the table says "killed"):

1. land the real granules: CCI ACTIVE / PASSIVE 2016-06-06, GLDAS 2016-01-01 (7 x 3-hourly);
2. ingest GLDAS 2016-01-01 with the pipeline's task (a real day inside the window);
3. generate the rest of the window with :mod:`smflow.synthetic` (labelled; 2015-12-10..2016-06-06,
   all parents, real days skipped), anchored on the real GLDAS day and the real CCI coverage;
4. train the domain's TC merging and SM2RAIN models (``smflow.ml.train.train_domain_models``);
5. the daily tasks of 2016-06-06 as the DAG runs them: ``ingest_granule`` x 3, ``compute_products``,
   ``validate_products``, ``publish_products``.

S3 requests are counted per task by botocore's ``before-call`` hook of every client the task makes
(what the task asks of S3, not the server's view). ``--window`` shortens the window (default 180).

    .venv/bin/python benchmarks/bench_global.py                   # full window (~20+ min)
    .venv/bin/python benchmarks/bench_global.py --window 36       # the e2e test's window
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DAY = date(2016, 6, 6)
PIPELINE = "global_025"
CCI = {
    "esa_cci_sm_active": "esa_cci_sm_v05.2/active/ESACCI-SOILMOISTURE-L3S-SSMS-ACTIVE-20160606000000-fv05.2.nc",
    "esa_cci_sm_passive": "esa_cci_sm_v05.2/passive/ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160606000000-fv05.2.nc",
}
GLDAS_DAY = date(2016, 1, 1)
#: Issue 16 targets.
TARGET_SECONDS, TARGET_GIB = 300.0, 4.0


# ------------------------------------------------------------------------------- one task (child)

def _count_s3() -> dict[str, int]:
    """Count every S3 call of the clients this process makes, by operation."""
    import botocore.client

    counts: dict[str, int] = {}
    original = botocore.client.BaseClient._make_api_call

    def counted(self, operation_name, api_params):
        if self.meta.service_model.service_name == "s3":
            counts[operation_name] = counts.get(operation_name, 0) + 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counted
    return counts


def _task(name: str, args: dict) -> dict:
    from smflow.config import Settings

    shared = Settings.load().shared_data_dir
    settings = Settings.load().as_s3_role("admin")
    if name == "land":
        from infra.archive_stand_in import ArchiveStandIn
        from smflow import s3

        zone = ArchiveStandIn(settings, s3=s3.client(settings))
        for product, path in CCI.items():
            zone.put_native(product, DAY, shared / path)
        for path in sorted((shared / "gldas_noah21").glob("GLDAS_NOAH025_3H.A20160101.*.nc4")):
            zone.put_native("gldas_noah025", GLDAS_DAY, path)
        return {"landed": True}
    if name == "ingest":
        from smflow.landing import LandingZone
        from smflow.operators.daily import ingest_granule

        ref = LandingZone(settings).find(args["product"], args["day"])
        got = ingest_granule({"product": args["product"], "day": args["day"], "bucket": ref.bucket if ref else None,
                              "key": ref.key if ref else None}, pipeline_name=PIPELINE, settings=settings)
        return got
    if name == "generate":
        from smflow.domain import load_domain
        from smflow.store import TimeSeriesStore
        from smflow.synthetic import anchor_climatology, coverage, generate_history

        grid = load_domain("global_025")
        anchors = sorted((shared / "gldas_noah21").glob("GLDAS_NOAH025_3H.A20160101.*.nc4"))
        written = generate_history(TimeSeriesStore(settings, grid=grid), grid, args["start"], args["end"],
                                   anchor=anchor_climatology(anchors, grid),
                                   coverage_masks={p: coverage(shared / f, grid, p) for p, f in CCI.items()},
                                   settings=settings)
        return {p: len(d) for p, d in written.items()}
    if name == "train":
        from smflow.ml.train import train_domain_models

        results = train_domain_models(PIPELINE, (date.fromisoformat(args["start"]), date.fromisoformat(args["end"])),
                                      settings=settings)
        return {"models": [r.to_dict() for r in results]}
    if name == "compute_products":
        from smflow.operators.daily import compute_products

        return compute_products(args["day"], args["ingested"], pipeline_name=PIPELINE, window_days=args["window"],
                                settings=settings)
    if name == "validate_products":
        from smflow.operators.daily import validate_products

        return validate_products(args["staged"], settings=settings)
    if name == "publish_products":
        from smflow.operators.daily import publish_products

        return publish_products(args["staged"], settings=settings)
    raise ValueError(f"unknown task {name!r}")


def child(name: str, args_json: str) -> None:
    counts = _count_s3()
    start = time.perf_counter()
    result = _task(name, json.loads(args_json))
    print("BENCH-RESULT " + json.dumps({"seconds": time.perf_counter() - start, "s3_requests": sum(counts.values()),
                                        "s3_by_operation": counts, "result": result}, default=str))


# ------------------------------------------------------------------------------- driver (parent)

def _rss_of_tree(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def run(name: str, args: dict, cap_gib: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, __file__, "--child", name, json.dumps(args, default=str)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    peak, killed = 0, False
    wall = time.perf_counter()

    def watch() -> None:
        nonlocal peak, killed
        while proc.poll() is None:
            rss = _rss_of_tree(proc.pid)
            peak = max(peak, rss)
            if rss > cap_gib * 2**30:
                killed = True
                proc.kill()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    wall = time.perf_counter() - wall
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    row = {"task": name, "wall_seconds": wall, "peak_gib": peak / 2**30, "killed": killed,
           "returncode": proc.returncode}
    if line:
        row.update(json.loads(line.removeprefix("BENCH-RESULT ")))
    else:
        row["error"] = (err or out)[-2000:]
    print(f"{name:<28} wall {wall:7.1f} s  peak {peak / 2**30:5.2f} GiB  S3 requests {row.get('s3_requests', '?')}"
          + ("  KILLED at the memory cap" if killed else "") + ("" if line or killed else f"  FAILED: {row['error'][-300:]}"),
          flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("TASK", "ARGS"), help=argparse.SUPPRESS)
    parser.add_argument("--window", type=int, default=180, help="TC / SM2RAIN window [days] (default 180)")
    parser.add_argument("--memory-cap", type=float, default=12.0,
                        help="kill a task above this resident memory [GiB] (default 12: the machine is shared)")
    parser.add_argument("--skip-history", action="store_true", help="reuse the stored history and models")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    from benchmarks._common import machine

    print(machine())
    subprocess.run([sys.executable, str(REPO / "infra" / "stack.py"), "start", "--only", "s3,mlflow"], check=True,
                   stdout=subprocess.DEVNULL)
    start = DAY - timedelta(days=args.window - 1)
    rows = []
    cap = args.memory_cap
    if not args.skip_history:
        rows.append(run("land", {}, cap))
        rows.append(run("ingest", {"product": "gldas_noah025", "day": GLDAS_DAY.isoformat()}, cap))
        rows[-1]["task"] = "ingest gldas 2016-01-01"
        rows.append(run("generate", {"start": start.isoformat(), "end": DAY.isoformat()}, cap))
        rows.append(run("train", {"start": start.isoformat(), "end": (DAY - timedelta(days=1)).isoformat()}, cap))
    daily = []
    ingested = []
    for product in ("esa_cci_sm_active", "esa_cci_sm_passive", "gldas_noah025"):
        row = run("ingest", {"product": product, "day": DAY.isoformat()}, cap)
        row["task"] = f"ingest_granule {product}"
        daily.append(row)
        ingested.append(row.get("result") or {"product": product, "day": DAY.isoformat(), "status": "failed",
                                              "reason": "benchmark task failed"})
    row = run("compute_products", {"day": DAY.isoformat(), "ingested": ingested, "window": args.window}, cap)
    daily.append(row)
    if row.get("result"):
        row = run("validate_products", {"staged": row["result"]}, cap)
        daily.append(row)
        if row.get("result"):
            daily.append(run("publish_products", {"staged": row["result"]}, cap))
    total = sum(r["wall_seconds"] for r in daily)
    peak = max(r["peak_gib"] for r in daily)
    requests = sum(r.get("s3_requests", 0) for r in daily)
    done = all(r.get("result") is not None for r in daily) and len(daily) == 6
    print(f"\n| task | wall [s] | peak memory [GiB] | S3 requests |\n|---|---|---|---|")
    for r in rows + daily:
        print(f"| {r['task']} | {r['wall_seconds']:.1f} | {r['peak_gib']:.2f}{' (killed at the cap)' if r['killed'] else ''} "
              f"| {r.get('s3_requests', '?')} |")
    print(f"| **daily run (the 6 tasks above the line of setup)** | **{total:.1f}** | **{peak:.2f}** | **{requests}** |")
    print(f"\nwindow {args.window} days; targets < {TARGET_SECONDS:.0f} s per day: "
          f"{'met' if done and total < TARGET_SECONDS else 'MISSED'}; peak < {TARGET_GIB:.0f} GiB: "
          f"{'met' if done and peak < TARGET_GIB else 'MISSED'}" + ("" if done else " (the run did not complete)"))
    if args.json:
        args.json.write_text(json.dumps({"window": args.window, "setup": rows, "daily": daily}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
