"""Adapters turn framework models into a :class:`~weightwatch.network.Network`.

The built-in adapters (Keras, torch, flat vector + layout) are registered
through the ``register_adapters`` hook like any plugin's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UnsupportedModelError
from ..network import Network


@dataclass(frozen=True)
class Adapter:
    """Reads one kind of model.

    Parameters
    ----------
    name : str
    accepts : callable(obj) -> bool
        Cheap check; must not import a framework that is not already imported.
    convert : callable(obj, **options) -> Network
    priority : int
        Higher is tried first.
    """

    name: str
    accepts: Callable[[Any], bool]
    convert: Callable[..., Network]
    priority: int = 0
    description: str = ""


def mro_modules(obj) -> set:
    """Top-level module names of the classes ``obj`` is an instance of."""
    return {cls.__module__.split(".")[0] for cls in type(obj).__mro__}


def to_network(obj, **options) -> Network:
    """Read ``obj`` (Keras model, torch module, FlatWeights, Network) into a Network."""
    if isinstance(obj, Network):
        return obj
    from ..plugins import get_registry

    adapters = sorted(
        (e.obj for e in get_registry().entries("adapters").values()), key=lambda a: -a.priority
    )
    for adapter in adapters:
        if adapter.accepts(obj):
            return adapter.convert(obj, **options)
    names = ", ".join(a.name for a in adapters) or "(none)"
    raise UnsupportedModelError(
        f"cannot read weights from a {type(obj).__module__}.{type(obj).__name__}; "
        f"registered adapters: {names}. Write an adapter plugin (hook register_adapters) to add one."
    )
