"""The shape of the verdict path: a slim monitor, one inference door, callbacks that do not reach inside.

Static checks (sizes, imports, attribute writes) and the inference door's rules for roles and paths.
"""

import ast
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from weightwatch import pretrained
from weightwatch.errors import PredictorPathError, PretrainedNotFoundError
from weightwatch.inference import ACCURACY, DOOM, FORECASTER, LoadedPredictor, as_loaded, role_of
from weightwatch.network import LayerWeights, Network

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "weightwatch"
#: The modules one check runs through (docs/architecture.md).
VERDICT_PATH = ("monitor.py", "monitor_models.py", "policy.py", "inference.py", "verdict.py", "history.py",
                "watch.py", "keras.py", "torch.py", "lightning.py")
INFERENCE = ("inference.py", "pretrained.py", "ranges.py", "domain.py", "forecast.py", "monitor.py",
             "monitor_models.py", "verdict.py", "history.py", "watch.py", "policy.py")


def _tree(name):
    return ast.parse((PACKAGE / name).read_text(), name)


def test_monitor_is_slim_and_verdict_path_functions_are_short():
    tree = _tree("monitor.py")
    monitor = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Monitor")
    assert monitor.end_lineno - monitor.lineno + 1 < 200
    long = [f"{name}:{n.name} ({n.end_lineno - n.lineno + 1} lines)" for name in VERDICT_PATH
            for n in ast.walk(_tree(name)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > 60]
    assert not long, long


def test_callbacks_never_set_monitor_attributes():
    pattern = re.compile(r"\bmonitor\.\w+\s*=(?!=)")
    hits = [f"{name}: {m.group(0)}" for name in ("keras.py", "torch.py", "lightning.py", "watch.py")
            for m in pattern.finditer((PACKAGE / name).read_text())]
    assert not hits, hits


def test_inference_imports_nothing_from_the_zoo():
    bad = []
    for name in INFERENCE:
        for node in ast.walk(_tree(name)):
            mod = node.module or "" if isinstance(node, ast.ImportFrom) else None
            if isinstance(node, ast.ImportFrom) and ("zoo" in mod.split(".") or (not mod and any(
                    a.name == "zoo" for a in node.names))):
                bad.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.Import) and any("weightwatch.zoo" in a.name for a in node.names):
                bad.append(f"{name}:{node.lineno}")
    assert not bad, bad


def test_public_paths_still_import():
    from weightwatch.keras import StoppingReason as K  # noqa: F401
    from weightwatch.monitor import Monitor, StoppingReason, Verdict, WeightWatchWarning  # noqa: F401
    from weightwatch.policy import StoppingReason as P
    from weightwatch.verdict import StoppingReason as V
    from weightwatch.watch import Watcher  # noqa: F401  (the callbacks' base; monitor.py no longer holds it)

    assert StoppingReason is P is V


def test_roles_come_from_the_manifest_and_once_from_names_for_older_ones():
    from weightwatch import forecast

    names = [f"f{i}" for i in range(4)]
    assert role_of({"role": DOOM, "feature_names": names}) == DOOM
    assert role_of({"feature_names": forecast.feature_names(names)}) == FORECASTER
    assert role_of({"feature_names": forecast.doom_feature_names(names)}) == DOOM
    assert role_of({"feature_names": names}) == ACCURACY
    with pytest.raises(Exception, match="unknown role"):
        role_of({"role": "oracle"})
    shipped = {n: pretrained.resolve(n).role for n in (pretrained.PAPER_CNN_PREDICTOR, pretrained.EARLY_PREDICTOR,
                                                        pretrained.DOOM_PREDICTOR)}
    assert shipped == {pretrained.PAPER_CNN_PREDICTOR: ACCURACY, pretrained.EARLY_PREDICTOR: FORECASTER,
                       pretrained.DOOM_PREDICTOR: DOOM}
    lp = pretrained.resolve(pretrained.EARLY_PREDICTOR)
    assert isinstance(lp, LoadedPredictor) and lp.source == "shipped" and lp.domain and lp.card is not None
    assert lp.verdict["threshold"] > 0.1 and lp.optimizers["names"]


class _Const:
    def __init__(self, value):
        self.value = value

    def predict(self, X):
        return np.full(len(X), self.value)


def _net(rng, n=3):
    return Network(tuple(LayerWeights(f"d{i}", "dense", rng.standard_normal((8, 8)), np.zeros(8)) for i in range(n)))


def test_a_given_path_that_does_not_exist_is_an_error_everywhere(tmp_path, rng, monkeypatch, capsys):
    from weightwatch.cli import main
    from weightwatch.monitor import Monitor

    missing = tmp_path / "nowhere" / "predictor"
    monkeypatch.delenv(pretrained.PATH_ENV, raising=False)
    for call in (lambda: pretrained.resolve(str(missing)), lambda: pretrained.resolve(missing),
                 lambda: pretrained.predict_accuracy(_net(rng), predictor=str(missing)),
                 lambda: Monitor(predictor=str(missing)), lambda: Monitor(forecaster=missing),
                 lambda: Monitor(doom_model=str(missing)), lambda: Monitor(predictor_path=[missing]),
                 lambda: pretrained.predict_accuracy(_net(rng), predictor_path=str(missing))):
        with pytest.raises(PredictorPathError, match=re.escape(str(missing))):
            call()
    monkeypatch.setenv(pretrained.PATH_ENV, str(missing))
    with pytest.raises(PredictorPathError, match="WEIGHTWATCH_PREDICTOR_PATH"):
        Monitor()
    monkeypatch.delenv(pretrained.PATH_ENV)
    model = tmp_path / "m.keras"  # the predictor is resolved before the model file is read
    assert main(["predict", str(model), "--predictor", str(missing)]) != 0
    assert str(missing) in capsys.readouterr().err
    with pytest.raises(PretrainedNotFoundError, match="no pretrained predictor 'nope'"):
        pretrained.resolve("nope")  # a bare name is a shipped name


def test_fallback_note_names_the_missing_preferred_predictor(tmp_path, rng, monkeypatch):
    only = tmp_path / "only"
    only.mkdir()
    shutil.copytree(ROOT / "pretrained" / pretrained.AGNOSTIC_PREDICTOR, only / pretrained.AGNOSTIC_PREDICTOR)
    monkeypatch.setenv(pretrained.ENV, str(only))
    pretrained._load_cached.cache_clear()
    try:
        lp = pretrained.resolve("auto", _net(rng))  # an MLP: the MLP predictor is preferred, and missing
        assert lp.name == pretrained.AGNOSTIC_PREDICTOR and pretrained.MLP_PREDICTOR in lp.note
        assert "not installed" in lp.note
    finally:
        pretrained._load_cached.cache_clear()


def test_one_door_for_estimators_and_loaded_predictors(rng):
    lp = pretrained.resolve(_Const(0.7))
    assert lp.role == ACCURACY and lp.source == "in memory" and pretrained.resolve(lp) is lp
    assert pretrained.predict_accuracy(_net(rng), predictor=lp).accuracy == pytest.approx(0.7)
    assert pretrained.resolve(None) is None
    assert as_loaded(_Const(0.2), name="mine").name == "mine"


_ONE_EPOCH = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
import weightwatch.keras
from weightwatch.keras import WeightWatchCallback

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
cb = WeightWatchCallback(verbose=0)
x = np.random.default_rng(0).standard_normal((64, 8)).astype("float32")
model.fit(x, np.arange(64) % 3, epochs=1, verbose=0, callbacks=[cb])
assert cb.verdict is not None and cb.verdict.predicted_accuracy is not None, cb.verdict
print(" ".join(sorted(m for m in sys.modules if m.startswith("weightwatch."))))
"""


def test_a_keras_callback_epoch_imports_no_zoo_module():
    """Importing weightwatch.keras and one checked epoch (a real fit, the shipped predictor) touch no zoo code."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for key in ("WEIGHTWATCH_PREDICTOR_PATH", "WEIGHTWATCH_PRETRAINED_DIR"):
        env.pop(key, None)
    out = subprocess.run([sys.executable, "-c", _ONE_EPOCH], env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = out.stdout.split()
    assert "weightwatch.monitor" in loaded and "weightwatch.builtin.rules" in loaded
    zoo = [m for m in loaded if m.startswith("weightwatch.zoo") or m in ("weightwatch.builtin.datasets",
                                                                         "weightwatch.builtin.architectures")]
    assert not zoo, zoo


def test_shipping_is_split_into_small_modules():
    """The build of the shipped predictors lives in modules under 300 lines; shipping.py only re-exports them."""
    parts = ("tables", "fitting", "recipes", "forecasting", "cards", "verdict_page", "packaging", "shipping", "cli")
    sizes = {p: len((PACKAGE / "experiments" / f"{p}.py").read_text().splitlines()) for p in parts}
    assert all(n < 300 for n in sizes.values()), sizes
    shipping = _tree("experiments/shipping.py")
    assert not [n for n in shipping.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    fit_sites = [name for name in ("experiments/cli.py", "experiments/forecasting.py", "experiments/recipes.py")
                 if "package_predictor(" in (PACKAGE / name).read_text()]
    assert fit_sites == ["experiments/cli.py", "experiments/forecasting.py", "experiments/recipes.py"]
    assert not any("save_predictor(" in (PACKAGE / "experiments" / f"{p}.py").read_text() for p in parts
                   if p != "packaging")


def _definitions(pattern):
    """``file:line`` of every ``def`` in the package whose name matches ``pattern``."""
    rx = re.compile(pattern)
    return [f"{p.relative_to(PACKAGE)}:{n.lineno}" for p in sorted(PACKAGE.rglob("*.py"))
            for n in ast.walk(ast.parse(p.read_text(), str(p)))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and rx.fullmatch(n.name)]


def _calls(name):
    """Modules of the package that call ``name(...)``."""
    rx = re.compile(rf"(?<![\w.]){name}\(|\.{name}\(")
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                  if any(rx.search(line) and not line.lstrip().startswith(("def ", "#"))
                         for line in p.read_text().splitlines()))


def test_one_w_l_computation():
    """W_L (per layer, seven statistics of kernel and bias) is computed by features.wl_rows only: a network's
    layer_stats and a zoo's vectorised rows go through it, and no other module calls the statistics kernels
    (stats.row_stats / many_tensor_stats); tensor_stats elsewhere is the W-global set, one flat vector."""
    assert _definitions(r"wl_rows") == ["features.py:" + str(next(
        n.lineno for n in ast.walk(_tree("features.py")) if isinstance(n, ast.FunctionDef) and n.name == "wl_rows"))]
    assert _calls("row_stats") == ["features.py", "stats.py"]
    assert _calls("many_tensor_stats") == ["features.py"]
    assert _calls("tensor_stats") == ["builtin/extractors.py", "stats.py"]
    assert "wl_rows(" in (PACKAGE / "zoo" / "storage.py").read_text()


def test_one_plain_chain_definition():
    """One definition of a plain chain (network.is_plain_chain, on the adapters' neutral description); the
    framework helpers call it and hold no layer list of their own; the adapters only translate classes to ops."""
    defs = _definitions(r"(is_)?_?plain(_\w+)?_chain|_plain")
    assert sorted(d.split(":")[0] for d in defs) == ["keras.py", "network.py", "torch.py"], defs
    for name in ("keras.py", "torch.py"):
        fn = next(n for n in ast.walk(_tree(name)) if isinstance(n, ast.FunctionDef) and "plain" in n.name)
        assert "is_plain_chain(" in ast.unparse(fn) and len(fn.body) <= 2, f"{name}:{fn.name} is not a thin call"
    lists = [p for p in PACKAGE.rglob("*.py") if re.search(r"^_PLAIN\b|\"GlobalMaxPooling2D\"|\"MaxPool2d\"",
                                                               p.read_text(), re.M)]
    assert lists == [], lists  # no list of plain layer classes beside the adapters' op tables
    assert _calls("is_plain_chain") == ["keras.py", "rules/builtin.py", "torch.py"]
