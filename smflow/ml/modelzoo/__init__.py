"""Model zoo of the machine-learning soil-moisture merging (Zhang, Hou & Huang 2022, Sect. 3.4, Eq. 17).

One module per model family, each with pure ``fit_*`` / ``predict_*`` functions (no I/O, no
MLflow, no Airflow):

- :mod:`.rf` random forest on one feature row per cell-day (scikit-learn),
- :mod:`.lstm` LSTM on a trailing window of the same features (Keras 3),
- :mod:`.cnn` the paper's multi-head 1-D CNN, one convolutional head per parent series (Keras 3),
- :mod:`.bma` Bayesian model averaging of the members (Raftery et al. 2005).

:func:`fit_member` / :func:`predict_member` dispatch on the member kind. TensorFlow / Keras is
imported only when an LSTM or CNN is fitted, predicted, saved or loaded (importing it takes ~9 s),
so importing this package stays cheap for the DAG parser and the RF / BMA paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from smflow.ml.modelzoo.bma import BMAParameters, fit_bma, predict_bma
from smflow.ml.modelzoo.rf import fit_rf, predict_rf, rf_tree_variance

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import pandas as pd

__all__ = ["MemberKind", "MEMBER_KINDS", "fit_member", "predict_member", "save_keras", "load_keras",
           "keras_feature_names", "BMAParameters", "fit_bma", "predict_bma", "fit_rf", "predict_rf",
           "rf_tree_variance"]

MemberKind = Literal["rf", "lstm", "cnn"]
#: Member kinds, in the column order BMA combines them (RF-SM, LSTM-SM, CNN-SM as in Eq. 17).
MEMBER_KINDS: tuple[MemberKind, ...] = ("rf", "lstm", "cnn")


def fit_member(kind: MemberKind, X: pd.DataFrame | np.ndarray, y: np.ndarray, *, feature_names: list[str],
               seed: int, hyper: dict[str, Any] | None = None,
               validation: tuple[Any, np.ndarray] | None = None) -> Any:
    """Fit one merging member.

    Parameters
    ----------
    kind : {"rf", "lstm", "cnn"}
        Member family.
    X : pandas.DataFrame, shape (n, p) for "rf"; numpy.ndarray, shape (n, window, p) for "lstm" / "cnn"
        Features (see :func:`.rf.fit_rf`, :func:`.lstm.fit_lstm`, :func:`.cnn.fit_cnn`).
    y : numpy.ndarray, shape (n,)
        Target soil moisture [m3 m-3].
    feature_names : list of str, length p
        Feature names. For "rf" they must equal ``X.columns``; for "lstm" / "cnn" they are stored
        in the model and describe the last axis of ``X``.
    seed : int
        Random seed (forest sampling; Keras weights, dropout and shuffling).
    hyper : dict, optional
        Keyword arguments of the family's fit function (e.g. ``n_estimators``, ``units``,
        ``epochs``). For "cnn" it must hold ``heads`` (parent name -> feature indices).
    validation : (X_val, y_val), optional
        Early-stopping data for "lstm" / "cnn"; ignored by "rf" (the forest has no epochs).

    Returns
    -------
    sklearn.ensemble.RandomForestRegressor or keras.Model

    Raises
    ------
    ValueError
        If ``kind`` is unknown, "rf" columns differ from ``feature_names``, or "cnn" has no ``heads``.
    """
    options = dict(hyper or {})
    if kind == "rf":
        from smflow.ml.modelzoo.rf import check_columns

        check_columns(list(feature_names), X, model="fit_member('rf')")
        return fit_rf(X, y, seed=seed, **options)
    if kind == "lstm":
        from smflow.ml.modelzoo.lstm import fit_lstm

        return fit_lstm(X, y, feature_names=list(feature_names), seed=seed, validation=validation, **options)
    if kind == "cnn":
        from smflow.ml.modelzoo.cnn import fit_cnn

        if "heads" not in options:
            raise ValueError("fit_member('cnn'): hyper must hold 'heads' (parent name -> feature indices of its "
                             "channels), e.g. {'heads': {'smap': [0, 5], 'era5_land': [1, 6]}}")
        return fit_cnn(X, y, feature_names=list(feature_names), seed=seed, validation=validation, **options)
    raise ValueError(f"fit_member: unknown member kind {kind!r}; expected one of {list(MEMBER_KINDS)}")


def predict_member(kind: MemberKind, model: Any, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Predict soil moisture [m3 m-3], shape (n,), float64, with a member fitted by :func:`fit_member`.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or the features do not match the model (see the family's predict).
    """
    if kind == "rf":
        return predict_rf(model, X)
    if kind == "lstm":
        from smflow.ml.modelzoo.lstm import predict_lstm

        return predict_lstm(model, X)
    if kind == "cnn":
        from smflow.ml.modelzoo.cnn import predict_cnn

        return predict_cnn(model, X)
    raise ValueError(f"predict_member: unknown member kind {kind!r}; expected one of {list(MEMBER_KINDS)}")


def save_keras(model: keras.Model, path: str | Path) -> Path:
    """Save an LSTM or CNN member as a ``.keras`` file (architecture, weights, feature schema).

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.keras`` (Keras 3 refuses other suffixes for this format).
    """
    target = Path(path)
    if target.suffix != ".keras":
        raise ValueError(f"save_keras: {target} must end in '.keras' (Keras 3 native format)")
    from smflow.ml.modelzoo import keras_base  # noqa: F401  - registers the custom layers

    target.parent.mkdir(parents=True, exist_ok=True)
    model.save(target)
    return target


def load_keras(path: str | Path) -> keras.Model:
    """Load a member saved by :func:`save_keras` (safe mode: no Lambda layers, no arbitrary code).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"load_keras: no model file at {source}; save it with save_keras first")
    import keras

    from smflow.ml.modelzoo import keras_base  # noqa: F401  - registers the custom layers before deserialising

    return keras.saving.load_model(source)


def keras_feature_names(model: keras.Model) -> list[str]:
    """Feature names (last axis of X) an LSTM / CNN member was fitted on, read from the model itself."""
    from smflow.ml.modelzoo.keras_base import model_schema

    return list(model_schema(model).feature_names)
