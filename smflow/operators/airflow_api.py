"""Client of the Airflow 3 REST API (v2), logged in as the stack's ``admin`` (SimpleAuthManager).

One client for everything outside Airflow that starts or watches DAG runs: the main command
(``infra/main.py``), the MLflow webhook receiver (:mod:`smflow.operators.webhooks`) and the tests.
Only ``requests``: no Airflow import (the receiver runs without Airflow's libraries loaded).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

#: Final states of a DAG run.
TERMINAL = {"success", "failed"}
#: Name of the password file the SimpleAuthManager generates in ``AIRFLOW_HOME``.
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"


class AirflowAPIError(RuntimeError):
    """An Airflow API call answered an error status (``status``); the message names the call."""

    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        super().__init__(f"Airflow API {method} {path} -> {status}: {text[:500]}")
        self.status = status


class AirflowClient:
    """Token-authenticated calls to the Airflow api-server.

    Parameters
    ----------
    base_url : str
        The api-server, e.g. ``http://127.0.0.1:8080``.
    airflow_home : Path, optional
        ``AIRFLOW_HOME`` holding the generated password file; or give ``password_file``.
    password_file : Path, optional
        The SimpleAuthManager's password file (JSON ``{user: password}``).
    username : str
        Default ``admin``.
    connect : bool
        Log in now (default), or at the first call (the webhook receiver starts before Airflow).

    Raises
    ------
    FileNotFoundError
        No password file: Airflow has not been started (``python infra/stack.py start``).
    """

    def __init__(self, base_url: str, airflow_home: Path | None = None, *, password_file: Path | None = None,
                 username: str = "admin", connect: bool = True) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        if password_file is None:
            if airflow_home is None:
                raise ValueError("give airflow_home or password_file")
            password_file = Path(airflow_home) / PASSWORD_FILE
        self.password_file = Path(password_file)
        self.username = username
        self.session = requests.Session()
        if connect:
            self._login()

    def _login(self) -> None:
        import requests

        if not self.password_file.is_file():
            raise FileNotFoundError(f"{self.password_file} not found: is Airflow started (python infra/stack.py start)?")
        password = json.loads(self.password_file.read_text())[self.username]
        r = requests.post(f"{self.base_url}/auth/token", json={"username": self.username, "password": password},
                          timeout=30)
        r.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs) -> Any:
        """``method`` on ``/api/v2{path}``; logs in again once on 401 (expired token).

        Raises
        ------
        AirflowAPIError
            An error status (>= 400).
        """
        if "Authorization" not in self.session.headers:
            self._login()
        r = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if r.status_code == 401:
            self._login()
            r = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if r.status_code >= 400:
            raise AirflowAPIError(method, path, r.status_code, r.text)
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

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, *, run_id: str | None = None) -> str:
        """Start a run of ``dag_id`` now (no logical date) with ``conf``; returns its run id.

        With ``run_id`` the call is idempotent: when that run already exists (409) its id is
        returned and nothing else starts.
        """
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        try:
            run = self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        except AirflowAPIError as exc:
            if exc.status == 409 and run_id:
                return run_id
            raise
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
