"""Drift watch (``smflow.ml.drift``) against the real MLflow server and S3 of the stack: products
published quickly (the publisher, synthetic days on the Big Island grid with the C3S field as soil
moisture, or noise), scored against C3S over the window; a degraded window tags the champion
``retrain=requested`` once, a healthy one does not."""

from __future__ import annotations

import dataclasses
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from smflow.ml.drift import DriftCheck, DriftRule, load_rules

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish"))

END = date(2018, 6, 10)
DAYS = 6  # published days per window (the rule's min_days in this test)


def test_the_config_has_a_rule_per_watched_model_and_the_webhook_tag():
    from smflow.ml import drift
    from smflow.operators import webhooks

    rules, window = load_rules()
    assert window == 30 and {"tc_merging", "soil_moisture_merging", "sm2rain"} <= set(rules)
    assert rules["sm2rain"].checks[0].reference == "gauges"
    assert rules["soil_moisture_merging"].checks[0].champion_metric.format(method="bma") == "period_bma_ubrmse"
    # the tag the drift watch sets is the one the receiver turns into a train_models run
    assert (drift.RETRAIN_TAG, drift.RETRAIN_VALUE) == (webhooks.RETRAIN_TAG, webhooks.RETRAIN_VALUE)
    assert webhooks.route({"entity": "model_version_tag", "action": "set",
                           "data": {"name": "m", "version": "1", "key": drift.RETRAIN_TAG,
                                    "value": drift.RETRAIN_VALUE}}).dag_id == "train_models"
    c = DriftCheck("c3s", "r", "median_r_merged_vs_c3s", "higher", 0.1)
    assert c.degradation(0.4, 0.58) == pytest.approx(0.18) and DriftCheck("insitu", "ubrmse", "x", "lower", 0.02) \
        .degradation(0.07, 0.05) == pytest.approx(0.02)


def _publish(settings, s3, label: str, degraded: bool) -> None:
    """``DAYS`` days up to END: soil moisture = C3S of the day (healthy) or noise (degraded)."""
    import synthetic

    from smflow.domain import load_domain
    from smflow.ingest import gridded_series
    from smflow.publish.publisher import Publisher

    grid = load_domain("big_island")
    start = END - timedelta(days=DAYS - 1)
    c3s = gridded_series("c3s", start, END, grid).values
    rng = np.random.default_rng(7)
    publisher = Publisher(settings, s3=s3)
    for k in range(DAYS):
        day = start + timedelta(days=k)
        ds = synthetic.daily_product(day, seed=k)
        land = np.isfinite(ds["soil_moisture"].values[0])
        field = rng.uniform(0.05, 0.5, land.shape) if degraded else np.nan_to_num(c3s[k], nan=0.25)
        ds["soil_moisture"].values[0] = np.where(land, field, np.nan)
        publisher.publish_day(ds, day, {**synthetic.provenance(day), "tc_merging_model": label})


@pytest.fixture(scope="module")
def drift_bucket(stack, s3_client):
    """One products bucket for the module (SeaweedFS gives every bucket volumes of its own); each
    test's probe model names its own version in the lineage, so re-publishing the days is enough."""
    from smflow.s3 import list_keys

    bucket = f"sm-drift-test-{uuid.uuid4().hex[:8]}"
    yield bucket
    for key in list_keys(s3_client, bucket, empty_if_no_bucket=True):
        s3_client.delete_object(Bucket=bucket, Key=key)
    try:
        s3_client.delete_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - never created
        pass


@pytest.fixture
def probe(stack):
    """A probe model whose champion logged median R 0.58 vs C3S (as tc_merging's 2018 evaluation)."""
    import mlflow

    from smflow.ml.models import GridParameters, SM2RAINModel
    from smflow.ml.registry import configure, log_grid_model, promote

    settings = configure(stack)
    name = f"drift_probe_{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment("drift_probe")
    with mlflow.start_run():
        mlflow.log_metric("median_r_merged_vs_c3s", 0.58)
        ref = promote(log_grid_model(SM2RAINModel(), GridParameters({"Z": np.full((2, 2), 50.0)}, {}),
                                     registered_name=name), reason="drift probe")
    rule = DriftRule(name, "merged", "tc_merging_model",
                     (DriftCheck("c3s", "r", "median_r_merged_vs_c3s", "higher", 0.15),), min_days=DAYS)
    return settings, ref, rule


@pytest.mark.parametrize("degraded", [False, True], ids=["healthy", "degraded"])
def test_a_degraded_window_requests_retraining_once_and_a_healthy_one_does_not(probe, s3_client, drift_bucket,
                                                                                 degraded):
    from mlflow import MlflowClient

    from smflow.ml.drift import EXPERIMENT, check

    settings, ref, rule = probe
    settings = dataclasses.replace(settings, products_bucket=drift_bucket)
    _publish(settings, s3_client, ref.label(), degraded)
    client = MlflowClient()
    result = check(ref.name, end=END, window_days=10, rule=rule, settings=settings, s3=s3_client)
    tags = client.get_model_version(ref.name, ref.version).tags
    run = client.get_run(result.check_run)
    assert run.info.experiment_id == client.get_experiment_by_name(EXPERIMENT).experiment_id
    assert run.data.metrics["days_scored"] == DAYS and run.data.params["reference"] == "c3s"
    assert run.data.metrics["champion_r"] == pytest.approx(0.58)
    if not degraded:
        assert result.decision == "healthy" and run.data.metrics["window_r"] > 0.9, result.reason
        assert "retrain" not in tags
        return
    assert result.decision == "retrain requested", result.reason
    assert run.data.metrics["window_r"] < 0.58 - 0.15 and run.data.metrics["degradation"] > 0.15
    assert tags["retrain"] == "requested" and tags["retrain.window"] == f"{END - timedelta(days=9)}..{END}"
    assert "drifted" in tags["retrain.reason"] and tags["retrain.check_run"] == result.check_run
    again = check(ref.name, end=END, window_days=10, rule=rule, settings=settings, s3=s3_client)
    assert again.decision == "drifted, request pending" and "not requested again" in again.reason
    assert client.get_model_version(ref.name, ref.version).tags["retrain.check_run"] == result.check_run
    assert client.get_run(again.check_run).data.tags["decision"] == "drifted, request pending"


def test_a_finished_retraining_closes_its_request_and_only_a_pending_one(stack):
    """train_models' last task: the version whose ``retrain = requested`` tag started the run gets
    ``retrain = done`` (which starts nothing), the run and the outcome; nothing else is touched."""
    import mlflow
    from mlflow import MlflowClient

    from smflow.ml.drift import RETRAIN_DONE, close_retrain_request
    from smflow.ml.models import GridParameters, SM2RAINModel
    from smflow.ml.registry import configure, log_grid_model
    from smflow.operators.webhooks import route

    configure(stack)
    client = MlflowClient()
    name = f"retrain_probe_{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment("drift_probe")
    with mlflow.start_run():
        ref = log_grid_model(SM2RAINModel(), GridParameters({"Z": np.full((2, 2), 50.0)}, {}), registered_name=name)
    assert close_retrain_request(None, run_id="manual__x") is None  # a run nobody requested from MLflow
    assert close_retrain_request(f"{name} v{ref.version}", run_id="manual__x") is None  # no pending request
    client.set_model_version_tag(name, ref.version, "retrain", "requested")
    closed = close_retrain_request(f"{name} v{ref.version}", run_id="mlflow_webhook__abc",
                                   outcome={"tc_merging": {"model": "tc_merging", "version": "7", "promoted": False}})
    assert closed == f"{name} v{ref.version}"
    tags = client.get_model_version(name, ref.version).tags
    assert tags["retrain"] == RETRAIN_DONE and tags["retrain.train_run"] == "mlflow_webhook__abc"
    assert tags["retrain.outcome"] == "tc_merging v7 registered (challenger)" and tags["retrain.done_at"]
    # the receiver starts nothing on the new value
    assert route({"entity": "model_version_tag", "action": "set",
                  "data": {"name": name, "version": ref.version, "key": "retrain", "value": RETRAIN_DONE}}) is None
    with pytest.raises(ValueError, match="not '<model> v<N>'"):
        close_retrain_request("tc_merging 7", run_id="x")
