"""LSTM merging member (Hochreiter & Schmidhuber 1997; Zhang, Hou & Huang 2022, Sect. 3.4.2).

The LSTM reads a trailing window of the merging features (parents' soil moisture, masks, day of
year, static covariates) and predicts the in-situ soil moisture of the window's last day. Keras 3
on tensorflow-cpu; TensorFlow is imported inside the functions, never at module import.

Pure functions: no I/O, no MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["fit_lstm", "predict_lstm"]


def fit_lstm(X: np.ndarray, y: np.ndarray, *, feature_names: list[str], seed: int, units: int = 32,
             dropout: float = 0.1, epochs: int = 60, batch_size: int = 128, learning_rate: float = 1e-3,
             validation: tuple[np.ndarray, np.ndarray] | None = None, patience: int = 8) -> keras.Model:
    """Fit ``Input(window, p) -> Normalization -> LSTM(units) -> Dense(1)`` on trailing windows.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, window, p)
        Trailing windows of the features, oldest day first, finite values (missing parents filled
        and flagged by their mask features). Physical units: the model normalises internally with
        statistics adapted on ``X``.
    y : numpy.ndarray, shape (n,)
        Target soil moisture [m3 m-3] on the last day of each window.
    feature_names : list of str, length p
        Names of the last axis of ``X``, stored in the model (``FeatureSchema`` layer).
    seed : int
        Seed of weights, dropout and shuffling (``keras.utils.set_random_seed``); TensorFlow op
        determinism is switched on (process-wide), so the same seed and data give the same model.
    units : int, default 32
        LSTM hidden units (the paper searched 1-10 layers of 1-128 units; one layer suffices here).
    dropout : float, default 0.1
        Dropout of the LSTM inputs.
    epochs, batch_size, learning_rate : int, int, float
        Adam optimiser on the mean squared error [(m3 m-3)^2].
    validation : (X_val, y_val), optional
        Early-stopping data (shapes as ``X`` and ``y``); the weights of the best validation epoch
        are restored. Without it, all ``epochs`` run.
    patience : int, default 8
        Epochs without validation improvement before stopping.

    Returns
    -------
    keras.Model
        Fitted model: input (n, window, p) float32, output (n, 1) soil moisture [m3 m-3]; the
        training history is on ``model.history``.

    Raises
    ------
    ValueError
        If ``X`` is not (n, window, p) with p == len(feature_names), ``y`` is not (n,), or either
        holds NaN / inf.

    References
    ----------
    .. [1] Hochreiter, S. & Schmidhuber, J. (1997). Long short-term memory. Neural Comput. 9, 1735-1780.
    .. [2] Zhang, Y., Hou, J. & Huang, C. (2022). Remote Sens. 14, 5355, Sect. 3.4.2.
    """
    from smflow.ml.modelzoo import keras_base as kb

    keras = kb.keras
    values = kb.check_window_features(X, feature_names=feature_names, what="fit_lstm")
    target = kb.check_target(y, len(values), "fit_lstm")
    kb.seed_everything(seed)
    inputs, normalised = kb.input_block(values, feature_names=feature_names)
    hidden = keras.layers.LSTM(units, dropout=dropout, name="lstm")(normalised)
    model = keras.Model(inputs, kb.output_block(hidden, target), name="lstm_merging")
    return kb.train_keras(model, values, target, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate, validation=validation, patience=patience,
                          feature_names=feature_names, what="fit_lstm")


def predict_lstm(model: keras.Model, X: np.ndarray, *, feature_names: list[str] | None = None) -> np.ndarray:
    """Predict soil moisture [m3 m-3] with a model from :func:`fit_lstm` (or loaded by ``load_keras``).

    Parameters
    ----------
    model : keras.Model
        Fitted LSTM member.
    X : numpy.ndarray, shape (n, window, p)
        Trailing windows with the fitted features and window length.
    feature_names : list of str, optional
        When given, checked against the names stored in the model.

    Returns
    -------
    numpy.ndarray, shape (n,), float64

    Raises
    ------
    ValueError
        If X's number of features or window differs from the model's, X holds NaN, or
        ``feature_names`` differs from the stored names (the message names both lists).
    """
    from smflow.ml.modelzoo import keras_base as kb

    return kb.predict_keras(model, X, what="predict_lstm", feature_names=feature_names)
