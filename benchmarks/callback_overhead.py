"""Per-epoch cost of the Keras callback vs one (tiny) training epoch.

Models: (a) the paper CNN (4970 parameters), (b) ``keras.applications.ResNet50``
(weights=None, 64x64x3, 10 classes; ~23.5M parameters, built locally).
The training epoch is 8 batches of 8 random images. The callback cost is split
into weight transfer (``to_network``), W_L statistics, predictor and rules.

Usage: ``python benchmarks/callback_overhead.py [--repeats 5] [--skip-resnet]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def bench(name, model, input_shape, predictor, repeats):
    import keras

    from weightwatch.adapters import to_network
    from weightwatch.features import get_extractor
    from weightwatch.keras import WeightWatchCallback
    from weightwatch.monitor import Monitor

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, *input_shape)).astype("float32")
    y = rng.integers(0, 10, 64)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # compile / warm up
    epoch = best_of(lambda: model.fit(x, y, batch_size=8, epochs=1, verbose=0), repeats)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        transfer = best_of(lambda: to_network(model), repeats)
        net = to_network(model)
        # a fresh copy each time: no memoised layer_stats
        stats_only = best_of(lambda: get_extractor("W_L")(net.with_layers(net.layers)), repeats)

        cb = WeightWatchCallback(predictor=predictor, verbose=0)
        cb.set_model(model)
        cb.on_train_begin()
        epoch_counter = iter(range(10_000))
        full = best_of(lambda: cb.on_epoch_end(next(epoch_counter), {}), repeats)
        rules_mon = Monitor(predictor=None)
        rules = best_of(lambda: rules_mon.step(to_network(model), 1), repeats)
    params = model.count_params()
    print(f"\n{name}: {params:,} parameters, {len(net)} weighted layers")
    print(f"  training epoch (8 batches x 8)      best {epoch[0]:.3f} s  median {epoch[1]:.3f} s")
    print(f"  callback on_epoch_end (total)       best {full[0]:.3f} s  median {full[1]:.3f} s")
    print(f"    weight transfer (to_network)      best {transfer[0]:.3f} s  median {transfer[1]:.3f} s")
    print(f"    W_L statistics                    best {stats_only[0]:.3f} s  median {stats_only[1]:.3f} s")
    print(f"    rules only incl. transfer         best {rules[0]:.3f} s  median {rules[1]:.3f} s")
    print(f"  ratio callback / training epoch     {full[0] / epoch[0]:.2f}")
    return {"params": params, "epoch": epoch[0], "callback": full[0], "transfer": transfer[0]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args(argv)
    import keras

    from weightwatch.zoo.architectures import build_keras_model

    cfg = dict(activation="relu", dropout=0.0, l2reg=0.0, w_init="he_normal", init_std=0.1, b_init="zeros",
               random_seed=0)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, cpus {os.cpu_count()}")
    bench("paper CNN", build_keras_model("paper-cnn", cfg, (16, 16, 1)), (16, 16, 1), None, args.repeats)
    if not args.skip_resnet:
        model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=10,
                                            classifier_activation=None)
        r = bench("ResNet-50", model, (64, 64, 3), None, args.repeats)
        print(f"  goal <= 0.3 s per epoch for ~25M parameters: {'met' if r['callback'] <= 0.3 else 'NOT met'}")
    print("\n(predictor=None: a GBM prediction on W_L adds ~1 ms; rules run on every check)")


if __name__ == "__main__":
    main()
