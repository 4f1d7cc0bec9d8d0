"""Downscaling models in the registry: registered with signature/seed/covariates/fingerprint/card,
promoted only when they beat bilinear (real MLflow of the local stack, real CGLS 1 km files)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from smflow.downscaling.registry import MODELS, gate

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


def test_gate_needs_both_better_r_and_lower_ubrmse():
    base = {"method": "bilinear", "r": 0.78, "ubrmse": 11.8}
    assert gate({"method": "nn", "r": 0.80, "ubrmse": 11.0}, base)[0]
    assert not gate({"method": "nn", "r": 0.80, "ubrmse": 12.0}, base)[0]
    ok, text = gate({"method": "nn", "r": 0.70, "ubrmse": 11.0}, base)
    assert not ok and "does not beat bilinear" in text


def test_training_is_skipped_without_shared_data(stack, tmp_path):
    from smflow.downscaling.registry import train_downscaling

    settings = dataclasses.replace(stack, shared_data_dir=tmp_path)
    out = train_downscaling(settings=settings)
    assert set(out) == {"skipped"} and "cgls_1km" in out["skipped"]


@pytest.mark.skipif(not (SHARED / "cgls_1km").is_dir(),
                    reason=f"real CGLS 1 km files absent ({SHARED / 'cgls_1km'})")
def test_both_models_registered_with_lineage_and_gated(stack):
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from smflow.downscaling.registry import train_downscaling

    out = train_downscaling(settings=stack, lstm_epochs=40)
    client = MlflowClient()
    for name, method in MODELS.items():
        result = out[name]
        mv = client.get_model_version(name, result["version"])
        for tag in ("seed", "covariates", "training_data_fingerprint", "evaluation_gate",
                    "missing_covariates"):
            assert mv.tags.get(tag), (name, tag)
        assert mv.tags["method"] == method and "swi_005" in mv.tags["covariates"]
        assert "bilinear" in mv.description and "Covariates:" in mv.description
        from smflow.ml.cards import missing_fields

        assert missing_fields(mv.description) == [] and mv.tags["training_data_fingerprint"] in mv.description
        aliases = client.get_registered_model(name).aliases
        # Promoted exactly when the gate passed.
        assert (aliases.get("champion") == result["version"]) == result["promoted"]
        model = mlflow.pyfunc.load_model(f"models:/{name}/{result['version']}")
        names = mv.tags["covariates"].split(",")
        assert [c.name for c in model.metadata.get_input_schema().inputs] == names
        pred = model.predict(pd.DataFrame({n: [40.0, 60.0] for n in names}))
        assert list(pred.columns) == ["soil_moisture"] and pred["soil_moisture"].notna().all()
