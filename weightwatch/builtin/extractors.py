"""Built-in feature extractors (the paper's feature sets and an architecture-agnostic one)."""

from __future__ import annotations

import numpy as np

from ..features import (Extractor, agnostic_from_wl, layer_stat_names, layer_stats, normalisation_names,
                        normalisation_summary, parametric_extractor)
from ..hookspecs import hookimpl
from ..stats import STAT_NAMES, TENSORS, tensor_stats


def _flat(net):
    net.require_layers(1)
    return net.flat(np.float64)


def _flat_names(net):
    out = []
    for i, layer in enumerate(net):
        out += [f"l{i}.kernel.{j}" for j in range(layer.kernel.size)]
        if layer.bias is not None:
            out += [f"l{i}.bias.{j}" for j in range(layer.bias.size)]
    return out


def _norms(order):
    def compute(net):
        net.require_layers(1)
        out = []
        for layer in net:
            out.append(float(np.linalg.norm(layer.kernel.ravel(), order)))
            out.append(float(np.linalg.norm(layer.bias, order)) if layer.bias is not None else np.nan)
        return np.array(out)

    def names(net):
        return [f"l{i}.{part}.l{order}" for i in range(len(net)) for part in TENSORS]

    return compute, names


def _global(net):
    net.require_layers(1)
    return tensor_stats(net.flat())


def _agnostic(net):
    return agnostic_from_wl(layer_stats(net).reshape(1, -1), net.n_params)[0]


def _agnostic_names(net):
    per = [f"{part}.{s}" for part in TENSORS for s in STAT_NAMES]
    return (
        [f"first.{p}" for p in per]
        + [f"last.{p}" for p in per]
        + [f"middle_mean.{p}" for p in per]
        + [f"middle_std.{p}" for p in per]
        + ["depth", "log10_params"]
    )


def _agnostic_bn(net):
    norm = [tensors for _, tensors in net.meta.get("normalisation", ())]
    return np.concatenate([_agnostic(net), normalisation_summary(norm)[0]])


def _all_stats(net):
    return layer_stats(net).reshape(-1)


EXTRACTORS = [
    Extractor("W", _flat, _flat_names, "all weights, flattened (kernel then bias per layer)"),
    Extractor("W_L", _all_stats, lambda net: layer_stat_names(range(len(net))),
              "per layer: mean, var, 0/25/50/75/100th percentiles of kernel and of bias"),
    Extractor("W-global", _global, lambda net: [f"global.{s}" for s in STAT_NAMES],
              "the 7 statistics of the whole flattened weight vector"),
    Extractor("W_L-l1", *_norms(1), "per layer l1 norms of kernel and bias"),
    Extractor("W_L-l2", *_norms(2), "per layer l2 norms of kernel and bias"),
    Extractor("W_L-agnostic", _agnostic, _agnostic_names,
              "any depth: first and last layer statistics, mean/std of middle layers', depth, log10 size"),
    Extractor("W_L-agnostic-bn", _agnostic_bn, lambda net: _agnostic_names(net) + normalisation_names(),
              "W_L-agnostic, then the first and last BatchNorm layers' gamma, beta, moving mean and log10 moving "
              "variance (mean, std, median, min, max; NaN without BatchNorm)"),
] + [parametric_extractor(n) for n in ("W^1", "W^2", "W^3", "W^4", "W_L^4", "W_L^{1,4}")]


@hookimpl
def register_extractors(register):
    for extractor in EXTRACTORS:
        register(extractor)
