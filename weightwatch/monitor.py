"""Framework-neutral training monitor: weights per epoch -> verdict.

The :class:`Monitor` only sequences one check: read the weights, ask the models (the predictor of the
accuracy now, the forecaster of the final accuracy, the doom model: :mod:`weightwatch.monitor_models`) and
the rules, then ask the stop policy (:mod:`weightwatch.policy`) and record the verdict
(:mod:`weightwatch.history`, :mod:`weightwatch.verdict`). Thin adapters (:mod:`weightwatch.keras`,
:mod:`weightwatch.torch`, :mod:`weightwatch.lightning`, around :class:`weightwatch.watch.Watcher`) call
:meth:`Monitor.step` once per epoch; they never hold detection logic themselves.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Optional

import numpy as np

from . import domain, forecast, history, logged_features, monitor_models, policy, pretrained, runs
from .errors import InvalidArgumentError, UnknownNameError
from .network import Network
from .rules import Finding, Reason, Rule, RuleContext, Severity
from .verdict import Guard, StoppingReason, Verdict, WeightWatchWarning

log = logging.getLogger(__name__)

__all__ = ["Monitor", "StoppingReason", "Verdict", "WeightWatchWarning"]


class Monitor:
    """Judge a training run from its weights, epoch by epoch.

    Parameters
    ----------
    predictor : None, "auto", name, path or fitted predictor
        Predictor of the accuracy *now* (``ww_pred_accuracy``), through :func:`weightwatch.pretrained.resolve`:
        ``"auto"`` picks one for the network (yours on the predictor path first; none: rules only, logged
        once), a shipped name or a saved predictor's directory is loaded (a path that does not exist is an
        error). A forecaster given here becomes the forecaster.
    forecaster : None, "auto", name, path or fitted predictor
        Forecaster of the accuracy at the *end* of the run (``ww_pred_final_accuracy`` and its 90% interval,
        ``_low`` / ``_high``). ``"auto"`` (with ``predictor="auto"`` only): yours for the family on the predictor
        path, else the shipped verdict forecaster (``plain-forecast-gbm``, any network). A paper-CNN forecaster
        given by name (``paper-cnn-early-forecast-gbm``) also judges doom by its upper bound (``forecast_doomed``).
    rules : "all", list of names or Rule objects
        Rules to run (registered through the ``register_rules`` hook).
    patience, start_from_epoch, min_delta
        The stop policy (:class:`weightwatch.policy.StopPolicy`): a DOOMED finding dooms the run once its rule
        reported it at ``patience`` consecutive checked epochs (non-finite weights: at once); epochs before
        ``start_from_epoch`` never count; a predicted accuracy above the best earlier one by more than
        ``min_delta`` restarts the count of findings that recover.
    input_range : (lo, hi) or None
        Declared range of the inputs; the interval-bound rules (``dead_units``, ``output_collapse``) are
        proofs only for a declared range (None: they assume [-1, 1] and only warn).
    num_classes : int or None
        None: read from the model (its last layer's units; one unit is a binary classifier).
    chance_margin : float or None
        The forecast dooms a run when its upper bound is below ``chance + chance_margin``; None: the threshold
        the forecaster shipped with (``pretrained/VERDICTS.md``).
    epochs : int or None
        Planned length of the run (the forecast's progress is ``epoch / epochs``); the callbacks give it
        per run from the framework (:meth:`plan`). None: the zoo's 18.
    strict : bool
        Re-raise errors of rules and models instead of warning once and disabling the failing component.
    feature_set : str, optional
        Feature set of an in-memory predictor (default ``"W_L"``); a loaded predictor's manifest says its own.
    features : list of str or Extractor, optional
        Feature sets to log every check beside the verdict, any registered extractor (a plugin's too): in the
        history and the verdict's :meth:`~Verdict.to_dict` as ``ww_feature_<name>`` (one number) or
        ``ww_feature_<name>_<i>`` (the ``i``-th of a vector; :mod:`weightwatch.logged_features`). Logged, never
        judged. An unknown name is an error here.
    log_stats : bool
        Store per-layer bias maxima and kernel variances in every history record.
    predictor_path : None, directory or list of directories
        Where ``"auto"`` looks first for your own predictors, before ``WEIGHTWATCH_PREDICTOR_PATH`` and the
        shipped ones (:func:`weightwatch.pretrained.find_on_path`).
    doom_model : "auto", None, name, path or fitted predictor
        Probability that the run ends doomed (``ww_doom_probability``). ``"auto"`` (unless ``predictor=None``):
        the shipped verdict doom model (``plain-doom-gbm``), which reads the run's evidence (the ``optimizer``
        and ``logs`` given to :meth:`step`, the weights now, at the start and at the last check) and whose
        probability at or above its threshold is the stop signal (``doom_model``, subject to ``patience``).
    """

    def __init__(self, predictor="auto", rules="all", patience: int = 2, start_from_epoch: int = 1,
                 min_delta: float = 0.02, input_range=None, num_classes: Optional[int] = None,
                 chance_margin: Optional[float] = None, strict: bool = False, feature_set: Optional[str] = None,
                 log_stats: bool = False, forecaster="auto", epochs: Optional[int] = None, predictor_path=None,
                 doom_model="auto", features=None):
        if num_classes is not None and int(num_classes) < 2:
            raise InvalidArgumentError(f"num_classes must be >= 2 (a 1-unit sigmoid output is 2), got {num_classes}")
        self._policy = policy.StopPolicy(int(patience), int(start_from_epoch), float(min_delta))
        self.predictor, self.forecaster, self.doom_model = predictor, forecaster, doom_model
        self.rules = rules
        self.input_range = None if input_range is None else tuple(input_range)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.chance_margin = None if chance_margin is None else float(chance_margin)
        self._epochs = _epochs(epochs)
        self.feature_set = feature_set
        self.features = logged_features.resolve(features)
        self.log_stats = bool(log_stats)
        self.predictor_path = predictor_path
        self._guard = Guard(strict)
        pretrained.search_path(predictor_path)  # bad entries: say so now
        monitor_models.check_given(predictor, forecaster, doom_model)
        self._rules = _resolve_rules(rules)
        self._models: Optional[monitor_models.Models] = None
        self._judge = None  # the verdict models' view of this run (monitor_models.judge)
        self._run_epochs: Optional[int] = None
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the run (history, policy state, weights at the start); the models stay loaded."""
        self.history: list = []
        self._state = policy.PolicyState()
        self._init_network: Optional[Network] = None
        if getattr(self, "_judge", None) is not None:
            self._judge.reset()

    def plan(self, epochs: Optional[int]) -> None:
        """The planned length of this run, as the framework says (None: the constructor's ``epochs``)."""
        self._run_epochs = _epochs(epochs)

    def start(self, network) -> None:
        """Record the weights at the start of training (the forecaster compares with them)."""
        try:
            network = _as_network(network)
            self._init_network = network if len(network) else None
            if self._judge is not None:
                self._judge.start(self._init_network)
        except Exception as exc:  # noqa: BLE001 - the start is optional information, never fatal
            self._guard.fail("reading the initial weights", exc)

    def state_dict(self) -> dict:
        """JSON-serialisable state, for checkpoint/resume."""
        return history.jsonable_record({"history": self.history, **self._state.to_dict(),
                                        "disabled": sorted(self.disabled)})

    def load_state_dict(self, state: dict) -> None:
        self.history = [dict(r) for r in state.get("history", [])]
        self._state = policy.PolicyState.from_dict(state)
        self._guard.disabled = set(state.get("disabled", []))

    def history_frame(self):
        """History as a pandas DataFrame (one row per checked epoch)."""
        return history.frame(self.history)

    # -------------------------------------------------------------------- step
    def step(self, network, epoch: int, options: Optional[dict] = None, steps: Optional[int] = None,
             optimizer: Optional[dict] = None, logs: Optional[dict] = None) -> Verdict:
        """Check the weights after ``epoch`` completed epochs and return the verdict.

        ``network`` is a Network or anything :func:`weightwatch.adapters.to_network` reads. ``options`` are
        passed to the rules (e.g. ``plain_chain``); ``steps`` is the number of optimizer steps so far,
        ``optimizer`` what trains the network (``{"kind": "adam", "learning_rate": 1e-3}``), ``logs`` what the
        framework logged for the epoch (``{"loss": ..., "accuracy": ...}``), when known.
        """
        network, epoch = _as_network(network), int(epoch)
        models = self._models_for(network)
        num_classes = self.num_classes or domain.facts(network).num_classes or runs.DEFAULT_NUM_CLASSES
        now = fc = p_doom = doom_finding = None
        if not network.non_finite_tensors():
            how = dict(epoch=epoch, init=self._init_network, steps=steps, feature_set=self.feature_set,
                       progress=forecast.progress(epoch, self.epochs), input_range=self.input_range)
            now = monitor_models.ask(self._guard, "predictor", models.predictor, network, optimizer=optimizer, **how)
            if self._judge is not None:
                p_doom, doom_finding, fc = monitor_models.ask_verdict(
                    self._guard, self._judge, network, epoch, name=self.forecaster_name or "", logs=logs,
                    optimizer=optimizer, epochs=self.epochs, num_classes=num_classes)
            if not monitor_models.uses_evidence(models.forecaster):
                fc = monitor_models.ask(self._guard, "forecaster", models.forecaster, network,
                                        optimizer=optimizer, **how)
            if not monitor_models.uses_evidence(models.doom):
                p_doom = monitor_models.doom_probability(self._guard, models.doom, network, optimizer, **how)
        old_fc = None if monitor_models.uses_evidence(models.forecaster) else fc  # forecast_doomed reads only these
        # the verdict forecaster's own domain only widens its interval (it is never a reason to distrust a stop)
        used = [x for x in (now, old_fc) if x is not None]
        in_domain = None if not used else all(x.in_domain for x in used)
        domain_reason = next((x.domain_reason for x in used if not x.in_domain), "")
        ctx = RuleContext(
            network=network, epoch=epoch, predicted_accuracy=None if now is None else now.accuracy,
            num_classes=num_classes, input_range=self.input_range, history=tuple(self.history),
            options={"forecast_threshold": self._forecast_threshold(num_classes),
                     "chance_margin": self.chance_margin, **(options or {})},
            forecast=None if old_fc is None else old_fc.accuracy,
            forecast_interval=None if old_fc is None else old_fc.interval, in_domain=in_domain)
        findings = run_rules(self._rules, ctx, self._guard) + ([doom_finding] if doom_finding else [])
        self._state, decision, _ = policy.decide(self._policy, self._state, observation(epoch, now, findings))
        status, reasons, message = summarise(findings, decision)
        logged = logged_features.values(self.features, network, self._guard)
        self.history.append(history.record(network, epoch, now, fc, p_doom, in_domain, domain_reason, status,
                                           reasons, message, findings, steps, self.log_stats, logged))
        return Verdict(status, reasons, message, ctx.predicted_accuracy, None if now is None else now.interval,
                       models.name, models.note, epoch, None if fc is None else fc.accuracy,
                       None if fc is None else fc.interval, in_domain, domain_reason, p_doom, decision.reason,
                       logged)

    def _models_for(self, network: Network) -> monitor_models.Models:
        if self._models is None:
            self._models = monitor_models.choose(network, self.predictor, self.forecaster, self.doom_model,
                                                 self.predictor_path, self._guard)
            self._judge = monitor_models.judge(self._models)
            if self._judge is not None:
                self._judge.start(self._init_network)
        return self._models

    def _forecast_threshold(self, num_classes: int) -> float:
        if self.chance_margin is not None:
            return runs.doom_line(num_classes, self.chance_margin)
        fc = None if self._models is None else self._models.forecaster
        threshold = None if fc is None else fc.verdict.get("threshold")
        return float(threshold) if threshold is not None else runs.doom_line(num_classes)

    # ------------------------------------------------------------- read-only
    patience = property(lambda self: self._policy.patience)
    start_from_epoch = property(lambda self: self._policy.start_from_epoch)
    min_delta = property(lambda self: self._policy.min_delta)
    strict = property(lambda self: self._guard.strict)
    disabled = property(lambda self: self._guard.disabled, doc="Components disabled after a failure.")
    doomed_epoch = property(lambda self: self._state.stopped_epoch, doc="First epoch judged doomed (None).")
    epochs = property(lambda self: self._run_epochs or self._epochs, doc="Planned epochs of this run (None: 18).")
    predictor_name = property(lambda self: None if self._models is None or self._models.predictor is None
                              else self._models.predictor.name)
    forecaster_name = property(lambda self: None if self._models is None or self._models.forecaster is None
                               else self._models.forecaster.name)
    note = property(lambda self: "" if self._models is None else self._models.note)


def _epochs(epochs) -> Optional[int]:
    if epochs is not None and int(epochs) < 1:
        raise InvalidArgumentError(f"epochs must be >= 1, got {epochs}")
    return None if epochs is None else int(epochs)


def _as_network(network) -> Network:
    if isinstance(network, Network):
        return network
    from .adapters import to_network

    return to_network(network)


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


def run_rules(rules, ctx: RuleContext, guard: Guard) -> list:
    """Every rule's findings for ``ctx``; out of domain, an unsound DOOMED finding is only a warning."""
    findings: list = []
    for rule in rules:
        key = f"rule {rule.name}"
        if guard.off(key):
            continue
        try:
            found = rule(ctx)
        except Exception as exc:  # noqa: BLE001
            guard.fail(key, exc)
            continue
        for f in [] if found is None else (found if isinstance(found, (list, tuple)) else [found]):
            if not isinstance(f, Finding):
                guard.fail(key, TypeError(f"rule returned {type(f).__name__}, expected Finding or None"))
                break
            if ctx.in_domain is False and f.severity == Severity.DOOMED and not f.sound:
                f = replace(f, severity=Severity.WARNING, message=f.message + " (not a verdict: the predictors "
                            "are not calibrated for this model)")
            findings.append(f)
    return findings


def observation(epoch: int, now, findings) -> policy.Observation:
    """The stop policy's observation of a check: one signal per rule with a DOOMED finding (non-finite weights:
    immediate), the predicted accuracy as the score."""
    doomed = {}
    for f in findings:
        if f.severity == Severity.DOOMED:
            prev = doomed.get(f.rule)
            doomed[f.rule] = policy.Signal(f.rule, f.recovers,
                                           f.reason == Reason.NON_FINITE or (prev is not None and prev.immediate))
    return policy.Observation(epoch, score=None if now is None else now.accuracy, signals=tuple(doomed.values()))


def summarise(findings, decision: policy.Decision) -> tuple:
    """(status, reasons, message) of a check from its findings and the policy's decision."""
    if decision.stop:
        status = Severity.DOOMED
        shown = [f for f in findings if f.severity == Severity.DOOMED and f.rule in decision.confirmed]
    elif findings:
        status, shown = Severity.WARNING, findings
    else:
        status, shown = Severity.OK, []
    reasons = list(dict.fromkeys(f.reason for f in shown))
    message = " ".join(_sentence(f.message) for f in shown)
    if status == Severity.WARNING and decision.firing:
        message += f" (doomed if it persists for {decision.need} checked epochs)"
    return status, reasons, message


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
