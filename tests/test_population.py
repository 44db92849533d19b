"""Tests of the zoo sampler, architectures and the population trainer."""

from __future__ import annotations

import os
import numpy as np
import pytest

from weightwatch.zoo.architectures import (
    ARCHITECTURES,
    WEIGHT_INITIALIZERS,
    build_keras_model,
    initial_weights,
    num_params,
    param_shapes,
    weight_shapes,
)
from weightwatch.zoo.hparams import CONFIG_KEYS, DEFAULT_RANGES, sample_configs
from weightwatch.zoo.population import member_batch_orders, member_subset, plan_populations, train_population
from weightwatch.errors import InvalidArgumentError

SHAPE = (16, 16, 1)


# ----------------------------------------------------------------- sampler
def test_sampler_keys_and_determinism():
    a = sample_configs(20, seed=3, dataset="d")
    b = sample_configs(20, seed=3, dataset="d")
    assert a == b
    assert all(set(c) == set(CONFIG_KEYS) for c in a)
    assert len({c["random_seed"] for c in a}) == 20
    assert sample_configs(5, seed=4, dataset="d") != a[:5]


def test_sampler_config_depends_only_on_seed_and_index():
    full = sample_configs(30, seed=7, dataset="d", epochs=5)
    shard = sample_configs(10, seed=7, dataset="d", epochs=5, start_index=20)
    assert shard == full[20:]
    # overriding one range does not change the other hyperparameters' draws
    other = sample_configs(30, seed=7, dataset="d", epochs=5, ranges={"dropout": {"dist": "uniform", "low": 0.0, "high": 0.0}})
    assert [c["learning_rate"] for c in other] == [c["learning_rate"] for c in full]
    assert all(c["dropout"] == 0.0 for c in other)


@pytest.mark.parametrize(
    "ranges, msg",
    [
        ({"lr": {"dist": "uniform", "low": 0, "high": 1}}, "unknown"),
        ({"dropout": {"dist": "uniform", "low": 0.5, "high": 0.1}}, "low > high"),
        ({"learning_rate": {"dist": "log_uniform", "low": 0.0, "high": 1}}, "positive"),
        ({"w_init": {"dist": "choice", "values": ()}}, "non-empty"),
    ],
)
def test_sampler_rejects_bad_ranges(ranges, msg):
    with pytest.raises(ValueError, match=msg):
        sample_configs(1, seed=0, dataset="d", ranges=ranges)


def test_sampler_marginals():
    from scipy import stats

    n = 4000
    cfgs = sample_configs(n, seed=123, dataset="d")
    for key in ("learning_rate", "l2reg", "init_std"):
        r = DEFAULT_RANGES[key]
        u = (np.log([c[key] for c in cfgs]) - np.log(r["low"])) / (np.log(r["high"]) - np.log(r["low"]))
        assert stats.kstest(u, "uniform").pvalue > 1e-3, key
    d = np.array([c["dropout"] for c in cfgs]) / 0.7
    assert d.min() >= 0 and d.max() <= 1
    assert stats.kstest(d, "uniform").pvalue > 1e-3
    for key in ("w_init", "activation", "train_fraction"):
        values = DEFAULT_RANGES[key]["values"]
        counts = [sum(c[key] == v for c in cfgs) for v in values]
        assert sum(counts) == n
        assert stats.chisquare(counts).pvalue > 1e-3, key
    assert {c["b_init"] for c in cfgs} == {"zeros"} and {c["optimizer"] for c in cfgs} == {"adam"}


# ----------------------------------------------------------------- architectures
def test_paper_cnn_param_count():
    assert num_params("paper-cnn", SHAPE) == 4970 == 160 + 2320 + 2320 + 170
    names = [n for n, _, _ in param_shapes("paper-cnn", SHAPE)]
    assert names == ["conv2d", "conv2d_1", "conv2d_2", "dense"]


def _sized(name):
    """A built-in family with its output sized: a family sized by its data gets 10 classes here."""
    spec = ARCHITECTURES[name]
    return spec if spec.num_classes else spec.for_classes(10)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_keras_model_matches_spec(arch):
    arch = _sized(arch)
    cfg = sample_configs(1, seed=5, dataset="d")[0]
    model = build_keras_model(arch, cfg, SHAPE)
    assert [tuple(w.shape) for w in model.get_weights()] == [s for *_, s in weight_shapes(arch, SHAPE)]
    assert [w.path.split("/")[-1] for w in model.weights] == [t for _, t, _ in weight_shapes(arch, SHAPE)]
    kernels_biases = [w for w in model.weights if w.path.split("/")[-1] in ("kernel", "bias")]
    assert [tuple(w.shape) for w in kernels_biases] == [s for _, k, b in param_shapes(arch, SHAPE) for s in (k, b)]
    assert sum(int(np.prod(w.shape)) for w in kernels_biases) == num_params(arch, SHAPE)
    assert model(np.zeros((2, *SHAPE), np.float32)).shape == (2, arch.num_classes)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architectures_accept_mnist_size(arch):
    """28x28 (mnist5k, the paper's MNIST): every family builds, the paper CNN keeps its 4970 parameters."""
    arch = _sized(arch)
    cfg = sample_configs(1, seed=5, dataset="d")[0]
    model = build_keras_model(arch, cfg, (28, 28, 1))
    assert model.count_params() == num_params(arch, (28, 28, 1)) + sum(
        int(np.prod(s)) for _, t, s in weight_shapes(arch, (28, 28, 1)) if t not in ("kernel", "bias"))
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, arch.num_classes)
    if arch.name == "paper-cnn":
        assert num_params(arch, (28, 28, 1)) == 4970


@pytest.mark.parametrize("w_init", WEIGHT_INITIALIZERS)
def test_initial_weights_equal_keras_model(w_init):
    cfg = dict(sample_configs(1, seed=9, dataset="d")[0], w_init=w_init)
    ref = build_keras_model("paper-cnn", cfg, SHAPE).get_weights()
    got = initial_weights("paper-cnn", cfg, SHAPE)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def test_torch_default_initialisation_is_torchs():
    """``torch_default`` (kernel and bias) draws from the bounds torch's own layers use, seeded like the rest."""
    torch = pytest.importorskip("torch")
    cfg = dict(sample_configs(1, seed=9, dataset="d")[0], w_init="torch_default", b_init="torch_default")
    got = initial_weights("paper-cnn", cfg, SHAPE)
    np.testing.assert_array_equal(got[1], build_keras_model("paper-cnn", cfg, SHAPE).get_weights()[1])
    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(1, 16, 3), torch.nn.Conv2d(16, 16, 3), torch.nn.Conv2d(16, 16, 3), torch.nn.Linear(16, 10)]
    for i, layer in enumerate(layers):
        bound = 1 / np.sqrt(layer.weight[0].numel())  # torch: U(+-1/sqrt(fan_in)) for kernels and biases alike
        for ours, theirs in ((got[2 * i], layer.weight), (got[2 * i + 1], layer.bias)):
            theirs = theirs.detach().numpy()
            assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
            assert np.abs(ours).max() > 0.8 * bound and np.any(ours != 0)
            if ours.size > 100:  # the variance of U(-b, b) is b^2 / 3
                assert np.var(ours) == pytest.approx(bound ** 2 / 3, rel=0.25)
                assert np.var(theirs) == pytest.approx(bound ** 2 / 3, rel=0.25)
    with pytest.raises(InvalidArgumentError, match="unknown b_init 'ones'"):
        initial_weights("paper-cnn", dict(cfg, b_init="ones"), SHAPE)


# ----------------------------------------------------------------- population trainer
@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    # 250 examples: full and half subsets end with a short batch (26 / 29 examples)
    x = rng.uniform(-1, 1, (250, *SHAPE)).astype(np.float32)
    y = rng.integers(0, 10, 250).astype(np.int32)
    xt = rng.uniform(-1, 1, (120, *SHAPE)).astype(np.float32)
    yt = rng.integers(0, 10, 120).astype(np.int32)
    return x, y, xt, yt


def _population_configs():
    cfgs = sample_configs(4, seed=11, dataset="rand", epochs=2)
    cfgs[0].update(activation="relu", dropout=0.0, l2reg=1e-3, train_fraction=0.5, learning_rate=3e-3,
                   w_init="he_normal")
    cfgs[1].update(activation="tanh", dropout=0.0, l2reg=1e-4, train_fraction=1.0, learning_rate=1e-2,
                   w_init="glorot_normal", b_init="torch_default")  # non-zero biases from the start
    cfgs[2].update(activation="relu", dropout=0.3, train_fraction=0.25)
    cfgs[3].update(activation="tanh", dropout=0.5, train_fraction=0.1)
    return cfgs


@pytest.fixture(scope="module")
def population_run(data):
    cfgs = _population_configs()
    # group_keys=() keeps all four members (mixed relu/tanh, dropout) in one population
    res = train_population(cfgs, *data, checkpoints=(0, 1, 2), group_keys=())
    return cfgs, res


@pytest.mark.parametrize("member", [0, 1])
def test_population_member_matches_keras_fit(data, population_run, member):
    import keras

    x, y, xt, yt = data
    cfgs, res = population_run
    cfg = cfgs[member]
    assert [r.status for r in res] == ["ok"] * 4
    model = build_keras_model("paper-cnn", cfg, SHAPE)
    np.testing.assert_array_equal(model.get_weights()[0], res[member].checkpoints[0].weights[0])
    model.compile(
        optimizer=keras.optimizers.Adam(cfg["learning_rate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    orders = member_batch_orders(cfg, len(x), 2)
    assert len(orders[0]) == round(cfg["train_fraction"] * len(x))
    for order in orders:
        model.fit(x[order], y[order], batch_size=32, epochs=1, shuffle=False, verbose=0)
    final = res[member].checkpoints[2]
    for got, want in zip(final.weights, model.get_weights()):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=3e-5)
    # reported metrics: cross-entropy only (no l2 term), inference mode
    _, test_acc = model.evaluate(xt, yt, batch_size=len(xt), verbose=0)
    assert final.test_accuracy == pytest.approx(test_acc, abs=1e-6)
    logits = model.predict(xt, batch_size=len(xt), verbose=0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(yt, logits)
    assert final.test_loss == pytest.approx(float(ce), rel=1e-4)
    # train metrics: on the member's own subset (the examples its epochs visited), not the whole x
    subset = np.unique(np.concatenate(orders))
    train_logits = model.predict(x[subset], batch_size=len(x), verbose=0)
    assert final.train_accuracy == pytest.approx(np.mean(train_logits.argmax(1) == y[subset]), abs=1e-6)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y[subset], train_logits)
    assert final.train_loss == pytest.approx(float(ce), rel=1e-4)


def test_population_structure(population_run):
    cfgs, res = population_run
    for cfg, r in zip(cfgs, res):
        assert r.config == cfg and sorted(r.checkpoints) == [0, 1, 2]
        for ck in r.checkpoints.values():
            assert [w.shape for w in ck.weights] == [s for _, k, b in param_shapes("paper-cnn", SHAPE) for s in (k, b)]
            assert 0 <= ck.train_accuracy <= 1 and np.isfinite(ck.test_loss)
        assert not np.array_equal(r.checkpoints[0].weights[0], r.checkpoints[2].weights[0])


def test_nonfinite_member_is_isolated(data):
    cfgs = _population_configs()[:3]
    bad = dict(cfgs[0], random_seed=999, learning_rate=1e30, w_init="random_normal", init_std=1e18, dropout=0.0)
    kwargs = dict(checkpoints=(0, 1, 2), group_keys=())
    ref = train_population(cfgs, *data, **kwargs)
    res = train_population(cfgs[:1] + [bad] + cfgs[1:], *data, **kwargs)
    assert res[1].status == "nan" and res[1].nan_epoch == 1
    assert np.isnan(res[1].checkpoints[2].test_accuracy)
    assert all(np.all(np.isfinite(w)) for w in res[1].checkpoints[2].weights)
    for r, rr in zip(res[:1] + res[2:], ref):
        assert r.status == "ok"
        # dropout masks depend on population composition -> compare dropout-free members exactly
        if r.config["dropout"] == 0:
            for a, b in zip(r.final.weights, rr.final.weights):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            assert r.final.test_loss == pytest.approx(rr.final.test_loss, rel=1e-5)


@pytest.mark.parametrize("gather_below", [0.0, 1.01], ids=["shared-input", "gathered-subsets"])
def test_train_metrics_are_measured_on_the_members_own_subset(data, monkeypatch, gather_below):
    """Labels outside a member's subset are all wrong for it: metrics on the whole set would show it."""
    import keras

    from weightwatch.zoo import population

    monkeypatch.setattr(population, "_GATHER_BELOW", gather_below)  # force either evaluation path
    x, y, xt, yt = data
    cfgs = [dict(c, dropout=0.0) for c in _population_configs()[:2]]
    cfgs[0]["train_fraction"] = 0.25
    w0 = [initial_weights("paper-cnn", c, SHAPE) for c in cfgs]
    model = build_keras_model("paper-cnn", cfgs[0], SHAPE)
    model.set_weights(w0[0])
    pred = model.predict(x, batch_size=len(x), verbose=0).argmax(1)
    subset = np.sort(member_subset(cfgs[0], len(x)))
    assert len(subset) == round(0.25 * len(x))
    outside = np.setdiff1d(np.arange(len(x)), subset)
    # inside the subset the labels are the initial network's predictions; outside, never
    y2 = y.copy()
    y2[subset] = pred[subset]
    y2[outside] = (pred[outside] + 1) % 10
    res = train_population(cfgs, x, y2, xt, yt, checkpoints=(0, 1), initial_weights=w0, group_keys=())
    cp = res[0].checkpoints[0]
    assert cp.train_accuracy == 1.0  # the whole training set would give 0.25
    logits = model.predict(x[subset], batch_size=len(x), verbose=0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y2[subset], logits)
    assert cp.train_loss == pytest.approx(float(ce), rel=1e-5)
    # a member given explicit batch orders is measured on the examples they visit
    orders = [[np.arange(10, 50)], [np.arange(250)]]
    res = train_population(cfgs, x, y2, xt, yt, checkpoints=(0, 1), initial_weights=w0, batch_orders=orders,
                           group_keys=())
    model.set_weights(w0[0])
    want = np.mean(model.predict(x[10:50], verbose=0).argmax(1) == y2[10:50])
    assert res[0].checkpoints[0].train_accuracy == pytest.approx(want, abs=1e-6)
    model = build_keras_model("paper-cnn", cfgs[1], SHAPE)
    model.set_weights(w0[1])
    want = np.mean(model.predict(x, verbose=0).argmax(1) == y2)
    assert res[1].checkpoints[0].train_accuracy == pytest.approx(want, abs=1e-6)


def test_batch_orders_and_initial_weights_are_used(data):
    x, y, xt, yt = data
    cfg = dict(_population_configs()[1], dropout=0.0)
    w0 = [w * 0.5 for w in initial_weights("paper-cnn", cfg, SHAPE)]
    orders = [[np.arange(40), np.arange(40)[::-1]]]
    r = train_population([cfg], x, y, xt, yt, checkpoints=(0, 2), initial_weights=[w0], batch_orders=orders)[0]
    np.testing.assert_array_equal(r.checkpoints[0].weights[2], w0[2])
    r2 = train_population([cfg], x[:40], y[:40], xt, yt, checkpoints=(0, 2), initial_weights=[w0],
                          batch_orders=orders)[0]
    for a, b in zip(r.final.weights, r2.final.weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_plan_populations_groups_by_activation():
    cfgs = sample_configs(150, seed=2, dataset="d")
    plan = plan_populations(cfgs, 64)
    assert sorted(i for p in plan for i in p) == list(range(150))
    assert all(len(p) <= 64 for p in plan)
    assert all(len({cfgs[i]["activation"] for i in p}) == 1 for p in plan)


@pytest.mark.parametrize("arch", ["mlp", "cnn-deep", "cnn-maxpool"])
def test_other_architectures_match_keras(data, arch):
    import keras

    x, y, xt, yt = data
    cfgs = sample_configs(3, seed=21, dataset="rand", architecture=arch)
    cfgs[0].update(activation="relu", dropout=0.0, l2reg=1e-3, learning_rate=3e-3, train_fraction=0.5)
    cfgs[1].update(activation="tanh", dropout=0.2)
    cfgs[2].update(activation="relu", dropout=0.4)
    res = train_population(cfgs, x, y, xt, yt, architecture=arch, checkpoints=(1,), group_keys=())
    cfg = cfgs[0]
    model = build_keras_model(arch, cfg, SHAPE)
    model.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    order = member_batch_orders(cfg, len(x), 1)[0]
    model.fit(x[order], y[order], batch_size=32, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(res[0].final.weights, model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=3e-5)
    assert all(r.status == "ok" for r in res)


def test_every_optimizer_in_one_population_matches_keras(data):
    """A mixed population (Adam, SGD, SGD with momentum, RMSprop): each member is the Keras run its config names."""
    import keras

    from weightwatch.zoo.architectures import OPTIMIZERS, keras_optimizer

    x, y, xt, yt = data
    cfgs = sample_configs(len(OPTIMIZERS), seed=31, dataset="rand", epochs=2)
    for c, name, lr in zip(cfgs, OPTIMIZERS, (3e-3, 0.05, 0.02, 2e-3)):
        c.update(optimizer=name, learning_rate=lr, activation="relu", dropout=0.0, l2reg=1e-4, train_fraction=0.5,
                 w_init="he_normal")
    res = train_population(cfgs, x, y, xt, yt, checkpoints=(0, 2), group_keys=())
    moved = []
    for cfg, r in zip(cfgs, res):
        model = build_keras_model("paper-cnn", cfg, SHAPE)
        model.compile(optimizer=keras_optimizer(cfg), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for order in member_batch_orders(cfg, len(x), 2):
            model.fit(x[order], y[order], batch_size=32, epochs=1, shuffle=False, verbose=0)
        assert r.status == "ok"
        for got, want in zip(r.final.weights, model.get_weights()):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=3e-5, err_msg=cfg["optimizer"])
        moved.append(float(np.abs(r.final.weights[-2] - r.checkpoints[0].weights[-2]).max()))
    assert min(moved) > 1e-3  # every optimizer really trained its member
    with pytest.raises(InvalidArgumentError, match="optimizer 'adagrad' .*supported: adam, sgd"):
        train_population([dict(cfgs[0], optimizer="adagrad")], x, y, xt, yt, checkpoints=(1,))


def test_dropout_semantics():
    import tensorflow as tf

    from weightwatch.zoo.population import _dropout

    rate = tf.constant([0.0, 0.3, 0.7], tf.float32)
    h = tf.ones([4001, 3])  # odd size exercises the 16-bit split
    out = _dropout(tf, h, rate, tf.constant([1, 2])).numpy()
    assert np.all(out[:, 0] == 1.0)
    for j, r in ((1, 0.3), (2, 0.7)):
        kept = out[:, j] != 0
        np.testing.assert_allclose(out[kept, j], 1.0 / (1.0 - r), rtol=1e-6)
        assert abs(kept.mean() - (1 - r)) < 4 * np.sqrt(r * (1 - r) / len(out))
    again = _dropout(tf, h, rate, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, _dropout(tf, h, rate, tf.constant([1, 3])).numpy())


@pytest.mark.parametrize("name", ["wine", "breast_cancer"])
def test_tabular_mlp_sized_by_its_data_matches_keras(name):
    """Vector inputs and a 3- or 2-class output: the population trainer equals Keras model.fit."""
    import keras

    from weightwatch.zoo.architectures import get_architecture
    from weightwatch.zoo.datasets import load_dataset

    d = load_dataset(name)
    spec = get_architecture("mlp-tabular").for_classes(d.num_classes)
    cfgs = sample_configs(2, seed=4, dataset=name, architecture="mlp-tabular")
    cfgs[0].update(activation="relu", dropout=0.0, l2reg=1e-3, learning_rate=3e-3, train_fraction=0.5)
    cfgs[1].update(activation="tanh", dropout=0.2)
    res = train_population(cfgs, d.x_train, d.y_train, d.x_test, d.y_test, architecture=spec, checkpoints=(2,),
                           group_keys=())
    cfg = cfgs[0]
    model = build_keras_model(spec, cfg, d.input_shape)
    assert model.output_shape == (None, d.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for order in member_batch_orders(cfg, d.n_train, 2):
        model.fit(d.x_train[order], d.y_train[order], batch_size=32, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(res[0].final.weights, model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=3e-5)
    acc = float((model.predict(d.x_test, verbose=0).argmax(1) == d.y_test).mean())
    assert res[0].final.test_accuracy == pytest.approx(acc, abs=1.5 / d.n_test)
    # sized from the labels when the spec is left to the data
    again = train_population(cfgs[:1], d.x_train, d.y_train, d.x_test, d.y_test, architecture="mlp-tabular",
                             checkpoints=(2,), group_keys=())
    assert again[0].final.weights[-1].shape == (d.num_classes,)


def test_vector_inputs_need_an_mlp_and_a_sized_family():
    from weightwatch.errors import InvalidArgumentError
    from weightwatch.zoo.architectures import get_architecture

    with pytest.raises(InvalidArgumentError, match=r"paper-cnn takes \(H, W, C\) images"):
        param_shapes("paper-cnn", (13,))
    with pytest.raises(InvalidArgumentError, match="takes its number of classes from the dataset"):
        param_shapes("mlp-tabular", (13,))
    assert param_shapes(get_architecture("mlp-tabular").for_classes(3), (13,))[0][1] == (13, 16)
    with pytest.raises(InvalidArgumentError, match="the dataset has 3 classes but architecture 'mlp' outputs 10"):
        get_architecture("mlp").for_classes(3)
    with pytest.raises(InvalidArgumentError, match=r"expected images of shape \(n, H, W\[, C\]\), got \(5, 13\)"):
        train_population(sample_configs(1, seed=0, dataset="d"), np.zeros((5, 13)), np.zeros(5), np.zeros((5, 13)),
                         np.zeros(5), architecture="paper-cnn", checkpoints=(1,))


def test_binary_sigmoid_output_matches_keras():
    """One sigmoid logit for two classes (Keras BinaryCrossentropy(from_logits=True)), on breast_cancer."""
    import keras

    from weightwatch.zoo.datasets import load_dataset

    d = load_dataset("breast_cancer")
    cfgs = sample_configs(2, seed=8, dataset="breast_cancer", architecture="mlp-binary")
    cfgs[0].update(activation="relu", dropout=0.0, l2reg=1e-3, learning_rate=3e-3, train_fraction=0.5)
    res = train_population(cfgs, d.x_train, d.y_train, d.x_test, d.y_test, architecture="mlp-binary",
                           checkpoints=(2,), group_keys=())
    cfg = cfgs[0]
    model = build_keras_model("mlp-binary", cfg, d.input_shape)
    assert model.output_shape == (None, 1)
    model.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"]),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    for order in member_batch_orders(cfg, d.n_train, 2):
        model.fit(d.x_train[order], d.y_train[order].astype("float32"), batch_size=32, epochs=1, shuffle=False,
                  verbose=0)
    for got, want in zip(res[0].final.weights, model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=3e-5)
    logits = model.predict(d.x_test, verbose=0)[:, 0]
    assert res[0].final.test_accuracy == pytest.approx(float(((logits > 0) == d.y_test).mean()), abs=1.5 / d.n_test)
    loss = float(keras.losses.BinaryCrossentropy(from_logits=True)(d.y_test.astype("float32")[:, None], logits[:, None]))
    assert res[0].final.test_loss == pytest.approx(loss, rel=1e-3)


def test_batchnorm_maxpool_cnn_matches_keras(data):
    """conv -> BatchNormalization -> activation -> max-pool (cnn-bn): batch statistics in training (a short last
    batch normalised by its own examples), moving averages at test, gamma/beta trained by any optimizer."""
    import keras

    from weightwatch.zoo.architectures import keras_optimizer, weight_shapes

    x, y, xt, yt = data
    cfgs = sample_configs(3, seed=41, dataset="rand", architecture="cnn-bn", epochs=2)
    cfgs[0].update(activation="relu", dropout=0.0, l2reg=1e-3, learning_rate=3e-3, train_fraction=0.5,
                   optimizer="adam", w_init="he_normal")
    cfgs[1].update(activation="tanh", dropout=0.0, l2reg=1e-4, learning_rate=0.05, train_fraction=1.0,
                   optimizer="sgd_momentum")
    cfgs[2].update(activation="relu", dropout=0.3)
    res = train_population(cfgs, x, y, xt, yt, architecture="cnn-bn", checkpoints=(0, 2), group_keys=())
    tensors = [t for _, t, _ in weight_shapes("cnn-bn", SHAPE)]
    assert tensors[:6] == ["kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"]
    for cfg, r in zip(cfgs[:2], res):
        model = build_keras_model("cnn-bn", cfg, SHAPE)
        for got, want in zip(r.checkpoints[0].weights, model.get_weights()):
            np.testing.assert_array_equal(got, want)
        model.compile(optimizer=keras_optimizer(cfg), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        for order in member_batch_orders(cfg, len(x), 2):
            model.fit(x[order], y[order], batch_size=32, epochs=1, shuffle=False, verbose=0)
        for i, (got, want) in enumerate(zip(r.final.weights, model.get_weights())):
            # a conv bias just before BatchNormalization has a zero gradient up to rounding, which Adam's
            # normalisation turns into steps of about the learning rate: it (and the moving mean that follows
            # it) agrees only to that size; everything the network computes with agrees tightly
            loose = cfg["optimizer"] == "adam" and tensors[i] in ("bias", "moving_mean") and i < 12
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=2 * cfg["learning_rate"] if loose else 3e-5,
                                       err_msg=f"{cfg['optimizer']} tensor {i} ({tensors[i]})")
        moved = r.final.weights[4] - r.checkpoints[0].weights[4]
        assert np.abs(moved).max() > 1e-5  # the moving mean really moved
        _, acc = model.evaluate(xt, yt, batch_size=len(xt), verbose=0)
        assert r.final.test_accuracy == pytest.approx(acc, abs=1e-6)  # inference: the moving averages
        logits = model.predict(xt, batch_size=len(xt), verbose=0)
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(yt, logits)
        # float32 rounding over two epochs: on keras 3.15 / tensorflow 2.21 the relative difference of this loss
        # (3.17, random labels) is 1.1e-4, before and after the population's epoch logs were added
        assert r.final.test_loss == pytest.approx(float(ce), rel=3e-4)
    assert all(r.status == "ok" for r in res)


def test_batchnorm_needs_conv_layers():
    from weightwatch.zoo.architectures import ArchitectureSpec

    with pytest.raises(InvalidArgumentError, match="batchnorm normalises conv layers"):
        ArchitectureSpec("bad", (), dense_hidden=(8,), batchnorm=True)


#: The README's published bound: the largest absolute difference between a population member's weights and Keras
#: `model.fit`'s after 2 epochs, over the dropout-free members of the 4-member population above (float32 rounding).
KERAS_MAX_ABS_DIFF = "1e-5"  # measured 6.8e-6 (2026-12-02)


def test_population_equals_keras_up_to_float32_rounding(data, population_run):
    """What "equal to Keras" means, measured: initial weights bit for bit, trained weights up to float32 rounding
    (the number the README publishes is this test's bound)."""
    import keras

    x, y, _, _ = data
    cfgs, res = population_run
    worst, size = 0.0, 0
    for member in (0, 1):  # the dropout-free members (dropout masks come from another random stream)
        cfg = cfgs[member]
        model = build_keras_model("paper-cnn", cfg, SHAPE)
        for a, b in zip(model.get_weights(), res[member].checkpoints[0].weights):
            np.testing.assert_array_equal(a, b)
        model.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"]),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for order in member_batch_orders(cfg, len(x), 2):
            model.fit(x[order], y[order], batch_size=32, epochs=1, shuffle=False, verbose=0)
        for got, want in zip(res[member].checkpoints[2].weights, model.get_weights()):
            worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want))))
            size += got.size
    print(f"max abs difference {worst:.1e} over {size} weights")
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert f"tested to stay below {KERAS_MAX_ABS_DIFF}" in readme
    assert worst <= float(KERAS_MAX_ABS_DIFF)


def test_population_without_onednn_says_how_to_turn_it_on():
    """The grouped convolutions run only on oneDNN's kernels: TensorFlow imported with them off gets a clear
    error naming the variable, not a kernel error from inside a tf.function."""
    import subprocess
    import sys

    code = ("import tensorflow\n"
            "from weightwatch.zoo.population import _tensorflow\n"
            "from weightwatch.errors import ZooBuildError\n"
            "try:\n    _tensorflow()\nexcept ZooBuildError as e:\n    print('REFUSED', e)\n")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "REFUSED" in out.stdout and "TF_ENABLE_ONEDNN_OPTS=1" in out.stdout, out.stdout + out.stderr
