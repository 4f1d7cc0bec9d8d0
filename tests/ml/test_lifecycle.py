"""Alias history and rollback against the real MLflow server and S3 of the stack."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest


@pytest.fixture
def two_versions(stack):
    """A throw-away registered model with two versions, each from its own run with a gate tag."""
    import mlflow

    from smflow.ml.models import GridParameters, SM2RAINModel
    from smflow.ml.registry import configure, log_grid_model

    import numpy as np

    configure(stack)
    name = f"lifecycle_probe_{uuid.uuid4().hex[:8]}"
    refs = []
    mlflow.set_experiment("lifecycle_probe")
    for k in range(2):
        with mlflow.start_run():
            mlflow.set_tag("evaluation_gate", f"probe gate {k}: passed")
            params = GridParameters(arrays={"Z": np.full((2, 2), 50.0 + k)}, metadata={})
            refs.append(log_grid_model(SM2RAINModel(), params, registered_name=name))
    return name, refs


def _moves(name: str):
    """The moves of ``champion`` (the history also holds the challenger's registrations and, when the
    stack's webhook receiver runs, the refusals of evaluate_challenger runs of these probes)."""
    from smflow.ml.lifecycle import history

    return [m for m in history(name) if m.alias == "champion" and m.kind in ("promotion", "rollback")]


def test_promotions_are_recorded_and_rollback_returns_to_the_previous_version(stack, two_versions):
    from mlflow import MlflowClient

    from smflow.ml.lifecycle import rollback
    from smflow.ml.registry import champion_ref, promote

    name, (v1, v2) = two_versions
    promote(v1)
    promote(v2)
    promote(v2)  # no move: nothing recorded
    moves = _moves(name)
    assert [(m.from_version, m.to_version, m.kind) for m in moves] == [(None, v1.version, "promotion"),
                                                                       (v1.version, v2.version, "promotion")]
    assert moves[1].reason == "probe gate 1: passed" and moves[1].evaluation_run == v2.run_id
    tags = MlflowClient().get_model_version(name, v2.version).tags
    assert '"to_version": "%s"' % v2.version in tags["champion.promoted"]
    assert "champion.replaced" in MlflowClient().get_model_version(name, v1.version).tags

    back = rollback(name, reason="v2 broke the rainfall")
    assert back.version == v1.version == champion_ref(name).version
    last = _moves(name)[-1]
    assert (last.kind, last.from_version, last.to_version, last.reason) == (
        "rollback", v2.version, v1.version, "v2 broke the rainfall")
    # v1 was new at its first promotion: nothing earlier to roll back to
    with pytest.raises(LookupError, match="no earlier version"):
        rollback(name)


def test_history_command_prints_the_moves(stack, two_versions):
    from smflow.ml.registry import promote

    name, (v1, v2) = two_versions
    promote(v1)
    promote(v2)
    out = subprocess.run([sys.executable, "-m", "smflow.ml.lifecycle", "history", name], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"v{v1.version} -> v{v2.version}" in out.stdout and "probe gate 1: passed" in out.stdout
    out = subprocess.run([sys.executable, "-m", "smflow.ml.lifecycle", "rollback", name], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and f"@champion -> v{v1.version}" in out.stdout, out.stderr


@pytest.mark.e2e
def test_rollback_from_airflow(stack, two_versions, airflow_env):
    """The rollback_model DAG (what an operator triggers in the UI) moves the alias back."""
    import json
    from pathlib import Path

    from smflow.ml.registry import champion_ref, promote

    name, (v1, v2) = two_versions
    promote(v1)
    promote(v2)
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", "rollback_model", "-c",
                          json.dumps({"model": name, "reason": "operator: v2 drifts"})],
                         env=airflow_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert champion_ref(name).version == v1.version
    last = _moves(name)[-1]
    assert last.kind == "rollback" and last.reason == "operator: v2 drifts" and "rollback_model" in last.actor
