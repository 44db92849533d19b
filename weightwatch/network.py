"""Framework-neutral view of a network's weights.

Every adapter (Keras, torch, flat vector + layout) turns its input into a
:class:`Network`: an ordered tuple of :class:`LayerWeights` in forward order,
kernels in one canonical layout (Keras's):

* convolution ``(*spatial, in_channels, out_channels)``, e.g. ``(kh, kw, in, out)``;
* depthwise convolution ``(*spatial, in_channels, depth_multiplier)``;
* dense ``(in_features, out_features)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np

KINDS = ("conv", "depthwise_conv", "dense")

#: The neutral description of a model's layers an adapter records in ``Network.meta["ops"]``: one op per leaf
#: layer in forward order. These are the ops the interval-bound rules see through (weighted, or the identity,
#: per-channel or elementwise at inference); an adapter names any other layer ``"other"``.
PLAIN_OPS = frozenset({"conv", "dense", "input", "identity", "dropout", "pool", "flatten", "activation"})

from .errors import NonFiniteWeightsError, WeightsError


def _as_array(value, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # e.g. ragged lists
        raise WeightsError(f"{what}: cannot be read as an array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise WeightsError(f"{what}: expected real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind in "iu" or arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class LayerWeights:
    """One weighted layer.

    Parameters
    ----------
    name : str
        Layer name as the framework calls it.
    kind : {"conv", "depthwise_conv", "dense"}
    kernel : ndarray
        Kernel in the canonical (Keras) layout, read-only.
    bias : ndarray or None
        Bias vector, or None when the layer has no bias.
    activation : str or None
        Name of the activation that follows the layer, when known.
    """

    name: str
    kind: str
    kernel: np.ndarray
    bias: Optional[np.ndarray] = None
    activation: Optional[str] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise WeightsError(f"layer {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        kernel = _as_array(self.kernel, f"layer {self.name!r} kernel")
        if kernel.ndim < 2:
            raise WeightsError(
                f"layer {self.name!r}: kernel must have at least 2 dimensions (in, out), got shape {kernel.shape}"
            )
        if self.kind == "dense" and kernel.ndim != 2:
            raise WeightsError(f"layer {self.name!r}: dense kernel must be 2-D (in, out), got shape {kernel.shape}")
        if kernel.size == 0:
            raise WeightsError(f"layer {self.name!r}: kernel is empty (shape {kernel.shape})")
        object.__setattr__(self, "kernel", kernel)
        if self.bias is not None:
            bias = _as_array(self.bias, f"layer {self.name!r} bias")
            if bias.ndim != 1:
                raise WeightsError(f"layer {self.name!r}: bias must be 1-D, got shape {bias.shape}")
            n_out = kernel.shape[-1] * (kernel.shape[-2] if self.kind == "depthwise_conv" else 1)
            if bias.shape[0] != n_out:
                raise WeightsError(
                    f"layer {self.name!r}: bias has {bias.shape[0]} entries but the kernel "
                    f"{kernel.shape} has {n_out} outputs"
                )
            object.__setattr__(self, "bias", bias)

    @property
    def n_params(self) -> int:
        return int(self.kernel.size + (0 if self.bias is None else self.bias.size))

    @property
    def units(self) -> int:
        """Number of output units (filters) of the layer."""
        if self.kind == "depthwise_conv":
            return int(self.kernel.shape[-1] * self.kernel.shape[-2])
        return int(self.kernel.shape[-1])

    def __repr__(self) -> str:
        bias = "no bias" if self.bias is None else f"bias {self.bias.shape}"
        return f"LayerWeights({self.name!r}, {self.kind}, kernel {self.kernel.shape}, {bias}, {self.activation})"


#: A BatchNormalization layer's tensors, in Keras ``get_weights()`` order. Adapters skip normalisation layers
#: (they are not :class:`LayerWeights`) but keep these, per layer in forward order, in
#: ``Network.meta["normalisation"]`` as ``[(name, {tensor: 1-D array})]`` (torch's ``weight``, ``bias``,
#: ``running_mean``, ``running_var`` under these names).
NORM_TENSORS = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass(frozen=True)
class Network:
    """Ordered, immutable collection of :class:`LayerWeights` (forward order).

    ``meta["skipped"]``: ``[(name, class name)]`` of the layers with weights an adapter skipped;
    ``meta["normalisation"]``: the tensors of the BatchNorm layers among them (see :data:`NORM_TENSORS`);
    ``meta["ops"]``: the adapter's description of the forward pass (see :func:`is_plain_chain`);
    ``meta["channels"]``: ``"first"`` when the framework flattens feature maps channels-first (torch).
    """

    layers: tuple = ()
    source: str = "unknown"
    name: str = ""
    meta: dict = field(default_factory=dict, compare=False)
    # per-instance memo of derived values (layer statistics), never compared
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if isinstance(self.layers, (str, bytes)) or not hasattr(self.layers, "__iter__"):
            raise WeightsError(f"Network layers must be a sequence of LayerWeights, got {type(self.layers).__name__}")
        layers = tuple(self.layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, LayerWeights):
                raise WeightsError(f"Network layer {i} is {type(layer).__name__}, expected LayerWeights")
        object.__setattr__(self, "layers", layers)

    def __iter__(self) -> Iterator[LayerWeights]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    def tensors(self) -> list:
        """Kernels and biases in order: kernel, bias of layer 0, kernel, bias of layer 1, ..."""
        out = []
        for layer in self.layers:
            out.append(layer.kernel)
            if layer.bias is not None:
                out.append(layer.bias)
        return out

    def flat(self, dtype=np.float32) -> np.ndarray:
        """All parameters in one vector (per layer: kernel in C order, then bias)."""
        return np.concatenate([t.ravel().astype(dtype, copy=False) for t in self.tensors()]) if self.layers else np.zeros(0, dtype)

    def signature(self) -> tuple:
        """(kind, kernel shape, has bias) per layer: two networks of one family share it."""
        return tuple((l.kind, l.kernel.shape, l.bias is not None) for l in self.layers)

    def with_layers(self, layers: Sequence[LayerWeights]) -> "Network":
        return Network(tuple(layers), source=self.source, name=self.name, meta=dict(self.meta))

    def non_finite_tensors(self) -> list:
        """``'layer/kernel (2 NaN, 1 inf)'`` for each tensor holding NaN or inf, in forward order (memoised)."""
        cached = self.cache.get("non_finite")
        if cached is not None:
            return list(cached)
        bad = []
        for layer in self.layers:
            for part, arr in (("kernel", layer.kernel), ("bias", layer.bias)):
                if arr is None or np.isfinite(arr).all():
                    continue
                n_nan = int(np.isnan(arr).sum())
                n_inf = int(np.isinf(arr).sum())
                counts = ", ".join(f"{n} {what}" for n, what in ((n_nan, "NaN"), (n_inf, "inf")) if n)
                bad.append(f"{layer.name}/{part} ({counts})")
        self.cache["non_finite"] = tuple(bad)
        return bad

    def check_finite(self) -> None:
        """Raise :class:`~weightwatch.errors.NonFiniteWeightsError` naming every tensor with NaN or inf."""
        bad = self.non_finite_tensors()
        if bad:
            what = self.meta.get("path") or self.name or "the network"
            raise NonFiniteWeightsError(
                f"{what}: non-finite weights in {', '.join(bad)}; an accuracy predicted from NaN/inf weights "
                "would be meaningless (the training run has diverged)")

    def require_layers(self, minimum: int = 1) -> None:
        if len(self.layers) < minimum:
            raise WeightsError(
                f"network {self.name or '(unnamed)'} from {self.source} has {len(self.layers)} weighted "
                f"layers; at least {minimum} needed"
            )


def is_plain_chain(network: Network) -> bool:
    """True when the interval-bound rules are sound for ``network``: a chain of layers they see through, each
    reading the previous one's outputs. The one definition of a plain chain (the rules, the callbacks,
    ``is_plain_keras_chain``, ``is_plain_torch_chain``).

    ``network.meta["ops"]``, written by the adapter that read the model, decides first: absent (flat weights, a
    state dict, a Network built by hand), only the widths below are checked; None (a forward pass the adapter
    cannot know: a subclassed Keras model, a torch module that is not an ``nn.Sequential``) or an op outside
    :data:`PLAIN_OPS`: not plain. Then each dense layer must read the previous layer's outputs, directly or
    through a channels-last flatten of a feature map (not torch's channels-first one); a layer without a
    description also needs the width of a convolution's input to match.
    """
    ops = network.meta.get("ops", ())
    described = "ops" in network.meta
    if described and (not ops or any(op not in PLAIN_OPS for op in ops)):
        return False
    channels_last = network.meta.get("channels", "last") == "last"
    for prev, layer in zip(network.layers, network.layers[1:]):
        need = layer.kernel.shape[0] if layer.kind == "dense" else layer.kernel.shape[-2]
        if need == prev.units or (described and layer.kind != "dense"):
            continue  # a described convolution was wired by its framework (a grouped one reads a slice)
        if layer.kind == "dense" and prev.kind != "dense" and channels_last and need % prev.units == 0:
            continue  # a channels-last flatten of a feature map
        return False
    return True
