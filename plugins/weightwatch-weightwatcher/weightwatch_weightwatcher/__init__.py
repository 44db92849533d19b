"""WeightWatcher 0.7.x metrics as a weightwatch plugin.

Adds the extractor ``weightwatcher``: the :class:`~weightwatch.network.Network`
is rebuilt as a torch ``nn.Sequential`` of ``Conv1d/2d/3d`` / ``Linear``
modules holding exactly its weights (kernels converted back to the torch
layout), analysed with ``weightwatcher.WeightWatcher(model=...).analyze(...)``,
and reduced to a fixed-length vector of network-level aggregates:

* ``ww.<metric>.mean`` -- mean over the analysed layers of WeightWatcher's
  per-layer ``alpha``, ``alpha_weighted``, ``log_alpha_norm``, ``log_norm``,
  ``log_spectral_norm``, ``stable_rank``, ``entropy`` and ``D`` (KS
  distance of the power-law fit). WeightWatcher's ``-1`` sentinels
  (failed power-law fit, entropy of a 1-eigenvalue ESD) are
  treated as missing, so a failed fit does not drag the mean towards -1;
* ``ww.n_layers`` (weighted layers in the network), ``ww.n_analysed``
  (layers WeightWatcher analysed), ``ww.n_alpha_fit`` (layers whose power-law
  fit succeeded);
* ``ww.summary.<metric>`` -- ``watcher.get_summary()`` verbatim (plain means
  over the analysed layers *including* the ``-1`` sentinels, as WeightWatcher
  itself reports them).

A value that cannot be computed (no layer analysed, every fit failed) is NaN;
a valid network never raises. See the README for the ``analyze`` options.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings

import numpy as np
from weightwatch.features import Extractor
from weightwatch.hookspecs import hookimpl

__all__ = ["weightwatcher_metrics", "weightwatcher_features", "weightwatcher_names", "to_torch",
           "ANALYZE_OPTIONS", "LAYER_METRICS", "SUMMARY_METRICS", "FEATURE_NAMES"]

log = logging.getLogger(__name__)

#: per-layer columns of ``analyze()`` averaged over the analysed layers
LAYER_METRICS = ("alpha", "alpha_weighted", "log_alpha_norm", "log_norm", "log_spectral_norm",
                 "stable_rank", "entropy", "D")
#: columns that only make sense when the power-law fit succeeded
_FIT_METRICS = ("alpha", "alpha_weighted", "log_alpha_norm", "D")
#: columns where WeightWatcher writes -1 for "could not compute"
_SENTINEL_METRICS = ("entropy",)
#: what ``WeightWatcher.get_summary()`` reports in 0.7.7 (its 7th metric, mp_softrank, only
#: exists with mp_fit=True, which is off: it costs ~0.9 s per paper CNN)
SUMMARY_METRICS = ("log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm",
                   "stable_rank")
COUNTS = ("n_layers", "n_analysed", "n_alpha_fit")

FEATURE_NAMES = tuple(
    [f"ww.{m}.mean" for m in LAYER_METRICS]
    + [f"ww.{c}" for c in COUNTS]
    + [f"ww.summary.{m}" for m in SUMMARY_METRICS]
)

#: options passed to ``WeightWatcher.analyze`` (read from weightwatcher 0.7.7's source)
ANALYZE_OPTIONS = dict(
    # A layer is skipped when its number of eigenvalues is < min_evals (default 8).
    # With pool=True (default) a conv layer's kh*kw slices are pooled into one ESD of
    # M*rf eigenvalues (paper CNN: 1x16 slices -> 9 evals, 16x16 -> 144), a dense
    # layer gives M = min(in, out) evals (10 for 16->10). min_evals=1 keeps every
    # layer: the norm metrics exist for any layer; a power-law fit on too few
    # eigenvalues just fails (alpha -> NaN here) instead of the layer being dropped.
    min_evals=1,
    pool=True,
    conv2d_norm=True,      # default: conv evals normalised by the receptive field
    plot=False,            # no ESD plots ...
    savefig=False,         # ... and no ww-img/ directory
    randomize=False,       # no randomised-ESD / correlation-trap analysis (default False)
    mp_fit=False,          # default; the Marchenko-Pastur fit (mp_softrank) costs ~0.9 s per
                           # paper CNN, >100x the rest of the analysis
    vectors=False,         # no eigenvector localisation metrics
    detX=False,
    fix_fingers=False,     # finger fixing is the slow part of the PL fit; off (default)
    fit="PL",              # plain power law (default)
)


_WW = None


def _import_weightwatcher():
    """Import weightwatcher once, undoing its import-time side effects.

    ``weightwatcher.weightwatcher`` calls ``logging.basicConfig(level=INFO)`` (adds
    a handler to the root logger), sets the ``matplotlib`` logger's level and
    prints an SVD-backend notice; the host application's logging is restored.
    """
    global _WW
    if _WW is not None:
        return _WW
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    mpl = logging.getLogger("matplotlib")
    mpl_level = mpl.level
    # RMT_Util logs SVD-backend notices on import, before any handler exists (-> stderr)
    ww_logger = logging.getLogger("weightwatcher")
    ww_level = ww_logger.level
    ww_logger.setLevel(logging.CRITICAL + 1)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import weightwatcher
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
        mpl.setLevel(mpl_level)
        if ww_logger.level == logging.CRITICAL + 1:  # import failed before WW set its own level
            ww_logger.setLevel(ww_level)
    _WW = weightwatcher
    return _WW


@contextlib.contextmanager
def _quiet():
    """Silence weightwatcher's logger, its print()s and numpy warnings."""
    ww_logger = logging.getLogger("weightwatcher")
    rmt_logger = logging.getLogger("RMT_Util")
    saved = (ww_logger.level, ww_logger.propagate, rmt_logger.level)
    ww_logger.setLevel(logging.CRITICAL + 1)
    rmt_logger.setLevel(logging.CRITICAL + 1)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
                np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    finally:
        ww_logger.setLevel(saved[0])
        ww_logger.propagate = saved[1]
        rmt_logger.setLevel(saved[2])


def _param(array):
    import torch

    return torch.nn.Parameter(torch.from_numpy(np.array(array, dtype=np.float32, order="C", copy=True)),
                              requires_grad=False)


def _to_module(layer):
    """One torch module holding ``layer``'s weights, or None if torch has no such layer."""
    import torch
    from torch import nn

    kernel = np.asarray(layer.kernel)
    bias = layer.bias is not None
    if layer.kind == "dense" or kernel.ndim == 2:  # a 2-D conv kernel is a 1x1 conv == dense
        fan_in, units = kernel.reshape(-1, kernel.shape[-1]).shape
        module = nn.utils.skip_init(nn.Linear, fan_in, units, bias=bias)
        module.weight = _param(kernel.reshape(fan_in, units).T)  # (in, out) -> (out, in)
    else:
        spatial = kernel.shape[:-2]
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}.get(len(spatial))
        if conv is None:
            return None
        s = len(spatial)
        c_in, last = kernel.shape[-2], kernel.shape[-1]
        if layer.kind == "depthwise_conv":
            # Keras (*k, in, mult) -> torch (in*mult, 1, *k), groups=in; out channel i*mult+m
            weight = np.transpose(kernel, (s, s + 1) + tuple(range(s))).reshape((c_in * last, 1) + spatial)
            module = nn.utils.skip_init(conv, c_in, c_in * last, spatial, groups=c_in, bias=bias)
        else:
            # Keras (*k, in, out) -> torch (out, in, *k)
            weight = np.transpose(kernel, (s + 1, s) + tuple(range(s)))
            module = nn.utils.skip_init(conv, c_in, last, spatial, bias=bias)
        module.weight = _param(weight)
    if bias:
        module.bias = _param(layer.bias)
    return module


def to_torch(network):
    """The network as a torch ``nn.Sequential`` (one module per weighted layer, no activations).

    Layers torch cannot hold (convolutions with more than 3 spatial axes) are left out.
    """
    from torch import nn

    modules = [m for m in (_to_module(layer) for layer in network) if m is not None]
    return nn.Sequential(*modules)


def _nanmean(values):
    values = np.asarray([v for v in values if v is not None], dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def _column(details, name):
    if name not in details.columns:
        return np.full(len(details), np.nan)
    return np.asarray(details[name].to_numpy(), dtype=np.float64)


def _analyze(network):
    ww = _import_weightwatcher()
    model = to_torch(network)
    if len(model) == 0:
        return None, {}
    with _quiet():
        watcher = ww.WeightWatcher(model=model)
        details = watcher.analyze(**ANALYZE_OPTIONS)
        summary = watcher.get_summary() if len(details) else {}
    return details, summary


def weightwatcher_metrics(network) -> dict:
    """WeightWatcher network-level metrics, ``{feature name: float}`` in :data:`FEATURE_NAMES` order.

    Memoised in ``network.cache`` (when the network has one). NaN for anything
    that cannot be computed; WeightWatcher failures are logged, not raised.
    """
    cache = getattr(network, "cache", None)
    if cache is not None and "weightwatcher" in cache:
        return dict(cache["weightwatcher"])
    out = {name: math.nan for name in FEATURE_NAMES}
    layers = list(network)
    out["ww.n_layers"] = float(len(layers))
    out["ww.n_analysed"] = 0.0
    out["ww.n_alpha_fit"] = 0.0
    details, summary = None, {}
    if layers:
        try:
            details, summary = _analyze(network)
        except Exception as exc:  # WeightWatcher bug on an odd layer: features become NaN
            log.warning("weightwatcher analyze failed on %s: %s: %s",
                        getattr(network, "name", "") or "network", type(exc).__name__, exc)
            details, summary = None, {}
    if details is not None and len(details):
        status = details["status"].astype(str).to_numpy() if "status" in details.columns \
            else np.full(len(details), "success")
        alpha = _column(details, "alpha")
        fit_ok = (status == "success") & np.isfinite(alpha) & (alpha > 0)
        out["ww.n_analysed"] = float(len(details))
        out["ww.n_alpha_fit"] = float(fit_ok.sum())
        for metric in LAYER_METRICS:
            col = _column(details, metric)
            if metric in _FIT_METRICS:
                col = np.where(fit_ok, col, np.nan)
            elif metric in _SENTINEL_METRICS:
                col = np.where(col >= 0, col, np.nan)
            out[f"ww.{metric}.mean"] = _nanmean(col)
    for metric in SUMMARY_METRICS:
        value = summary.get(metric) if summary else None
        try:
            out[f"ww.summary.{metric}"] = float(value) if value is not None else math.nan
        except (TypeError, ValueError):
            out[f"ww.summary.{metric}"] = math.nan
    if cache is not None:
        cache["weightwatcher"] = dict(out)
    return out


def weightwatcher_features(network) -> np.ndarray:
    metrics = weightwatcher_metrics(network)
    return np.array([metrics[name] for name in FEATURE_NAMES], dtype=np.float64)


def weightwatcher_names(network=None) -> list:
    return list(FEATURE_NAMES)


@hookimpl
def register_extractors(register):
    register(Extractor(
        "weightwatcher", weightwatcher_features, weightwatcher_names,
        "WeightWatcher 0.7.x: mean over layers of alpha, alpha_weighted, log norms, stable rank, "
        "entropy, KS distance of the fit; layer counts; WeightWatcher's own get_summary()",
    ))
