"""Fully connected ReLU network accuracy predictor (paper §4.2, A.3)."""
from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state

from .._compat import require
from ..errors import InvalidArgumentError
from .base import AccuracyPredictor
from .linear import _sigmoid

__all__ = ["DNNPredictor", "INITIALIZERS", "OPTIMIZERS"]

INITIALIZERS = ("glorot_normal", "he_normal", "orthogonal", "normal", "truncated_normal")
OPTIMIZERS = ("adam", "sgd")


def _seed_from(random_state) -> int:
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class DNNPredictor(AccuracyPredictor):
    """Keras MLP: ``n_layers`` ReLU layers, sigmoid output, MSE loss.

    Trained with Keras; :meth:`predict` runs the same layers in float64 numpy,
    so a row's prediction does not depend on the other rows of the batch.

    Parameters
    ----------
    n_layers : int
        Number of hidden layers (0 gives a logit-linear model).
    units : int
        Width of every hidden layer.
    dropout : float
        Dropout rate after each hidden layer.
    l2 : float
        L2 kernel regularisation on all Dense layers.
    learning_rate : float
    init : {"glorot_normal", "he_normal", "orthogonal", "normal", "truncated_normal"}
        Kernel initializer; biases start at zero.
    init_variance : float
        Variance of the "normal"/"truncated_normal" initializers (paper
        samples it log-uniformly in [1e-3, 0.1]); ignored by the others.
    optimizer : {"adam", "sgd"}
    batch_size : int
    epochs : int
    random_state : int, RandomState or None
        Seeds Keras (global seed, see ``keras.utils.set_random_seed``).
    standardize : bool
        Z-score inputs with ``mean_``/``scale_`` learned at fit.

    Attributes
    ----------
    model_ : keras.Model
    mean_, scale_ : ndarray of shape (n_features,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only set when names were given.
    """

    _fitted_attr = "model_"

    def __init__(
        self,
        n_layers: int = 3,
        units: int = 256,
        dropout: float = 0.0,
        l2: float = 1e-5,
        learning_rate: float = 1e-3,
        init: str = "glorot_normal",
        init_variance: float = 0.01,
        optimizer: str = "adam",
        batch_size: int = 128,
        epochs: int = 100,
        random_state=0,
        standardize: bool = True,
    ):
        self.n_layers = n_layers
        self.units = units
        self.dropout = dropout
        self.l2 = l2
        self.learning_rate = learning_rate
        self.init = init
        self.init_variance = init_variance
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.epochs = epochs
        self.random_state = random_state
        self.standardize = standardize

    def _initializer(self, keras, seed):
        std = float(np.sqrt(self.init_variance))
        if self.init == "glorot_normal":
            return keras.initializers.GlorotNormal(seed=seed)
        if self.init == "he_normal":
            return keras.initializers.HeNormal(seed=seed)
        if self.init == "orthogonal":
            return keras.initializers.Orthogonal(seed=seed)
        if self.init == "normal":
            return keras.initializers.RandomNormal(stddev=std, seed=seed)
        if self.init == "truncated_normal":
            return keras.initializers.TruncatedNormal(stddev=std, seed=seed)
        raise InvalidArgumentError(f"init must be one of {INITIALIZERS}, got {self.init!r}")

    def _check_params(self):
        if self.init not in INITIALIZERS:
            raise InvalidArgumentError(f"init must be one of {INITIALIZERS}, got {self.init!r}")
        if self.optimizer not in OPTIMIZERS:
            raise InvalidArgumentError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if int(self.n_layers) < 0 or int(self.units) < 1:
            raise InvalidArgumentError("n_layers must be >= 0 and units >= 1")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise InvalidArgumentError(f"dropout must be in [0, 1), got {self.dropout}")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise InvalidArgumentError("epochs and batch_size must be >= 1")

    def _build(self, n_features: int, seed: int):
        keras = require("keras", "DNNPredictor")

        reg = keras.regularizers.L2(float(self.l2)) if self.l2 else None
        layers = [keras.Input(shape=(n_features,))]
        for i in range(int(self.n_layers)):
            layers.append(
                keras.layers.Dense(
                    int(self.units),
                    activation="relu",
                    kernel_initializer=self._initializer(keras, seed + i),
                    bias_initializer="zeros",
                    kernel_regularizer=reg,
                )
            )
            if self.dropout:
                layers.append(keras.layers.Dropout(float(self.dropout), seed=seed + i))
        layers.append(
            keras.layers.Dense(
                1,
                activation="sigmoid",
                kernel_initializer=self._initializer(keras, seed + 1000),
                bias_initializer="zeros",
                kernel_regularizer=reg,
            )
        )
        model = keras.Sequential(layers)
        if self.optimizer == "adam":
            opt = keras.optimizers.Adam(learning_rate=float(self.learning_rate))
        else:
            opt = keras.optimizers.SGD(learning_rate=float(self.learning_rate))
        model.compile(optimizer=opt, loss="mse")
        return model

    def _fit(self, X, y):
        keras = require("keras", "DNNPredictor")

        self._check_params()
        seed = _seed_from(self.random_state)
        if self.standardize:
            mean = X.mean(axis=0)
            scale = X.std(axis=0)
            scale[scale == 0.0] = 1.0
        else:
            mean = np.zeros(X.shape[1])
            scale = np.ones(X.shape[1])
        self.mean_, self.scale_ = mean, scale
        keras.utils.set_random_seed(seed)
        model = self._build(X.shape[1], seed)
        Z = ((X - mean) / scale).astype(np.float32)
        model.fit(
            Z,
            y.astype(np.float32),
            batch_size=int(self.batch_size),
            epochs=int(self.epochs),
            shuffle=True,
            verbose=0,
        )
        self.model_ = model

    def _predict_raw(self, X, chunk: int = 65536):
        Z = (X - self.mean_) / self.scale_
        dense = _dense_stack(self.model_)
        if dense is not None:
            # float64 forward pass with numpy: every row's prediction is independent of the other rows of
            # the batch (Keras's float32 kernels are not, at 1e-7) and no framework call per prediction
            for kernel, bias, activation in dense:
                Z = _ACTIVATIONS[activation](Z @ kernel + bias)
            return Z.reshape(-1)
        Z = Z.astype(np.float32)
        outs = [
            np.asarray(self.model_(Z[i : i + chunk], training=False), dtype=np.float64)
            for i in range(0, max(Z.shape[0], 1), chunk)
        ]
        return np.concatenate(outs).reshape(-1)


_ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0), "sigmoid": _sigmoid, "linear": lambda z: z}


def _dense_stack(model):
    """[(kernel, bias, activation)] in float64 for a model of Dense (and inference-time no-op Dropout) layers
    with known activations, as :meth:`DNNPredictor._build` makes; None for any other model."""
    out = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Dropout":
            continue
        config = layer.get_config()
        if kind != "Dense" or config.get("activation") not in _ACTIVATIONS or not config.get("use_bias", True):
            return None
        kernel, bias = layer.get_weights()
        out.append((np.asarray(kernel, np.float64), np.asarray(bias, np.float64), config["activation"]))
    return out or None
