"""Declared dependencies: the extras the error messages name exist, and optional imports go through require."""

import ast
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from weightwatch._compat import _EXTRA_FOR, require
from weightwatch.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Modules that only the extras install; the core must import them through ``require``.
OPTIONAL = {"keras", "tensorflow", "torch", "lightning", "dask", "distributed", "mlxtend", "skimage"}
#: The framework adapters and callbacks, whose whole point is the framework.
FRAMEWORK_MODULES = {"weightwatch/keras.py", "weightwatch/torch.py", "weightwatch/lightning.py",
                     "weightwatch/adapters/keras.py", "weightwatch/adapters/torch.py", "weightwatch/demo.py",
                     "weightwatch/optuna/keras.py", "weightwatch/optuna/lightning.py"}


def test_every_extra_named_in_an_error_exists():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert set(_EXTRA_FOR.values()) <= extras


def test_core_dependencies_are_not_mapped_to_an_extra():
    core = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    assert not core & set(_EXTRA_FOR), "a core dependency needs no extra"


def test_scikit_learn_floor_has_validate_data():
    """``validate_data``, ``__sklearn_tags__`` and ``estimator_checks_generator`` arrived in scikit-learn 1.6."""
    (sk,) = [Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("scikit-learn")]
    floor = min(Version(s.version) for s in sk.specifier if s.operator == ">=")
    assert floor >= Version("1.6")


def test_missing_torch_names_its_extra_and_no_machine_specific_version(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError) as info:
        require("torch", "weightwatch.torch")
    msg = str(info.value)
    assert msg.endswith("pip install 'weightwatch[torch]'") and "==" not in msg


def test_missing_tensorflow_for_a_zoo_build_names_the_keras_extra(monkeypatch):
    from weightwatch.zoo import population

    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError, match=r"training zoo populations.*weightwatch\[keras\]"):
        population.configure_threads()


def _module_level_and_local_imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_optional_modules_are_imported_only_through_require():
    """Outside the framework adapters, a missing optional module is an error naming its extra, never a bare
    ImportError: every such import goes through ``weightwatch._compat.require``."""
    offenders = []
    for path in sorted((ROOT / "weightwatch").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in FRAMEWORK_MODULES:
            continue
        for name in _module_level_and_local_imports(path):
            if name.split(".")[0] in OPTIONAL:
                offenders.append(f"{rel}: import {name}")
    assert not offenders, offenders


@pytest.mark.parametrize("extra, package, floor, why", [
    ("keras", "keras", "3.11.3", "CVE-2025-9905: safe_mode bypass when loading .h5 models"),
    ("torch", "torch", "2.6", "CVE-2025-32434: torch.load(weights_only=True) could run code"),
    ("lightning", "torch", "2.6", "CVE-2025-32434: torch.load(weights_only=True) could run code"),
])
def test_security_floors_of_the_extras(extra, package, floor, why):
    reqs = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    mine = [r for r in reqs if r.name == package]
    assert mine, f"extra {extra} does not name {package}"
    for r in mine:
        floors = [Version(s.version) for s in r.specifier if s.operator in (">=", "==", "~=")]
        assert floors and min(floors) >= Version(floor), f"{extra}: {r} allows {package} < {floor} ({why})"
