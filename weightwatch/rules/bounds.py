"""Interval maths over a network's weights: sound bounds of every unit for a box of inputs, and norms.

Shared by the built-in rules (:mod:`weightwatch.rules.builtin`) and the
monitor. Results are memoised in ``network.cache``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..network import Network

__all__ = ["RELU_FAMILY", "LayerBounds", "interval_bounds", "is_relu_network", "total_l2_norm"]


#: Activations after which a unit whose pre-activation is never positive outputs exactly 0.
RELU_FAMILY = ("relu", "relu6")


def is_relu_network(network: Network) -> bool:
    """True when some hidden layer is followed by a ReLU(-6)."""
    return any((layer.activation or "").lower() in RELU_FAMILY for layer in network.layers[:-1])


def total_l2_norm(network: Network) -> float:
    """Euclidean norm of all parameters (memoised in ``network.cache``)."""
    cached = network.cache.get("l2_norm")
    if cached is None:
        sq = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for t in network.tensors():
                flat = t.reshape(-1)
                sq += float(np.dot(flat, flat))
        cached = float(np.sqrt(sq))
        network.cache["l2_norm"] = cached
    return cached


def _activation_interval(name, lo: np.ndarray, hi: np.ndarray):
    """Sound output interval of an elementwise activation over ``[lo, hi]``, or None if unknown."""
    a = (name or "").lower()
    if a == "relu":
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    if a == "relu6":
        return np.clip(lo, 0.0, 6.0), np.clip(hi, 0.0, 6.0)
    if a == "tanh":
        return np.tanh(lo), np.tanh(hi)
    if a in ("sigmoid", "hard_sigmoid"):
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-lo)), 1.0 / (1.0 + np.exp(-hi))
    if a == "softplus":
        return np.logaddexp(0.0, lo), np.logaddexp(0.0, hi)
    if a in ("elu", "leaky_relu", "prelu"):
        # monotone, identity above 0 and x <= f(x) <= 0 below for slopes in [0, 1] (elu: f >= -1)
        low = np.where(lo < 0, np.maximum(lo, -1.0) if a == "elu" else lo, lo)
        return low, np.where(hi > 0, hi, 0.0)
    if a in ("gelu", "silu", "swish"):
        # x <= f(x) and f(x) >= -0.2785 for x < 0; f(x) <= max(x, 0)
        return np.where(lo < 0, np.maximum(lo, -0.2785), 0.0), np.maximum(hi, 0.0)
    if a in ("softmax",):
        return np.zeros_like(lo), np.ones_like(hi)
    return None


@dataclass(frozen=True)
class LayerBounds:
    """Interval bounds of one layer's pre-activations (one entry per output unit) and outputs."""

    name: str
    activation: Optional[str]
    pre_lo: np.ndarray
    pre_hi: np.ndarray
    out_lo: Optional[np.ndarray]  # None when the activation is unknown
    out_hi: Optional[np.ndarray]

    @property
    def dead(self) -> np.ndarray:
        """Units that provably never output anything but 0 (ReLU-family, pre-activation <= 0)."""
        if (self.activation or "").lower() not in RELU_FAMILY:
            return np.zeros(self.pre_hi.shape, bool)
        return self.pre_hi <= 0.0


def _unit_bounds(kernel: np.ndarray, bias, lo: np.ndarray, hi: np.ndarray, depthwise: bool = False):
    """Pre-activation bounds per output unit; ``lo``/``hi`` are per input channel.

    Every kernel tap is assumed to see any value of its channel's interval
    (exact for "valid" convolutions; zero padding is covered because the
    callers widen intervals to include 0 for convolutions).
    """
    k = np.asarray(kernel, np.float64)
    if depthwise:  # (*spatial, in, mult) -> unit (c, m)
        kk = k.reshape(-1, k.shape[-2], k.shape[-1])
        pos, neg = np.clip(kk, 0, None), np.clip(kk, None, 0)
        up = (pos * hi[None, :, None] + neg * lo[None, :, None]).sum(0).reshape(-1)
        down = (pos * lo[None, :, None] + neg * hi[None, :, None]).sum(0).reshape(-1)
    else:
        kk = k.reshape(-1, k.shape[-2], k.shape[-1])
        pos, neg = np.clip(kk, 0, None).sum(0), np.clip(kk, None, 0).sum(0)  # (in, out)
        up = hi @ pos + lo @ neg
        down = lo @ pos + hi @ neg
    if bias is not None:
        b = np.asarray(bias, np.float64)
        up, down = up + b, down + b
    return down, up


def interval_bounds(network: Network, input_range=(-1.0, 1.0)) -> list:
    """Propagate an input box through a plain feed-forward chain of layers.

    Sound for networks made only of the listed conv/dense layers, elementwise
    activations, dropout, pooling (average/max/global) and flatten, in order:
    pooling keeps each channel's interval, so spatial sizes need not be known.
    Propagation stops (the returned list is shorter than the network) at the
    first layer whose input cannot be matched to the previous layer's outputs
    or whose activation is unknown.

    Parameters
    ----------
    network : Network
    input_range : (lo, hi)
        Scalars, or per-input-channel arrays.

    Returns
    -------
    list of LayerBounds
        One per layer reached, in order.
    """
    if "interval_bounds" in network.cache and network.cache.get("interval_bounds_range") == repr(input_range):
        return network.cache["interval_bounds"]
    out: list = []
    if not len(network):
        return out
    first = network[0]
    n_in = first.kernel.shape[-2] if first.kind != "dense" else first.kernel.shape[0]
    lo = np.broadcast_to(np.asarray(input_range[0], np.float64), (n_in,)).copy() if np.ndim(input_range[0]) == 0 \
        else np.asarray(input_range[0], np.float64)
    hi = np.broadcast_to(np.asarray(input_range[1], np.float64), (n_in,)).copy() if np.ndim(input_range[1]) == 0 \
        else np.asarray(input_range[1], np.float64)
    if lo.shape != (n_in,) or hi.shape != (n_in,) or np.any(lo > hi):
        return out
    for i, layer in enumerate(network.layers):
        k = layer.kernel
        need = k.shape[0] if layer.kind == "dense" else k.shape[-2]
        if lo.shape[0] != need:
            if layer.kind == "dense" and need % lo.shape[0] == 0:  # channels-last flatten
                lo, hi = np.tile(lo, need // lo.shape[0]), np.tile(hi, need // hi.shape[0])
            else:
                break
        if layer.kind != "dense":  # zero padding may feed 0 to any tap
            lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            pre_lo, pre_hi = _unit_bounds(k, layer.bias, lo, hi, depthwise=layer.kind == "depthwise_conv")
        if not (np.isfinite(pre_lo).all() and np.isfinite(pre_hi).all()):
            break
        is_last = i == len(network) - 1
        post = None if layer.activation is None else _activation_interval(layer.activation, pre_lo, pre_hi)
        out.append(LayerBounds(layer.name, layer.activation, pre_lo, pre_hi,
                               None if post is None else post[0], None if post is None else post[1]))
        if post is None and not is_last:
            break  # unknown (or linear-but-maybe-normalised) activation: stop, stay sound
        if post is not None:
            lo, hi = post
    network.cache["interval_bounds"] = out
    network.cache["interval_bounds_range"] = repr(input_range)
    return out
