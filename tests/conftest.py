"""Shared fixtures: the real local stack, started with the repo's own ``infra/stack.py``.

- ``stack``: S3 + MLflow up (a running stack is reused), returns ``smflow.config.Settings`` whose
  default S3 identity is the stack's ``admin`` (tests make and empty scratch buckets, fill the
  landing zone); the code under test that names a role (``landing``) still uses that role.
- ``s3_client``: boto3 client for that S3 server (admin).
- ``airflow_services`` (per module): the Airflow daemons + the MLflow webhook receiver up; an Airflow
  REST client.
- ``airflow_env``: environment for ``airflow ...`` CLI subprocesses (``airflow dags test``)
  against the stack's AIRFLOW_HOME, metadata DB migrated.

At session end only the services this session started are stopped, and only when no other
live test session (another pytest process on the same state directory) still uses them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = REPO_ROOT / "infra" / "stack.py"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than ~10 s (still part of the default run)")
    config.addinivalue_line("markers", "e2e: needs the running services of the local stack")
    config.addinivalue_line("markers", "faults: fault-injection case (tests/faults; `infra/test.sh --faults` runs only these)")
    config.addinivalue_line("markers", "celery: runs a CeleryExecutor stack (in the default run; `infra/test.sh --celery` runs only these)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the stack-level fault cases (markers ``faults`` + ``slow``) in the default run.

    They start a second Airflow stack and hold S3 / PostgreSQL outages of minutes (about 12 min
    in all), which would take ``.ci/run`` past its 30-minute budget; ``infra/test.sh --faults``
    (``-m faults``) runs them, and so does any run given ``-m`` or ``SMFLOW_STACK_FAULTS=1``.
    The granule and reader fault cases stay in the default run.

    The CeleryExecutor stack's end-to-end run (marker ``celery``: a second Airflow with its
    workers, one daily run through the scheduler) is part of the default run;
    ``SMFLOW_SKIP_CELERY_E2E=1`` leaves it out, ``infra/test.sh --celery`` (``-m celery``) runs it
    alone.
    """
    if config.option.markexpr:
        return
    faults = os.environ.get("SMFLOW_STACK_FAULTS") == "1"
    skip_celery = os.environ.get("SMFLOW_SKIP_CELERY_E2E") == "1"
    skip_fault = pytest.mark.skip(reason="stack-level fault case: run by `infra/test.sh --faults`")
    for item in items:
        if not faults and item.get_closest_marker("faults") and item.get_closest_marker("slow"):
            item.add_marker(skip_fault)
        if skip_celery and item.get_closest_marker("celery"):
            item.add_marker(pytest.mark.skip(reason="SMFLOW_SKIP_CELERY_E2E=1: the CeleryExecutor e2e is left out"))


def run_stack(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python infra/stack.py *args`` with this interpreter (the project's venv)."""
    return subprocess.run(
        [sys.executable, str(STACK_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}", pytrace=False)


def remove_bucket(s3, bucket: str) -> None:
    """Empty and delete a test's scratch ``bucket`` (best effort: a left-over bucket fails no test)."""
    from smflow.s3 import list_keys

    try:
        for key in list_keys(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def _state_home() -> Path:
    from smflow.config import DEFAULT_HOME

    return Path(os.environ.get("SMFLOW_HOME") or DEFAULT_HOME).absolute()


def _other_live_sessions(leases: Path) -> bool:
    for lease in leases.glob("*.lease"):
        pid = int(lease.stem) if lease.stem.isdigit() else -1
        if pid == os.getpid():
            continue
        if pid > 0 and Path(f"/proc/{pid}").exists():
            return True
        lease.unlink(missing_ok=True)  # left by a session that died
    return False


def _services_up(services: tuple[str, ...]):
    """Start ``services`` with ``infra/stack.py`` (running ones are reused) and yield; at the end stop
    the ones this session started, unless another live test session still holds a lease."""
    leases = _state_home() / "run" / "leases"
    leases.mkdir(parents=True, exist_ok=True)
    lease = leases / f"{os.getpid()}.lease"
    lease.touch()

    result = run_stack("start", "--only", ",".join(services))
    if result.returncode != 0:
        lease.unlink(missing_ok=True)
    _check(result, f"infra/stack.py start --only {','.join(services)}")
    # Decided under the stack's lock: "<service>: <url> started (...)" vs "... already running".
    started = [name for name in services if re.search(rf"^{name}: \S+ started", result.stdout, re.MULTILINE)]
    try:
        yield
    finally:
        lease.unlink(missing_ok=True)
        if started and not _other_live_sessions(leases):
            run_stack("stop", "--only", ",".join(started))


@pytest.fixture(scope="session")
def stack():
    """S3 + MLflow of the local stack, healthy; yields ``smflow.config.Settings``."""
    from smflow.config import Settings

    for _ in _services_up(("s3", "mlflow")):
        yield Settings.load().as_s3_role("admin")


@pytest.fixture(scope="module")
def airflow_services(stack):
    """The stack's Airflow daemons and MLflow webhook receiver, healthy (after S3 + MLflow); yields
    an :class:`infra.airflow_client.AirflowClient` logged in as the stack's admin. Module-scoped:
    what it started is stopped after the module, so the rest of the session does not share the two
    cores with a live scheduler (and with the evaluations every model registration would start)."""
    from infra.airflow_client import AirflowClient
    from smflow.config import _read_env_file

    for _ in _services_up(("airflow", "webhooks")):
        values = _read_env_file(_state_home() / "stack.env")
        yield AirflowClient(values["SMFLOW_AIRFLOW_URL"], Path(values["AIRFLOW_HOME"]))


@pytest.fixture(scope="session")
def s3_client(stack):
    """boto3 S3 client for the stack's S3 server (path-style, the stack's ``admin`` keys)."""
    from smflow import s3

    return s3.client(stack)


@pytest.fixture(scope="session")
def airflow_env() -> dict[str, str]:
    """Environment for ``airflow`` CLI subprocesses: AIRFLOW_HOME with the stack's airflow.cfg,
    a migrated metadata DB, stack.env variables and the venv's bin first on PATH."""
    from smflow.config import _read_env_file

    _check(run_stack("prepare-airflow"), "infra/stack.py prepare-airflow")
    values = _read_env_file(_state_home() / "stack.env")
    env = {**os.environ, **values}
    env["AIRFLOW_HOME"] = values["AIRFLOW_HOME"]
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


# --- process exit ---------------------------------------------------------------------------
# The eccodes wheel (GRIB/BUFR readers) bundles its own copies of libraries that other wheels
# (pyarrow via Great Expectations, PROJ via pyproj/rasterio) also load; with all of them in one
# process the interpreter's final C-level teardown can double-free and abort *after* every test
# has passed and pytest has reported. Leave the process with pytest's status before that teardown,
# so a crash in library finalisers cannot turn a green run red or a red one green.
_EXIT_STATUS: dict[str, int] = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys as _sys

    if "status" in _EXIT_STATUS and "eccodes" in _sys.modules:
        _sys.stdout.flush()
        _sys.stderr.flush()
        os._exit(_EXIT_STATUS["status"])
