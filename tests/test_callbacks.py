"""Callbacks on real training runs (no mocks) on the digits dataset.

Dying configuration: paper CNN, ReLU, he_normal, Adam lr 0.4, no dropout, all
data (measured: 10 of 10 Keras seeds end at chance; lr 0.3 and 0.5 too, lr
0.1 7 of 10). Healthy: the same with lr 1e-3 (10 of 10 reach > 0.9).
The predictor is a forecaster of the final accuracy (GBM on the trajectory
features of :mod:`weightwatch.forecast`) trained on a small zoo built in the
session.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from weightwatch.monitor import StoppingReason

DYING_LR = 0.4
HEALTHY_LR = 1e-3
EPOCHS = 5
FULL_SEEDS = 10


def at_least(n):
    """Stops required out of ``n`` seeds: 9 of 10 (and all of fewer)."""
    return math.ceil(0.9 * n)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def digits():
    from weightwatch.zoo.datasets import load_digits

    return load_digits(16)


@pytest.fixture(scope="session")
def predictor_dir(tmp_path_factory):
    """A forecaster of the final (epoch-5) accuracy, fitted on a 64-run digits zoo, saved as data.

    Given as ``predictor=``, a forecaster judges doom (its point forecast below chance + 0.1, as it ships no
    interval or threshold).
    """
    from weightwatch import forecast
    from weightwatch.predictors import GBMPredictor, save_predictor
    from weightwatch.experiments.shipping import Table, write_table
    from weightwatch.experiments.trajectories import Trajectories
    from weightwatch.zoo.build import BuildSpec, build_zoo
    from weightwatch.zoo.storage import Zoo

    out = tmp_path_factory.mktemp("zoo")
    spec = BuildSpec(dataset="digits", architecture="paper-cnn", runs=64, epochs=EPOCHS,
                     checkpoints=tuple(range(EPOCHS + 1)), shard_size=64, seed=11)
    write_table(Zoo(build_zoo(out / "build", spec, progress=False)["zoo"]), out / "digits.npz")
    traj = Trajectories.from_table(Table(out / "digits.npz"))
    X, y, _, _ = traj.forecast_rows(checks=tuple(range(1, EPOCHS)))
    names = forecast.feature_names(traj.names)
    pred = GBMPredictor(n_estimators=200, min_child_samples=10).fit(X, y, feature_names=names)
    save_predictor(pred, out / "predictor", name="test-digits-forecast-gbm", feature_set="W_L", feature_names=names,
                   architecture_family="paper-cnn", zoo_summary={"runs": 64}, metrics={})
    return out / "predictor"


@pytest.fixture(scope="session")
def predictor(predictor_dir):
    from weightwatch.predictors import load_predictor

    return load_predictor(predictor_dir)


# ------------------------------------------------------------------ Keras


def keras_cnn(seed, lr):
    import keras

    from weightwatch.zoo.architectures import build_keras_model

    cfg = dict(activation="relu", dropout=0.0, l2reg=0.0, w_init="he_normal", init_std=0.1, b_init="zeros",
               random_seed=seed)
    keras.utils.set_random_seed(seed)
    model = build_keras_model("paper-cnn", cfg, (16, 16, 1))
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def keras_run(digits, predictor, seed, lr, **kw):
    from weightwatch.keras import WeightWatchCallback

    model = keras_cnn(seed, lr)
    cb = WeightWatchCallback(predictor=predictor, stop_on_doom=True, **{"verbose": 0, **kw})
    hist = model.fit(digits.x_train, digits.y_train, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[cb])
    return cb, hist


def check_keras_dying(digits, predictor, seeds):
    stopped = 0
    for seed in seeds:
        cb, hist = keras_run(digits, predictor, seed, DYING_LR)
        n = len(hist.history["loss"])
        assert len(hist.history["ww_pred_accuracy"]) == n and len(cb.history) == n
        if cb.stopped_epoch is not None and cb.stopped_epoch <= EPOCHS:
            stopped += 1
            assert cb.model.stop_training and n == cb.stopped_epoch
            assert hist.history["ww_doomed"][-1] == 1.0
            assert cb.stopping_reason == StoppingReason.DOOMED and cb.stopping_message.endswith(".")
            assert cb.stopping_reason_message == cb.stopping_message
            # the shipped doom model (Adam, no dropout: its setup is read from the model) agrees
            assert hist.history["ww_doom_probability"][-1] > 0.5
    assert stopped >= at_least(len(seeds)), f"only {stopped} of {len(seeds)} dying runs stopped"


def check_keras_healthy(digits, predictor, seeds):
    for seed in seeds:
        cb, hist = keras_run(digits, predictor, seed, HEALTHY_LR)
        assert cb.stopped_epoch is None, cb.history.to_string()
        assert len(hist.history["ww_pred_accuracy"]) == EPOCHS
        assert all(np.isfinite(hist.history["ww_pred_final_accuracy"]))
        assert hist.history["ww_doomed"] == [0.0] * EPOCHS
        # after one epoch a slow starter's loss can still be above ln k (seeds 6 and 7 here: 1.08 and 1.03 x ln 10),
        # which the doom model reads as doom; the policy's patience is what protects it, and from the second
        # check on the model agrees the run learns
        assert max(hist.history["ww_doom_probability"][1:]) < 0.5


def test_keras_dying_runs_are_stopped(digits, predictor):
    check_keras_dying(digits, predictor, range(3))


def test_keras_healthy_runs_are_not_stopped(digits, predictor):
    check_keras_healthy(digits, predictor, range(3))


@pytest.mark.slow
def test_keras_dying_runs_are_stopped_10_seeds(digits, predictor):
    check_keras_dying(digits, predictor, range(FULL_SEEDS))


@pytest.mark.slow
def test_keras_healthy_runs_are_not_stopped_10_seeds(digits, predictor):
    check_keras_healthy(digits, predictor, range(FULL_SEEDS))


def test_keras_verbose_line_and_predictor_path(digits, predictor_dir, capsys):
    cb, hist = keras_run(digits, str(predictor_dir), 0, DYING_LR, verbose=1)
    out = capsys.readouterr().out
    assert "ww: epoch 1 pred_acc n/a final " in out and "[doomed]" in out and "forecast_doomed" in out
    assert cb.verdict.predictor_name == "test-digits-forecast-gbm"


def test_keras_callback_is_reusable_across_fits(digits, predictor):
    from weightwatch.keras import WeightWatchCallback

    model = keras_cnn(0, HEALTHY_LR)
    cb = WeightWatchCallback(predictor=predictor, verbose=0)
    model.fit(digits.x_train[:256], digits.y_train[:256], epochs=2, verbose=0, callbacks=[cb])
    model.fit(digits.x_train[:256], digits.y_train[:256], epochs=1, verbose=0, callbacks=[cb])
    assert cb.history["epoch"].tolist() == [1]


def _functional(keras):
    inp = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(10)(h))


def _subclassed(keras):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(8, 3, strides=2, activation="relu")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.out = keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.pool(self.conv(x)))

    return Net()


@pytest.mark.parametrize("build, plain", [(_functional, True), (_subclassed, False)])
def test_keras_functional_and_subclassed(digits, build, plain):
    import keras

    from weightwatch.keras import WeightWatchCallback, is_plain_keras_chain

    keras.utils.set_random_seed(0)
    model = build(keras)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = WeightWatchCallback(predictor=None, verbose=0, every=2)
    hist = model.fit(digits.x_train[:128], digits.y_train[:128], epochs=4, verbose=0, callbacks=[cb])
    assert cb.history["epoch"].tolist() == [2, 4]
    assert len(hist.history["ww_pred_accuracy"]) == 2 and all(np.isnan(hist.history["ww_pred_accuracy"]))
    assert is_plain_keras_chain(model) is plain


KERAS_TORCH_SCRIPT = textwrap.dedent("""
    import json, sys
    import keras
    assert keras.backend.backend() == "torch"
    from weightwatch.keras import WeightWatchCallback
    from weightwatch.zoo.architectures import build_keras_model
    from weightwatch.zoo.datasets import load_digits
    d = load_digits(16)
    cfg = dict(activation="relu", dropout=0.0, l2reg=0.0, w_init="he_normal", init_std=0.1, b_init="zeros",
               random_seed=0)
    out = {}
    for lr in (0.4, 1e-3):
        keras.utils.set_random_seed(0)
        m = build_keras_model("paper-cnn", cfg, (16, 16, 1))
        m.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        cb = WeightWatchCallback(predictor=sys.argv[1], stop_on_doom=True, verbose=0)
        h = m.fit(d.x_train, d.y_train, epochs=5, batch_size=32, verbose=0, callbacks=[cb])
        out[str(lr)] = {"stopped": cb.stopped_epoch, "pred": h.history["ww_pred_final_accuracy"],
                        "n": len(h.history["loss"])}
    print("RESULT" + json.dumps(out))
""")


def test_keras_torch_backend_in_subprocess(predictor_dir, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KERAS_TORCH_SCRIPT)
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, str(script), str(predictor_dir)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["0.4"]["stopped"] is not None and result["0.4"]["stopped"] <= 4
    assert result["0.001"]["stopped"] is None and result["0.001"]["n"] == 5
    assert all(np.isfinite(result["0.001"]["pred"]))


# ------------------------------------------------------------------ plain torch loop


def torch_cnn(seed):
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def torch_data(digits):
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch

    x = torch.from_numpy(np.ascontiguousarray(digits.x_train.transpose(0, 3, 1, 2))).float()
    return x, torch.from_numpy(digits.y_train).long()


def torch_run(digits, predictor, seed, lr, pass_optimizer=True):
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch

    from weightwatch.torch import WeightWatch

    x, y = torch_data(digits)
    model = torch_cnn(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ww = WeightWatch(model, predictor=predictor, stop_on_doom=True, epochs=EPOCHS)
    gen = torch.Generator().manual_seed(seed)
    steps = 0
    epochs_run = 0
    for epoch in range(1, EPOCHS + 1):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            steps += 1
        epochs_run = epoch
        verdict = ww.step(epoch, steps=steps, optimizer=opt if pass_optimizer else None)
        assert verdict is not None and verdict.epoch == epoch
        if ww.should_stop:
            break
    return ww, epochs_run


def check_torch(digits, predictor, seeds, lr, expect_stop):
    stopped = 0
    for seed in seeds:
        given = seed % 2 == 0  # without the optimizer the doom model still reads the rest of the run's evidence
        ww, n = torch_run(digits, predictor, seed, lr, pass_optimizer=given)
        assert len(ww.history) == n and ww.history["pred_final_accuracy"].notna().all()
        assert ww.history["doom_probability"].notna().all()
        if ww.should_stop:
            stopped += 1
            assert ww.stopped_epoch == n and ww.stopping_reason == StoppingReason.DOOMED
    if expect_stop:
        assert stopped >= at_least(len(seeds)), f"only {stopped} of {len(seeds)} dying torch runs stopped"
    else:
        assert stopped == 0


def test_torch_loop_dying_and_healthy(digits, predictor):
    check_torch(digits, predictor, range(2), DYING_LR, True)
    check_torch(digits, predictor, range(2), HEALTHY_LR, False)


@pytest.mark.slow
def test_torch_loop_dying_10_seeds(digits, predictor):
    check_torch(digits, predictor, range(FULL_SEEDS), DYING_LR, True)


@pytest.mark.slow
def test_torch_loop_healthy_10_seeds(digits, predictor):
    check_torch(digits, predictor, range(FULL_SEEDS), HEALTHY_LR, False)


def test_torch_plain_chain_detection():
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch

    from weightwatch.torch import is_plain_torch_chain

    assert is_plain_torch_chain(torch_cnn(0))
    flat = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 10))
    assert not is_plain_torch_chain(flat)  # channels-first flatten
    assert not is_plain_torch_chain(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)))


# ------------------------------------------------------------------ Lightning

# lightning 2.6 + torch 2.13: third-party deprecation inside lightning's pytree helper
lightning_filter = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")


def lightning_run(digits, predictor, seed, lr, ckpt_dir=None):
    pl = pytest.importorskip("lightning.pytorch")
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch

    from weightwatch.lightning import WeightWatchCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch_cnn(seed)

        def training_step(self, batch, _):
            xb, yb = batch
            return torch.nn.functional.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr)

    x, y = torch_data(digits)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    cb = WeightWatchCallback(predictor=predictor, stop_on_doom=True)
    epochs_seen = []

    class Spy(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            epochs_seen.append(float(trainer.callback_metrics["ww_pred_final_accuracy"]))
            epochs_seen.append(float(trainer.callback_metrics["ww_doom_probability"]))  # trainer.optimizers[0]

    trainer = pl.Trainer(max_epochs=EPOCHS, callbacks=[cb, Spy()], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(Module(), loader)
    return cb, trainer, epochs_seen


def check_lightning(digits, predictor, seeds, lr, expect_stop):
    stopped = 0
    for seed in seeds:
        cb, trainer, seen = lightning_run(digits, predictor, seed, lr)
        n = trainer.current_epoch
        assert len(cb.history) == n and len(seen) == 2 * n and all(np.isfinite(seen))
        if trainer.should_stop and cb.stopped_epoch is not None:
            stopped += 1
            assert cb.stopping_reason == StoppingReason.DOOMED and cb.stopping_reason_message
    if expect_stop:
        assert stopped >= at_least(len(seeds))
    else:
        assert stopped == 0


@lightning_filter
def test_lightning_dying_and_healthy(digits, predictor):
    check_lightning(digits, predictor, [0], DYING_LR, True)
    check_lightning(digits, predictor, [0], HEALTHY_LR, False)


@pytest.mark.slow
@lightning_filter
def test_lightning_10_seeds(digits, predictor):
    check_lightning(digits, predictor, range(FULL_SEEDS), DYING_LR, True)
    check_lightning(digits, predictor, range(FULL_SEEDS), HEALTHY_LR, False)


@lightning_filter
def test_lightning_state_dict_round_trip(digits, predictor):
    from weightwatch.lightning import WeightWatchCallback

    cb, _, _ = lightning_run(digits, predictor, 0, DYING_LR)
    state = json.loads(json.dumps(cb.state_dict()))
    other = WeightWatchCallback(predictor=predictor)
    other.load_state_dict(state)
    assert other.stopped_epoch == cb.stopped_epoch and other.stopping_reason == cb.stopping_reason
    assert other.history.equals(cb.history)


# ------------------------------------------------------------------ binary models, bf16, unreadable models


def _cancer():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return x, y.astype(np.float32)


@lightning_filter
def test_lightning_binary_sigmoid_model_trains_undisturbed():
    """One sigmoid output unit is a binary classifier: no output_collapse, no stop; the MLP predictor judges it."""
    pl = pytest.importorskip("lightning.pytorch")
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch

    from weightwatch.lightning import WeightWatchCallback

    x, y = (torch.from_numpy(a) for a in _cancer())

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

        def training_step(self, batch, _):
            xb, yb = batch
            return torch.nn.functional.binary_cross_entropy_with_logits(self.net(xb)[:, 0], yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    cb = WeightWatchCallback(stop_on_doom=True)
    trainer = pl.Trainer(max_epochs=4, callbacks=[cb], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    module = Module()
    trainer.fit(module, loader)
    assert trainer.current_epoch == 4 and cb.stopped_epoch is None and not cb.verdict.doomed
    assert cb.verdict.predictor_name == "mlp-W_L-agnostic-gbm"  # its zoos hold binary sigmoid MLPs
    assert float(trainer.callback_metrics["ww_in_domain"]) == float(cb.verdict.in_domain)
    assert cb.verdict.in_domain or cb.verdict.domain_reason
    with torch.no_grad():
        acc = float(((module.net(x)[:, 0] > 0).float() == y).float().mean())
    assert acc > 0.9


def test_keras_binary_sigmoid_model_trains_undisturbed(digits):
    import keras

    from weightwatch.keras import WeightWatchCallback

    x, y = _cancer()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    cb = WeightWatchCallback(stop_on_doom=True, verbose=0)
    hist = model.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[cb])
    assert len(hist.history["loss"]) == 4 and cb.stopped_epoch is None
    assert "output_collapse" not in cb.verdict.reasons and set(hist.history["ww_in_domain"]) <= {0.0, 1.0}
    assert cb.verdict.predictor_name == "mlp-W_L-agnostic-gbm"


def test_keras_bfloat16_policy_is_watched(digits):
    import keras

    from weightwatch.keras import WeightWatchCallback

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = keras_cnn(0, HEALTHY_LR)
        assert model.layers[0].compute_dtype == "bfloat16"
        cb = WeightWatchCallback(predictor=None, verbose=0)
        hist = model.fit(digits.x_train[:256], digits.y_train[:256], epochs=2, verbose=0, callbacks=[cb])
    finally:
        keras.config.set_dtype_policy(before)
    assert cb.history["epoch"].tolist() == [1, 2] and hist.history["ww_status"] == [0.0, 0.0]


def test_keras_unreadable_model_says_so_once_and_logs_nothing(capsys):
    import keras

    from weightwatch.keras import WeightWatchCallback

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 5, 3)).astype(np.float32), rng.integers(0, 2, 64)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4)])
    model.compile(optimizer="adam", loss="mse")
    cb = WeightWatchCallback(verbose=1)
    hist = model.fit(x, np.eye(4)[y % 4].astype(np.float32), epochs=3, verbose=0, callbacks=[cb])
    out = capsys.readouterr().out
    assert out.count("nothing can be checked") == 1 and "[ok]" not in out and "pred_acc" not in out
    assert not any(k.startswith("ww_") for k in hist.history) and len(cb.history) == 0


# ------------------------------------------------------------------ one stopping-reason type for all three


def test_the_three_callbacks_share_one_stopping_reason_type():
    import weightwatch.keras
    import weightwatch.torch

    assert weightwatch.keras.StoppingReason is weightwatch.torch.StoppingReason is StoppingReason
    lightning = pytest.importorskip("weightwatch.lightning")
    assert lightning.StoppingReason is StoppingReason and not hasattr(lightning, "WeightWatchStoppingReason")


def test_non_finite_weights_stop_with_their_own_reason_and_survive_a_state_round_trip():
    torch = pytest.importorskip("torch")  # per test: the Keras tests of this module run without torch

    from weightwatch.torch import WeightWatch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ww = WeightWatch(model, predictor=None, stop_on_doom=True, patience=1)
    assert ww.stopping_reason == StoppingReason.NOT_STOPPED and ww.stopping_reason_message is None
    ww.step(1)
    assert not ww.should_stop and ww.stopping_reason == StoppingReason.NOT_STOPPED
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    ww.step(2)
    assert ww.should_stop and ww.stopped_epoch == 2
    assert ww.stopping_reason == StoppingReason.NON_FINITE and "non-finite" in ww.stopping_reason_message.lower()
    other = WeightWatch(model, predictor=None)
    other.load_state_dict(json.loads(json.dumps(ww.state_dict())))
    assert other.stopping_reason == StoppingReason.NON_FINITE and other.stopped_epoch == 2
