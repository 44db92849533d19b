"""What a trial reports at each epoch, and the question "should it be pruned?" (framework-neutral).

:class:`TrialReporter` reads the model's weights (:func:`weightwatch.adapters.to_network`), asks the verdict
models through a :class:`~weightwatch.verdict_models.Judge` (the same evidence, doom model and forecaster the
callbacks use), stores the epoch's record in the trial's user attributes (:mod:`.records`), reports the
forecast (or the user's metric) with ``trial.report`` and raises ``optuna.TrialPruned`` when the study's
pruner says so. It never crashes the trial on its own account: a model it cannot read is recorded as such
and said once.

:func:`report` is the plain-loop door: ``report(trial, model, epoch, logs=None)``.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import warnings
import weakref
from typing import Mapping, Optional

import optuna

from .. import domain, monitor_models, pretrained, runs
from ..monitor import _optimizer_facts
from ..verdict import WeightWatchWarning
from . import records
from .pruner import WeightWatchPruner

log = logging.getLogger("weightwatch.optuna")

__all__ = ["TrialReporter", "report", "DOOM_MODEL", "FORECASTER"]

DOOM_MODEL = "plain-doom-gbm"
FORECASTER = "plain-forecast-gbm"


@functools.lru_cache(maxsize=8)
def _models(doom_model: str, forecaster: str) -> monitor_models.Models:
    """The verdict models, loaded once per process (every trial of a sweep asks the same ones)."""
    return monitor_models.Models(doom=pretrained.resolve(doom_model), forecaster=pretrained.resolve(forecaster))


class TrialReporter:
    """Report one trial's epochs to Optuna, with the weight evidence the pruner reads.

    Parameters
    ----------
    trial : optuna.Trial
    objective : str or None
        None: report the shipped forecast of the final accuracy (no validation data needed); a name: report
        that logged metric (e.g. ``"val_accuracy"``), the forecast when it is missing.
    epochs : int or None
        Planned epochs of the trial (the forecast's progress); the callbacks take it from the framework.
    num_classes : int or None
        None: read from the model's last layer.
    doom_model, forecaster : str
        The verdict models (shipped names or saved directories).
    """

    def __init__(self, trial, objective: Optional[str] = None, *, epochs: Optional[int] = None,
                 num_classes: Optional[int] = None, doom_model: str = DOOM_MODEL, forecaster: str = FORECASTER):
        self.trial = trial
        self.objective = objective
        self.epochs = epochs
        self.num_classes = num_classes
        self.doom_model, self.forecaster = doom_model, forecaster
        self._judge = None
        self._start = None
        self._said: set = set()
        self.last_record: Optional[dict] = None

    def start(self, model) -> None:
        """The weights before training (the evidence's movement compares with them)."""
        try:
            self._start = _network(model)
            if self._judge is not None:
                self._judge.reset()
                self._judge.start(self._start)
        except Exception as exc:  # noqa: BLE001
            self._say("start", f"cannot read the initial weights ({type(exc).__name__}: {exc})")

    def epoch_end(self, model, epoch: int, *, logs: Optional[Mapping] = None, optimizer=None,
                  epochs: Optional[int] = None) -> None:
        """Record and report ``epoch`` (completed epochs); raises ``optuna.TrialPruned`` when pruned."""
        epoch = int(epoch)
        rec, forecast = self._check(model, epoch, logs, optimizer, epochs or self.epochs)
        self.last_record = rec
        value = self._value(logs, forecast)
        try:
            self.trial.set_user_attr(records.key(epoch), rec)
        except Exception as exc:  # noqa: BLE001 - e.g. a record the storage refuses: the trial goes on
            self._say("store", f"cannot store the epoch's record ({type(exc).__name__}: {exc})")
        if value is not None:
            self.trial.report(value, epoch)
        if self.trial.should_prune():
            pruner = self.trial.study.pruner
            decision = pruner.decisions.get(self.trial.number, {}) if isinstance(pruner, WeightWatchPruner) else {}
            why = decision.get("why") or f"{type(pruner).__name__} says so"
            try:
                self.trial.set_user_attr(records.DECISION, {**decision, "epoch": epoch})
            except Exception:  # noqa: BLE001
                pass
            raise optuna.TrialPruned(f"trial {self.trial.number} pruned at epoch {epoch}: {why}")

    # ------------------------------------------------------------------ parts
    def _check(self, model, epoch: int, logs, optimizer, epochs) -> tuple:
        """``(record, forecast or None)`` of this epoch; a failure is recorded, said once, never raised."""
        try:
            net = _network(model)
            if net.non_finite_tensors():
                return records.make(epoch, non_finite=True), None
            judge = self._judge_for()
            if judge is None:
                return records.make(epoch, error="no verdict models"), None
            k = self.num_classes or domain.facts(net).num_classes or runs.DEFAULT_NUM_CLASSES
            call, fc = judge(net, epoch, logs=dict(logs) if logs else None, optimizer=_optimizer_facts(optimizer),
                             epochs=epochs, num_classes=k)
            forecast = None if fc is None else (fc.point, fc.low, fc.high)
            return records.make(epoch, p_doom=None if call is None else call.probability,
                                doomed=bool(call is not None and call.doomed_evidence), forecast=forecast,
                                in_domain=None if fc is None else fc.in_domain, row=judge.last_row), forecast
        except Exception as exc:  # noqa: BLE001 - never the user's trial
            self._say("check", f"cannot judge this model ({type(exc).__name__}: {exc}); its trial is not pruned "
                               "by the weights")
            return records.make(epoch, error=f"{type(exc).__name__}: {exc}"), None

    def _judge_for(self):
        if self._judge is None and "models" not in self._said:
            try:
                self._judge = monitor_models.judge(_models(str(self.doom_model), str(self.forecaster)))
            except Exception as exc:  # noqa: BLE001
                self._say("models", f"cannot load the verdict models ({type(exc).__name__}: {exc})")
                return None
            self._judge.start(self._start)
        return self._judge

    def _value(self, logs, forecast) -> Optional[float]:
        if self.objective is not None:
            for k in (self.objective, f"{self.objective}_epoch"):
                if logs and k in logs:
                    try:
                        v = float(logs[k])
                    except (TypeError, ValueError):
                        break
                    return v if math.isfinite(v) else None
            self._say("objective", f"{self.objective!r} is not in the logged metrics "
                                   f"({', '.join(map(str, logs or {})) or 'none'}): reporting the forecast")
        return None if forecast is None else float(forecast[0])

    def _say(self, key: str, text: str) -> None:
        if key in self._said:
            return
        self._said.add(key)
        log.warning("weightwatch (trial %s): %s", getattr(self.trial, "number", "?"), text)
        warnings.warn(f"weightwatch: {text}", WeightWatchWarning, stacklevel=4)


def _network(model):
    from ..adapters import to_network

    torch = sys.modules.get("torch")
    if torch is None:  # no torch imported: not a torch model
        return to_network(model)
    with torch.no_grad():
        return to_network(model)


_REPORTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def report(trial, model, epoch: int, logs: Optional[Mapping] = None, *, optimizer=None,
           epochs: Optional[int] = None, objective: Optional[str] = None) -> None:
    """Report ``epoch`` of a plain training loop (torch or any model weightwatch reads).

    Call ``report(trial, model, 0)`` before the first epoch (the weights at the start), then
    ``report(trial, model, epoch, {"loss": ..., "accuracy": ...}, optimizer=opt, epochs=E)`` after each epoch;
    raises ``optuna.TrialPruned`` when the study's pruner prunes the trial. ``objective``: a key of ``logs``
    to report instead of the forecast (e.g. ``"val_accuracy"``).
    """
    reporter = _REPORTERS.get(trial)
    if reporter is None:
        reporter = _REPORTERS[trial] = TrialReporter(trial, objective, epochs=epochs)
    if int(epoch) == 0:
        reporter.start(model)
        return
    reporter.epoch_end(model, epoch, logs=logs, optimizer=optimizer, epochs=epochs)
