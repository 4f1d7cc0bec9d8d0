"""Faults of the Airflow daemons on a real (second, small) Airflow stack (``fault_airflow``): a
stop while a task runs, the metadata DB's connections cut (a TCP proxy in front of PostgreSQL),
a task process SIGKILLed, the scheduler SIGKILLed mid-run."""

from __future__ import annotations

import os
import signal
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
    restarts = _keepalive_restarts(fault_airflow)
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
    assert _keepalive_restarts(fault_airflow) > restarts  # a daemon did exit on the lost DB, and was restarted
    fault_table.record("PostgreSQL connections cut 20 s mid-task (TCP proxy)",
                       "completed on retry" if tries > 1 else "completed", recovery_s=recovery)



def _keepalive_restarts(airflow) -> int:
    """Restarts infra/keepalive.py made so far, over the daemons' logs."""
    return sum(path.read_text(errors="replace").count("keepalive: ")
               for path in (airflow.home / "logs").glob("airflow-*.log"))


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_sigkilled_task_process_is_detected_and_completed_on_retry(fault_airflow, fault_table, tmp_path):
    client = fault_airflow.client()
    run_id, marker = _trigger(client, tmp_path, seconds=20)
    line = wait_for(lambda: marker.is_file() and marker.read_text(), 120, "slow_step started")
    pid = int(line.split()[1])
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert client.wait_run("fault_probe", run_id, timeout=600, poll=2) == "success"
    recovery = time.monotonic() - t0
    tis = _task_instances(client, run_id)
    assert tis["slow_step"]["try_number"] == 2 and tis["after"]["state"] == "success", tis
    assert [ln.split()[0] for ln in marker.read_text().splitlines()] == ["1", "2"]
    fault_table.record("task process SIGKILLed mid-task", "completed on retry", recovery_s=recovery)


def test_a_scheduler_killed_mid_run_is_restarted_and_nothing_is_lost(fault_airflow, fault_table, tmp_path):
    """SIGKILL of the scheduler while a task runs: keepalive starts a new one, the run completes,
    the running task's result is kept (it ran once)."""
    client = fault_airflow.client()
    run_id, marker = _trigger(client, tmp_path, seconds=15)
    wait_for(lambda: marker.is_file() and marker.read_text(), 120, "slow_step started")
    keeper = int((fault_airflow.home / "run" / "airflow-scheduler.pid").read_text())
    (scheduler,) = _children(keeper)
    t0 = time.monotonic()
    os.kill(scheduler, signal.SIGKILL)
    wait_for(lambda: _children(keeper) and _children(keeper) != [scheduler], 60, "a new scheduler")
    assert client.wait_run("fault_probe", run_id, timeout=600, poll=2) == "success"
    recovery = time.monotonic() - t0
    tis = _task_instances(client, run_id)
    assert tis["slow_step"]["state"] == "success" and tis["after"]["state"] == "success", tis
    executions = len(marker.read_text().splitlines())
    fault_table.record("scheduler SIGKILLed mid-run (restarted by keepalive)",
                       "completed" if executions == 1 else "completed on retry", recovery_s=recovery)
    assert executions == 1, f"slow_step ran {executions} times: {marker.read_text()}"
    # the killed scheduler's idle workers (orphans in its session) do not hold up a stop
    t0 = time.monotonic()
    stopped = fault_airflow.stack("stop", "--only", "airflow")
    assert time.monotonic() - t0 < 60 and "terminating them" not in stopped.stderr, stopped.stderr
    fault_airflow.stack("start", "--only", "airflow")
