"""Register the downscaling models; the first champion only if it beats bilinear interpolation.

``models:/downscaling_nn`` (Lv, Zhang & Zhu 2021) and ``models:/downscaling_lstm_kriging`` (Ming et
al. 2022, Eqs. 1-4) are fitted on the coarse (0.1 deg) fields of every CGLS 1 km SSM day of the
Ebro-Pyrenees box and validated by the upscale-recover protocol of :mod:`smflow.downscaling.validate`
with the ``loo`` fit (the model of the other days applied to the held-out day, which is how a
registered model is used). The gate: a version becomes the first ``@champion`` only if its R is
higher *and* its ubRMSE lower than those of bilinear interpolation on the same pixels; otherwise it
is registered with the failed gate in its tags and description, and the alias is not moved. Once a
champion exists, a new version stays ``challenger`` whatever its gate
(:func:`smflow.ml.gates.promote_after_training`): ``evaluate_challenger`` compares it with the
champion by upscale-recover on the CGLS days neither was trained on
(:mod:`smflow.downscaling.challenger`).

Each version carries: a pyfunc model (input: one column per covariate, in the registered order,
values in the covariates' units; output: ``soil_moisture`` in the units of the coarse field)
with its MLflow signature, the tags ``method``, ``seed``, ``covariates``, ``missing_covariates``,
``training_data_fingerprint``, ``evaluation_gate`` and the validation metrics, and a model card
as the version description. Without ``../shared/data/real/cgls_1km`` training is skipped with a
message (nothing fails).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Registered model name -> the validation method whose scores gate it.
MODELS = {"downscaling_nn": "nn", "downscaling_lstm_kriging": "lstm_kriging"}
SEED = 13
EXPERIMENT = "downscaling"


def gate(row: dict, baseline: dict) -> tuple[bool, str]:
    """``(passes, text)``: R above and ubRMSE below bilinear's, on the same pixels."""
    ok = bool(row["r"] > baseline["r"] and row["ubrmse"] < baseline["ubrmse"])
    text = (f"{row['method']} R {row['r']:.3f} vs bilinear {baseline['r']:.3f}, ubRMSE "
            f"{row['ubrmse']:.3f} vs {baseline['ubrmse']:.3f}: "
            + ("beats bilinear -> champion" if ok else "does not beat bilinear -> not promoted"))
    return ok, text


def _pyfunc_class():
    from mlflow.pyfunc import PythonModel

    class DownscalingModel(PythonModel):
        """pyfunc of a coarse-scale downscaling regression: covariate columns -> soil_moisture."""

        def load_context(self, context):
            meta = json.loads(Path(context.artifacts["meta"]).read_text())
            self.method, self.names = meta["method"], meta["covariates"]
            if self.method == "nn":
                import joblib

                self.model = joblib.load(context.artifacts["model"])
            else:
                from smflow.ml.modelzoo import load_keras

                self.model = load_keras(context.artifacts["model"])

        def predict(self, context, model_input, params=None):
            import pandas as pd

            from smflow.downscaling.methods import FittedRegressor

            missing = [n for n in self.names if n not in model_input.columns]
            if missing:
                raise ValueError(f"input lacks covariates {missing}; the model needs {self.names}")
            X = np.asarray(model_input[self.names], dtype=np.float64)
            reg = FittedRegressor(self.method, self.model, self.names)
            return pd.DataFrame({"soil_moisture": reg.predict(X)})

    return DownscalingModel


def _log_version(name: str, fitted, card: str, tags: dict[str, str]):
    """Log ``fitted`` (a FittedRegressor) as a pyfunc and register a version of ``name``."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from smflow.ml.cards import write_card
    from smflow.ml.registry import ModelRef, mark_challenger

    run = mlflow.active_run()
    with tempfile.TemporaryDirectory() as tmp:
        meta = Path(tmp) / "meta.json"
        meta.write_text(json.dumps({"method": fitted.method, "covariates": fitted.feature_names}))
        if fitted.method == "nn":
            import joblib

            path = Path(tmp) / "model.joblib"
            joblib.dump(fitted.model, path, compress=3)
        else:
            from smflow.ml.modelzoo import save_keras

            path = save_keras(fitted.model, Path(tmp) / "model.keras")
        artifacts = {"model": str(path), "meta": str(meta)}
        example = pd.DataFrame({n: [1.0, 2.0] for n in fitted.feature_names})
        loaded = _pyfunc_class()()  # loaded here only to infer the signature
        loaded.load_context(type("Ctx", (), {"artifacts": artifacts})())
        signature = infer_signature(example, loaded.predict(None, example))
        # The logged instance is a fresh one: it loads its regression from the artifacts when the
        # version is loaded (a loaded Keras model pickled inside would not unpickle in a fresh process).
        info = mlflow.pyfunc.log_model(
            name=f"model_{fitted.method}", python_model=_pyfunc_class()(), artifacts=artifacts,
            signature=signature, input_example=example, registered_model_name=name,
            pip_requirements=["numpy", "pandas", "scikit-learn", "tensorflow-cpu", "mlflow"])
    ref = ModelRef(name, str(info.registered_model_version), run.info.run_id)
    client = MlflowClient()
    write_card(name, ref.version, card)
    for k, v in tags.items():
        client.set_model_version_tag(name, ref.version, k, v)
    return mark_challenger(ref)


def _card(name: str, method: str, names: list[str], row: dict, base: dict, gate_text: str,
          days: list[str], seed: int, *, domain: str = "ebro_pyrenees", data_fp: str = "unknown"):
    """The version's :class:`smflow.ml.cards.ModelCard` (the old free-text card is its note)."""
    from smflow.ml.cards import ModelCard

    metrics = {**{k: row[k] for k in ("r", "ubrmse", "bias", "rho_spatial") if k in row},
               **{f"bilinear {k}": base[k] for k in ("r", "ubrmse") if k in base}}
    return ModelCard(name, method, f"coarse (0.1 deg) fields of the CGLS SSM 1 km days {', '.join(days)}",
                     f"{domain} (fitted at 0.1 deg, applied at 0.01 deg)", names, data_fp, metrics, gate_text,
                     evaluated_on="upscale-recover, leave-one-day-out; ubRMSE and bias in percent of saturation",
                     notes=_card_text(name, method, names, row, base, gate_text,
                                                                           days, seed))


def _card_text(name: str, method: str, names: list[str], row: dict, base: dict, gate_text: str,
               days: list[str], seed: int) -> str:
    paper = ("Lv, Zhang & Zhu 2021 (NN fitted at 0.1 deg on the covariates, applied at 0.01 deg; "
             "4 random restarts, best on validation)" if method == "nn" else
             "Ming et al. 2022 Eqs. 1-4 (LSTM at 0.1 deg, simple kriging of the coarse residuals, "
             "exact block-mean correction)")
    return (f"{name}: {paper}. Covariates: {', '.join(names)}. Fitted on the coarse (0.1 deg) "
            f"CGLS S1 SSM 1 km of {', '.join(days)} (Ebro-Pyrenees, percent of saturation), "
            f"seed {seed}. Upscale-recover validation (leave-one-day-out): R {row['r']:.3f}, "
            f"ubRMSE {row['ubrmse']:.2f}, rho_spatial {row['rho_spatial']:.3f}; bilinear R "
            f"{base['r']:.3f}, ubRMSE {base['ubrmse']:.2f}. Gate: {gate_text}. Limits: two days "
            "with data; LST, NDVI, albedo, soil texture and brightness temperatures are not "
            "available over the domain (docs/downscaling.md).")


def train_downscaling(*, settings=None, seed: int = SEED, lstm_epochs: int = 200
                      ) -> dict[str, Any]:
    """Fit, validate, register both downscaling models; a first champion only if it beats bilinear.

    Returns
    -------
    dict
        ``{"skipped": reason}`` without the CGLS files, else per model name the
        :class:`smflow.ml.train.TrainingResult` dict, plus ``"table"`` (validation text).
    """
    import mlflow

    from smflow.downscaling.methods import fit_lstm_downscaler, fit_nn
    from smflow.downscaling.validate import coarse_samples, format_table, load_experiment, run
    from smflow.ml.features import fingerprint
    from smflow.ml.gates import promote_after_training
    from smflow.ml.registry import champion_ref, configure
    from smflow.ml.train import TrainingResult

    settings = configure(settings)
    shared = settings.shared_data_dir
    if shared is None or not (Path(shared) / "cgls_1km").is_dir():
        reason = (f"downscaling training skipped: no CGLS 1 km SSM under {shared} "
                  "(../shared/data/real/cgls_1km is needed for the coarse targets and the "
                  "upscale-recover gate)")
        log.warning(reason)
        return {"skipped": reason}
    exp = load_experiment(Path(shared))
    rows = run(exp, modes=("loo",), seed=seed, lstm_epochs=lstm_epochs)
    by = {r["method"]: r for r in rows}
    table = format_table(rows, exp)
    log.info("downscaling upscale-recover:\n%s", table)
    X, y = coarse_samples(exp.days)
    data_fp = fingerprint(X, y)
    days = [str(d.day) for d in exp.days]
    fitted = {"nn": fit_nn(X, y, feature_names=exp.names, seed=seed),
              "lstm_kriging": fit_lstm_downscaler(X, y, feature_names=exp.names, seed=seed,
                                                  epochs=lstm_epochs)}
    mlflow.set_experiment(EXPERIMENT)
    out: dict[str, Any] = {"table": table}
    with mlflow.start_run(run_name=f"downscaling {days[0]}..{days[-1]}"):
        mlflow.log_params({"domain": exp.domain.name, "covariates": ",".join(exp.names),
                           "days": ",".join(days), "seed": seed, "lstm_epochs": lstm_epochs,
                           "training_data_fingerprint": data_fp,
                           "nn_restarts": len(fitted["nn"].info["restart_seeds"])})
        mlflow.log_metrics({f"{r['method']}_{k}": float(r[k]) for r in rows
                            for k in ("r", "ubrmse", "bias", "rho_spatial") if np.isfinite(r[k])})
        mlflow.log_text(table + "\n", "upscale_recover.txt")
        mlflow.log_dict({"rows": rows, "nn": fitted["nn"].info,
                         "lstm": fitted["lstm_kriging"].info}, "validation.json")
        for name, method in MODELS.items():
            row = by[method]
            passes, gate_text = gate(row, by["bilinear"])
            tags = {"method": method, "seed": str(seed), "covariates": ",".join(exp.names),
                    "missing_covariates": " | ".join(exp.missing_covariates)[:4900],
                    "training_data_fingerprint": data_fp, "evaluation_gate": gate_text,
                    "domain": exp.domain.name, "train_days": ",".join(days),
                    **{f"metric_{k}": f"{row[k]:.4f}" for k in ("r", "ubrmse", "rho_spatial")},
                    **{f"bilinear_{k}": f"{by['bilinear'][k]:.4f}" for k in ("r", "ubrmse")}}
            ref = _log_version(name, fitted[method], _card(
                name, method, exp.names, row, by["bilinear"], gate_text, days, seed, domain=exp.domain.name,
                data_fp=data_fp), tags)
            # a first champion only; later versions stay challenger for evaluate_challenger (issue 14)
            ref, promoted, gate_text = promote_after_training(ref, passes, gate_text)
            if not promoted:
                try:
                    current = champion_ref(name).version
                except LookupError:
                    current = None
                if not passes:
                    gate_text += f"; champion stays {'v' + current if current else 'unset'}"
                log.warning("%s v%s: %s", name, ref.version, gate_text)
            out[name] = TrainingResult(name, ref.version, ref.run_id, promoted, gate_text, {
                k: float(row[k]) for k in ("r", "ubrmse", "bias", "rho_spatial")}, passes).to_dict()
    return out
