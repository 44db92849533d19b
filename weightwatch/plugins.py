"""Plugin manager: entry points, built-ins, and the registries they fill.

Third-party plugins are discovered through the ``weightwatch`` entry-point
group. Built-ins are registered right after them, through the same hooks.
Set ``WEIGHTWATCH_BLOCK_PLUGINS`` to a comma-separated list of plugin names
(entry-point names or built-in module names) to keep them out.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from typing import Any, Dict

import pluggy

from . import hookspecs
from .errors import InvalidArgumentError, PluginError, UnknownNameError

ENTRY_POINT_GROUP = "weightwatch"
BLOCK_ENV = "WEIGHTWATCH_BLOCK_PLUGINS"

DEFAULT_PLUGINS = (
    "weightwatch.builtin.extractors",
    "weightwatch.builtin.adapters",
    "weightwatch.builtin.rules",
    "weightwatch.builtin.datasets",
    "weightwatch.builtin.architectures",
)

KINDS = ("extractors", "adapters", "rules", "datasets", "architectures")


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    plugin: str


def blocked_names() -> set:
    raw = os.environ.get(BLOCK_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _plugin_label(pm: pluggy.PluginManager, plugin) -> str:
    return pm.get_name(plugin) or getattr(plugin, "__name__", repr(plugin))


def make_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with entry points and built-ins registered."""
    pm = pluggy.PluginManager("weightwatch")
    pm.add_hookspecs(hookspecs)
    blocked = blocked_names()
    for name in blocked:
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for module_name in DEFAULT_PLUGINS:
        if module_name in blocked:
            continue
        module = importlib.import_module(module_name)
        if pm.get_plugin(module_name) is None:
            pm.register(module, name=module_name)
    pm.check_pending()
    return pm


class Registry:
    """What the plugins registered, by kind and name, with their origin."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self._entries: Dict[str, Dict[str, Entry]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            self._collect(kind)

    def _collect(self, kind: str) -> None:
        hook = getattr(self.pm.hook, f"register_{kind}")
        table = self._entries[kind]
        for impl in hook.get_hookimpls():
            label = _plugin_label(self.pm, impl.plugin)

            def register(*args, _label=label, _kind=kind):
                name, obj = self._unpack(_kind, args, _label)
                if name in table:
                    other = table[name].plugin
                    raise PluginError(
                        f"{_kind[:-1]} {name!r} is registered twice: by plugin {other!r} and by plugin "
                        f"{_label!r}; uninstall or block one of them (set {BLOCK_ENV}={_label})"
                    )
                table[name] = Entry(name, obj, _label)

            impl.function(register=register)

    @staticmethod
    def _unpack(kind, args, label):
        if len(args) == 2:
            name, obj = args
        elif len(args) == 1:
            obj = args[0]
            name = getattr(obj, "name", None)
        else:
            raise PluginError(f"plugin {label!r}: register() takes (obj) or (name, obj), got {len(args)} arguments")
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {label!r}: registered a {kind[:-1]} without a name: {obj!r}")
        return name, obj

    def entries(self, kind: str) -> Dict[str, Entry]:
        if kind not in self._entries:
            raise InvalidArgumentError(f"unknown registry kind {kind!r}; known: {', '.join(KINDS)}")
        return dict(self._entries[kind])

    def get(self, kind: str, name: str):
        table = self.entries(kind)
        if name not in table:
            known = ", ".join(sorted(table)) or "(none)"
            raise UnknownNameError(f"no {kind[:-1]} named {name!r}; registered: {known}")
        return table[name].obj


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (built on first use)."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = Registry(make_manager())
        return _registry


def reset() -> None:
    """Forget the registry, so the next use rediscovers plugins (tests, after pip install)."""
    global _registry
    with _lock:
        _registry = None


def register_plugin(plugin, name: str | None = None) -> str:
    """Register a plugin object at run time (e.g. a class or module with hookimpls)."""
    reg = get_registry()
    label = reg.pm.register(plugin, name=name)
    reg.pm.check_pending()
    try:
        new = Registry(reg.pm)
    except Exception:
        reg.pm.unregister(name=label)
        raise
    global _registry
    with _lock:
        _registry = new
    return label


def unregister_plugin(name: str) -> None:
    reg = get_registry()
    reg.pm.unregister(name=name)
    global _registry
    with _lock:
        _registry = Registry(reg.pm)
