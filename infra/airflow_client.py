"""Minimal client of the Airflow 3 REST API (v2) used by the main command and the e2e tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

TERMINAL = {"success", "failed"}


class AirflowClient:
    """Token-authenticated calls to the Airflow api-server (SimpleAuthManager)."""

    def __init__(self, base_url: str, airflow_home: Path, username: str = "admin") -> None:
        self.base_url = base_url.rstrip("/")
        pw_file = Path(airflow_home) / "simple_auth_manager_passwords.json.generated"
        if not pw_file.is_file():
            raise FileNotFoundError(f"{pw_file} not found: is Airflow started (python infra/stack.py start)?")
        self.username = username
        self.password = json.loads(pw_file.read_text())[username]
        self.session = requests.Session()
        self._login()

    def _login(self) -> None:
        r = requests.post(f"{self.base_url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30)
        r.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs) -> Any:
        r = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if r.status_code == 401:
            self._login()
            r = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"Airflow API {method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the DAG processor has parsed ``dag_id``; unpause it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                dag = self.request("GET", f"/dags/{dag_id}")
                if dag.get("is_paused"):
                    self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"DAG {dag_id} not parsed after {timeout:.0f} s: see airflow dags list-import-errors")
                time.sleep(3)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 1800, poll: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in TERMINAL:
                return state
            time.sleep(poll)
        raise TimeoutError(f"{dag_id} run {run_id} not finished after {timeout:.0f} s")

    def backfill(self, dag_id: str, from_date: str, to_date: str, *, max_active_runs: int = 3,
                 reprocess_behavior: str = "failed") -> dict[str, Any]:
        return self.request("POST", "/backfills", json={
            "dag_id": dag_id, "from_date": from_date, "to_date": to_date,
            "max_active_runs": max_active_runs, "reprocess_behavior": reprocess_behavior,
            "run_backwards": False, "dag_run_conf": {},
        })

    def runs_between(self, dag_id: str, start: str, end: str) -> list[dict[str, Any]]:
        out = self.request("GET", f"/dags/{dag_id}/dagRuns", params={
            "logical_date_gte": start, "logical_date_lte": end, "limit": 100, "order_by": "logical_date"})
        return out["dag_runs"]

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        out = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return [f"{t['task_id']}[{t.get('map_index', -1)}]" for t in out["task_instances"] if t["state"] in ("failed", "upstream_failed")]
