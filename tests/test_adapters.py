import numpy as np
import pytest

from helpers import keras_paper_cnn, naive_w_l, paper_cnn_weights, torch_paper_cnn
from weightwatch.adapters import UnsupportedModelError, to_network
from weightwatch.adapters.flat import FlatWeights, read_layout, write_layout
from weightwatch.features import extract, extract_matrix, get_extractor
from weightwatch.network import LayerWeights, Network, WeightsError


def zoo_flat(weights):
    """Flatten in the Small CNN Zoo release convention: per layer bias BEFORE kernel."""
    names = ["conv2d", "conv2d_1", "conv2d_2", "dense"]
    parts, layout, start = [], [], 0
    for i, name in enumerate(names):
        for tensor, arr in (("bias", weights[2 * i + 1]), ("kernel", weights[2 * i])):
            layout.append((f"sequential/{name}/{tensor}:0", start, start + arr.size, str(arr.shape)))
            parts.append(arr.ravel())
            start += arr.size
    return np.concatenate(parts), layout


def test_same_weights_three_adapters_identical_w_l(rng):
    weights = paper_cnn_weights(rng)
    nets = {
        "keras": to_network(keras_paper_cnn(weights)),
        "torch": to_network(torch_paper_cnn(weights)),
        "flat": to_network(FlatWeights(*zoo_flat(weights), activation="relu")),
    }
    expected = naive_w_l(zip(weights[0::2], weights[1::2]))
    for source, net in nets.items():
        assert net.n_params == 4970, source
        assert [l.kind for l in net] == ["conv", "conv", "conv", "dense"], source
        for layer, k, b in zip(net, weights[0::2], weights[1::2]):
            np.testing.assert_array_equal(layer.kernel, k, err_msg=source)
            np.testing.assert_array_equal(layer.bias, b, err_msg=source)
        w_l = get_extractor("W_L")(net)
        assert w_l.shape == (56,)
        np.testing.assert_allclose(w_l, expected, rtol=1e-6, atol=1e-7, err_msg=source)
    np.testing.assert_array_equal(get_extractor("W_L")(nets["keras"]), get_extractor("W_L")(nets["flat"]))
    np.testing.assert_array_equal(get_extractor("W_L")(nets["keras"]), get_extractor("W_L")(nets["torch"]))
    assert nets["keras"][0].activation == "relu" and nets["torch"][0].activation == "relu"


def test_flat_layout_file_round_trip(tmp_path, rng):
    weights = paper_cnn_weights(rng)
    vec, layout = zoo_flat(weights)
    path = tmp_path / "layout.csv"
    write_layout(path, [(row[0], eval(row[3])) for row in layout])
    rows = read_layout(path)
    assert [r.start_idx for r in rows] == [r[1] for r in layout]
    net = to_network(FlatWeights(vec, str(path)))
    np.testing.assert_array_equal(net[0].kernel, weights[0])
    np.testing.assert_array_equal(net[3].bias, weights[7])


def test_flat_layout_errors(rng):
    vec, layout = zoo_flat(paper_cnn_weights(rng))
    with pytest.raises(WeightsError, match="needs 4970"):
        to_network(FlatWeights(vec[:100], layout))
    bad = list(layout)
    bad[0] = (bad[0][0], 0, 15, "(16,)")
    with pytest.raises(WeightsError, match="spans 15 values"):
        to_network(FlatWeights(vec, bad))


def test_permuting_filters_consistently_leaves_w_l_unchanged(rng):
    weights = paper_cnn_weights(rng)
    perm = rng.permutation(16)
    permuted = list(weights)
    permuted[2] = weights[2][..., perm]  # layer 2 output filters
    permuted[3] = weights[3][perm]
    permuted[4] = weights[4][:, :, perm, :]  # layer 3 input channels
    a = get_extractor("W_L")(to_network(keras_paper_cnn(weights)))
    b = get_extractor("W_L")(to_network(keras_paper_cnn(permuted)))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    # and the flat vector does change, so the test is not vacuous
    assert not np.array_equal(extract(keras_paper_cnn(weights), "W"), extract(keras_paper_cnn(permuted), "W"))


def test_keras_functional_subclassed_batchnorm_and_conv_kinds():
    import keras

    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False)(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = keras.layers.SeparableConv2D(4, 3, activation="tanh")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(5)(x)
    net = to_network(keras.Model(inp, out))
    assert [l.kind for l in net] == ["conv", "depthwise_conv", "depthwise_conv", "conv", "dense"]
    # the ReLU acts on BatchNormalization's output, not on the conv's: the conv's activation is unknown
    assert net[0].bias is None and net[0].activation is None
    assert net.meta["skipped"] == [("bn", "BatchNormalization")]
    assert [n for n, _ in net.meta["normalisation"]] == ["bn"]
    assert np.isnan(get_extractor("W_L-agnostic-bn")(to_network(keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2)])))[-40:]).all()  # no BatchNorm: NaN, never a made-up number
    assert net[1].kernel.shape == (3, 3, 8, 2) and net[1].bias.shape == (16,)
    assert net[3].activation == "tanh"
    w_l = get_extractor("W_L")(net)
    assert np.isnan(w_l[7:14]).all()  # no bias -> NaN bias statistics, documented
    assert np.isfinite(w_l[:7]).all()

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.c1 = keras.layers.Conv1D(4, 3, activation="relu")
            self.c3 = keras.layers.Dense(3)

        def call(self, x):
            return self.c3(keras.ops.mean(self.c1(x), axis=1))

    model = Sub()
    model(np.zeros((1, 10, 2), np.float32))
    sub = to_network(model)
    assert [(l.kind, l.kernel.shape) for l in sub] == [("conv", (3, 2, 4)), ("dense", (4, 3))]

    conv3d = keras.Sequential([keras.Input((5, 5, 5, 1)), keras.layers.Conv3D(2, 2), keras.layers.Flatten(), keras.layers.Dense(1)])
    assert to_network(conv3d)[0].kernel.shape == (2, 2, 2, 1, 2)


def test_interval_rules_do_not_reason_through_batchnorm():
    """A conv whose biases make every unit negative is not dead when BatchNormalization re-centres its output:
    with a declared input range the dead-unit proof must not see the ReLU after the BatchNorm as the conv's."""
    import keras

    from weightwatch.rules.bounds import interval_bounds

    negative = keras.initializers.Constant(-50.0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, bias_initializer=negative),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    net = to_network(model)
    bounds = interval_bounds(net, (-1.0, 1.0))
    assert len(bounds) == 1 and bounds[0].out_lo is None and not bounds[0].dead.any()  # nothing proven past it
    plain = to_network(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(
        4, 3, activation="relu", bias_initializer=negative), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3)]))
    assert interval_bounds(plain, (-1.0, 1.0))[0].dead.all()  # without BatchNorm: provably dead


def test_torch_modules_and_state_dict():
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.Tanh(), nn.Conv2d(4, 8, 3, groups=4), nn.Conv3d(8, 2, 1, bias=False),
        nn.BatchNorm3d(2), nn.Flatten(), nn.Linear(6, 3),
    )
    from weightwatch.adapters.torch import LayerOrderWarning

    with pytest.warns(LayerOrderWarning, match="not verified"):  # no input runs through Conv1d then Conv2d
        net = to_network(model)
    assert [l.kind for l in net] == ["conv", "depthwise_conv", "conv", "dense"]
    assert net[0].kernel.shape == (3, 2, 4) and net[0].activation == "tanh"
    assert net[1].kernel.shape == (3, 3, 4, 2)
    np.testing.assert_array_equal(net[3].kernel, model[6].weight.detach().numpy().T)
    bn_model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    with torch.no_grad():
        bn_model[1].running_var.fill_(4.0)
    bn = to_network(bn_model)
    assert [l.activation for l in bn] == [None, "relu"]  # the first ReLU follows the BatchNorm
    (name, tensors), = bn.meta["normalisation"]  # kept under Keras' names, for the W_L-agnostic-bn features
    assert name == "1" and sorted(tensors) == sorted(["gamma", "beta", "moving_mean", "moving_variance"])
    np.testing.assert_array_equal(tensors["moving_variance"], np.full(4, 4.0, np.float32))
    feats = get_extractor("W_L-agnostic-bn")(bn)
    assert feats[-40 + 15] == pytest.approx(np.log10(4.0))  # first BN layer, log10 moving variance, mean
    from_state = to_network(model.state_dict())
    # state dicts lose the depthwise/groups information; weights and order survive
    assert [l.name for l in from_state] == ["0", "2", "3", "6"]
    np.testing.assert_array_equal(from_state[0].kernel, net[0].kernel)


def test_unsupported_object_names_the_adapters():
    with pytest.raises(UnsupportedModelError, match="registered adapters: .*keras"):
        to_network(object())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="conv", kernel=np.zeros((0, 2))), "empty"),
        (dict(kind="dense", kernel=np.zeros(3)), "at least 2 dimensions"),
        (dict(kind="dense", kernel=np.zeros((2, 3)), bias=np.zeros(4)), "bias has 4 entries"),
        (dict(kind="pool", kernel=np.zeros((2, 3))), "kind must be"),
        (dict(kind="dense", kernel=np.array([["a", "b"]])), "real numbers"),
    ],
)
def test_layer_weights_validation(kwargs, match):
    with pytest.raises(WeightsError, match=match):
        LayerWeights("x", **kwargs)


def test_feature_sets_shapes_and_names(rng):
    net = to_network(keras_paper_cnn(paper_cnn_weights(rng)))
    expect = {"W": 4970, "W^1": 160, "W^4": 170, "W_L": 56, "W-global": 7, "W_L-l1": 8, "W_L-l2": 8,
              "W_L^4": 14, "W_L^{1,4}": 28, "W_L^{2,3}": 28, "W_L-agnostic": 58}
    for name, size in expect.items():
        ex = get_extractor(name)
        assert ex(net).shape == (size,), name
        assert len(ex.feature_names(net)) == size, name
    assert get_extractor("W_L").feature_names(net)[:2] == ["l0.kernel.mean", "l0.kernel.var"]
    np.testing.assert_allclose(get_extractor("W_L-l2")(net)[0], np.linalg.norm(net[0].kernel.ravel()), rtol=1e-6)
    with pytest.raises(WeightsError, match="needs layer 7"):
        get_extractor("W^7")(net)
    with pytest.raises(KeyError, match="no feature set named 'nope'"):
        get_extractor("nope")


def test_agnostic_features_fixed_length_across_depths(rng):
    shallow = Network((LayerWeights("a", "dense", rng.standard_normal((4, 3)), np.zeros(3)),))
    deep = Network(tuple(LayerWeights(f"l{i}", "dense", rng.standard_normal((3, 3)), np.zeros(3)) for i in range(6)))
    X, names = extract_matrix([shallow, deep], "W_L-agnostic")
    assert X.shape == (2, 58) and names[-1] == "log10_params"
    assert np.isnan(X[0, 28:56]).all() and np.isfinite(X[1]).all()
    with pytest.raises(ValueError, match="architecture-agnostic"):
        extract_matrix([shallow, deep], "W_L")


def test_dropout_rates_are_recorded_for_the_doom_model_setup():
    """Keras and torch adapters keep every dropout layer's rate; a flat vector says nothing (unknown, not 0)."""
    import keras
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch

    from weightwatch import forecast

    km = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Dropout(0.3),
                           keras.layers.SpatialDropout2D(0.5), keras.layers.GlobalAveragePooling2D(),
                           keras.layers.Dense(3)])
    net = to_network(km)
    assert net.meta["dropout"] == [0.3, 0.5] and forecast.dropout_of(net) == 0.5 and len(net) == 2
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Dropout2d(0.2), torch.nn.ReLU(), torch.nn.Flatten(),
                             torch.nn.Dropout(0.1), torch.nn.Linear(4 * 6 * 6, 3))
    assert forecast.dropout_of(to_network(tm)) == pytest.approx(0.2)
    plain = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    assert forecast.dropout_of(to_network(plain)) == 0.0  # looked, found none
    assert forecast.dropout_of(to_network(tm.state_dict())) is None  # a state dict has no layers to look at
