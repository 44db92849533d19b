"""The types of the rule API: a :class:`Rule` looks at a :class:`RuleContext` and returns a :class:`Finding`.

A rule is registered through the ``register_rules`` hook; the monitor calls
it once per checked epoch with a :class:`RuleContext` and it returns a
:class:`Finding` or None.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from ..network import Network
from ..runs import DEFAULT_NUM_CLASSES


class Severity(enum.IntEnum):
    OK = 0
    WARNING = 1
    DOOMED = 2

    def __str__(self):
        return self.name.lower()


class Reason(str):
    """Why a run was flagged: an open set of names (a plugin rule names its own, ``Reason("my_reason")``).

    The built-in reasons are class attributes (``Reason.NON_FINITE``); ``value`` is the name.
    """

    __slots__ = ()

    @property
    def value(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Reason({str(self)!r})"


for _name in ("non_finite", "dying_relu", "dead_units", "output_collapse", "near_chance", "forecast_doomed",
              "doom_model", "exploding_norm", "other"):
    setattr(Reason, _name.upper(), Reason(_name))


@dataclass(frozen=True)
class Finding:
    """What a rule found at one check.

    Attributes
    ----------
    rule : str
    reason : Reason or str
    severity : Severity
    message : str
        One actionable sentence.
    details : dict
    sound : bool
        True when the finding is a proof that holds whatever the data (non-finite weights, units dead for
        a *declared* input range). Findings that are not sound (learned thresholds, predictor numbers) never
        make an out-of-domain run doomed: they are reported as warnings instead.
    recovers : bool
        True when a clear improvement of the predicted accuracy (``min_delta``) restarts its patience count.
    """

    rule: str
    reason: Reason
    severity: Severity
    message: str
    details: dict = field(default_factory=dict)
    sound: bool = False
    recovers: bool = False

    def __post_init__(self):
        if not isinstance(self.reason, Reason):
            object.__setattr__(self, "reason", Reason(self.reason))


@dataclass
class RuleContext:
    """What a rule may look at."""

    network: Network
    epoch: int
    predicted_accuracy: Optional[float] = None
    num_classes: int = DEFAULT_NUM_CLASSES
    input_range: Optional[tuple] = None  # None: not declared by the user (interval rules then only warn)
    history: Sequence = ()  # earlier epochs' records (dicts), oldest first
    options: dict = field(default_factory=dict)
    forecast: Optional[float] = None  # forecast of the final accuracy
    forecast_interval: Optional[tuple] = None
    in_domain: Optional[bool] = None  # False: predictor numbers are not calibrated for this network


@dataclass(frozen=True)
class Rule:
    """A named check.

    Parameters
    ----------
    name : str
    check : callable(RuleContext) -> Finding or None
    description : str
        What the rule catches, and its measured false-alarm rate if known.
    """

    name: str
    check: Callable[[RuleContext], Optional[Finding]]
    description: str = ""

    def __call__(self, context: RuleContext) -> Optional[Finding]:
        return self.check(context)
