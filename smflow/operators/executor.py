"""A LocalExecutor whose worker processes import the science stack once, before any task.

Airflow 3's LocalExecutor forks every task from a long-lived worker process (``os.fork`` in the
task supervisor). Each daily task otherwise pays 5-10 s of imports (xarray, netCDF4, Great
Expectations, MLflow) on a 2-core machine; with the modules already in the worker, the forked
task starts with them. The worker also builds one boto3 S3 client (which loads and parses
botocore's service model, ~0.2 s, into the default session every task inherits; no request is
made) and, when a daily pipeline downscales with an LSTM (``config/daily_pipelines.json``),
imports Keras / TensorFlow (5-8 s per ``downscale_products`` task otherwise). Configure with ``[core] executor = smflow.operators.executor.PreloadingLocalExecutor``
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
    # Imported by compute_products / ingest / publish on first use: ~1-2 s per task on a loaded
    # machine (measured by cProfile, benchmarks/README.md "Overhead per run").
    "zarr",
    "icechunk",
    "distributed",  # dask asks whether it is importable at every compute()
    "sklearn.ensemble",
    "joblib",
    "smflow.daily",
    "smflow.store.chunked",
    "smflow.ml.merging",
    "smflow.ml.reconstruction",
    "smflow.archive.fetch",
    "smflow.operators.downscaling",
    "smflow.downscaling.daily",
)

#: Imported too when a daily pipeline downscales with an LSTM (:func:`keras_needed`).
KERAS_MODULES: tuple[str, ...] = ("keras", "smflow.ml.modelzoo.keras_base")


def keras_needed() -> bool:
    """True when a pipeline of ``config/daily_pipelines.json`` makes a ``downscaled`` product with an
    LSTM method (its daily task fits an LSTM: importing TensorFlow takes 5-8 s on 2 cores)."""
    from smflow.catalog import pipelines

    try:
        defined = pipelines().values()
    except (OSError, ValueError):  # a broken file fails the DAGs with its message; not the worker
        return False
    return any("downscaled" in p.products and str(p.downscaling_method).startswith("lstm") for p in defined)


def _warm_s3_client() -> None:
    """Build (and drop) one boto3 S3 client: the default session keeps botocore's parsed service
    model and endpoint rules, which every forked task then reuses. Opens no connection."""
    import boto3

    boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                 aws_access_key_id="warm-up", aws_secret_access_key="warm-up")


def preload_modules() -> tuple[list[str], float]:
    """Import :data:`PRELOAD_MODULES` (and :data:`KERAS_MODULES` when :func:`keras_needed`), unless
    ``SMFLOW_PRELOAD_MODULES`` names the modules; warm the S3 client and the numba kernels.

    A module that fails is skipped (the task will raise it). Returns the modules imported and
    the seconds it all took.
    """
    import matplotlib

    import smflow.quality  # noqa: F401 - quiets Great Expectations' import-time logging before it loads

    matplotlib.use("Agg")
    names = os.environ.get("SMFLOW_PRELOAD_MODULES")
    modules = [m.strip() for m in names.split(",") if m.strip()] if names else list(PRELOAD_MODULES)
    if not names and keras_needed():
        modules.extend(KERAS_MODULES)
    t0 = time.monotonic()
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # noqa: BLE001 - a broken import must surface in the task, not kill the worker
            log.exception("could not preload %s", name)
    try:
        _warm_s3_client()
    except Exception:  # noqa: BLE001 - the task's first client pays it instead
        log.exception("could not warm up the S3 client")
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
