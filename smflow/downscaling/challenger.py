"""The challenger evaluator of the downscaling models (``downscaling_nn``, ``downscaling_lstm_kriging``).

``evaluate_challenger`` (:mod:`smflow.ml.challenger`) scores a challenger and the champion with the
same code on the same held-out data. ``smflow.ml`` may not import ``smflow.downscaling`` (the
layers of import-linter), so this evaluator is named in ``config/model_gates.json`` by its dotted
path, ``smflow.downscaling.challenger:score_upscale_recover``, and imported at first use by
:func:`smflow.ml.challenger.resolve_evaluator`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smflow.downscaling.validate import DOMAIN, SSM_FILE

if TYPE_CHECKING:
    from smflow.ml.challenger import VersionScores

#: What this evaluator holds out (not a period: the CGLS days neither version was trained on).
HELD_OUT = "cgls_days"


def cgls_days(shared_dir: Path) -> list[date]:
    """The days of the CGLS SSM 1 km files under ``shared_dir`` (``../shared/data/real``), sorted."""
    from datetime import datetime

    folder = (Path(shared_dir) / SSM_FILE).parent
    prefix, suffix = "c_gls_SSM1km_", "0000_CEURO_S1CSAR_V1.1.1.nc"
    return sorted(datetime.strptime(p.name[len(prefix):-len(suffix)], "%Y%m%d").date()
                  for p in folder.glob(f"{prefix}*{suffix}"))


def _regressor(ref, method: str) -> tuple[Any, str, list[str]]:
    """``(FittedRegressor, downscaling method, covariates)`` of the registered version ``ref``
    (``method``: its ``method`` tag, ``nn`` or ``lstm_kriging``)."""
    import mlflow

    from smflow.downscaling.methods import FittedRegressor

    if method != "nn":
        # Versions registered before 2026-12-06 pickled their Keras model inside the pyfunc:
        # unpickling those needs the custom layers registered first (later versions load the
        # model from their artifacts, smflow.downscaling.registry._log_version).
        from smflow.ml.modelzoo import keras_base  # noqa: F401
    wrapped = mlflow.pyfunc.load_model(f"models:/{ref.name}/{ref.version}").unwrap_python_model()
    method = "nn" if wrapped.method == "nn" else "lstm_kriging"
    return FittedRegressor(wrapped.method, wrapped.model, list(wrapped.names)), method, list(wrapped.names)


def score_upscale_recover(refs: dict[str, Any], gate) -> dict[str, VersionScores]:
    """Each downscaling version by the upscale-recover protocol on the CGLS 1 km days neither was trained on.

    The protocol of :mod:`smflow.downscaling.validate` (the training gate's): a day's CGLS
    Sentinel-1 SSM 1 km (percent of saturation) on the 0.01 deg grid is block-averaged to the 0.1
    deg domain grid and downscaled back by each version (``nn``: the version's regression of the
    covariates, Lv, Zhang & Zhu 2021; ``lstm_kriging``: the version's regression plus simple
    kriging of the coarse residuals, Ming et al. 2022, Eqs. 1-4), and compared with the original
    fine field. The days are the CGLS days of ``../shared`` minus every day in either version's
    ``train_days`` tag (the coarse fields each was fitted on), minus the days without an overpass.

    Parameters
    ----------
    refs : dict of str to ModelRef
        ``"champion"`` and ``"challenger"``.
    gate : smflow.ml.gates.Gate
        The model's gate (metric ``ubrmse_upscale_recover``, lower is better).

    Returns
    -------
    dict of str to smflow.ml.challenger.VersionScores
        Per role: ``ubrmse_upscale_recover`` [percent of saturation] (pooled over the fine cells of
        the held-out days; the gate's), ``r_upscale_recover`` [1], ``bias_upscale_recover``
        [percent], ``rho_spatial`` [1], ``bilinear_ubrmse`` (the same days by bilinear
        interpolation: the floor any version should beat), ``held_out_days``; ``per_unit``:
        ubRMSE per held-out day.

    Raises
    ------
    smflow.ml.challenger.EvaluationRefused
        No CGLS 1 km files here; a version on another domain, or needing a covariate not
        available; no CGLS day with an overpass that neither version was trained on.
    """
    from smflow.downscaling.grid import factor_of
    from smflow.downscaling.validate import downscale_day, load_experiment, score
    from smflow.ml.challenger import EvaluationRefused, VersionScores
    from smflow.ml.registry import configure

    shared = configure().shared_data_dir
    if shared is None or not (Path(shared) / SSM_FILE).parent.is_dir():
        raise EvaluationRefused(f"no CGLS 1 km SSM on this machine (../shared/data/real/{Path(SSM_FILE).parent}): "
                                "downscaling versions cannot be scored by upscale-recover; evaluate where the files are")
    from mlflow import MlflowClient

    client = MlflowClient()
    trained: dict[str, set[str]] = {}
    methods: dict[str, str] = {}
    for role, ref in refs.items():
        tags = client.get_model_version(ref.name, ref.version).tags
        domain = tags.get("domain", DOMAIN)
        if domain != DOMAIN:
            raise EvaluationRefused(f"{ref.name} v{ref.version} is on domain {domain!r}, the CGLS days cover {DOMAIN!r}")
        if "train_days" not in tags:
            raise EvaluationRefused(f"{ref.name} v{ref.version} has no 'train_days' tag: the days it was fitted on are "
                                    "unknown, so no day is known to be held out from it")
        trained[role] = {d for d in tags["train_days"].split(",") if d}
        methods[role] = tags.get("method", "nn")
    available = cgls_days(Path(shared))
    held = [d for d in available if not any(str(d) in days for days in trained.values())]
    if not held:
        seen = "; ".join(f"{role} v{refs[role].version} trained on {','.join(sorted(days))}"
                         for role, days in trained.items())
        raise EvaluationRefused(f"no CGLS 1 km day is held out from both versions (days here: "
                                f"{','.join(map(str, available))}; {seen})")
    regs = {role: _regressor(ref, methods[role]) for role, ref in refs.items()}
    exp = load_experiment(Path(shared), days=tuple(held))
    if not exp.days:
        raise EvaluationRefused(f"the held-out CGLS days {','.join(map(str, held))} have no valid SSM pixel "
                                f"(no Sentinel-1 overpass): nothing to score")
    factor = factor_of(exp.domain, exp.fine)
    baseline = score({d.day: downscale_day("bilinear", None, d, exp.domain, exp.fine)[0] for d in exp.days},
                     exp.days, factor)
    out = {}
    for role, (reg, method, names) in regs.items():
        missing = [n for n in names if n not in exp.names]
        if missing:
            raise EvaluationRefused(f"{role} v{refs[role].version} needs covariates {missing} not available here "
                                    f"(available: {exp.names})")
        index = [exp.names.index(n) for n in names]
        outputs, per_day = {}, []
        for d in exp.days:
            # the version's covariates, in its registered order
            day = type(d)(d.day, d.reference, d.coarse, d.features_fine[index], d.features_coarse[index])
            outputs[d.day] = downscale_day(method, reg, day, exp.domain, exp.fine)[0]
            per_day.append(score({d.day: outputs[d.day]}, [d], factor)["ubrmse"])
        s = score(outputs, exp.days, factor)
        out[role] = VersionScores({"ubrmse_upscale_recover": s["ubrmse"], "r_upscale_recover": s["r"],
                                   "bias_upscale_recover": s["bias"], "rho_spatial": s["rho_spatial"],
                                   "bilinear_ubrmse": baseline["ubrmse"], "held_out_days": float(len(exp.days)),
                                   "pixels": float(s["n_pixels"])},
                                  np.asarray(per_day, dtype=float), "day",
                                  "the held-out CGLS 1 km days " + ",".join(str(d.day) for d in exp.days))
    return out


score_upscale_recover.held_out = HELD_OUT  # type: ignore[attr-defined]
