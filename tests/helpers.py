"""Shared builders for tests: the paper CNN in Keras and torch with the same weights; example plugins installed."""

import contextlib
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def installed_plugin(distribution: str):
    """``plugins/<distribution>`` pip-installed for real, into a directory of its own, for the block.

    ``pip install --target`` puts the package and its dist-info (with the entry points) in a fresh directory that
    only this process puts on ``sys.path``: the shared environment is never changed, so parallel test workers
    neither race on pip nor see each other's plugins. The plugin registry is rediscovered on the way in and out.
    """
    from weightwatch import plugins

    with tempfile.TemporaryDirectory(prefix="ww-plugin-") as target:
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
               target, str(ROOT / "plugins" / distribution)]
        subprocess.run(pip, check=True, capture_output=True)
        before = set(sys.modules)
        sys.path.insert(0, target)
        try:
            importlib.invalidate_caches()
            plugins.reset()
            yield plugins.get_registry()
        finally:
            sys.path.remove(target)
            for name in set(sys.modules) - before:
                if (getattr(sys.modules[name], "__file__", None) or "").startswith(target):
                    del sys.modules[name]
            importlib.invalidate_caches()
            plugins.reset()


def paper_cnn_weights(rng, scale=0.3):
    """Keras-layout weights [k0, b0, k1, b1, k2, b2, k3, b3] of the 4970-parameter CNN."""
    shapes = [((3, 3, 1, 16), 16), ((3, 3, 16, 16), 16), ((3, 3, 16, 16), 16), ((16, 10), 10)]
    out = []
    for k, b in shapes:
        out.append((rng.standard_normal(k) * scale).astype(np.float32))
        out.append((rng.standard_normal(b) * scale).astype(np.float32))
    return out


def keras_paper_cnn(weights=None, activation="relu"):
    import keras

    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(16, 3, strides=2, activation=activation),
        keras.layers.Dropout(0.1),
        keras.layers.Conv2D(16, 3, strides=2, activation=activation),
        keras.layers.Dropout(0.1),
        keras.layers.Conv2D(16, 3, strides=2, activation=activation),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    if weights is not None:
        model.set_weights(weights)
    return model


def torch_paper_cnn(weights=None):
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )
    if weights is not None:
        convs = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
        with torch.no_grad():
            for i, m in enumerate(convs):
                k, b = weights[2 * i], weights[2 * i + 1]
                w = np.transpose(k, (3, 2, 0, 1)) if k.ndim == 4 else k.T
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                m.bias.copy_(torch.from_numpy(b))
    return model


def naive_w_l(tensor_pairs):
    """Straightforward numpy W_L: per layer 7 stats of kernel then of bias."""
    out = []
    for kernel, bias in tensor_pairs:
        for t in (kernel, bias):
            t = np.asarray(t, dtype=np.float64).ravel()
            out += [t.mean(), t.var(), *np.percentile(t, [0, 25, 50, 75, 100])]
    return np.array(out)
