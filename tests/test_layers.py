"""The package reads bottom-up: no module imports from a layer above its own, and no import cycle.

Every ``import`` and ``from ... import`` statement is checked, at module level
and inside functions, so a lazy import cannot hide an upward dependency; so are
imports by string (``importlib.import_module("weightwatch.x")``,
``__import__``, and module names in tables such as the declared built-in
plugins), so an import string cannot hide one either.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "weightwatch"

# lowest first; a module may import from its own layer and the ones before it
LAYERS = (
    ("core", ("_version", "_argtypes", "_console", "_compat", "_files", "errors", "network", "stats", "features", "adapters",
              "plugins", "hookspecs", "modelfile", "policy", "ranges", "runs", "evidence", "builtin", "builtin.adapters", "builtin.extractors")),
    ("zoo", ("zoo", "builtin.datasets", "builtin.architectures")),
    ("predictors", ("predictors", "plot")),
    ("pretrained", ("domain", "forecast", "inference", "pretrained", "verdict_models")),
    ("monitor", ("rules", "builtin.rules", "verdict", "history", "logged_features", "monitor_models", "monitor", "watch",
                 "verdict_dict")),
    ("callbacks", ("keras", "torch", "lightning", "optuna")),
    ("experiments", ("experiments",)),
    ("entry points", ("cli", "demo", "__main__", "__init__")),
)


def _layer_of(module: str) -> int:
    """Layer index of a dotted module name below ``weightwatch`` (longest matching prefix wins)."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best is None:
        raise AssertionError(f"module weightwatch.{module} has no layer: add it to LAYERS in {__file__}")
    return best


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), path, is_pkg


def _is_module(dotted: str) -> bool:
    base = PACKAGE.joinpath(*dotted.split(".")) if dotted else PACKAGE
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _targets(module: str, path: Path, is_pkg: bool):
    """(line, imported module below weightwatch) for every import of weightwatch code in ``path``."""
    here = module.split(".") if module != "__init__" else []
    package = here if is_pkg else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("weightwatch."):
                    yield node.lineno, alias.name.removeprefix("weightwatch.")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "weightwatch" or node.module.startswith("weightwatch.")):
                mod = node.module.removeprefix("weightwatch").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import x` imports a submodule when there is one
                sub = f"{mod}.{alias.name}" if mod else alias.name
                if _is_module(sub):
                    yield node.lineno, sub
                elif mod:
                    yield node.lineno, mod
                else:
                    yield node.lineno, "__init__"


_MODULE_STRING = re.compile(r"weightwatch(\.\w+)+")


def _string_targets(tree):
    """(line, module below weightwatch) for every import by string: import_module / __import__ with a literal,
    and module names held in a literal table (a dict, list, tuple or set)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            arg = node.args[0].value
            if name in ("import_module", "__import__") and isinstance(arg, str) and arg.startswith("weightwatch."):
                yield node.lineno, arg.removeprefix("weightwatch.")
        elif isinstance(node, (ast.Dict, ast.List, ast.Tuple, ast.Set)):
            for item in (node.values if isinstance(node, ast.Dict) else node.elts):
                if isinstance(item, ast.Constant) and isinstance(item.value, str) and \
                        _MODULE_STRING.fullmatch(item.value):
                    yield item.lineno, item.value.removeprefix("weightwatch.")


def _all_targets(module, path, is_pkg):
    yield from _targets(module, path, is_pkg)
    yield from _string_targets(ast.parse(path.read_text(), str(path)))


def _graph() -> dict:
    modules = {m for m, _, _ in _modules()}

    def known(t):
        while t and t not in modules:
            t = t.rsplit(".", 1)[0] if "." in t else ""
        return t

    return {m: {known(t) for _, t in _all_targets(m, path, is_pkg)} - {m, ""} for m, path, is_pkg in _modules()}


def _cycles(graph: dict) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for module, _, _ in _modules():
        _layer_of(module)


def test_no_upward_imports():
    bad = []
    for module, path, is_pkg in _modules():
        own = _layer_of(module)
        for line, target in _all_targets(module, path, is_pkg):
            if _layer_of(target) > own:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({LAYERS[own][0]}) imports "
                           f"{target} ({LAYERS[_layer_of(target)][0]})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("source,expected", [
    ("from ..monitor import Monitor\n", "monitor"),
    ("def f():\n    from weightwatch.experiments import paper\n", "experiments.paper"),
])
def test_the_walk_sees_upward_imports(tmp_path, source, expected):
    """The checker itself: an import inside a function, relative or absolute, is found and resolved."""
    path = tmp_path / "m.py"
    path.write_text(source)
    targets = [t for _, t in _targets("zoo.storage", path, False)]
    assert targets == [expected] and _layer_of(expected) > _layer_of("zoo.storage")


def test_no_import_cycles():
    """Static, lazy and string imports together form no cycle."""
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("source,expected", [
    ("import importlib\nimportlib.import_module('weightwatch.monitor')\n", "monitor"),
    ("PLUGINS = ('weightwatch.builtin.rules',)\n", "builtin.rules"),
    ("x = __import__('weightwatch.experiments.paper')\n", "experiments.paper"),
])
def test_the_walk_sees_imports_by_string(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert [t for _, t in _all_targets("zoo.storage", path, False)] == [expected]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
