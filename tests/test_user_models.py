"""The user-model suite: models people actually train, watched by the default callback.

Real Keras and torch training on embedded data (sklearn's digits, breast
cancer, iris), no mocks. What a user must be able to rely on:

* no healthy run is stopped (healthy: final test accuracy >= chance + 0.3);
* every doomed run is stopped by epoch 3;
* a healthy run's ``ww_pred_accuracy`` is within 0.15 of its test
  accuracy, or the run is flagged out of domain (``ww_in_domain`` = 0).

Each model's expected fate is asserted too, so a "healthy" model that fails
to learn (or a "doomed" one that learns) fails the suite instead of
silently weakening it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from weightwatch import runs

keras = pytest.importorskip("keras")

EPOCHS = 10
DOOM_BY = 3


# ------------------------------------------------------------------ data


@pytest.fixture(scope="module")
def digits_images():
    from weightwatch.zoo.datasets import load_digits

    d = load_digits(16)
    return d.x_train, d.y_train, d.x_test, d.y_test


def _tabular(name, scale):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    bunch = {"breast_cancer": datasets.load_breast_cancer, "iris": datasets.load_iris,
             "wine": datasets.load_wine, "digits64": datasets.load_digits}[name]()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    if scale == "standard":
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    elif scale == "unit":
        lo, hi = xtr.min(0), xtr.max(0) + 1e-6
        xtr, xte = (xtr - lo) / (hi - lo), (xte - lo) / (hi - lo)
    return xtr, ytr, xte, yte


# ------------------------------------------------------------------ models


def paper_cnn(activation="relu", bias_init="zeros", kernel_init="he_normal"):
    layers = [keras.Input((16, 16, 1))]
    for _ in range(3):
        layers.append(keras.layers.Conv2D(16, 3, strides=2, activation=activation, kernel_initializer=kernel_init,
                                          bias_initializer=bias_init))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, bias_initializer=bias_init)]
    return keras.Sequential(layers)


def bn_cnn():
    return keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(16, 3, padding="same"), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same"), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.MaxPooling2D(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10),
    ])


def mlp(n_in, n_out, hidden=(32, 32), activation="relu"):
    layers = [keras.Input((n_in,))] + [keras.layers.Dense(h, activation=activation) for h in hidden]
    layers.append(keras.layers.Dense(n_out))
    return keras.Sequential(layers)


def _loss(n_out):
    if n_out == 1:
        return keras.losses.BinaryCrossentropy(from_logits=True), [keras.metrics.BinaryAccuracy(threshold=0.0)]
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]


def fit_keras(model, data, optimizer, epochs=EPOCHS, batch_size=32, **callback_args):
    from weightwatch.keras import WeightWatchCallback

    xtr, ytr, xte, yte = data
    keras.utils.set_random_seed(0)
    n_out = model.layers[-1].units
    loss, metrics = _loss(n_out)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    cb = WeightWatchCallback(stop_on_doom=True, verbose=0, **callback_args)
    hist = model.fit(xtr, ytr, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[cb])
    logits = model.predict(xte, verbose=0)
    with np.errstate(invalid="ignore"):
        pred = (logits[:, 0] > 0).astype(int) if n_out == 1 else logits.argmax(1)
    acc = float((pred == yte).mean()) if np.isfinite(logits).all() else 0.0
    return cb, hist.history, acc, max(2, n_out)


# ------------------------------------------------------------------ the suite

HEALTHY = {
    # name: (builder of (model, data, optimizer, callback args))
    "paper-cnn relu adam": lambda d: (paper_cnn(), d, keras.optimizers.Adam(2e-3), {"input_range": (-1, 1)}),
    "paper-cnn tanh adam": lambda d: (paper_cnn("tanh", kernel_init="glorot_uniform"), d,
                                      keras.optimizers.Adam(3e-3), {}),
    "paper-cnn slow start (25% of the data, adam 1e-3)": lambda d: (paper_cnn(), tuple(a[:len(a) // 4] if i < 2 else a
                                                                                     for i, a in enumerate(d)),
                                                                    keras.optimizers.Adam(1e-3), {}),
    "paper-cnn small learning rate (adam 2e-4)": lambda d: (paper_cnn(), d, keras.optimizers.Adam(2e-4), {}),
    "paper-cnn sgd momentum": lambda d: (paper_cnn(), d, keras.optimizers.SGD(0.05, momentum=0.9), {}),
    "paper-cnn raw 0-255 pixels": lambda d: (paper_cnn(kernel_init="glorot_uniform"),
                                             ((d[0] + 1) * 127.5, d[1], (d[2] + 1) * 127.5, d[3]),
                                             keras.optimizers.Adam(3e-4), {"input_range": (0, 255)}),
    "batchnorm + max-pool cnn": lambda d: (bn_cnn(), d, keras.optimizers.Adam(1e-3), {}),
    "mlp digits 64-vectors [0,1]": lambda d: (mlp(64, 10), _tabular("digits64", "unit"),
                                              keras.optimizers.RMSprop(1e-3), {}),
    "mlp breast cancer binary sigmoid": lambda d: (mlp(30, 1), _tabular("breast_cancer", "standard"),
                                                   keras.optimizers.Adam(1e-3), {}),
    "mlp iris 3 classes tanh": lambda d: (mlp(4, 3, (16,), "tanh"), _tabular("iris", "standard"),
                                         keras.optimizers.Adam(1e-2), {}),
    "mlp wine 3 classes sgd": lambda d: (mlp(13, 3), _tabular("wine", "standard"), keras.optimizers.SGD(0.1), {}),
}

DOOMED = {
    "paper-cnn adam lr 0.4": lambda d: (paper_cnn(), d, keras.optimizers.Adam(0.4), {}),
    "paper-cnn adam lr 1.0": lambda d: (paper_cnn(), d, keras.optimizers.Adam(1.0), {"input_range": (-1, 1)}),
    "paper-cnn diverging sgd lr 1e4": lambda d: (paper_cnn(), d, keras.optimizers.SGD(1e4), {"input_range": (-1, 1)}),
    "paper-cnn dead bias init (-5)": lambda d: (paper_cnn(bias_init=keras.initializers.Constant(-5.0)), d,
                                                keras.optimizers.Adam(1e-3), {"input_range": (-1, 1)}),
    "paper-cnn NaN in the data": lambda d: (paper_cnn(), (np.where(np.arange(d[0].size).reshape(d[0].shape) == 0,
                                                                   np.nan, d[0]).astype(np.float32),) + d[1:],
                                            keras.optimizers.Adam(1e-3), {}),
    "mlp iris dead bias init": lambda d: (
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(32, activation="relu",
                                                                  bias_initializer=keras.initializers.Constant(-50.0)),
                          keras.layers.Dense(3)]),
        _tabular("iris", "unit"), keras.optimizers.Adam(1e-3), {"input_range": (0, 1)}),
}


@pytest.fixture(scope="module")
def results(digits_images):
    out = {}
    for kind, table in (("healthy", HEALTHY), ("doomed", DOOMED)):
        for name, build in table.items():
            keras.utils.set_random_seed(0)  # the initial weights, whatever ran before
            model, data, opt, args = build(digits_images)
            cb, hist, acc, classes = fit_keras(model, data, opt, **args)
            out[name] = {"kind": kind, "cb": cb, "hist": hist, "acc": acc, "classes": classes}
    return out


@pytest.mark.parametrize("name", list(HEALTHY))
def test_healthy_user_model_is_not_stopped(results, name):
    r = results[name]
    # not doomed (the BatchNorm CNN ends in-between, 0.44, on keras 3.15 / tensorflow 2.21; 0.51 before): a run
    # that learns must not be stopped
    assert not runs.doomed(r["acc"], r["classes"]), f"{name} did not learn (test accuracy {r['acc']:.3f})"
    assert r["cb"].stopped_epoch is None, f"{name} was stopped: {r['cb'].stopping_message}"
    assert len(r["hist"]["loss"]) == EPOCHS


#: In-domain healthy runs whose prediction misses the 0.15 bar, with the miss measured when the suite was
#: written (seed 0): a known gap, kept visible. The test fails if the miss grows, or if the run meets the bar
#: (then remove it from here).
KNOWN_MISSES: dict = {
    # none since the plain-training zoos (digits_plain, digits_torchinit). The closest call: "paper-cnn small
    # learning rate (adam 2e-4)", predicted 0.736 against a real 0.880 (0.65 before those zoos). At 2e-4 the weights
    # stay near their initialisation, where W_L is ambiguous: the zoo rows nearest to it end anywhere from 0.38 to 0.94.
}


@pytest.mark.parametrize("name", list(HEALTHY))
def test_healthy_prediction_is_close_or_flagged(results, name):
    r = results[name]
    pred = r["hist"]["ww_pred_accuracy"][-1]
    in_domain = r["hist"]["ww_in_domain"][-1]
    if in_domain == 1.0 and name in KNOWN_MISSES:
        assert 0.15 < abs(pred - r["acc"]) <= KNOWN_MISSES[name] + 0.02, f"{name}: {pred:.3f} vs {r['acc']:.3f}"
    elif in_domain == 1.0:
        assert abs(pred - r["acc"]) <= 0.15, f"{name}: predicted {pred:.3f}, real {r['acc']:.3f}, in domain"
    else:
        assert in_domain == 0.0 or math.isnan(pred), f"{name}: ww_in_domain {in_domain}"
        assert r["cb"].verdict.domain_reason or r["cb"].verdict.predicted_accuracy is None


#: Doomed runs the default callback cannot stop, and why (each must still be flagged out of domain and warned).
OUT_OF_REACH: dict = {
    # none since the verdict models: "paper-cnn adam lr 1.0" (twice the paper zoos' largest learning rate, out of
    # the accuracy predictor's domain) is stopped by the doom model, whose calibration runs reach learning rate 5
}


@pytest.mark.parametrize("name", list(DOOMED))
def test_doomed_user_model_is_stopped_by_epoch_3(results, name):
    r = results[name]
    assert runs.doomed(r["acc"], r["classes"]), f"{name} learned after all (test accuracy {r['acc']:.3f})"
    if name in OUT_OF_REACH:
        assert r["cb"].stopped_epoch is None and r["hist"]["ww_in_domain"][0] == 0.0
        assert min(r["hist"]["ww_status"][:DOOM_BY]) >= 1.0  # it warns from the first check
        assert r["hist"]["ww_pred_final_accuracy"][0] < 0.2  # and shows the (untrusted) forecast
        return
    assert r["cb"].stopped_epoch is not None and r["cb"].stopped_epoch <= DOOM_BY, (
        f"{name}: stopped at {r['cb'].stopped_epoch}; last verdict {r['cb'].verdict}")
    assert r["cb"].stopping_message


def test_suite_covers_in_and_out_of_domain(results):
    """The suite is not all out of domain: the paper CNNs on [-1, 1] digits (Adam, SGD with momentum), the CNN
    with BatchNorm and max-pooling (the BatchNorm predictor's zoos) and the MLPs on tabular data (the MLP
    predictor's zoos: four optimizers, 2, 3 and 10 classes) are judged by the predictors; raw 0-255 pixels are
    not (no shipped zoo is predicted well enough on them)."""
    flags = {n: r["hist"]["ww_in_domain"][-1] for n, r in results.items() if r["kind"] == "healthy"}
    for name in ("paper-cnn relu adam", "paper-cnn slow start (25% of the data, adam 1e-3)",
                 "paper-cnn small learning rate (adam 2e-4)", "paper-cnn sgd momentum"):
        assert flags[name] == 1.0, name
        assert results[name]["cb"].verdict.predictor_name == "paper-cnn-pooled-W_L-gbm"
    assert flags["paper-cnn raw 0-255 pixels"] == 0.0
    assert "input range (0, 255)" in results["paper-cnn raw 0-255 pixels"]["cb"].verdict.domain_reason
    assert flags["batchnorm + max-pool cnn"] == 1.0
    assert results["batchnorm + max-pool cnn"]["cb"].verdict.predictor_name == "cnn-bn-W_L-agnostic-gbm"
    for name in ("mlp digits 64-vectors [0,1]", "mlp breast cancer binary sigmoid", "mlp wine 3 classes sgd"):
        assert flags[name] == 1.0, name
        assert results[name]["cb"].verdict.predictor_name == "mlp-W_L-agnostic-gbm"
    close = [n for n, r in results.items() if r["kind"] == "healthy" and r["hist"]["ww_in_domain"][-1] == 1.0
             and abs(r["hist"]["ww_pred_accuracy"][-1] - r["acc"]) <= 0.15]
    assert len(close) >= 10, [(n, r["hist"]["ww_in_domain"][-1], r["hist"]["ww_pred_accuracy"][-1], r["acc"])
                              for n, r in results.items() if r["kind"] == "healthy" and n not in close]


def test_runs_of_another_length_map_by_fraction(digits_images):
    """A 6- and a 30-epoch run: the forecaster reads progress from fit's epochs; healthy runs go on, a dying one stops."""
    for epochs in (6, 30):
        keras.utils.set_random_seed(0)
        cb, hist, acc, _ = fit_keras(paper_cnn(), digits_images, keras.optimizers.Adam(2e-3), epochs=epochs)
        assert cb.monitor.epochs == epochs and cb.stopped_epoch is None and len(hist["loss"]) == epochs
        assert np.isfinite(hist["ww_pred_final_accuracy"]).all()
    keras.utils.set_random_seed(0)
    cb, hist, acc, _ = fit_keras(paper_cnn(), digits_images, keras.optimizers.Adam(0.4), epochs=30)
    assert cb.stopped_epoch is not None and cb.stopped_epoch <= DOOM_BY and runs.doomed(acc)


# ------------------------------------------------------------------ torch


try:  # torch is optional: only the tests marked needs_torch skip without it, the Keras ones above still run
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (pip install 'weightwatch[torch]')")


def _torch_run(model, data, opt_fn, epochs, loss_fn, **kw):
    from weightwatch.torch import WeightWatch

    xtr, ytr, xte, yte = (torch.as_tensor(np.asarray(a)) for a in data)
    torch.manual_seed(0)
    opt = opt_fn(model.parameters())
    ww = WeightWatch(model, stop_on_doom=True, epochs=epochs, **kw)
    assert ww.monitor._init_network is not None  # the weights at construction are the start
    steps = 0
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss_fn(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            steps += 1
        ww.step(epoch, steps=steps, optimizer=opt)
        if ww.should_stop:
            break
    with torch.no_grad():
        out = model(xte)
    pred = (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(1)
    acc = float((pred == yte).float().mean()) if torch.isfinite(out).all() else 0.0
    return ww, epoch, acc


def _torch_cnn():
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10))


@needs_torch
def test_torch_user_models(digits_images):
    from torch import nn

    xtr, ytr, xte, yte = digits_images
    nchw = (np.transpose(xtr, (0, 3, 1, 2)).astype(np.float32), ytr, np.transpose(xte, (0, 3, 1, 2)).astype(np.float32),
            yte)
    ce = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    ww, last, acc = _torch_run(_torch_cnn(), nchw, lambda p: torch.optim.SGD(p, 0.05, momentum=0.9), 10, ce)
    assert runs.healthy(acc) and not ww.should_stop and last == 10
    # SGD with momentum and Adam, started as torch starts its layers (uniform kernels, non-zero biases): the pooled
    # predictor's zoos hold such runs (digits_torchinit), so they are judged, and within 0.15 (0.17 and 0.155
    # below the real accuracy before that zoo was added)
    assert ww.verdict.in_domain and abs(ww.verdict.predicted_accuracy - acc) <= 0.15, (ww.verdict, acc)
    torch.manual_seed(0)
    ww, last, acc = _torch_run(_torch_cnn(), nchw, lambda p: torch.optim.Adam(p, 1e-3), 10, ce)
    assert runs.healthy(acc) and not ww.should_stop and ww.verdict.in_domain
    assert abs(ww.verdict.predicted_accuracy - acc) <= 0.15, (ww.verdict, acc)
    torch.manual_seed(0)
    ww, last, acc = _torch_run(_torch_cnn(), nchw, lambda p: torch.optim.Adam(p, 0.4), 10, ce)
    assert runs.doomed(acc) and ww.should_stop and ww.stopped_epoch <= DOOM_BY

    cancer = _tabular("breast_cancer", "standard")
    binary = (cancer[0], cancer[1].astype(np.float32)[:, None], cancer[2], cancer[3])
    bce = nn.BCEWithLogitsLoss()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
    ww, last, acc = _torch_run(net, binary, lambda p: torch.optim.Adam(p, 1e-3), 10, bce)
    assert runs.healthy(acc, 2) and not ww.should_stop and last == 10
    assert ww.verdict.predictor_name == "mlp-W_L-agnostic-gbm"
    if ww.verdict.in_domain:  # the MLP predictor's zoos hold binary sigmoid MLPs on this dataset
        assert abs(ww.verdict.predicted_accuracy - acc) <= 0.15
    else:
        assert ww.verdict.domain_reason


def test_predict_accuracy_and_cli_say_out_of_domain(tmp_path, capsys):  # noqa: D103
    import json

    import weightwatch
    from weightwatch.cli import main

    keras.utils.set_random_seed(0)
    model = mlp(30, 4)  # four classes: no zoo of the MLP predictor has four
    p = weightwatch.predict_accuracy(model)
    assert p.in_domain is False and "it has 4 classes, the predictor's zoo networks have 2, 3 or 10" in p.domain_reason
    path = tmp_path / "four.keras"
    model.save(path)
    assert main(["predict", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["in_domain"] is False and "4 classes" in out["domain_reason"]
    assert main(["predict", str(path)]) == 0
    assert "out of domain: it has 4 classes" in capsys.readouterr().out
