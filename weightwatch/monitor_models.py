"""The three models a monitor asks, chosen once per run through the inference door.

The predictor of the accuracy now, the forecaster of the final accuracy and the doom model are each
resolved by :func:`weightwatch.pretrained.resolve` (``"auto"``: chosen for the network) and applied by
:func:`weightwatch.inference.apply`; a model that fails is disabled for the rest of the run by the
monitor's :class:`~weightwatch.verdict.Guard` (never the user's training).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from . import forecast, pretrained, runs
from .errors import InvalidArgumentError
from .inference import ACCURACY, DOOM, FORECASTER, VERDICT_DOOM, VERDICT_FORECASTER, LoadedPredictor, apply
from .network import Network
from .verdict import Guard

log = logging.getLogger("weightwatch.monitor")

__all__ = ["Models", "check_given", "choose", "judge", "uses_evidence"]


@dataclass
class Models:
    """The run's models (None: not used) and the note saying which, or why none."""

    predictor: Optional[LoadedPredictor] = None
    forecaster: Optional[LoadedPredictor] = None
    doom: Optional[LoadedPredictor] = None
    note: str = ""

    @property
    def name(self) -> Optional[str]:
        """The name a verdict reports: the predictor's, else the forecaster's."""
        used = self.predictor or self.forecaster
        return None if used is None else used.name


def _is_auto(spec) -> bool:
    return isinstance(spec, str) and spec == "auto"


def check_given(*specs) -> None:
    """Fail now, naming it, for a given predictor path that does not exist (resolution waits for the network)."""
    for spec in specs:
        if spec is not None and not _is_auto(spec) and (isinstance(spec, str) or hasattr(spec, "__fspath__")):
            pretrained.check_path(spec)


def _auto(guard: Guard, which: str, network: Network, role: str, predictor_path) -> Optional[LoadedPredictor]:
    try:
        return pretrained.resolve("auto", network, role=role, predictor_path=predictor_path)
    except Exception as exc:  # noqa: BLE001 - a broken lookup must not stop training
        guard.fail(which, exc)
        return None


def choose(network: Network, predictor, forecaster, doom_model, predictor_path, guard: Guard) -> Models:
    """Resolve the monitor's three models for ``network`` (see :class:`~weightwatch.monitor.Monitor`)."""
    m, notes = Models(), []
    if _is_auto(predictor):
        m.predictor = _auto(guard, "predictor", network, ACCURACY, predictor_path)
        notes.append("no pretrained predictor matches this network: rules only" if m.predictor is None
                     else m.predictor.note)
    elif predictor is not None:
        m.predictor = pretrained.resolve(predictor)
        if m.predictor.role in (FORECASTER, VERDICT_FORECASTER):  # a forecaster given as the predictor
            m.forecaster, m.predictor, forecaster = m.predictor, None, None
    else:
        notes.append("no predictor: rules only")
    if _is_auto(forecaster):
        if _is_auto(predictor):
            m.forecaster = _auto(guard, "forecaster", network, FORECASTER, predictor_path)
    elif forecaster is not None:
        m.forecaster = pretrained.resolve(forecaster)
    if m.forecaster is None and m.predictor is not None:
        notes.append("no forecaster of the final accuracy for this family: predictor findings only warn")
    if _is_auto(doom_model):
        if predictor is not None:  # predictor=None: rules only
            m.doom = _auto(guard, "doom model", network, DOOM, predictor_path)
    elif doom_model is not None:
        m.doom = pretrained.resolve(doom_model)
        if m.doom.role not in (DOOM, VERDICT_DOOM):
            name, m.doom = m.doom.name, None
            guard.fail("doom model", InvalidArgumentError(
                f"doom_model {name!r} is not a doom model (its manifest's role is not {VERDICT_DOOM!r}, and its "
                f"features do not end with the run's setup, {', '.join(forecast.SETUP)})"))
    m.note = "; ".join(n for n in notes if n)
    if m.note:
        log.info("weightwatch: %s", m.note)
    return m


def ask(guard: Guard, which: str, model: Optional[LoadedPredictor], network: Network, **how):
    """``model``'s Prediction for ``network`` (None when absent, disabled or failing: then disabled)."""
    if model is None or guard.off(which):
        return None
    try:
        return apply(model, network, name=model.name, **how)
    except Exception as exc:  # noqa: BLE001
        guard.fail(which, exc)
        return None


def doom_probability(guard: Guard, model: Optional[LoadedPredictor], network: Network, optimizer, **how):
    """The doom model's probability, when the run's setup is readable and the run is in its domain; else None."""
    if model is None or guard.off("doom model"):
        return None
    try:
        setup = forecast.setup_of(network, optimizer)
    except Exception as exc:  # noqa: BLE001
        guard.fail("doom model", exc)
        return None
    if setup is None:
        return None
    p = ask(guard, "doom model", model, network, optimizer=optimizer, setup=setup, **how)
    return None if p is None or not p.in_domain else float(p.accuracy)


def uses_evidence(model: Optional[LoadedPredictor]) -> bool:
    """True for a verdict model (:mod:`weightwatch.verdict_models`): it reads the run's evidence."""
    return model is not None and model.role in (VERDICT_DOOM, VERDICT_FORECASTER)


def judge(models: Models):
    """The run's :class:`~weightwatch.verdict_models.Judge` over the verdict models among ``models`` (None when
    there is none)."""
    from .verdict_models import DoomModel, Forecaster, Judge

    doom = DoomModel(models.doom.estimator, dict(models.doom.manifest)) if uses_evidence(models.doom) else None
    fc = (Forecaster(models.forecaster.estimator, dict(models.forecaster.manifest))
          if uses_evidence(models.forecaster) else None)
    return None if doom is None and fc is None else Judge(doom, fc)


def ask_verdict(guard: Guard, run_judge, network: Network, epoch: int, name: str = "", **context) -> tuple:
    """``(p_doom, doom Finding or None, forecast Prediction or None)`` from the run's judge (Nones when it is
    absent or failing: then disabled). ``context``: ``logs``, ``optimizer``, ``epochs``, ``num_classes``."""
    from .inference import Prediction
    from .rules import Finding, Reason, Severity

    if run_judge is None or guard.off("verdict models"):
        return None, None, None
    try:
        call, fc = run_judge(network, epoch, **context)
    except Exception as exc:  # noqa: BLE001 - never the user's training
        guard.fail("verdict models", exc)
        return None, None, None
    finding = None
    if call is not None and call.doomed_evidence:
        doom = run_judge.doom
        line = runs.doom_line(int(context.get("num_classes") or runs.DEFAULT_NUM_CLASSES))
        finding = Finding(
            "doom_model", Reason.DOOM_MODEL, Severity.DOOMED,
            f"the doom model gives probability {call.probability:.3f} (threshold {doom.threshold:.3f}) that this "
            f"run ends below chance + {runs.DOOMED_MARGIN:g} ({line:.2f}) within its planned epochs; check the learning "
            "rate, the initialisation and the inputs" + ("" if call.in_domain else f" ({call.reason})"),
            {"probability": call.probability, "threshold": doom.threshold, "in_domain": call.in_domain})
    prediction = None
    if fc is not None:
        prediction = Prediction(fc.point, (fc.low, fc.high), name, "", fc.in_domain,
                                "" if fc.in_domain else "the run's evidence lies outside the calibration runs: the "
                                "forecast's interval is the wider one measured on such runs")
    return None if call is None else call.probability, finding, prediction
