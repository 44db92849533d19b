"""Feature sets logged every epoch beside the verdict: ``features=["my-features"]`` on the callbacks.

Any registered extractor (built-in or from a plugin's ``register_extractors`` hook) can be logged. Its values
are logged as ``ww_feature_<name>`` when it gives one number, else as ``ww_feature_<name>_<i>``, ``i`` the
position in its output (its ``feature_names(network)`` name the positions). They are logged, never judged: the
verdict does not read them.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgumentError, UnknownNameError
from .features import Extractor, get_extractor

__all__ = ["PREFIX", "resolve", "values"]

PREFIX = "ww_feature_"


def resolve(features) -> tuple:
    """The extractors of ``features`` (names or :class:`~weightwatch.features.Extractor` objects), checked now.

    An unknown name is an :class:`~weightwatch.errors.UnknownNameError` naming it and the registered ones; a
    plain string is refused (``features`` is a list), as it was the in-memory predictor's feature set before
    (now ``feature_set=``).
    """
    if features is None:
        return ()
    if isinstance(features, (str, Extractor)):
        raise InvalidArgumentError(
            f"features must be a list of feature-set names to log every epoch, e.g. features=[{features!r}]; "
            "the feature set of an in-memory predictor is feature_set=")
    out, seen = [], set()
    for item in features:
        if not isinstance(item, (str, Extractor)):
            raise InvalidArgumentError(f"features: {item!r} is not a feature-set name or an Extractor")
        try:
            extractor = get_extractor(item)
        except UnknownNameError as exc:
            raise UnknownNameError(f"features: {exc.args[0]}") from None
        if extractor.name in seen:
            raise InvalidArgumentError(f"features: {extractor.name!r} is listed twice")
        seen.add(extractor.name)
        out.append(extractor)
    return tuple(out)


def values(extractors, network, guard) -> dict:
    """``{"ww_feature_<name>[_<i>]": float}`` of every extractor on ``network``; one that fails is warned
    about once through ``guard`` and left out from then on (never the user's training)."""
    out: dict = {}
    for extractor in extractors:
        key = f"feature {extractor.name}"
        if guard.off(key):
            continue
        try:
            x = np.asarray(extractor(network), dtype=np.float64).ravel()
        except Exception as exc:  # noqa: BLE001 - a plugin's extractor must not stop the run
            guard.fail(key, exc)
            continue
        out.update(named(extractor.name, x))
    return out


def named(name: str, x) -> dict:
    """The logged names of one extractor's values ``x``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) == 1:
        return {PREFIX + name: float(x[0])}
    return {f"{PREFIX}{name}_{i}": float(v) for i, v in enumerate(x)}

