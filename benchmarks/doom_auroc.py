"""How well can a run's doom be told from its weights after one epoch? The shipped forecaster beside references.

Usage: python benchmarks/doom_auroc.py [--tables zoo_tables] [--epoch 1]

Doomed-run AUROC (final accuracy < chance + 0.1) at zoo epoch ``--epoch``
on the held-out runs of each zoo (the shipped forecaster's
``split["heldout_runs"]``; every model below is fitted on its training runs
only), side by side:

* shipped: ``paper-cnn-early-forecast-gbm`` (one regressor of the final
  accuracy for every zoo, what the callback stops on);
* shipped doom: ``paper-cnn-early-doom-gbm`` (one classifier for every zoo
  on the same features and the setup a callback reads: learning rate,
  largest dropout rate, optimizer kind), ``ww_doom_probability``;
* pooled classifier: a GBM classifier of doomed / not on the same features
  (W_L now, its change since the start, log10 steps, progress), one for
  every zoo;
* per-zoo classifier: the same, fitted on one zoo's training runs only,
  a reference a callback cannot use (it would need to know the dataset);
* per-zoo classifier + A: and also given the run's hyperparameters.

The per-zoo columns estimate how much of a zoo's doom its epoch-1 weights
reveal when the dataset is known; the gap to the pooled columns is what
not knowing the dataset costs.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

HERE = Path(__file__).resolve().parent
CLASSIFIER = {"n_estimators": 400, "learning_rate": 0.03, "num_leaves": 31, "colsample_bytree": 0.5,
              "verbose": -1, "n_jobs": 2, "random_state": 0}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", default=str(HERE.parent / "zoo_tables"))
    p.add_argument("--epoch", type=int, default=1)
    args = p.parse_args(argv)

    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    from weightwatch import pretrained, runs
    from weightwatch.experiments import protocol as ev
    from weightwatch.experiments import shipping
    from weightwatch.experiments import trajectories as tj
    from weightwatch.zoo.architectures import WEIGHT_INITIALIZERS

    t0 = time.perf_counter()
    forecaster = pretrained.load(pretrained.EARLY_PREDICTOR)
    doom = pretrained.load(pretrained.DOOM_PREDICTOR)
    heldout = set(forecaster.manifest_["split"]["heldout_runs"])
    if set(doom.manifest_["split"]["heldout_runs"]) != heldout:
        p.error("the shipped doom model and forecaster were fitted on different splits")
    trajs = {ds: tj.Trajectories.from_table(shipping.Table(Path(args.tables) / f"{ds}.npz"))
             for ds in shipping.TRAJECTORY_TABLES if (Path(args.tables) / f"{ds}.npz").is_file()}
    checks = tj.common_checks(trajs.values())
    if args.epoch not in checks:
        p.error(f"--epoch must be one of the zoos' checks {checks}")

    def hyper(t, rows):
        config = t.config.reset_index(drop=True)[rows]
        return ev.hyperparameter_matrix(config.drop(columns=["epoch"], errors="ignore"), "A",
                                        initializers=WEIGHT_INITIALIZERS)[0]

    def rows_of(t, train, epochs, with_a=False):
        sel = np.isin(t.run_ids, list(heldout)) != train
        X = [t.forecast_features(k, sel) for k in epochs]
        if with_a:
            X = [np.hstack([x, hyper(t, sel)]) for x in X]
        return np.vstack(X), runs.doomed(np.tile(t.final[sel], len(epochs)))

    def fit(parts):
        X, y = (np.vstack([a for a, _ in parts]), np.concatenate([b for _, b in parts]))
        return lgb.LGBMClassifier(**CLASSIFIER).fit(X, y)

    train_rows = {ds: rows_of(t, True, checks) for ds, t in trajs.items()}  # each zoo's, computed once
    pooled = fit(list(train_rows.values()))
    print(f"doomed-run AUROC at zoo epoch {args.epoch} on each zoo's held-out runs (forecaster's split)")
    print(f"{'zoo':15s} {'runs':>5s} {'doomed':>6s} {'shipped':>8s} {'shipped doom':>12s} {'pooled clf':>10s} "
          f"{'per-zoo clf':>11s} {'per-zoo + A':>11s}")
    for ds, t in trajs.items():
        X, doomed = rows_of(t, False, (args.epoch,))
        if not 0 < doomed.sum() < len(doomed):
            continue
        held = np.isin(t.run_ids, list(heldout))
        Xa = np.hstack([X, hyper(t, held)])
        own = fit([train_rows[ds]])
        own_a = fit([rows_of(t, True, checks, with_a=True)])
        cells = [roc_auc_score(doomed, -forecaster.predict(X)),
                 roc_auc_score(doomed, doom.predict(t.doom_features(args.epoch, held))),
                 roc_auc_score(doomed, pooled.predict_proba(X)[:, 1]),
                 roc_auc_score(doomed, own.predict_proba(X)[:, 1]), roc_auc_score(doomed, own_a.predict_proba(Xa)[:, 1])]
        print(f"{ds:15s} {len(doomed):5d} {int(doomed.sum()):6d} " + " ".join(
            f"{c:{w}.3f}" for c, w in zip(cells, (8, 12, 10, 11, 11))))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
