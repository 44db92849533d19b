"""plugins/weightwatch-weightwatcher: pip-installed for real, found through the entry point, used."""

import importlib.util
import math

import numpy as np
import pytest

from helpers import installed_plugin
from weightwatch.features import get_extractor
from weightwatch.network import LayerWeights, Network

# Like pytest.importorskip("weightwatcher"), but without importing it at collection time:
# importing weightwatcher calls logging.basicConfig(level=INFO) on the root logger, which
# would leak into every other test of the session (the plugin undoes it on its own import).
if importlib.util.find_spec("weightwatcher") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("weightwatcher (and torch) not installed", allow_module_level=True)


def _layer(rng, name, kind, shape, scale, bias=True):
    kernel = rng.normal(0.0, scale, shape).astype(np.float32)
    b = rng.normal(0.0, 0.05, shape[-1]).astype(np.float32) if bias else None
    return LayerWeights(name, kind, kernel, b)


def paper_cnn(seed=0):
    rng = np.random.default_rng(seed)
    return Network((
        _layer(rng, "conv1", "conv", (3, 3, 1, 16), 0.3),
        _layer(rng, "conv2", "conv", (3, 3, 16, 16), 0.1),
        _layer(rng, "conv3", "conv", (3, 3, 16, 16), 0.1),
        _layer(rng, "dense", "dense", (16, 10), 0.3),
    ))


def big_dense(seed=1):
    rng = np.random.default_rng(seed)
    sizes = [(256, 128), (128, 64), (64, 32)]
    return Network(tuple(_layer(rng, f"d{i}", "dense", s, 1 / np.sqrt(s[0])) for i, s in enumerate(sizes)))


@pytest.fixture(scope="module")
def installed():
    with installed_plugin("weightwatch-weightwatcher"):
        yield


def test_installed_discovered_and_computed(installed, fresh_registry, capfd):
    import logging

    fresh_registry.reset()
    entry = fresh_registry.get_registry().entries("extractors")["weightwatcher"]
    assert entry.plugin == "weightwatcher"  # the entry-point name
    ext = get_extractor("weightwatcher")
    import weightwatch_weightwatcher as wwp

    root_handlers = list(logging.getLogger().handlers)
    root_level = logging.getLogger().level
    cnn = paper_cnn()
    assert sum(layer.n_params for layer in cnn) == 4970
    v = ext(cnn)
    assert logging.getLogger().handlers == root_handlers  # weightwatcher's basicConfig undone
    assert logging.getLogger().level == root_level
    names = ext.feature_names(cnn)
    assert names == list(wwp.FEATURE_NAMES) and len(v) == len(names) == len(set(names))
    assert "ww.alpha.mean" in names and "ww.summary.alpha_weighted" in names
    got = dict(zip(names, v))
    assert got == pytest.approx(wwp.weightwatcher_metrics(cnn), nan_ok=True)
    # every layer of the small CNN is analysed (min_evals=1), all norm metrics are finite
    assert got["ww.n_layers"] == 4 and got["ww.n_analysed"] == 4
    for metric in ("log_norm", "log_spectral_norm", "stable_rank", "entropy"):
        assert math.isfinite(got[f"ww.{metric}.mean"]), metric
    for metric in ("log_norm", "log_spectral_norm", "stable_rank"):
        assert math.isfinite(got[f"ww.summary.{metric}"]), metric
    assert got["ww.n_alpha_fit"] >= 2  # the 144-eigenvalue conv ESDs always fit
    assert math.isfinite(got["ww.alpha.mean"]) and got["ww.alpha.mean"] > 1

    big = big_dense()
    vb = ext(big)
    assert ext.feature_names(big) == names and len(vb) == len(v)
    gb = dict(zip(names, vb))
    assert gb["ww.n_analysed"] == 3 and gb["ww.n_alpha_fit"] == 3
    assert np.isfinite(vb).all()
    assert gb["ww.alpha.mean"] > 1
    # WeightWatcher's own summary equals our means when every fit succeeded
    for metric in wwp.SUMMARY_METRICS:
        assert gb[f"ww.summary.{metric}"] == pytest.approx(gb[f"ww.{metric}.mean"])
    out = capfd.readouterr()
    assert "SMALL N PL FIT" not in out.out + out.err and "WARNING" not in out.err


def test_weights_reach_weightwatcher_in_torch_layout(installed):
    import weightwatch_weightwatcher as wwp

    rng = np.random.default_rng(3)
    # dense: ESD = squared singular values of the (in, out) kernel
    k = rng.normal(size=(40, 20)).astype(np.float32)
    m = wwp.weightwatcher_metrics(Network((LayerWeights("d", "dense", k, None),)))
    s = np.linalg.svd(k.astype(np.float64), compute_uv=False)
    assert m["ww.log_spectral_norm.mean"] == pytest.approx(np.log10(s[0] ** 2), rel=1e-4)
    assert m["ww.log_norm.mean"] == pytest.approx(np.log10((s**2).sum()), rel=1e-4)
    # conv: pooled ESD of the kh*kw (out x in) slices; conv2d_norm=True (pooled mode) scales
    # W by sqrt(1/2) in 0.7.7, i.e. the eigenvalues by 1/2
    k = rng.normal(size=(3, 3, 8, 12)).astype(np.float32)
    net = Network((LayerWeights("c", "conv", k, np.zeros(12)),))
    torch_weight = wwp.to_torch(net)[0].weight.detach().numpy()
    assert torch_weight.shape == (12, 8, 3, 3)
    np.testing.assert_array_equal(torch_weight, np.transpose(k, (3, 2, 0, 1)))
    m = wwp.weightwatcher_metrics(net)
    top = max(np.linalg.svd(k[y, x].astype(np.float64), compute_uv=False)[0] for y in range(3) for x in range(3))
    assert m["ww.log_spectral_norm.mean"] == pytest.approx(np.log10(top**2 / 2), rel=1e-4)
    assert m["ww.log_norm.mean"] == pytest.approx(np.log10((k.astype(np.float64) ** 2).sum() / 2), rel=1e-4)


def test_never_raises_nan_when_not_computable(installed):
    import weightwatch_weightwatcher as wwp

    rng = np.random.default_rng(4)
    n = len(wwp.FEATURE_NAMES)
    # one output unit: a single eigenvalue, the power-law fit fails -> alpha NaN, norms finite
    tiny = Network((LayerWeights("d", "dense", rng.normal(size=(6, 1)), np.zeros(1)),))
    m = wwp.weightwatcher_metrics(tiny)
    assert len(m) == n and m["ww.n_analysed"] == 1 and m["ww.n_alpha_fit"] == 0
    assert math.isnan(m["ww.alpha.mean"]) and math.isfinite(m["ww.log_norm.mean"])
    # depthwise / conv1d / conv3d layers: converted, analysed where WeightWatcher can
    odd = Network((
        LayerWeights("dw", "depthwise_conv", rng.normal(size=(3, 3, 4, 2)), np.zeros(8)),
        LayerWeights("c1", "conv", rng.normal(size=(5, 4, 8)), None),
        LayerWeights("c3", "conv", rng.normal(size=(2, 2, 2, 8, 8)), None),
    ))
    assert len(wwp.weightwatcher_features(odd)) == n
    empty = wwp.weightwatcher_features(Network(()))
    assert len(empty) == n and np.isnan(np.delete(empty, wwp.FEATURE_NAMES.index("ww.n_layers"))[:8]).all()
