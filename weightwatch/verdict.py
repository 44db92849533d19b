"""What the monitor says about one epoch: :class:`Verdict`, and the types around it.

:class:`StoppingReason` (defined by the stop policy, :mod:`weightwatch.policy`) is why a callback stopped;
:class:`WeightWatchWarning` is what a failing component says before it is disabled; :class:`Guard` keeps
that promise (a callback never crashes the user's training).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Optional

from .policy import StoppingReason
from .rules import Severity

__all__ = ["Guard", "StoppingReason", "Verdict", "WeightWatchWarning"]


class WeightWatchWarning(RuntimeWarning):
    """A weightwatch component failed and was disabled (training goes on)."""


@dataclass
class Verdict:
    """The monitor's judgement of one epoch.

    Attributes
    ----------
    status : Severity
        OK, WARNING (something is off, or a doomed signature has not yet
        persisted ``patience`` epochs) or DOOMED.
    reasons : list of Reason
        Why (empty when OK).
    message : str
        One actionable sentence per reason.
    predicted_accuracy : float or None
        Accuracy now, from the weights.
    interval : (lo, hi) or None
        Prediction interval when the predictor has ``predict_interval``.
    predictor_name : str or None
    note : str
        E.g. why no predictor is used.
    epoch : int or None
    forecast : float or None
        Forecast of the accuracy at the end of the run.
    forecast_interval : (lo, hi) or None
        Its calibrated interval; doom is judged by the upper end.
    in_domain : bool or None
        False when the network lies outside the data the predictors were
        fitted on (their numbers are then not calibrated and never stop the
        run); None without a predictor.
    domain_reason : str
        Why the network is out of domain.
    doom_probability : float or None
        Probability that the run ends doomed (the doom model, for a paper
        CNN whose optimizer and dropout were read); None when unknown or out
        of the doom model's domain. It ranks runs; the stop verdict comes
        from the forecast's bound.
    stopping_reason : StoppingReason
        The stop policy's reason when the status is DOOMED (``DOOMED`` or
        ``NON_FINITE``), else ``NOT_STOPPED``.
    features : dict
        The feature sets logged with ``features=[...]``, ``{"ww_feature_<name>[_<i>]": value}``
        (:mod:`weightwatch.logged_features`); empty by default.
    """

    status: Severity
    reasons: list = field(default_factory=list)
    message: str = ""
    predicted_accuracy: Optional[float] = None
    interval: Optional[tuple] = None
    predictor_name: Optional[str] = None
    note: str = ""
    epoch: Optional[int] = None
    forecast: Optional[float] = None
    forecast_interval: Optional[tuple] = None
    in_domain: Optional[bool] = None
    domain_reason: str = ""
    doom_probability: Optional[float] = None
    stopping_reason: StoppingReason = StoppingReason.NOT_STOPPED
    features: dict = field(default_factory=dict)

    @property
    def doomed(self) -> bool:
        return self.status == Severity.DOOMED

    @property
    def ok(self) -> bool:
        return self.status == Severity.OK

    def to_dict(self) -> dict:
        """The values the callbacks log (``ww_pred_accuracy``, ..., the forecast's ``_low`` / ``_high``), floats,
        NaN for unknown: for any logger (see :func:`weightwatch.verdict_dict.verdict_to_dict`)."""
        from .verdict_dict import verdict_to_dict

        return verdict_to_dict(self)

    def line(self, short: bool = False) -> str:
        """One log line: ``ww: epoch 3 pred_acc 0.412 final 0.80 [ok]`` (+ reasons and message).

        ``short``: the reasons' names only, without their sentences (``[warning] doom_model``), the status line
        the callbacks print every epoch; the sentence is printed once, at the stop.
        """
        text = f"ww: epoch {self.epoch} pred_acc {_fmt(self.predicted_accuracy)}"
        if self.forecast is not None:
            text += f" final {_fmt(self.forecast)}"
            if self.forecast_interval is not None:
                text += f" ({_fmt(self.forecast_interval[0])}-{_fmt(self.forecast_interval[1])})"
        if self.doom_probability is not None:
            text += f" p_doom {_fmt(self.doom_probability)}"
        if self.in_domain is False:
            text += " (out of domain)"
        text += f" [{self.status}]"
        if self.reasons:
            text += " " + ",".join(str(r) for r in self.reasons) + ("" if short else ": " + self.message)
        return text

    def __str__(self) -> str:
        acc = "n/a" if self.predicted_accuracy is None else f"{self.predicted_accuracy:.3f}"
        text = f"[{self.status}] pred_acc {acc}"
        return f"{text}: {self.message}" if self.message else text


def _fmt(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


class Guard:
    """Never crash the user's training: a failing component warns once and is disabled for the rest of the run
    (``strict``: the error is raised instead)."""

    def __init__(self, strict: bool = False):
        self.strict = bool(strict)
        self.disabled: set = set()

    def off(self, component: str) -> bool:
        return component in self.disabled

    def fail(self, component: str, exc: BaseException) -> None:
        if self.strict:
            raise exc
        if component not in self.disabled:
            self.disabled.add(component)
            warnings.warn(f"weightwatch: {component} failed ({type(exc).__name__}: {exc}); it is disabled for "
                          "the rest of this run (pass strict=True to raise)", WeightWatchWarning, stacklevel=4)
