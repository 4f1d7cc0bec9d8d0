"""The merging registry on the real MLflow server: the shipped ensemble (machines without in-situ
targets), its versions, tags, signature, champion choice, and loading it back for the daily path."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pytest

TRAIN = (date(2017, 1, 1), date(2017, 12, 31))
EVALUATE = (date(2018, 1, 1), date(2018, 12, 31))


@pytest.fixture(scope="module")
def no_insitu(stack):
    """The stack's settings as on a machine without ../shared, with a TC champion to compare with."""
    from smflow.ml.registry import champion_ref, configure
    from smflow.ml.train import train_tc_merging

    settings = configure(stack)
    try:
        champion_ref("tc_merging")
    except LookupError:
        train_tc_merging(TRAIN, EVALUATE, settings=settings)
    return dataclasses.replace(settings, shared_data_dir=None)


def test_shipped_ensemble_is_registered_with_its_evaluation_and_loads(no_insitu) -> None:
    import json

    from mlflow import MlflowClient

    from smflow.ml.registry import MERGING_MODEL, ModelRef, champion_ref, load_merging
    from smflow.ml.train_merging import SHIPPED_MERGING, register_shipped_merging, train_merging

    doc = json.loads((SHIPPED_MERGING / "provenance.json").read_text())
    assert "no observation value is stored" in doc["provenance"]["source"]
    result = train_merging(TRAIN, EVALUATE, settings=no_insitu)  # no stations: the shipped path
    assert "no in-situ stations on this machine" in result.gate and doc["gate"] in result.gate
    client = MlflowClient()
    versions = sorted(client.search_model_versions(f"name='{MERGING_MODEL}'"), key=lambda v: int(v.version))
    bma, tc = versions[-1], versions[-2]
    assert bma.tags["method"] == "bma" and tc.tags["method"] == "tc"
    assert bma.tags["member_versions"] == "cnn=shipped,lstm=shipped,rf=shipped"
    assert "shipped BMA ensemble" in bma.description
    # model cards (smflow.ml.cards): every field, readable in the MLflow UI
    from smflow.ml.cards import missing_fields

    assert missing_fields(bma.description) == [] and missing_fields(tc.description) == []
    assert "Zhang, Hou & Huang 2022" in bma.description and "Eq. 17" in bma.description
    assert doc["provenance"]["training_data_fingerprint"] in bma.description
    assert "Ming et al. 2022" in tc.description and "Eqs. 11-17" in tc.description
    # the shipped table's gate decides: its winner (or TC when none passed) is champion, never an unscored model
    champion = client.get_model_version(MERGING_MODEL, champion_ref(MERGING_MODEL).version)
    assert champion.tags["method"] == (doc["winner"] or "tc")

    loaded = load_merging(ModelRef(MERGING_MODEL, bma.version, bma.run_id))
    assert loaded.method == "bma" and set(loaded.ensemble.members) == {"rf", "lstm", "cnn"}
    spec = loaded.ensemble.spec
    windows = np.zeros((4, spec.window, len(spec.columns)), dtype=np.float32)
    windows[..., [spec.columns.index(f"{p}_present") for p in spec.parents]] = 1
    mean, variance, members = loaded.ensemble.predict(windows)
    assert np.all((mean > 0) & (mean < 0.7)) and np.all(variance > 0)
    # the registered pyfunc has an explicit tensor signature and serves the same numbers
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{MERGING_MODEL}/{bma.version}")
    assert model.metadata.get_input_schema() is not None and model.metadata.saved_input_example_info
    served = model.predict(windows)
    np.testing.assert_allclose(served["soil_moisture"].to_numpy(), mean, rtol=1e-6)
    with pytest.raises(Exception, match="expected|shape"):
        model.predict(windows[..., :-1])


def test_tc_merging_and_sm2rain_versions_carry_model_cards(no_insitu) -> None:
    """The two grid-parameter register paths write the shared model card: method, paper and equation,
    training period, domain, features, data fingerprint, metrics and the training gate's outcome."""
    from mlflow import MlflowClient

    from smflow.ml.cards import missing_fields
    from smflow.ml.train import train_sm2rain, train_tc_merging

    client = MlflowClient()
    tc = train_tc_merging(TRAIN, EVALUATE, settings=no_insitu)
    card = client.get_model_version("tc_merging", tc.version).description
    assert missing_fields(card) == [], card
    assert "Ming et al. 2022" in card and "2017-01-01..2017-12-31" in card and "smap, era5_land, gldas" in card
    gate = client.get_run(tc.run_id).data.tags["evaluation_gate"]  # the training gate, as the card shows it
    assert f"median_r_merged_vs_c3s: {tc.metrics['median_r_merged_vs_c3s']:.4g}" in card and gate in card
    assert tc.gate.startswith(gate)  # + who decides: a first champion, or evaluate_challenger (issue 14)
    rain = train_sm2rain(TRAIN, EVALUATE, settings=no_insitu)  # no gauges: the shipped parameter set
    card = client.get_model_version("sm2rain", rain.version).description
    assert missing_fields(card) == [], card
    assert "Eqs. 1-2" in card and "not fitted here: shipped set" in card and "median_r_validation" in card
    assert "passed" in card or "FAILED" in card
