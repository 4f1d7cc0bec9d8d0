"""Fixtures of the fault-injection suite (``pytest -m faults``, ``infra/test.sh --faults``).

- ``fault_table``: every case records one row (case, outcome, objects lost, recovery time); the
  table is printed at the end of the session and written to ``$SMFLOW_HOME/faults/table.md``.
- ``pg_proxy``: a :class:`~tests.faults.tcp_proxy.TcpProxy` in front of the machine's PostgreSQL.
- ``fault_airflow``: a second, small Airflow stack (own state directory under
  ``$SMFLOW_HOME/faults/airflow-stack``, a free port, the DAGs of ``tests/faults/dags``) whose
  metadata DB is reached through ``pg_proxy`` and whose tasks use the main stack's S3 server;
  started and stopped with ``infra/stack.py``.
- ``s3_outage``: stop the main stack's S3 server, start it again.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import _check, _state_home, run_stack
from tests.faults.tcp_proxy import TcpProxy, free_port  # noqa: I001

FAULT_DAGS = Path(__file__).resolve().parent / "dags"
POSTGRES = ("127.0.0.1", 5432)
OUTCOMES = ("completed on retry", "completed", "quarantined with a reason", "recorded missing with a reason",
            "rejected with the file named")


@dataclass
class FaultRow:
    case: str
    outcome: str
    objects_lost: int
    recovery_s: float | None


_ROWS: list[FaultRow] = []


class FaultTable:
    """Rows of the suite's summary table; ``record`` is called once a case's assertions passed."""

    def record(self, case: str, outcome: str, *, objects_lost: int = 0, recovery_s: float | None = None) -> None:
        assert outcome in OUTCOMES, outcome
        _ROWS.append(FaultRow(case, outcome, objects_lost, recovery_s))


@pytest.fixture(scope="session")
def fault_table() -> FaultTable:
    return FaultTable()


def table_markdown(rows: list[FaultRow]) -> str:
    lines = ["| case | outcome | objects lost | recovery time [s] |", "| --- | --- | --- | --- |"]
    for row in rows:
        recovery = "-" if row.recovery_s is None else f"{row.recovery_s:.1f}"
        lines.append(f"| {row.case} | {row.outcome} | {row.objects_lost} | {recovery} |")
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _ROWS:
        return
    text = table_markdown(_ROWS)
    terminalreporter.section("fault-injection cases")
    terminalreporter.write(text)
    out = _state_home() / "faults" / "table.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    terminalreporter.write_line(f"(written to {out})")


@pytest.fixture(scope="session")
def pg_proxy():
    """A cut-able TCP proxy in front of the machine's PostgreSQL (skip when none answers)."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(POSTGRES) != 0:
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    with TcpProxy(POSTGRES) as proxy:
        yield proxy


@dataclass
class FaultAirflow:
    env: dict[str, str]
    home: Path
    url: str

    def stack(self, *args: str, check: bool = True):
        result = run_stack(*args, env=self.env)
        if check:
            _check(result, f"infra/stack.py {' '.join(args)} (fault stack)")
        return result

    def client(self):
        from infra.airflow_client import AirflowClient

        return AirflowClient(self.url, self.home / "airflow")


@pytest.fixture(scope="session")
def fault_airflow(pg_proxy, stack):
    """Airflow of its own (state dir, port, DAG folder) on a metadata DB behind ``pg_proxy``; its
    tasks use the S3 server of the main stack (``stack``), whose identity it is given."""
    home = _state_home() / "faults" / "airflow-stack"
    (home / "s3").mkdir(parents=True, exist_ok=True)
    # the S3 identities of the main stack: admin (credentials.json) and the services' (identities.json:
    # pipelines, landing, mlflow), so that the fault stack's tasks sign as the main S3 server expects
    for name in ("credentials.json", "identities.json"):
        source = _state_home() / "s3" / name
        if source.is_file():
            identity = home / "s3" / name
            identity.write_bytes(source.read_bytes())
            identity.chmod(0o600)
    port = free_port()
    env = {**os.environ,
           "SMFLOW_HOME": str(home),
           "SMFLOW_AIRFLOW_PORT": str(port),
           "SMFLOW_AIRFLOW_DAGS_FOLDER": str(FAULT_DAGS),
           "SMFLOW_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{pg_proxy.port}",
           "SMFLOW_PRELOAD_MODULES": "smflow.operators.callbacks",  # the probe DAG needs nothing heavy
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    airflow = FaultAirflow(env=env, home=home, url=f"http://127.0.0.1:{port}")
    airflow.stack("start", "--only", "airflow")
    try:
        client = airflow.client()
        client.wait_for_dag("fault_probe")
        # One run through the executor first: its workers preload (and compile the numba kernels
        # on a fresh machine, minutes on 2 busy cores) before they take their first task.
        warm = client.request("POST", "/dags/fault_probe/dagRuns", json={
            "logical_date": None, "conf": {"seconds": 0, "marker": str(home / "warm-up.txt")}})["dag_run_id"]
        assert client.wait_run("fault_probe", warm, timeout=900, poll=2) == "success"
        yield airflow
    finally:
        airflow.stack("stop", "--only", "airflow", check=False)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.5):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not reached after {timeout:.0f} s: {what}")


class S3Outage:
    """Stop and start the S3 server of the main stack (``infra/stack.py``), as an outage."""

    def stop(self) -> float:
        t0 = time.monotonic()
        _check(run_stack("stop", "--only", "s3"), "infra/stack.py stop --only s3")
        return time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL the S3 server's process group: it stops answering at once (a crash)."""
        import signal

        pid = int((_state_home() / "run" / "s3.pid").read_text())
        os.killpg(pid, signal.SIGKILL)

    def start(self) -> None:
        _check(run_stack("start", "--only", "s3"), "infra/stack.py start --only s3")


@pytest.fixture
def s3_outage(stack):
    outage = S3Outage()
    yield outage
    outage.start()  # whatever happened in the test: S3 is up for the next one


def day_objects(s3, settings, day: str) -> dict[str, str]:
    """key -> ETag of the day's published objects (files under daily/Y/M/D/ and its STAC item)."""
    from smflow.s3 import list_keys

    compact = day.replace("-", "")
    keys = list(list_keys(s3, settings.products_bucket, f"daily/{day.replace('-', '/')}/"))
    keys += [k for k in list_keys(s3, settings.products_bucket, "stac/items/") if compact in k]
    return {key: s3.head_object(Bucket=settings.products_bucket, Key=key)["ETag"] for key in keys}


def staging_objects(s3, settings) -> list[str]:
    """Objects under the staging prefixes: the store's products-staging/ and the publisher's staging/."""
    from smflow.operators.daily import STAGING_PREFIX
    from smflow.publish.publisher import STAGING_PREFIX as PUBLISH_STAGING
    from smflow.s3 import list_keys

    return (list(list_keys(s3, settings.store_bucket, f"{STAGING_PREFIX}/"))
            + list(list_keys(s3, settings.products_bucket, PUBLISH_STAGING)))
