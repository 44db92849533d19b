"""How many runs `weightwatch fit` needs for a stable predictor: run from the repo root,

    .venv/bin/python docs/analysis/fit_zoo_size.py [TABLE ...]

Reads only committed tables (default: zoo_tables/digits.npz and zoo_tables/shapes.npz when present). For
each zoo, one fixed held-out set (20% of the runs, split by configuration as `fit` splits) scores GBMs on
W_L fitted with `fit`'s defaults on N training runs, N drawn five times (five seeds); it prints the mean and
the seed-to-seed spread (std) of the held-out R^2 and Kendall tau per N. `weightwatch fit` warns below
:data:`weightwatch.experiments.cli.MIN_STABLE_RUNS` training runs, the smallest N whose R^2 spread stayed
under 0.02 on every zoo measured (docs/fit-zoo-size.md has the numbers).
"""

import sys
from pathlib import Path

import numpy as np

from weightwatch.experiments import protocol as ev
from weightwatch.experiments.shipping import Table
from weightwatch.predictors import GBMPredictor, evaluate

PARAMS = {**ev.DEFAULT_PARAMS["gbm"], **ev.FIXED_PARAMS["gbm"], "n_jobs": 1}
SIZES = (25, 50, 100, 200, 400, 800, 1600)
SEEDS = range(5)


def curve(path):
    ok = Table(path).ok()
    y, groups = ok.metrics["test_accuracy"].to_numpy(), ok.metrics["modeldir"].to_numpy()
    tr, te = ev.split_rows(groups, seed=0)
    train_runs = np.unique(groups[tr])
    rows = []
    for n in SIZES:
        if n > len(train_runs):
            break
        r2, tau = [], []
        for seed in SEEDS:
            keep = np.random.default_rng(seed).permutation(train_runs)[:n]
            sel = tr[np.isin(groups[tr], keep)]
            m = evaluate(y[te], GBMPredictor(**PARAMS).fit(ok.X[sel], y[sel]).predict(ok.X[te]))
            r2.append(m["r2"]), tau.append(m["kendall_tau"])
        rows.append((n, np.mean(r2), np.std(r2), np.mean(tau), np.std(tau)))
        print(f"{Path(path).stem:10s} runs {n:5d}  R2 {rows[-1][1]:.3f} +- {rows[-1][2]:.3f}  "
              f"tau {rows[-1][3]:.3f} +- {rows[-1][4]:.3f}", flush=True)
    return rows


if __name__ == "__main__":
    paths = sys.argv[1:] or [p for p in ("zoo_tables/digits.npz", "zoo_tables/shapes.npz") if Path(p).is_file()]
    for p in paths:
        curve(p)
