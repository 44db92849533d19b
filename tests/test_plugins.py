import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from weightwatch import hookspecs, plugins
from weightwatch.features import Extractor, get_extractor
from weightwatch.hookspecs import hookimpl
from weightwatch.network import LayerWeights, Network

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("register_"))


def test_every_hook_is_documented():
    assert HOOKS == ["register_adapters", "register_architectures", "register_datasets", "register_extractors", "register_rules"]
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and ":param register:" in doc, name


@pytest.mark.parametrize("hook,cls,skip", [("register_adapters", "weightwatch.adapters:Adapter", {"description"}),
                                           ("register_rules", "weightwatch.rules:Rule", {"description"})])
def test_hook_docs_name_the_fields_plugins_must_fill(hook, cls, skip):
    import dataclasses

    module, name = cls.split(":")
    fields = {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name))} - skip
    doc = inspect.getdoc(getattr(hookspecs, hook))
    for field in fields:
        assert f"``{field}``" in doc or f"``{field}(" in doc, (hook, field)


def test_builtins_come_through_the_same_door(fresh_registry):
    reg = plugins.get_registry()
    for module in plugins.DEFAULT_PLUGINS:
        assert reg.pm.get_plugin(module) is not None
    assert reg.entries("extractors")["W_L"].plugin == "weightwatch.builtin.extractors"
    assert reg.entries("adapters")["keras"].plugin == "weightwatch.builtin.adapters"
    assert reg.entries("datasets")["digits"].plugin == "weightwatch.builtin.datasets"
    assert reg.entries("architectures")["paper-cnn"].plugin == "weightwatch.builtin.architectures"
    assert reg.entries("rules")["non_finite"].plugin == "weightwatch.builtin.rules"


def _thing(kind):
    """Something valid to register for each hook."""
    from weightwatch.adapters import Adapter
    from weightwatch.rules import Rule
    from weightwatch.zoo.architectures import ArchitectureSpec

    return {
        "extractors": Extractor("test-sum", lambda n: np.array([n.flat().sum()]), lambda n: ["sum"]),
        "adapters": Adapter("test-dict", lambda o: isinstance(o, dict) and "matrix" in o,
                            lambda o: Network((LayerWeights("m", "dense", o["matrix"], None),))),
        "rules": Rule("test-rule", lambda ctx: None, "never fires"),
        "datasets": ("test-data", lambda **kw: None),
        "architectures": ArchitectureSpec("test-arch", (4,)),
    }[kind]


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_registers_through_a_plugin(hook, fresh_registry):
    kind = hook[len("register_"):]
    thing = _thing(kind)

    class Plugin:
        pass

    def impl(register):
        if isinstance(thing, tuple):
            register(*thing)
        else:
            register(thing)

    setattr(Plugin, hook, staticmethod(hookimpl(impl)))
    label = plugins.register_plugin(Plugin(), name="test-plugin")
    try:
        entries = plugins.get_registry().entries(kind)
        name = thing[0] if isinstance(thing, tuple) else thing.name
        assert entries[name].plugin == "test-plugin"
    finally:
        plugins.unregister_plugin(label)
    assert name not in plugins.get_registry().entries(kind)


def test_registered_adapter_and_extractor_are_used(fresh_registry):
    class Plugin:
        @hookimpl
        def register_adapters(self, register):
            register(_thing("adapters"))

        @hookimpl
        def register_extractors(self, register):
            register(_thing("extractors"))

    plugins.register_plugin(Plugin(), name="p")
    from weightwatch.features import extract

    assert extract({"matrix": np.ones((2, 3))}, "test-sum")[0] == 6.0


def test_duplicate_name_is_a_clear_error(fresh_registry):
    class Dup:
        @hookimpl
        def register_extractors(self, register):
            register(Extractor("W_L", lambda n: np.zeros(1), lambda n: ["x"]))

    with pytest.raises(plugins.PluginError, match="'W_L' is registered twice: by plugin 'weightwatch.builtin.extractors' and by plugin 'dup'"):
        plugins.register_plugin(Dup(), name="dup")
    assert plugins.get_registry().pm.get_plugin("dup") is None  # rolled back


def test_misspelled_hook_is_caught_by_check_pending(fresh_registry):
    class Typo:
        @hookimpl
        def register_extractor(self, register):  # missing "s"
            pass

    with pytest.raises(Exception, match="unknown hook"):
        plugins.register_plugin(Typo(), name="typo")


def test_block_env_removes_a_builtin(fresh_registry, monkeypatch):
    monkeypatch.setenv(plugins.BLOCK_ENV, "weightwatch.builtin.rules")
    plugins.reset()
    assert "non_finite" not in plugins.get_registry().entries("rules")


def test_example_plugin_installed_discovered_used_and_blocked(tmp_path, fresh_registry, monkeypatch):
    """pip-installs plugins/weightwatch-spectral for real and finds it through the entry point."""
    src = ROOT / "plugins" / "weightwatch-spectral"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)]
    subprocess.run(pip, check=True, capture_output=True)
    try:
        importlib.invalidate_caches()
        plugins.reset()
        entry = plugins.get_registry().entries("extractors")["spectral"]
        assert entry.plugin == "spectral"  # the entry-point name
        w = np.diag([3.0, 1.0]).astype(np.float32)
        net = Network((LayerWeights("d", "dense", w, np.zeros(2)),))
        sigma, stable, effective = get_extractor("spectral")(net)
        assert sigma == pytest.approx(3.0) and stable == pytest.approx(10 / 9)
        p = np.array([0.75, 0.25])
        assert effective == pytest.approx(np.exp(-(p * np.log(p)).sum()))
        monkeypatch.setenv(plugins.BLOCK_ENV, "spectral")
        plugins.reset()
        assert "spectral" not in plugins.get_registry().entries("extractors")
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "weightwatch-spectral"], check=True)
        importlib.invalidate_caches()
