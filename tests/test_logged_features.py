"""``features=[...]`` on the callbacks: a plugin's extractor is logged every epoch as ``ww_feature_<name>`` (one
number) or ``ww_feature_<name>_<i>`` (a vector), in Keras' logs and History, CSVLogger's file, the torch loop's
``verdict.to_dict()`` and Lightning's metrics; an unknown name is refused at construction. And the ``ww_*`` values
reach a CSVLogger listed before the callback as well as after it. Real Keras, torch and Lightning runs."""

import csv

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from weightwatch import plugins  # noqa: E402
from weightwatch.adapters import to_network  # noqa: E402
from weightwatch.errors import InvalidArgumentError, UnknownNameError  # noqa: E402
from weightwatch.features import Extractor  # noqa: E402
from weightwatch.hookspecs import hookimpl  # noqa: E402
from weightwatch.keras import WeightWatchCallback  # noqa: E402
from weightwatch.verdict import WeightWatchWarning  # noqa: E402
from weightwatch.zoo.datasets import load_digits  # noqa: E402

EPOCHS = 3


def _norm(net):
    return np.array([np.sqrt(sum(float(np.sum(layer.kernel.astype(np.float64) ** 2)) for layer in net))])


def _first_last(net):
    return np.array([float(np.abs(net.layers[0].kernel).max()), float(np.abs(net.layers[-1].kernel).max())])


class Plugin:
    @hookimpl
    def register_extractors(self, register):
        register(Extractor("test-norm", compute=_norm, names=lambda net: ["norm"]))
        register(Extractor("test-edges", compute=_first_last, names=lambda net: ["first.max", "last.max"]))
        register(Extractor("test-broken", compute=lambda net: 1 / 0, names=lambda net: ["x"]))


@pytest.fixture
def plugin():
    label = plugins.register_plugin(Plugin(), name="test-logged-features")
    try:
        yield
    finally:
        plugins.unregister_plugin(label)


@pytest.fixture(scope="module")
def digits():
    return load_digits(16)


def paper_cnn(lr=1e-3):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 1))]
                             + [keras.layers.Conv2D(16, 3, strides=2, activation="relu") for _ in range(3)]
                             + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_keras_logs_a_plugin_feature_every_epoch(plugin, digits):
    model = paper_cnn()
    seen = []

    class Spy(keras.callbacks.Callback):  # the weights at each epoch end, to recompute the features
        def on_epoch_end(self, epoch, logs=None):
            seen.append((_norm(to_network(self.model))[0], _first_last(to_network(self.model))))

    cb = WeightWatchCallback(features=["test-norm", "test-edges"], verbose=0)
    hist = model.fit(digits.x_train, digits.y_train, epochs=EPOCHS, verbose=0, callbacks=[Spy(), cb])
    h = hist.history
    assert len(h["ww_feature_test-norm"]) == EPOCHS  # one number: no index
    assert "ww_feature_test-edges_0" in h and "ww_feature_test-edges_1" in h and "ww_feature_test-edges_2" not in h
    np.testing.assert_allclose(h["ww_feature_test-norm"], [s[0] for s in seen], rtol=1e-6)
    np.testing.assert_allclose(h["ww_feature_test-edges_1"], [s[1][1] for s in seen], rtol=1e-6)
    assert len(set(h["ww_feature_test-norm"])) == EPOCHS  # the weights moved, so did the logged norm
    # the monitor's history has them too, and the verdict's dict (for any logger)
    assert cb.history["ww_feature_test-norm"].tolist() == pytest.approx(h["ww_feature_test-norm"])
    assert cb.verdict.to_dict()["ww_feature_test-edges_0"] == pytest.approx(h["ww_feature_test-edges_0"][-1])


def test_unknown_or_misshapen_features_are_refused_at_construction(plugin):
    with pytest.raises(UnknownNameError, match="features: no feature set named 'test-nrom'") as err:
        WeightWatchCallback(features=["test-nrom"])
    assert "test-norm" in str(err.value)  # the registered names are listed
    with pytest.raises(InvalidArgumentError, match=r"features must be a list .*features=\['test-norm'\]"):
        WeightWatchCallback(features="test-norm")
    with pytest.raises(InvalidArgumentError, match="listed twice"):
        WeightWatchCallback(features=["test-norm", "test-norm"])


def test_a_failing_extractor_warns_once_and_training_goes_on(plugin, digits):
    model = paper_cnn()
    cb = WeightWatchCallback(features=["test-broken", "test-norm"], verbose=0)
    with pytest.warns(WeightWatchWarning, match="feature test-broken failed") as caught:
        hist = model.fit(digits.x_train[:256], digits.y_train[:256], epochs=EPOCHS, verbose=0, callbacks=[cb])
    assert len([w for w in caught if "test-broken" in str(w.message)]) == 1
    assert len(hist.history["ww_feature_test-norm"]) == EPOCHS and len(hist.history["loss"]) == EPOCHS
    assert not any(k.startswith("ww_feature_test-broken") for k in hist.history)


@pytest.mark.parametrize("order", ["csv first", "csv last"])
def test_csvlogger_sees_the_ww_values_in_either_order(plugin, digits, tmp_path, order):
    path = tmp_path / "log.csv"
    logger = keras.callbacks.CSVLogger(str(path))
    cb = WeightWatchCallback(features=["test-norm"], verbose=0)
    callbacks = [logger, cb] if order == "csv first" else [cb, logger]
    given = list(callbacks)
    hist = paper_cnn().fit(digits.x_train[:512], digits.y_train[:512], epochs=EPOCHS, verbose=0,
                           callbacks=callbacks)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == EPOCHS
    for key in ("ww_pred_accuracy", "ww_pred_final_accuracy", "ww_doom_probability", "ww_feature_test-norm"):
        assert [float(r[key]) for r in rows] == pytest.approx(hist.history[key]), key
    assert callbacks == given  # the user's list is left as it was (Keras runs a copy)


def test_torch_loop_returns_the_features_in_the_verdict(plugin, digits):
    torch = pytest.importorskip("torch")
    from weightwatch.torch import WeightWatch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    ww = WeightWatch(model, features=["test-norm", "test-edges"], verbose=0)
    verdict = ww.step(1).to_dict()
    assert verdict["ww_feature_test-norm"] == pytest.approx(_norm(to_network(model))[0])
    assert verdict["ww_feature_test-edges_1"] == pytest.approx(_first_last(to_network(model))[1])


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_lightning_logs_the_features(plugin, digits, tmp_path):
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning")
    from weightwatch.lightning import WeightWatchCallback as LightningWatch

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 16), torch.nn.ReLU(),
                                           torch.nn.Linear(16, 10))

        def training_step(self, batch, _):
            xb, yb = batch
            return torch.nn.functional.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    x = torch.tensor(np.asarray(digits.x_train[:256]), dtype=torch.float32).permute(0, 3, 1, 2)
    y = torch.tensor(np.asarray(digits.y_train[:256]), dtype=torch.long)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    cb = LightningWatch(features=["test-norm"], verbose=0)
    module = Module()
    trainer = L.Trainer(max_epochs=2, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        accelerator="cpu", devices=1)
    trainer.fit(module, loader)
    logged = float(trainer.callback_metrics["ww_feature_test-norm"])
    assert logged == pytest.approx(_norm(to_network(module))[0], rel=1e-5)
    assert cb.history["ww_feature_test-norm"].notna().all() and len(cb.history) == 2
