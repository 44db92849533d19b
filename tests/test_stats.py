import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from weightwatch.stats import STAT_NAMES, many_tensor_stats, tensor_stats


def reference(x):
    x = np.asarray(x, dtype=np.float64).ravel()
    return np.array([x.mean(), x.var(), *np.percentile(x, [0, 25, 50, 75, 100])])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 99, 4096, 4097, 10_001, 250_003])
def test_matches_numpy_on_sizes_around_every_branch(n, rng):
    x = rng.standard_normal(n).astype(np.float32)
    got = tensor_stats(x)
    np.testing.assert_allclose(got[2:], reference(x)[2:], rtol=0, atol=1e-6)  # order statistics exact
    np.testing.assert_allclose(got[:2], reference(x)[:2], rtol=1e-5, atol=1e-7)


def test_ties_and_constant_tensor(rng):
    x = rng.integers(0, 3, size=50_000).astype(np.float32)
    np.testing.assert_allclose(tensor_stats(x), reference(x), rtol=1e-6, atol=1e-7)
    const = np.full((7, 9), 2.5, np.float32)
    assert tensor_stats(const).tolist() == [2.5, 0.0, 2.5, 2.5, 2.5, 2.5, 2.5]


def test_nan_gives_nan_everywhere_like_numpy():
    x = np.array([1.0, np.nan, 3.0], np.float32)
    assert np.isnan(tensor_stats(x)).all()
    big = np.ones(10_000, np.float32)
    big[17] = np.nan
    assert np.isnan(tensor_stats(big)).all()


def test_infinite_values_follow_numpy():
    x = np.array([1.0, np.inf, 3.0, -2.0], np.float32)
    got = tensor_stats(x)
    with np.errstate(invalid="ignore"):
        ref = reference(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(got[np.isfinite(ref)], ref[np.isfinite(ref)])


def test_empty_tensor_is_a_clear_error():
    with pytest.raises(ValueError, match="empty tensor"):
        tensor_stats(np.zeros((0, 3)))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=9),
    elements=st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False, width=64).map(lambda v: float(np.float32(v))),
))
def test_hypothesis_odd_shapes_and_huge_values(x):
    got = tensor_stats(x)
    ref = reference(x)
    np.testing.assert_allclose(got[2:], ref[2:], rtol=1e-12, atol=0)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-5, atol=1e-30)


def test_many_tensors_threaded_equals_serial(rng):
    tensors = [rng.standard_normal(s).astype(np.float32) for s in [600_000, 3, 300_000, 1, 450_000]]
    serial = many_tensor_stats(tensors, n_jobs=1)
    threaded = many_tensor_stats(tensors, n_jobs=2)
    np.testing.assert_array_equal(serial, threaded)
    assert serial.shape == (5, len(STAT_NAMES))
    for row, t in zip(serial, tensors):
        np.testing.assert_allclose(row, reference(t), rtol=1e-5, atol=1e-6)


def test_bad_n_jobs():
    with pytest.raises(ValueError, match="n_jobs"):
        many_tensor_stats([np.ones(3)], n_jobs=0)


def test_row_kernel_matches_the_tensor_kernel_and_the_zoo_path():
    """One W_L kernel: per-row statistics equal per-tensor ones, on small (sorted) and large (selected) tensors."""
    from weightwatch.stats import row_stats, tensor_stats

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 144, 2304, 4096):  # every tensor of a zoo network: exactly equal
        block = rng.normal(size=(5, n)).astype(np.float32)
        np.testing.assert_array_equal(row_stats(block), np.vstack([tensor_stats(r) for r in block]))
    for dtype in (np.float32, np.float64):  # selection path: the same float64 sums, the same order statistics
        block = (rng.normal(size=(3, 50_000)) * 0.05 + 0.01).astype(dtype)
        np.testing.assert_array_equal(row_stats(block), np.vstack([tensor_stats(r) for r in block]))


def test_one_w_l_for_one_network_and_for_many():
    """features.wl_rows is the one W_L: a network's layer_stats and a zoo's rows (vectorised) agree bit for bit,
    on tensors of both kernel paths (a 64x80 kernel takes the selection path)."""
    from weightwatch.features import layer_stats, wl_rows
    from weightwatch.network import LayerWeights, Network

    rng = np.random.default_rng(4)
    rows = 3
    shapes = [((3, 3, 1, 8), 8), ((64, 80), 80), ((80, 10), None)]
    tensors = [(rng.normal(size=(rows, *k)).astype(np.float32),
                None if b is None else rng.normal(size=(rows, b)).astype(np.float32)) for k, b in shapes]
    many = wl_rows([{"kernel": k.reshape(rows, -1), "bias": None if b is None else b} for k, b in tensors], rows)
    for r in range(rows):
        net = Network(tuple(LayerWeights(f"l{i}", "conv" if k.ndim == 5 else "dense", k[r],
                                         None if b is None else b[r]) for i, (k, b) in enumerate(tensors)))
        np.testing.assert_array_equal(layer_stats(net).reshape(-1), many[r])
    assert np.isnan(many[:, -7:]).all() and not np.isnan(many[:, :-7]).any()  # the last layer has no bias


def test_row_kernel_rejects_a_non_matrix():
    from weightwatch.errors import InvalidArgumentError
    from weightwatch.stats import row_stats

    with pytest.raises(InvalidArgumentError, match="2-D"):
        row_stats(np.ones(4))


def test_agnostic_features_come_from_w_l_alone():
    """W_L-agnostic of a network equals the derivation from its W_L row (the feature tables' path)."""
    from weightwatch.features import agnostic_from_wl, get_extractor
    from weightwatch.network import LayerWeights, Network

    rng = np.random.default_rng(4)
    for depth in (1, 2, 5):
        net = Network(tuple(LayerWeights(f"d{i}", "dense", rng.normal(size=(6, 6)), rng.normal(size=6), "relu")
                            for i in range(depth)))
        direct = get_extractor("W_L-agnostic")(net)
        derived = agnostic_from_wl(get_extractor("W_L")(net)[None, :], net.n_params)[0]
        np.testing.assert_array_equal(np.isnan(direct), np.isnan(derived))
        np.testing.assert_allclose(direct[~np.isnan(direct)], derived[~np.isnan(derived)])
        assert derived[-2] == depth
