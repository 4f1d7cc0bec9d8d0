"""Random-forest merging member (Breiman 2001; Zhang, Hou & Huang 2022, Sect. 3.4.1).

The forest maps one row of features per cell and day (the parents' soil moisture, their
missing-value masks, day of year, static covariates) to the in-situ soil moisture. Features are a
:class:`pandas.DataFrame` up to the last moment so that a schema mismatch at prediction time is
caught by column name, not by shape.

Pure functions: no I/O, no MLflow.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

__all__ = ["fit_rf", "predict_rf", "rf_tree_variance", "check_columns"]


def check_columns(expected: list[str], X: pd.DataFrame, *, model: str) -> None:
    """Raise if the columns of ``X`` are not exactly ``expected`` (names and order).

    Raises
    ------
    TypeError
        If ``X`` is not a DataFrame (a bare array would be matched by position only).
    ValueError
        Naming the expected and the received columns, and which are missing / unexpected.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{model}: features must be a pandas DataFrame with columns {expected}, "
                        f"got {type(X).__name__}; build them with the features module")
    received = [str(c) for c in X.columns]
    if received != list(expected):
        missing = [c for c in expected if c not in received]
        unexpected = [c for c in received if c not in expected]
        detail = (f"missing {missing}, unexpected {unexpected}" if missing or unexpected
                  else "same names in another order")
        raise ValueError(f"{model}: feature columns do not match the fitted model ({detail}); "
                         f"expected {list(expected)}, received {received}. Select and order the columns "
                         f"as expected, e.g. X[{list(expected)!r}]")


def fit_rf(X: pd.DataFrame, y: np.ndarray, *, seed: int, n_estimators: int = 300, min_samples_leaf: int = 5,
           max_features: float | Literal["sqrt", "log2"] | None = 1.0, max_depth: int | None = None,
           n_jobs: int = 2) -> RandomForestRegressor:
    """Fit a random-forest regressor of target soil moisture on the merging features.

    Parameters
    ----------
    X : pandas.DataFrame, shape (n, p)
        Features, one row per cell-day, finite values (missing parents filled and flagged by their
        mask columns by the features module). The column names are stored as ``feature_names_in_``.
    y : numpy.ndarray, shape (n,)
        Target soil moisture [m3 m-3].
    seed : int
        Seed of the bootstrap and feature sampling (``random_state``); same seed, same forest.
    n_estimators : int, default 300
        Number of trees.
    min_samples_leaf : int, default 5
        Minimum samples per leaf: regularises the leaves against probe noise.
    max_features : float, {"sqrt", "log2"} or None, default 1.0
        Features considered per split (scikit-learn's meaning). 1.0 (all, i.e. bagged trees) is
        the scikit-learn regression default; the mask columns make many features uninformative on
        most rows, where Breiman's p/3 would often draw no soil-moisture column at all.
    max_depth : int or None, default None
        Maximum tree depth (the Heihe paper selected 8 on its validation set, Sect. 3.4.1).
    n_jobs : int, default 2
        Parallel jobs for fitting and prediction (the project's machines have 2 cores).

    Returns
    -------
    sklearn.ensemble.RandomForestRegressor
        Fitted forest with ``feature_names_in_``.

    Raises
    ------
    TypeError
        If ``X`` is not a DataFrame.
    ValueError
        If ``y`` does not have one finite value per row of ``X``, or ``X`` holds NaN / inf.

    References
    ----------
    .. [1] Breiman, L. (2001). Random forests. Mach. Learn. 45, 5-32.
    .. [2] Zhang, Y., Hou, J. & Huang, C. (2022). Remote Sens. 14, 5355, Sect. 3.4.1.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"fit_rf: features must be a pandas DataFrame (named columns), got {type(X).__name__}")
    target = np.asarray(y, dtype=np.float64)
    if target.shape != (len(X),):
        raise ValueError(f"fit_rf: y must have shape ({len(X)},) like the rows of X, got {target.shape}")
    if not np.isfinite(target).all():
        raise ValueError(f"fit_rf: y holds {int((~np.isfinite(target)).sum())} non-finite values; "
                         "drop those rows before fitting")
    values = X.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = [str(c) for c, ok in zip(X.columns, np.isfinite(values).all(axis=0)) if not ok]
        raise ValueError(f"fit_rf: non-finite feature values in columns {bad}; fill missing parents "
                         "and flag them with their mask columns before fitting")
    model = RandomForestRegressor(n_estimators=n_estimators, min_samples_leaf=min_samples_leaf,
                                  max_features=max_features, max_depth=max_depth, random_state=seed,
                                  n_jobs=n_jobs)
    model.fit(X, target)
    return model


def predict_rf(model: RandomForestRegressor, X: pd.DataFrame) -> np.ndarray:
    """Predict soil moisture [m3 m-3] with a fitted forest, checking the feature schema by name.

    Parameters
    ----------
    model : sklearn.ensemble.RandomForestRegressor
        Output of :func:`fit_rf`.
    X : pandas.DataFrame, shape (n, p)
        Features with exactly the fitted columns, in the fitted order.

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Predicted soil moisture [m3 m-3].

    Raises
    ------
    TypeError
        If ``X`` is not a DataFrame.
    ValueError
        If the columns differ from ``model.feature_names_in_`` (names or order): the message names
        the expected and the received columns.
    """
    check_columns([str(c) for c in model.feature_names_in_], X, model="predict_rf")
    return np.asarray(model.predict(X), dtype=np.float64)


def rf_tree_variance(model: RandomForestRegressor, X: pd.DataFrame) -> np.ndarray:
    """Variance across the trees of the per-tree predictions (within-model spread for BMA).

    ``model`` and ``X`` as in :func:`predict_rf` (same schema check).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Population variance over the trees [(m3 m-3)^2]; its mean over the trees equals
        :func:`predict_rf`.

    Raises
    ------
    TypeError, ValueError
        As :func:`predict_rf`.

    Notes
    -----
    Accumulated tree by tree (Welford's update) so memory stays O(n) instead of
    O(n * n_estimators) (250,000 cells x 300 trees would be 600 MB of float64).
    """
    check_columns([str(c) for c in model.feature_names_in_], X, model="rf_tree_variance")
    values = X.to_numpy(dtype=np.float32)  # the trees split on float32 thresholds
    mean = np.zeros(len(X))
    m2 = np.zeros(len(X))
    for count, tree in enumerate(model.estimators_, start=1):
        pred = tree.predict(values).astype(np.float64)
        delta = pred - mean
        mean += delta / count
        m2 += delta * (pred - mean)
    return m2 / len(model.estimators_)
