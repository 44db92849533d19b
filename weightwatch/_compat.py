"""Optional dependencies, imported on demand with an actionable error."""

from __future__ import annotations

import importlib

from .errors import MissingDependencyError

#: Top-level module -> the extra of ``pyproject.toml`` that installs it (tests check that each extra exists).
_EXTRA_FOR = {
    "keras": "keras",
    "tensorflow": "keras",
    "torch": "torch",
    "lightning": "lightning",
    "dask": "dask",
    "distributed": "dask",
    "matplotlib": "plot",
    "mlxtend": "datasets",
    "skimage": "datasets",
    "optuna": "optuna",
}


def require(module: str, feature: str = ""):
    """Import ``module`` or raise one actionable line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_FOR.get(top)
        hint = f"pip install 'weightwatch[{extra}]'" if extra else f"pip install {top}"
        what = f" for {feature}" if feature else ""
        raise MissingDependencyError(f"{module} is needed{what} but is not installed ({exc}); {hint}") from None
