"""Fault injection: every bad input gets one clear error line, and a zoo build never loses work.

Each case runs the real command line (``weightwatch.cli.main``, or a
subprocess where a process must die) on real files: Keras and torch models,
the shipped LightGBM predictors, real zoo builds. It asserts the exact
outcome: exit status 2, exactly one ``weightwatch: error:`` line naming the
file and the problem, no traceback, and nothing lost (files left as they
were, or a zoo byte-identical to an uninterrupted build).
"""

import collections
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import keras_paper_cnn, paper_cnn_weights, torch_paper_cnn
from weightwatch import pretrained
from weightwatch.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "pretrained"
POOLED, AGNOSTIC, EARLY = pretrained.PAPER_CNN_PREDICTOR, pretrained.AGNOSTIC_PREDICTOR, pretrained.EARLY_PREDICTOR
ZOO_ARGS = ["--dataset", "digits", "--runs", "8", "--epochs", "2", "--checkpoints", "0", "2", "--shard-size", "2",
            "--seed", "3", "--quiet"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
#: The figures the suite measures; written as JSON to $WEIGHTWATCH_FAULT_LEDGER when that is set.
LEDGER = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _ledger():
    yield
    if os.environ.get("WEIGHTWATCH_FAULT_LEDGER"):
        Path(os.environ["WEIGHTWATCH_FAULT_LEDGER"]).write_text(json.dumps(dict(LEDGER), indent=2, sort_keys=True))


# ------------------------------------------------------------------ helpers


def run(capsys, *argv):
    """(exit status, stdout, stderr) of the command line, in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refuses a malformed argument
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(result, *needles):
    """Status 2, exactly one error line, which starts with 'weightwatch: error:' and holds every needle."""
    code, _, err = result
    LEDGER["bad inputs tried"] += 1
    LEDGER["tracebacks"] += "Traceback" in err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert code == 2, err
    assert len(errors) == 1, err
    line = errors[0]
    assert line.startswith("weightwatch: error: ") or ": error: argument" in line, line
    for needle in needles:
        assert str(needle) in line, (needle, line)
    LEDGER["clear errors"] += 1
    return line


def tree(path) -> dict:
    """{relative path: sha256 or 'dir'} of everything under ``path``: 'nothing lost' means this is unchanged."""
    path = Path(path)
    if not path.exists():
        return {}
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def same_zoo(a, b):
    """The merged zoos of two builds are byte-identical, file by file."""
    ta, tb = tree(Path(a) / "zoo"), tree(Path(b) / "zoo")
    LEDGER["zoo builds compared with the uninterrupted one"] += 1
    assert ta and ta == tb
    LEDGER["zoo builds byte-identical"] += 1


@contextlib.contextmanager
def read_only(path):
    """Make a directory unwritable, even for root (chattr +i), and restore it."""
    path = Path(path)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: cannot make a directory read-only")
        undo = ["chattr", "-i", str(path)]
    else:
        mode = path.stat().st_mode
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
        undo = None
    try:
        probe = path / ".probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("this file system ignores read-only directories")
        yield path
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            path.chmod(mode)


def flip_byte(path, where=0.5):
    raw = bytearray(Path(path).read_bytes())
    raw[int(len(raw) * where)] ^= 0x01
    Path(path).write_bytes(bytes(raw))


def reseal_by_hand(directory):
    """What someone who also rewrites manifest.sha256 does: the checks behind the seal must still hold."""
    m = Path(directory) / "manifest.json"
    (Path(directory) / "manifest.sha256").write_text(f"{hashlib.sha256(m.read_bytes()).hexdigest()}  manifest.json\n")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Real model files: good ones, non-finite ones, and files that are not models."""
    import torch

    d = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(7)
    good = paper_cnn_weights(rng)
    keras_paper_cnn(good).save(d / "good.keras")
    torch.save(torch_paper_cnn(good).state_dict(), d / "good.pt")
    nan = [w.copy() for w in good]
    nan[0][0, 0, 0, :3] = np.nan  # conv2d kernel: 3 NaN
    keras_paper_cnn(nan).save(d / "nan.keras")
    inf = torch_paper_cnn(good)
    with torch.no_grad():
        inf[-1].bias[2] = float("inf")  # the Linear layer's bias
    torch.save(inf.state_dict(), d / "inf.pt")
    (d / "random.keras").write_bytes(rng.bytes(4096))
    (d / "empty.keras").write_bytes(b"")
    (d / "folder.keras").mkdir()
    (d / "random.h5").write_bytes(rng.bytes(4096))
    (d / "random.pt").write_bytes(rng.bytes(4096))
    torch.save(torch.zeros(3, 3), d / "tensor.pt")
    torch.save({}, d / "emptydict.pt")
    torch.save({"epoch": 3, "name": "run"}, d / "nontensor.pt")
    (d / "model.onnx").write_text("x")
    return d


@pytest.fixture
def pre(tmp_path, monkeypatch):
    """A private copy of two shipped predictors (real LightGBM files) as the pretrained directory."""
    root = tmp_path / "pretrained"
    for name in (POOLED, AGNOSTIC, EARLY):
        shutil.copytree(SHIPPED / name, root / name)
    monkeypatch.setenv(pretrained.ENV, str(root))
    pretrained._load_cached.cache_clear()
    yield root
    pretrained._load_cached.cache_clear()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted build of the small zoo every fault below must end in, byte for byte."""
    out = tmp_path_factory.mktemp("reference") / "zoo-build"
    assert main(["zoo", "build", *ZOO_ARGS, "--out", str(out)]) == 0
    return out


@pytest.fixture
def zoo_fault():
    """Counts a zoo fault as injected; the test calls it once the build has survived it."""
    LEDGER["zoo faults injected"] += 1
    return lambda: LEDGER.update(["zoo faults survived"])


def copy_build(reference, dest, *, zoo=True):
    shutil.copytree(reference, dest)
    if not zoo:
        shutil.rmtree(dest / "zoo")
    return dest


def build(capsys, out, *extra):
    code, stdout, err = run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out, *extra)
    assert code == 0, err
    assert "Traceback" not in err
    return json.loads(stdout)


# ------------------------------------------------------------------ one error family


def test_every_error_class_of_the_package_is_a_weightwatch_error():
    import importlib
    import inspect
    import pkgutil

    import weightwatch
    from weightwatch.errors import WeightWatchError

    assert weightwatch.WeightWatchError is WeightWatchError
    outside = []
    for info in pkgutil.walk_packages(weightwatch.__path__, "weightwatch."):
        if info.name in ("weightwatch.__main__", "weightwatch.demo"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional framework adapter
            continue
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Exception) and not issubclass(obj, Warning)
                    and obj.__module__.startswith("weightwatch") and not issubclass(obj, WeightWatchError)):
                outside.append(f"{obj.__module__}.{name}")
    assert not outside


@pytest.mark.parametrize("name, old_base", [
    ("PredictorIntegrityError", Exception), ("PretrainedNotFoundError", LookupError),
    ("UnsupportedModelError", TypeError), ("FeatureMismatchError", ValueError), ("ModelFileError", ValueError),
    ("ZooFormatError", ValueError), ("BuildSpecMismatch", ValueError), ("WeightsError", ValueError),
    ("DatasetNotFoundError", FileNotFoundError), ("UnknownNameError", KeyError), ("PluginError", RuntimeError),
    ("MissingDependencyError", ImportError), ("OutputPathError", OSError),
])
def test_errors_keep_their_old_bases(name, old_base):
    """``except ValueError`` (etc.) written before the family existed keeps working."""
    import weightwatch.errors as errors

    cls = getattr(errors, name)
    assert issubclass(cls, errors.WeightWatchError) and issubclass(cls, old_base)
    assert str(cls("one message")) == "one message"


# ------------------------------------------------------------------ model files and predictions


@pytest.mark.parametrize("command", ["predict", "stats"])
@pytest.mark.parametrize("name, needles", [
    ("random.keras", ["random.keras", "is not a Keras archive"]),
    ("empty.keras", ["empty.keras", "is empty (0 bytes)"]),
    ("folder.keras", ["folder.keras", "is a directory, not a model file"]),
    ("random.h5", ["random.h5", "is not an HDF5 file"]),
    ("random.pt", ["random.pt", "is not a torch file"]),
    ("tensor.pt", ["tensor.pt", "holds a single tensor of shape (3, 3)"]),
    ("emptydict.pt", ["emptydict.pt", "holds an empty dict"]),
    ("nontensor.pt", ["nontensor.pt", "holds a dict without tensors (keys: epoch, name)"]),
    ("model.onnx", ["don't know how to read model.onnx"]),
    ("missing.keras", ["missing.keras", "does not exist"]),
])
def test_unreadable_model_file(models, capsys, command, name, needles):
    assert_one_error(run(capsys, command, models / name), *needles)


def test_nan_weights_are_refused_not_predicted(models, pre, capsys):
    line = assert_one_error(run(capsys, "predict", models / "nan.keras"), "nan.keras", "non-finite weights",
                            "/kernel (3 NaN)")
    assert "accuracy" in line  # says why it refuses


def test_inf_weights_are_refused_naming_the_tensor(models, pre, capsys):
    assert_one_error(run(capsys, "predict", models / "inf.pt"), "inf.pt", "non-finite weights", "/bias (1 inf)")


def test_predict_accuracy_refuses_non_finite_weights(models, pre):
    import torch

    from weightwatch.errors import NonFiniteWeightsError, WeightWatchError

    model = torch_paper_cnn(paper_cnn_weights(np.random.default_rng(1)))
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
        model[0].weight[1, 0, 0, 0] = float("-inf")
    with pytest.raises(NonFiniteWeightsError, match=r"non-finite weights in .*kernel \(1 NaN, 1 inf\)") as info:
        pretrained.predict_accuracy(model)
    assert isinstance(info.value, (WeightWatchError, ValueError))


def test_flipped_byte_in_a_shipped_predictor(models, pre, capsys):
    flip_byte(pre / POOLED / "model.txt")
    assert_one_error(run(capsys, "predict", models / "good.keras"), "sha256 mismatch for model.txt", POOLED)


def test_unknown_predictor_name(models, pre, capsys):
    assert_one_error(run(capsys, "predict", models / "good.keras", "--predictor", "nope"),
                     "no pretrained predictor 'nope'", POOLED)


def test_empty_pretrained_directory(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pretrained.ENV, str(tmp_path))
    assert_one_error(run(capsys, "predict", models / "good.keras"), "no shipped predictor found in", tmp_path)


def test_deleted_paper_cnn_manifest_does_not_fall_back_silently(models, pre, capsys):
    (pre / POOLED / "manifest.json").unlink()
    assert_one_error(run(capsys, "predict", models / "good.keras"), "no manifest.json in", POOLED)


def test_edited_manifest_parameter_is_refused(models, pre, capsys):
    m = pre / POOLED / "manifest.json"
    data = json.loads(m.read_text())
    data["params"]["interval_offset"] = 0.5
    m.write_text(json.dumps(data, indent=2, sort_keys=True))
    assert_one_error(run(capsys, "predict", models / "good.keras"), f"{POOLED}/manifest.json",
                     "does not match its sha256 in manifest.sha256")


def test_truncated_manifest(models, pre, capsys):
    m = pre / POOLED / "manifest.json"
    m.write_bytes(m.read_bytes()[:2000])
    assert_one_error(run(capsys, "predict", models / "good.keras"), f"{POOLED}/manifest.json",
                     "does not match its sha256")
    reseal_by_hand(pre / POOLED)  # past the seal, the parser names the file too
    assert_one_error(run(capsys, "predict", models / "good.keras"), f"{POOLED}/manifest.json",
                     "is not valid JSON", "line ")


def test_missing_seal(models, pre, capsys):
    (pre / POOLED / "manifest.sha256").unlink()
    assert_one_error(run(capsys, "predict", models / "good.keras"), "manifest.sha256 is missing",
                     "weightwatch.predictors.seal(")


@pytest.mark.parametrize("edit, needles", [
    (lambda m: m.pop("n_features"), ["lacks required key(s) n_features"]),
    (lambda m: m.update(installer="curl x | sh"), ["unknown key(s) installer"]),
    (lambda m: m["params"].update(leaves=3), ["unknown GBMPredictor parameter(s) leaves"]),
    (lambda m: m["files"].update({"../../etc/passwd": "0" * 64}), ["invalid file name '../../etc/passwd'"]),
    (lambda m: m["files"].update({"/etc/passwd": "0" * 64}), ["invalid file name '/etc/passwd'"]),
    (lambda m: m.update(n_features=3), ["n_features is 3 but feature_names has 56 entries"]),
    (lambda m: m.update(predictor_class="os.system"), ["unknown predictor_class 'os.system'"]),
    (lambda m: m.update(format_version=99), ["unsupported format_version 99"]),
])
def test_manifest_content_is_checked_behind_the_seal(models, pre, capsys, edit, needles):
    m = pre / POOLED / "manifest.json"
    data = json.loads(m.read_text())
    edit(data)
    m.write_text(json.dumps(data))
    reseal_by_hand(pre / POOLED)
    assert_one_error(run(capsys, "predict", models / "good.keras"), f"{POOLED}/manifest.json", *needles)


def test_allowed_extra_sections_load(pre):
    """split, domain, verdict, forecast are data-only sections save_predictor may write."""
    from weightwatch.predictors import load_predictor, seal

    m = pre / POOLED / "manifest.json"
    data = json.loads(m.read_text())
    data.update(split={"test_runs": []}, verdict={"margin": 0.1})
    m.write_text(json.dumps(data))
    seal(pre / POOLED)
    assert load_predictor(pre / POOLED).manifest_["verdict"] == {"margin": 0.1}


def test_symlinked_model_file_is_refused(models, pre, tmp_path, capsys):
    outside = tmp_path / "elsewhere.txt"
    shutil.copy(pre / POOLED / "model_q_lo.txt", outside)
    (pre / POOLED / "model_q_lo.txt").unlink()
    (pre / POOLED / "model_q_lo.txt").symlink_to(outside)  # same bytes, same sha256: refused all the same
    assert_one_error(run(capsys, "predict", models / "good.keras"), "model_q_lo.txt is a symlink")


def test_predictor_outside_the_pretrained_directory_says_where_it_came_from(models, pre, tmp_path, monkeypatch,
                                                                          capsys):
    shutil.copytree(pre / POOLED, tmp_path / "somewhere" / "mine")
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    code, out, err = run(capsys, "predict", models / "good.keras", "--predictor", "../../somewhere/mine")
    assert code == 0, err
    assert f"[{POOLED} from {(tmp_path / 'somewhere' / 'mine').resolve()}]" in out
    assert_one_error(run(capsys, "predict", models / "good.keras", "--predictor", "../../nowhere"),
                     "predictor path", "nowhere' does not exist")
    with pytest.raises(pretrained.PretrainedNotFoundError, match="is not a shipped predictor's name"):
        pretrained.load("../../somewhere/mine")


def test_point_prediction_lies_in_its_interval(pre):
    rng = np.random.default_rng(0)
    for scale in (0.01, 0.1, 0.3, 1.0, 3.0):
        for _ in range(4):
            p = pretrained.predict_accuracy(keras_paper_cnn(paper_cnn_weights(rng, scale=scale)))
            assert p.interval[0] <= p.accuracy <= p.interval[1], p


def test_early_forecast_needs_epoch(models, pre, capsys):
    assert_one_error(run(capsys, "predict", models / "good.keras", "--predictor", EARLY), "--epoch")
    code, _, err = run(capsys, "predict", models / "good.keras", "--predictor", EARLY, "--epoch", "-5")
    assert_one_error((code, "", err), "--epoch", "must be >= 0, got -5")


def test_debug_shows_the_traceback(models, pre, capsys):
    for argv in (["--debug", "predict", models / "nan.keras"], ["predict", models / "nan.keras", "--debug"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "Traceback" in err and "NonFiniteWeightsError" in err
        assert err.strip().splitlines()[-1].startswith("weightwatch: error: ")


def test_error_path_in_a_real_process(models, pre):
    """The installed entry point, not only main(): one line, status 2, no traceback."""
    res = subprocess.run([sys.executable, "-m", "weightwatch", "stats", str(models / "tensor.pt")],
                         env=ENV, capture_output=True, text=True)
    assert_one_error((res.returncode, res.stdout, res.stderr), "tensor.pt", "holds a single tensor")


# ------------------------------------------------------------------ output directories


@pytest.mark.parametrize("command", [
    ["zoo", "build", *ZOO_ARGS],
    ["fit", "ZOO"],
    ["evaluate", "ZOO"],
    ["zoo", "merge", "ZOO/shards/shard-00000"],
])
def test_read_only_out(reference, tmp_path, capsys, command):
    ro = tmp_path / "ro"
    ro.mkdir()
    argv = [str(reference / "zoo") if a == "ZOO" else a.replace("ZOO", str(reference)) for a in command]
    with read_only(ro):
        t0 = time.perf_counter()
        assert_one_error(run(capsys, *argv, "--out", ro / "out"), f"{ro / 'out'}", "not writable",
                         f"its parent {ro} cannot be written")
        assert time.perf_counter() - t0 < 5  # refused before any training or fitting
    assert tree(ro) == {}


@pytest.mark.parametrize("command", [["zoo", "build", *ZOO_ARGS], ["fit", "ZOO"], ["evaluate", "ZOO"]])
def test_out_under_a_file(reference, tmp_path, capsys, command):
    (tmp_path / "afile").write_text("x")
    argv = [str(reference / "zoo") if a == "ZOO" else a for a in command]
    assert_one_error(run(capsys, *argv, "--out", tmp_path / "afile" / "out"),
                     f"{tmp_path / 'afile'} is a file, so no directory can be created under it")
    assert (tmp_path / "afile").read_text() == "x"


def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert_one_error(run(capsys, "zoo", "build", *ZOO_ARGS, "--out", tmp_path / "afile"),
                     f"{tmp_path / 'afile'}: it exists and is a file")
    assert (tmp_path / "afile").read_text() == "x"


def test_merge_refuses_a_damaged_source(reference, tmp_path, capsys):
    shards = copy_build(reference, tmp_path / "build") / "shards"
    flip_byte(shards / "shard-00001" / "weights.npy", where=0.9)
    assert_one_error(run(capsys, "zoo", "merge", shards / "shard-00000", shards / "shard-00001", "--out",
                         tmp_path / "merged"), "cannot merge", "shard-00001/weights.npy does not match its sha256")
    assert not (tmp_path / "merged").exists()


def test_predictor_path_that_is_a_file(models, pre, tmp_path, capsys):
    (tmp_path / "p.txt").write_text("x")
    assert_one_error(run(capsys, "predict", models / "good.keras", "--predictor", tmp_path / "p.txt"),
                     "p.txt is not a predictor directory (it is a file)")


def test_interrupt_is_one_line_and_status_130(models, pre, monkeypatch, capsys):
    import weightwatch.modelfile

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(weightwatch.modelfile, "load_model_file", interrupted)
    code, _, err = run(capsys, "stats", models / "good.keras")
    assert code == 130 and err.strip() == "weightwatch: interrupted"


@pytest.mark.parametrize("argv, needles", [
    (["fit", "ZOO", "--params", "{n_estimators: 3}"], ["argument --params", "not valid JSON"]),
    (["fit", "ZOO", "--params", "[1, 2]"], ["argument --params", "expected a JSON object", "[1, 2]"]),
    (["fit", "ZOO", "--interval", "0.9", "0.1"], ["--interval 0.9 0.1", "0 < LO < HI < 1"]),
    (["fit", "ZOO", "--features", "W_Q"], ["no feature set named 'W_Q'"]),
    (["fit", "NOZOO"], ["zoo directory", "does not exist"]),
    (["fit", "ZOO", "--epochs", "3"], ["argument --epochs", "invalid choice: '3'"]),
])
def test_bad_fit_arguments_are_refused_before_fitting(reference, tmp_path, capsys, argv, needles):
    argv = [str(reference / "zoo") if a == "ZOO" else str(tmp_path / "nozoo") if a == "NOZOO" else a for a in argv]
    assert_one_error(run(capsys, *argv, "--out", tmp_path / "p"), *needles)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("damage, needles", [
    ("truncate weights.npy", ["zoo/weights.npy is unreadable", "truncated"]),
    ("garble zoo.json", ["zoo/zoo.json is not valid JSON"]),
    ("garble metrics.csv.gz", ["zoo/metrics.csv.gz is unreadable"]),
    ("delete layout.csv", ["layout.csv is missing"]),
])
@pytest.mark.parametrize("command", [["zoo", "info"], ["fit"]])
@pytest.mark.parametrize("sums", [True, False], ids=["SHA256SUMS", "no SHA256SUMS"])
def test_damaged_zoo_is_named_when_read(reference, tmp_path, capsys, damage, needles, command, sums):
    """With SHA256SUMS the checksum names the damaged file first; without (the release's format) the parser does."""
    out = copy_build(reference, tmp_path / "build")
    zoo = out / "zoo"
    if sums and damage != "delete layout.csv":
        needles = [f"zoo/{damage.split()[1]} does not match its sha256 in SHA256SUMS", "cannot be trusted"]
    elif not sums:
        (zoo / "SHA256SUMS").unlink()
    if damage == "truncate weights.npy":
        (zoo / "weights.npy").write_bytes((zoo / "weights.npy").read_bytes()[:5000])
    elif damage == "garble zoo.json":
        (zoo / "zoo.json").write_text('{"build": ')
    elif damage == "garble metrics.csv.gz":
        (zoo / "metrics.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    else:
        (zoo / "layout.csv").unlink()
    extra = ["--out", tmp_path / "p"] if command == ["fit"] else []
    assert_one_error(run(capsys, *command, zoo, *extra), *needles)


def test_fit_refuses_an_existing_predictor_before_fitting(reference, pre, capsys):
    before = tree(pre / POOLED)
    assert_one_error(run(capsys, "fit", reference / "zoo", "--out", pre / POOLED), "already holds a predictor",
                     "--overwrite")
    assert tree(pre / POOLED) == before


# ------------------------------------------------------------------ zoo builds: bad settings


@pytest.mark.parametrize("extra, needles", [
    (["--dataset", "digts"], ["unknown dataset 'digts'", "digits_jitter"]),
    (["--architecture", "resnet"], ["unknown architecture 'resnet'"]),
    (["--checkpoints", "0", "5"], ["checkpoints must be epochs in [0, 2]", "[0, 5]"]),
    (["--resolution", "2"], ["--resolution 2", "too small for paper-cnn"]),
    (["--dataset", "mnist", "--data-dir", "EMPTY"], ["mnist not found locally", "Nothing is downloaded"]),
    (["--data-dir", "NOWHERE"], ["--data-dir", "is not a directory"]),
    (["--runs", "0"], ["argument --runs", "must be >= 1, got 0"]),
    (["--shard-size", "-1"], ["argument --shard-size", "must be >= 1"]),
    (["--epochs", "x"], ["argument --epochs", "expected an integer, got 'x'"]),
    (["--ranges", "{optimizer: 1}"], ["argument --ranges", "not valid JSON"]),
    (["--ranges", '{"optimiser": {"dist": "constant", "value": "sgd"}}'], ["unknown hyperparameter(s)", "optimiser"]),
    (["--ranges", '{"optimizer": {"dist": "constant", "value": "adagrad"}}'],
     ["optimizer 'adagrad'", "supported: adam, sgd, sgd_momentum, rmsprop"]),
])
def test_bad_build_settings_write_nothing(tmp_path, monkeypatch, capsys, extra, needles):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no dataset cache to find mnist in
    (tmp_path / "empty").mkdir()
    extra = [str(tmp_path / "empty") if a == "EMPTY" else str(tmp_path / "nowhere") if a == "NOWHERE" else a
             for a in extra]
    out = tmp_path / "build"
    assert_one_error(run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out, *extra), *needles)
    assert not out.exists()  # no build.json to block the corrected command


@pytest.mark.parametrize("ranges, needle", [
    ({"activation": {"dist": "choice", "values": ["relu", "gelu"]}}, "unsupported activation 'gelu'"),
    ({"lr": {"dist": "uniform", "low": 0, "high": 1}}, "unknown hyperparameter(s) in ranges: ['lr']"),
    ({"dropout": {"dist": "constant", "value": 1.5}}, "dropout 1.5 (must be in [0, 1))"),
])
def test_unsupported_hyperparameter_ranges_write_nothing(tmp_path, ranges, needle):
    from weightwatch.errors import InvalidArgumentError
    from weightwatch.zoo.build import BuildSpec, build_zoo

    spec = BuildSpec(dataset="digits", runs=4, epochs=1, checkpoints=(0, 1), shard_size=2, ranges=ranges)
    with pytest.raises(InvalidArgumentError) as info:
        build_zoo(tmp_path / "build", spec, progress=False)
    assert needle in str(info.value)
    assert not (tmp_path / "build").exists()


def test_mistyped_dataset_then_the_corrected_command_works(reference, tmp_path, capsys):
    out = tmp_path / "build"
    assert_one_error(run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out, "--dataset", "digts"), "digts")
    assert build(capsys, out)["trained_shards"] == 4
    same_zoo(out, reference)


def test_other_settings_are_refused_with_a_hint_then_force_starts_over(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build")
    before = tree(out)
    args = [a if a != "8" else "6" for a in ZOO_ARGS]  # --runs 6
    code, _, err = run(capsys, "zoo", "build", *args, "--out", out)
    assert_one_error((code, "", err), "different settings: runs (recorded 8, asked 6)", "--force")
    assert tree(out) == before
    code, stdout, err = run(capsys, "zoo", "build", *args, "--out", out, "--force")
    assert code == 0, err
    assert json.loads((out / "zoo" / "zoo.json").read_text())["build"]["runs"] == 6
    assert json.loads(stdout)["trained_shards"] == 3  # shards record their settings: all of the old ones go
    assert not (out / "shards" / "shard-00003").exists()
    zoo_fault()  # survived: nothing lost


def test_corrupt_build_json(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build")
    (out / "build.json").write_text('{"dataset": "digits", "runs": 8,')
    before = tree(out)
    assert_one_error(run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out), f"{out / 'build.json'}",
                     "is not valid JSON", "--force")
    assert tree(out) == before
    result = build(capsys, out, "--force")
    assert result["trained_shards"] == 0  # the shards record their own settings: none retrained
    same_zoo(out, reference)
    zoo_fault()  # survived: nothing lost


# ------------------------------------------------------------------ zoo builds: damaged files, re-runs


def test_finished_build_rerun_is_a_no_op(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build")
    before = tree(out)
    inode = (out / "zoo" / "weights.npy").stat().st_ino
    result = build(capsys, out)
    assert result["unchanged"] is True and result["trained_shards"] == 0
    assert tree(out) == before and (out / "zoo" / "weights.npy").stat().st_ino == inode
    zoo_fault()  # survived: nothing lost


def test_truncated_shard_never_costs_the_merged_zoo(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build")
    shard = out / "shards" / "shard-00001"
    (shard / "weights.npy").write_bytes((shard / "weights.npy").read_bytes()[:1000])
    assert build(capsys, out)["unchanged"] is True  # the merged zoo is intact and stays
    same_zoo(out, reference)
    shutil.rmtree(out / "zoo")  # now the shard is needed: it is retrained, by name
    result = build(capsys, out)
    assert result["trained_shards"] == 1 and result["retrained"] == [str(shard)]
    same_zoo(out, reference)
    assert tree(out / "shards") == tree(reference / "shards")
    zoo_fault()  # survived: nothing lost


@pytest.mark.parametrize("damage", ["flip metrics", "truncate weights, no SHA256SUMS", "delete layout",
                                    "garble SHA256SUMS"])
def test_damaged_shard_is_retrained(reference, tmp_path, capsys, damage, zoo_fault):
    out = copy_build(reference, tmp_path / "build", zoo=False)
    shard = out / "shards" / "shard-00002"
    if damage == "flip metrics":
        flip_byte(shard / "metrics.csv.gz")
    elif damage == "truncate weights, no SHA256SUMS":
        (shard / "SHA256SUMS").unlink()
        (shard / "weights.npy").write_bytes((shard / "weights.npy").read_bytes()[:-100])
    elif damage == "delete layout":
        (shard / "layout.csv").unlink()
    else:
        (shard / "SHA256SUMS").write_text("not a checksum\n")
    result = build(capsys, out)
    assert result["trained_shards"] == 1 and result["retrained"] == [str(shard)]
    same_zoo(out, reference)
    zoo_fault()  # survived: nothing lost


def test_corrupt_merged_zoo_is_merged_again_without_training(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build")
    flip_byte(out / "zoo" / "weights.npy")
    result = build(capsys, out)
    assert result["trained_shards"] == 0 and "unchanged" not in result
    same_zoo(out, reference)
    zoo_fault()  # survived: nothing lost


def test_stale_temporary_folders_are_cleaned(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build", zoo=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    for parent, name in ((out, "zoo"), (out / "shards", "shard-00001")):
        stale = parent / f".tmp-{name}-{host}-{dead.pid}-abc123"
        stale.mkdir()
        (stale / "weights.npy").write_bytes(b"half")
    mine = out / f".tmp-zoo-{host}-{os.getpid()}-abc123"  # a live writer's folder is left alone
    mine.mkdir()
    build(capsys, out)
    leftovers = sorted(p.name for p in [*out.iterdir(), *(out / "shards").iterdir()] if p.name.startswith("."))
    assert leftovers == [mine.name]
    same_zoo(out, reference)
    zoo_fault()  # survived: nothing lost


# ------------------------------------------------------------------ zoo builds: kill -9


def _kill_when(proc, ready, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.02)
    reached = ready()
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL and reached, f"the build was not killed where it should be: {err}"


def _paused_build(out, flag, patch):
    """A real build in a subprocess that stops at a chosen point (set up by ``patch``) until it is killed."""
    code = "\n".join([
        "import os, sys, time",
        "from pathlib import Path",
        f"FLAG = Path({str(flag)!r})",
        "def pause():",
        "    FLAG.write_text('here')",
        "    time.sleep(600)",
        textwrap.dedent(patch),
        "from weightwatch.cli import main",
        f"sys.exit(main(['zoo', 'build', *{ZOO_ARGS!r}, '--out', {str(out)!r}]))",
    ])
    return subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_kill_during_a_shard_then_rerun(reference, tmp_path, capsys, zoo_fault):
    out = tmp_path / "build"
    flag = tmp_path / "flag"
    proc = _paused_build(out, flag, """
        import weightwatch.zoo.population as population
        real, calls = population.train_population, []
        def train_population(*args, **kw):  # the second shard says when it starts, then trains for real
            calls.append(1)
            if len(calls) == 2:
                FLAG.write_text("training")
            return real(*args, **kw)
        population.train_population = train_population
    """)
    _kill_when(proc, lambda: flag.exists() and time.time() - flag.stat().st_mtime > 0.3)
    visible = sorted(p.name for p in (out / "shards").iterdir() if not p.name.startswith("."))
    assert visible == ["shard-00000"] and not (out / "zoo").exists()  # killed inside the second shard
    result = build(capsys, out)
    assert result["trained_shards"] == 3
    same_zoo(out, reference)
    assert tree(out / "shards") == tree(reference / "shards")
    zoo_fault()  # survived: nothing lost


def test_kill_during_the_merge_then_rerun(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build", zoo=False)
    flag = tmp_path / "flag"
    proc = _paused_build(out, flag, """
        import weightwatch.zoo.storage as st
        real = st.read_metrics
        def read_metrics(d):  # merge_zoos has written weights.npy and layout.csv into its temp folder
            pause()
        st.read_metrics = read_metrics
    """)
    _kill_when(proc, flag.exists)
    assert [p.name for p in out.iterdir() if p.name.startswith(".tmp-zoo-")]  # a half-written merge
    assert not (out / "zoo").exists()
    result = build(capsys, out)
    assert result["trained_shards"] == 0
    same_zoo(out, reference)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    zoo_fault()  # survived: nothing lost


def test_kill_while_a_merged_zoo_is_being_replaced(reference, tmp_path, capsys, zoo_fault):
    out = copy_build(reference, tmp_path / "build")
    flip_byte(out / "zoo" / "metrics.csv.gz")  # the merged zoo must be merged again ...
    flag = tmp_path / "flag"
    proc = _paused_build(out, flag, """
        real = os.rename
        def rename(src, dst):  # ... and the process dies between moving the old one aside and the new one in
            if Path(src).name.startswith(".tmp-zoo-"):
                pause()
            return real(src, dst)
        os.rename = rename
    """)
    _kill_when(proc, flag.exists)
    assert not (out / "zoo").exists() and [p for p in out.iterdir() if p.name.startswith(".old-zoo-")]
    result = build(capsys, out)
    assert result["trained_shards"] == 0
    same_zoo(out, reference)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    zoo_fault()  # survived: nothing lost
