"""Failure rules: signatures in the weights of runs that are going wrong.

A rule is registered through the ``register_rules`` hook; the monitor calls
it once per checked epoch with a :class:`RuleContext` and it returns a
:class:`Finding` or None.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from .network import Network


class Severity(enum.IntEnum):
    OK = 0
    WARNING = 1
    DOOMED = 2

    def __str__(self):
        return self.name.lower()


class Reason(str, enum.Enum):
    """Why a run was flagged."""

    NON_FINITE = "non_finite"
    DYING_RELU = "dying_relu"
    DEAD_UNITS = "dead_units"
    OUTPUT_COLLAPSE = "output_collapse"
    NEAR_CHANCE = "near_chance"
    EXPLODING_NORM = "exploding_norm"
    OTHER = "other"

    def __str__(self):
        return self.value


@dataclass(frozen=True)
class Finding:
    rule: str
    reason: Reason
    severity: Severity
    message: str
    details: dict = field(default_factory=dict)


@dataclass
class RuleContext:
    """What a rule may look at."""

    network: Network
    epoch: int
    predicted_accuracy: Optional[float] = None
    num_classes: int = 10
    input_range: tuple = (-1.0, 1.0)
    history: Sequence = ()  # earlier epochs' records (dicts), oldest first
    options: dict = field(default_factory=dict)


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
