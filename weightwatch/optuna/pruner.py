"""``WeightWatchPruner``: prune a trial that is doomed, or whose corrected forecast cannot reach the study's
finished trials.

Two parts, each a reason in words:

* *doom* (needs no finished trial: it prunes from the first trial of a study): the doom model's evidence the
  reporter stored at each epoch, through the one stop policy (:func:`weightwatch.policy.decide`: the evidence
  at ``patience`` consecutive epochs; non-finite weights at once);
* *comparison* (once ``n_startup_trials`` trials have finished, from epoch ``n_warmup_steps``): the upper
  bound of the trial's final objective is below the ``percentile`` of the finished trials' final objectives
  (50: MedianPruner's rule on the final objective). The bound comes from the study-specific
  :class:`~weightwatch.optuna.correction.Correction` fitted on the finished trials' scores at the same epoch;
  before enough of them finished, from the shipped forecaster's 90% upper bound (a maximised accuracy only).

The pruner reads everything from the study's storage (the trials' user attributes and values), so every
worker process or machine of a study shares what it learns; its in-memory cache only saves refitting.
A trial whose attributes cannot be read is not pruned, and the pruner says why once.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Optional

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from .. import policy
from ..errors import InvalidArgumentError
from ..verdict import WeightWatchWarning
from . import records
from .correction import Correction

log = logging.getLogger("weightwatch.optuna")

__all__ = ["WeightWatchPruner"]


class WeightWatchPruner(optuna.pruners.BasePruner):
    """Prune doomed trials from the first trial, and trials the sweep's own finished trials outclass.

    Parameters
    ----------
    percentile : float
        As Optuna's PercentilePruner: keep a trial whose final objective's upper bound reaches the top
        ``percentile`` per cent of the finished trials' (50: MedianPruner's median; 25: only the top quarter).
    n_startup_trials : int
        Finished trials needed before the comparison part prunes (the doom part needs none).
    n_warmup_steps : int
        The comparison part prunes from this epoch on (the doom part from epoch 1, subject to ``patience``).
    forecast_warmup_steps : int
        Before the study's correction can be fitted, the comparison uses the shipped forecast's 90% bound, from
        this epoch on (default 2: at epoch 1 a slow starter's bound can lie far below its final accuracy;
        chosen on the calibration zoo's choose part, where it was the least warm-up whose regret was no worse
        than MedianPruner's).
    patience : int
        Consecutive epochs of doom evidence that prune (the shipped threshold was chosen for 2).
    coverage : float
        Share of finished trials the corrected upper bound covers (leave-one-out conformal).
    min_fit_trials : int
        Finished trials with a score at the epoch needed to fit the correction; fewer: the shipped forecast's
        bound.
    doom : bool
        Use the doom part.
    """

    def __init__(self, percentile: float = 50.0, n_startup_trials: int = 3, n_warmup_steps: int = 1,
                 patience: int = 2, coverage: float = 0.8, min_fit_trials: int = 4, doom: bool = True,
                 forecast_warmup_steps: int = 2):
        if not 0.0 <= float(percentile) <= 100.0:
            raise InvalidArgumentError(f"percentile must be in [0, 100], got {percentile}")
        for name, v in (("n_startup_trials", n_startup_trials), ("n_warmup_steps", n_warmup_steps),
                        ("min_fit_trials", min_fit_trials), ("forecast_warmup_steps", forecast_warmup_steps)):
            if int(v) < 0:
                raise InvalidArgumentError(f"{name} must be >= 0, got {v}")
        if int(min_fit_trials) < 2:
            raise InvalidArgumentError(f"min_fit_trials must be >= 2 (a correction needs two trials), got "
                                       f"{min_fit_trials}")
        self.percentile = float(percentile)
        self.n_startup_trials = int(n_startup_trials)
        self.n_warmup_steps = int(n_warmup_steps)
        self.forecast_warmup_steps = int(forecast_warmup_steps)
        self.policy = policy.StopPolicy(int(patience), 1)
        self.coverage = float(coverage)
        Correction(self.coverage)  # checks it
        self.min_fit_trials = int(min_fit_trials)
        self.doom = bool(doom)
        self._cache: dict = {}
        self._said: set = set()
        #: trial number -> the last decision (``pruned``, ``why``, ``fitted_on``, ``bound``, ``threshold``)
        self.decisions: dict = {}

    # ----------------------------------------------------------------- Optuna
    def prune(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> bool:
        try:
            decision = self._decide(study, trial)
        except Exception as exc:  # noqa: BLE001 - a pruner never crashes study.optimize
            self._say("error", f"the pruner failed ({type(exc).__name__}: {exc}); it does not prune")
            decision = {"pruned": False, "why": f"error: {exc}"}
        self.decisions[trial.number] = decision
        return bool(decision["pruned"])

    # -------------------------------------------------------------- decisions
    def _decide(self, study, trial) -> dict:
        try:
            recs = records.read(trial.user_attrs)
        except records.BadRecords as exc:
            self._say(f"bad:{exc}", f"trial {trial.number}: {exc}; it is not pruned")
            return {"pruned": False, "why": str(exc)}
        if not recs:
            self._say("missing", f"trial {trial.number} has no weightwatch records (report through "
                      "weightwatch.optuna's callbacks or report()); it is not pruned")
            return {"pruned": False, "why": "no weightwatch records"}
        why = self._doomed(recs) if self.doom else ""
        if why:
            return {"pruned": True, "why": why, "part": "doom"}
        return self._compare(study, trial, recs)

    def _doomed(self, recs: dict) -> str:
        """The stop policy's reason when the doom evidence so far stops the trial, else ``""``."""
        state = policy.PolicyState()
        for epoch, rec in recs.items():
            obs = policy.Observation(int(epoch), doom_evidence=bool(rec["d"]), non_finite=bool(rec.get("nf")))
            state, decision, words = policy.decide(self.policy, state, obs)
            if decision.stop:
                p = rec.get("p")
                return (f"{words} (doom probability {p:.2f} at epoch {epoch})" if p is not None else words)
        return ""

    def _compare(self, study, trial, recs: dict) -> dict:
        step = max(recs)
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
        if len(done) < max(self.n_startup_trials, 1) or step < self.n_warmup_steps:
            return {"pruned": False, "why": f"{len(done)} finished trials, epoch {step}: no comparison yet"}
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        # Optuna's convention (PercentilePruner): percentile 25 keeps the top 25% of the trials
        threshold = float(np.percentile([sign * t.value for t in done], 100.0 - self.percentile))
        score = _score(trial, recs, step)
        if score is None:
            return {"pruned": False, "why": f"no score at epoch {step}"}
        bound, fitted_on, how = None, [], ""
        pairs = [(n, s, sign * t.value) for t in done for n, s in [(t.number, _score(t, None, step))]
                 if s is not None]
        if len(pairs) >= self.min_fit_trials:
            corr = self._correction(step, pairs, sign)
            bound, fitted_on = corr.upper(sign * score), corr.trials_
            how = f"corrected on {len(fitted_on)} finished trials"
        elif sign > 0 and step >= self.forecast_warmup_steps:
            fc = records.forecast_of(recs[step])
            if fc is not None:
                bound, how = fc[2], "the shipped forecast's 90% bound"
        if bound is None:
            why = (f"no bound at epoch {step} (the shipped forecast's counts from epoch {self.forecast_warmup_steps})"
                   if sign > 0 and step < self.forecast_warmup_steps else f"no bound at epoch {step}")
            return {"pruned": False, "why": why, "fitted_on": fitted_on}
        pruned = bound < threshold
        verb = "below" if pruned else "not below"
        why = (f"the final objective's upper bound {sign * bound:.3f} ({how}) is {verb} the top {self.percentile:g}% "
               f"of {len(done)} finished trials ({sign * threshold:.3f}) at epoch {step}")
        return {"pruned": bool(pruned), "why": why, "part": "comparison", "fitted_on": fitted_on,
                "bound": sign * bound, "threshold": sign * threshold}

    def _correction(self, step: int, pairs: list, sign: float) -> Correction:
        key = (step, sign, tuple(sorted(n for n, _, _ in pairs)))
        corr = self._cache.get(key)
        if corr is None:
            if len(self._cache) > 512:
                self._cache.clear()
            n, s, y = zip(*pairs)
            corr = self._cache[key] = Correction(self.coverage).fit(np.multiply(sign, s), y, n)
        return corr

    def _say(self, key: str, text: str) -> None:
        if key in self._said:
            return
        self._said.add(key)
        log.warning("weightwatch pruner: %s", text)
        warnings.warn(f"weightwatch pruner: {text}", WeightWatchWarning, stacklevel=3)


def _score(trial, recs: Optional[dict], step: int) -> Optional[float]:
    """The trial's score at ``step``: its reported value, else its record's forecast; None when neither."""
    v = trial.intermediate_values.get(step)
    if v is not None and math.isfinite(v):
        return float(v)
    if recs is None:
        try:
            recs = records.read(trial.user_attrs)
        except records.BadRecords:
            return None
    rec = recs.get(step)
    fc = None if rec is None else records.forecast_of(rec)
    return None if fc is None else fc[0]
