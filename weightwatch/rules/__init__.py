"""Failure rules: signatures in the weights of runs that are going wrong.

- :mod:`.types`: the rule API (:class:`Rule`, :class:`RuleContext`, :class:`Finding`, :class:`Reason`,
  :class:`Severity`);
- :mod:`.bounds`: interval maths over the weights (sound unit bounds for a box of inputs, norms);
- :mod:`.builtin`: the built-in rules, registered through the plugin hook by :mod:`weightwatch.builtin.rules`;
- :mod:`.fit`: learning rule thresholds from a zoo and measuring false-alarm rates
  (``python -m weightwatch.rules.fit``).
"""

from ..network import is_plain_chain
from .bounds import RELU_FAMILY, LayerBounds, interval_bounds, is_relu_network, total_l2_norm
from .types import Finding, Reason, Rule, RuleContext, Severity

__all__ = [
    "Finding",
    "Reason",
    "Rule",
    "RuleContext",
    "Severity",
    "LayerBounds",
    "RELU_FAMILY",
    "interval_bounds",
    "is_plain_chain",
    "is_relu_network",
    "total_l2_norm",
]
