"""Packaging a fitted predictor: the one function behind ``weightwatch fit`` and the shipped builds.

:func:`package_predictor` writes the model files and a sealed manifest that holds everything inference
needs (:mod:`weightwatch.inference`): the role, the domain, the optimizers of the zoos, the split, the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

from .. import ranges
from ..inference import ROLES
from ..errors import InvalidArgumentError
from ..predictors.persist import save_predictor

_FROM_ZOOS = object()


def package_predictor(model, out, *, name: str, role: str, feature_set: str, feature_names, family: str,
                      zoo_summary: Mapping, metrics: Mapping, extra: Optional[Mapping] = None,
                      optimizers=_FROM_ZOOS, overwrite: bool = True) -> Path:
    """Save ``model`` to ``out`` with its manifest; returns the manifest's path.

    ``role`` is what it predicts (:data:`weightwatch.inference.ROLES`); ``optimizers`` defaults to those of the
    zoos in ``zoo_summary`` (:func:`weightwatch.ranges.zoo_optimizers`); ``extra``: more manifest sections
    (``split``, ``domain``, ``verdict``, ``forecast``, ``card``, ``family``).
    """
    if role not in ROLES:
        raise InvalidArgumentError(f"unknown predictor role {role!r} (known: {', '.join(ROLES)})")
    found = ranges.zoo_optimizers(zoo_summary) if optimizers is _FROM_ZOOS else optimizers
    return save_predictor(model, out, name=name, feature_set=feature_set, feature_names=feature_names,
                          architecture_family=family, zoo_summary=zoo_summary, metrics=metrics,
                          overwrite=overwrite, extra={"role": role, "optimizers": found, **(extra or {})})
