"""infra/stack.py against the real services: health, S3 auth, MLflow artifacts in S3,
idempotent start, and a stop that leaves no process behind.

The shared stack (default ``SMFLOW_HOME``) is only started and reused here; the tests that stop
services run a private stack (own state directory, ports, SQLite) so they disturb nobody.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_PIDS = ("s3", "mlflow")


def run_stack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "infra" / "stack.py"), *args],
        env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_ports(count: int) -> list[int]:
    """Ports p with p and p + 10000 free (SeaweedFS puts gRPC on port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 29999)
        if port not in ports and _port_free(port) and _port_free(port + 10000):
            ports.append(port)
    return ports


def _private_env(home: Path) -> dict[str, str]:
    s3, master, volume, filer, mlflow, airflow, metrics = _free_ports(7)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMFLOW_", "AIRFLOW", "MLFLOW_", "AWS_"))
    }
    env.update(
        SMFLOW_HOME=str(home),
        SMFLOW_POSTGRES_URL="off",
        SMFLOW_S3_PORT=str(s3),
        SMFLOW_S3_MASTER_PORT=str(master),
        SMFLOW_S3_VOLUME_PORT=str(volume),
        SMFLOW_S3_FILER_PORT=str(filer),
        SMFLOW_S3_METRICS_PORT=str(metrics),
        SMFLOW_MLFLOW_PORT=str(mlflow),
        SMFLOW_AIRFLOW_PORT=str(airflow),
    )
    return env


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) == sid:
                members.append(int(entry.name))
    return members


def _pids(home: Path) -> dict[str, int]:
    return {path.stem: int(path.read_text()) for path in (home / "run").glob("*.pid")}


def _s3(settings, secret: str | None = None):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=secret or settings.s3_secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


# ---------------------------------------------------------------------------------------------
# The shared stack
# ---------------------------------------------------------------------------------------------


def test_status_reports_healthy(stack):
    result = run_stack("status", "--only", "s3,mlflow")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "healthy" in lines["s3"] and "healthy" in lines["mlflow"]
    assert "database" in lines


def test_stack_env_has_client_settings(stack):
    from smflow.config import _read_env_file

    values = _read_env_file(stack.home / "stack.env")
    for key in (
        "SMFLOW_S3_ENDPOINT_URL", "SMFLOW_S3_ACCESS_KEY", "SMFLOW_S3_SECRET_KEY", "SMFLOW_MLFLOW_TRACKING_URI",
        "AIRFLOW_HOME", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "SMFLOW_DB_BACKEND", "SMFLOW_MLFLOW_BACKEND_STORE_URI", "SMFLOW_AIRFLOW_DB_URL",
    ):
        assert values.get(key), key
    assert values["SMFLOW_S3_SECRET_KEY"] != "smflow-local"  # generated, not the fallback default
    assert (stack.home / "stack.env").stat().st_mode & 0o077 == 0  # it holds secrets
    assert stack.home.stat().st_mode & 0o077 == 0  # so does the whole state home (keys, tokens, logs)


def test_buckets_exist(s3_client, stack):
    names = {bucket["Name"] for bucket in s3_client.list_buckets()["Buckets"]}
    assert {stack.landing_bucket, stack.store_bucket, stack.products_bucket, stack.mlflow_bucket} <= names


def test_s3_server_counts_every_request_on_its_metrics_endpoint(s3_client, stack):
    """The S3 requests of any client, as the server counts them (``SMFLOW_S3_METRICS_URL``)."""
    sys.path.insert(0, str(REPO_ROOT))
    from infra.s3_request_counter import server_request_counts
    from smflow.config import _read_env_file

    url = _read_env_file(stack.home / "stack.env")["SMFLOW_S3_METRICS_URL"]
    key = f"metrics-probe/{uuid.uuid4().hex}"
    before = server_request_counts(url)
    s3_client.put_object(Bucket=stack.store_bucket, Key=key, Body=b"x")
    s3_client.get_object(Bucket=stack.store_bucket, Key=key)["Body"].read()
    s3_client.delete_object(Bucket=stack.store_bucket, Key=key)
    after = server_request_counts(url)
    # >=: other processes of the shared stack may use it meanwhile; never fewer than ours.
    assert after["PUT"] - before["PUT"] >= 1 and after["GET"] - before["GET"] >= 1, (before, after)
    assert after["DELETE"] - before["DELETE"] >= 1, (before, after)


def test_s3_rejects_wrong_secret_and_anonymous(stack):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as excinfo:
        _s3(stack, secret="not-the-secret").list_buckets()
    assert excinfo.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{stack.s3_endpoint_url}/{stack.mlflow_bucket}", timeout=5)
    assert anonymous.value.code == 403


def test_mlflow_logs_an_artifact_into_s3(stack, s3_client, tmp_path):
    import mlflow

    from smflow.ml.registry import configure

    configure(stack)  # the tracking URI and the basic-auth user of stack.env
    experiment = mlflow.set_experiment("infra-stack-test")
    payload = tmp_path / "hello.txt"
    payload.write_text(f"artifact {uuid.uuid4()}\n")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_param("purpose", "stack test")
        mlflow.log_artifact(str(payload), artifact_path="check")
    keys = [
        obj["Key"]
        for obj in s3_client.list_objects_v2(Bucket=stack.mlflow_bucket, Prefix="artifacts/").get("Contents", [])
        if run.info.run_id in obj["Key"]
    ]
    assert any(key.endswith("check/hello.txt") for key in keys), keys
    key = next(key for key in keys if key.endswith("check/hello.txt"))
    assert s3_client.get_object(Bucket=stack.mlflow_bucket, Key=key)["Body"].read() == payload.read_bytes()


def test_second_start_reuses_running_services(stack):
    before = _pids(stack.home)
    result = run_stack("start", "--only", "s3,mlflow")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already running") == 2, result.stdout
    after = _pids(stack.home)
    assert {name: after[name] for name in SERVICE_PIDS} == {name: before[name] for name in SERVICE_PIDS}


# ---------------------------------------------------------------------------------------------
# A private stack: stop, stale pid files, SQLite fallback, Airflow
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_private_stack_start_and_stop_leaves_nothing(tmp_path):
    home = tmp_path / "home"
    env = _private_env(home)
    (home / "run").mkdir(parents=True)
    (home / "run" / "mlflow.pid").write_text("999999\n")  # stale: no such process

    started = run_stack("start", "--only", "s3,mlflow", env=env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "database: sqlite" in started.stdout
        pids = _pids(home)
        assert set(pids) == {"s3", "mlflow"} and pids["mlflow"] != 999999
        members = {name: _session_members(pid) for name, pid in pids.items()}
        assert len(members["mlflow"]) >= 2, members  # mlflow server + its uvicorn worker
        assert run_stack("status", "--only", "s3,mlflow", env=env).returncode == 0
    finally:
        stopped = run_stack("stop", "--only", "s3,mlflow", env=env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for name, pid in pids.items():
        assert _session_members(pid) == [], f"{name} left processes behind"
    assert not list((home / "run").glob("*.pid"))
    status = run_stack("status", "--only", "s3,mlflow", env=env)
    assert status.returncode == 1 and "down" in status.stdout
    # Stopping again is a no-op.
    assert run_stack("stop", env=env).returncode == 0


@pytest.mark.slow
def test_an_s3_server_started_without_the_public_catalogue_is_restarted_with_it(tmp_path, monkeypatch):
    """A SeaweedFS started by an older stack (no ``anonymous`` identity) is not healthy to this
    one: the next ``start`` restarts it, and the products bucket becomes readable anonymously."""
    sys.path.insert(0, str(REPO_ROOT))
    from infra import stack as stack_module

    for key in [k for k in os.environ if k.startswith(("SMFLOW_", "AIRFLOW", "MLFLOW_", "AWS_"))]:
        monkeypatch.delenv(key)
    for key, value in _private_env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    cfg = stack_module.Config.load()
    identity_config, products_public = stack_module.s3_identity_config, stack_module.products_public

    def older_identity_config(cfg, identities):
        config = identity_config(cfg, identities)
        config["identities"] = [i for i in config["identities"] if i["name"] != stack_module.ANONYMOUS_IDENTITY]
        return config

    monkeypatch.setattr(stack_module, "s3_identity_config", older_identity_config)
    monkeypatch.setattr(stack_module, "products_public", lambda cfg: True)  # the older health check
    try:
        assert stack_module.cmd_start(cfg, ["s3"]) == 0
        older = stack_module.running_pid(cfg, "s3", "weed")
        assert older and not products_public(cfg)  # unsigned listing refused
        monkeypatch.setattr(stack_module, "s3_identity_config", identity_config)
        monkeypatch.setattr(stack_module, "products_public", products_public)
        assert stack_module.cmd_start(cfg, ["s3"]) == 0
        restarted = stack_module.running_pid(cfg, "s3", "weed")
        assert restarted and restarted != older and products_public(cfg)
    finally:  # a private server of this test only: no need to wait out SeaweedFS's slow exit
        pid = stack_module.running_pid(cfg, "s3", "weed")
        if pid:
            stack_module.stop_session("s3", pid, timeout=1.0)


PROBE_DAG = """
import os

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="stack_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def stack_probe():
    @task
    def where() -> str:
        return os.environ.get("SMFLOW_HOME", "")

    where()


stack_probe()
"""


class _Api:
    """Just enough of the Airflow REST API (urllib only) for the probe."""

    def __init__(self, url: str):
        self.url = url
        self.token: str | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def login(self, user: str, password: str) -> int:
        status, body = self.call("POST", "/auth/token", {"username": user, "password": password})
        self.token = body.get("access_token", self.token)
        return status

    def wait(self, what: str, probe, timeout: float = 90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = probe()
            if result:
                return result
            time.sleep(1)
        pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.e2e
def test_private_airflow_runs_a_task_behind_a_generated_login(tmp_path):
    home = tmp_path / "home"
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "stack_probe.py").write_text(PROBE_DAG)
    env = {**_private_env(home), "SMFLOW_AIRFLOW_DAGS_FOLDER": str(dags)}
    started = run_stack("start", "--only", "airflow", env=env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        api = _Api(f"http://127.0.0.1:{env['SMFLOW_AIRFLOW_PORT']}")
        status, health = api.call("GET", "/api/v2/monitor/health")
        assert status == 200
        for part in ("metadatabase", "scheduler", "dag_processor", "triggerer"):
            assert health[part]["status"] == "healthy", health

        password = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        assert password and password != "admin"
        # Never printed (the stack made the file before the api-server: nothing to generate) ...
        assert password not in started.stdout + started.stderr
        assert "simple_auth_manager_passwords.json.generated" in started.stdout  # ... only where it is
        for log in (home / "logs").glob("*.log"):
            assert password.encode() not in log.read_bytes(), f"the admin password is in {log}"
        # ... and kept private: the state home, the password file and the daemon logs
        assert home.stat().st_mode & 0o077 == 0
        for path in [home / "airflow" / "simple_auth_manager_passwords.json.generated", *(home / "logs").glob("*.log")]:
            assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
        again = run_stack("start", "--only", "airflow", env=env)
        assert "already running" in again.stdout and password not in again.stdout

        assert api.login("admin", "admin") == 401
        assert api.call("GET", "/api/v2/dags")[0] == 401  # authentication is on
        assert api.login("admin", password) in (200, 201)

        # A task really runs: scheduler -> LocalExecutor -> execution API of the api-server.
        api.wait("the probe DAG to be parsed", lambda: api.call("GET", "/api/v2/dags/stack_probe")[0] == 200)
        status, run = api.call("POST", "/api/v2/dags/stack_probe/dagRuns", {"logical_date": None})
        assert status in (200, 201), run
        run_path = f"/api/v2/dags/stack_probe/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"

        def finished():
            state = api.call("GET", run_path)[1].get("state")
            return state if state in ("success", "failed") else None

        assert api.wait("the probe run", finished) == "success", (home / "logs").iterdir()
        status, xcom = api.call("GET", f"{run_path}/taskInstances/where/xcomEntries/return_value")
        assert status == 200 and str(home) in str(xcom.get("value")), xcom  # stack.env reached the task
    finally:
        pids = _pids(home)
        stopped = run_stack("stop", "--only", "airflow", env=env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert set(pids) == {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
    assert not any(_session_members(pid) for pid in pids.values())
    assert not list((home / "run").glob("*.pid"))


def test_airflow_env_points_the_cli_at_the_stack(airflow_env):
    home = Path(airflow_env["AIRFLOW_HOME"])
    assert (home / "airflow.cfg").is_file() and (home / "migrated.json").is_file()
    result = subprocess.run(
        ["airflow", "config", "get-value", "core", "dags_folder"],
        env=airflow_env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(REPO_ROOT / "dags")
    cfg = (home / "airflow.cfg").read_text()
    for line in ("executor = smflow.operators.executor.PreloadingLocalExecutor", "parallelism = 4", "load_examples = False", "dags_are_paused_at_creation = False"):
        assert line in cfg
