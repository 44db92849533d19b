"""How predictable the plain and the augmented digits zoos are: run from the repo root,

    .venv/bin/python docs/analysis/digits_predictability.py

Reads only the committed tables (zoo_tables/digits.npz, zoo_tables/digits_jitter.npz) and prints, for
both zoos, the held-out R^2 / Kendall tau of a GBM on W_L (checkpoints at epochs >= 1, runs split by
configuration, the same seed and settings for both):

1. at equal zoo size (the same number of training runs drawn from each zoo), and
2. within each training fraction of the paper's A.2 (0.1, 0.25, 0.5, 1.0).

With 1347 training images the 10% fraction leaves 135 images; how well such a run generalises depends
on data the weights cannot show. `digits_jitter` is augmented digits (three jittered copies of every
training image, offline augmentation, which the paper excluded): at 10% a run sees 539 views of about
135 distinct digits. Its parameters were chosen on the held-out split the cards report, so these
numbers describe a product dataset, not evidence of meeting the paper's target.
"""

import numpy as np

from weightwatch.experiments import protocol as ev
from weightwatch.predictors import GBMPredictor, evaluate
from weightwatch.experiments.shipping import SHIP_PARAMS, Table

PARAMS = {**ev.DEFAULT_PARAMS["gbm"], **SHIP_PARAMS, "n_jobs": 2}


def score(table, runs=None, seed=0):
    ok = table.ok()
    if runs is not None:
        names = np.unique(ok.metrics["modeldir"])
        keep = np.random.default_rng(seed).permutation(names)[:runs]
        ok = ok.rows(ok.metrics["modeldir"].isin(keep).to_numpy())
    y, groups = ok.metrics["test_accuracy"].to_numpy(), ok.metrics["modeldir"].to_numpy()
    tr, te = ev.split_rows(groups, seed=seed)
    pred = GBMPredictor(**PARAMS).fit(ok.X[tr], y[tr]).predict(ok.X[te])
    m = evaluate(y[te], pred)
    return m["r2"], m["kendall_tau"], len(set(groups[tr]))


def main():
    tables = {n: Table(f"zoo_tables/{n}.npz") for n in ("digits", "digits_jitter")}
    print("| zoo | runs drawn | training runs | R² | Kendall τ |\n|---|---|---|---|---|")
    for runs in (1000, 4000):
        for name, t in tables.items():
            r2, tau, n = score(t, runs)
            print(f"| {name} | {runs} | {n} | {r2:.4f} | {tau:.4f} |")
    print("\n| zoo | training fraction | runs | R² | Kendall τ |\n|---|---|---|---|---|")
    for name, t in tables.items():
        for frac in (0.1, 0.25, 0.5, 1.0):
            sub = t.rows((t.metrics["config.train_fraction"] == frac).to_numpy())
            r2, tau, _ = score(sub, runs=1000)
            print(f"| {name} | {frac} | 1000 | {r2:.4f} | {tau:.4f} |")


if __name__ == "__main__":
    main()
