"""The preloading executor imports the science stack in its workers without starting threads
(tasks are forked from the workers: a thread alive at fork time could leave a lock held)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_preload_imports_every_module_and_starts_no_thread(tmp_path):
    code = (
        "import sys, threading\n"
        "from smflow.operators.executor import KERAS_MODULES, PRELOAD_MODULES, keras_needed, preload_modules\n"
        "loaded, seconds = preload_modules()\n"
        "wanted = len(PRELOAD_MODULES) + (len(KERAS_MODULES) if keras_needed() else 0)\n"
        "print('LOADED', len(loaded), wanted, threading.active_count(),"
        " 'great_expectations' in sys.modules, 'xarray' in sys.modules)\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    env.pop("SMFLOW_PRELOAD_MODULES", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("LOADED"))
    _, n_loaded, n_wanted, threads, gx, xr = line.split()
    assert n_loaded == n_wanted
    assert threads == "1", "a preloaded module started a thread before the fork"
    assert gx == "True" and xr == "True"


def test_keras_is_preloaded_for_the_lstm_downscaling_of_the_main_pipeline():
    from smflow.catalog import pipeline
    from smflow.operators.executor import keras_needed

    spec = pipeline("daily_soil_moisture")
    assert keras_needed() == ("downscaled" in spec.products and str(spec.downscaling_method).startswith("lstm"))


def test_executor_is_a_local_executor():
    from airflow.executors.local_executor import LocalExecutor

    from smflow.operators.executor import PreloadingLocalExecutor

    assert issubclass(PreloadingLocalExecutor, LocalExecutor)
    assert PreloadingLocalExecutor.is_local
