"""Stopping verdicts on held-out zoo runs: the default callback against three baselines, side by side.

Usage: python benchmarks/verdicts.py [--tables zoo_tables] [--budget 0.005] [--json OUT]

Every policy sees the same held-out runs (those in the shipped forecaster's
``split["heldout_runs"]``: it never trained on them) at the same checks
(zoo epochs 1, 2, 3, 6, 9, 12, 15 of 18) with the same patience (2), and
stops a run after two consecutive checks below its threshold:

* default callback: the upper bound of the forecast of the final accuracy
  (``paper-cnn-early-forecast-gbm``) below its shipped threshold, only where
  the run is inside the predictors' envelopes (what ``WeightWatchCallback()``
  does on a paper CNN);
* train accuracy so far (what Keras ``EarlyStopping`` on ``accuracy`` sees)
  below a threshold;
* median rule (Optuna's ``MedianPruner`` idea): train accuracy below the
  median of the other runs' train accuracy at the same check, over a
  population of runs (here: the held-out runs of the same zoo);
* current-accuracy predictor (``paper-cnn-pooled-W_L-gbm``) below chance +
  0.1: the previous default.

The thresholds of the train-accuracy baseline and of a budget-matched
current-accuracy predictor are chosen on the runs of the forecaster's
training split for the same false-stop budget as the default (0.5%), so
every row spends the same budget. Doomed: final accuracy < chance + 0.1;
healthy: >= 0.5 and not doomed; in between: neither (weightwatch.runs.label; stops of these are neither
right nor wrong, and reported beside the others). Compute saved: epochs not trained after a stop.
Train accuracy here is the zoo's, measured on the whole training set.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", default=str(HERE.parent / "zoo_tables"))
    p.add_argument("--budget", type=float, default=0.005)
    p.add_argument("--json")
    args = p.parse_args(argv)

    from weightwatch import domain, pretrained, runs
    from weightwatch.experiments import shipping
    from weightwatch.experiments import trajectories as tj

    t0 = time.perf_counter()
    forecaster = pretrained.load(pretrained.EARLY_PREDICTOR)
    current = pretrained.load(pretrained.PAPER_CNN_PREDICTOR)
    fm, cm = forecaster.manifest_, current.manifest_
    verdict, heldout = fm["verdict"], set(fm["split"]["heldout_runs"])
    if heldout & set(cm["split"]["train_runs"]):
        p.error("the shipped current-accuracy predictor trained on some of the forecaster's held-out runs")
    patience = int(verdict["patience"])
    trajs = {ds: tj.Trajectories.from_table(shipping.Table(Path(args.tables) / f"{ds}.npz"))
             for ds in shipping.TRAJECTORY_TABLES if (Path(args.tables) / f"{ds}.npz").is_file()}

    def scores(t, rows):
        cols = {"forecast": [], "inside": [], "train_acc": [], "current": []}
        for k in tj.CHECKS:
            f = t.forecast_features(k, rows)
            cols["forecast"].append(forecaster.predict(f) + verdict["upper_offset"])
            cols["inside"].append(domain.inside([fm["domain"], cm["domain"]], f))
            cols["current"].append(current.predict(t.X[rows, t.column(k)]))
            cols["train_acc"].append(t.train_accuracy[rows, t.column(k)])
        return {k: np.column_stack(v) for k, v in cols.items()}

    held, train = {}, {}
    for ds, t in trajs.items():
        mask = np.isin(t.run_ids, list(heldout))
        held[ds] = dict(scores(t, mask), final=t.final[mask])
        train[ds] = dict(scores(t, ~mask), final=t.final[~mask])

    def cat(part, key):
        return np.concatenate([v[key] for v in part.values()])

    tr_final = cat(train, "final")
    th_train_acc = tj.threshold_for_budget(cat(train, "train_acc"), tr_final, args.budget, patience)
    th_current = tj.threshold_for_budget(cat(train, "current"), tr_final, args.budget, patience)

    def median_below(part):
        out = []
        for v in part.values():  # population = the runs of one zoo, as a pruner sees one study
            med = np.median(v["train_acc"], axis=0, keepdims=True)
            out.append(v["train_acc"] < med)
        return np.vstack(out)

    chance_line = runs.doom_line(10)
    policies = {
        f"paper-CNN forecaster, the previous default (upper bound < {verdict['threshold']:.3f}, in domain)":
            (cat(held, "forecast") < verdict["threshold"]) & cat(held, "inside"),
        f"train accuracy so far < {th_train_acc:.3f} (EarlyStopping's view, same budget)":
            cat(held, "train_acc") < th_train_acc,
        "median rule: train accuracy below the zoo's median at that check (MedianPruner)": median_below(held),
        f"current-accuracy predictor < chance + 0.1 = {chance_line:.2f} (previous default)":
            cat(held, "current") < chance_line,
        f"current-accuracy predictor < {th_current:.3f} (same budget)": cat(held, "current") < th_current,
    }
    final = cat(held, "final")
    results = {name: tj.rates(tj.stops(below, patience), final) for name, below in policies.items()}

    def pct(x):
        return f"{100 * x:5.1f}%"

    n_doomed, n_healthy = int(runs.doomed(final).sum()), int(runs.healthy(final).sum())
    print(f"held-out runs: {len(final)} ({n_doomed} doomed, {n_healthy} healthy, {len(final) - n_doomed - n_healthy} "
          f"in between) of {', '.join(trajs)}; patience {patience}; checks at zoo epochs {list(tj.CHECKS)}")
    print(f"{'policy':<92} {'doomed stopped by ep 1/2/3':>28} {'healthy stopped by ep 1/2/3/ever':>34} "
          f"{'in between stopped by ep 3/ever':>32} {'saved':>7}")
    for name, r in results.items():
        print(f"{name:<92} {pct(r['recall@1'])} {pct(r['recall@2'])} {pct(r['recall@3'])}   "
              f"{pct(r['false_stop@1'])} {pct(r['false_stop@2'])} {pct(r['false_stop@3'])} {pct(r['false_stop'])}"
              f"   {pct(r['between_stop@3'])} {pct(r['between_stop'])}  {pct(r['compute_saved'])}")
    base = results[next(iter(results))]
    print(f"ratio default / train-accuracy baseline, doomed stopped by epoch 3: "
          f"{base['recall@3'] / max(list(results.values())[1]['recall@3'], 1e-9):.2f}x")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
