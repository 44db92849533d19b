"""``make demo``: watch three real Keras trainings on sklearn's digits.

A healthy configuration, a slow starter (a quarter of the training set:
near chance for the first epochs, healthy at the end) and one that the zoo
shows dies (ReLU, learning rate 0.4): all train with ``WeightWatchCallback(stop_on_doom=True)``,
which prints the predicted accuracy now, the forecast of the final accuracy
with its 90% interval, the doom probability and the verdict every epoch,
and stops the doomed run early. At the end: predicted vs actual test
accuracy.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

RUNS = (
    ("healthy", {"activation": "relu", "w_init": "he_normal", "learning_rate": 1e-3, "dropout": 0.0,
                 "l2reg": 1e-6, "init_std": 0.05, "b_init": "zeros", "random_seed": 1}),
    ("slow", {"activation": "relu", "w_init": "he_normal", "learning_rate": 1e-3, "dropout": 0.0,
              "l2reg": 1e-6, "init_std": 0.05, "b_init": "zeros", "random_seed": 1, "train_fraction": 0.25}),
    ("dying", {"activation": "relu", "w_init": "he_normal", "learning_rate": 0.4, "dropout": 0.0,
               "l2reg": 1e-6, "init_std": 0.05, "b_init": "zeros", "random_seed": 1}),
)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr pointed at /dev/null.

    Its C++ start-up lines (absl's "All log messages before absl::InitializeLog()", oneDNN's notice)
    ignore ``TF_CPP_MIN_LOG_LEVEL``. Only the demo does this: the library never touches the user's
    stderr or environment. A Python error still shows, raised after stderr is back.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    try:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no file descriptor 2 to redirect
        import tensorflow  # noqa: F401
        return
    os.dup2(null, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def run(epochs: int = 18, out=sys.stdout) -> list:
    """Train the three runs; per run ``(name, epochs trained, predicted accuracy, its interval, actual accuracy,
    stopped, seconds, the callback's history)``."""
    _import_tensorflow_quietly()
    import keras
    import numpy as np

    from .keras import WeightWatchCallback
    from .pretrained import predict_accuracy
    from .zoo.architectures import build_keras_model, get_architecture
    from .zoo.datasets import load_digits

    data = load_digits(16)
    spec = get_architecture("paper-cnn")
    summary = []
    for name, config in RUNS:
        fraction = config.get("train_fraction", 1.0)
        n = int(len(data.x_train) * fraction)
        print(f"\n=== {name} run: paper CNN, {config['activation']}, {config['w_init']}, "
              f"learning rate {config['learning_rate']:g}, {n} training images ===", file=out, flush=True)
        keras.utils.set_random_seed(config["random_seed"])
        model = build_keras_model(spec, config, data.input_shape)
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        ww = WeightWatchCallback(stop_on_doom=True, verbose=1)
        t0 = time.perf_counter()
        model.fit(data.x_train[:n], data.y_train[:n], batch_size=32, epochs=epochs, verbose=0, callbacks=[ww])
        took = time.perf_counter() - t0
        logits = model.predict(data.x_test, verbose=0)
        actual = float((np.argmax(logits, axis=1) == data.y_test).mean())
        pred = predict_accuracy(model)
        done = ww.stopped_epoch or epochs
        summary.append((name, done, pred.accuracy, pred.interval, actual, ww.stopped_epoch is not None, took,
                        ww.history))
    print("\n=== summary (test set: 450 held-out digits) ===", file=out)
    print(f"{'run':8s} {'epochs':>6s} {'predicted':>10s} {'interval':>13s} {'actual':>7s} {'stopped':>8s} {'time':>6s}",
          file=out)
    for name, done, pred, interval, actual, stopped, took, _ in summary:
        iv = f"{interval[0]:.2f}-{interval[1]:.2f}" if interval else "-"
        print(f"{name:8s} {done:6d} {pred:10.3f} {iv:>13s} {actual:7.3f} {'yes' if stopped else 'no':>8s} {took:5.1f}s",
              file=out)
    print(f"predictors: {pred_name()}", file=out)
    return summary


def pred_name() -> str:
    from .pretrained import PAPER_CNN_PREDICTOR, VERDICT_DOOM_MODEL, VERDICT_FORECASTER_MODEL, manifest

    m = manifest(PAPER_CNN_PREDICTOR)
    v = manifest(VERDICT_DOOM_MODEL)["verdict"]
    return (f"{PAPER_CNN_PREDICTOR} (accuracy now; held-out R² {m['metrics']['r2']['mean']:.3f} on its zoos), "
            f"{VERDICT_FORECASTER_MODEL} (final accuracy and its 90% interval), {VERDICT_DOOM_MODEL} (p_doom: "
            f"stops a run when it is at least {v['threshold']:.3f} at {v['patience']} checks in a row; "
            "pretrained/plain-doom-gbm.md)")


if __name__ == "__main__":
    run()
