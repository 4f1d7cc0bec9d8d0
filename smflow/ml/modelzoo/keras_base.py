"""Shared base of the Keras members (LSTM, CNN): serialisable custom layers, training loop, prediction.

Importing this module imports Keras / TensorFlow (~9 s): only :mod:`.lstm`, :mod:`.cnn` and the
``save_keras`` / ``load_keras`` helpers import it, inside their functions.

Every Keras member is built as ``Input(window, p) -> FeatureSchema -> Normalization -> body ->
Rescaling``:

- :class:`FeatureSchema` is an identity layer whose config carries the feature names (and the CNN
  head layout), so a ``.keras`` file knows what its input axis means and a loaded model predicts
  without being told again;
- ``Normalization`` is adapted on the training features (per feature, over samples and time), so
  callers pass physical units (m3 m-3, metres of elevation, 0/1 masks) and the scaling travels with
  the model;
- ``Rescaling(scale=std(y), offset=mean(y))`` maps the network's standardised output back to m3 m-3.

Only registered layers are used (no ``Lambda``), so models load with Keras' default safe mode.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["FeatureSchema", "ChannelSelect", "SCHEMA_LAYER", "model_schema", "check_window_features",
           "input_block", "output_block", "seed_everything", "check_target", "train_keras", "predict_keras"]

#: Name of the :class:`FeatureSchema` layer in every Keras member.
SCHEMA_LAYER = "feature_schema"


@keras.saving.register_keras_serializable(package="smflow")
class FeatureSchema(keras.layers.Layer):
    """Identity layer that stores the feature names and the CNN head layout in the model config.

    Parameters
    ----------
    feature_names : list of str, length p
        Names of the last axis of the input.
    heads : dict of str to list of int, optional
        CNN heads: parent name -> indices into the last axis (empty for the LSTM).
    """

    def __init__(self, feature_names: list[str], heads: dict[str, list[int]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature_names = [str(n) for n in feature_names]
        self.heads = {str(k): [int(i) for i in v] for k, v in (heads or {}).items()}

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(feature_names=list(self.feature_names), heads={k: list(v) for k, v in self.heads.items()})
        return config


@keras.saving.register_keras_serializable(package="smflow")
class ChannelSelect(keras.layers.Layer):
    """Select feature channels of a (batch, window, p) tensor; optionally keep the last time step only.

    Parameters
    ----------
    indices : list of int
        Channels to keep, in this order.
    last_step : bool, default False
        Return (batch, len(indices)) at the last time step (the day being predicted) instead of
        (batch, window, len(indices)): for day of year and static covariates, which a convolution
        over the window would only repeat.
    """

    def __init__(self, indices: list[int], last_step: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]
        self.last_step = bool(last_step)

    def call(self, inputs: Any) -> Any:
        selected = ops.take(inputs, self.indices, axis=-1)
        return selected[:, -1, :] if self.last_step else selected

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        if self.last_step:
            return (input_shape[0], len(self.indices))
        return (*input_shape[:-1], len(self.indices))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(indices=list(self.indices), last_step=self.last_step)
        return config


def model_schema(model: keras.Model) -> FeatureSchema:
    """The :class:`FeatureSchema` layer of a Keras member.

    Raises
    ------
    ValueError
        If the model has no such layer (it was not built by this model zoo).
    """
    try:
        layer = model.get_layer(SCHEMA_LAYER)
    except ValueError as err:
        raise ValueError(f"Keras model '{model.name}' has no '{SCHEMA_LAYER}' layer: it was not built by "
                         "smflow.ml.modelzoo (fit_lstm / fit_cnn), so its feature names are unknown") from err
    if not isinstance(layer, FeatureSchema):
        raise ValueError(f"Keras model '{model.name}': layer '{SCHEMA_LAYER}' is a {type(layer).__name__}, "
                         "not a FeatureSchema")
    return layer


def check_window_features(X: np.ndarray, *, feature_names: list[str], what: str,
                          window: int | None = None) -> np.ndarray:
    """Return ``X`` as float32 after checking shape (n, window, p) against the names and finiteness.

    Raises
    ------
    ValueError
        If ``X`` is not 3-D, its last axis does not have one entry per feature name (or its window
        differs from ``window``), or it holds NaN / inf (naming the features concerned).
    """
    values = np.asarray(X, dtype=np.float32)
    if values.ndim != 3:
        raise ValueError(f"{what}: X must have shape (n, window, n_features), got {values.shape}")
    if values.shape[-1] != len(feature_names):
        raise ValueError(f"{what}: X has {values.shape[-1]} features on its last axis but the model has "
                         f"{len(feature_names)}: {list(feature_names)}; build X with exactly these features, "
                         "in this order")
    if window is not None and values.shape[1] != window:
        raise ValueError(f"{what}: X has a window of {values.shape[1]} steps but the model was fitted on "
                         f"{window}; build the trailing windows with {window} days")
    finite = np.isfinite(values).all(axis=(0, 1))
    if not finite.all():
        bad = [name for name, ok in zip(feature_names, finite) if not ok]
        raise ValueError(f"{what}: non-finite values in features {bad}; fill missing parents and flag them "
                         "with their mask features before fitting or predicting")
    return values


def input_block(X: np.ndarray, *, feature_names: list[str], heads: dict[str, list[int]] | None = None
                ) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Input, schema and normalisation (adapted on ``X``) of a Keras member; returns (input, normalised)."""
    inputs = keras.Input(shape=X.shape[1:], name="features")
    schema = FeatureSchema(feature_names, heads, name=SCHEMA_LAYER)(inputs)
    normalisation = keras.layers.Normalization(axis=-1, name="normalisation")
    normalisation.adapt(X)
    return inputs, normalisation(schema)


def output_block(hidden: keras.KerasTensor, y: np.ndarray) -> keras.KerasTensor:
    """Dense(1) in standard units, rescaled to the target's mean and standard deviation [m3 m-3]."""
    standard = keras.layers.Dense(1, name="standardised_soil_moisture")(hidden)
    scale = float(np.std(y)) or 1.0
    return keras.layers.Rescaling(scale=scale, offset=float(np.mean(y)), name="soil_moisture")(standard)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TensorFlow ops deterministic (process-wide)."""
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def check_target(y: np.ndarray, n: int, what: str) -> np.ndarray:
    """Return ``y`` as float32 (n,) after checking its shape and finiteness."""
    target = np.asarray(y, dtype=np.float32).reshape(-1)
    if target.shape != (n,):
        raise ValueError(f"{what}: y must have shape ({n},) like the rows of X, got {np.shape(y)}")
    if not np.isfinite(target).all():
        raise ValueError(f"{what}: y holds {int((~np.isfinite(target)).sum())} non-finite values; "
                         "drop those samples before fitting")
    return target


def train_keras(model: keras.Model, X: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int,
                learning_rate: float, validation: tuple[np.ndarray, np.ndarray] | None, patience: int,
                feature_names: list[str], what: str) -> keras.Model:
    """Compile (Adam, MSE) and fit; early stopping on ``validation`` with the best weights restored.

    The :class:`keras.callbacks.History` of the run stays on ``model.history`` (epochs run, losses).
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    callbacks = []
    validation_data = None
    if validation is not None:
        X_val, y_val = validation
        values = check_window_features(X_val, feature_names=feature_names, what=f"{what} (validation)",
                                       window=X.shape[1])
        validation_data = (values, check_target(y_val, len(values), f"{what} (validation)"))
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                       restore_best_weights=True))
    model.fit(X, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
              validation_data=validation_data, callbacks=callbacks)
    return model


def predict_keras(model: keras.Model, X: np.ndarray, *, what: str, feature_names: list[str] | None = None,
                  batch_size: int = 8192) -> np.ndarray:
    """Soil moisture [m3 m-3], (n,) float64, from a Keras member, X checked against the model's schema.

    Raises ValueError if ``feature_names`` is given and differs from the names stored in the model,
    or X does not match the model's number of features / window, or holds NaN.
    """
    stored = model_schema(model).feature_names
    if feature_names is not None and list(feature_names) != stored:
        raise ValueError(f"{what}: feature names do not match model '{model.name}'; expected {stored}, "
                         f"received {list(feature_names)}")
    values = check_window_features(X, feature_names=stored, what=f"{what} (model '{model.name}')",
                                   window=model.input_shape[1])
    if len(values) == 0:
        return np.zeros(0)
    out = model.predict(values, batch_size=batch_size, verbose=0)
    return np.asarray(out, dtype=np.float64).reshape(-1)
