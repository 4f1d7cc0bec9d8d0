"""The daily science on a real Dask distributed cluster (smflow.cluster): a ``dask scheduler`` and a
``dask worker`` started as processes, ``SMFLOW_DASK_SCHEDULER`` pointing at them; the worker's and
the scheduler's own counters say where the chunks ran."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smflow.cluster import SCHEDULER_ENV, dask_cluster
from smflow.daily import daily_science
from smflow.ml.models import merging_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_daily import SEED, domain, whole_domain  # noqa: E402,F401 - the synthetic domain fixture

REPO_ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"
WORKER = "smflow-test-worker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory: pytest.TempPathFactory):
    """A ``dask scheduler`` and one ``dask worker`` (this project importable) on free ports."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    procs = []
    try:
        with open(logs / "scheduler.log", "w") as log:
            procs.append(subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port",
                                           address.rsplit(":", 1)[1], "--no-dashboard"],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        with open(logs / "worker.log", "w") as log:
            procs.append(subprocess.Popen([str(DASK), "worker", address, "--name", WORKER, "--nthreads", "2",
                                           "--nworkers", "1", "--no-dashboard", "--memory-limit", "0",
                                           "--host", "127.0.0.1"],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"dask scheduler/worker did not start: {(logs / 'scheduler.log').read_text()}"
                                       f"{(logs / 'worker.log').read_text()}") from None
                time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_chunks_run_on_the_configured_cluster(domain: dict, scheduler_address: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client

    monkeypatch.setenv(SCHEDULER_ENV, scheduler_address)
    got = daily_science(domain["parents"], domain["temperature"], merging=merging_parameters(domain["tc"]),
                        rain_model=domain["rain"], seed=SEED, chunk_cells=28)
    expected = whole_domain(domain, (False, False, False))
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)

    with Client(scheduler_address, timeout=10) as client:
        done = client.run_on_scheduler(lambda dask_scheduler: {
            name: {"compute_s": prefix.all_durations.get("compute", 0.0), "erred": prefix.states.get("erred", 0)}
            for name, prefix in dask_scheduler.task_prefixes.items()})
        executed = client.run(lambda dask_worker: (dask_worker.name, dask_worker.state.executed_count))
    # 126 cells in bands of 2 rows: 5 block-length tasks and 5 science tasks, all computed there
    # (the scheduler's prefixes drop the leading underscore of the task functions' names)
    for prefix in ("band_block_lengths", "band_science"):
        assert prefix in done, f"no {prefix} task reached the scheduler: {sorted(done)}"
        assert done[prefix]["compute_s"] > 0 and not done[prefix]["erred"], done[prefix]
    assert [name for name, _ in executed.values()] == [WORKER]
    assert next(iter(executed.values()))[1] >= 10


def test_without_a_scheduler_small_domains_use_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import dask

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with dask_cluster(130) as where:
        assert where == "threads"
        assert dask.compute(dask.delayed(sum)([1, 2]))[0] == 3


def test_an_unreachable_scheduler_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCHEDULER_ENV, f"tcp://127.0.0.1:{_free_port()}")
    from smflow import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(OSError, match=SCHEDULER_ENV):
        with dask_cluster(10):
            pass


def test_without_a_scheduler_large_domains_use_threads_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """No local distributed cluster: on the 2-core machine threads were faster and lighter for the
    global domain (benchmarks/README.md, "Global pipeline")."""
    import dask

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with dask_cluster(864_000) as where:
        assert where == "threads"
        assert dask.config.get("scheduler") == "threads"
        assert dask.compute(dask.delayed(sum)([1, 2]))[0] == 3
