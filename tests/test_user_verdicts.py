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


def _torch_mlp(torch, bias=None):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 10))
    if bias is not None:
        with torch.no_grad():
            for m in net:
                if isinstance(m, torch.nn.Linear):
                    m.bias.fill_(bias)
    return net


TORCH_CASES = {  # name: (make optimizer, bias, doomed)
    "SGD lr 3 MLP": (lambda torch, p: torch.optim.SGD(p, lr=3.0), None, True),
    "bias init -20 MLP": (lambda torch, p: torch.optim.Adam(p, lr=1e-3), -20.0, True),
    "Adam 1e-3 MLP": (lambda torch, p: torch.optim.Adam(p, lr=1e-3), None, False),
    "SGD 0.05 momentum MLP": (lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.9), None, False),
}


@pytest.mark.parametrize("batch", [16, 128])
@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_loop_verdicts(digits, case, batch):
    torch = pytest.importorskip("torch")
    from weightwatch.torch import WeightWatch

    make_opt, bias, doomed = TORCH_CASES[case]
    data = digits["default"]
    x = torch.tensor(np.asarray(data.x_train), dtype=torch.float32).permute(0, 3, 1, 2)
    y = torch.tensor(np.asarray(data.y_train), dtype=torch.long)
    model = _torch_mlp(torch, bias)
    opt = make_opt(torch, model.parameters())
    ww = WeightWatch(model, stop_on_doom=True, epochs=EPOCHS, verbose=0)
    g = torch.Generator().manual_seed(0)
    for epoch in range(1, EPOCHS + 1):
        total, correct, seen = 0.0, 0, 0
        for idx in torch.randperm(len(x), generator=g).split(batch):
            opt.zero_grad()
            out = model(x[idx])
            loss = torch.nn.functional.cross_entropy(out, y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == y[idx]).sum())
            seen += len(idx)
        ww.step(epoch, optimizer=opt, logs={"loss": total / seen, "accuracy": correct / seen})
        if ww.should_stop:
            break
    if doomed:
        assert ww.stopped_epoch is not None and ww.stopped_epoch <= 3, ww.history.to_dict("records")
    else:
        assert ww.stopped_epoch is None, ww.history.to_dict("records")


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.parametrize("lr,doomed", [(3.0, True), (0.05, False)])
def test_lightning_verdicts(digits, tmp_path, lr, doomed):
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning")
    from weightwatch.lightning import WeightWatchCallback as LightningWatch

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _torch_mlp(torch)

        def training_step(self, batch, _):
            xb, yb = batch
            out = self.net(xb)
            loss = torch.nn.functional.cross_entropy(out, yb)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            self.log("train_acc", (out.argmax(1) == yb).float().mean(), on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9 if not doomed else 0.0)

    data = digits["default"]
    x = torch.tensor(np.asarray(data.x_train), dtype=torch.float32).permute(0, 3, 1, 2)
    y = torch.tensor(np.asarray(data.y_train), dtype=torch.long)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = LightningWatch(stop_on_doom=True, verbose=0)
    trainer = L.Trainer(max_epochs=EPOCHS, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        accelerator="cpu", devices=1)
    trainer.fit(Module(), loader)
    if doomed:
        assert cb.stopped_epoch is not None and cb.stopped_epoch <= 3, cb.history.to_dict("records")
    else:
        assert cb.stopped_epoch is None, cb.history.to_dict("records")
    assert not np.isnan(cb.history["pred_final_accuracy"]).any()


def test_demo_forecast_is_smooth_and_inside_its_interval():
    """``make demo``: the healthy run's forecast moves at most 0.05 between epochs from epoch 3 on, its interval
    holds the point at every epoch, and only the dying run is stopped."""
    import io

    from weightwatch import demo

    summary = {row[0]: row for row in demo.run(out=io.StringIO())}
    h = summary["healthy"][-1]
    f = h["pred_final_accuracy"].to_numpy()
    moves = np.abs(np.diff(f))[h["epoch"].to_numpy()[1:] >= 4]  # epoch e vs e-1, for e >= 4 (from epoch 3 on)
    assert moves.max() <= 0.05, list(np.round(f, 3))
    assert ((h["final_lo"] <= h["pred_final_accuracy"]) & (h["pred_final_accuracy"] <= h["final_hi"])).all()
    assert [name for name, row in summary.items() if row[5]] == ["dying"]
