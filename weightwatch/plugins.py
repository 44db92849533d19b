"""Plugin manager: entry points, built-ins, and the registries they fill.

Third-party plugins are discovered through the ``weightwatch`` entry-point
group. Built-ins go through the same hooks; they sit above what they register
(the built-in rules above the rule API, the built-in architectures above the
zoo), so this module names none of them: the package's top
(``weightwatch/__init__.py``) declares them with :func:`declare_builtins`,
and the registry imports each kind's built-in module the first time that kind
is asked for (a Keras callback never imports the zoo's datasets).
Set ``WEIGHTWATCH_BLOCK_PLUGINS`` to a comma-separated list of plugin names
(entry-point names or built-in module names) to keep them out.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from typing import Any, Dict, Mapping

import pluggy

from . import hookspecs
from .errors import InvalidArgumentError, PluginError, UnknownNameError

ENTRY_POINT_GROUP = "weightwatch"
BLOCK_ENV = "WEIGHTWATCH_BLOCK_PLUGINS"

KINDS = ("extractors", "adapters", "rules", "datasets", "architectures")

#: kind -> the built-in plugin module registering it (declared by the package's top, :func:`declare_builtins`).
_builtins: Dict[str, str] = {}


def declare_builtins(modules: Mapping[str, str]) -> None:
    """Declare the built-in plugin module of each kind (imported when its kind is first used)."""
    unknown = sorted(set(modules) - set(KINDS))
    if unknown:
        raise InvalidArgumentError(f"unknown registry kinds {unknown}; known: {', '.join(KINDS)}")
    _builtins.update(modules)


def __getattr__(name):
    if name == "DEFAULT_PLUGINS":  # the built-in plugin modules, in kind order
        return tuple(_builtins[k] for k in KINDS if k in _builtins)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """A fresh plugin manager with the entry points registered (built-ins come per kind, on first use)."""
    pm = pluggy.PluginManager("weightwatch")
    pm.add_hookspecs(hookspecs)
    for name in blocked_names():
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


class Registry:
    """What the plugins registered, by kind and name, with their origin; each kind collected on first use."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self._entries: Dict[str, Dict[str, Entry]] = {}
        self._lock = threading.RLock()

    def _builtin(self, kind: str) -> None:
        module_name = _builtins.get(kind)
        if module_name is None or module_name in blocked_names() or self.pm.get_plugin(module_name) is not None:
            return
        self.pm.register(importlib.import_module(module_name), name=module_name)
        self.pm.check_pending()

    def _collect(self, kind: str) -> Dict[str, Entry]:
        with self._lock:
            if kind in self._entries:
                return self._entries[kind]
            self._builtin(kind)
            hook = getattr(self.pm.hook, f"register_{kind}")
            table: Dict[str, Entry] = {}
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
            self._entries[kind] = table
            return table

    def kinds_of(self, plugin) -> list:
        """The kinds ``plugin`` registers (it has a hookimpl for)."""
        return [k for k in KINDS if any(i.plugin is plugin for i in getattr(self.pm.hook, f"register_{k}")
                                        .get_hookimpls())]

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
        if kind not in KINDS:
            raise InvalidArgumentError(f"unknown registry kind {kind!r}; known: {', '.join(KINDS)}")
        return dict(self._collect(kind))

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
    for kind in KINDS:  # the built-ins of its kinds come first, as at start-up
        if hasattr(plugin, f"register_{kind}"):
            reg._builtin(kind)
    label = reg.pm.register(plugin, name=name)
    reg.pm.check_pending()
    try:
        new = Registry(reg.pm)
        for kind in new.kinds_of(plugin):  # a clash with what is registered already: refused now
            new.entries(kind)
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
