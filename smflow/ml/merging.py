"""Machine-learning merging of soil-moisture parents: RF, LSTM and CNN members combined by BMA.

Zhang, Hou & Huang 2022 (Heihe), Sect. 3.4 and Eq. 17: three learners map the parents' soil
moisture to the ground observations; Bayesian model averaging combines them (weights and member
variances by EM, Raftery et al. 2005 — not the paper's "error divided by the sum of errors", which
would give the worst member the largest weight). The ensemble is one object, :class:`MergingEnsemble`:
its feature specification, its fitted members and the BMA parameters. It predicts on
:func:`smflow.ml.features.feature_cube` output, for station samples (training, evaluation) and for
whole grids (the daily product), with the same code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smflow.ml.features import FeatureSpec, StationSamples, sequence_windows
from smflow.ml.modelzoo import MEMBER_KINDS, BMAParameters, fit_bma, fit_member, predict_bma, predict_member

log = logging.getLogger(__name__)

#: Default hyper-parameters of the members. The Keras members stop early on the validation block
#: of their training fold (never on the test fold).
DEFAULT_HYPER: dict[str, dict[str, Any]] = {
    "rf": {"n_estimators": 300, "min_samples_leaf": 10},
    "lstm": {"units": 32, "epochs": 60, "batch_size": 128, "patience": 8},
    "cnn": {"filters": 16, "epochs": 60, "batch_size": 128, "patience": 8},
}

#: Candidate hyper-parameters of the random forest, chosen on the validation block.
RF_LEAF_CHOICES: tuple[int, ...] = (5, 20, 50)


@dataclass
class MergingEnsemble:
    """Fitted members and their BMA combination.

    Attributes
    ----------
    spec : FeatureSpec
        Features the members were trained on (names, order, standardisation).
    members : dict of str to object
        ``"rf"`` (scikit-learn forest), ``"lstm"``, ``"cnn"`` (Keras models); a subset is allowed.
    bma : BMAParameters or None
        Combination of the members (fitted on the validation block).
    seed : int
    hyper : dict
        Hyper-parameters used per member (after the validation choice).
    """

    spec: FeatureSpec
    members: dict[str, Any]
    bma: BMAParameters | None = None
    seed: int = 0
    hyper: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- prediction ---------------------------------------------------------------------------
    def _standardised(self, kind: str, windows: np.ndarray) -> np.ndarray:
        if kind == "rf":
            table = pd.DataFrame(np.asarray(windows[:, -1, :], dtype=np.float64), columns=self.spec.columns)
            return predict_member("rf", self.members["rf"], table)
        z = predict_member(kind, self.members[kind], windows)
        return z * self.spec.target_scale + self.spec.target_center

    def predict_members(self, windows: np.ndarray, batch: int = 200_000) -> dict[str, np.ndarray]:
        """Each member's soil moisture [m3 m-3] for ``windows`` (n, window, feature)."""
        out = {k: np.empty(windows.shape[0]) for k in self.members}
        for start in range(0, windows.shape[0], batch):
            part = np.ascontiguousarray(windows[start:start + batch], dtype=np.float32)
            for kind in self.members:
                out[kind][start:start + batch] = self._standardised(kind, part)
        return out

    def predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """BMA mean [m3 m-3], BMA predictive variance [(m3 m-3)^2] and the members' predictions.

        Without BMA (a single member), the mean is that member and the variance NaN.
        """
        members = self.predict_members(windows)
        if self.bma is None:
            (only,) = members.values()
            return only, np.full(only.shape, np.nan), members
        stacked = np.column_stack([members[name] for name in self.bma.names])
        mean, variance = predict_bma(self.bma, stacked)
        return mean, variance, members

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, str]:
        """Write the ensemble to ``directory``; returns the artifact paths (MLflow ``artifacts``)."""
        import joblib

        from smflow.ml.modelzoo import save_keras

        directory.mkdir(parents=True, exist_ok=True)
        doc = {"spec": self.spec.to_dict(), "bma": self.bma.to_dict() if self.bma else None,
               "members": sorted(self.members), "seed": self.seed, "hyper": self.hyper}
        (directory / "ensemble.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
        artifacts = {"ensemble": str(directory / "ensemble.json")}
        for kind, model in self.members.items():
            if kind == "rf":
                path = directory / "rf.joblib"
                joblib.dump(model, path, compress=3)
            else:
                path = save_keras(model, directory / f"{kind}.keras")
            artifacts[kind] = str(path)
        return artifacts

    @classmethod
    def load(cls, artifacts: dict[str, str]) -> "MergingEnsemble":
        """Inverse of :meth:`save` (``artifacts``: name -> local path)."""
        import joblib

        doc = json.loads(Path(artifacts["ensemble"]).read_text())
        members: dict[str, Any] = {}
        for kind in doc["members"]:
            if kind == "rf":
                members[kind] = joblib.load(artifacts[kind])
            else:
                from smflow.ml.modelzoo import load_keras

                members[kind] = load_keras(artifacts[kind])
        bma = BMAParameters.from_dict(doc["bma"]) if doc.get("bma") else None
        return cls(FeatureSpec.from_dict(doc["spec"]), members, bma, int(doc.get("seed", 0)), doc.get("hyper", {}))


def _fit_rf_on_validation(fit: StationSamples, val: StationSamples, spec: FeatureSpec, seed: int,
                          base: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The forest whose ``min_samples_leaf`` scores best (RMSE) on the validation block."""
    best = None
    for leaf in RF_LEAF_CHOICES:
        hyper = {**base, "min_samples_leaf": leaf}
        model = fit_member("rf", fit.table, fit.target, feature_names=spec.columns, seed=seed, hyper=hyper)
        if len(val) == 0:
            return model, hyper
        err = float(np.sqrt(np.mean((predict_member("rf", model, val.table) - val.target) ** 2)))
        if best is None or err < best[0]:
            best = (err, model, hyper)
    return best[1], best[2]


def fit_ensemble(fit: StationSamples, validation: StationSamples, spec: FeatureSpec, *, seed: int = 20170101,
                 kinds: tuple[str, ...] = MEMBER_KINDS, hyper: dict[str, dict[str, Any]] | None = None
                 ) -> MergingEnsemble:
    """Fit the members on ``fit``, tune on ``validation``, fit BMA on the members' validation predictions.

    Parameters
    ----------
    fit, validation : StationSamples
        Disjoint samples of one training fold (:mod:`smflow.ml.splits`); the test fold is never
        passed here.
    spec : FeatureSpec
        Fitted feature specification (its target standardisation is replaced by that of ``fit``).
    seed : int
        Seed of every member (logged with the model).
    kinds : tuple of str
        Members to fit (default RF, LSTM, CNN).
    hyper : dict, optional
        Hyper-parameters per member (defaults :data:`DEFAULT_HYPER`).

    Returns
    -------
    MergingEnsemble
        With BMA when more than one member is fitted and the validation block is not empty.
    """
    hyper = {k: {**DEFAULT_HYPER.get(k, {}), **(hyper or {}).get(k, {})} for k in kinds}
    center = float(np.mean(fit.target))
    scale = float(np.std(fit.target)) or 1.0
    spec = FeatureSpec(spec.parents, spec.static, spec.window, spec.center, spec.scale, center, scale)
    members: dict[str, Any] = {}
    used: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        if kind == "rf":
            members[kind], used[kind] = _fit_rf_on_validation(fit, validation, spec, seed, hyper[kind])
            continue
        options = dict(hyper[kind])
        if kind == "cnn":
            options["heads"] = spec.head_indices()
        y = (fit.target - center) / scale
        val = (validation.windows, (validation.target - center) / scale) if len(validation) else None
        members[kind] = fit_member(kind, fit.windows, y, feature_names=spec.columns, seed=seed, hyper=options,
                                   validation=val)
        used[kind] = {k: v for k, v in options.items() if k != "heads"}
    ensemble = MergingEnsemble(spec, members, None, seed, used)
    if len(members) > 1 and len(validation) >= 30:
        preds = ensemble.predict_members(validation.windows)
        names = [k for k in kinds if k in members]
        ensemble.bma = fit_bma(np.column_stack([preds[k] for k in names]), validation.target, member_names=names)
    return ensemble


@dataclass(frozen=True)
class GridMerge:
    """The ensemble applied to every cell of a window of days.

    Attributes
    ----------
    soil_moisture : numpy.ndarray, shape (time, cell)
        BMA mean [m3 m-3]; NaN where no parent has a value (never invented).
    variance : numpy.ndarray, shape (time, cell)
        BMA predictive variance [(m3 m-3)^2].
    members : dict of str to numpy.ndarray, shape (time, cell)
        Each member's soil moisture [m3 m-3].
    no_parent : numpy.ndarray of bool, shape (time, cell)
        True where every parent was missing.
    """

    soil_moisture: np.ndarray
    variance: np.ndarray
    members: dict[str, np.ndarray]
    no_parent: np.ndarray


def merge_grid(ensemble: MergingEnsemble, cube: np.ndarray) -> GridMerge:
    """Apply the ensemble to a feature cube (time, cell, feature); days before a full window are dropped.

    Raises
    ------
    ValueError
        The cube's feature count differs from the ensemble's.
    """
    spec = ensemble.spec
    if cube.shape[-1] != len(spec.columns):
        raise ValueError(f"feature cube has {cube.shape[-1]} features; the ensemble expects {spec.columns}")
    windows = sequence_windows(cube, spec.window)  # (t, cell, w, f) view
    t, n = windows.shape[:2]
    flat = windows.reshape(t * n, spec.window, -1)
    mean, variance, members = ensemble.predict(flat)
    present = cube[spec.window - 1:, :, len(spec.parents):2 * len(spec.parents)].max(axis=-1) > 0
    no_parent = ~present
    def shaped(a: np.ndarray) -> np.ndarray:
        return np.where(no_parent, np.nan, a.reshape(t, n))
    return GridMerge(shaped(mean), shaped(variance), {k: shaped(v) for k, v in members.items()}, no_parent)
