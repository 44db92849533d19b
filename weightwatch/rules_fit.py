"""Deprecated: use :mod:`weightwatch.rules.fit` (``python -m weightwatch.rules.fit``)."""

import sys
import warnings

from .rules.fit import fit_dying_relu_thresholds, main, rule_false_alarms

__all__ = ["fit_dying_relu_thresholds", "rule_false_alarms", "main"]

warnings.warn("weightwatch.rules_fit is deprecated; use weightwatch.rules.fit (python -m weightwatch.rules.fit)",
              DeprecationWarning, stacklevel=2)

if __name__ == "__main__":
    sys.exit(main())
