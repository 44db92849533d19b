"""PyTorch adapter: ``nn.Module`` (Conv1d/2d/3d, Linear) and state dicts.

Kernels are converted to the canonical (Keras) layout: conv
``(out, in/groups, *k)`` -> ``(*k, in/groups, out)``; depthwise conv
``(in*mult, 1, *k)`` -> ``(*k, in, mult)``; linear ``(out, in)`` -> ``(in, out)``.
The activation of a layer is the first activation module registered after it
(when the model uses modules for activations); the rates of dropout modules
are kept in ``Network.meta["dropout"]``. torch is only imported when a torch
object is given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from ..network import NORM_TENSORS, LayerWeights, Network, WeightsError
from . import Adapter, mro_modules

log = logging.getLogger(__name__)

_ACTIVATIONS = {
    "ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "GELU": "gelu", "LeakyReLU": "leaky_relu",
    "ELU": "elu", "SiLU": "silu", "Softplus": "softplus", "Softmax": "softmax", "ReLU6": "relu6",
}


def _is_state_dict(obj) -> bool:
    if not isinstance(obj, Mapping) or not obj:
        return False
    return all(type(v).__module__.split(".")[0] == "torch" for v in obj.values())


def accepts(obj) -> bool:
    return ("torch" in mro_modules(obj) and hasattr(obj, "named_modules")) or _is_state_dict(obj)


def _np(t) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def conv_kernel_to_canonical(weight: np.ndarray, groups: int = 1, in_channels: int | None = None):
    """(out, in/groups, *k) -> (kind, canonical kernel)."""
    k = weight.ndim - 2
    if groups > 1 and weight.shape[1] == 1 and in_channels == groups:
        mult = weight.shape[0] // groups
        w = weight.reshape(groups, mult, *weight.shape[2:])  # (in, mult, *k)
        return "depthwise_conv", np.transpose(w, tuple(range(2, 2 + k)) + (0, 1))
    return "conv", np.transpose(weight, tuple(range(2, 2 + k)) + (1, 0))


def convert(obj, **_options) -> Network:
    if _is_state_dict(obj):
        return _from_state_dict(obj)
    import torch.nn as nn

    out: list = []
    skipped: list = []
    norm: list = []
    dropout: list = []
    for name, module in obj.named_modules():
        cls = type(module).__name__
        if isinstance(module, nn.modules.dropout._DropoutNd):  # Dropout, Dropout1d/2d/3d, AlphaDropout
            dropout.append(float(module.p))
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            kind, kernel = conv_kernel_to_canonical(_np(module.weight), module.groups, module.in_channels)
            bias = _np(module.bias) if module.bias is not None else None
            out.append(LayerWeights(name or cls, kind, kernel, bias))
        elif isinstance(module, nn.Linear):
            bias = _np(module.bias) if module.bias is not None else None
            out.append(LayerWeights(name or cls, "dense", _np(module.weight).T, bias))
        elif cls in _ACTIVATIONS:
            # after a skipped module with parameters (BatchNorm, ...) the activation acts on its output, not on the
            # kernel layer's: that layer's activation stays unknown
            if out and out[-1].activation is None and not (skipped and skipped[-1][2] == len(out)):
                last = out[-1]
                out[-1] = LayerWeights(last.name, last.kind, last.kernel, last.bias, _ACTIVATIONS[cls])
        elif any(True for _ in module.parameters(recurse=False)):
            log.debug("weightwatch: skipping unsupported module %s (%s)", name, cls)
            skipped.append((name, cls, len(out)))
            if isinstance(module, nn.modules.batchnorm._BatchNorm):  # BatchNorm1d/2d/3d, SyncBatchNorm
                parts = zip(NORM_TENSORS, (module.weight, module.bias, module.running_mean, module.running_var))
                norm.append((name, {t: _np(v) for t, v in parts if v is not None}))
    return Network(tuple(out), source="torch", name=type(obj).__name__,
                   meta={"skipped": [(n, c) for n, c, _ in skipped], "normalisation": norm, "dropout": dropout})


def _from_state_dict(state: Mapping) -> Network:
    """Read a state dict: ``prefix.weight`` with >= 2 dims (and ``prefix.bias``)."""
    out = []
    for key, value in state.items():
        if not key.endswith(".weight") and key != "weight":
            continue
        prefix = key[: -len("weight")].rstrip(".")
        w = _np(value)
        if w.ndim < 2:  # norm layers, embeddings of scalars
            log.debug("weightwatch: skipping %s (shape %s)", key, w.shape)
            continue
        b = state.get(f"{prefix}.bias" if prefix else "bias")
        bias = _np(b) if b is not None else None
        if w.ndim == 2:
            out.append(LayerWeights(prefix or "weight", "dense", w.T, bias))
        else:
            kind, kernel = conv_kernel_to_canonical(w)
            out.append(LayerWeights(prefix or "weight", kind, kernel, bias))
    if not out:
        raise WeightsError("the state dict holds no '*.weight' tensor with 2 or more dimensions")
    return Network(tuple(out), source="torch-state-dict")


ADAPTER = Adapter(
    name="torch",
    accepts=accepts,
    convert=convert,
    priority=10,
    description="torch nn.Module (Conv1d/2d/3d incl. depthwise, Linear) or a state dict",
)
