"""Faults of the Airflow daemons on a real (second, small) Airflow stack: a stop while a task
runs, and the metadata DB's connections cut (a TCP proxy in front of PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.faults.conftest import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.e2e]


def _task_instances(client, run_id: str) -> dict[str, dict]:
    out = client.request("GET", f"/dags/fault_probe/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {ti["task_id"]: ti for ti in out}


def _trigger(client, tmp_path: Path, seconds: float) -> tuple[str, Path]:
    marker = tmp_path / f"runs-{uuid.uuid4().hex}.txt"
    run_id = client.request("POST", "/dags/fault_probe/dagRuns", json={
        "logical_date": None, "conf": {"seconds": seconds, "marker": str(marker)}})["dag_run_id"]
    return run_id, marker


def test_stopping_airflow_lets_a_running_task_finish_and_report_once(fault_airflow, fault_table, tmp_path):
    """`stack.py stop --only airflow` while a ~10 s task runs; started again, the task instance
    is success and ran exactly once (its result was reported before the daemons went down)."""
    client = fault_airflow.client()
    run_id, marker = _trigger(client, tmp_path, seconds=10)
    wait_for(lambda: marker.is_file() and marker.read_text(), 120, "slow_step started")
    t0 = time.monotonic()
    stopped = fault_airflow.stack("stop", "--only", "airflow")
    stop_seconds = time.monotonic() - t0
    assert "SIGKILL" not in stopped.stderr and "terminating them" not in stopped.stderr, stopped.stderr
    fault_airflow.stack("start", "--only", "airflow")
    client = fault_airflow.client()
    assert client.wait_run("fault_probe", run_id, timeout=300, poll=2) == "success"
    tis = _task_instances(client, run_id)
    assert tis["slow_step"]["state"] == "success" and tis["slow_step"]["try_number"] == 1, tis["slow_step"]
    assert len(marker.read_text().splitlines()) == 1, marker.read_text()  # executed exactly once
    assert tis["after"]["state"] == "success"
    fault_table.record("Airflow stopped (stack.py stop) while a 10 s task runs", "completed",
                       recovery_s=time.monotonic() - t0)
    assert stop_seconds < 60, f"stop took {stop_seconds:.0f} s"


def test_metadata_db_connections_cut_while_a_task_runs(fault_airflow, pg_proxy, fault_table, tmp_path):
    """Every connection to PostgreSQL dropped and refused for 20 s mid-task, then restored: the
    Airflow daemons that exit on the lost DB (scheduler, triggerer, dag-processor: by design) are
    restarted by infra/keepalive.py, and the run completes (on retry where the cut cost an attempt)."""
    client = fault_airflow.client()
    run_id, marker = _trigger(client, tmp_path, seconds=25)
    wait_for(lambda: marker.is_file() and marker.read_text(), 120, "slow_step started")
    t0 = time.monotonic()
    closed = pg_proxy.cut()
    assert closed > 0, "the daemons held no connection through the proxy"
    time.sleep(20)
    pg_proxy.restore()
    wait_for(lambda: fault_airflow.stack("status", "--only", "airflow", check=False).returncode == 0, 300,
             "every Airflow daemon healthy again", poll=3)
    client = fault_airflow.client()
    assert client.wait_run("fault_probe", run_id, timeout=900, poll=3) == "success"
    recovery = time.monotonic() - t0
    tis = _task_instances(client, run_id)
    assert tis["slow_step"]["state"] == "success" and tis["after"]["state"] == "success"
    tries = tis["slow_step"]["try_number"]
    log = (fault_airflow.home / "logs" / "airflow-scheduler.log").read_text(errors="replace")
    assert "keepalive: " in log  # the scheduler did exit on the lost DB, and was restarted
    fault_table.record("PostgreSQL connections cut 20 s mid-task (TCP proxy)",
                       "completed on retry" if tries > 1 else "completed", recovery_s=recovery)

