"""Multi-head 1-D CNN merging member (Zhang, Hou & Huang 2022, Sect. 3.4.3, Fig. 6).

As the paper describes: "each input series can be handled by a separate CNN, and the output of
each of these CNNs can be combined before producing the prediction" (Keras functional API). Here
each parent product (SMAP, ERA5-Land, ...) has one convolutional head over its channels (its soil
moisture and its missing-value mask) in the trailing window; the remaining features (day of year,
static covariates) enter the dense part at the window's last day; a dense head maps the
concatenation to soil moisture.

The input stays one (n, window, p) array: registered :class:`~.keras_base.ChannelSelect` layers
split it, and the head layout is stored in the model, so a loaded ``.keras`` model predicts from
the same array without being told the heads again. TensorFlow is imported inside the functions.

Pure functions: no I/O, no MLflow.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["fit_cnn", "predict_cnn", "check_heads"]

#: Kernel size of both convolutions of each head [days].
KERNEL_SIZE = 3


def check_heads(heads: dict[str, list[int]], n_features: int) -> list[int]:
    """Validate the head layout; return the indices of the remaining (shared) features, sorted.

    Raises
    ------
    ValueError
        If there is no head, a head is empty, an index is outside ``0..n_features-1``, or an index
        belongs to two heads.
    """
    if not heads:
        raise ValueError("fit_cnn: heads is empty; give one entry per parent product, e.g. "
                         "{'smap': [0, 5], 'era5_land': [1, 6]} (feature indices of its channels)")
    owner: dict[int, str] = {}
    for name, indices in heads.items():
        if len(indices) == 0:
            raise ValueError(f"fit_cnn: head '{name}' has no feature indices")
        for index in indices:
            if not 0 <= int(index) < n_features:
                raise ValueError(f"fit_cnn: head '{name}' index {index} is outside the {n_features} features "
                                 f"(0..{n_features - 1})")
            if int(index) in owner:
                raise ValueError(f"fit_cnn: feature index {index} is in heads '{owner[int(index)]}' and '{name}'; "
                                 "each feature belongs to one head")
            owner[int(index)] = name
    return [i for i in range(n_features) if i not in owner]


def fit_cnn(X: np.ndarray, y: np.ndarray, *, feature_names: list[str], heads: dict[str, list[int]], seed: int,
            epochs: int = 60, batch_size: int = 128, filters: int = 16, learning_rate: float = 1e-3,
            validation: tuple[np.ndarray, np.ndarray] | None = None, patience: int = 8) -> keras.Model:
    """Fit the multi-head 1-D CNN: one Conv1D head per parent series, merged into a dense head.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, window, p)
        Trailing windows of the features, oldest day first, finite values; window >= 5 days.
    y : numpy.ndarray, shape (n,)
        Target soil moisture [m3 m-3] on the last day of each window.
    feature_names : list of str, length p
        Names of the last axis of ``X``, stored in the model.
    heads : dict of str to list of int
        Parent product name -> indices (into the last axis of ``X``) of its channels, e.g.
        ``{"smap": [0, 5], "era5_land": [1, 6]}``. Indices in no head (day of year, static
        covariates) feed the dense part at the last day of the window.
    seed : int
        Seed of weights and shuffling; TensorFlow op determinism is switched on (process-wide).
    epochs, batch_size, learning_rate : int, int, float
        Adam optimiser on the mean squared error [(m3 m-3)^2].
    filters : int, default 16
        Filters of each Conv1D (kernel 3 days, ReLU, two layers per head).
    validation : (X_val, y_val), optional
        Early-stopping data; best weights restored. Without it, all ``epochs`` run.
    patience : int, default 8
        Epochs without validation improvement before stopping.

    Returns
    -------
    keras.Model
        Input (n, window, p) float32 -> output (n, 1) soil moisture [m3 m-3]. Per head:
        ``ChannelSelect -> Conv1D -> Conv1D -> Flatten`` (Flatten keeps the position in the window:
        the last days matter most); then ``Concatenate -> Dense(32, relu) -> Dense(1)``.

    Raises
    ------
    ValueError
        If the shapes or names disagree, the window is shorter than 5 days, values are not finite,
        or ``heads`` is invalid (see :func:`check_heads`).

    References
    ----------
    .. [1] Zhang, Y., Hou, J. & Huang, C. (2022). Remote Sens. 14, 5355, Sect. 3.4.3 and Fig. 6.
    """
    from smflow.ml.modelzoo import keras_base as kb

    keras = kb.keras
    values = kb.check_window_features(X, feature_names=feature_names, what="fit_cnn")
    target = kb.check_target(y, len(values), "fit_cnn")
    if values.shape[1] < 2 * (KERNEL_SIZE - 1) + 1:
        raise ValueError(f"fit_cnn: window of {values.shape[1]} days is too short for two convolutions of "
                         f"kernel {KERNEL_SIZE}; use at least {2 * (KERNEL_SIZE - 1) + 1} days")
    layout = {str(name): [int(i) for i in indices] for name, indices in heads.items()}
    shared = check_heads(layout, values.shape[-1])
    kb.seed_everything(seed)
    inputs, normalised = kb.input_block(values, feature_names=feature_names, heads=layout)
    branches = []
    for name, indices in layout.items():
        tag = re.sub(r"\W", "_", name)
        channels = kb.ChannelSelect(indices, name=f"head_{tag}_channels")(normalised)
        hidden = keras.layers.Conv1D(filters, KERNEL_SIZE, activation="relu", name=f"head_{tag}_conv1")(channels)
        hidden = keras.layers.Conv1D(filters, KERNEL_SIZE, activation="relu", name=f"head_{tag}_conv2")(hidden)
        branches.append(keras.layers.Flatten(name=f"head_{tag}_flatten")(hidden))
    if shared:
        branches.append(kb.ChannelSelect(shared, last_step=True, name="shared_last_day")(normalised))
    merged = keras.layers.Concatenate(name="heads")(branches) if len(branches) > 1 else branches[0]
    dense = keras.layers.Dense(32, activation="relu", name="dense")(merged)
    model = keras.Model(inputs, kb.output_block(dense, target), name="cnn_merging")
    return kb.train_keras(model, values, target, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate, validation=validation, patience=patience,
                          feature_names=feature_names, what="fit_cnn")


def predict_cnn(model: keras.Model, X: np.ndarray, *, feature_names: list[str] | None = None) -> np.ndarray:
    """Predict soil moisture [m3 m-3], shape (n,), float64, with a model from :func:`fit_cnn`.

    The heads split X inside the model (layout stored in it), so the same (n, window, p) array as
    for fitting is all it needs. Errors as :func:`smflow.ml.modelzoo.lstm.predict_lstm`.
    """
    from smflow.ml.modelzoo import keras_base as kb

    return kb.predict_keras(model, X, what="predict_cnn", feature_names=feature_names)
