"""``train_domain_models`` (DAG and callable) against the real stack: a domain without history in
its store is skipped plainly (reason returned and logged, nothing registered); a pipeline without
its own models is refused. The training itself (``smflow.ml.train.train_domain_models`` on the
global grid) runs in ``tests/e2e/test_global_dag.py``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from smflow.operators.training import train_domain

MODELS = ("tc_merging_global_025", "sm2rain_global_025")


def _versions(stack) -> int:
    from mlflow import MlflowClient

    from smflow.ml.registry import configure

    configure(stack)
    return sum(len(MlflowClient().search_model_versions(f"name = '{m}'")) for m in MODELS)


def test_a_domain_without_history_is_skipped_and_registers_nothing(stack, caplog):
    settings = dataclasses.replace(stack, store_bucket=f"test-domtrain-{uuid.uuid4().hex[:8]}")
    registered = _versions(stack)
    with caplog.at_level("WARNING", logger="smflow.operators.training"):
        out = train_domain("daily_soil_moisture_global_025", "2016-05-01", "2016-06-05", settings=settings)
    assert out["pipeline"] == "global_025" and (out["train_start"], out["train_end"]) == ("2016-05-01", "2016-06-05")
    assert out["days_held"] == {"esa_cci_sm_active": 0, "esa_cci_sm_passive": 0, "gldas_noah025": 0}
    assert "holds no day of esa_cci_sm_active, esa_cci_sm_passive, gldas_noah025 in 2016-05-01..2016-06-05" in out["skipped"]
    assert "models" not in out and out["skipped"] in caplog.text
    assert _versions(stack) == registered
    with pytest.raises(ValueError, match="train_models DAG"):
        train_domain("big_island", "2017-01-01", "2017-12-31", settings=settings)
    with pytest.raises(ValueError, match="before train_start"):
        train_domain("global_025", "2016-06-05", "2016-05-01", settings=settings)


@pytest.mark.e2e
def test_the_dag_skips_through_airflow(stack, airflow_env):
    """``airflow dags test train_domain_models`` with a period the stack's store does not hold."""
    conf = {"pipeline": "global_025", "train_start": "1990-01-01", "train_end": "1990-01-31"}
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", "train_domain_models",
                          "-c", json.dumps(conf)], env=airflow_env, capture_output=True, text=True, timeout=300)
    logs = out.stdout + out.stderr
    assert out.returncode == 0, logs[-3000:]
    assert "holds no day of esa_cci_sm_active" in logs and "1990-01-01..1990-01-31" in logs, logs[-3000:]
