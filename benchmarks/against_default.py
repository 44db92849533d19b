"""Does a per-dataset paper-CNN predictor beat the default (pooled) one on its own data? Measured on the same rows.

Usage: python benchmarks/against_default.py [--root pretrained] [--tables zoo_tables] [--out FILE]

For each ``paper-cnn-<dataset>-W_L-gbm`` under ``--root``: the rows of its zoo table (trained checkpoints of
finished runs) whose run neither it nor the default was fitted on (each manifest's ``split.train_runs``), both
predictors' Kendall τ of the test accuracy there, and the difference. Writes ``--out`` (default:
``<root>/against-default-measured.json``), which the model cards print ("beats the default by X on Y").
"""

import argparse
import json
from pathlib import Path

import numpy as np


def measure(root, tables) -> dict:
    from weightwatch.experiments.tables import PAPER_CNN_DATASETS, Table
    from weightwatch.predictors import load_predictor
    from weightwatch.predictors.metrics import kendall_tau
    from weightwatch.pretrained import PAPER_CNN_PREDICTOR

    root, tables = Path(root), Path(tables)
    default = load_predictor(root / PAPER_CNN_PREDICTOR)
    default_train = set(default.manifest_["split"]["train_runs"])
    out = {"default": PAPER_CNN_PREDICTOR, "command": "python benchmarks/against_default.py", "predictors": {}}
    for ds in PAPER_CNN_DATASETS:
        name = f"paper-cnn-{ds}-W_L-gbm"
        if not (root / name / "manifest.json").is_file() or not (tables / f"{ds}.npz").is_file():
            continue
        own = load_predictor(root / name)
        ok = Table(tables / f"{ds}.npz").ok()
        runs = ok.metrics["modeldir"].astype(str)
        held = ~runs.isin(default_train | set(own.manifest_["split"]["train_runs"])).to_numpy()
        rows = ok.rows(held)
        y = rows.metrics["test_accuracy"].to_numpy()
        tau = (float(kendall_tau(y, own.predict(rows.X))), float(kendall_tau(y, default.predict(rows.X))))
        out["predictors"][name] = {"dataset": ds, "rows": int(held.sum()),
                                   "runs": int(rows.metrics["modeldir"].nunique()), "tau": tau[0],
                                   "default_tau": tau[1], "tau_gain": tau[0] - tau[1]}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", default="pretrained", help="directory of the predictors (default: pretrained)")
    p.add_argument("--tables", default="zoo_tables", help="directory of the tables (default: zoo_tables)")
    p.add_argument("--out", default=None, help="JSON written (default: <root>/against-default-measured.json)")
    args = p.parse_args(argv)
    res = measure(args.root, args.tables)
    out = Path(args.out) if args.out else Path(args.root) / "against-default-measured.json"
    out.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    print(f"{'predictor':36s}{'rows':>7s}{'runs':>6s}{'tau':>8s}{'default':>9s}{'gain':>8s}")
    for name, r in res["predictors"].items():
        print(f"{name:36s}{r['rows']:7d}{r['runs']:6d}{r['tau']:8.3f}{r['default_tau']:9.3f}{r['tau_gain']:+8.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
