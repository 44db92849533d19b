"""The default callback on user-style runs trained with plain Keras ``model.fit``, never part of any zoo.

Usage: python benchmarks/user_runs.py [--runs 192] [--epochs 10] [--seed 1000] [--json OUT]

The zoos' runs follow the paper's recipe (A.2 initialisers and their
standard deviations, L2, dropout, 18 epochs, Adam). A user's paper-CNN run
usually does not: Keras' default initialisers, no L2 or dropout, another
optimizer, another length. Here every run is the paper CNN on sklearn's
digits (16x16, [-1, 1]), with per run:

* optimizer Adam, SGD with momentum 0.9 or RMSprop, learning rate
  log-uniform over a range per optimizer that reaches past what trains
  (so that some runs are doomed);
* Keras initialiser he_normal, glorot_uniform or he_uniform, biases zero;
* activation relu or tanh; training fraction 0.25, 0.5 or 1; batch 32 or 64;
* ``--epochs`` epochs (default 10, not the zoos' 18).

``WeightWatchCallback()`` with default arguments watches each run
(``stop_on_doom=False``, so that every run's final accuracy is known; the
run would have stopped at its first epoch with ``ww_doomed`` = 1). Printed,
side by side: how many healthy runs would have been stopped (and when) and
how many doomed ones by epoch 3; how close ``ww_pred_accuracy`` (accuracy
now) and ``ww_pred_final_accuracy`` (the forecast) are to the real test
accuracy, in domain and out; how well ``ww_doom_probability`` and the
forecast rank doomed runs. Healthy: final accuracy >= chance + 0.3;
doomed: < chance + 0.1.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

OPTIMIZERS = {"adam": (1e-4, 0.3), "sgd_momentum": (1e-3, 3.0), "rmsprop": (1e-4, 0.1)}
INITIALIZERS = ("he_normal", "glorot_uniform", "he_uniform")


def sample_configs(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        opt = str(rng.choice(list(OPTIMIZERS)))
        lo, hi = OPTIMIZERS[opt]
        out.append({"run": i, "optimizer": opt, "learning_rate": float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
                    "kernel_initializer": str(rng.choice(INITIALIZERS)), "activation": str(rng.choice(["relu", "tanh"])),
                    "train_fraction": float(rng.choice([0.25, 0.5, 1.0])), "batch_size": int(rng.choice([32, 64])),
                    "seed": int(rng.integers(2**31 - 1))})
    return out


def train(cfg: dict, data, epochs: int, record: bool = False) -> dict:
    """One run, watched by the default callback; ``record``: also W_L at the start and after every epoch."""
    import keras

    from weightwatch.adapters import to_network
    from weightwatch.features import get_extractor

    from weightwatch.keras import WeightWatchCallback

    xtr, ytr, xte, yte = data
    keras.utils.set_random_seed(cfg["seed"])
    n = max(1, int(round(cfg["train_fraction"] * len(xtr))))
    keep = np.random.default_rng(cfg["seed"]).permutation(len(xtr))[:n]
    layers = [keras.Input(xtr.shape[1:])]
    for _ in range(3):
        layers.append(keras.layers.Conv2D(16, 3, strides=2, padding="same", activation=cfg["activation"],
                                          kernel_initializer=cfg["kernel_initializer"]))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, kernel_initializer=cfg["kernel_initializer"])]
    model = keras.Sequential(layers)
    lr = cfg["learning_rate"]
    opt = {"adam": lambda: keras.optimizers.Adam(lr), "rmsprop": lambda: keras.optimizers.RMSprop(lr),
           "sgd_momentum": lambda: keras.optimizers.SGD(lr, momentum=0.9)}[cfg["optimizer"]]()
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    accs, w_l, steps = [], [], []
    extract = get_extractor("W_L")

    def weights_now(model):
        if record:
            x = extract(to_network(model))
            w_l.append([float(v) for v in x]), steps.append(int(model.optimizer.iterations.numpy()))

    class TestAccuracy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            weights_now(self.model)

        def on_epoch_end(self, epoch, logs=None):
            weights_now(self.model)
            with np.errstate(invalid="ignore"):
                logits = self.model.predict(xte, verbose=0, batch_size=512)
            accs.append(float((logits.argmax(1) == yte).mean()) if np.isfinite(logits).all() else 0.0)

    watch = WeightWatchCallback(verbose=0)
    hist = model.fit(xtr[keep], ytr[keep], epochs=epochs, batch_size=cfg["batch_size"], verbose=0,
                     callbacks=[TestAccuracy(), watch])
    h = hist.history
    return {**cfg, "test_accuracy": accs, **({"W_L": w_l, "steps": steps} if record else {}),
            **{k: [float(v) for v in h.get(k, [math.nan] * epochs)]
               for k in ("ww_pred_accuracy", "ww_pred_final_accuracy", "ww_doom_probability", "ww_in_domain",
                         "ww_doomed")}}


def _tau(a, b) -> float:
    from weightwatch.predictors import kendall_tau

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(kendall_tau(a[ok], b[ok])) if ok.sum() > 2 else math.nan


def report(results: list, epochs: int) -> list:
    from weightwatch import runs

    final = np.array([r["test_accuracy"][-1] for r in results])
    healthy, doomed = runs.healthy(final, 10), runs.doomed(final, 10)
    flagged = np.array([next((e + 1 for e, d in enumerate(r["ww_doomed"]) if d == 1.0), math.inf) for r in results])
    lines = [f"runs: {len(results)} ({healthy.sum()} healthy, {doomed.sum()} doomed, "
             f"{len(results) - healthy.sum() - doomed.sum()} in between), {epochs} epochs each"]
    stopped_h = healthy & np.isfinite(flagged)
    detail = ", ".join(f"run {results[i]['run']} ({results[i]['optimizer']} lr {results[i]['learning_rate']:.2g}, "
                       f"final {final[i]:.2f}) at epoch {int(flagged[i])}" for i in np.flatnonzero(stopped_h))
    lines.append(f"healthy runs the default callback would stop: {stopped_h.sum()} of {healthy.sum()} "
                 f"({stopped_h.sum() / max(healthy.sum(), 1):.1%})" + (f": {detail}" if detail else ""))
    for by in (1, 2, 3):
        lines.append(f"doomed runs stopped by epoch {by}: {(doomed & (flagged <= by)).sum()} of {doomed.sum()} "
                     f"({(doomed & (flagged <= by)).sum() / max(doomed.sum(), 1):.1%})")
    lines.append(f"doomed runs stopped ever: {(doomed & np.isfinite(flagged)).sum()} of {doomed.sum()}")
    between = ~healthy & ~doomed  # neither: a stop here is neither caught nor false
    lines.append(f"in-between runs stopped by epoch 3: {(between & (flagged <= 3)).sum()} of {between.sum()}, "
                 f"ever: {(between & np.isfinite(flagged)).sum()} of {between.sum()}")
    lines.append("")
    lines.append("                       rows  in domain  MAD in domain  MAD out  tau in domain")
    for key, label in (("ww_pred_accuracy", "accuracy now"), ("ww_pred_final_accuracy", "forecast of final")):
        pred = np.array([r[key] for r in results])  # runs x epochs
        target = np.array([r["test_accuracy"] for r in results]) if key == "ww_pred_accuracy" else \
            np.repeat(final[:, None], epochs, axis=1)
        dom = np.array([r["ww_in_domain"] for r in results]) == 1.0
        ok = np.isfinite(pred)
        err = np.abs(pred - target)
        mad_in = float(np.mean(err[ok & dom])) if (ok & dom).any() else math.nan
        mad_out = float(np.mean(err[ok & ~dom])) if (ok & ~dom).any() else math.nan
        lines.append(f"{label:20s} {ok.sum():6d} {(ok & dom).sum():10d} {mad_in:14.3f} {mad_out:8.3f} "
                     f"{_tau(target[ok & dom], pred[ok & dom]):14.3f}")
    f = np.array([r["ww_pred_final_accuracy"] for r in results])
    from weightwatch import pretrained

    manifest = pretrained.manifest(pretrained.EARLY_PREDICTOR)
    offset = manifest["verdict"]["upper_offset"]
    dom = (np.array([r["ww_in_domain"] for r in results]) == 1.0) & np.isfinite(f)
    covered = final[:, None] <= f + offset
    lines.append(f"forecast upper bound (forecast + {offset:.3f}) at or above the final accuracy: "
                 f"{covered[dom].mean():.1%} of in-domain checks, {covered[dom & healthy[:, None]].mean():.1%} of "
                 f"healthy runs' (held-out zoo runs: {manifest['metrics']['upper_bound_coverage']:.1%})")
    lines.append("forecast vs final, by epoch: " + ", ".join(
        f"epoch {e + 1}: tau {_tau(final, f[:, e]):.3f}, MAD {np.nanmean(np.abs(f[:, e] - final)):.3f}"
        for e in sorted({0, 2, epochs - 1})))
    lines.append(_doom_ranking(results, final, doomed))
    return lines


def _doom_ranking(results: list, final, doomed) -> str:
    """Doomed-run AUROC of the doom probability and of the forecast, on the runs that have a doom probability."""
    from sklearn.metrics import roc_auc_score

    p = np.array([r["ww_doom_probability"] for r in results])
    f = np.array([r["ww_pred_final_accuracy"] for r in results])
    cells = []
    for e in (0, 2):
        ok = np.isfinite(p[:, e]) & np.isfinite(f[:, e])
        if 0 < doomed[ok].sum() < ok.sum():
            cells.append(f"epoch {e + 1}: {roc_auc_score(doomed[ok], p[ok, e]):.3f} vs "
                         f"{roc_auc_score(doomed[ok], -f[ok, e]):.3f} ({ok.sum()} runs, {doomed[ok].sum()} doomed)")
    return ("doomed-run AUROC, doom probability vs forecast, on runs with a doom probability (in its domain): "
            + (", ".join(cells) or "too few runs"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=192)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--json", help="write every run's per-epoch numbers here")
    a = p.parse_args(argv)
    if a.runs < 1 or a.epochs < 3:
        p.error("--runs must be >= 1 and --epochs >= 3")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import logging

    from weightwatch.zoo.datasets import load_digits

    logging.getLogger("weightwatch").setLevel(logging.ERROR)  # the once-per-run out-of-domain notes
    d = load_digits(16)
    data = (d.x_train, d.y_train, d.x_test, d.y_test)
    t0 = time.time()
    results = [train(cfg, data, a.epochs, record=bool(a.json)) for cfg in sample_configs(a.runs, a.seed)]
    print(f"data: sklearn digits 16x16, train {len(d.x_train)}, test {len(d.x_test)}; {time.time() - t0:.0f} s")
    print("\n".join(report(results, a.epochs)))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh)


if __name__ == "__main__":
    main()
