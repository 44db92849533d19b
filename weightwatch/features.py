"""Feature extractors: from a :class:`Network` to a fixed-length vector.

Extractors are registered through the ``register_extractors`` hook (the
built-ins in :mod:`weightwatch.builtin.extractors`). Names follow the paper:

=============  ==============================================================
``W``          all weights, flattened (per layer: kernel, then bias)
``W^l``        the weights of layer ``l`` (1-based), e.g. ``W^1``
``W_L``        per layer, 7 statistics of the kernel then 7 of the bias
``W_L^l``      ``W_L`` restricted to layers, e.g. ``W_L^4``, ``W_L^{1,4}``
``W-global``   7 statistics of the whole flattened vector
``W_L-l1/l2``  per layer l1 / l2 norm of the kernel and of the bias
``W_L-agnostic``  fixed length for any depth: first and last layer
               statistics, mean and std of the middle layers', depth, size
=============  ==============================================================

Statistics: mean, variance, 0/25/50/75/100th percentiles (see
:mod:`weightwatch.stats`). A layer without bias gets NaN bias statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .errors import InvalidArgumentError
from .network import NORM_TENSORS, Network, WeightsError
from .stats import N_STATS, PER_LAYER, STAT_NAMES, TENSORS, many_tensor_stats, row_stats


@dataclass(frozen=True)
class Extractor:
    """A named feature extractor.

    Parameters
    ----------
    name : str
        Key users pass (``"W_L"``).
    compute : callable(Network) -> 1-D ndarray
    names : callable(Network) -> list of str
        Stable feature names, same length as ``compute``'s output.
    description : str
    """

    name: str
    compute: Callable[[Network], np.ndarray]
    names: Callable[[Network], list]
    description: str = ""

    def __call__(self, network: Network) -> np.ndarray:
        return np.asarray(self.compute(network), dtype=np.float64)

    def feature_names(self, network: Network) -> list:
        return list(self.names(network))


def wl_rows(layers: Sequence[Mapping], rows: int = 1, n_jobs=None) -> np.ndarray:
    """W_L of ``rows`` networks of one layout, shape ``(rows, len(layers) * PER_LAYER)``: the one W_L computation.

    ``layers``: per conv/dense layer in forward order, ``{"kernel": array, "bias": array or None}``, each
    tensor holding one row per network (shape ``(rows, size)``; any shape when ``rows`` is 1). Per layer, the
    seven statistics of the kernel, then of the bias (NaN without one), as
    :func:`~weightwatch.stats.row_stats` computes them in float64: the numbers the feature tables, and so
    the shipped predictors, were built from. One network (``rows`` 1) spreads its tensors over ``n_jobs``
    threads (:func:`~weightwatch.stats.many_tensor_stats`, the same numbers bit for bit); many networks are
    vectorised over rows (zoos, :meth:`weightwatch.zoo.storage.Zoo.features`).
    """
    tensors, where = [], []
    for i, layer in enumerate(layers):
        for j, part in enumerate(TENSORS):
            t = layer.get(part)
            if t is not None:
                tensors.append(t)
                where.append((i, j))
    if rows == 1:
        stats = many_tensor_stats(tensors, n_jobs=n_jobs)[:, None, :]
    else:
        stats = [row_stats(np.asarray(t).reshape(rows, -1)) for t in tensors]
    out = np.full((rows, len(layers), len(TENSORS), N_STATS), np.nan)
    for (i, j), block in zip(where, stats):
        out[:, i, j] = block
    return out.reshape(rows, -1)


def layer_stats(network: Network, n_jobs=None) -> np.ndarray:
    """:func:`wl_rows` of one network, shape ``(n_layers, 2, 7)`` (kernel, bias); memoised per network."""
    cached = network.cache.get("layer_stats")
    if cached is not None:
        return cached
    network.require_layers(1)
    out = wl_rows([{"kernel": layer.kernel, "bias": layer.bias} for layer in network.layers], 1, n_jobs)
    out = out.reshape(len(network), len(TENSORS), N_STATS)
    out.setflags(write=False)
    network.cache["layer_stats"] = out
    return out


def agnostic_from_wl(wl, n_params) -> np.ndarray:
    """W_L-agnostic rows from W_L rows of any depth, shape ``(rows, 4 * PER_LAYER + 2)``.

    Per row: the first layer's and the last layer's 14 statistics, the mean
    and the std over the middle layers' (NaN when there are none), the depth,
    and log10 of the parameter count. One definition for the extractor and
    for feature tables.
    """
    wl = np.atleast_2d(np.asarray(wl, dtype=np.float64))
    if wl.shape[1] == 0 or wl.shape[1] % PER_LAYER:
        raise WeightsError(f"W_L rows must hold {PER_LAYER} numbers per layer, got {wl.shape[1]}")
    n_layers = wl.shape[1] // PER_LAYER
    s = wl.reshape(len(wl), n_layers, PER_LAYER)
    if n_layers > 2:
        mid_mean, mid_std = s[:, 1:-1].mean(1), s[:, 1:-1].std(1)
    else:
        mid_mean = mid_std = np.full((len(wl), PER_LAYER), np.nan)
    extra = np.column_stack([np.full(len(wl), n_layers), np.full(len(wl), np.log10(max(int(n_params), 1)))])
    return np.hstack([s[:, 0], s[:, -1], mid_mean, mid_std, extra])


#: Statistics of each normalisation tensor in :func:`normalisation_summary`.
NORM_STATS = ("mean", "std", "median", "min", "max")


def normalisation_summary(layers: Sequence[dict], rows: int = 1) -> np.ndarray:
    """Features of a network's BatchNorm layers, shape ``(rows, 40)``: for the first and the last of them,
    mean, std, median, min and max of gamma, beta, the moving mean and log10 of the moving variance.

    ``layers``: per BatchNorm layer in forward order, ``{tensor: array (rows, units)}`` (the tensors of
    :data:`~weightwatch.network.NORM_TENSORS`; a missing one gives NaN, as does a network without any).
    One definition for the extractor and for feature tables.
    """
    out = np.full((rows, len(normalisation_names())), np.nan)
    if not layers:
        return out
    cols = []
    for layer in (layers[0], layers[-1]):
        for t in NORM_TENSORS:
            v = layer.get(t)
            if v is None:
                cols.append(np.full((rows, len(NORM_STATS)), np.nan))
                continue
            v = np.asarray(v, np.float64).reshape(rows, -1)
            if t == "moving_variance":
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.log10(np.maximum(v, 1e-30))
            cols.append(np.column_stack([v.mean(1), v.std(1), np.median(v, 1), v.min(1), v.max(1)]))
    return np.hstack(cols)


def normalisation_names() -> list:
    return [f"bn.{which}.{t}.{s}" for which in ("first", "last") for t in NORM_TENSORS for s in NORM_STATS]


def layer_stat_names(indices: Sequence[int]) -> list:
    return [f"l{i}.{part}.{stat}" for i in indices for part in TENSORS for stat in STAT_NAMES]


def _check_layers(network: Network, indices: Sequence[int], what: str) -> None:
    for i in indices:
        if not 0 <= i < len(network):
            raise WeightsError(
                f"feature set {what} needs layer {i + 1} but the network has {len(network)} weighted layers"
            )


def stats_of_layers(indices: Sequence[int]) -> tuple:
    """(compute, names) for ``W_L`` restricted to 0-based layer ``indices``."""

    def compute(net):
        _check_layers(net, indices, "W_L^" + ",".join(str(i + 1) for i in indices))
        return layer_stats(net)[list(indices)].reshape(-1)

    return compute, lambda net: layer_stat_names(indices)


def layer_weights(index: int) -> tuple:
    """(compute, names) for ``W^l`` (0-based ``index``)."""

    def compute(net):
        _check_layers(net, [index], f"W^{index + 1}")
        layer = net[index]
        parts = [layer.kernel.ravel()] + ([layer.bias] if layer.bias is not None else [])
        return np.concatenate(parts)

    def names(net):
        _check_layers(net, [index], f"W^{index + 1}")
        layer = net[index]
        out = [f"l{index}.kernel.{j}" for j in range(layer.kernel.size)]
        if layer.bias is not None:
            out += [f"l{index}.bias.{j}" for j in range(layer.bias.size)]
        return out

    return compute, names


_W_LAYER = re.compile(r"^W\^\{?(\d+)\}?$")
_W_L_LAYERS = re.compile(r"^W_L\^\{?(\d+(?:\s*,\s*\d+)*)\}?$")


def parametric_extractor(name: str):
    """Build ``W^l`` / ``W_L^{...}`` extractors for any layer numbers, or None."""
    m = _W_LAYER.match(name)
    if m:
        index = int(m.group(1)) - 1
        if index < 0:
            raise ValueError(f"feature set {name!r}: layers are numbered from 1")
        compute, names = layer_weights(index)
        return Extractor(name, compute, names, f"weights of layer {index + 1}, flattened")
    m = _W_L_LAYERS.match(name)
    if m:
        indices = [int(v) - 1 for v in m.group(1).split(",")]
        if min(indices) < 0:
            raise ValueError(f"feature set {name!r}: layers are numbered from 1")
        compute, names = stats_of_layers(indices)
        return Extractor(name, compute, names, f"statistics of layers {m.group(1)}")
    return None


def get_extractor(name) -> Extractor:
    """The registered extractor called ``name`` (or a ``W^l`` / ``W_L^{..}`` variant)."""
    if isinstance(name, Extractor):
        return name
    from .plugins import UnknownNameError, get_registry

    table = get_registry().entries("extractors")
    if name in table:
        return table[name].obj
    built = parametric_extractor(str(name))
    if built is not None:
        return built
    raise UnknownNameError(
        f"no feature set named {name!r}; registered: {', '.join(sorted(table))} "
        "(plus W^l and W_L^{i,j} for any layer numbers)"
    )


def extract(model, features="W_L", **adapter_options) -> np.ndarray:
    """Feature vector of one model (Keras model, torch module, FlatWeights or Network)."""
    from .adapters import to_network

    return get_extractor(features)(to_network(model, **adapter_options))


def feature_names(model, features="W_L") -> list:
    from .adapters import to_network

    return get_extractor(features).feature_names(to_network(model))


def extract_matrix(models: Sequence, features="W_L") -> tuple:
    """Feature matrix ``(n_models, n_features)`` and the feature names.

    Raises a ValueError when the models do not share one set of feature names
    (e.g. different depths for ``W_L``).
    """
    from .adapters import to_network

    extractor = get_extractor(features)
    rows, names = [], None
    for i, model in enumerate(models):
        net = to_network(model)
        these = extractor.feature_names(net)
        if names is None:
            names = these
        elif these != names:
            raise ValueError(
                f"model {i} gives {len(these)} {extractor.name} features named differently from model 0's "
                f"{len(names)}; use an architecture-agnostic feature set (W_L-agnostic) to mix families"
            )
        rows.append(extractor(net))
    if not rows:
        raise InvalidArgumentError("extract_matrix needs at least one model, got none")
    return np.vstack(rows), names
