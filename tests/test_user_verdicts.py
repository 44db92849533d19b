"""Verdicts on runs trained the way users train, with real Keras ``model.fit`` (and torch / Lightning loops).

Doomed runs are stopped by epoch 3 and healthy ones are never stopped, at batch 16 and at batch 128: the verdict
must not move with the batch size alone. Runs are short (digits, 16x16), planned for 10 epochs.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from weightwatch.keras import WeightWatchCallback  # noqa: E402
from weightwatch.zoo.datasets import load_dataset  # noqa: E402

EPOCHS = 10


@pytest.fixture(scope="module")
def digits():
    return {scale: load_dataset("digits", input_scale=scale) for scale in ("default", "unit")}


def cnn(bn=False, dtype=None, bias=None):
    keras.utils.set_random_seed(0)
    kw = {"bias_initializer": keras.initializers.Constant(bias)} if bias is not None else {}
    layers = [keras.Input((16, 16, 1))]
    if bn:
        layers += [keras.layers.Conv2D(16, 3, padding="same"), keras.layers.BatchNormalization(),
                   keras.layers.ReLU(), keras.layers.MaxPooling2D(),
                   keras.layers.Conv2D(32, 3, padding="same"), keras.layers.BatchNormalization(),
                   keras.layers.ReLU(), keras.layers.MaxPooling2D()]
    else:
        layers += [keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", **kw)
                   for _ in range(3)]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax", dtype=dtype)]
    return keras.Sequential(layers)


def mlp(bias=None):
    keras.utils.set_random_seed(0)
    kw = {"bias_initializer": keras.initializers.Constant(bias)} if bias is not None else {}
    return keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(32, activation="relu", **kw),
                             keras.layers.Dense(32, activation="relu", **kw), keras.layers.Dense(10, **kw)])


def optimizer(kind, lr):
    if kind == "sgd_momentum":
        return keras.optimizers.SGD(lr, momentum=0.9)
    return {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}[kind](lr)


def fit(model, opt, data, batch, *, logits=False, mixed=False):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"])
    cb = WeightWatchCallback(stop_on_doom=True, verbose=0)
    model.fit(data.x_train, data.y_train, batch_size=batch, epochs=EPOCHS, callbacks=[cb], verbose=0)
    return cb


DOOMED = {
    "SGD lr 3 MLP": lambda: (mlp(), optimizer("sgd", 3.0), "default", True),
    "bias init -20 MLP": lambda: (mlp(bias=-20.0), optimizer("adam", 1e-3), "default", True),
    "Adam lr 1.0 CNN": lambda: (cnn(), optimizer("adam", 1.0), "default", False),
    "paper CNN Adam lr 0.5 [-1,1]": lambda: (cnn(), optimizer("adam", 0.5), "default", False),
    "paper CNN Adam lr 0.5 [0,1]": lambda: (cnn(), optimizer("adam", 0.5), "unit", False),
}
HEALTHY = {
    "Adam 1e-3 CNN": lambda: (cnn(), optimizer("adam", 1e-3), "default", False),
    "SGD 0.05 momentum MLP": lambda: (mlp(), optimizer("sgd_momentum", 0.05), "default", True),
    "BatchNorm CNN Adam 1e-3": lambda: (cnn(bn=True), optimizer("adam", 1e-3), "default", False),
    "slow but sure: Adam 3e-4 CNN": lambda: (cnn(), optimizer("adam", 3e-4), "default", False),
}


@pytest.mark.parametrize("batch", [16, 128])
@pytest.mark.parametrize("case", sorted(DOOMED))
def test_doomed_user_runs_are_stopped_by_epoch_3(digits, case, batch):
    model, opt, scale, logits = DOOMED[case]()
    cb = fit(model, opt, digits[scale], batch, logits=logits)
    assert cb.stopped_epoch is not None and cb.stopped_epoch <= 3, (case, batch, cb.history.to_dict("records"))


@pytest.mark.parametrize("batch", [16, 128])
@pytest.mark.parametrize("case", sorted(HEALTHY))
def test_healthy_user_runs_are_never_stopped(digits, case, batch):
    model, opt, scale, logits = HEALTHY[case]()
    cb = fit(model, opt, digits[scale], batch, logits=logits)
    assert cb.stopped_epoch is None, (case, batch, cb.history.to_dict("records"))
    if batch == 16:  # at batch 128 the BatchNorm and the slow run end in-between after 10 epochs (fewer steps):
        # not healthy, not doomed, and they must not be stopped either
        acc = model.evaluate(digits[scale].x_test, digits[scale].y_test, verbose=0)[1]
        assert acc >= 0.5, f"{case} is not healthy itself (test accuracy {acc:.3f}): the case is wrong"
    h = cb.history
    assert h["pred_final_accuracy"].notna().all()  # every check has a forecast
    assert (h["final_lo"] <= h["pred_final_accuracy"]).all() and (h["pred_final_accuracy"] <= h["final_hi"]).all()


@pytest.mark.parametrize("batch", [16, 128])
def test_mixed_float16_doomed_cnn_is_stopped(digits, batch):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, opt = cnn(dtype="float32"), optimizer("adam", 1.0)
        cb = fit(model, opt, digits["default"], batch)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert cb.stopped_epoch is not None and cb.stopped_epoch <= 3, cb.history.to_dict("records")
