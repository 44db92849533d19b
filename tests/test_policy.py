"""The stop policy (weightwatch.policy) and the run labeller (weightwatch.runs.label): scripted sequences with the
exact stop epoch, the replays agree with the monitor, and each is defined once in the package."""

import re
from pathlib import Path

import numpy as np
import pytest

from weightwatch import policy, runs
from weightwatch.errors import InvalidArgumentError
from weightwatch.policy import Observation, PolicyState, Signal, StopPolicy, StoppingReason, decide

PACKAGE = Path(__file__).resolve().parents[1] / "weightwatch"


def replay(pol, observations):
    """Epoch of the first stop (None) and the decisions, for observations in order."""
    state, decisions, stopped = PolicyState(), [], None
    for obs in observations:
        state, d, _ = decide(pol, state, obs)
        decisions.append(d)
        if d.stop and stopped is None:
            stopped = obs.epoch
    return stopped, decisions, state


@pytest.mark.parametrize("patience,fired,expected", [
    (2, [1, 2], 2),
    (2, [1, 3], None),  # a gap restarts the count
    (2, [1, 3, 4], 4),
    (3, [2, 3, 4], 4),
    (0, [3], 3),  # patience 0 acts as 1
    (1, [5], 5),
])
def test_patience_in_checked_epochs(patience, fired, expected):
    obs = [Observation(e, doom_evidence=e in fired) for e in range(1, 7)]
    stopped, decisions, state = replay(StopPolicy(patience), obs)
    assert stopped == expected and state.stopped_epoch == expected
    if expected is not None:
        d = decisions[expected - 1]
        assert d.reason == StoppingReason.DOOMED and d.confirmed == (policy.DOOM_EVIDENCE,)


def test_start_from_epoch_checks_never_count():
    obs = [Observation(e, doom_evidence=True) for e in range(0, 5)]
    stopped, decisions, _ = replay(StopPolicy(2, start_from_epoch=3), obs)
    assert stopped == 4
    assert [d.pending for d in decisions[:4]] == [True, True, True, True]


def test_recovery_on_improvement_above_min_delta():
    pol = StopPolicy(2, start_from_epoch=1, min_delta=0.02)
    scores = [0.10, 0.13, 0.14, 0.145]
    rec = [Observation(e, doom_evidence=True, score=s, recovers=True) for e, s in enumerate(scores, 1)]
    # epoch 2 improves by 0.03 > min_delta: the count restarts at 1; epoch 3 improves by 0.01: it goes on
    assert replay(pol, rec)[0] == 3
    stiff = [Observation(e, doom_evidence=True, score=s, recovers=False) for e, s in enumerate(scores, 1)]
    assert replay(pol, stiff)[0] == 2


def test_non_finite_stops_at_once_even_before_start():
    stopped, decisions, _ = replay(StopPolicy(5, start_from_epoch=3), [Observation(1), Observation(2, non_finite=True)])
    assert stopped == 2 and decisions[1].reason == StoppingReason.NON_FINITE
    state, d, words = decide(StopPolicy(), PolicyState(), Observation(1, signals=[Signal("nan", immediate=True)]))
    assert d.stop and d.reason == StoppingReason.NON_FINITE and "non-finite" in words


def test_signals_count_separately_and_state_round_trips():
    pol = StopPolicy(2)
    s1, d1, _ = decide(pol, PolicyState(), Observation(1, signals=[Signal("a"), Signal("b")]))
    s2, d2, words = decide(pol, s1, Observation(2, signals=[Signal("b")]))
    assert not d1.stop and d2.confirmed == ("b",) and s2.streaks == {"a": 0, "b": 2}
    assert "b" in words and PolicyState.from_dict(s2.to_dict()) == s2
    with pytest.raises(InvalidArgumentError):
        StopPolicy(-1)


def test_doom_probability_policy_is_one_observation():
    """What the lead's doom model needs: stop when p >= threshold at `patience` consecutive checks."""
    probs = [0.2, 0.9, 0.4, 0.95, 0.97]
    obs = [Observation(e, doom_evidence=None if p is None else p >= 0.8) for e, p in enumerate(probs, 1)]
    assert replay(StopPolicy(2), obs)[0] == 5


def test_below_threshold():
    assert policy.below_threshold(0.1, 0.2) is True and policy.below_threshold(0.3, 0.2) is False
    assert policy.below_threshold(float("nan"), 0.2) is None and policy.below_threshold(None, 0.2) is None
    assert policy.below_threshold(np.array([0.1, np.nan, 0.5]), 0.2).tolist() == [True, False, False]


def test_first_stop_is_the_policy_replayed_and_stop_level_its_inverse(rng):
    below = rng.random((300, 7)) < 0.35
    for patience in (1, 2, 3):
        at = policy.first_stop(below, patience)
        for i in range(len(below)):
            stopped, _, _ = replay(StopPolicy(patience, start_from_epoch=0),
                                   [Observation(j, doom_evidence=bool(b)) for j, b in enumerate(below[i])])
            assert at[i] == (-1 if stopped is None else stopped)
    scores = rng.random((200, 7))
    for patience in (1, 2, 3):
        level = policy.stop_level(scores, patience)
        for t in (0.2, 0.5, 0.8):
            stops = policy.first_stop(policy.below_threshold(scores, t), patience) >= 0
            assert (stops == (level < t)).all()


def test_first_stop_recovers_like_the_monitor():
    ev = np.array([[True, True, True]])
    assert policy.first_stop(ev, 2, start=1)[0] == 2
    assert policy.first_stop(ev, 2, start=1, scores=[[0.1, 0.2, 0.3]], min_delta=0.02, recovers=True)[0] == -1


def test_labeller():
    acc = np.array([0.05, 0.19, 0.2, 0.49, 0.5, 0.9, np.nan])
    assert runs.label(acc).tolist() == ["doomed", "doomed", "in-between", "in-between", "healthy", "healthy",
                                        "in-between"]
    assert runs.doomed(acc).tolist() == [True, True, False, False, False, False, False]
    assert runs.healthy(acc).tolist() == [False, False, False, False, True, True, False]
    # two classes: chance 0.5, doomed below 0.6, so 0.55 is doomed and not healthy
    assert runs.label([0.55, 0.6], 2).tolist() == ["doomed", "healthy"]
    assert runs.DEFAULT_NUM_CLASSES == 10 and runs.doom_line() == pytest.approx(0.2)


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text()


def test_one_definition_of_the_stop_policy():
    """Only policy.py counts consecutive firing checks or turns patience into a count."""
    pattern = re.compile(r"streak|max\(\s*(int\()?\s*(self\.)?patience|>=\s*need\b", re.IGNORECASE)
    hits = [name for name, text in _sources() if pattern.search(text)]
    assert hits == ["policy.py"], hits
    defs = [name for name, text in _sources() if re.search(r"^def (first_stop|decide)\(", text, re.M)]
    assert defs == ["policy.py"], defs


def test_one_definition_of_the_doom_label():
    """Only runs.py adds a margin to chance or compares an accuracy with chance; outside the zoo's datasets
    (which know their own class counts) nobody hard-codes a class count."""
    label = re.compile(r"chance\([^)]*\)\s*\+|<\s*(runs\.)?chance\(|HEALTHY_ACCURACY\s*=|DOOMED_MARGIN\s*=")
    hits = [name for name, text in _sources() if label.search(text)]
    assert hits == ["runs.py"], hits
    classes = re.compile(r"num_classes(:\s*int)?\s*=\s*\d|num_classes\s+or\s+\d|else\s+10\b")
    hard = [name for name, text in _sources() if classes.search(text) and not name.startswith("zoo/")]
    assert hard == [], hard
