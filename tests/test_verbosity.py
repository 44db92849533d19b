"""What the callbacks print: nothing with ``verbose=0`` (stdout and stderr captured at the file descriptors), with
``verbose="auto"`` what the framework's progress bar implies, and when printing a short line per check, each note
once and the reason once, at the stop. Real Keras, torch and Lightning runs on the digits (16x16)."""

import logging

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from weightwatch.errors import InvalidArgumentError  # noqa: E402
from weightwatch.keras import WeightWatchCallback  # noqa: E402
from weightwatch.zoo.datasets import load_digits  # noqa: E402

EPOCHS = 6


@pytest.fixture(scope="module")
def digits():
    return load_digits(16)


def paper_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16, 16, 1))]
                            + [keras.layers.Conv2D(16, 3, strides=2, activation="relu") for _ in range(3)]
                            + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])


def keras_fit(digits, lr, fit_verbose=0, **kw):
    model = paper_cnn()
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = WeightWatchCallback(stop_on_doom=True, **kw)
    model.fit(digits.x_train, digits.y_train, epochs=EPOCHS, verbose=fit_verbose, callbacks=[cb])
    return cb


@pytest.fixture(scope="module")
def warm(digits):
    """TensorFlow prints its start-up lines at the first fit; get them out of the way before capturing."""
    keras_fit(digits, 1e-3, verbose=0)


@pytest.mark.parametrize("verbose", [0, "auto"])
def test_keras_doomed_run_stopped_in_silence(digits, warm, capfd, verbose):
    capfd.readouterr()
    cb = keras_fit(digits, 1.0, fit_verbose=0, verbose=verbose)  # auto: fit shows no progress bar
    out, err = capfd.readouterr()
    assert cb.stopped_epoch == 2 and cb.stopping_message  # the run was judged, and stopped
    assert out == "" and err == ""


def test_keras_verbose_prints_short_lines_notes_and_the_reason_once(digits, warm, capfd, caplog):
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="weightwatch"):
        cb = keras_fit(digits, 1.0, fit_verbose=2, verbose="auto")  # auto: fit shows its per-epoch line
    out = capfd.readouterr().out
    lines = out.splitlines()
    ours = [ln for ln in lines if ln.startswith("ww: epoch")]
    assert len(ours) == cb.stopped_epoch == 2
    assert all(cb.stopping_message not in ln for ln in ours)  # short: the reasons' names only
    assert "[doomed] doom_model" in ours[-1]
    assert out.count(cb.stopping_message) == 1 and out.count("stopping training after epoch 2") == 1
    assert out.count("not calibrated for this model") == 1 and out.count("paper-CNN family") == 1
    # Keras' own line for an epoch comes before ours (ours waits until the progress bar closed its line)
    keras_lines = [i for i, ln in enumerate(lines) if " - loss: " in ln]
    assert keras_lines[0] < lines.index(ours[0]) < keras_lines[1]
    # the log holds everything too, the full sentences included
    assert any(cb.stopping_message in r.getMessage() for r in caplog.records if r.name.startswith("weightwatch"))


def test_keras_healthy_run_with_a_progress_bar_is_not_stopped_and_says_ok(digits, warm, capfd):
    capfd.readouterr()
    cb = keras_fit(digits, 1e-3, fit_verbose=2)
    out = capfd.readouterr().out
    assert cb.stopped_epoch is None
    assert sum(ln.startswith("ww: epoch") for ln in out.splitlines()) == EPOCHS and "stopping" not in out


@pytest.mark.parametrize("bad", [3, -1, "yes", 1.5])
def test_bad_verbose_is_refused(bad):
    with pytest.raises(InvalidArgumentError, match="verbose must be 'auto', 0, 1 or 2"):
        WeightWatchCallback(verbose=bad)


def _torch_mlp(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _tensors(torch, digits):
    x = torch.tensor(np.asarray(digits.x_train), dtype=torch.float32).permute(0, 3, 1, 2)
    return x, torch.tensor(np.asarray(digits.y_train), dtype=torch.long)


def torch_loop(torch, digits, **kw):
    from weightwatch.torch import WeightWatch

    x, y = _tensors(torch, digits)
    model = _torch_mlp(torch)
    opt = torch.optim.SGD(model.parameters(), lr=3.0)  # doomed (tests/test_user_verdicts.py)
    ww = WeightWatch(model, stop_on_doom=True, epochs=EPOCHS, **kw)
    g = torch.Generator().manual_seed(0)
    for epoch in range(1, EPOCHS + 1):
        for idx in torch.randperm(len(x), generator=g).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        ww.step(epoch, optimizer=opt)
        if ww.should_stop:
            break
    return ww


def test_torch_loop_verbose_0_prints_nothing_and_auto_prints(digits, capfd):
    torch = pytest.importorskip("torch")
    capfd.readouterr()
    ww = torch_loop(torch, digits, verbose=0)
    out, err = capfd.readouterr()
    assert ww.should_stop and out == "" and err == ""
    ww = torch_loop(torch, digits)  # auto: a plain loop has no progress bar to follow, so it prints
    out = capfd.readouterr().out
    assert sum(ln.startswith("ww: epoch") for ln in out.splitlines()) == ww.stopped_epoch
    assert out.count(ww.stopping_message) == 1


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.parametrize("verbose", [0, "auto"])
def test_lightning_without_its_progress_bar_prints_nothing(digits, tmp_path, capfd, verbose):
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning")
    from weightwatch.lightning import WeightWatchCallback as LightningWatch

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _torch_mlp(torch)

        def training_step(self, batch, _):
            xb, yb = batch
            loss = torch.nn.functional.cross_entropy(self.net(xb), yb)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=3.0)

    x, y = _tensors(torch, digits)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = LightningWatch(stop_on_doom=True, verbose=verbose)
    trainer = L.Trainer(max_epochs=EPOCHS, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        accelerator="cpu", devices=1)
    quiet = logging.getLogger("lightning.pytorch")  # Lightning's own "GPU available" lines are not ours
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        capfd.readouterr()
        trainer.fit(Module(), loader)
        out, err = capfd.readouterr()
    finally:
        quiet.setLevel(level)
    assert cb.stopped_epoch is not None and trainer.should_stop
    assert out == "" and err == ""


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_lightning_with_its_progress_bar_prints_through_it(digits, tmp_path, capfd):
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning")
    from weightwatch.lightning import WeightWatchCallback as LightningWatch

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _torch_mlp(torch)

        def training_step(self, batch, _):
            xb, yb = batch
            return torch.nn.functional.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    x, y = _tensors(torch, digits)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:256], y[:256]), batch_size=32)
    cb = LightningWatch()  # auto, and the trainer shows its bar
    trainer = L.Trainer(max_epochs=2, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu", devices=1)
    capfd.readouterr()
    trainer.fit(Module(), loader)
    out, err = capfd.readouterr()
    shown = out + err
    assert "ww: epoch 1 " in shown and "ww: epoch 2 " in shown and cb.stopped_epoch is None
