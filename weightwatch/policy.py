"""The stop policy: the one place that decides whether a run is stopped.

In the style of Lightning's ``EarlyStopping._evaluate_stopping_criteria``, :func:`decide` is a pure function:
the policy's settings (:class:`StopPolicy`), what it remembers (:class:`PolicyState`) and one check's evidence
(:class:`Observation`) in; the new state, the :class:`Decision` and a reason in words out. Nothing else decides:
the monitor asks it at every check, and the replays of zoo runs (:func:`first_stop`, which the trajectories,
protocols and the verdict card use) ask it check by check, so a simulated stop is the callback's stop.

The rules of the decision (Keras ``EarlyStopping`` vocabulary):

* a *signal* is a named piece of doom evidence firing at a check (a rule's DOOMED finding, the doom model's
  probability above its threshold: ``Observation.doom_evidence``);
* a signal stops the run once it fired at ``patience`` consecutive *checked* epochs (at least one); checks
  before ``start_from_epoch`` are judged but never count, and a check where a signal does not fire restarts it;
* a signal that ``recovers`` restarts its count at 1 when the score (the predicted accuracy) improved on the
  best earlier counted score by more than ``min_delta``;
* non-finite weights (``Observation.non_finite``, or a signal marked ``immediate``) stop the run at once.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["DOOM_EVIDENCE", "NON_FINITE", "Decision", "Observation", "PolicyState", "Signal", "StopPolicy",
           "StoppingReason", "below_threshold", "decide", "first_stop", "stop_level"]

#: The signal name of :attr:`Observation.doom_evidence` and of :attr:`Observation.non_finite`.
DOOM_EVIDENCE = "doom_evidence"
NON_FINITE = "non_finite"


class StoppingReason(enum.Enum):
    """Why a run was stopped: the same type for Keras, torch and Lightning.

    Lightning's ``EarlyStoppingReason`` vocabulary; the callbacks' ``stopping_message`` says why in words.
    """

    NOT_STOPPED = 0
    DOOMED = 1
    NON_FINITE = 2


@dataclass(frozen=True)
class Signal:
    """A named piece of doom evidence that fired at one check.

    ``recovers``: an improvement of the score by more than ``min_delta`` restarts its count;
    ``immediate``: it stops the run at once (non-finite weights).
    """

    name: str
    recovers: bool = False
    immediate: bool = False


@dataclass(frozen=True)
class Observation:
    """What one check saw.

    Attributes
    ----------
    epoch : int
        Epochs completed.
    doom_evidence : bool or None
        The doom evidence of this check (e.g. the doom model's probability above its threshold, or the
        forecast's upper bound below its threshold: :func:`below_threshold`); None: no evidence either way.
    non_finite : bool
        NaN or inf in the weights: the run is stopped at once.
    score : float or None
        Higher is better (the predicted accuracy now); an improvement by more than ``min_delta`` restarts the
        signals that recover.
    recovers : bool
        Whether ``doom_evidence`` recovers on an improvement of the score.
    signals : sequence of Signal
        Further named evidence firing at this check (the monitor's rules, one per rule).
    """

    epoch: int
    doom_evidence: Optional[bool] = None
    non_finite: bool = False
    score: Optional[float] = None
    recovers: bool = False
    signals: Sequence[Signal] = ()

    def firing(self) -> "tuple[Signal, ...]":
        """Every signal that fired at this check, once per name, in order."""
        out = list(self.signals)
        if self.doom_evidence:
            out.append(Signal(DOOM_EVIDENCE, recovers=self.recovers))
        if self.non_finite:
            out.append(Signal(NON_FINITE, immediate=True))
        seen: dict = {}
        for s in out:
            seen.setdefault(s.name, s)
        return tuple(seen.values())


@dataclass(frozen=True)
class StopPolicy:
    """The policy's settings (Keras ``EarlyStopping`` names)."""

    patience: int = 2
    start_from_epoch: int = 1
    min_delta: float = 0.02

    def __post_init__(self):
        if int(self.patience) < 0:
            raise InvalidArgumentError(f"patience must be >= 0, got {self.patience}")
        if not math.isfinite(float(self.min_delta)):
            raise InvalidArgumentError(f"min_delta must be a finite number, got {self.min_delta}")

    @property
    def need(self) -> int:
        """Consecutive counted checks a signal must fire at to stop the run (``patience``, at least 1)."""
        return max(int(self.patience), 1)


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between checks (JSON-ready through :meth:`to_dict`)."""

    streaks: Mapping[str, int] = field(default_factory=dict)
    best_score: Optional[float] = None
    stopped_epoch: Optional[int] = None

    def to_dict(self) -> dict:
        return {"streaks": dict(self.streaks), "best_pred": self.best_score, "doomed_epoch": self.stopped_epoch}

    @classmethod
    def from_dict(cls, state: Mapping) -> "PolicyState":
        return cls({str(k): int(v) for k, v in (state.get("streaks") or {}).items()}, state.get("best_pred"),
                   state.get("doomed_epoch"))


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one check.

    ``stop``: the run is doomed at this check; ``reason``: DOOMED, NON_FINITE or NOT_STOPPED; ``confirmed``:
    the signals that stop it; ``firing``: every signal that fired (a firing signal that is not confirmed is
    pending: it stops the run if it persists for ``need`` checked epochs).
    """

    stop: bool
    reason: StoppingReason
    confirmed: "tuple[str, ...]" = ()
    firing: "tuple[str, ...]" = ()
    need: int = 1

    @property
    def pending(self) -> bool:
        return bool(self.firing) and not self.stop


def decide(policy: StopPolicy, state: PolicyState, obs: Observation) -> "tuple[PolicyState, Decision, str]":
    """One check: ``(policy, state, observation) -> (new state, decision, reason in words)``. Pure."""
    firing = obs.firing()
    counted = int(obs.epoch) >= int(policy.start_from_epoch)
    best = state.best_score
    improved = obs.score is not None and best is not None and obs.score > best + policy.min_delta
    if obs.score is not None and counted:
        best = obs.score if best is None else max(best, obs.score)
    names = {s.name for s in firing}
    streaks = {k: (v if k in names else 0) for k, v in state.streaks.items()}
    if counted:
        for s in firing:
            streaks[s.name] = 1 if (improved and s.recovers) else streaks.get(s.name, 0) + 1
    need = policy.need
    confirmed = tuple(s.name for s in firing if s.immediate or streaks.get(s.name, 0) >= need)
    immediate = any(s.immediate for s in firing if s.name in confirmed)
    reason = (StoppingReason.NON_FINITE if immediate else StoppingReason.DOOMED) if confirmed \
        else StoppingReason.NOT_STOPPED
    stopped = state.stopped_epoch if state.stopped_epoch is not None or not confirmed else int(obs.epoch)
    decision = Decision(bool(confirmed), reason, confirmed, tuple(s.name for s in firing), need)
    return PolicyState(streaks, best, stopped), decision, _words(decision, streaks)


def _words(d: Decision, streaks: Mapping[str, int]) -> str:
    if d.reason == StoppingReason.NON_FINITE:
        return "non-finite weights"
    if d.stop:
        return f"doom evidence ({', '.join(d.confirmed)}) at {d.need} consecutive checked epochs"
    if d.firing:
        most = max(streaks.get(n, 0) for n in d.firing)
        return f"doom evidence ({', '.join(d.firing)}) at {most} of {d.need} consecutive checked epochs"
    return ""


def below_threshold(value, threshold):
    """Doom evidence of a score that dooms a run when it is below ``threshold`` (the forecast's upper bound).

    A scalar gives True / False, or None when it is unknown or not finite; an array gives a boolean array
    (False where not finite).
    """
    if value is None:
        return None
    v = np.asarray(value, np.float64)
    if v.ndim == 0:
        return None if not math.isfinite(float(v)) else bool(float(v) < float(threshold))
    return np.isfinite(v) & (v < threshold)


def first_stop(evidence, patience: int, start: int = 0, scores=None, min_delta: float = 0.0,
               recovers: bool = False) -> np.ndarray:
    """Index of the check at which each run is stopped, or -1: :func:`decide` replayed on rows of checks.

    ``evidence`` is a boolean matrix (runs x checks, in time order) of "the doom evidence fired at this
    check"; check ``j`` is epoch ``j`` for ``start`` (checks before ``start`` never count). ``scores`` (same
    shape), with ``recovers``, lets an improving score restart the count, as in the monitor.
    """
    b = np.asarray(evidence, bool)
    if b.ndim != 2:
        raise ValueError(f"evidence must be 2-D (runs x checks), got shape {b.shape}")
    s = None if scores is None else np.asarray(scores, float)
    policy = StopPolicy(int(patience), int(start), float(min_delta))
    out = np.full(len(b), -1)
    for i, row in enumerate(b):
        state = PolicyState()
        for j, fired in enumerate(row):
            score = None if s is None or not np.isfinite(s[i, j]) else float(s[i, j])
            state, decision, _ = decide(policy, state, Observation(j, bool(fired), score=score, recovers=recovers))
            if decision.stop:
                out[i] = j
                break
    return out


def stop_level(scores, patience: int) -> np.ndarray:
    """Per run, the smallest threshold above which "score below the threshold" stops it (:func:`first_stop`
    with :func:`below_threshold`): over windows of ``patience`` consecutive checks, the smallest of the
    window's largest score (``scores``: runs x checks, ``inf`` where a run has no check).

    A threshold ``t`` stops exactly the runs whose level is below ``t``; choosing ``t`` for a false-stop
    budget is then a quantile of the healthy runs' levels.
    """
    scores = np.asarray(scores, float)
    need = min(StopPolicy(int(patience)).need, scores.shape[1])
    return np.lib.stride_tricks.sliding_window_view(scores, need, axis=1).max(axis=2).min(axis=1)
