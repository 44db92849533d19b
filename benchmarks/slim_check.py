"""The slim LightGBM texts predict what the full ones did, bit for bit, on every row of the committed tables.

Usage: python benchmarks/slim_check.py FULL_DIR [--root pretrained] [--tables zoo_tables] [--rows 60000]

``FULL_DIR`` holds the predictors as they were before ``weightwatch.predictors.persist.slim`` (a copy, or a
``git worktree`` of the commit before); each predictor under both is compared on every row of every table whose
features it takes (W_L, W_L-agnostic, W_L-agnostic-bn; ``--rows`` of them drawn at random, 0: all), plus
20,000 random rows, for its main and quantile
models. Prints one line per model text and exits 1 on any difference.
"""

import argparse
import sys
from pathlib import Path

import numpy as np


def rows_for(n_features, tables):
    out = []
    for t in tables:
        for X in (t.X, t.agnostic(), t.agnostic_bn()):
            if X.shape[1] == n_features:
                out.append(X)
    return np.vstack(out) if out else np.empty((0, n_features))


def main(argv=None):
    import lightgbm as lgb

    from weightwatch.experiments.tables import Table

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("full", help="directory of the predictors before slimming")
    p.add_argument("--root", default="pretrained", help="directory of the slim predictors (default: pretrained)")
    p.add_argument("--tables", default="zoo_tables", help="directory of the tables (default: zoo_tables)")
    p.add_argument("--rows", type=int, default=60000, help="table rows per model, drawn at random (0: all; "
                   "default: 60000)")
    args = p.parse_args(argv)
    tables = [Table(f) for f in sorted(Path(args.tables).glob("*.npz"))]
    bad = 0
    for full in sorted(Path(args.full).glob("*/model.txt")):
        name = full.parent.name
        for fn in sorted(full.parent.glob("model*.txt")):
            a = lgb.Booster(model_str=fn.read_text())
            b = lgb.Booster(model_str=(Path(args.root) / name / fn.name).read_text())
            X = rows_for(a.num_feature(), tables)
            rng = np.random.default_rng(0)
            if args.rows and len(X) > args.rows:
                X = X[np.sort(rng.choice(len(X), args.rows, replace=False))]
            X = np.vstack([X, rng.normal(size=(20000, a.num_feature())) * rng.lognormal(size=a.num_feature())])
            same = np.array_equal(a.predict(X), b.predict(X))
            bad += not same
            print(f"{name}/{fn.name}: {len(X)} rows, {'identical' if same else 'DIFFERENT'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
