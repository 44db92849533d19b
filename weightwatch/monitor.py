"""Framework-neutral training monitor: weights per epoch -> verdict.

The :class:`Monitor` holds the state of one training run (history, patience
counters). Thin adapters (:mod:`weightwatch.keras`, :mod:`weightwatch.torch`,
:mod:`weightwatch.lightning`) convert the framework's model to a
:class:`~weightwatch.network.Network` and call :meth:`Monitor.step` once per
epoch; they never hold detection logic themselves.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import logging
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from . import domain, forecast, runs
from ._files import jsonable
from .errors import InvalidArgumentError, UnknownNameError
from .network import Network
from .stats import BIAS, KERNEL, STAT
from .rules import Finding, Reason, Rule, RuleContext, Severity, total_l2_norm

log = logging.getLogger(__name__)

__all__ = ["Monitor", "StoppingReason", "Verdict", "WeightWatchWarning"]


class WeightWatchWarning(RuntimeWarning):
    """A weightwatch component failed and was disabled (training goes on)."""


class StoppingReason(enum.Enum):
    """Why a callback stopped training: the same type for Keras, torch and Lightning.

    Lightning's ``EarlyStoppingReason`` vocabulary; ``stopping_message`` says
    why in words, and the rules behind it are the verdict's ``reasons``.
    """

    NOT_STOPPED = 0
    DOOMED = 1
    NON_FINITE = 2


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

    @property
    def doomed(self) -> bool:
        return self.status == Severity.DOOMED

    @property
    def ok(self) -> bool:
        return self.status == Severity.OK

    def to_dict(self) -> dict:
        """The values the Keras callback logs (``ww_pred_accuracy``, ...), floats, NaN for unknown: see
        :func:`weightwatch.verdict_dict.verdict_to_dict`."""
        from .verdict_dict import verdict_to_dict

        return verdict_to_dict(self)

    def line(self) -> str:
        """One log line: ``ww: epoch 3 pred_acc 0.412 final 0.80 [ok]`` (+ reasons and message)."""
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
            text += " " + ",".join(str(r) for r in self.reasons) + ": " + self.message
        return text

    def __str__(self) -> str:
        acc = "n/a" if self.predicted_accuracy is None else f"{self.predicted_accuracy:.3f}"
        text = f"[{self.status}] pred_acc {acc}"
        return f"{text}: {self.message}" if self.message else text


def _fmt(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _jsonable(obj):
    """History records as plain JSON (severities by name, NaN as None, unknown objects as their repr)."""
    return jsonable(obj, strict=False, nan_to_none=True, enum_as=str)


def _resolve_rules(rules) -> list:
    from .plugins import get_registry

    table = {name: entry.obj for name, entry in get_registry().entries("rules").items()}
    if rules is None:
        return []
    if rules == "all":
        return list(table.values())
    if isinstance(rules, (str, Rule)) or callable(rules):
        rules = [rules]
    out = []
    for r in rules:
        if isinstance(r, Rule):
            out.append(r)
        elif isinstance(r, str):
            if r not in table:
                raise UnknownNameError(f"no rule named {r!r}; registered: {', '.join(sorted(table))}")
            out.append(table[r])
        elif callable(r):
            out.append(Rule(getattr(r, "__name__", "custom"), r, (r.__doc__ or "").strip()))
        else:
            raise TypeError(f"rules must be 'all', names or Rule objects, got {type(r).__name__}")
    return out


class Monitor:
    """Judge a training run from its weights, epoch by epoch.

    Parameters
    ----------
    predictor : None, "auto", name, path or fitted predictor
        Predictor of the accuracy *now* (``ww_pred_accuracy``). ``"auto"``
        asks :func:`weightwatch.pretrained.auto_predictor` for one matching
        the network; without one only the rules run (logged once). A shipped
        name (``weightwatch.pretrained.list_predictors()``) or a saved predictor's
        directory is loaded. Passing a forecaster here makes it the
        forecaster.
    forecaster : None, "auto", name, path or fitted predictor
        Forecaster of the accuracy at the *end* of the run
        (``ww_pred_final_accuracy``); doom is judged by its calibrated upper
        bound (rule ``forecast_doomed``). ``"auto"``: the shipped one for the
        network's family, if any (with ``predictor="auto"`` only).
    rules : "all", list of names or Rule objects
        Rules to run (registered through the ``register_rules`` hook).
    patience : int
        A DOOMED finding makes the run doomed only once the same rule has
        reported it at ``patience`` consecutive checked epochs (non-finite
        weights: immediately). Until then the status is WARNING.
    start_from_epoch : int
        Epochs before this one are checked and reported but never count
        towards ``patience``.
    min_delta : float
        For findings that recover on improvement: a predicted accuracy above
        the best earlier one by more than ``min_delta`` restarts their count.
    input_range : (lo, hi) or None
        Declared range of the network's inputs (scalars or per input
        channel). The interval-bound rules (``dead_units``,
        ``output_collapse``) are proofs only for a declared range; with None
        they assume [-1, 1] and only warn.
    num_classes : int or None
        None: read from the model (the last layer's units; one unit is a
        binary classifier).
    chance_margin : float or None
        The forecast dooms a run when its upper bound is below ``chance +
        chance_margin``. None: the threshold the forecaster shipped with,
        chosen for a measured false-stop budget (``pretrained/VERDICTS.md``).
    epochs : int or None
        Planned length of the run, mapping its epochs to the forecaster's
        (a check after epoch ``e`` of ``E`` is the zoo's epoch ``18 e / E``).
        The callbacks read it from the framework; None: 18.
    strict : bool
        Re-raise errors of rules and predictor instead of warning once and
        disabling the failing component.
    features : str, optional
        Feature set of an in-memory predictor (default ``"W_L"``); a loaded
        predictor's manifest says its own.
    log_stats : bool
        Store per-layer bias maxima and the weight norm in every history record.
    predictor_path : None, directory or list of directories
        Where ``"auto"`` looks first for your own predictors (``weightwatch fit``
        on a zoo of your family), before ``WEIGHTWATCH_PREDICTOR_PATH`` and the
        shipped ones; a predictor is used when its family signature is the
        network's (see :func:`weightwatch.pretrained.find_on_path`).
    doom_model : "auto", None, name, path or fitted predictor
        Probability that the run ends doomed (``ww_doom_probability``), from
        the forecaster's features and the run's setup (the ``optimizer`` given
        to :meth:`step` and the network's dropout layers). ``"auto"``: the
        shipped one for a paper CNN. It is logged, never a stop reason.
    """

    def __init__(self, predictor="auto", rules="all", patience: int = 2, start_from_epoch: int = 1,
                 min_delta: float = 0.02, input_range=None, num_classes: Optional[int] = None,
                 chance_margin: Optional[float] = None, strict: bool = False, features: Optional[str] = None,
                 log_stats: bool = False, forecaster="auto", epochs: Optional[int] = None, predictor_path=None,
                 doom_model="auto"):
        if patience < 0:
            raise InvalidArgumentError(f"patience must be >= 0, got {patience}")
        if num_classes is not None and int(num_classes) < 2:
            raise InvalidArgumentError(f"num_classes must be >= 2 (a 1-unit sigmoid output is 2), got {num_classes}")
        if epochs is not None and int(epochs) < 1:
            raise InvalidArgumentError(f"epochs must be >= 1, got {epochs}")
        self.predictor = predictor
        self.forecaster = forecaster
        self.rules = rules
        self.patience = int(patience)
        self.start_from_epoch = int(start_from_epoch)
        self.min_delta = float(min_delta)
        self.input_range = None if input_range is None else tuple(input_range)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.chance_margin = None if chance_margin is None else float(chance_margin)
        self.epochs = None if epochs is None else int(epochs)
        self.strict = bool(strict)
        self.features = features
        self.log_stats = bool(log_stats)
        self.predictor_path = predictor_path
        self.doom_model = doom_model
        importlib.import_module("weightwatch.pretrained").search_path(predictor_path)  # bad entries: say so now
        self._rules = _resolve_rules(rules)
        self._predictor_obj = None
        self._predictor_name = None
        self._forecaster_obj = None
        self._forecaster_name = None
        self._doom_obj = None
        self._doom_name = None
        self._note = ""
        self._predictor_resolved = False
        self.disabled: set = set()
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the run (history, counters, weights at the start); the predictors stay loaded."""
        self.history: list = []
        self._streaks: dict = {}
        self._best_pred: Optional[float] = None
        self.doomed_epoch: Optional[int] = None
        self._init_network: Optional[Network] = None
        self._domain_said = False

    def start(self, network) -> None:
        """Record the weights at the start of training (the forecaster compares with them)."""
        try:
            if not isinstance(network, Network):
                from .adapters import to_network

                network = to_network(network)
            self._init_network = network if len(network) else None
        except Exception as exc:  # noqa: BLE001 - the start is optional information, never fatal
            self._fail("reading the initial weights", exc)

    def state_dict(self) -> dict:
        """JSON-serialisable state, for checkpoint/resume."""
        return _jsonable({
            "history": self.history,
            "streaks": self._streaks,
            "best_pred": self._best_pred,
            "doomed_epoch": self.doomed_epoch,
            "disabled": sorted(self.disabled),
        })

    def load_state_dict(self, state: dict) -> None:
        self.history = [dict(r) for r in state.get("history", [])]
        self._streaks = {str(k): int(v) for k, v in state.get("streaks", {}).items()}
        self._best_pred = state.get("best_pred")
        self.doomed_epoch = state.get("doomed_epoch")
        self.disabled = set(state.get("disabled", []))

    def history_frame(self):
        """History as a pandas DataFrame (one row per checked epoch)."""
        import pandas as pd

        cols = ["epoch", "pred_accuracy", "pred_lo", "pred_hi", "pred_final_accuracy", "final_lo", "final_hi",
                "doom_probability", "in_domain", "status", "doomed", "reasons", "message"]
        if not self.history:
            return pd.DataFrame(columns=cols)
        rows = []
        for rec in self.history:
            row = {k: rec.get(k) for k in cols}
            row["reasons"] = ",".join(rec.get("reasons", []))
            for k, v in (rec.get("stats") or {}).items():
                row[k] = v
            row["l2_norm"] = rec.get("l2_norm")
            rows.append(row)
        return pd.DataFrame(rows)

    # -------------------------------------------------------------- predictor
    def _fail(self, component: str, exc: BaseException) -> None:
        if self.strict:
            raise exc
        if component not in self.disabled:
            self.disabled.add(component)
            warnings.warn(f"weightwatch: {component} failed ({type(exc).__name__}: {exc}); it is disabled for "
                          "the rest of this run (pass strict=True to raise)", WeightWatchWarning, stacklevel=3)

    @staticmethod
    def _load(p):
        """(predictor, name) from a shipped name, a directory or a fitted predictor."""
        if isinstance(p, str) and not os.path.exists(p):
            shipped = importlib.import_module("weightwatch.pretrained")
            return shipped.load(p), p
        if isinstance(p, (str, os.PathLike)):
            from .predictors.persist import load_predictor

            p = load_predictor(p)
        manifest = getattr(p, "manifest_", None) or {}
        return p, manifest.get("name") or type(p).__name__

    def _resolve_predictor(self, network: Network) -> None:
        if self._predictor_resolved:
            return
        self._predictor_resolved = True
        shipped = importlib.import_module("weightwatch.pretrained")
        notes = []
        p, f = self.predictor, self.forecaster
        if isinstance(p, str) and p == "auto":
            try:
                found = shipped.auto_predictor(network, self.predictor_path)
            except Exception as exc:  # noqa: BLE001 - a broken lookup must not stop training
                self._fail("predictor", exc)
                found = None
            if found is None:
                notes.append("no pretrained predictor matches this network: rules only")
            else:
                self._predictor_obj, self._predictor_name, note = found
                notes.append(note)
        elif p is not None:
            self._predictor_obj, self._predictor_name = self._load(p)
            if shipped.is_forecaster(self._predictor_obj):  # a forecaster given as the predictor
                self._forecaster_obj, self._forecaster_name = self._predictor_obj, self._predictor_name
                self._predictor_obj = self._predictor_name = None
                f = None
        else:
            notes.append("no predictor: rules only")
        if isinstance(f, str) and f == "auto":
            if isinstance(p, str) and p == "auto":
                try:
                    found = shipped.auto_forecaster(network, self.predictor_path)
                except Exception as exc:  # noqa: BLE001
                    self._fail("forecaster", exc)
                    found = None
                if found is not None:
                    self._forecaster_obj, self._forecaster_name, _ = found
        elif f is not None:
            self._forecaster_obj, self._forecaster_name = self._load(f)
        if self._forecaster_obj is None and self._predictor_obj is not None:
            notes.append("no forecaster of the final accuracy for this family: predictor findings only warn")
        d = self.doom_model
        if isinstance(d, str) and d == "auto":
            if self.predictor is not None:  # predictor=None: rules only
                try:
                    found = shipped.auto_doom_model(network)
                except Exception as exc:  # noqa: BLE001 - a broken lookup must not stop training
                    self._fail("doom model", exc)
                    found = None
                if found is not None:
                    self._doom_obj, self._doom_name = found
        elif d is not None:
            self._doom_obj, self._doom_name = self._load(d)
            if not shipped.is_doom_model(self._doom_obj):
                self._doom_obj = None
                self._fail("doom model", InvalidArgumentError(
                    f"doom_model {self._doom_name!r} is not a doom model (its features do not end with the run's "
                    f"setup, {', '.join(forecast.SETUP)})"))
        self._note = "; ".join(notes)
        if self._note:
            log.info("weightwatch: %s", self._note)

    def _forecast_threshold(self, num_classes: int) -> float:
        if self.chance_margin is not None:
            return runs.chance(num_classes) + self.chance_margin
        verdict = (getattr(self._forecaster_obj, "manifest_", None) or {}).get("verdict") or {}
        if verdict.get("threshold") is not None:
            return float(verdict["threshold"])
        return runs.chance(num_classes) + runs.DOOMED_MARGIN

    def _apply(self, which: str, obj, name, network: Network, epoch: int, steps, optimizer=None, setup=None):
        if obj is None or which in self.disabled:
            return None
        try:
            from .pretrained import apply

            return apply(obj, network, name=name, epoch=epoch, init=self._init_network, steps=steps,
                         progress=forecast.progress(epoch, self.epochs), feature_set=self.features,
                         input_range=self.input_range, optimizer=optimizer, setup=setup)
        except Exception as exc:  # noqa: BLE001
            self._fail(which, exc)
            return None

    # -------------------------------------------------------------------- step
    def step(self, network, epoch: int, options: Optional[dict] = None, steps: Optional[int] = None,
             optimizer: Optional[dict] = None) -> Verdict:
        """Check the weights after ``epoch`` completed epochs and return the verdict.

        ``network`` is a Network or anything :func:`weightwatch.adapters.to_network`
        reads. ``options`` are passed to the rules (e.g. ``plain_chain``);
        ``steps`` is the number of optimizer steps so far, ``optimizer`` what
        trains the network (``{"name": "adam", "learning_rate": 1e-3}``), when known.
        """
        if not isinstance(network, Network):
            from .adapters import to_network

            network = to_network(network)
        epoch = int(epoch)
        self._resolve_predictor(network)
        finite = not network.non_finite_tensors()
        now = fc = None
        if finite:
            now = self._apply("predictor", self._predictor_obj, self._predictor_name, network, epoch, steps,
                              optimizer)
            fc = self._apply("forecaster", self._forecaster_obj, self._forecaster_name, network, epoch, steps,
                             optimizer)
        p_doom = self._doom_probability(network, epoch, steps, optimizer) if finite else None
        pred = None if now is None else now.accuracy
        interval = None if now is None else now.interval
        used = [x for x in (now, fc) if x is not None]
        in_domain = None if not used else all(x.in_domain for x in used)
        domain_reason = next((x.domain_reason for x in used if not x.in_domain), "")
        facts = domain.facts(network)
        num_classes = self.num_classes or facts.num_classes or 10
        ctx = RuleContext(
            network=network, epoch=epoch, predicted_accuracy=pred, num_classes=num_classes,
            input_range=self.input_range, history=tuple(self.history),
            options={"forecast_threshold": self._forecast_threshold(num_classes),
                     "chance_margin": self.chance_margin, **(options or {})},
            forecast=None if fc is None else fc.accuracy, forecast_interval=None if fc is None else fc.interval,
            in_domain=in_domain,
        )
        findings: list = []
        for rule in self._rules:
            key = f"rule {rule.name}"
            if key in self.disabled:
                continue
            try:
                found = rule(ctx)
            except Exception as exc:  # noqa: BLE001
                self._fail(key, exc)
                continue
            if found is None:
                continue
            for f in (found if isinstance(found, (list, tuple)) else [found]):
                if not isinstance(f, Finding):
                    self._fail(key, TypeError(f"rule returned {type(f).__name__}, expected Finding or None"))
                    break
                if in_domain is False and f.severity == Severity.DOOMED and not f.sound:
                    f = replace(f, severity=Severity.WARNING,
                                message=f.message + " (not a verdict: the predictors are not calibrated for this "
                                "model)")
                findings.append(f)

        counted = epoch >= self.start_from_epoch
        improved = False
        if pred is not None:
            if self._best_pred is not None and pred > self._best_pred + self.min_delta:
                improved = True
            if counted:
                self._best_pred = pred if self._best_pred is None else max(self._best_pred, pred)
        doomed_found = {f.rule: f for f in findings if f.severity == Severity.DOOMED}
        for name in list(self._streaks):
            if name not in doomed_found:
                self._streaks[name] = 0
        if counted:
            for name, f in doomed_found.items():
                self._streaks[name] = 1 if (improved and f.recovers) else self._streaks.get(name, 0) + 1

        need = max(self.patience, 1)
        confirmed = [f for f in findings if f.severity == Severity.DOOMED
                     and (f.reason == Reason.NON_FINITE or self._streaks.get(f.rule, 0) >= need)]
        if confirmed:
            status = Severity.DOOMED
            shown = confirmed
            if self.doomed_epoch is None:
                self.doomed_epoch = epoch
        elif findings:
            status = Severity.WARNING
            shown = findings
        else:
            status, shown = Severity.OK, []
        reasons = list(dict.fromkeys(f.reason for f in shown))
        message = " ".join(_sentence(f.message) for f in shown)
        if status == Severity.WARNING and doomed_found:
            message += f" (doomed if it persists for {need} checked epochs)"

        record = {
            "epoch": epoch,
            "pred_accuracy": pred,
            "pred_lo": None if interval is None else interval[0],
            "pred_hi": None if interval is None else interval[1],
            "pred_final_accuracy": None if fc is None else fc.accuracy,
            "final_lo": None if fc is None or fc.interval is None else fc.interval[0],
            "final_hi": None if fc is None or fc.interval is None else fc.interval[1],
            "in_domain": in_domain,
            "domain_reason": domain_reason,
            "doom_probability": p_doom,
            "status": str(status),
            "doomed": status == Severity.DOOMED,
            "reasons": [str(r) for r in reasons],
            "message": message,
            "findings": {f.rule: {"reason": str(f.reason), "severity": str(f.severity), "message": f.message,
                                  "details": f.details} for f in findings},
            "l2_norm": total_l2_norm(network),
        }
        if steps is not None:
            record["steps"] = int(steps)
        if self.log_stats:
            record["stats"] = _stats(network)
        self.history.append(_jsonable(record))
        name = self._predictor_name or self._forecaster_name
        return Verdict(status, reasons, message, pred, interval, name, self._note, epoch,
                       None if fc is None else fc.accuracy, None if fc is None else fc.interval, in_domain,
                       domain_reason, p_doom)

    def _doom_probability(self, network: Network, epoch: int, steps, optimizer) -> Optional[float]:
        """The doom model's probability, when its setup is readable and the run is in its domain; else None."""
        if self._doom_obj is None or "doom model" in self.disabled:
            return None
        try:
            setup = forecast.setup_of(network, optimizer)
        except Exception as exc:  # noqa: BLE001
            self._fail("doom model", exc)
            return None
        if setup is None:
            return None
        p = self._apply("doom model", self._doom_obj, self._doom_name, network, epoch, steps, optimizer, setup)
        return None if p is None or not p.in_domain else float(p.accuracy)

    @property
    def predictor_name(self) -> Optional[str]:
        return self._predictor_name

    @property
    def forecaster_name(self) -> Optional[str]:
        return self._forecaster_name

    @property
    def note(self) -> str:
        return self._note


def _optimizer_facts(optimizer) -> Optional[dict]:
    """``{"name", "kind", "learning_rate"}`` of a Keras or torch optimizer (None when unknown or unreadable).

    ``kind`` is the zoo's name for it (:data:`weightwatch.zoo.architectures.OPTIMIZERS`): the class name in
    lower case, ``"sgd_momentum"`` for SGD with a non-zero momentum.
    """
    if optimizer is None or isinstance(optimizer, dict):
        return optimizer
    try:
        name = type(optimizer).__name__
        if hasattr(optimizer, "param_groups"):  # torch
            lr = float(optimizer.param_groups[0]["lr"])
            momentum = float(optimizer.param_groups[0].get("momentum", 0.0) or 0.0)
        else:  # Keras: the current learning rate (a schedule evaluated at the current step)
            lr = float(np.asarray(optimizer.learning_rate))
            momentum = float(np.asarray(getattr(optimizer, "momentum", 0.0) or 0.0))
        kind = "sgd_momentum" if name.lower() == "sgd" and momentum > 0 else name.lower()
        return {"name": name, "kind": kind, "learning_rate": lr}
    except Exception:  # noqa: BLE001 - an optimizer we cannot read is simply unknown
        return None


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _stats(network: Network) -> dict:
    from .features import layer_stats

    stats = layer_stats(network)
    out = {}
    for i, layer in enumerate(network.layers):
        out[f"l{i}.bias.max"] = float(stats[i, BIAS, STAT["p100"]])
        out[f"l{i}.kernel.var"] = float(stats[i, KERNEL, STAT["var"]])
    return out


class Watcher:
    """Framework-neutral core of the training callbacks (a mixin).

    Owns what every framework adapter shares: the Keras-``EarlyStopping``
    style options, the check cadence (``every``), never crashing the user's
    training (one warning, then disabled, unless ``strict``), the verbose line,
    the one-time notes (out of domain, nothing to check) and the stop
    decision. Adapters supply the network and their own way to log and to stop.
    """

    framework = "weightwatch"

    def _setup_watch(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                     start_from_epoch: int = 1, min_delta: float = 0.02, input_range=None,
                     log_stats: bool = False, strict: bool = False, verbose: int = 0, rules="all",
                     **monitor_options) -> None:
        if every < 1:
            raise InvalidArgumentError(f"every must be >= 1, got {every}")
        self.every = int(every)
        self.stop_on_doom = bool(stop_on_doom)
        self.strict = bool(strict)
        self.verbose = int(verbose)
        self.monitor = Monitor(predictor=predictor, rules=rules, patience=patience,
                               start_from_epoch=start_from_epoch, min_delta=min_delta, input_range=input_range,
                               strict=strict, log_stats=log_stats, **monitor_options)
        self._reset_watch()

    def _reset_watch(self) -> None:
        self.stopped_epoch = None
        self.stopping_reason = StoppingReason.NOT_STOPPED
        self.stopping_message = ""
        self.verdict = None
        self._disabled = False
        self._said: set = set()

    def _say(self, key: str, text: str) -> None:
        """A note shown once per run: printed when verbose, logged otherwise."""
        if key in self._said:
            return
        self._said.add(key)
        if self.verbose:
            print(text, flush=True)
        log.warning("%s", text)

    def _begin(self, read_network) -> None:
        """Record the weights at the start of training; never fails the user's training."""
        self.monitor.reset()
        self._reset_watch()
        try:
            self.monitor.start(read_network())
        except Exception as exc:  # noqa: BLE001 - e.g. a model not built yet: the forecast then lacks the start
            if self.strict:
                raise
            log.debug("weightwatch: initial weights not read (%s: %s)", type(exc).__name__, exc)

    def _watch(self, epoch: int, read_network, plain_chain, steps=None, optimizer=None) -> Optional[Verdict]:
        """Check after ``epoch`` completed epochs; None when skipped or disabled.

        ``read_network()`` returns the Network, ``plain_chain()`` whether the
        interval-bound rules are sound for the model, ``steps`` the optimizer
        steps so far (None if unknown). Sets ``stopped_epoch`` when the run is
        doomed and ``stop_on_doom`` is on.
        """
        if self._disabled or epoch % self.every:
            return None
        try:
            network = read_network()
            if not len(network):
                self._disabled = True
                self._say("empty", f"weightwatch: nothing can be checked in this model: it has no layer the "
                          f"{self.framework} adapter reads (conv, dense); the callback is off for this run")
                return None
            verdict = self.monitor.step(network, epoch, options={"plain_chain": plain_chain()}, steps=steps,
                                        optimizer=_optimizer_facts(optimizer))
        except Exception as exc:  # noqa: BLE001 - never crash the user's training
            if self.strict:
                raise
            self._disabled = True
            warnings.warn(f"weightwatch: the {self.framework} callback failed ({type(exc).__name__}: {exc}) and "
                          "is disabled for the rest of this run (pass strict=True to raise)", WeightWatchWarning,
                          stacklevel=3)
            return None
        self.verdict = verdict
        if verdict.note and self.verbose and "note" not in self._said:  # which predictor, once (logged anyway)
            self._said.add("note")
            print(f"weightwatch: {verdict.note}", flush=True)
        if verdict.in_domain is False:
            self._say("domain", f"weightwatch: predicted accuracy is not calibrated for this model: "
                      f"{verdict.domain_reason}; ww_in_domain = 0, and its numbers will never stop the run")
        if self.verbose:
            print(verdict.line(), flush=True)
        else:
            log.info("%s", verdict.line())
        if verdict.doomed and self.stop_on_doom and self.stopped_epoch is None:
            self.stopped_epoch = epoch
            self.stopping_reason = (StoppingReason.NON_FINITE if Reason.NON_FINITE in verdict.reasons
                                    else StoppingReason.DOOMED)
            self.stopping_message = verdict.message
            log.warning("weightwatch: stopping training after epoch %d: %s", epoch, verdict.message)
        return verdict

    @staticmethod
    def _log_values(verdict: Verdict) -> dict:
        """What the callbacks log per check: ``ww_pred_accuracy``, ``ww_pred_final_accuracy``,
        ``ww_doom_probability``, ``ww_in_domain``, ..."""
        nan = float("nan")
        p, f, d = verdict.predicted_accuracy, verdict.forecast, verdict.doom_probability
        return {"ww_pred_accuracy": nan if p is None else float(p),
                "ww_pred_final_accuracy": nan if f is None else float(f),
                "ww_doom_probability": nan if d is None else float(d),
                "ww_in_domain": nan if verdict.in_domain is None else float(verdict.in_domain),
                "ww_doomed": float(verdict.doomed), "ww_status": float(int(verdict.status))}

    @property
    def stopping_reason_message(self) -> Optional[str]:
        """Lightning's name for :attr:`stopping_message` (None until stopped)."""
        return self.stopping_message or None

    @property
    def history(self):
        """The monitor's history as a pandas DataFrame."""
        return self.monitor.history_frame()

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "stopped_epoch": self.stopped_epoch,
                "stopping_reason": self.stopping_reason.name, "stopping_message": self.stopping_message}

    def load_state_dict(self, state: dict) -> None:
        self.monitor.load_state_dict(state.get("monitor", {}))
        self.stopped_epoch = state.get("stopped_epoch")
        self.stopping_reason = StoppingReason[state.get("stopping_reason", "NOT_STOPPED")]
        self.stopping_message = state.get("stopping_message", "")
