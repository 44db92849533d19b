"""The package reads bottom-up: no module imports from a layer above its own.

Every ``import`` and ``from ... import`` statement is checked, at module level
and inside functions, so a lazy import cannot hide an upward dependency.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "weightwatch"

# lowest first; a module may import from its own layer and the ones before it
LAYERS = (
    ("core", ("_version", "_argtypes", "_console", "_compat", "_files", "errors", "network", "stats", "features", "adapters",
              "plugins", "hookspecs", "modelfile", "runs", "builtin", "builtin.adapters", "builtin.extractors")),
    ("zoo", ("zoo", "builtin.datasets", "builtin.architectures")),
    ("predictors", ("predictors", "plot")),
    ("pretrained", ("domain", "forecast", "pretrained")),
    ("monitor", ("rules", "rules_fit", "builtin.rules", "monitor", "verdict_dict")),
    ("callbacks", ("keras", "torch", "lightning")),
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


def test_every_module_has_a_layer():
    for module, _, _ in _modules():
        _layer_of(module)


def test_no_upward_imports():
    bad = []
    for module, path, is_pkg in _modules():
        own = _layer_of(module)
        for line, target in _targets(module, path, is_pkg):
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
