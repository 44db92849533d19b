"""Where a predictor knows what it is talking about: the envelope of its training data.

Every shipped predictor stores, as data in its manifest (``"domain"``), what
the networks it was fitted on looked like:

* ``features``: per feature, the range ``[lo, hi]`` of the training rows
  (the 0.1% and 99.9% quantiles, widened by 10% of the inter-quantile range);
* ``num_classes``: the number of classes of the zoo networks (a list when they had several);
* ``normalisation``: whether the zoo networks had normalisation layers;
* ``input_range``: the range of the zoo's inputs ([-1, 1] for every zoo
  dataset of weightwatch), compared with the range a user *declares*.

:func:`check` compares a network (and its feature row) with that envelope
and gives the first reason it is outside, or None. Outside the envelope a
predicted accuracy is not calibrated: the monitor logs ``ww_in_domain = 0``
and never stops a run on such a number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .runs import DEFAULT_NUM_CLASSES

QUANTILES = (0.001, 0.999)
PAD = 0.1
#: Every zoo dataset of weightwatch maps its inputs to [-1, 1] (envelopes written before the range was
#: recorded assume it).
ZOO_INPUT_RANGE = (-1.0, 1.0)
#: Layer classes (Keras and torch names) that rescale activations with statistics the weights don't show.
NORMALISATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
                 "Normalization", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm",
                 "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "SyncBatchNorm", "RMSNorm")


def fit(X, names: Sequence[str], num_classes=DEFAULT_NUM_CLASSES, normalisation: bool = False,
        quantiles=QUANTILES, pad: float = PAD, input_range=ZOO_INPUT_RANGE, parts=None) -> dict:
    """Envelope of the rows of ``X`` (NaN ignored), as a JSON-ready dict.

    ``num_classes`` is the zoo networks' class count, or a sequence of the counts of several zoos.
    ``parts`` (one label per row, e.g. the zoo of each row) fits each part's range apart and keeps, per
    feature, the widest: a pooled predictor's domain then holds every zoo's range, and adding a zoo never
    narrows it (quantiles of the pooled rows would trim the tails of the smaller zoos).
    """
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X must be (rows, {len(names)}), got shape {X.shape}")
    if parts is None:
        lo, hi = _padded_range(X, quantiles, pad)
    else:
        parts = np.asarray(parts)
        if parts.shape != (len(X),):
            raise ValueError(f"parts must have one label per row ({len(X)}), got shape {parts.shape}")
        ranges = [_padded_range(X[parts == p], quantiles, pad) for p in np.unique(parts)]
        with warnings.catch_warnings():  # a feature a part never has (NaN there) takes the other parts' range
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin([r[0] for r in ranges], axis=0), np.nanmax([r[1] for r in ranges], axis=0)
    envelope = {"features": {"names": [str(n) for n in names], "lo": lo.tolist(), "hi": hi.tolist()},
                "quantiles": list(quantiles), "pad": pad, "num_classes": _classes(num_classes),
                "normalisation": bool(normalisation), "input_range": [float(v) for v in input_range]}
    if parts is not None:
        envelope["fitted_apart"] = [str(p) for p in np.unique(parts)]
    return envelope


def _padded_range(X, quantiles, pad) -> tuple:
    with np.errstate(all="ignore"), warnings.catch_warnings():  # an all-NaN feature: NaN, never in the way
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(X, quantiles[0], axis=0), np.nanquantile(X, quantiles[1], axis=0)
    width = hi - lo
    return lo - pad * width, hi + pad * width


def _classes(num_classes):
    """One count as an int (the format every envelope had), several as a sorted list of distinct ints."""
    if np.ndim(num_classes) == 0:
        return int(num_classes)
    counts = sorted({int(k) for k in num_classes})
    return counts[0] if len(counts) == 1 else counts


def _or_list(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def outside(envelope: dict, X) -> np.ndarray:
    """Boolean (rows, features): finite values outside the envelope's range (NaN never counts)."""
    f = envelope["features"]
    X = np.atleast_2d(np.asarray(X, np.float64))
    lo, hi = np.asarray(f["lo"], float), np.asarray(f["hi"], float)
    if X.shape[1] != lo.shape[0]:
        raise ValueError(f"feature row has {X.shape[1]} values, the envelope {lo.shape[0]}")
    with np.errstate(invalid="ignore"):
        return (X < lo) | (X > hi)


def inside(envelopes, X) -> np.ndarray:
    """Boolean per row: inside every one of ``envelopes`` (each compared with the leading columns it names)."""
    X = np.atleast_2d(np.asarray(X, np.float64))
    ok = np.ones(len(X), bool)
    for e in envelopes:
        ok &= ~outside(e, X[:, :len(e["features"]["names"])]).any(axis=1)
    return ok


def in_domain_rate(envelope: dict, X) -> float:
    """Fraction of the rows of ``X`` inside the envelope."""
    return float((~outside(envelope, X).any(axis=1)).mean())


@dataclass(frozen=True)
class NetworkFacts:
    """What the weights tell about a network's setting (read by the adapters)."""

    num_classes: Optional[int]
    normalisation: tuple  # names of normalisation layers the adapter skipped


def facts(network) -> NetworkFacts:
    """Number of classes from the last layer (1 sigmoid unit: 2) and the normalisation layers skipped."""
    classes = None
    if len(network):
        last = network[-1]
        if last.kind == "dense":
            units = last.units
            classes = 2 if units == 1 else units
    skipped = tuple(network.meta.get("skipped", ()))
    norm = tuple(name for name, cls in skipped if cls in NORMALISATION)
    return NetworkFacts(classes, norm)


#: A learning rate this factor outside the zoo's range is out of domain.
LR_SLACK = 1.25


def check(envelope: Optional[dict], network, x=None, input_range=None, optimizer=None,
          optimizers=None) -> Optional[str]:
    """Why ``network`` (with feature row ``x``) is outside ``envelope``; None when inside or no envelope.

    ``input_range`` is the range the user declared for the network's inputs (None: not declared; the
    weights alone do not always show the input scale). ``optimizer`` is what trains the network now,
    ``{"name": "SGD", "kind": "sgd_momentum", "learning_rate": 1e-3}`` (None: unknown; ``kind``, the zoo's
    name for it, defaults to the lower-case ``name``), compared with ``optimizers``, what the zoo runs were
    trained with: ``{"names": [...], "learning_rate": [low, high]}``.
    """
    if not envelope:
        return None
    nf = facts(network)
    if optimizer and optimizers:
        name, lr = str(optimizer.get("kind") or optimizer.get("name", "")).lower(), optimizer.get("learning_rate")
        if name and name not in optimizers["names"]:
            shown = optimizer.get("name") or name
            shown += " with momentum" if name == "sgd_momentum" else ""
            return (f"it is trained with {shown}; the predictor's zoo runs were trained with "
                    f"{', '.join(optimizers['names'])} only")
        low, high = optimizers["learning_rate"]
        if lr is not None and np.isfinite(lr) and not low / LR_SLACK <= lr <= high * LR_SLACK:
            return (f"its learning rate {lr:g} is outside the {low:g}-{high:g} of the predictor's zoo runs "
                    f"({name or 'optimizer'})")
    if input_range is not None:
        lo, hi = float(np.min(input_range[0])), float(np.max(input_range[1]))
        z_lo, z_hi = envelope.get("input_range") or ZOO_INPUT_RANGE
        slack = 0.25 * (z_hi - z_lo)
        if lo < z_lo - slack or hi > z_hi + slack:
            return (f"its declared input range ({lo:g}, {hi:g}) is not the ({z_lo:g}, {z_hi:g}) the predictor's "
                    "zoo networks saw")
    want = envelope.get("num_classes")
    want = None if want is None else [want] if np.ndim(want) == 0 else list(want)
    if want is not None and nf.num_classes is not None and nf.num_classes not in want:
        return f"it has {nf.num_classes} classes, the predictor's zoo networks have {_or_list(want)}"
    if nf.normalisation and not envelope.get("normalisation", False):
        return (f"it has normalisation layers ({', '.join(nf.normalisation[:3])}), which the predictor's zoo "
                "networks do not have")
    if x is not None and envelope.get("features"):
        out = outside(envelope, x)[0]
        if out.any():
            names = envelope["features"]["names"]
            lo, hi = envelope["features"]["lo"], envelope["features"]["hi"]
            x = np.ravel(np.asarray(x, float))
            i = int(np.flatnonzero(out)[0])
            where = _where(names[i])
            return (f"{int(out.sum())} of its {out.size} weight statistics lie outside the predictor's training "
                    f"range, e.g. {names[i]} = {x[i]:.4g} not in [{lo[i]:.4g}, {hi[i]:.4g}]{where}")
    return None


def _where(name: str) -> str:
    if name.startswith(("l0.kernel", "first.kernel")):
        return " (first-layer weights: is the input scale unlike the zoo's [-1, 1]?)"
    return ""
