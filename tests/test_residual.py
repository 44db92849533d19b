"""The residual family (Table 4's Wide-ResNets): registered through the hook, built and trained end to end by the
zoo machinery with Keras' fit, tabulated, and ranked by Table 4's W_L^4 GBM."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from weightwatch.errors import InvalidArgumentError
from weightwatch.zoo.keras_training import noisy_labels, shifted
from weightwatch.zoo.residual import RESIDUAL_FAMILIES, WideResNet, sample_configs

ROOT = Path(__file__).resolve().parents[1]


def test_families_are_registered_through_the_architectures_hook():
    from weightwatch.plugins import get_registry
    from weightwatch.zoo.architectures import get_architecture

    table = get_registry().entries("architectures")
    for name in ("wrn10-x1", "wrn10-x2", "wrn10-x4"):
        assert name in table and table[name].plugin == "weightwatch.builtin.architectures"
        assert get_architecture(name) is RESIDUAL_FAMILIES[name]
    assert [RESIDUAL_FAMILIES[f"wrn10-x{k}"].widths for k in (1, 2, 4)] == [(4, 8, 16), (8, 16, 32), (16, 32, 64)]


def test_configs_vary_like_demogen_and_depend_only_on_seed_and_index():
    a = sample_configs(200, seed=5, dataset="mnist5k", architecture="wrn10-x1", epochs=3)
    b = sample_configs(50, seed=5, dataset="mnist5k", architecture="wrn10-x1", epochs=3, start_index=150)
    assert a[150:] == b
    for key in ("batch_size", "augment", "dropout", "label_noise", "l2reg"):
        assert len({c[key] for c in a}) > 1, key
    lrs = np.array([c["learning_rate"] for c in a])
    assert 0.02 <= lrs.min() and lrs.max() <= 0.3 and lrs.max() / lrs.min() > 5


def test_weight_shapes_follow_keras_get_weights_order():
    fam = WideResNet("t", widen=1, base=(2, 4, 4))
    model = fam.build_keras_model({"random_seed": 3, "dropout": 0.3, "l2reg": 1e-4}, (8, 8, 1))
    shapes = [s for _, _, s in fam.weight_shapes((8, 8, 1))]
    assert shapes == [tuple(w.shape) for w in model.get_weights()]
    assert model.layers[-1].name == "dense" and model.output_shape == (None, 10)
    with pytest.raises(InvalidArgumentError, match="takes \\(H, W, C\\) images"):
        fam.build_keras_model({"random_seed": 3}, (64,))


def test_label_noise_and_shift_augmentation():
    y = np.arange(10).repeat(100)
    noisy = noisy_labels(y, 0.2, 10, seed=1)
    changed = np.mean(noisy != y)
    assert 0.12 < changed < 0.24  # a fifth redrawn, a tenth of those to the same class
    assert np.array_equal(noisy, noisy_labels(y, 0.2, 10, seed=1)) and np.array_equal(noisy_labels(y, 0.0, 10, 1), y)
    x = np.zeros((50, 8, 8, 1), np.float32)
    x[:, 3:5, 3:5] = 1.0
    s = shifted(x, np.random.default_rng(0))
    assert s.shape == x.shape and np.all(s.sum(axis=(1, 2, 3)) == 4)  # the blob moved, never cut (shift <= 2)
    assert np.mean([not np.array_equal(s[i], x[i]) for i in range(50)]) > 0.7


def test_two_tiny_members_build_train_and_are_read_end_to_end(tmp_path):
    """`weightwatch zoo build` of a residual family: Keras' fit, checkpoints, the extra config keys, a Zoo that
    reads back as networks whose last layer is the dense classifier, and the shipped predictors' opinions."""
    from weightwatch.cli import main
    from weightwatch.pretrained import predict_accuracy
    from weightwatch.zoo.storage import Zoo

    out = tmp_path / "wrn"
    assert main(["zoo", "build", "--dataset", "digits", "--architecture", "wrn10-x1", "--resolution", "8",
                 "--runs", "2", "--epochs", "2", "--checkpoints", "0", "2", "--shard-size", "2", "--quiet",
                 "--out", str(out)]) == 0
    zoo = Zoo(out / "zoo")
    assert len(zoo) == 4 and zoo.n_runs == 2
    m = zoo.metrics
    assert {"config.batch_size", "config.augment", "config.label_noise"} <= set(m.columns)
    last = zoo.filter(last=True)
    assert list(last.metrics["epoch"]) == [2, 2]
    first = zoo.filter(epoch=0)
    assert np.all(last.metrics["train_accuracy"].to_numpy() > first.metrics["train_accuracy"].to_numpy())
    net = last.network(0)
    assert net.layers[-1].kind == "dense"
    X, names = last.features("W_L")
    assert names[-14].endswith("kernel.mean") and np.isfinite(X[:, -14:]).all()
    pred = predict_accuracy(net)
    assert 0.0 <= pred.accuracy <= 1.0 and isinstance(pred.in_domain, bool)


@dataclass(frozen=True)
class _TinyResNet(WideResNet):
    """A third party's residual family: a subclass registered by its own plugin."""


def test_a_plugin_registers_its_own_keras_trained_family(tmp_path, fresh_registry):
    from weightwatch.hookspecs import hookimpl
    from weightwatch.zoo.build import BuildSpec, build_zoo

    class Plugin:
        @hookimpl
        def register_architectures(self, register):
            register(_TinyResNet("my-resnet", widen=1, base=(2, 2, 4)))

    name = fresh_registry.register_plugin(Plugin(), name="my-resnet-plugin")
    try:
        build_zoo(tmp_path / "z", BuildSpec(dataset="digits", architecture="my-resnet", runs=1, epochs=1,
                                           checkpoints=(0, 1), shard_size=1, resolution=8), progress=False)
        assert (tmp_path / "z" / "zoo" / "zoo.json").exists()
        with pytest.raises(InvalidArgumentError, match="samples its own hyperparameters"):
            build_zoo(tmp_path / "z2", BuildSpec(dataset="digits", architecture="my-resnet", runs=1, epochs=1,
                                                checkpoints=(0, 1), resolution=8,
                                                ranges={"learning_rate": {"dist": "choice", "values": [0.1]}}),
                      progress=False)
    finally:
        fresh_registry.unregister_plugin(name)


def test_table4_ranks_a_population_and_renders_from_its_numbers(tmp_path):
    """The table of a tiny built population, Table 4 computed on it with the committed mnist5k zoo table, and the
    Markdown made from those numbers (significance words follow the p-values)."""
    from weightwatch.experiments import residual_population as rp
    from weightwatch.experiments.table4 import run_table4
    from weightwatch.experiments.table4_doc import render_table4, significant
    from weightwatch.zoo.build import build_zoo

    cells = [rp.Cell(1, 9901, runs=3), rp.Cell(2, 9902, runs=3)]
    for cell in cells:
        spec = cell.spec()
        from dataclasses import replace

        build_zoo(tmp_path / cell.name, replace(spec, dataset="digits", epochs=1, checkpoints=(0, 1), resolution=8),
                  progress=False)
    import weightwatch.experiments.residual_population as mod

    old = mod.CELLS
    mod.CELLS = tuple(cells)
    try:
        summary = rp.write_table(tmp_path, tmp_path / "pop.npz")
    finally:
        mod.CELLS = old
    assert summary["networks"] == 6 and summary["per_width"] == {"1": 3, "2": 3, "4": 0}
    t4 = run_table4(tmp_path / "pop.npz", ROOT / "zoo_tables" / "mnist5k.npz")
    assert t4["widths"] == [1, 2] and t4["predictor"]["networks"] > 1000
    cell = t4["rows"]["W_L^4 GBM"]["per_width"]["1"]["vs_test"]
    assert cell["n"] == 3 and -1.0 <= cell["tau"] <= 1.0 and cell["low"] <= cell["tau"] <= cell["high"]
    text = "\n".join(render_table4(json.loads(json.dumps(t4))))
    assert "## Table 4" in text and "0.30" in text  # the paper's x1 number beside ours
    words = "significantly above 0 (one-sided p < 0.05, interval above 0) for "
    expected = [f"x{w}" for w in ("1", "2") if significant(t4["rows"]["W_L^4 GBM"]["per_width"][w]["vs_test"])]
    assert words + (", ".join(expected) if expected else "no width") in text


def test_the_published_table4_is_rendered_from_its_stored_numbers():
    """docs/paper-comparison.md's Table 4 section is render_table4 of the stored JSON, and its significance and
    direction words follow those numbers."""
    from weightwatch.experiments.table4 import PAPER_TABLE4
    from weightwatch.experiments.table4_doc import render_table4, significant

    t4 = json.loads((ROOT / "docs" / "paper-comparison.json").read_text())["table4"]
    lines = render_table4(t4)
    md = (ROOT / "docs" / "paper-comparison.md").read_text()
    assert "\n".join(lines) in md
    gbm = t4["rows"]["W_L^4 GBM"]["per_width"]
    sig = [f"x{w}" for w in map(str, t4["widths"]) if significant(gbm[w]["vs_test"])]
    assert ("for " + (", ".join(sig) if sig else "no width")) in md
    ref = [t4["reference"][str(w)]["tau"] for w in t4["widths"]]
    falling = all(b < a for a, b in zip(ref, ref[1:]))
    assert ("Train-vs-test τ decreases" if falling else "Train-vs-test τ does not decrease") in md
    paper_falling = all(b < a for a, b in zip(PAPER_TABLE4["train_vs_test"], PAPER_TABLE4["train_vs_test"][1:]))
    words = "the same way as the paper's" if falling == paper_falling else "the other way from the paper's"
    assert next(line for line in lines if line.startswith("Train-vs-test")).count(words) == 1
    assert t4["population"]["networks"] == 144 and set(t4["population"]["per_width"].values()) == {48}
    # "like DEMOGEN" only when most of the widest networks reach 0.99 train accuracy
    from weightwatch.experiments.table4_doc import MOSTLY_OVERFIT

    share = t4["accuracy"][str(t4["widths"][-1])]["train_at_least_0.99"]
    assert ("Like DEMOGEN" if share >= MOSTLY_OVERFIT else "Unlike DEMOGEN") in md
    assert ("Unlike DEMOGEN" if share >= MOSTLY_OVERFIT else "Like DEMOGEN") not in md
