"""Fault injection, second round: no silent wrong results, no native crashes, tamper-evident predictors.

Same style as ``test_faults.py`` (whose helpers and fixtures this suite
reuses): each case runs the real command line or the public API on real
files, real subprocesses where a process must race or die, and asserts the
clear error (one ``weightwatch: error:`` line naming the file and the
problem) or the correct result, and that no data was lost.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from test_faults import (ENV, POOLED, ROOT, ZOO_ARGS, _kill_when, _paused_build, assert_one_error, build,  # noqa: F401
                         copy_build, flip_byte, models, pre, reference, run, same_zoo, tree, zoo_fault)
from weightwatch.cli import main

def quiet(stderr: str) -> str:
    """stderr without TensorFlow's start-up chatter (absl lines), which is not ours to judge."""
    return "\n".join(line for line in stderr.splitlines()
                     if not line.startswith("WARNING: All log messages before absl")
                     and not re.match(r"[IWE]\d{4} ", line))


PAUSE_IN_TRAINING = """
    import weightwatch.zoo.population as population
    def train_population(*args, **kw):  # holds the lock, then waits to be killed
        pause()
    population.train_population = train_population
"""


# ------------------------------------------------------------------ 1. one build per --out, same settings


def _racer(out, flag, seed):
    """A real `zoo build` in a subprocess that, once it holds the lock, writes ``flag`` and waits to be killed."""
    args = [a if a != "3" else str(seed) for a in ZOO_ARGS]  # --seed
    code = "\n".join([
        "import sys, time", "from pathlib import Path",
        "import weightwatch.zoo.population as population",
        "def train_population(*a, **k):",
        f"    Path({str(flag)!r}).write_text('locked')",
        "    time.sleep(600)",
        "population.train_population = train_population",
        "from weightwatch.cli import main",
        f"sys.exit(main(['zoo', 'build', *{args!r}, '--out', {str(out)!r}]))",
    ])
    return subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_two_builds_racing_for_one_out(tmp_path, zoo_fault):
    """Two real processes with different seeds start at once on one --out: one builds, the other is refused."""
    out = tmp_path / "build"
    flags = [tmp_path / "flag-a", tmp_path / "flag-b"]
    procs = [_racer(out, flags[0], 3), _racer(out, flags[1], 4)]
    deadline = time.time() + 240
    while time.time() < deadline and not (any(f.exists() for f in flags)
                                          and any(p.poll() is not None for p in procs)):
        time.sleep(0.05)
    winner = [i for i, f in enumerate(flags) if f.exists()]
    loser = [i for i, p in enumerate(procs) if p.poll() is not None]
    assert len(winner) == 1 and loser == [1 - winner[0]], (winner, loser)
    _, err = procs[loser[0]].communicate()
    holder = procs[winner[0]].pid
    line = assert_one_error((procs[loser[0]].returncode, "", err), f"--out {out} is in use by pid {holder}",
                            f"on host {socket.gethostname()}", "build.lock")
    assert "wait for it to finish" in line
    lock = json.loads((out / "build.lock").read_text())
    assert lock["pid"] == holder and lock["host"] == socket.gethostname()
    assert json.loads((out / "build.json").read_text())["seed"] == [3, 4][winner[0]]  # the loser wrote nothing
    procs[winner[0]].kill()
    procs[winner[0]].communicate()
    zoo_fault()


def test_lock_of_a_killed_build_is_taken_over(reference, tmp_path, capsys, caplog, zoo_fault):
    out = copy_build(reference, tmp_path / "build", zoo=False)
    flag = tmp_path / "flag"
    shutil.rmtree(out / "shards" / "shard-00003")
    proc = _paused_build(out, flag, PAUSE_IN_TRAINING)
    deadline = time.time() + 240
    while time.time() < deadline and not flag.exists() and proc.poll() is None:
        time.sleep(0.05)
    # while it lives, a second build (same settings) is refused and changes nothing
    before = tree(out)
    assert_one_error(run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out), f"is in use by pid {proc.pid}")
    assert tree(out) == before
    _kill_when(proc, flag.exists)
    assert json.loads((out / "build.lock").read_text())["pid"] == proc.pid  # left behind by kill -9
    code, stdout, err = run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out)
    assert code == 0, err
    assert f"took over {out / 'build.lock'} from pid {proc.pid} on host {socket.gethostname()}" in caplog.text
    assert json.loads(stdout)["trained_shards"] == 1
    same_zoo(out, reference)
    assert not (out / "build.lock").exists()  # released
    zoo_fault()


def test_shard_of_other_settings_is_refused_naming_the_setting(reference, tmp_path, capsys, zoo_fault):
    """A shard recording seed 4 inside a seed-3 build (a second build wrote it) is not merged as seed 3."""
    from weightwatch._files import write_sums

    out = copy_build(reference, tmp_path / "build", zoo=False)
    shard = out / "shards" / "shard-00002"
    info = json.loads((shard / "zoo.json").read_text())
    info["build"]["seed"] = 4
    (shard / "zoo.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    write_sums(shard, [p.name for p in shard.iterdir() if p.name != "SHA256SUMS"])  # intact, other settings
    before = tree(out)
    assert_one_error(run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out), "shard-00002 was built with other settings",
                     "seed (recorded 4, asked 3)", "--force")
    assert tree(out) == before
    zoo_fault()


# ------------------------------------------------------------------ 5. every read of a zoo checks SHA256SUMS


@pytest.mark.parametrize("command", [["zoo", "info"], ["fit"], ["evaluate"]])
def test_changed_but_parseable_zoo_file_is_refused_on_read(reference, tmp_path, capsys, command):
    """One weight changed (still a valid .npy, so no parser notices): every reader refuses it, naming the file."""
    out = copy_build(reference, tmp_path / "build")
    w = np.load(out / "zoo" / "weights.npy")
    w[3, 7] += 0.5
    np.save(out / "zoo" / "weights.npy", w)
    extra = ["--out", tmp_path / "p"] if command != ["zoo", "info"] else []
    assert_one_error(run(capsys, *command, out / "zoo", *extra),
                     f"{out / 'zoo' / 'weights.npy'} does not match its sha256 in SHA256SUMS")
    assert not (tmp_path / "p").exists()


def test_zoo_api_verifies_sums_and_rechecks_a_file_changed_after_opening(reference, tmp_path):
    from weightwatch.errors import ZooFormatError
    from weightwatch.zoo.storage import Zoo

    out = copy_build(reference, tmp_path / "build")
    assert len(Zoo(out / "zoo")) == len(Zoo(reference / "zoo"))
    metrics = out / "zoo" / "metrics.csv.gz"
    raw = metrics.read_bytes()
    metrics.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))  # same size; mtime moves
    with pytest.raises(ZooFormatError, match="metrics.csv.gz does not match its sha256"):
        Zoo(out)


# ------------------------------------------------------------------ 2. torch layers in forward order


def _classifier_first_cnn(weights):
    """The paper CNN as a module that declares its classifier before its convolutions (forward runs them last)."""
    import torch
    from torch import nn

    from helpers import torch_paper_cnn

    seq = torch_paper_cnn(weights)

    class ClassifierFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = seq[8]  # Linear(16, 10), declared first
            self.bn = nn.BatchNorm2d(16)
            self.body = nn.Sequential(*list(seq)[:6])
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.head(torch.flatten(self.pool(self.bn(self.body(x))), 1))

    return ClassifierFirst()


def test_torch_module_declaring_its_classifier_first_is_read_in_forward_order(pre):
    import torch

    from helpers import paper_cnn_weights, torch_paper_cnn
    from weightwatch import pretrained
    from weightwatch.adapters import to_network
    from weightwatch.features import extract

    weights = paper_cnn_weights(np.random.default_rng(5))
    model = _classifier_first_cnn(weights)
    model.train()
    model.body[0].eval()  # a mixed mode the trace must restore
    bn_before = {k: v.clone() for k, v in model.bn.state_dict().items()}
    net = to_network(model)
    assert [layer.name for layer in net.layers] == ["body.0", "body.2", "body.4", "head"]
    assert [layer.activation for layer in net.layers] == ["relu", "relu", "relu", None]
    assert net.meta["order"] == "forward"
    assert model.training and not model.body[0].training and model.body[2].training
    assert all(torch.equal(v, model.bn.state_dict()[k]) for k, v in bn_before.items())  # no statistics updated
    reference = torch_paper_cnn(weights)
    np.testing.assert_allclose(extract(net, "W_L"), extract(to_network(reference), "W_L"))
    a, b = pretrained.predict_accuracy(model), pretrained.predict_accuracy(reference)
    assert a.accuracy == pytest.approx(b.accuracy)


def test_torch_module_without_forward_is_read_through_its_one_child():
    """A LightningModule often has no forward(): the one submodule holding the weights is traced instead."""
    from torch import nn

    from helpers import paper_cnn_weights
    from weightwatch.adapters import to_network

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _classifier_first_cnn(paper_cnn_weights(np.random.default_rng(2)))

    net = to_network(Holder())
    assert [layer.name for layer in net.layers] == ["net.body.0", "net.body.2", "net.body.4", "net.head"]
    assert net.meta["order"] == "forward"


def test_torch_model_without_a_fitting_input_warns_that_the_order_is_unverified():
    import torch
    from torch import nn

    from weightwatch.adapters import to_network
    from weightwatch.adapters.torch import LayerOrderWarning

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(8, 2)
            self.a = nn.Linear(3, 4)
            self.b = nn.Linear(5, 4)

        def forward(self, x, y):
            return self.out(torch.cat([self.a(x), self.b(y)], 1))

    with pytest.warns(LayerOrderWarning, match="TwoInputs was not verified.*declaration order"):
        net = to_network(TwoInputs())
    assert [layer.name for layer in net.layers] == ["out", "a", "b"] and net.meta["order"] == "declaration"


# ------------------------------------------------------------------ 3. Keras mixed_float16


@pytest.fixture
def mixed_float16():
    import keras

    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
    assert keras.mixed_precision.global_policy().name == before


def test_keras_mixed_float16_run_reads_through_the_loss_scale_optimizer(pre, mixed_float16):
    import keras

    from weightwatch.adapters import to_network
    from weightwatch.adapters.keras import inner_optimizer
    from weightwatch.keras import WeightWatchCallback
    from weightwatch.monitor import _optimizer_facts
    from weightwatch.zoo.datasets import load_dataset

    data = load_dataset("digits", resolution=16)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, dtype="float32"),  # the usual float32 output layer of a mixed model
    ])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert model.layers[0].compute_dtype == "float16" and model.layers[0].kernel.dtype == "float32"
    callback = WeightWatchCallback(predictor=POOLED, verbose=0)
    x, y = data.x_train[:512], data.y_train[:512]
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[callback])

    assert _optimizer_facts(model.optimizer)["kind"] == "lossscaleoptimizer"  # the wrapper: never in a zoo
    facts = _optimizer_facts(inner_optimizer(model.optimizer))
    assert facts == {"name": "Adam", "kind": "adam", "learning_rate": pytest.approx(3e-3)}
    assert callback._steps() == 16  # 512 / 32 steps applied, read from the inner optimizer
    net = to_network(model)
    kernels = [w for w in model.get_weights() if w.ndim > 1]
    assert [layer.kernel.dtype for layer in net.layers] == [np.float32] * 4
    for layer, k in zip(net.layers, kernels):
        np.testing.assert_array_equal(layer.kernel, k)
    verdict = callback.verdict
    assert verdict is not None and verdict.predicted_accuracy is not None
    assert "LossScaleOptimizer" not in (verdict.domain_reason or "") and verdict.in_domain, verdict.domain_reason



# ------------------------------------------------------------------ 6. forecasts past the fitted epochs


def test_epoch_beyond_the_forecasters_range_is_out_of_domain(models, pre, capsys):
    from weightwatch import pretrained
    from weightwatch.errors import InvalidArgumentError

    code, out, err = run(capsys, "predict", models / "good.keras", "--predictor", pretrained.EARLY_PREDICTOR,
                         "--epoch", "100000")
    assert code == 0, err
    assert "out of domain: epoch 100000 is outside the epochs this predictor was fitted on (0 to 18" in out
    code, out, err = run(capsys, "predict", models / "good.keras", "--predictor", pretrained.EARLY_PREDICTOR,
                         "--epoch", "6", "--json")
    assert code == 0 and json.loads(out)["in_domain"] in (True, False)
    assert "outside the epochs" not in out
    model = models / "good.keras"
    from weightwatch.modelfile import load_model_file

    net = load_model_file(model)
    far = pretrained.predict_accuracy(net, predictor=pretrained.EARLY_PREDICTOR, epoch=100000)
    assert not far.in_domain and "epoch 100000 is outside" in far.domain_reason
    assert "outside the epochs" not in pretrained.predict_accuracy(net, predictor=pretrained.EARLY_PREDICTOR,
                                                                   epoch=18).domain_reason
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(InvalidArgumentError, match="epoch must be an integer >= 0"):
            pretrained.predict_accuracy(net, predictor=pretrained.EARLY_PREDICTOR, epoch=bad)


# ------------------------------------------------------------------ 8. a damaged LightGBM file cannot crash us


def _truncate_and_reseal(directory, fn, fraction):
    """Cut ``fn`` short and update manifest.json and its seal, as someone 'repairing' the checksums would."""
    from test_faults import reseal_by_hand

    path = Path(directory) / fn
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * fraction)])
    m = Path(directory) / "manifest.json"
    data = json.loads(m.read_text())
    data["files"][fn] = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    m.write_text(json.dumps(data, indent=2, sort_keys=True))
    reseal_by_hand(directory)


def test_lightgbm_itself_crashes_on_the_truncated_file(pre):
    """The case: LightGBM's parser, given the cut file directly, kills the interpreter (SIGSEGV or SIGABRT)."""
    _truncate_and_reseal(pre / POOLED, "model.txt", 0.5)
    code = f"import lightgbm; lightgbm.Booster(model_file={str(pre / POOLED / 'model.txt')!r})"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV)
    assert res.returncode < 0  # killed by a signal: no Python exception could have caught it


@pytest.mark.parametrize("fraction, needle", [
    (0.5, "is missing or cut short (truncated file?)"),
    (0.001, "holds no tree"),
    (0.99, "is missing or cut short (truncated file?)"),
])
def test_truncated_resealed_model_is_refused_not_a_crash(models, pre, fraction, needle):
    _truncate_and_reseal(pre / POOLED, "model.txt", fraction)
    res = subprocess.run([sys.executable, "-m", "weightwatch", "predict", str(models / "good.pt"),
                          "--predictor", POOLED], env={**ENV, "WEIGHTWATCH_PRETRAINED_DIR": str(pre)},
                         capture_output=True, text=True)
    assert_one_error((res.returncode, res.stdout, quiet(res.stderr)), f"{pre / POOLED / 'model.txt'}",
                     "is not a complete LightGBM model", needle)


def test_a_tree_missing_leaf_values_is_refused():
    """Complete but inconsistent: a tree whose leaf values do not match its leaf count (not a truncation)."""
    from weightwatch.errors import PredictorIntegrityError
    from weightwatch.predictors.lgbm_text import check_model_text

    text = (ROOT / "pretrained" / POOLED / "model.txt").read_text()
    start = text.index("\nTree=3\n")
    line = text.index("leaf_value=", start)
    end = text.index("\n", line)
    values = text[line:end].split(" ")
    bad = text[:line] + " ".join(values[:-1]) + " " * (len(values[-1]) + 1) + text[end:]  # tree_sizes still right
    with pytest.raises(PredictorIntegrityError, match="tree 3 declares 63 leaves but holds 62 leaf values"):
        check_model_text(bad, "bad.txt")


def test_a_crash_the_checks_miss_kills_only_the_child(tmp_path):
    """Past the structure checks, LightGBM parses an unknown file in a child process: its crash is an error here."""
    from weightwatch.errors import PredictorIntegrityError
    from weightwatch.predictors.lgbm_text import check_model_text, parse_in_subprocess

    text = (ROOT / "pretrained" / POOLED / "model.txt").read_text()
    cut = text[:len(text) // 2]
    with pytest.raises(PredictorIntegrityError):
        check_model_text(cut, "cut.txt")
    t0 = time.perf_counter()
    with pytest.raises(PredictorIntegrityError, match=r"cut.txt crashes LightGBM's parser \(SIG(SEGV|ABRT)\)"):
        parse_in_subprocess({tmp_path / "good.txt": text, tmp_path / "cut.txt": cut})
    assert parse_in_subprocess({tmp_path / "good.txt": text}) == [(800, 56)]
    print(f"subprocess parse: {time.perf_counter() - t0:.1f} s for three texts")


def test_a_predictor_saved_elsewhere_is_parsed_apart_once(pre, tmp_path):
    """A copy whose files are not the shipped ones (here: a re-saved, byte-different model) is checked, parsed
    in a child process once, then loads in process; the shipped files skip both."""
    import lightgbm

    from weightwatch.predictors import lgbm_text, load_predictor, seal

    d = tmp_path / "mine"
    shutil.copytree(pre / POOLED, d)
    shipped = (d / "model.txt").read_text()
    text = re.sub(r"\[num_threads: \d+\]", "[num_threads: 3]", shipped)  # a byte-different, valid model
    assert text != shipped
    assert lightgbm.Booster(model_str=text).num_trees() == 800
    (d / "model.txt").write_text(text)
    m = json.loads((d / "manifest.json").read_text())
    m["files"]["model.txt"] = __import__("hashlib").sha256(text.encode()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(m))
    seal(d)
    assert not lgbm_text.is_known(m["files"]["model.txt"])
    t0 = time.perf_counter()
    load_predictor(d)
    first = time.perf_counter() - t0
    assert lgbm_text.is_known(m["files"]["model.txt"])
    t0 = time.perf_counter()
    load_predictor(d)
    again = time.perf_counter() - t0
    print(f"load of an unknown predictor: first {first:.2f} s (checks + child parse), then {again:.2f} s")
    assert again < first


# ------------------------------------------------------------------ 12. shipped predictors: hashes in the code


def test_the_hash_table_in_the_package_matches_pretrained():
    from weightwatch.predictors import _shipped_hashes

    assert _shipped_hashes.HASHES == _shipped_hashes.table(ROOT / "pretrained"), (
        "pretrained/ changed: run python -m weightwatch.predictors._shipped_hashes")


def _package_copy(tmp_path):
    """This source tree's package and one shipped predictor, copied: an installation we may tamper with."""
    dest = tmp_path / "install"
    shutil.copytree(ROOT / "weightwatch", dest / "weightwatch", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "pretrained" / POOLED, dest / "pretrained" / POOLED)
    return dest


def _predict_with(install, model, env_extra=()):
    env = {k: v for k, v in ENV.items() if k != "WEIGHTWATCH_PRETRAINED_DIR"}
    env.update({"PYTHONPATH": str(install), **dict(env_extra)})
    res = subprocess.run([sys.executable, "-m", "weightwatch", "predict", str(model), "--predictor", POOLED],
                         env=env, capture_output=True, text=True, cwd=install)
    return res.returncode, res.stdout, quiet(res.stderr)


def test_swapped_shipped_file_with_a_swapped_seal_is_refused(models, tmp_path):
    """model.txt replaced by another shipped predictor's (same features), manifest and seal updated to match."""
    from test_faults import reseal_by_hand

    install = _package_copy(tmp_path)
    d = install / "pretrained" / POOLED
    code, out, err = _predict_with(install, models / "good.pt")
    assert code == 0 and "predicted test accuracy" in out, err
    shutil.copy(ROOT / "pretrained" / "paper-cnn-digits-W_L-gbm" / "model.txt", d / "model.txt")
    m = json.loads((d / "manifest.json").read_text())
    m["files"]["model.txt"] = __import__("hashlib").sha256((d / "model.txt").read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True))
    reseal_by_hand(d)
    assert_one_error(_predict_with(install, models / "good.pt"), f"{d / 'manifest.json'}",
                     "is not the file shipped with this version of weightwatch", "reinstall weightwatch")
    # the same directory outside the package is a user's predictor: its (consistent) seal is all there is
    shutil.copytree(d, tmp_path / "user" / POOLED)
    code, out, err = _predict_with(install, models / "good.pt", {"WEIGHTWATCH_PRETRAINED_DIR": str(tmp_path / "user")})
    assert code == 0, err


# ------------------------------------------------------------------ 9. a full disk during the merge


def _merge_on_a_small_fs(tmp_path, sources, size_kb, report_free=None):
    """`zoo merge` onto a real tmpfs of ``size_kb`` (mounted in a private mount namespace: nothing leaks), in a
    subprocess; ``report_free`` makes the free-space query (only it) claim that many bytes."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: cannot mount a small file system")
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = tmp_path / "merge.py"
    script.write_text("\n".join([
        "import json, os, shutil, sys",
        "from collections import namedtuple",
        f"if {report_free!r} is not None:",
        "    real = shutil.disk_usage",
        f"    shutil.disk_usage = lambda p: real(p)._replace(free={report_free!r})",
        "from weightwatch.cli import main",
        f"code = main(['zoo', 'merge', *{[str(s) for s in sources]!r}, '--out', {str(mnt / 'merged')!r}])",
        f"print('LEFT ' + json.dumps(sorted(os.listdir({str(mnt)!r}))))",
        "sys.exit(code)",
    ]))
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=4k tmpfs {mnt}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({probe.stderr.strip()})")
    res = subprocess.run(["unshare", "-m", "sh", "-c",
                          f"mount -t tmpfs -o size={size_kb}k tmpfs {mnt} && exec {sys.executable} {script}"],
                         env=ENV, capture_output=True, text=True)
    left = [json.loads(line[5:]) for line in res.stdout.splitlines() if line.startswith("LEFT ")]
    return res.returncode, res.stdout, quiet(res.stderr), left


def test_merge_onto_a_full_file_system_is_refused_before_writing(reference, tmp_path, zoo_fault):
    shards = sorted((reference / "shards").glob("shard-*"))
    before = tree(reference / "shards")
    code, out, err, left = _merge_on_a_small_fs(tmp_path, shards, size_kb=200)
    assert_one_error((code, out, err), "not enough free space for the merged zoo", "MB free", "nothing was written")
    assert left == [[]] and tree(reference / "shards") == before
    zoo_fault()


def test_a_disk_filling_up_during_the_merge_is_an_error_not_sigbus(reference, tmp_path, zoo_fault):
    """The free-space check is fooled (only the query is patched): the real writes then fill the real tmpfs."""
    shards = sorted((reference / "shards").glob("shard-*"))
    before = tree(reference / "shards")
    code, out, err, left = _merge_on_a_small_fs(tmp_path, shards, size_kb=200, report_free=10 ** 12)
    assert code == 2, (code, err)  # not -SIGBUS: the process lived to report it
    assert_one_error((code, out, err), "cannot write the merged zoo", "No space left on device",
                     "the sources are untouched")
    assert left == [[]]  # the half-written merge was removed
    assert tree(reference / "shards") == before
    zoo_fault()


def test_free_space_is_checked_before_a_build_merges(reference, tmp_path, capsys, monkeypatch, zoo_fault):
    """Without a small file system: the free-space query alone reports a full disk; the build keeps its shards."""
    out = copy_build(reference, tmp_path / "build", zoo=False)
    before = tree(out / "shards")
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    assert_one_error(run(capsys, "zoo", "build", *ZOO_ARGS, "--out", out), "not enough free space",
                     f"{out / 'zoo'}")
    assert tree(out / "shards") == before and not (out / "zoo").exists()
    monkeypatch.setattr(shutil, "disk_usage", real)
    build(capsys, out)
    same_zoo(out, reference)
    zoo_fault()


# ------------------------------------------------------------------ 10. the public API speaks one error family


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    """Files of the wrong kind: a pickled module, a state dict named .keras, empty and foreign zoos, a predictor
    directory missing a part."""
    import torch

    from helpers import paper_cnn_weights, torch_paper_cnn

    d = tmp_path_factory.mktemp("bad")
    model = torch_paper_cnn(paper_cnn_weights(np.random.default_rng(0)))
    torch.save(model, d / "pickled.pt")
    torch.save(model.state_dict(), d / "state_dict_as.keras")
    (d / "empty_zoo").mkdir()
    (d / "foreign_zoo").mkdir()
    (d / "foreign_zoo" / "weights.npy").write_text("not an array")
    (d / "foreign_zoo" / "layout.csv").write_text("a,b\n1,2\n")
    shutil.copytree(ROOT / "pretrained" / POOLED, d / "pred")
    (d / "pred" / "model_q_hi.txt").unlink()
    return d


def _public_calls(d):
    import torch.nn as nn

    import weightwatch as ww
    from weightwatch import pretrained
    from weightwatch.features import extract
    from weightwatch.modelfile import load_model_file
    from weightwatch.predictors import load_predictor

    no_weights = nn.Sequential(nn.Flatten(), nn.ReLU())
    return {
        "to_network(None)": (lambda: ww.to_network(None), "cannot read weights from a builtins.NoneType"),
        "to_network(a path)": (lambda: ww.to_network(str(d / "pickled.pt")), "cannot read weights from a builtins.str"),
        "extract(unknown set)": (lambda: extract(ww.to_network(_classifier_first_cnn(None)), "W_Q"),
                                 "no feature set named 'W_Q'"),
        "extract(None)": (lambda: extract(None), "cannot read weights"),
        "extract_matrix([])": (lambda: ww.extract_matrix([]), "needs at least one model"),
        "get_extractor(3)": (lambda: ww.get_extractor(3), "no feature set named 3"),
        "Network(3)": (lambda: ww.Network(3), "must be a sequence of LayerWeights, got int"),
        "LayerWeights(text)": (lambda: ww.LayerWeights("a", "conv", "abc"), "expected real numbers"),
        "predict_accuracy(no weights)": (lambda: ww.predict_accuracy(no_weights), "0 weighted layers"),
        "predict_accuracy(predictor=3)": (lambda: ww.predict_accuracy(_classifier_first_cnn(None), predictor=3),
                                          "a predictor must be fitted and have predict()"),
        "predict_accuracy(epoch='3')": (lambda: ww.predict_accuracy(no_weights, epoch="3"), "epoch must be"),
        "Zoo(None)": (lambda: ww.Zoo(None), "Zoo needs a directory path, got NoneType"),
        "Zoo(empty dir)": (lambda: ww.Zoo(d / "empty_zoo"), "is not a zoo: weights.npy is missing"),
        "Zoo(foreign dir)": (lambda: ww.Zoo(d / "foreign_zoo"), "weights.npy is unreadable"),
        "Zoo(a file)": (lambda: ww.Zoo(d / "pickled.pt"), "does not exist"),
        "load_predictor(None)": (lambda: load_predictor(None), "needs a directory path, got NoneType"),
        "load_predictor(missing part)": (lambda: load_predictor(d / "pred"), "model_q_hi.txt is missing"),
        "load_predictor(a file)": (lambda: load_predictor(d / "pickled.pt"), "is not a predictor directory"),
        "pretrained.load(None)": (lambda: pretrained.load(None), "is not a shipped predictor's name"),
        "pretrained.load(unknown)": (lambda: pretrained.load("nope"), "no pretrained predictor 'nope'"),
        "load_model_file(3)": (lambda: load_model_file(3), "a model file path is needed, got int"),
        "load_model_file(state dict as .keras)": (lambda: load_model_file(d / "state_dict_as.keras"),
                                                  "Keras could not load"),
        "load_model_file(pickled module)": (lambda: load_model_file(d / "pickled.pt"),
                                            "holds pickled Python objects"),
    }


def test_public_api_raises_one_error_family_with_one_line_messages(bad_inputs):
    from weightwatch.errors import WeightWatchError

    calls = _public_calls(bad_inputs)
    outcomes = {}
    for name, (call, needle) in calls.items():
        try:
            call()
        except WeightWatchError as exc:
            text = str(exc)
            outcomes[name] = "ok" if needle in text and "\n" not in text else f"message: {text}"
        except Exception as exc:  # noqa: BLE001 - what this test hunts
            outcomes[name] = f"raw {type(exc).__name__}: {exc}"
        else:
            outcomes[name] = "no error"
    assert {k: v for k, v in outcomes.items() if v != "ok"} == {}


def test_pickled_torch_file_is_refused_in_one_line_without_torchs_wording(bad_inputs, capsys):
    line = assert_one_error(run(capsys, "predict", bad_inputs / "pickled.pt"), "pickled.pt",
                            "can run any code", "only if you trust its source, pass --unsafe-load")
    for torch_words in ("Unsupported global", "WeightsUnpickler", "weights_only", "GLOBAL"):
        assert torch_words not in line


# ------------------------------------------------------------------ 7. what is read is validated before use


def _damage_consistently(zoo, damage):
    """Change a zoo's content and re-write SHA256SUMS to match: files that parse and pass their checksum but are
    wrong, so only validation of the content can catch them."""
    import pandas as pd

    from weightwatch._files import write_sums

    w = np.load(zoo / "weights.npy")
    metrics = pd.read_csv(zoo / "metrics.csv.gz")
    if damage == "1-D weights":
        np.save(zoo / "weights.npy", w.ravel())
    elif damage == "integer weights":
        np.save(zoo / "weights.npy", w.astype(np.int32))
    elif damage == "no rows":
        np.save(zoo / "weights.npy", w[:0])
        metrics.iloc[:0].to_csv(zoo / "metrics.csv.gz", index=False)
    elif damage == "a column short":
        np.save(zoo / "weights.npy", w[:, :-1])
    elif damage == "no test_accuracy":
        metrics.drop(columns="test_accuracy").to_csv(zoo / "metrics.csv.gz", index=False)
    elif damage == "accuracy 7.5":
        metrics.loc[3, "test_accuracy"] = 7.5
        metrics.to_csv(zoo / "metrics.csv.gz", index=False)
    elif damage == "accuracy text":
        metrics["test_accuracy"] = metrics["test_accuracy"].astype(object)
        metrics.loc[0, "test_accuracy"] = "high"
        metrics.to_csv(zoo / "metrics.csv.gz", index=False)
    elif damage == "layout garbage":
        text = (zoo / "layout.csv").read_text().splitlines()
        text[1] = text[1].replace(",0,", ",x,", 1)
        (zoo / "layout.csv").write_text("\n".join(text) + "\n")
    write_sums(zoo, [p.name for p in zoo.iterdir() if p.name != "SHA256SUMS"])


@pytest.mark.parametrize("damage, needles", [
    ("1-D weights", ["weights.npy holds a 1-D array", "2-D"]),
    ("integer weights", ["weights.npy holds int32 values"]),
    ("no rows", ["weights.npy holds no rows"]),
    ("a column short", ["layout.csv describes 4970 weights per row", "has 4969"]),
    ("no test_accuracy", ["metrics lack the column(s) test_accuracy"]),
    ("accuracy 7.5", ["metrics row 3: test_accuracy 7.5 is not an accuracy in [0, 1]"]),
    ("accuracy text", ["metrics row 0: test_accuracy 'high'"]),
    ("layout garbage", ["layout.csv", "is malformed"]),
])
@pytest.mark.parametrize("command", [["zoo", "info"], ["fit"]])
def test_zoo_content_is_validated_before_use(reference, tmp_path, capsys, damage, needles, command):
    out = copy_build(reference, tmp_path / "build")
    _damage_consistently(out / "zoo", damage)
    extra = ["--out", tmp_path / "p"] if command == ["fit"] else []
    assert_one_error(run(capsys, *command, out / "zoo", *extra), *needles)
    assert not (tmp_path / "p").exists()
