"""End to end on the CeleryExecutor: the daily DAG through the scheduler, a real broker, real workers.

A second Airflow of the stack (own state directory under ``$SMFLOW_HOME/celery-stack``, a free
port, ``SMFLOW_AIRFLOW_EXECUTOR=celery``) started and stopped with ``infra/stack.py``: its
scheduler sends the tasks over the Redis broker (127.0.0.1:6379, the stack's own database and key
prefix) to the two Celery workers the stack runs, ``light`` and ``heavy``; results go to the
stack's PostgreSQL. Its tasks use the main stack's S3 server, MLflow registry and provider
archives' stand-in (``providers``), whose identities it is given. ``airflow dags test`` would run
the tasks in-process and bypass the executor: the run here is triggered through the REST API and
awaited, and the workers' logs must name every task instance of it, each on its queue's worker.

One day (2018-06-02), the 0.01 deg product off (``SMFLOW_DOWNSCALING=off``). The store is seeded
and the champions trained only when missing (``tests/e2e/test_daily_dag.py`` leaves both; on a
fresh state directory the training adds about 4 min). Marker ``celery``: part of the default run
(``SMFLOW_SKIP_CELERY_E2E=1`` leaves it out); ``bash infra/test.sh --celery`` runs it alone.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import _check, _services_up, _state_home, run_stack
from tests.faults.tcp_proxy import free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.celery]

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "daily_soil_moisture"
DAY = date(2018, 6, 2)
#: Files of the main stack's state directory the Celery stack's tasks need: the S3 identities,
#: the MLflow admin password and the stand-in archives' tokens.
SHARED_SECRETS = ("s3/credentials.json", "s3/identities.json", "mlflow/secrets.json", "providers/credentials.json")


class CeleryAirflow:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.url = f"http://127.0.0.1:{env['SMFLOW_AIRFLOW_PORT']}"

    def stack(self, *args: str) -> subprocess.CompletedProcess:
        result = run_stack(*args, env=self.env, timeout=900)
        _check(result, f"infra/stack.py {' '.join(args)} (Celery stack)")
        return result

    def client(self):
        from infra.airflow_client import AirflowClient

        return AirflowClient(self.url, self.home / "airflow")

    def worker_log(self, queue: str) -> Path:
        return self.home / "logs" / f"airflow-worker-{queue}.log"


@pytest.fixture(scope="module")
def providers(stack):
    """The main stack's provider archives' stand-in (CMR + CDS serving the Hawaii sample)."""
    for _ in _services_up(("providers",)):
        yield


@pytest.fixture(scope="module")
def prepared(stack, s3_client, airflow_env):
    """The store holds the history before DAY and the champions exist (made here only when missing)."""
    from smflow.ml.registry import champion_ref, configure
    from smflow.operators.daily import ML_HISTORY_DAYS, TC_WINDOW_DAYS
    from smflow.operators.training import STORE_PRODUCTS, seed_store
    from smflow.store import TimeSeriesStore

    settings = stack
    start, end = DAY - timedelta(days=TC_WINDOW_DAYS + ML_HISTORY_DAYS), DAY - timedelta(days=1)
    store = TimeSeriesStore(settings, s3=s3_client)
    if any(len(store.days(p, start, end)) < (end - start).days + 1 for p in STORE_PRODUCTS):
        seed_store(start.isoformat(), end.isoformat(), settings=settings)
    configure(settings)
    try:
        for name in ("tc_merging", "soil_moisture_merging", "sm2rain"):
            champion_ref(name)
    except LookupError:  # as tests/e2e/test_daily_dag.py trains them
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "dags", "test", "train_models", "-c",
             json.dumps({"train_start": "2017-01-01", "train_end": "2017-12-31", "evaluate_start": "2018-01-01",
                         "evaluate_end": "2018-12-31", "merging_loso": False, "merging_epochs": 4,
                         "downscaling": False})],
            env=airflow_env, cwd=REPO, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        for name in ("tc_merging", "soil_moisture_merging", "sm2rain"):
            champion_ref(name)
    return settings


@pytest.fixture(scope="module")
def celery_airflow(stack, providers):
    """Airflow with the CeleryExecutor on its own state directory; the main stack's S3 / MLflow / providers."""
    home = _state_home() / "celery-stack"
    for name in SHARED_SECRETS:
        source = _state_home() / name
        if source.is_file():
            target = home / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(0o600)
    # Only the daily DAGs (a symlink: the DAG file finds the repo's config through it).
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    link = dags / "daily_soil_moisture.py"
    if not link.is_symlink():
        link.symlink_to(REPO / "dags" / "daily_soil_moisture.py")
    env = {**os.environ,
           "SMFLOW_HOME": str(home),
           "SMFLOW_AIRFLOW_PORT": str(free_port()),
           "SMFLOW_AIRFLOW_EXECUTOR": "celery",
           "SMFLOW_AIRFLOW_DAGS_FOLDER": str(dags),
           "SMFLOW_DOWNSCALING": "off",
           # No scheduled runs (they would wait for today's granules): the triggered run only.
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("SMFLOW_CELERY_BROKER_URL", None)  # the stack's own Redis database and key prefix
    airflow = CeleryAirflow(home, env)
    started = airflow.stack("start", "--only", "airflow")
    assert "executor: CeleryExecutor" in started.stdout, started.stdout
    try:
        yield airflow
    finally:
        run_stack("stop", "--only", "airflow", env=env)


def _logged_task_instances(text: str, run_id: str) -> set[tuple[str, int]]:
    """(task_id, map_index) of every task instance of ``run_id`` a Celery worker executed (its log)."""
    pattern = re.compile(r"Executing workload in Celery: .*?log_path='dag_id=" + re.escape(DAG_ID)
                         + r"/run_id=" + re.escape(run_id) + r"/task_id=([^/]+)/(?:map_index=(-?\d+)/)?attempt=")
    return {(m.group(1), int(m.group(2) or -1)) for m in pattern.finditer(text)}


def test_the_daily_dag_runs_through_the_scheduler_on_the_celery_workers(celery_airflow, prepared, s3_client):
    from smflow.operators.queues import LIGHT_TASKS
    from smflow.publish.publisher import published_assets

    settings = prepared
    client = celery_airflow.client()
    client.wait_for_dag(DAG_ID)
    day = f"{DAY.isoformat()}T00:00:00Z"
    for run in client.runs_between(DAG_ID, day, day):  # a run of the day left by an earlier session
        client.request("DELETE", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")
    offsets = {q: celery_airflow.worker_log(q).stat().st_size for q in ("light", "heavy")}
    t0 = time.monotonic()
    run_id = client.request("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": day, "conf": {}})["dag_run_id"]
    state = client.wait_run(DAG_ID, run_id, timeout=900, poll=3)
    seconds = time.monotonic() - t0
    logs = {}
    for queue, offset in offsets.items():
        with open(celery_airflow.worker_log(queue), "rb") as handle:
            handle.seek(offset)
            logs[queue] = handle.read().decode(errors="replace")
    assert state == "success", (client.failed_tasks(DAG_ID, run_id), {q: t[-3000:] for q, t in logs.items()})

    tis = client.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})["task_instances"]
    assert {ti["task_id"] for ti in tis} >= {"wait_for_granule", "fetch_granule", "ingest_granule", "compute_products",
                                             "validate_products", "publish_products"}
    ran = {queue: _logged_task_instances(text, run_id) for queue, text in logs.items()}
    for ti in tis:
        expected = "light" if ti["task_id"] in LIGHT_TASKS else "heavy"
        assert ti["queue"] == expected, (ti["task_id"], ti["queue"])
        # executed by the Celery worker of its queue, never by the other one
        key = (ti["task_id"], ti["map_index"])
        assert key in ran[expected], f"{key} is not in the {expected} worker's log: {sorted(ran[expected])}"
        assert key not in ran["light" if expected == "heavy" else "heavy"]
        assert ti["state"] == ("skipped" if ti["task_id"] == "downscale_products" else "success"), ti
        assert ti["hostname"], ti
    assert ran["light"] and ran["heavy"]
    for queue in ("light", "heavy"):  # this start's workers imported the science stack before their first task
        this_start = celery_airflow.worker_log(queue).read_text(errors="replace").rsplit("\n===== ", 1)[-1]
        assert "preloaded" in this_start and " ready." in this_start, queue
        assert celery_airflow.worker_log(queue).stat().st_mode & 0o077 == 0, f"the {queue} worker's log is not private"
    task_logs = list((celery_airflow.home / "airflow" / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}").rglob("*.log"))
    assert len(task_logs) >= len(tis) and not [p for p in task_logs if p.stat().st_mode & 0o077], "task logs not private"

    # The broker: the queues' bindings in the stack's Redis database carry the stack's own key prefix.
    import redis

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(celery_airflow.home / "airflow" / "airflow.cfg")
    prefix = cfg.get("celery_broker_transport_options", "global_keyprefix")
    broker = redis.Redis.from_url(cfg.get("celery", "broker_url"))
    keys = {k.decode() for k in broker.keys("*")}
    assert {f"{prefix}_kombu.binding.light", f"{prefix}_kombu.binding.heavy"} <= keys, sorted(keys)[:20]

    # The run published the day: its summary (XCom of publish_products), and the products through the STAC item.
    summary = client.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/publish_products/xcomEntries/"
                                    "return_value")["value"]
    summary = summary if isinstance(summary, dict) else json.loads(summary)
    assert summary["summary"]["day"] == DAY.isoformat() and summary["summary"]["qc"] == "passed", summary
    assets = published_assets(s3_client, settings.products_bucket, DAY)
    assert {"merged-sm", "sm2rain-precip", "tc-diagnostics"} <= set(assets), assets
    print(f"daily run on the Celery workers: {seconds:.0f} s, {len(tis)} task instances "
          f"({len(ran['light'])} light, {len(ran['heavy'])} heavy)")
