"""What a callback knows about a run at a check: the evidence the verdict models read.

One row of numbers per check, the same for any architecture (Dense, Conv,
BatchNorm; any depth and width), optimizer and batch size:

* the weights now: ``W_L-agnostic-bn`` (first and last layer statistics, the
  middle layers' mean and spread, depth, size, the BatchNorm layers' scale,
  shift and moving statistics);
* how far the weights moved: since the start and since the last check, per
  epoch, relative to their size (``move.*``), and the norm's growth;
* the dying-ReLU signature counted per layer (``dead.*``): the share of hidden
  layers whose every bias is negative, the share of hidden units with a
  negative bias, and of units whose bias outweighs their whole kernel
  (``b + |w|_1 < 0``: dead for every input in [-1, 1]);
* what the framework logs about training (``log.*``): the loss compared with
  chance's ``ln k`` and the accuracy's lift over chance ``1/k`` (NaN when not
  logged);
* the run's setup: ``log10`` of the learning rate, the optimizer's kind
  (one-hot over :data:`OPTIMIZER_KINDS`), the largest dropout rate;
* progress: ``epoch / epochs`` of the configured run, and the epoch;
* what the logged loss and accuracy did over the run's checks so far
  (``trend.*``, kept by a :class:`LogTrend` per run): their change per epoch
  since the last check, the best accuracy lift so far and how far the loss is
  above its best. A run that sits at chance but whose loss creeps down is not
  a run whose loss is flat.

Nothing here counts optimizer steps: at equal progress, a row does not
depend on the batch size except through the weights and logs themselves.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

from .network import Network
from .runs import DEFAULT_NUM_CLASSES

__all__ = ["OPTIMIZER_KINDS", "names", "vector", "logged_metrics", "WEIGHT_FEATURES", "LogTrend", "TREND"]

#: The optimizer kinds the verdict models know (names as the zoo's; anything else is "other").
OPTIMIZER_KINDS = ("adam", "sgd", "sgd_momentum", "rmsprop")
#: The feature set describing the weights now (architecture-agnostic, BatchNorm included).
WEIGHT_FEATURES = "W_L-agnostic-bn"

_MOVE = ("move.start", "move.start.first", "move.start.last", "move.rate", "move.rate.last", "norm.log10",
         "norm.growth")
_DEAD = ("dead.layers_all_negative", "dead.units_negative", "dead.units_outweighed")
_LOG = ("log.loss_ratio", "log.accuracy_lift")
_SETUP = ("setup.log10_learning_rate", *(f"setup.optimizer={k}" for k in OPTIMIZER_KINDS), "setup.dropout")
_PROGRESS = ("progress", "epoch", "log10_classes")
#: What the logs did over the run so far (:class:`LogTrend`): the last block of a row.
TREND = ("trend.log_loss_per_epoch", "trend.accuracy_lift_per_epoch", "trend.best_accuracy_lift",
         "trend.log_loss_above_best")

#: Keys a framework may log the training loss / accuracy under (Keras' names first; Lightning's are the user's,
#: these are the common ones, with or without Lightning's ``_epoch`` suffix).
LOSS_KEYS = ("loss", "train_loss", "training_loss")
ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
                 "train_accuracy", "train_acc", "training_accuracy")


def names(weight_names: Sequence[str]) -> list:
    """Feature names of a row: the weight features' names, then the rest."""
    return [*map(str, weight_names), *_MOVE, *_DEAD, *_LOG, *_SETUP, *_PROGRESS, *TREND]


class LogTrend:
    """What a run's logged loss and accuracy did over its checks so far: one per run, fed check after check.

    :meth:`update` takes the check's ``log.loss_ratio`` and ``log.accuracy_lift`` (NaN when not logged) and
    its epoch, and returns the :data:`TREND` values: the change of ``ln(loss ratio)`` and of the accuracy lift
    per epoch since the last check with logs (NaN at the first), the best accuracy lift so far, and how far
    ``ln(loss ratio)`` is above its lowest so far. The callbacks' :class:`~weightwatch.verdict_models.Judge`
    and the calibration tables (:func:`weightwatch.experiments.evidence_tables.with_trend`) use this one class.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._last = None  # (epoch, ln loss ratio, lift) at the last check with logs
        self._best_lift = -math.inf
        self._best_loss = math.inf

    def update(self, loss_ratio: float, accuracy_lift: float, epoch: float) -> list:
        nan = float("nan")
        ln = math.log(max(float(loss_ratio), 1e-6)) if math.isfinite(loss_ratio) else nan
        lift = float(accuracy_lift) if math.isfinite(accuracy_lift) else nan
        per_loss = per_lift = nan
        if self._last is not None:
            then, ln0, lift0 = self._last
            gap = float(epoch) - then if math.isfinite(epoch) and float(epoch) > then else 1.0
            per_loss = (ln - ln0) / gap if math.isfinite(ln) and math.isfinite(ln0) else nan
            per_lift = (lift - lift0) / gap if math.isfinite(lift) and math.isfinite(lift0) else nan
        if math.isfinite(lift):
            self._best_lift = max(self._best_lift, lift)
        if math.isfinite(ln):
            self._best_loss = min(self._best_loss, ln)
        if math.isfinite(ln) or math.isfinite(lift):
            self._last = (float(epoch) if math.isfinite(epoch) else 0.0, ln, lift)
        return [per_loss, per_lift, self._best_lift if math.isfinite(self._best_lift) else nan,
                ln - self._best_loss if math.isfinite(ln) else nan]


def _get(logs: Mapping, keys) -> Optional[float]:
    for key in keys:
        for k in (key, f"{key}_epoch"):
            if k in logs:
                try:
                    v = float(np.asarray(logs[k], dtype=np.float64))
                except (TypeError, ValueError):
                    continue
                return v
    return None


def logged_metrics(logs: Optional[Mapping]) -> tuple:
    """``(loss, accuracy)`` from a framework's logs (Keras ``logs``, Lightning's logged metrics), None each when
    absent."""
    if not logs:
        return None, None
    return _get(logs, LOSS_KEYS), _get(logs, ACCURACY_KEYS)


def _params(net: Network) -> list:
    return [t for layer in net.layers for t in ((layer.kernel, layer.bias) if layer.bias is not None
                                                 else (layer.kernel,))]


def _size(net: Network) -> float:
    """``|W|`` of the conv and dense tensors, in float64 (the tables' precision), memoised in ``net.cache``: the
    start of a run is compared with at every check."""
    cached = net.cache.get("evidence.l2_norm")
    if cached is None:
        cached = net.cache["evidence.l2_norm"] = _norm(_params(net))
    return cached


def _norm(arrays) -> float:
    return math.sqrt(sum(float(np.dot(a.ravel().astype(np.float64), a.ravel().astype(np.float64)))
                         for a in arrays))


def _moved(now: Network, then: Optional[Network], layers=None) -> float:
    """``|W_now - W_then| / |W_then|`` over the conv and dense tensors (all layers, or the given ones)."""
    if then is None or then.signature() != now.signature():
        return float("nan")
    idx = range(len(now.layers)) if layers is None else layers
    diff, base = [], []
    for i in idx:
        a, b = now.layers[i], then.layers[i]
        diff.append(np.asarray(a.kernel, np.float64) - b.kernel)
        base.append(b.kernel)
        if a.bias is not None and b.bias is not None:
            diff.append(np.asarray(a.bias, np.float64) - b.bias)
            base.append(b.bias)
    size = _size(then) if layers is None else _norm(base)
    return _norm(diff) / size if size > 0 else float("nan")


def _dead(net: Network) -> list:
    hidden = [layer for layer in net.layers[:-1] if layer.bias is not None]
    if not hidden:
        return [float("nan")] * len(_DEAD)
    all_negative = np.mean([float(np.max(layer.bias) < 0) for layer in hidden])
    biases = np.concatenate([np.asarray(layer.bias, np.float64) for layer in hidden])
    outweighed = []
    for layer in hidden:
        k = np.asarray(layer.kernel, np.float64)
        l1 = np.abs(k.reshape(-1, k.shape[-1])).sum(0)
        b = np.asarray(layer.bias, np.float64)
        if l1.shape == b.shape:
            outweighed.append(b + l1 < 0)
    out = float(np.mean(np.concatenate(outweighed))) if outweighed else float("nan")
    return [float(all_negative), float(np.mean(biases < 0)), out]


def vector(network: Network, weight_row: np.ndarray, *, start: Optional[Network] = None,
           previous: Optional[Network] = None, epochs_since_previous: float = 1.0, logs: Optional[Mapping] = None,
           optimizer: Optional[Mapping] = None, dropout: Optional[float] = None, epoch: float = float("nan"),
           epochs: Optional[float] = None, num_classes: int = DEFAULT_NUM_CLASSES,
           trend: Optional[LogTrend] = None) -> np.ndarray:
    """One evidence row (in :func:`names` order) after ``epoch`` of ``epochs`` epochs.

    ``weight_row``: the network's :data:`WEIGHT_FEATURES`; ``start`` / ``previous``: the network at the start
    and at the last check (None when not seen); ``logs``: what the framework logged for the epoch;
    ``optimizer``: ``{"kind", "learning_rate"}`` (None when unknown); ``dropout``: the largest dropout rate
    (None when unknown); ``trend``: the run's :class:`LogTrend`, updated by this call (None: a fresh one, as
    at a run's first check).
    """
    nan = float("nan")
    k = max(int(num_classes), 2)
    last = [len(network.layers) - 1]
    moved_start = _moved(network, start)
    gap = float(epochs_since_previous) if epochs_since_previous and epochs_since_previous > 0 else 1.0
    norm_now = _size(network)
    norm_start = _size(start) if start is not None and start.signature() == network.signature() else nan
    move = [moved_start, _moved(network, start, [0]), _moved(network, start, last),
            _moved(network, previous) / gap, _moved(network, previous, last) / gap,
            math.log10(norm_now) if norm_now > 0 else nan,
            norm_now / norm_start if norm_start and norm_start > 0 else nan]
    loss, acc = logged_metrics(logs)
    log = [nan if loss is None else loss / math.log(k),
           nan if acc is None else (acc - 1.0 / k) / (1.0 - 1.0 / k)]
    kind = (optimizer or {}).get("kind")
    lr = (optimizer or {}).get("learning_rate")
    setup = [math.log10(lr) if lr is not None and lr > 0 else nan,
             *([nan] * len(OPTIMIZER_KINDS) if kind is None else [float(kind == o) for o in OPTIMIZER_KINDS]),
             nan if dropout is None else float(dropout)]
    total = float(epochs) if epochs and epochs > 0 else nan
    prog = [min(float(epoch) / total, 1.0) if math.isfinite(total) else nan, float(epoch), math.log10(k)]
    trends = (trend if trend is not None else LogTrend()).update(log[0], log[1], float(epoch))
    return np.concatenate([np.asarray(weight_row, np.float64).ravel(),
                           np.asarray(move + _dead(network) + log + setup + prog + trends, np.float64)])
