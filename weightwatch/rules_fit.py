"""Deprecated: use :mod:`weightwatch.rules.fit` (``python -m weightwatch.rules.fit``).

Importing this module is silent; using one of its names, or running it, warns.
"""

import sys
import warnings

__all__ = ["fit_dying_relu_thresholds", "rule_false_alarms", "main"]

_MESSAGE = "weightwatch.rules_fit is deprecated; use weightwatch.rules.fit (python -m weightwatch.rules.fit)"


def __getattr__(name):
    if name in __all__:
        warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=2)
        from .rules import fit

        return getattr(fit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    warnings.warn(_MESSAGE, DeprecationWarning, stacklevel=1)
    from weightwatch.rules.fit import main as _main

    sys.exit(_main())
