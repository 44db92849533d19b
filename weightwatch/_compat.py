"""Optional dependencies, imported on demand with an actionable error."""

from __future__ import annotations

import importlib

_EXTRA_FOR = {
    "keras": "keras",
    "tensorflow": "keras",
    "torch": "torch",
    "lightning": "lightning",
    "dask": "dask",
    "distributed": "dask",
    "matplotlib": "report",
    "mlxtend": "datasets",
    "pandas": "pandas",
}

from .errors import MissingDependencyError


def require(module: str, feature: str = ""):
    """Import ``module`` or raise one actionable line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_FOR.get(top, top)
        hint = f"pip install 'weightwatch[{extra}]'"
        if top == "torch":
            hint += " (on this kind of machine: pip install torch==2.13.0 first, the local CPU wheel)"
        what = f" for {feature}" if feature else ""
        raise MissingDependencyError(f"{module} is needed{what} but is not installed ({exc}); {hint}") from None
