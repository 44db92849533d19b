"""The inference door: a loaded predictor and its one way from a network to a :class:`Prediction`.

A :class:`LoadedPredictor` is a fitted estimator with what its manifest says about it, read once: its
``role`` (:data:`ACCURACY`: the accuracy now; :data:`FORECASTER`: the accuracy at the end of the run;
:data:`DOOM`: the probability that the run ends doomed), its ``domain`` (the envelope of its training
features), its ``card`` and the optimizers of its zoos. :func:`weightwatch.pretrained.resolve` returns one
for the monitor, the CLI and :func:`weightwatch.pretrained.predict_accuracy`; :func:`apply` turns it and a
network into a number, an interval and whether the network is in its domain. Nothing here imports the zoo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np

from . import forecast, ranges
from .errors import FeatureMismatchError, InvalidArgumentError, PredictorIntegrityError

__all__ = ["ACCURACY", "DOOM", "FORECASTER", "ROLES", "VERDICT_DOOM", "VERDICT_FORECASTER", "LoadedPredictor", "Prediction", "apply", "as_loaded",
           "features_for", "role_of"]

ACCURACY, FORECASTER, DOOM = "accuracy", "forecaster", "doom"
#: The verdict models (:mod:`weightwatch.verdict_models`): they read a run's evidence
#: (:mod:`weightwatch.evidence`), for any architecture.
VERDICT_DOOM, VERDICT_FORECASTER = "verdict-doom", "verdict-forecaster"
#: What a predictor predicts (the manifest's ``role``).
ROLES = (ACCURACY, FORECASTER, DOOM, VERDICT_DOOM, VERDICT_FORECASTER)


def role_of(manifest: Mapping, feature_names=None) -> str:
    """The predictor's role: its manifest's ``role``; for a manifest written before roles were recorded, derived
    from its feature names (a doom model's end with the run's setup, a forecaster's with the trajectory
    features, :mod:`weightwatch.forecast`). The one place a role is derived."""
    role = manifest.get("role")
    if role is not None:
        if role not in ROLES:
            raise PredictorIntegrityError(f"predictor {manifest.get('name')!r}: unknown role {role!r} in its "
                                          f"manifest (known: {', '.join(ROLES)})")
        return role
    names = manifest.get("feature_names")
    names = [str(n) for n in (feature_names if names is None and feature_names is not None else names or [])]
    if forecast.is_doom_names(names):
        return DOOM
    if forecast.is_forecast_names(names):
        return FORECASTER
    return ACCURACY


@dataclass(frozen=True)
class LoadedPredictor:
    """A fitted estimator with its manifest, read once.

    Attributes
    ----------
    estimator
        Has ``predict`` (and ``predict_interval`` when ``has_interval``).
    manifest : dict
        Its manifest (empty for an estimator fitted in this process).
    role : str
        :data:`ACCURACY`, :data:`FORECASTER` or :data:`DOOM`.
    name : str
    note : str
        Why it was chosen (auto-resolution).
    source : str
        ``"shipped"``, the directory it was loaded from, or ``"in memory"``.
    optimizers : dict or None
        Optimizers and learning-rate range of its zoos (manifest ``optimizers``, else derived from its
        ``zoo_summary``).
    """

    estimator: object
    manifest: Mapping = field(default_factory=dict)
    role: str = ACCURACY
    name: str = ""
    note: str = ""
    source: str = "in memory"
    optimizers: Optional[dict] = None

    @property
    def domain(self) -> Optional[dict]:
        return self.manifest.get("domain")

    @property
    def card(self) -> Optional[dict]:
        return self.manifest.get("card")

    @property
    def verdict(self) -> dict:
        """The doom thresholds it shipped with (a forecaster's ``threshold``, ``upper_offset``, ...)."""
        return self.manifest.get("verdict") or {}

    @property
    def feature_names(self) -> list:
        names = self.manifest.get("feature_names")
        if names is None:
            names = getattr(self.estimator, "feature_names_in_", None)
        return [] if names is None else [str(n) for n in names]

    def with_note(self, note: str, name: Optional[str] = None) -> "LoadedPredictor":
        return LoadedPredictor(self.estimator, self.manifest, self.role, name or self.name, note, self.source,
                               self.optimizers)


def as_loaded(predictor, *, name: Optional[str] = None, source: Optional[str] = None, note: str = "") -> LoadedPredictor:
    """``predictor`` as a :class:`LoadedPredictor` (one is passed through; a fitted estimator is read once: a
    loaded one's manifest is its ``manifest_``)."""
    if isinstance(predictor, LoadedPredictor):
        return predictor if name is None or name == predictor.name else predictor.with_note(predictor.note, name)
    if not hasattr(predictor, "predict"):
        raise InvalidArgumentError(f"a predictor must be fitted and have predict(), got {type(predictor).__name__}")
    manifest = getattr(predictor, "manifest_", None) or {}
    names = getattr(predictor, "feature_names_in_", None)
    optimizers = manifest.get("optimizers") if "optimizers" in manifest else ranges.zoo_optimizers(
        manifest.get("zoo_summary"))
    return LoadedPredictor(predictor, manifest, role_of(manifest, names),
                           name or manifest.get("name") or type(predictor).__name__, note,
                           source or ("in memory" if not manifest else "loaded"), optimizers)


@dataclass(frozen=True)
class Prediction:
    """A predictor's number for one network, and whether it may be trusted.

    ``in_domain`` is False when the network lies outside the envelope of the
    predictor's training data (``domain_reason`` says why); the number is
    then not calibrated for that network. For a doom model ``accuracy`` is the probability that the run ends
    doomed.
    """

    accuracy: float
    interval: Optional[tuple]
    predictor: str
    note: str
    in_domain: bool = True
    domain_reason: str = ""

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "interval": [*self.interval] if self.interval else None,
                "predictor": self.predictor, "note": self.note, "in_domain": self.in_domain,
                "domain_reason": self.domain_reason or None}


def features_for(predictor, network, epoch: Optional[int] = None, *, init=None, steps=None,
                 progress: Optional[float] = None, feature_set: Optional[str] = None, setup=None) -> np.ndarray:
    """The predictor's feature vector for ``network`` (feature set from its manifest, else ``feature_set``).

    A forecaster also takes the network at the start of training (``init``), the optimizer ``steps`` so far and
    the ``progress`` of the run (or ``epoch`` of the zoo's 18); the doom model also the run's ``setup``
    (:func:`weightwatch.forecast.setup_of`).
    """
    from .features import get_extractor

    lp = as_loaded(predictor)
    names = lp.feature_names
    extractor = get_extractor(lp.manifest.get("feature_set") or feature_set or "W_L")
    x = extractor(network)
    if lp.role == DOOM and setup is None:
        raise InvalidArgumentError("this is a doom model: it needs the run's setup (learning rate, optimizer kind, "
                                   "dropout), which the training callbacks read from the framework")
    if lp.role in (DOOM, FORECASTER):
        if progress is None:
            if epoch is None:
                raise InvalidArgumentError("this predictor forecasts the final accuracy from the weights after "
                                           "epoch k of an 18-epoch run: give the epoch (--epoch in the CLI)")
            progress = forecast.progress(epoch, None)
        x0 = None if init is None else extractor(init)
        if x0 is not None and x0.shape != x.shape:
            x0 = None
        x = forecast.vector(x, x0, steps, progress)
        if lp.role == DOOM:
            x = np.concatenate([x, np.asarray(setup, np.float64).reshape(-1)])
    if names and len(names) != len(x):
        raise FeatureMismatchError(f"predictor expects {len(names)} features, the network gives {len(x)} "
                                   f"({lp.manifest.get('feature_set')}); it was trained on another architecture "
                                   "family")
    return x


def apply(predictor, network, *, name: Optional[str] = None, note: str = "", epoch: Optional[int] = None,
          init=None, steps=None, progress: Optional[float] = None, feature_set: Optional[str] = None,
          input_range=None, optimizer: Optional[dict] = None, setup=None) -> Prediction:
    """Apply a predictor (a :class:`LoadedPredictor` or a fitted estimator) to a network: number, interval, domain.

    The one path from a predictor and a network to a :class:`Prediction`, used by
    :func:`weightwatch.pretrained.predict_accuracy` and by the monitor. The point prediction always lies inside
    its interval. ``input_range`` is the inputs' range when the user declared it, ``optimizer`` what trains the
    network (``{"name", "learning_rate"}``), both checked against the domain.
    """
    from . import domain

    lp = as_loaded(predictor)
    est = lp.estimator
    network.check_finite()
    x = features_for(lp, network, epoch, init=init, steps=steps, progress=progress, feature_set=feature_set,
                     setup=setup)[None, :]
    acc = float(np.clip(est.predict(x)[0], 0.0, 1.0))  # an accuracy, whatever the trees extrapolate
    interval = None
    if getattr(est, "has_interval", False):
        lo, hi = est.predict_interval(x)
        lo, hi = float(np.ravel(lo)[0]), float(np.ravel(hi)[0])
        interval = (min(lo, acc), max(hi, acc))
    offset = lp.verdict.get("upper_offset")
    if offset is not None:  # a forecaster's calibrated upper bound: forecast + one-sided conformal offset
        interval = (min(acc, interval[0]) if interval else acc, acc + float(offset))
    if interval is not None:  # accuracies live in [0, 1]; the doom threshold is far inside it
        interval = (float(np.clip(interval[0], 0.0, 1.0)), float(np.clip(interval[1], 0.0, 1.0)))
    reason = domain.check(lp.domain, network, x, input_range, optimizer, lp.optimizers if optimizer else None)
    return Prediction(acc, interval, name or lp.name, note or lp.note, reason is None, reason or "")
