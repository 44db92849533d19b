import importlib
import inspect

import numpy as np
import pytest

from helpers import installed_plugin
from weightwatch import hookspecs, plugins
from weightwatch.features import Extractor, get_extractor
from weightwatch.hookspecs import hookimpl
from weightwatch.network import LayerWeights, Network

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
    assert not any(reg.pm.get_plugin(module) for module in plugins.DEFAULT_PLUGINS)  # each kind on first use
    reg.entries("rules")
    assert [m for m in plugins.DEFAULT_PLUGINS if reg.pm.get_plugin(m)] == ["weightwatch.builtin.rules"]
    assert reg.entries("extractors")["W_L"].plugin == "weightwatch.builtin.extractors"
    assert reg.entries("adapters")["keras"].plugin == "weightwatch.builtin.adapters"
    assert reg.entries("datasets")["digits"].plugin == "weightwatch.builtin.datasets"
    assert reg.entries("architectures")["paper-cnn"].plugin == "weightwatch.builtin.architectures"
    assert reg.entries("rules")["non_finite"].plugin == "weightwatch.builtin.rules"
    for module in plugins.DEFAULT_PLUGINS:
        assert reg.pm.get_plugin(module) is not None


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
    with installed_plugin("weightwatch-spectral") as reg:
        entry = reg.entries("extractors")["spectral"]
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


def test_a_registered_family_is_what_zoo_build_trains(fresh_registry, tmp_path, capsys):
    """The architectures hook is live: the registry, not a module dict, answers get_architecture and zoo build."""
    from weightwatch.cli import main
    from weightwatch.errors import InvalidArgumentError
    from weightwatch.zoo.architectures import ArchitectureSpec, get_architecture
    from weightwatch.zoo.storage import Zoo

    spec = ArchitectureSpec("test-cnn-4", (4, 4), kernel_size=3, strides=2)

    class Family:
        @hookimpl
        def register_architectures(self, register):
            register(spec)
            register("test-not-a-spec", {"conv_filters": (4,)})

    with pytest.raises(InvalidArgumentError, match="unknown architecture 'test-cnn-4'; known: .*paper-cnn"):
        get_architecture("test-cnn-4")
    plugins.register_plugin(Family(), name="family")
    assert get_architecture("test-cnn-4") is spec
    assert get_architecture("paper-cnn").conv_filters == (16, 16, 16)  # built-ins stay valid
    with pytest.raises(InvalidArgumentError, match="registered by plugin 'family' is a dict, not a"):
        get_architecture("test-not-a-spec")
    out = tmp_path / "zoo"
    assert main(["zoo", "build", "--architecture", "test-cnn-4", "--dataset", "digits", "--runs", "3",
                 "--epochs", "1", "--shard-size", "3", "--out", str(out), "--quiet"]) == 0
    zoo = Zoo(out / "zoo")
    # 3x3x1x4 + 4, 3x3x4x4 + 4, 4x10 + 10
    assert zoo.weights().shape == (6, 40 + 148 + 50) and zoo.manifest["build"]["architecture"] == "test-cnn-4"
    assert zoo.network(0).signature()[0] == ("conv", (3, 3, 1, 4), True)


def test_a_dataset_and_family_of_different_class_counts_are_refused(fresh_registry, tmp_path, capsys):
    from weightwatch.cli import main
    from weightwatch.zoo.architectures import ArchitectureSpec

    class Binary:
        @hookimpl
        def register_architectures(self, register):
            register(ArchitectureSpec("test-binary", (4,), num_classes=2))

    plugins.register_plugin(Binary(), name="binary")
    assert main(["zoo", "build", "--architecture", "test-binary", "--dataset", "digits", "--runs", "2",
                 "--epochs", "1", "--out", str(tmp_path / "z"), "--quiet"]) != 0
    assert "dataset 'digits' has 10 classes but architecture 'test-binary' outputs 2" in capsys.readouterr().err
    assert not (tmp_path / "z" / "shards").exists()


def test_third_party_family_zoo_predictor_found_by_the_keras_callback(tmp_path, fresh_registry, monkeypatch,
                                                                      capsys):
    """pip-installs plugins/weightwatch-parity for real: its family and dataset build a zoo through the CLI,
    `weightwatch fit` makes a predictor, and WeightWatchCallback() finds it on the predictor path."""
    keras = pytest.importorskip("keras")
    from weightwatch.cli import main
    from weightwatch.keras import WeightWatchCallback
    from weightwatch.pretrained import PATH_ENV
    from weightwatch.zoo.storage import Zoo

    with installed_plugin("weightwatch-parity") as reg:
        assert reg.entries("architectures")["tiny-cnn-2"].plugin == "parity"
        assert reg.entries("datasets")["digits_parity"].plugin == "parity"
        zoo_dir, pred_dir = tmp_path / "zoo", tmp_path / "mine" / "tiny"
        assert main(["zoo", "build", "--architecture", "tiny-cnn-2", "--dataset", "digits_parity", "--runs", "10",
                     "--epochs", "2", "--shard-size", "10", "--seed", "1", "--out", str(zoo_dir), "--quiet"]) == 0
        zoo = Zoo(zoo_dir / "zoo")
        assert zoo.n_runs == 10 and zoo.manifest["build"]["dataset"] == "digits_parity"
        assert main(["fit", str(zoo.path), "--out", str(pred_dir), "--params", '{"min_child_samples": 3}']) == 0
        capsys.readouterr()

        monkeypatch.setenv(PATH_ENV, str(tmp_path / "mine"))
        from weightwatch_parity import load_digits_parity

        data = load_digits_parity()
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                                  keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        cb = WeightWatchCallback(verbose=1)
        hist = model.fit(data.x_train[:256], data.y_train[:256], epochs=1, verbose=0, callbacks=[cb])
        said = capsys.readouterr().out
        assert cb.verdict.predictor_name == "tiny-cnn-2-W_L-gbm"
        assert "your predictor tiny-cnn-2-W_L-gbm" in said and str(pred_dir) in said
        assert 0 <= hist.history["ww_pred_accuracy"][0] <= 1
        # a network of another family does not get it
        other = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3, strides=2),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
        from weightwatch.adapters import to_network
        from weightwatch.pretrained import find_on_path

        assert find_on_path(to_network(other)) is None
