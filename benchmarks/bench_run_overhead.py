"""Overhead per daily run on the small domain (issue 16): wall time per run and per task, and the
S3 requests of each run as the S3 server counts them.

On the running stack (``infra/stack.py start``; alternative ports through the ``SMFLOW_*_PORT``
variables), prepares what the main command prepares (:func:`infra.main.seed_and_train`: the
store seeded with the TC window's history, the models trained on 2017 and promoted; skipped when
champions trained on the same periods exist), then runs ``daily_soil_moisture`` for ``--days``
consecutive days from ``--start``, **one run at a time** through the real Airflow: a REST trigger
with the day as logical date, picked up by the stack's scheduler and executor (what the main
command's backfill does, without the overlap of runs). Optionally (``--dags-test N``) N more days
through ``airflow dags test`` (one process: parsing, the in-process execution API and every task).

Printed per run: wall time (run queued -> run ended, from the DAG run record), the run's own
start -> end, and the S3 requests (``SeaweedFS_s3_request_total`` of the gateway's Prometheus
endpoint, ``SMFLOW_S3_METRICS_URL``, read before and after the run: every client counted,
boto3 and Icechunk's Rust client alike, MLflow's artifact downloads included); then the median
and p90 over the runs and, per task, the median run time and queued delay (task instance
``queued_when`` -> ``start_date``) over the runs.

    .venv/bin/python benchmarks/bench_run_overhead.py --start 2018-06-01 --days 6
    .venv/bin/python benchmarks/bench_run_overhead.py --start 2018-06-07 --days 6 --no-prepare
    .venv/bin/python benchmarks/bench_run_overhead.py --start 2018-06-13 --days 0 --dags-test 2 --no-prepare

A day can be run once per stack (one DAG run per logical date): the before/after comparison
takes consecutive blocks of days of the same month.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

from _common import REPO_ROOT, machine

from infra.airflow_client import AirflowClient
from infra.s3_request_counter import server_request_counts
from infra.main import _prepare_providers, seed_and_train, step
from smflow.config import Settings, _read_env_file

DAG_ID = "daily_soil_moisture"


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _seconds(a: str | None, b: str | None) -> float | None:
    ta, tb = _ts(a), _ts(b)
    return (tb - ta).total_seconds() if ta and tb else None


def p90(values: list[float]) -> float:
    """90th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(0.9 * len(ordered) + 0.5) - 1))]


def run_day(af: AirflowClient, day: date, metrics_url: str, tag: str) -> dict:
    """Trigger and wait for the run of ``day``; its timings, task instances and S3 requests."""
    before = server_request_counts(metrics_url)
    run_id = f"bench_overhead_{tag}_{day.isoformat()}"
    t0 = time.monotonic()
    af.request("POST", f"/dags/{DAG_ID}/dagRuns", json={
        "dag_run_id": run_id, "logical_date": f"{day.isoformat()}T00:00:00Z", "conf": {}})
    state = af.wait_run(DAG_ID, run_id, timeout=1800, poll=1)
    client_wall = time.monotonic() - t0
    after = server_request_counts(metrics_url)
    run = af.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
    tis = af.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})["task_instances"]
    requests = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    return {
        "day": day.isoformat(), "state": state, "client_wall_s": client_wall,
        "run_wall_s": _seconds(run.get("queued_at"), run.get("end_date")),
        "run_exec_s": _seconds(run.get("start_date"), run.get("end_date")),
        "s3_requests": sum(requests.values()), "s3_by_type": requests,
        "tasks": [{"task": t["task_id"] + (f"[{t['map_index']}]" if t.get("map_index", -1) >= 0 else ""),
                   "task_id": t["task_id"], "state": t["state"], "try": t.get("try_number"),
                   "run_s": _seconds(t.get("start_date"), t.get("end_date")),
                   "queued_s": _seconds(t.get("queued_when"), t.get("start_date"))} for t in tis],
    }


def dags_test_day(day: date, metrics_url: str) -> dict:
    """``airflow dags test daily_soil_moisture DAY`` in a new process; its wall time and S3 requests."""
    before = server_request_counts(metrics_url)
    t0 = time.monotonic()
    proc = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "airflow"), "dags", "test", DAG_ID, day.isoformat()],
                          capture_output=True, text=True, env=os.environ)
    wall = time.monotonic() - t0
    after = server_request_counts(metrics_url)
    state = "success" if proc.returncode == 0 and "state=success" in (proc.stdout + proc.stderr) else (
        f"rc={proc.returncode}")
    return {"day": day.isoformat(), "state": state, "client_wall_s": wall,
            "s3_requests": sum(after.values()) - sum(before.values())}


def summarise(runs: list[dict], label: str) -> None:
    walls = [r["run_wall_s"] for r in runs if r.get("run_wall_s") is not None]
    print(f"\n{label}: {len(runs)} runs, states {dict(Counter(r['state'] for r in runs))}")
    for r in runs:
        extra = f"run {r['run_wall_s']:.1f} s (executing {r['run_exec_s']:.1f} s), " if r.get("run_wall_s") else ""
        print(f"  {r['day']}: {extra}client {r['client_wall_s']:.1f} s, S3 requests {r['s3_requests']} "
              f"{r.get('s3_by_type', '')}")
    if walls:
        print(f"  run wall time (queued -> end): median {statistics.median(walls):.1f} s, p90 {p90(walls):.1f} s")
    clients = [r["client_wall_s"] for r in runs]
    print(f"  client wall time (trigger -> seen finished): median {statistics.median(clients):.1f} s, "
          f"p90 {p90(clients):.1f} s")
    print(f"  S3 requests per run (server count): median {statistics.median(r['s3_requests'] for r in runs):.0f}")
    per_task: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        for t in r.get("tasks", []):
            for key in ("run_s", "queued_s"):
                if t[key] is not None:
                    per_task[t["task"]][key].append(t[key])
    if per_task:
        print(f"  {'task':<32} {'run s (median)':>15} {'queued s (median)':>18}")
        for name, values in sorted(per_task.items(), key=lambda kv: -statistics.median(kv[1]["run_s"] or [0])):
            run_s = statistics.median(values["run_s"]) if values["run_s"] else float("nan")
            queued = statistics.median(values["queued_s"]) if values["queued_s"] else float("nan")
            print(f"  {name:<32} {run_s:>15.1f} {queued:>18.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", default="2018-06-01", help="first day (the seed ends the day before, as the "
                   "main job's does before its --start)")
    p.add_argument("--days", type=int, default=6, help="runs through the scheduler (REST trigger)")
    p.add_argument("--dags-test", type=int, default=0, help="then this many days through `airflow dags test`")
    p.add_argument("--no-prepare", action="store_true", help="skip the seed + train step (done before)")
    p.add_argument("--json", default=None, help="write the raw records here")
    args = p.parse_args(argv)
    start = date.fromisoformat(args.start)

    settings = Settings.load()
    stack_env = {**_read_env_file(settings.home / "stack.env"), **os.environ}
    metrics_url = stack_env.get("SMFLOW_S3_METRICS_URL")
    if not metrics_url:
        print("no SMFLOW_S3_METRICS_URL in stack.env: restart the stack's S3 service with this branch "
              "(`infra/stack.py stop --only s3; infra/stack.py start --only s3`)", file=sys.stderr)
        return 1
    af = AirflowClient(stack_env["SMFLOW_AIRFLOW_URL"], Path(stack_env.get("AIRFLOW_HOME", settings.home / "airflow")))
    print(f"machine: {machine()}; load average at start {os.getloadavg()}")
    last = start + timedelta(days=args.days + args.dags_test - 1)
    if not args.no_prepare:
        _prepare_providers(stack_env["SMFLOW_PROVIDERS_URL"], settings, start, last)
        if not seed_and_train(af, settings, start, train=["2017-01-01", "2017-12-31"],
                              evaluate=["2018-01-01", "2018-12-31"]):
            return 1
    af.wait_for_dag(DAG_ID)

    tag = time.strftime("%H%M%S")
    runs = []
    for k in range(args.days):
        day = start + timedelta(days=k)
        step(f"{DAG_ID} {day} (scheduler)")
        runs.append(run_day(af, day, metrics_url, tag))
    tests = []
    for k in range(args.dags_test):
        day = start + timedelta(days=args.days + k)
        step(f"{DAG_ID} {day} (airflow dags test)")
        tests.append(dags_test_day(day, metrics_url))
    if runs:
        summarise(runs, f"through the scheduler ({start}..{start + timedelta(days=args.days - 1)})")
    if tests:
        summarise(tests, "through `airflow dags test`")
    print(f"load average at end {os.getloadavg()}; last day {last}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"scheduler": runs, "dags_test": tests, "load": os.getloadavg()}, fh, indent=1)
    return 0 if all(r["state"] == "success" for r in runs + tests) else 1


if __name__ == "__main__":
    raise SystemExit(main())
