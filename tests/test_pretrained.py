import importlib.util
import json
import re
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import keras_paper_cnn, paper_cnn_weights
from weightwatch import pretrained
from weightwatch.cli import main
from weightwatch.network import LayerWeights, Network

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def own_pretrained(tmp_path_factory):
    """A pretrained folder with predictors fitted on a small zoo built here."""
    from weightwatch.zoo.build import BuildSpec, build_zoo

    base = tmp_path_factory.mktemp("pre")
    zoo = build_zoo(base / "zoo", BuildSpec(dataset="digits", runs=24, epochs=2, checkpoints=(0, 1, 2),
                                            shard_size=24, seed=5), progress=False)["zoo"]
    root = base / "pretrained"
    params = '{"min_child_samples": 3, "n_estimators": 40}'
    assert main(["fit", zoo, "--out", str(root / pretrained.PAPER_CNN_PREDICTOR), "--params", params,
                 "--interval", "0.1", "0.9"]) == 0
    assert main(["fit", zoo, "--out", str(root / pretrained.AGNOSTIC_PREDICTOR), "--params", params,
                 "--features", "W_L-agnostic"]) == 0
    return root


@pytest.fixture
def use_root(own_pretrained, monkeypatch):
    monkeypatch.setenv(pretrained.ENV, str(own_pretrained))
    pretrained._load_cached.cache_clear()
    yield own_pretrained
    pretrained._load_cached.cache_clear()


def test_list_load_and_auto_choice(use_root, rng):
    assert pretrained.list_predictors() == sorted([pretrained.AGNOSTIC_PREDICTOR, pretrained.PAPER_CNN_PREDICTOR])
    assert not hasattr(pretrained, "list")  # the old alias is gone (CHANGELOG.md)
    model = keras_paper_cnn(paper_cnn_weights(rng))
    p = pretrained.predict_accuracy(model)
    assert p.predictor == pretrained.PAPER_CNN_PREDICTOR and 0 <= p.accuracy <= 1
    assert p.interval is not None and p.interval[0] <= p.interval[1]
    other = Network(tuple(LayerWeights(f"d{i}", "dense", rng.standard_normal((8, 8)), np.zeros(8)) for i in range(5)))
    q = pretrained.predict_accuracy(other)
    assert q.predictor == pretrained.AGNOSTIC_PREDICTOR and "ranks" in q.note
    with pytest.raises(pretrained.PretrainedNotFoundError, match="no pretrained predictor 'nope'"):
        pretrained.load("nope")


def test_tampered_shipped_model_is_refused(use_root, tmp_path, rng):
    import shutil

    from weightwatch.predictors import PredictorIntegrityError

    copy = tmp_path / "copy"
    shutil.copytree(use_root, copy)
    model_txt = copy / pretrained.PAPER_CNN_PREDICTOR / "model.txt"
    model_txt.write_text(model_txt.read_text().replace("num_leaves", "num_leaveZ", 1))
    os.environ[pretrained.ENV] = str(copy)
    try:
        pretrained._load_cached.cache_clear()
        with pytest.raises(PredictorIntegrityError, match="sha256 mismatch for model.txt"):
            pretrained.load(pretrained.PAPER_CNN_PREDICTOR)
    finally:
        os.environ[pretrained.ENV] = str(use_root)
        pretrained._load_cached.cache_clear()


def test_predict_cli(use_root, tmp_path, rng, capsys):
    path = tmp_path / "m.keras"
    keras_paper_cnn(paper_cnn_weights(rng)).save(path)
    assert main(["predict", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["predictor"] == pretrained.PAPER_CNN_PREDICTOR and 0 <= out["accuracy"] <= 1


def test_core_imports_no_framework():
    code = ("import sys, weightwatch, weightwatch.features, weightwatch.monitor, weightwatch.experiments.protocol, "
            "weightwatch.zoo.build, weightwatch.pretrained; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'torch', 'lightning')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


#: The wheel's budget (issue 31). Measured 2026-12-02: 27.9 MB with every predictor, 22.4 MB with the default path,
#: the verdict models and the shapes / textures predictors; 9.2 MB with the default path alone, its accuracy-now
#: predictors' LightGBM texts slim (27.1 MB installed).
WHEEL_MB_BUDGET = 10.0


def _wheel_predictors() -> list:
    """The predictor directories pyproject's force-include puts in the wheel."""
    import tomllib

    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "force-include"]
    return sorted(Path(dst).name for src, dst in table.items() if (ROOT / src / "manifest.json").is_file())


def _default_path() -> set:
    """The shipped predictors "auto" resolves, for every role, on a network of each family it tells apart."""
    from weightwatch.inference import ACCURACY, DOOM, FORECASTER

    rng = np.random.default_rng(0)
    ws = paper_cnn_weights(rng)
    paper = Network(tuple(LayerWeights(f"l{i}", "conv" if i < 3 else "dense", ws[2 * i], ws[2 * i + 1])
                          for i in range(4)))
    mlp = Network(tuple(LayerWeights(f"d{i}", "dense", rng.standard_normal((8, 8)), np.zeros(8)) for i in range(3)))
    conv = [LayerWeights("c", "conv", rng.standard_normal((3, 3, 1, 4)), np.zeros(4)),
            LayerWeights("d", "dense", rng.standard_normal((4, 10)), np.zeros(10))]
    bn = Network(tuple(conv), meta={"skipped": [("bn", "BatchNormalization")],
                                    "normalisation": [("bn", {"gamma": np.ones(4), "beta": np.zeros(4)})]})
    other = Network(tuple(conv))
    return {pretrained.resolve("auto", net, role=role).name for net in (paper, mlp, bn, other)
            for role in (ACCURACY, FORECASTER, DOOM)}


def test_the_wheel_ships_the_default_path_only(monkeypatch):
    monkeypatch.delenv(pretrained.ENV, raising=False)
    monkeypatch.delenv(pretrained.PATH_ENV, raising=False)
    pretrained._load_cached.cache_clear()
    assert _default_path() == set(pretrained.WHEEL_PREDICTORS) == set(_wheel_predictors())
    shipped = {p.parent.name for p in (ROOT / "pretrained").glob("*/manifest.json")}
    left_out = shipped - set(_wheel_predictors())
    assert left_out and all(n.startswith("paper-cnn-") for n in left_out)
    for name in left_out:  # loadable from the source tree, and the card says why it is not in the wheel
        assert pretrained.load(name) is not None
        card = (ROOT / "pretrained" / f"{name}.md").read_text()
        assert "Not in the wheel" in card and f"--only {name}" in card


def test_per_dataset_cards_print_the_measured_comparison():
    """Each per-dataset card says by how much it beats the default, from benchmarks/against_default.py's JSON."""
    measured = json.loads((ROOT / "pretrained" / "against-default-measured.json").read_text())
    assert len(measured["predictors"]) == 5
    for name, r in measured["predictors"].items():
        assert r["rows"] > 0 and r["tau_gain"] == pytest.approx(r["tau"] - r["default_tau"])
        card = (ROOT / "pretrained" / f"{name}.md").read_text()
        verb = "beats" if r["tau_gain"] > 0 else "does not beat"
        assert f"It {verb} the default by {r['tau_gain']:+.3f} Kendall τ on `{r['dataset']}`" in card


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    return next(out.glob("weightwatch-*.whl"))


def test_wheel_size(wheel):
    size_mb = wheel.stat().st_size / 1e6
    assert size_mb < WHEEL_MB_BUDGET, f"the wheel is {size_mb:.2f} MB"


def test_wheel_carries_pretrained_and_loads_them_in_a_clean_venv(wheel, tmp_path):
    """Install the wheel into a fresh virtualenv, load every predictor it carries from there."""
    shipped = _wheel_predictors()
    names = zipfile.ZipFile(wheel).namelist()
    for name in shipped:
        assert f"weightwatch/_pretrained/{name}/manifest.json" in names
        assert f"weightwatch/_pretrained/{name}.md" in names
    assert {n.split("/")[2] for n in names if n.startswith("weightwatch/_pretrained/") and n.count("/") == 3} \
        == set(shipped)  # nothing else
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # the dependencies come from this environment (a plain path entry: its editable weightwatch is not set up
    # there), so only the wheel is installed and only its copy of weightwatch can be imported
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    code = ("import weightwatch.pretrained as p, json; names = p.list_predictors(); "
            "[p.load(n) for n in names]; print(json.dumps({'root': str(p.root()), 'names': names}))")
    # neither the shipped-directory override nor a PYTHONPATH pointing at a checkout: only the wheel's copy
    env = {k: v for k, v in os.environ.items() if k not in (pretrained.ENV, "PYTHONPATH")}
    res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["names"] == shipped and out["root"].startswith(str(venv)) and "site-packages" in out["root"]
    # the README's quick start, as pasted, from this fresh install: the doomed run is stopped
    if importlib.util.find_spec("keras") is not None:
        readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
        start = readme.index("\n## Quick start")
        (quick,) = re.findall(r"```python\n(.*?)```", readme[start:readme.find("\n## ", start + 1)], re.S)
        res = subprocess.run([str(py), "-c", "import weightwatch; print('FROM', weightwatch.__file__)\n" + quick],
                             capture_output=True, text=True, cwd=tmp_path, timeout=600,
                             env={**env, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"})
        assert res.returncode == 0, res.stderr[-3000:]
        assert f"FROM {venv}" in res.stdout  # the wheel's copy ran it
        assert re.search(r"^doomed: DOOMED after epoch [123]$", res.stdout, re.M), res.stdout


def test_monitor_takes_a_shipped_predictor_by_name(rng, monkeypatch):
    """``predictor="<shipped name>"`` loads it; the forecaster, given as the predictor, forecasts the final accuracy."""
    from weightwatch.monitor import Monitor

    monkeypatch.delenv(pretrained.ENV, raising=False)
    pretrained._load_cached.cache_clear()
    ws = paper_cnn_weights(rng, scale=0.1)
    net = Network(tuple(LayerWeights(f"l{i}", "conv" if i < 3 else "dense", ws[2 * i], ws[2 * i + 1])
                        for i in range(4)))
    m = Monitor(predictor=pretrained.EARLY_PREDICTOR, rules=[], epochs=18)
    m.start(net)
    v1, v3 = m.step(net, 1, steps=40), m.step(net, 3, steps=120)
    assert v1.predictor_name == pretrained.EARLY_PREDICTOR and v1.predicted_accuracy is None
    assert m.forecaster_name == pretrained.EARLY_PREDICTOR and 0 <= v1.forecast <= 1
    # the forecaster's row: W_L now, W_L now - W_L at the start, log10(1 + steps), progress = epoch / epochs
    model = pretrained.load(pretrained.EARLY_PREDICTOR)
    from weightwatch import forecast
    from weightwatch.features import get_extractor

    x = get_extractor("W_L")(net)
    row = forecast.vector(x, x, 120, 3 / 18)
    assert row[56:112].tolist() == [0.0] * 56 and row[-2] == pytest.approx(np.log10(121))
    assert v3.forecast == pytest.approx(float(np.clip(model.predict(row[None])[0], 0, 1)))
    with pytest.raises(pretrained.PretrainedNotFoundError,
                       match=f"no pretrained predictor 'nope-predictor' in .*available: .*{pretrained.EARLY_PREDICTOR}"):
        Monitor(predictor="nope-predictor", rules=[], strict=True).step(net, 1)


def test_predictor_path_is_searched_in_order_and_matched_by_family(own_pretrained, tmp_path, monkeypatch, rng):
    import shutil

    from weightwatch.adapters import to_network
    from weightwatch.errors import InvalidArgumentError, PredictorPathError
    from weightwatch.monitor import Monitor

    mine = own_pretrained / pretrained.PAPER_CNN_PREDICTOR  # `weightwatch fit` output: records its family
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(mine, a / "mine")
    shutil.copytree(mine, b / "mine")
    net = to_network(keras_paper_cnn(paper_cnn_weights(rng)))
    monkeypatch.delenv(pretrained.PATH_ENV, raising=False)
    assert pretrained.find_on_path(net) is None
    monkeypatch.setenv(pretrained.PATH_ENV, os.pathsep.join([str(b), str(tmp_path / "missing")]))
    with pytest.raises(PredictorPathError, match=f"{tmp_path / 'missing'}.*WEIGHTWATCH_PREDICTOR_PATH"):
        pretrained.find_on_path(net)  # an entry that does not exist is an error, naming it
    with pytest.raises(PredictorPathError, match="missing"):
        Monitor(predictor_path=[a])
    monkeypatch.setenv(pretrained.PATH_ENV, str(b))
    assert str(b / "mine") in pretrained.find_on_path(net).note  # the environment's directory
    assert str(a / "mine") in pretrained.find_on_path(net, [a]).note  # the argument comes first
    found = pretrained.auto_predictor(net, a / "mine")  # a predictor's own directory
    assert found.name == "paper-cnn-W_L-gbm" and found.note.startswith("your predictor")
    assert found.role == "accuracy" and found.source == str(a / "mine")
    assert pretrained.predict_accuracy(net, predictor_path=[a]).predictor == "paper-cnn-W_L-gbm"
    # another family never gets it; a manifest without a family (the shipped ones) never matches
    dense = Network(tuple(LayerWeights(f"d{i}", "dense", rng.standard_normal((8, 8)), np.zeros(8)) for i in range(3)))
    assert pretrained.find_on_path(dense, [a]) is None
    monkeypatch.delenv(pretrained.PATH_ENV)
    assert pretrained.find_on_path(net, [ROOT / "pretrained"]) is None
    for bad in ([3], 3.5):
        with pytest.raises(InvalidArgumentError, match="predictor_path entries must be directories"):
            Monitor(predictor_path=bad)


def test_doom_probability_needs_the_setup_and_the_domain(rng, monkeypatch):
    """The paper-CNN doom model (given by name: the default is the verdict doom model) is used when the run's
    optimizer and dropout are known and in its domain."""
    from weightwatch import forecast
    from weightwatch.features import get_extractor
    from weightwatch.monitor import Monitor

    monkeypatch.delenv(pretrained.ENV, raising=False)
    pretrained._load_cached.cache_clear()
    ws = paper_cnn_weights(rng, scale=0.1)
    layers = tuple(LayerWeights(f"l{i}", "conv" if i < 3 else "dense", ws[2 * i], ws[2 * i + 1]) for i in range(4))
    net = Network(layers, meta={"dropout": [0.2]})
    adam = {"name": "Adam", "kind": "adam", "learning_rate": 1e-3}

    def p_doom(network, optimizer):
        m = Monitor(rules=[], epochs=18, doom_model=pretrained.DOOM_PREDICTOR, forecaster=pretrained.EARLY_PREDICTOR)
        m.start(network)
        v = m.step(network, 2, steps=80, optimizer=optimizer)
        assert m.history[-1]["doom_probability"] == v.doom_probability
        return v.doom_probability

    p = p_doom(net, adam)
    model = pretrained.load(pretrained.DOOM_PREDICTOR)
    x = get_extractor("W_L")(net)
    row = np.concatenate([forecast.vector(x, x, 80, 2 / 18), [-3.0, 0.2, 1.0, 0.0, 0.0, 0.0]])
    assert p == pytest.approx(float(model.predict(row[None])[0])) and 0 < p < 1
    assert p_doom(net, {**adam, "kind": "sgd_momentum"}) != p  # the optimizer kind is a feature
    assert p_doom(net, None) is None  # no optimizer: no setup
    assert p_doom(net, {"name": "AdamW", "kind": "adamw", "learning_rate": 1e-3}) is None  # unknown kind
    assert p_doom(Network(layers), adam) is None  # dropout not read (a flat vector)
    assert p_doom(net, {**adam, "learning_rate": 50.0}) is None  # outside the zoos' learning rates
    with pytest.raises(pretrained.InvalidArgumentError, match="needs the run's setup"):
        pretrained.features_for(model, net, 2)


def test_doom_model_follows_the_predictor_choice(rng, monkeypatch):
    """predictor=None is rules only (no doom probability either); a doom_model that is not one warns once."""
    from weightwatch.monitor import Monitor, WeightWatchWarning

    monkeypatch.delenv(pretrained.ENV, raising=False)
    pretrained._load_cached.cache_clear()
    ws = paper_cnn_weights(rng, scale=0.1)
    net = Network(tuple(LayerWeights(f"l{i}", "conv" if i < 3 else "dense", ws[2 * i], ws[2 * i + 1])
                        for i in range(4)), meta={"dropout": []})
    adam = {"name": "Adam", "kind": "adam", "learning_rate": 1e-3}
    assert Monitor(predictor=None, rules=[]).step(net, 1, optimizer=adam).doom_probability is None
    with pytest.warns(WeightWatchWarning, match="is not a doom model"):
        v = Monitor(rules=[], doom_model=pretrained.EARLY_PREDICTOR).step(net, 1, optimizer=adam)
    assert v.doom_probability is None and v.forecast is not None


def test_saved_lightgbm_texts_are_slim_and_predict_the_same(rng, tmp_path):
    """save_predictor stores LightGBM texts without their training records: smaller, structurally valid, and the
    loaded predictor gives the fitted one's numbers bit for bit (point and interval)."""
    from weightwatch.predictors import GBMPredictor, load_predictor, save_predictor
    from weightwatch.predictors.lgbm_text import TRAINING_RECORDS, check_model_text, slim_model_text

    X = rng.normal(size=(400, 6))
    y = X[:, 0] - 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=400)
    fitted = GBMPredictor(n_estimators=60, min_child_samples=5, interval=(0.1, 0.9)).fit(X, y)
    save_predictor(fitted, tmp_path / "p", name="slim-test", feature_set="test", feature_names=[f"f{i}" for i in
                   range(6)], architecture_family="none", zoo_summary={}, metrics={})
    full = fitted.booster_.model_to_string()
    for fn in ("model.txt", "model_q_lo.txt", "model_q_hi.txt"):
        text = (tmp_path / "p" / fn).read_text()
        assert not any(f"\n{k}=" in text for k in TRAINING_RECORDS) and slim_model_text(text) == text
        assert check_model_text(text, fn) == 60
    assert all(f"\n{k}=" in full for k in TRAINING_RECORDS) and len((tmp_path / "p" / "model.txt").read_text()) < \
        0.8 * len(full)
    loaded = load_predictor(tmp_path / "p")
    X_new = rng.normal(size=(3000, 6)) * 3
    np.testing.assert_array_equal(loaded.predict(X_new), fitted.predict(X_new))
    np.testing.assert_array_equal(np.asarray(loaded.predict_interval(X_new)), np.asarray(fitted.predict_interval(X_new)))
