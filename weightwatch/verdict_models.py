"""The two verdict models a callback asks at every check: doom and forecast.

* :class:`DoomModel`: "will this run end near chance within its configured
  epochs?" A probability from the run's evidence
  (:mod:`weightwatch.evidence`), a stop threshold chosen for a false-stop
  budget, and a domain gate that knows the direction: a row outside the
  fitted envelope may still be stopped when every way it is unusual is the
  way doomed runs are unusual (a larger learning rate, more negative biases,
  frozen or exploding weights), never when it is unusual in any other way.
* :class:`Forecaster`: "what final accuracy, with what interval?" A point
  forecast and a 90% interval, conformal per progress bin, smoothed over the
  checks of a run; out of the envelope the interval widens by the offset
  measured on unusual runs.

Both read their settings from their manifest (``verdict`` and ``forecast``
sections), written by :mod:`weightwatch.experiments.plain_verdicts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import domain, evidence
from .inference import VERDICT_DOOM, VERDICT_FORECASTER
from .runs import DEFAULT_NUM_CLASSES

__all__ = ["DoomModel", "Forecaster", "Forecast", "DoomCall", "Judge", "load"]


@dataclass(frozen=True)
class DoomCall:
    """The doom model's answer at one check."""

    probability: float
    doomed_evidence: bool  # probability >= threshold and the domain gate lets it count
    in_domain: bool
    reason: str = ""  # why out of the envelope (and whether the gate let the evidence count)


@dataclass(frozen=True)
class Forecast:
    """The forecaster's answer at one check (already smoothed over the run's checks)."""

    point: float
    low: float
    high: float
    in_domain: bool
    state: tuple  # smoothed (point, low, high) before the conformal widening: the next check smooths from it


def _names(manifest) -> list:
    return list(manifest["feature_names"])


class DoomModel:
    """A fitted doom classifier and its manifest (see the module doc)."""

    def __init__(self, predictor, manifest: dict):
        self.predictor = predictor
        self.manifest = manifest
        v = manifest["verdict"]
        self.threshold = float(v["threshold"])
        self.patience = int(v.get("patience", 2))
        self.names = _names(manifest)
        self.envelope = manifest.get("domain")
        #: per feature: +1 / -1 doomed runs lie above / below healthy ones, 2 both ways, 0 neither
        self.directions = np.asarray(v.get("directions", [0] * len(self.names)), np.float64)

    def batch(self, X: np.ndarray) -> tuple:
        """Per row: probability, whether it counts as doom evidence, whether in the envelope, the odd features."""
        X = np.atleast_2d(np.asarray(X, np.float64))
        p = np.clip(self.predictor.predict(X), 0.0, 1.0) if len(X) else np.zeros(0)
        if self.envelope is None or not len(X):
            return p, p >= self.threshold, np.ones(len(X), bool), np.zeros(X.shape, bool)
        out = domain.outside(self.envelope, X)
        towards_doom = self._towards(X)
        gate = ~(out & ~towards_doom).any(axis=1)  # every way it is unusual is the way doomed runs go
        return p, (p >= self.threshold) & gate, ~out.any(axis=1), out

    def __call__(self, row: np.ndarray) -> DoomCall:
        row = np.asarray(row, np.float64).reshape(1, -1)
        p, evidence, inside, out = self.batch(row)
        if inside[0]:
            return DoomCall(float(p[0]), bool(evidence[0]), True)
        odd = ", ".join(self.names[j] for j in np.flatnonzero(out[0])[:3])
        if bool(np.all(self._towards(row)[0][out[0]])):
            why = f"{odd} beyond every calibration run, the way doomed runs go: the doom evidence counts"
        else:
            why = f"{odd} outside the calibration runs: its doom probability is not a stop reason"
        return DoomCall(float(p[0]), bool(evidence[0]), False, why)

    def _towards(self, X: np.ndarray) -> np.ndarray:
        """Per value: outside the envelope on the side doomed runs lie (above the top when they lie above)."""
        lo = np.asarray(self.envelope["features"]["lo"], float)
        return (self.directions == 2) | np.where(X > lo, self.directions > 0, self.directions < 0)


class Forecaster:
    """A fitted final-accuracy forecaster (point and quantile boosters) and its manifest."""

    def __init__(self, predictor, manifest: dict):
        self.predictor = predictor
        self.manifest = manifest
        f = manifest["forecast"]
        self.bins = np.asarray(f["progress_bins"], np.float64)  # upper edges
        self.offsets = np.asarray(f["offsets"], np.float64)
        self.ood_offset = float(f["ood_offset"])
        self.smoothing = float(f.get("smoothing", 1.0))
        self.names = _names(manifest)
        self.envelope = manifest.get("domain")
        self._progress = self.names.index("progress")

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Unsmoothed ``(point, low, high)`` per row, before the conformal widening."""
        X = np.atleast_2d(np.asarray(X, np.float64))
        point = self.predictor.predict(X)
        lo, hi = self.predictor.predict_interval(X)
        return np.column_stack([point, lo, hi])

    def offset(self, X: np.ndarray, in_domain: np.ndarray) -> np.ndarray:
        prog = np.nan_to_num(np.atleast_2d(X)[:, self._progress], nan=0.0)
        b = np.minimum(np.searchsorted(self.bins, prog, side="left"), len(self.offsets) - 1)
        return np.where(in_domain, self.offsets[b], np.maximum(self.offsets[b], self.ood_offset))

    def in_domain(self, X: np.ndarray) -> np.ndarray:
        if self.envelope is None:
            return np.ones(len(np.atleast_2d(X)), bool)
        return ~domain.outside(self.envelope, X).any(axis=1)

    def smooth(self, raw: np.ndarray, previous: Optional[tuple], gap: float = 1.0) -> np.ndarray:
        """Exponential smoothing over a run's checks (``gap`` epochs since the last one)."""
        if previous is None or self.smoothing >= 1.0:
            return raw
        a = 1.0 - (1.0 - self.smoothing) ** max(float(gap), 1.0)
        return np.asarray(previous, np.float64) + a * (raw - np.asarray(previous, np.float64))

    def finish(self, smoothed: np.ndarray, X: np.ndarray, in_domain: np.ndarray) -> np.ndarray:
        """``(point, low, high)`` per row: widened by the conformal offset, clipped to [0, 1], the point inside."""
        q = self.offset(X, in_domain)
        point = np.clip(smoothed[:, 0], 0.0, 1.0)
        low = np.clip(np.minimum(smoothed[:, 1] - q, point), 0.0, 1.0)
        high = np.clip(np.maximum(smoothed[:, 2] + q, point), 0.0, 1.0)
        return np.column_stack([point, low, high])

    def __call__(self, row: np.ndarray, previous: Optional[tuple] = None, gap: float = 1.0) -> Forecast:
        X = np.asarray(row, np.float64).reshape(1, -1)
        raw = self.raw(X)[0]
        smoothed = self.smooth(raw, previous, gap)
        ok = self.in_domain(X)
        p, lo, hi = self.finish(smoothed[None, :], X, ok)[0]
        return Forecast(float(p), float(lo), float(hi), bool(ok[0]), tuple(float(v) for v in smoothed))


def load(directory):
    """The :class:`DoomModel` or :class:`Forecaster` saved in ``directory`` (its manifest says which)."""
    from .predictors.persist import load_predictor, read_manifest

    manifest = read_manifest(directory)
    predictor = load_predictor(directory)
    if manifest.get("role") == VERDICT_DOOM:
        return DoomModel(predictor, manifest)
    if manifest.get("role") == VERDICT_FORECASTER:
        return Forecaster(predictor, manifest)
    raise ValueError(f"{directory} holds neither a doom model nor a forecaster of the verdict models")


class Judge:
    """Asks the doom model and the forecaster about one run, check after check.

    Keeps what the evidence compares with (the weights at the start and at the last check) and the
    forecaster's smoothing state; :meth:`reset` forgets the run. Either model may be None.
    """

    def __init__(self, doom: Optional[DoomModel], forecaster: Optional[Forecaster]):
        self.doom = doom
        self.forecaster = forecaster
        self.reset()

    def reset(self) -> None:
        self.start_network = None
        self._previous = None  # (epoch, network)
        self._smoothed = None
        self._trend = evidence.LogTrend()  # what the logs did over this run's checks
        self.last_row = None  # the evidence row of the last check (a sweep stores it)

    def start(self, network) -> None:
        """The weights before training (the movement features compare with them)."""
        self.start_network = network

    def row(self, network, epoch: int, *, logs=None, optimizer=None, epochs=None,
            num_classes: int = DEFAULT_NUM_CLASSES):
        """The evidence row of this check (:func:`weightwatch.evidence.vector`); call it once per check (it
        advances the run's :class:`~weightwatch.evidence.LogTrend`)."""
        from .features import get_extractor
        from .forecast import dropout_of

        extractor = get_extractor(evidence.WEIGHT_FEATURES)
        prev_epoch, prev = self._previous if self._previous is not None else (None, None)
        gap = float(epoch - prev_epoch) if prev_epoch is not None and epoch > prev_epoch else 1.0
        return evidence.vector(network, extractor(network), start=self.start_network, previous=prev,
                               epochs_since_previous=gap, logs=logs, optimizer=optimizer,
                               dropout=dropout_of(network), epoch=epoch, epochs=epochs, num_classes=num_classes,
                               trend=self._trend)

    def __call__(self, network, epoch: int, **context) -> tuple:
        """``(DoomCall or None, Forecast or None)`` for this check; remembers the network for the next one."""
        row = self.last_row = self.row(network, epoch, **context)
        gap = float(epoch - self._previous[0]) if self._previous is not None else 1.0
        call = self.doom(row) if self.doom is not None else None
        fc = None
        if self.forecaster is not None:
            fc = self.forecaster(row, self._smoothed, gap=max(gap, 1.0))
            self._smoothed = fc.state
        self._previous = (int(epoch), network)
        return call, fc
