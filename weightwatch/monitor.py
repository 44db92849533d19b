"""Framework-neutral training monitor: weights per epoch -> verdict.

The :class:`Monitor` holds the state of one training run (history, patience
counters). Thin adapters (:mod:`weightwatch.keras`, :mod:`weightwatch.torch`,
:mod:`weightwatch.lightning`) convert the framework's model to a
:class:`~weightwatch.network.Network` and call :meth:`Monitor.step` once per
epoch; they never hold detection logic themselves.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .network import Network
from .rules import Finding, Reason, Rule, RuleContext, Severity, total_l2_norm

log = logging.getLogger(__name__)

__all__ = ["Monitor", "Verdict", "WeightWatchWarning"]


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
    interval : (lo, hi) or None
        Prediction interval when the predictor has ``predict_interval``.
    predictor_name : str or None
    note : str
        E.g. why no predictor is used.
    """

    status: Severity
    reasons: list = field(default_factory=list)
    message: str = ""
    predicted_accuracy: Optional[float] = None
    interval: Optional[tuple] = None
    predictor_name: Optional[str] = None
    note: str = ""
    epoch: Optional[int] = None

    @property
    def doomed(self) -> bool:
        return self.status == Severity.DOOMED

    @property
    def ok(self) -> bool:
        return self.status == Severity.OK

    def line(self) -> str:
        """One log line: ``ww: epoch 3 pred_acc 0.412 [ok]`` (+ reasons and message)."""
        p = self.predicted_accuracy
        acc = "n/a" if p is None or not math.isfinite(p) else f"{p:.3f}"
        text = f"ww: epoch {self.epoch} pred_acc {acc} [{self.status}]"
        if self.reasons:
            text += " " + ",".join(r.value for r in self.reasons) + ": " + self.message
        return text

    def __str__(self) -> str:
        acc = "n/a" if self.predicted_accuracy is None else f"{self.predicted_accuracy:.3f}"
        text = f"[{self.status}] pred_acc {acc}"
        return f"{text}: {self.message}" if self.message else text


def _jsonable(obj):
    """Plain JSON types from numpy scalars/arrays, enums, tuples (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (Severity,)):
        return str(obj)
    if isinstance(obj, Reason):
        return obj.value
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


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
                raise ValueError(f"no rule named {r!r}; registered: {', '.join(sorted(table))}")
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
    predictor : None, "auto", path or fitted predictor
        Accuracy predictor (sklearn-style ``predict``). ``"auto"`` asks
        ``weightwatch.pretrained.auto_predictor(network)`` for one matching
        the network; without one only the rules run (logged once). The name
        of a shipped predictor (``weightwatch.pretrained.list()``) loads it,
        e.g. ``"paper-cnn-early-forecast-gbm"`` to judge each epoch by the
        forecast of the *final* accuracy. A path is loaded with
        :func:`weightwatch.predictors.load_predictor`.
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
        A predicted accuracy above the best earlier one by more than
        ``min_delta`` counts as recovery and restarts the patience count of
        predictor-based findings (``near_chance``). The default (0.02) keeps
        the predictor's jitter around chance from resetting the count.
    input_range : (lo, hi)
        Range of the network's inputs (scalars or per input channel), for the
        interval-bound rules.
    num_classes : int
    chance_margin : float
        ``near_chance`` fires below ``1/num_classes + chance_margin``.
    strict : bool
        Re-raise errors of rules and predictor instead of warning once and
        disabling the failing component.
    features : str, optional
        Feature set of an in-memory predictor (default ``"W_L"``); a loaded
        predictor's manifest says its own.
    log_stats : bool
        Store per-layer bias maxima and the weight norm in every history record.
    """

    def __init__(self, predictor=None, rules="all", patience: int = 2, start_from_epoch: int = 1,
                 min_delta: float = 0.02, input_range=(-1.0, 1.0), num_classes: int = 10,
                 chance_margin: float = 0.1, strict: bool = False, features: Optional[str] = None,
                 log_stats: bool = False):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.predictor = predictor
        self.rules = rules
        self.patience = int(patience)
        self.start_from_epoch = int(start_from_epoch)
        self.min_delta = float(min_delta)
        self.input_range = tuple(input_range)
        self.num_classes = int(num_classes)
        self.chance_margin = float(chance_margin)
        self.strict = bool(strict)
        self.features = features
        self.log_stats = bool(log_stats)
        self._rules = _resolve_rules(rules)
        self._predictor_obj = None
        self._predictor_name = None
        self._note = ""
        self._predictor_resolved = False
        self.disabled: set = set()
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the run (history, counters); the predictor stays loaded."""
        self.history: list = []
        self._streaks: dict = {}
        self._best_pred: Optional[float] = None
        self.doomed_epoch: Optional[int] = None

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

        cols = ["epoch", "pred_accuracy", "pred_lo", "pred_hi", "status", "doomed", "reasons", "message"]
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

    def _resolve_predictor(self, network: Network) -> None:
        if self._predictor_resolved:
            return
        self._predictor_resolved = True
        p = self.predictor
        if p is None:
            self._note = "no predictor: rules only"
            return
        if isinstance(p, str) and p == "auto":
            found = None
            if importlib.util.find_spec("weightwatch.pretrained") is not None:
                try:
                    found = importlib.import_module("weightwatch.pretrained").auto_predictor(network)
                except Exception as exc:  # noqa: BLE001 - a broken lookup must not stop training
                    self._fail("predictor", exc)
            if found is None:
                self._note = "no pretrained predictor matches this network: rules only"
                log.info("weightwatch: %s", self._note)
                return
            self._predictor_obj, self._predictor_name, self._note = found
            return
        if isinstance(p, str) and not os.path.exists(p):
            shipped = importlib.import_module("weightwatch.pretrained")
            names = shipped.list()
            if p not in names:
                raise ValueError(f"predictor {p!r} is neither a saved predictor's directory nor a shipped "
                                 f"predictor; shipped: {', '.join(names) or 'none'}")
            self._predictor_obj, self._predictor_name = shipped.load(p), p
            return
        if isinstance(p, (str, os.PathLike)):
            from .predictors.persist import load_predictor

            p = load_predictor(p)
        self._predictor_obj = p
        manifest = getattr(p, "manifest_", None) or {}
        self._predictor_name = manifest.get("name") or type(p).__name__

    def _feature_plan(self) -> tuple:
        """(feature set name, whether the epoch is appended as the last feature)."""
        p = self._predictor_obj
        manifest = getattr(p, "manifest_", None) or {}
        names = manifest.get("feature_names")
        if names is None:
            names = getattr(p, "feature_names_in_", None)
        names = [] if names is None else list(names)
        feature_set = manifest.get("feature_set") or self.features or "W_L"
        return feature_set, bool(names) and names[-1] == "epoch"

    def _predict(self, network: Network, epoch: int) -> tuple:
        p = self._predictor_obj
        if p is None or "predictor" in self.disabled:
            return None, None
        try:
            from .features import get_extractor

            feature_set, with_epoch = self._feature_plan()
            x = get_extractor(feature_set)(network)
            if with_epoch:
                x = np.append(x, float(epoch))
            x = x.reshape(1, -1)
            pred = float(p.predict(x)[0])
            interval = None
            if hasattr(p, "predict_interval") and getattr(p, "quantile_boosters_", True) is not None:
                try:
                    lo, hi = p.predict_interval(x)
                    interval = (float(np.ravel(lo)[0]), float(np.ravel(hi)[0]))
                except ValueError:  # fitted without an interval
                    interval = None
            return pred, interval
        except Exception as exc:  # noqa: BLE001
            self._fail("predictor", exc)
            return None, None

    # -------------------------------------------------------------------- step
    def step(self, network, epoch: int, options: Optional[dict] = None) -> Verdict:
        """Check the weights after ``epoch`` completed epochs and return the verdict.

        ``network`` is a Network or anything :func:`weightwatch.adapters.to_network`
        reads. ``options`` are passed to the rules (e.g. ``plain_chain``).
        """
        if not isinstance(network, Network):
            from .adapters import to_network

            network = to_network(network)
        epoch = int(epoch)
        self._resolve_predictor(network)
        pred, interval = self._predict(network, epoch)
        ctx = RuleContext(
            network=network, epoch=epoch, predicted_accuracy=pred, num_classes=self.num_classes,
            input_range=self.input_range, history=tuple(self.history),
            options={"chance_margin": self.chance_margin, **(options or {})},
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
                findings.append(f)

        counted = epoch >= self.start_from_epoch
        improved = False
        if pred is not None:
            if self._best_pred is not None and pred > self._best_pred + self.min_delta:
                improved = True
            if counted:
                self._best_pred = pred if self._best_pred is None else max(self._best_pred, pred)
        doomed_rules = {f.rule for f in findings if f.severity == Severity.DOOMED}
        for name in list(self._streaks):
            if name not in doomed_rules:
                self._streaks[name] = 0
        if counted:
            for name in doomed_rules:
                self._streaks[name] = self._streaks.get(name, 0) + 1
            if improved and "near_chance" in self._streaks:
                self._streaks["near_chance"] = 0 if "near_chance" not in doomed_rules else 1

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
        if status == Severity.WARNING and doomed_rules:
            message += f" (doomed if it persists for {need} checked epochs)"

        record = {
            "epoch": epoch,
            "pred_accuracy": pred,
            "pred_lo": None if interval is None else interval[0],
            "pred_hi": None if interval is None else interval[1],
            "status": str(status),
            "doomed": status == Severity.DOOMED,
            "reasons": [r.value for r in reasons],
            "message": message,
            "findings": {f.rule: {"reason": f.reason.value, "severity": str(f.severity), "message": f.message,
                                  "details": f.details} for f in findings},
            "l2_norm": total_l2_norm(network),
        }
        if self.log_stats:
            record["stats"] = _stats(network)
        self.history.append(_jsonable(record))
        return Verdict(status, reasons, message, pred, interval, self._predictor_name, self._note, epoch)

    @property
    def predictor_name(self) -> Optional[str]:
        return self._predictor_name

    @property
    def note(self) -> str:
        return self._note


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
        out[f"l{i}.bias.max"] = float(stats[i, 1, 6])
        out[f"l{i}.kernel.var"] = float(stats[i, 0, 1])
    return out


class Watcher:
    """Framework-neutral core of the training callbacks (a mixin).

    Owns what every framework adapter shares: the Keras-``EarlyStopping``
    style options, the check cadence (``every``), never crashing the user's
    training (one warning, then disabled, unless ``strict``), the verbose line
    and the stop decision. Adapters supply the network and their own way to
    log and to stop.
    """

    framework = "weightwatch"

    def _setup_watch(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                     start_from_epoch: int = 1, min_delta: float = 0.02, input_range=(-1, 1),
                     log_stats: bool = False, strict: bool = False, verbose: int = 0, rules="all",
                     **monitor_options) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
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
        self.stopping_message = ""
        self.verdict = None
        self._disabled = False

    def _watch(self, epoch: int, read_network, plain_chain) -> Optional[Verdict]:
        """Check after ``epoch`` completed epochs; None when skipped or disabled.

        ``read_network()`` returns the Network, ``plain_chain()`` whether the
        interval-bound rules are sound for the model. Sets ``stopped_epoch``
        when the run is doomed and ``stop_on_doom`` is on.
        """
        if self._disabled or epoch % self.every:
            return None
        try:
            verdict = self.monitor.step(read_network(), epoch, options={"plain_chain": plain_chain()})
        except Exception as exc:  # noqa: BLE001 - never crash the user's training
            if self.strict:
                raise
            self._disabled = True
            warnings.warn(f"weightwatch: the {self.framework} callback failed ({type(exc).__name__}: {exc}) and "
                          "is disabled for the rest of this run (pass strict=True to raise)", WeightWatchWarning,
                          stacklevel=3)
            return None
        self.verdict = verdict
        if self.verbose:
            print(verdict.line(), flush=True)
        else:
            log.info("%s", verdict.line())
        if verdict.doomed and self.stop_on_doom and self.stopped_epoch is None:
            self.stopped_epoch = epoch
            self.stopping_message = verdict.message
            log.warning("weightwatch: stopping training after epoch %d: %s", epoch, verdict.message)
        return verdict

    @staticmethod
    def _log_values(verdict: Verdict) -> dict:
        p = verdict.predicted_accuracy
        return {"ww_pred_accuracy": float("nan") if p is None else float(p), "ww_doomed": float(verdict.doomed),
                "ww_status": float(int(verdict.status))}

    @property
    def history(self):
        """The monitor's history as a pandas DataFrame."""
        return self.monitor.history_frame()

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "stopped_epoch": self.stopped_epoch,
                "stopping_message": self.stopping_message}

    def load_state_dict(self, state: dict) -> None:
        self.monitor.load_state_dict(state.get("monitor", {}))
        self.stopped_epoch = state.get("stopped_epoch")
        self.stopping_message = state.get("stopping_message", "")
