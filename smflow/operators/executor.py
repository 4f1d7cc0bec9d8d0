"""A LocalExecutor whose worker processes import the science stack once, before any task.

Airflow 3's LocalExecutor forks every task from a long-lived worker process (``os.fork`` in the
task supervisor). Each daily task otherwise pays 5-10 s of imports (xarray, netCDF4, Great
Expectations, MLflow) on a 2-core machine; with the modules already in the worker, the forked
task starts with them. Configure with ``[core] executor = smflow.operators.executor.PreloadingLocalExecutor``
(``infra/stack.py`` does). Only imports happen in the worker: no threads, files or connections are
opened before the fork (checked by ``tests/dags/test_executor.py``).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import time

from airflow.executors.local_executor import LocalExecutor, _run_worker

log = logging.getLogger(__name__)

#: Modules every worker imports before taking tasks (``SMFLOW_PRELOAD_MODULES`` overrides, comma-separated).
PRELOAD_MODULES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "xarray",
    "netCDF4",
    "h5py",
    "h5netcdf",
    "scipy.stats",
    "pyresample",
    "boto3",
    "mlflow",
    "great_expectations",
    "matplotlib.pyplot",
    "pystac",
    "smflow.readers",
    "smflow.ingest",
    "smflow.store",
    "smflow.landing",
    "smflow.publish.publisher",
    "smflow.science.tc",
    "smflow.science.merging",
    "smflow.science.sm2rain",
    "smflow.quality.validate",
    "smflow.quality.quarantine",
    "smflow.ml.registry",
    "smflow.operators.daily",
    "smflow.operators.training",
)


def preload_modules() -> tuple[list[str], float]:
    """Import :data:`PRELOAD_MODULES`; a module that fails is skipped (the task will raise it)."""
    import matplotlib

    import smflow.quality  # noqa: F401 - quiets Great Expectations' import-time logging before it loads

    matplotlib.use("Agg")
    names = os.environ.get("SMFLOW_PRELOAD_MODULES")
    modules = [m.strip() for m in names.split(",") if m.strip()] if names else list(PRELOAD_MODULES)
    t0 = time.monotonic()
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # noqa: BLE001 - a broken import must surface in the task, not kill the worker
            log.exception("could not preload %s", name)
    try:  # compile (first run on a machine, ~15 s) or load from cache (<1 s) the numba kernels once
        from smflow.science.warmup import warm_up

        warm_up()
    except Exception:  # noqa: BLE001 - the task compiles on first use instead
        log.exception("could not warm up the science kernels")
    return loaded, time.monotonic() - t0


def _preload_then_run_worker(**kwargs) -> None:
    loaded, seconds = preload_modules()
    log.info("worker %d preloaded %d modules in %.1f s", os.getpid(), len(loaded), seconds)
    _run_worker(**kwargs)


class PreloadingLocalExecutor(LocalExecutor):
    """:class:`LocalExecutor` whose workers run :func:`preload_modules` first."""

    def _spawn_worker(self):
        p = multiprocessing.Process(
            target=_preload_then_run_worker,
            kwargs={
                "logger_name": self.log.name,
                "input": self.activity_queue,
                "output": self.result_queue,
                "unread_messages": self._unread_messages,
                "team_conf": self.conf,
            },
        )
        p.start()
        self.workers[p.pid] = p
