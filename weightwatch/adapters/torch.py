"""PyTorch adapter: ``nn.Module`` (Conv1d/2d/3d, Linear) and state dicts.

Kernels are converted to the canonical (Keras) layout: conv
``(out, in/groups, *k)`` -> ``(*k, in/groups, out)``; depthwise conv
``(in*mult, 1, *k)`` -> ``(*k, in, mult)``; linear ``(out, in)`` -> ``(in, out)``.
Layers are read in the order the model's forward pass calls them, traced
once per model with forward pre-hooks on a tiny zero input (``eval`` mode,
no gradients, every module's mode restored); a model declaring its
classifier before its convolutions is read convolutions first. When no
tiny input fits, the declaration order is used and a
:class:`LayerOrderWarning` says the order was not verified
(``Network.meta["order"]`` is ``"forward"`` or ``"declaration"``).
The activation of a layer is the first activation module called after it
(when the model uses modules for activations); the rates of dropout modules
are kept in ``Network.meta["dropout"]``. torch is only imported when a torch
object is given.
"""

from __future__ import annotations

import logging
import time
import warnings
import weakref
from collections.abc import Mapping

import numpy as np

from ..network import NORM_TENSORS, LayerWeights, Network, WeightsError
from . import Adapter, mro_modules

log = logging.getLogger(__name__)

_ACTIVATIONS = {
    "ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "GELU": "gelu", "LeakyReLU": "leaky_relu",
    "ELU": "elu", "SiLU": "silu", "Softplus": "softplus", "Softmax": "softmax", "ReLU6": "relu6",
}


#: torch module classes as :data:`~weightwatch.network.PLAIN_OPS` (any other leaf module is ``"other"``).
_OPS = {
    **dict.fromkeys(("Conv1d", "Conv2d", "Conv3d"), "conv"), "Linear": "dense", "Flatten": "flatten",
    "Identity": "identity", **dict.fromkeys(("ReLU", "ReLU6", "Tanh", "Sigmoid"), "activation"),
    **dict.fromkeys(("Dropout", "Dropout1d", "Dropout2d", "Dropout3d"), "dropout"),
    **dict.fromkeys([f"{kind}{d}d" for kind in ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool")
                     for d in (1, 2, 3)], "pool"),
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


class LayerOrderWarning(UserWarning):
    """A torch model's layers were read in declaration order: no forward pass could verify the order."""


#: {model: (module names at trace time, names in forward order or None)}; a model is traced once
_ORDERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_TRACE_SECONDS = 5.0  # tiny inputs tried for at most this long


def _tiny_inputs(model) -> list:
    """Zero inputs (batch 1) a model may accept: for its convolution with the fewest input channels, a few
    spatial sizes; without convolutions, each Linear's ``in_features``."""
    import torch
    import torch.nn as nn

    params = list(model.parameters())
    if not params:
        return []
    example = getattr(model, "example_input_array", None)  # Lightning's way to declare an input
    given = [example] if isinstance(example, torch.Tensor) else []
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    if convs:
        first = min(convs, key=lambda m: m.in_channels)
        k = first.weight.ndim - 2
        sizes = {1: (64, 32, 128, 16), 2: (32, 28, 16, 64, 8, 224), 3: (16, 8, 32)}[k]
        shapes = [(1, first.in_channels, *(s,) * k) for s in sizes]
    else:
        shapes = [(1, f) for f in dict.fromkeys(m.in_features for m in model.modules() if isinstance(m, nn.Linear))]
    return given + [torch.zeros(shape, dtype=params[0].dtype, device=params[0].device) for shape in shapes]


def _trace_order(model):
    """Submodule names in the order a forward pass on a tiny input first calls them; None if no input fits.

    Runs in ``eval`` mode without gradients (BatchNorm statistics untouched), every module's mode restored.
    """
    import torch

    calls: dict = {}
    named = [(n, m) for n, m in model.named_modules() if n]
    hooks = []

    def hook_for(name):
        def hook(_module, _args):
            calls.setdefault(name, len(calls))
            return None  # a value here would replace the module's input

        return hook

    modes = [(m, m.training) for m in model.modules()]
    try:
        for n, m in named:
            hooks.append(m.register_forward_pre_hook(hook_for(n)))
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            for x in _tiny_inputs(model):
                if time.perf_counter() - t0 > _TRACE_SECONDS:
                    break
                calls.clear()
                try:
                    model(x)
                except Exception:  # noqa: BLE001 - a wrong guess of the input shape; try the next
                    continue
                return sorted(calls, key=calls.get)
        return None
    finally:
        for h in hooks:
            h.remove()
        for m, mode in modes:
            m.training = mode


def _traced(model):
    """:func:`_trace_order` of ``model``; when its own forward cannot run (a LightningModule without
    ``forward``, say) and one submodule holds all its parameters, that submodule's order (fully verified)."""
    order = _trace_order(model)
    prefix = ""
    while order is None:
        holders = [(n, m) for n, m in model.named_children() if any(True for _ in m.parameters())]
        if len(holders) != 1 or any(True for _ in model.parameters(recurse=False)):
            return None
        name, model = holders[0]
        prefix += name + "."
        order = _trace_order(model)
    return [prefix + n for n in order] if prefix else order


def forward_order(model) -> tuple:
    """(``model.named_modules()`` in forward order, True); modules the trace never called keep their declaration
    order, after the called ones. When no tiny input fits: (declaration order, False), with a
    :class:`LayerOrderWarning`."""
    modules = list(model.named_modules())
    if not any(True for _ in model.parameters()):
        return modules, True  # no weights: no order to get wrong
    names = tuple(n for n, _ in modules)
    try:
        cached = _ORDERS.get(model)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached is not None and cached[0] == names:
        order = cached[1]
    else:
        order = _traced(model)
        try:
            _ORDERS[model] = (names, order)
        except TypeError:
            pass
    if order is None:
        warnings.warn(f"weightwatch: the layer order of {type(model).__name__} was not verified (no forward pass "
                      "on a small input succeeded); its layers are read in declaration order, which can differ "
                      "from the order its forward() runs them", LayerOrderWarning, stacklevel=4)
        return modules, False
    rank = {n: i for i, n in enumerate(order)}
    root = [m for m in modules if not m[0]]
    rest = sorted((m for m in modules if m[0]), key=lambda m: (m[0] not in rank, rank.get(m[0], 0)))
    return root + rest, True


def convert(obj, **_options) -> Network:
    if _is_state_dict(obj):
        return _from_state_dict(obj)
    import torch.nn as nn

    out: list = []
    skipped: list = []
    norm: list = []
    dropout: list = []
    modules, verified = forward_order(obj)
    for name, module in modules:
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
                   meta={"skipped": [(n, c) for n, c, _ in skipped], "normalisation": norm, "dropout": dropout,
                         "order": "forward" if verified else "declaration", "ops": _ops(obj), "channels": "first"})


def _ops(model):
    """The leaf modules as :data:`~weightwatch.network.PLAIN_OPS` when the forward pass runs them in order: an
    ``nn.Sequential``, or a LightningModule whose only child is one; None for any other module (its
    ``forward`` may do anything)."""
    import torch.nn as nn

    children = list(model.children())
    if not isinstance(model, nn.Sequential) and mro_modules(model) & {"lightning", "pytorch_lightning"} \
            and len(children) == 1:
        model = children[0]
    if not isinstance(model, nn.Sequential):
        return None
    return tuple(_OPS.get(type(m).__name__, "other") for m in model.modules() if not list(m.children()))


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
