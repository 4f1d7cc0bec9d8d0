"""Celery settings of the stack's CeleryExecutor: Airflow's own, plus the science stack preloaded.

``[celery] celery_config_options = smflow.operators.celery_config.CELERY_CONFIG`` (written by
``infra/stack.py`` when ``SMFLOW_AIRFLOW_EXECUTOR=celery``). The scheduler and the workers both
import this module; it adds nothing to Airflow's configuration (broker, result backend, transport
options and queues come from airflow.cfg, read by the Celery provider's ``default_celery``).

What it adds: a Celery worker imports the modules of
:data:`smflow.operators.executor.PRELOAD_MODULES` once, in its main process before the pool
forks (``worker_init``), as the PreloadingLocalExecutor's workers do. Airflow 3 forks each task
from the pool process, so a task starts with the science stack already imported instead of paying
5-10 s of imports. Only imports happen there: no thread, file or connection is opened before the
fork (``tests/dags/test_executor.py``).
"""

from __future__ import annotations

import logging
import os

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

log = logging.getLogger(__name__)

#: The Celery app's configuration: Airflow's, unchanged.
CELERY_CONFIG: dict = dict(DEFAULT_CELERY_CONFIG)


@worker_init.connect
def preload_science_stack(**_kwargs) -> None:
    """Import the science stack in the worker's main process (Celery's ``worker_init`` signal)."""
    from smflow.operators.executor import preload_modules

    loaded, seconds = preload_modules()
    log.info("celery worker %d preloaded %d modules in %.1f s", os.getpid(), len(loaded), seconds)
