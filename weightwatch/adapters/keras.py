"""Keras 3 adapter: Sequential, Functional and subclassed models.

Reads Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D (as a depthwise
and a pointwise layer) and Dense layers, in Keras's own layouts; other layers
(BatchNormalization, pooling, ...) are skipped with a debug log; the rates of
dropout layers are kept in ``Network.meta["dropout"]``. Keras is only
imported when a Keras model is actually given.
"""

from __future__ import annotations

import logging

import numpy as np

from ..network import NORM_TENSORS, LayerWeights, Network
from . import Adapter, mro_modules

log = logging.getLogger(__name__)

_ACTIVATION_LAYERS = {"ReLU": "relu", "ELU": "elu", "LeakyReLU": "leaky_relu", "Softmax": "softmax", "PReLU": "prelu"}

#: Keras layer classes as :data:`~weightwatch.network.PLAIN_OPS` (any other class is ``"other"``).
_OPS = {
    **dict.fromkeys(("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
                     "SeparableConv2D"), "conv"),
    "Dense": "dense", "InputLayer": "input", "Flatten": "flatten", "Activation": "activation", "ReLU": "activation",
    **dict.fromkeys(("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"), "dropout"),
    **dict.fromkeys([f"{kind}Pooling{d}D" for kind in ("Max", "Average", "GlobalAverage", "GlobalMax")
                     for d in (1, 2, 3)], "pool"),
}


def accepts(obj) -> bool:
    return "keras" in mro_modules(obj) and hasattr(obj, "weights")


def _numpy(variable) -> np.ndarray:
    # Variable.numpy() asks the backend for a copy; np.asarray on a TF variable would go through its
    # __array__, which lacks numpy 2's copy keyword and warns
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    arr = np.array(value, copy=True)
    if arr.dtype.kind not in "fiub" or arr.dtype.itemsize < 2 or arr.dtype.name not in np.sctypeDict:
        arr = arr.astype(np.float32)  # bfloat16 (ml_dtypes) and other non-numpy floats
    return arr


def inner_optimizer(optimizer):
    """The optimizer that updates the weights: a ``LossScaleOptimizer`` (``mixed_float16``) read through to its
    ``inner_optimizer`` (its kind, learning rate and step count); any other object returned as it is."""
    for _ in range(8):  # wrappers of wrappers, never a cycle
        inner = getattr(optimizer, "inner_optimizer", None)
        if inner is None or inner is optimizer:
            break
        optimizer = inner
    return optimizer


def _leaf_layers(model) -> list:
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        layers = list(flatten(include_self=False, recursive=True))
    else:  # pragma: no cover - Keras 3 always has _flatten_layers
        layers = list(getattr(model, "layers", []))
    # containers (nested models) come with their children; keep leaves only
    return [l for l in layers if not list(l._flatten_layers(include_self=False, recursive=False))] if layers else [model]


def _activation_name(layer):
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", None)
    if name in (None, "linear"):
        return None
    return name


def convert(model, **_options) -> Network:
    from keras import layers as kl

    out: list = []
    skipped: list = []
    norm: list = []
    dropout: list = []
    leaves = _leaf_layers(model)
    for layer in leaves:
        cls = type(layer).__name__
        if isinstance(layer, kl.Dropout):  # SpatialDropout1D/2D/3D too (subclasses)
            dropout.append(float(getattr(layer, "rate", 0.0) or 0.0))
            continue
        if isinstance(layer, (kl.Conv1DTranspose, kl.Conv2DTranspose, kl.Conv3DTranspose)):
            log.debug("weightwatch: skipping transposed convolution %s", layer.name)
            continue
        if isinstance(layer, kl.SeparableConv1D) or isinstance(layer, kl.SeparableConv2D):
            depth = _numpy(layer.depthwise_kernel)
            point = _numpy(layer.pointwise_kernel)
            bias = _numpy(layer.bias) if getattr(layer, "use_bias", False) else None
            out.append(LayerWeights(f"{layer.name}/depthwise", "depthwise_conv", depth, None, None))
            out.append(LayerWeights(f"{layer.name}/pointwise", "conv", point, bias, _activation_name(layer)))
        elif isinstance(layer, (kl.DepthwiseConv1D, kl.DepthwiseConv2D)):
            bias = _numpy(layer.bias) if getattr(layer, "use_bias", False) else None
            out.append(LayerWeights(layer.name, "depthwise_conv", _numpy(layer.kernel), bias, _activation_name(layer)))
        elif isinstance(layer, (kl.Conv1D, kl.Conv2D, kl.Conv3D)):
            bias = _numpy(layer.bias) if getattr(layer, "use_bias", False) else None
            out.append(LayerWeights(layer.name, "conv", _numpy(layer.kernel), bias, _activation_name(layer)))
        elif isinstance(layer, kl.Dense):
            bias = _numpy(layer.bias) if getattr(layer, "use_bias", False) else None
            out.append(LayerWeights(layer.name, "dense", _numpy(layer.kernel), bias, _activation_name(layer)))
        elif isinstance(layer, kl.Activation) or cls in _ACTIVATION_LAYERS:
            name = _ACTIVATION_LAYERS.get(cls) or _activation_name(layer)
            if out and out[-1].activation is None and name and not (skipped and skipped[-1][2] == len(out)):
                last = out[-1]
                out[-1] = LayerWeights(last.name, last.kind, last.kernel, last.bias, name)
        elif layer.weights:
            log.debug("weightwatch: skipping unsupported layer %s (%s)", layer.name, cls)
            skipped.append((layer.name, cls, len(out)))
            if isinstance(layer, kl.BatchNormalization):
                norm.append((layer.name, {t: _numpy(getattr(layer, t)) for t in NORM_TENSORS
                                          if getattr(layer, t, None) is not None}))
    # an activation after a skipped layer with weights (BatchNormalization, ...) acts on that layer's output, not
    # on the kernel layer's: the kernel layer's activation stays unknown (rules reasoning through it stop there)
    return Network(tuple(out), source="keras", name=getattr(model, "name", ""),
                   meta={"skipped": [(n, c) for n, c, _ in skipped], "normalisation": norm, "dropout": dropout,
                         "ops": _ops(model, leaves)})


def _ops(model, leaves):
    """The leaves as :data:`~weightwatch.network.PLAIN_OPS` when the forward pass runs them as built (Sequential,
    Functional); None for a subclassed model, whose ``call`` may do anything."""
    import keras

    if not (isinstance(model, keras.Sequential) or type(model).__name__ == "Functional"):
        return None
    return tuple(_OPS.get(type(layer).__name__, "other") for layer in leaves if layer is not model)


ADAPTER = Adapter(
    name="keras",
    accepts=accepts,
    convert=convert,
    priority=10,
    description="Keras 3 models (Sequential, Functional, subclassed): Conv*, DepthwiseConv*, SeparableConv*, Dense",
)
