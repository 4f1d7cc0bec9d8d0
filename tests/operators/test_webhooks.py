"""The MLflow webhook receiver: signatures checked as MLflow makes them, forged / unsigned / stale
deliveries refused and logged, replays ignored; and, against the real MLflow server and Airflow of
the stack, registering a version starts ``evaluate_challenger`` with no manual step, and a signed
``retrain=requested`` tag event starts ``train_models`` with the event in the run's conf."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid

import pytest

from smflow.operators import webhooks


def _event(entity: str, action: str, data: dict) -> bytes:
    """A payload as ``mlflow.webhooks.delivery._send_webhook_request`` builds it (json.dumps)."""
    return json.dumps({"entity": entity, "action": action, "timestamp": "2026-12-06T00:00:00+00:00",
                       "data": data}).encode()


def _headers(secret: str, body: bytes, *, delivery: str | None = None, stamp: int | None = None) -> dict[str, str]:
    delivery = delivery or str(uuid.uuid4())
    stamp = str(int(time.time()) if stamp is None else stamp)
    return {"Content-Type": "application/json", webhooks.DELIVERY_HEADER: delivery,
            webhooks.TIMESTAMP_HEADER: stamp, webhooks.SIGNATURE_HEADER: webhooks.sign(secret, delivery, stamp, body)}


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_signature_is_the_one_mlflow_sends():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = _event("model_version", "created", {"name": "m", "version": "3"})
    assert webhooks.sign("s3cret", "d-1", "1765000000", body) == _generate_hmac_signature(
        "s3cret", "d-1", "1765000000", body.decode())


@pytest.fixture
def receiver(tmp_path):
    """The receiver's HTTP server in this process, on a free port; DAG runs recorded, not started."""
    import threading

    started: list[tuple[str, str, dict]] = []

    def trigger(dag_id: str, run_id: str, conf: dict) -> str:
        started.append((dag_id, run_id, conf))
        return run_id

    server = webhooks.make_server("127.0.0.1", 0, "the-secret", webhooks.DeliveryLog(tmp_path / "d.sqlite"), trigger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mlflow", started, tmp_path / "d.sqlite"
    server.shutdown()
    server.server_close()


def test_forged_unsigned_stale_are_refused_and_logged_and_a_replay_is_ignored(receiver, caplog):
    url, started, db = receiver
    body = _event("model_version", "created", {"name": "sm2rain", "version": "7"})
    caplog.set_level(logging.INFO, logger="smflow.webhooks")

    assert _post(url, body, {"Content-Type": "application/json"})[0] == 401  # unsigned
    assert _post(url, body, _headers("not-the-secret", body))[0] == 401  # forged
    signed = _headers("the-secret", body)
    altered = body.replace(b'"7"', b'"8"')
    assert _post(url, altered, signed)[0] == 401  # altered after signing
    assert _post(url, body, _headers("the-secret", body, stamp=int(time.time()) - 3600))[0] == 401  # stale
    assert started == []
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 4 and any("unsigned" in m for m in refusals) and any("does not match" in m for m in refusals)
    assert "the-secret" not in caplog.text

    status, answer = _post(url, body, signed)
    assert (status, answer["status"], answer["dag_id"]) == (200, "triggered", "evaluate_challenger")
    (dag_id, run_id, conf), = started
    assert conf["model"] == "sm2rain" and conf["version"] == "7"
    assert conf["event"]["entity"] == "model_version" and conf["event"]["delivery_id"] == signed[webhooks.DELIVERY_HEADER]

    status, answer = _post(url, body, signed)  # the same delivery again: a replay
    assert (status, answer["status"]) == (200, "ignored") and len(started) == 1
    assert "replay" in caplog.text
    # the handled ids survive a restart of the receiver
    assert not webhooks.DeliveryLog(db).claim(signed[webhooks.DELIVERY_HEADER])


def test_events_are_routed_to_their_dags():
    tag = {"name": "soil_moisture_merging", "version": "4", "key": "retrain", "value": "requested"}
    target = webhooks.route(json.loads(_event("model_version_tag", "set", tag)))
    assert target.dag_id == "train_models" and target.conf["requested_for"] == "soil_moisture_merging v4"
    # a model of a pipeline with its own models (the global 0.25 deg one): that pipeline's retraining DAG
    domain = webhooks.route(json.loads(_event("model_version_tag", "set", {**tag, "name": "sm2rain_global_025"})))
    assert domain.dag_id == "train_domain_models"
    assert domain.conf["pipeline"] == "global_025" and domain.conf["requested_for"] == "sm2rain_global_025 v4"
    assert webhooks.route(json.loads(_event("model_version_tag", "set", {**tag, "key": "note"}))) is None
    assert webhooks.route(json.loads(_event("model_version_alias", "created",
                                            {"name": "m", "alias": "champion", "version": "2"}))) is None


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"not after {timeout:.0f} s: {what}")


def _runs(client, dag_id: str) -> list[dict]:
    return client.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "-run_after"})["dag_runs"]


@pytest.mark.e2e
def test_registering_a_version_starts_evaluate_challenger_with_no_manual_step(stack, airflow_services):
    """MLflow (SQL backend) -> signed webhook -> the stack's receiver -> Airflow REST -> a run of
    ``evaluate_challenger`` for the new version, with the event in its conf. (What the run does is
    tested with ``airflow dags test`` in tests/ml/test_challenger.py: here the scheduler may be busy
    with the stack's scheduled DAGs.)"""
    import mlflow
    import numpy as np

    from smflow.ml.lifecycle import history
    from smflow.ml.models import GridParameters, SM2RAINModel
    from smflow.ml.registry import configure, log_grid_model

    client = airflow_services
    configure(stack)
    client.wait_for_dag("evaluate_challenger")
    name = f"webhook_probe_{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment("webhook_probe")
    with mlflow.start_run():
        ref = log_grid_model(SM2RAINModel(), GridParameters({"Z": np.full((2, 2), 50.0)}, {}), registered_name=name)

    run = _wait(lambda: next((r for r in _runs(client, "evaluate_challenger") if r["conf"].get("model") == name), None),
                60, f"an evaluate_challenger run for {name}")
    assert run["conf"]["version"] == ref.version
    event = run["conf"]["event"]
    assert (event["entity"], event["action"], event["data"]["name"]) == ("model_version", "created", name)
    assert run["dag_run_id"] == webhooks.run_id_of(event["delivery_id"])
    assert [m.kind for m in history(name)] == ["registration"]  # the new version holds the challenger alias


@pytest.mark.e2e
def test_a_signed_retrain_request_starts_train_models_and_its_replay_does_not(stack, airflow_services):
    """A payload signed like MLflow's, posted to the stack's receiver: a ``train_models`` run with the
    event in its conf (the DAG is paused meanwhile, so the run is created but nothing trains)."""
    from smflow.config import Settings

    client = airflow_services
    settings = Settings.load()
    secret = json.loads((settings.home / "webhooks" / "secrets.json").read_text())["secret"]
    url = _stack_value("SMFLOW_WEBHOOKS_URL") + webhooks.PATH
    client.wait_for_dag("train_models")
    client.request("PATCH", "/dags/train_models", json={"is_paused": True})
    try:
        model = f"retrain_probe_{uuid.uuid4().hex[:6]}"
        body = _event("model_version_tag", "set", {"name": model, "version": "1", "key": "retrain", "value": "requested"})
        signed = _headers(secret, body)
        assert _post(url, body, {"Content-Type": "application/json"})[0] == 401
        assert _post(url, body, _headers("forged", body))[0] == 401
        status, answer = _post(url, body, signed)
        assert (status, answer["status"], answer["dag_id"]) == (200, "triggered", "train_models"), answer
        run = client.request("GET", f"/dags/train_models/dagRuns/{answer['dag_run_id']}")
        assert run["conf"]["requested_for"] == f"{model} v1"
        assert run["conf"]["event"]["data"]["key"] == "retrain"
        assert run["conf"]["event"]["delivery_id"] == signed[webhooks.DELIVERY_HEADER]
        status, answer = _post(url, body, signed)
        assert (status, answer["status"]) == (200, "ignored")
        assert sum(r["conf"].get("requested_for") == f"{model} v1" for r in _runs(client, "train_models")) == 1
        client.request("DELETE", f"/dags/train_models/dagRuns/{run['dag_run_id']}")
    finally:
        client.request("PATCH", "/dags/train_models", json={"is_paused": False})


def _stack_value(key: str) -> str:
    from smflow.config import Settings, _read_env_file

    return _read_env_file(Settings.load().home / "stack.env")[key]


@pytest.mark.e2e
def test_the_stack_registers_one_mlflow_webhook_idempotently(stack, airflow_services):
    """A second start reuses the receiver and updates the MLflow webhook in place."""
    import subprocess
    import sys
    from pathlib import Path

    from mlflow import MlflowClient

    from smflow.ml.registry import configure

    configure(stack)
    script = Path(__file__).resolve().parents[2] / "infra" / "stack.py"
    again = subprocess.run([sys.executable, str(script), "start", "--only", "webhooks"], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "already running" in again.stdout and "updated" in again.stdout, again.stdout
    hooks = [w for w in MlflowClient().list_webhooks(max_results=100) if w.name == "smflow-airflow"]
    assert len(hooks) == 1
    (hook,) = hooks
    assert hook.url == _stack_value("SMFLOW_WEBHOOKS_URL") + webhooks.PATH and hook.status.is_active()
    assert {f"{e.entity.value}.{e.action.value}" for e in hook.events} >= {"model_version.created",
                                                                           "model_version_tag.set"}
