"""Throughput of the population trainer vs. one-at-a-time Keras ``model.fit``.

Paper CNN on sklearn digits upscaled to 16x16 in [-1, 1], batch 32 (or any
zoo dataset: ``--dataset mnist5k --resolution 28``).  Prints CNN-epochs per
second for both paths and their ratio.

Example::

    PYTHONPATH=. .venv/bin/python benchmarks/zoo_throughput.py --population 128 --keras 4 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time


sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def load_data(name: str, resolution: int):
    """A zoo dataset as ``(x_train, y_train, x_test, y_test)``."""
    from weightwatch.zoo.datasets import load_dataset

    d = load_dataset(name, resolution=resolution)
    return d.x_train, d.y_train, d.x_test, d.y_test


def _configs(k: int, epochs: int, seed: int, train_fraction: str):
    from weightwatch.zoo.hparams import sample_configs

    ranges = None
    if train_fraction != "sampled":
        ranges = {"train_fraction": {"dist": "constant", "value": float(train_fraction)}}
    return sample_configs(k, seed=seed, dataset="digits16", epochs=epochs, ranges=ranges)


def run_population(configs, data, epochs, checkpoints_mode, population_size, threads=None, batch_size=32,
                   architecture="paper-cnn"):
    """Train ``configs`` with the population trainer; returns (seconds, n_nan)."""
    from weightwatch.zoo.population import configure_threads, train_population

    if threads:
        configure_threads(threads, 1)
    ckpts = tuple(range(epochs + 1)) if checkpoints_mode == "every" else (epochs,)
    t0 = time.perf_counter()
    res = train_population(configs, *data, checkpoints=ckpts, population_size=population_size, batch_size=batch_size,
                           architecture=architecture)
    return time.perf_counter() - t0, sum(r.status != "ok" for r in res)


def _warmup(data, population_size, batch_size=32):
    """Trace the tf.functions outside the timed region (both activations, dropout on/off,
    train metrics over a shared input and over gathered small subsets).

    Two calls with different shapes make ``reduce_retracing`` produce the
    shape-generic trace that the timed run then reuses.
    """
    from weightwatch.zoo.population import train_population

    for act in ("relu", "tanh"):
        for rate in (0.0, 0.1):
            for fraction in ("1.0", "0.25"):
                for n_cfg in (1, 2):
                    cfgs = _configs(n_cfg, 1, 12345, fraction)
                    for c in cfgs:
                        c.update(activation=act, dropout=rate)
                    small = tuple(a[: 32 + 32 * n_cfg] for a in data)
                    train_population(cfgs, *small, checkpoints=(0, 1), population_size=population_size,
                                     batch_size=batch_size)


def _worker(configs, data, epochs, checkpoints_mode, population_size, batch_size=32):
    from weightwatch.zoo.population import configure_threads

    configure_threads(1, 1)
    _warmup(data, population_size, batch_size)
    return run_population(configs, data, epochs, checkpoints_mode, population_size, batch_size=batch_size)


def run_keras(configs, data, epochs, batch_size=32, architecture="paper-cnn"):
    """Train ``configs`` one at a time with ``model.fit``; returns seconds."""
    import keras

    from weightwatch.zoo.architectures import build_keras_model
    from weightwatch.zoo.population import member_batch_orders

    x, y = data[0], data[1]
    t0 = time.perf_counter()
    for c in configs:
        m = build_keras_model(architecture, c, x.shape[1:])
        m.compile(
            optimizer=keras.optimizers.Adam(c["learning_rate"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        order = member_batch_orders(c, len(x), 1)[0]
        m.fit(x[order], y[order], batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return time.perf_counter() - t0


def families(spec_list: str, resolution: int, population: int, keras_runs: int, epochs: int, batch_size: int):
    """CNN-epochs/s of the population trainer and of Keras ``model.fit`` per family, side by side in one run.

    ``spec_list``: comma-separated ``family[@dataset]`` (default dataset digits).
    """
    from weightwatch.zoo.architectures import get_architecture
    from weightwatch.zoo.datasets import load_dataset

    print(f"per family: {population} networks x {epochs} epochs (population, after tracing) vs {keras_runs} x "
          f"{epochs} (keras fit), batch {batch_size}")
    print(f"{'family':<14} {'dataset':<10} {'params':>7} {'population/s':>13} {'keras/s':>9} {'ratio':>7}")
    for item in spec_list.split(","):
        name, _, ds = item.partition("@")
        d = load_dataset(ds or "digits", resolution=resolution)
        data = (d.x_train, d.y_train, d.x_test, d.y_test)
        arch = get_architecture(name).for_classes(d.num_classes)
        cfgs = _configs(population, epochs, 1, "1.0")
        run_population(cfgs[:2], tuple(a[:96] for a in data), 1, "final", 64, batch_size=batch_size,
                       architecture=arch)  # trace
        t_pop, _ = run_population(cfgs, data, epochs, "final", 64, batch_size=batch_size, architecture=arch)
        run_keras(cfgs[:1], data, 1, batch_size, architecture=arch)  # warm-up
        t_k = run_keras(cfgs[:keras_runs], data, epochs, batch_size, architecture=arch)
        pop, ker = population * epochs / t_pop, keras_runs * epochs / t_k
        from weightwatch.zoo.architectures import num_params

        print(f"{name:<14} {d.name:<10} {num_params(arch, d.input_shape):>7} {pop:>13.1f} {ker:>9.2f} "
              f"{pop / ker:>6.1f}x")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--population", type=int, default=128, help="configs trained by the population trainer")
    p.add_argument("--keras", type=int, default=4, help="configs trained one at a time with Keras")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--population-size", type=int, default=64)
    p.add_argument("--train-fraction", default="1.0", help="'sampled' or a constant fraction (default 1.0)")
    p.add_argument("--checkpoints", choices=["every", "final"], default="every",
                   help="evaluate train+test metrics after every epoch (default) or only at the end")
    p.add_argument("--workers", type=int, default=2, help="also run the population path in this many "
                   "loky processes with 1 thread each (0 or 1 to skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="digits", help="a zoo dataset (default digits)")
    p.add_argument("--resolution", type=int, default=16, help="image side (default 16; mnist5k natively 28)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--families", default="paper-cnn,cnn-deep,cnn-wide,cnn-maxpool,cnn-bn,mlp,mlp-tabular@digits64",
                   help="also time these families (family[@dataset], comma-separated; '' to skip), "
                        "64 networks x 1 epoch each")
    args = p.parse_args(argv)

    data = load_data(args.dataset, args.resolution)
    bs = args.batch_size
    configs = _configs(args.population, args.epochs, args.seed, args.train_fraction)
    print(f"data: {args.dataset} train {data[0].shape}, test {data[2].shape}; batch {bs}; "
          f"train_fraction={args.train_fraction}, checkpoint eval={args.checkpoints}")

    _warmup(data, args.population_size, bs)
    t_pop, n_nan = run_population(configs, data, args.epochs, args.checkpoints, args.population_size, batch_size=bs)
    pop_rate = args.population * args.epochs / t_pop
    print(f"population: {args.population} CNNs x {args.epochs} epochs in {t_pop:.2f}s "
          f"-> {pop_rate:.1f} CNN-epochs/s ({1000 / pop_rate:.1f} ms/CNN-epoch), {n_nan} non-finite")

    kcfg = configs[: args.keras]
    run_keras(kcfg[:1], data, 1, bs)  # warm-up
    t_k = run_keras(kcfg, data, args.epochs, bs)
    k_rate = args.keras * args.epochs / t_k
    print(f"keras fit:  {args.keras} CNNs x {args.epochs} epochs in {t_k:.2f}s "
          f"-> {k_rate:.2f} CNN-epochs/s ({1000 / k_rate:.0f} ms/CNN-epoch)")
    print(f"speed-up (1 process, default threads): {pop_rate / k_rate:.1f}x")

    if args.workers and args.workers > 1:
        from joblib import Parallel, delayed

        chunks = [configs[i:: args.workers] for i in range(args.workers)]
        t0 = time.perf_counter()
        out = Parallel(n_jobs=args.workers, backend="loky")(
            delayed(_worker)(c, data, args.epochs, args.checkpoints, args.population_size, bs) for c in chunks
        )
        wall = time.perf_counter() - t0
        busy = max(t for t, _ in out)
        rate = args.population * args.epochs / busy
        print(f"population x{args.workers} loky workers (1 thread each): slowest worker {busy:.2f}s "
              f"-> {rate:.1f} CNN-epochs/s ({rate / k_rate:.1f}x keras); wall incl. startup+tracing {wall:.1f}s")
    if args.families:
        families(args.families, args.resolution, 64, 2, 1, bs)


if __name__ == "__main__":
    main()
