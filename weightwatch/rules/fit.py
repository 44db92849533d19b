"""Learn rule thresholds from a zoo, and measure rules' false-alarm rates.

``python -m weightwatch.rules.fit ZOO_DIR --out weightwatch/data/dying_relu.json``
fits the dying-ReLU thresholds (first- and last-layer bias maxima, paper
§4.5) and prints, for every built-in weight-only rule, how often it flags
held-out healthy runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .. import runs
from ..errors import InvalidArgumentError
from ..stats import PER_LAYER
from .bounds import total_l2_norm
from .types import RuleContext

__all__ = ["fit_dying_relu_thresholds", "rule_false_alarms", "main"]


def _bias_max_columns(zoo) -> tuple:
    """(first-layer bias max, last-layer bias max) for every row of the view."""
    X, names = zoo.features("W_L")
    n_layers = len(names) // PER_LAYER
    first = X[:, names.index("l0.bias.p100")]
    last = X[:, names.index(f"l{n_layers - 1}.bias.p100")]
    return first, last


def _run_labels(zoo, num_classes: int, chance_margin: float) -> dict:
    """modeldir -> True when the run's final accuracy is below chance + margin."""
    finals = runs.final_accuracy(zoo.metrics)
    return dict(zip(finals.index, runs.doomed(finals.to_numpy(), num_classes, chance_margin)))


def _rows(zoo, epoch, num_classes, chance_margin):
    labels = _run_labels(zoo, num_classes, chance_margin)
    view = zoo.filter(status="ok")
    m = view.metrics
    keep = (m["config.activation"] == "relu").to_numpy() & m["modeldir"].isin(list(labels)).to_numpy()
    keep &= (m["epoch"] >= 1).to_numpy() if epoch is None else m["epoch"].isin(np.atleast_1d(epoch)).to_numpy()
    view = view.select(keep)
    first, last = _bias_max_columns(view)
    y = np.array([labels[d] for d in view.metrics["modeldir"]], bool)
    return view, first, last, y


def _prf(pred: np.ndarray, y: np.ndarray) -> tuple:
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def fit_dying_relu_thresholds(zoo, epoch=None, chance_margin: float = 0.1, num_classes: int = runs.DEFAULT_NUM_CLASSES,
                              test_fraction: float = 0.3, seed: int = 0, grid: int = 60,
                              min_precision: float = 0.9, min_support: int = 5) -> dict:
    """Learn (t_first, t_last) of the dying-ReLU rule from a zoo.

    Rows are ReLU runs' checkpoints at ``epoch`` (None: every checkpoint from
    epoch 1 on); a row is positive when its run's *final* accuracy is below
    ``1/num_classes + chance_margin``. The pair of thresholds on the first-
    and last-layer bias maxima with the most recall among those with training
    precision >= ``min_precision`` (and >= ``min_support`` flagged rows) is
    chosen from a quantile grid; when no pair qualifies both thresholds are
    None (the rule stays inactive). Precision, recall and the false-alarm
    rate (flagged checkpoints of runs that end above chance) are reported on
    the held-out runs.

    Returns
    -------
    dict
        ``t_first``, ``t_last`` and the fit's metrics (JSON-serialisable).
    """
    from ..zoo.storage import Zoo

    if not hasattr(zoo, "features"):
        zoo = Zoo(zoo)
    train, test = zoo.split(test_fraction=test_fraction, seed=seed)
    _, f_tr, l_tr, y_tr = _rows(train, epoch, num_classes, chance_margin)
    _, f_te, l_te, y_te = _rows(test, epoch, num_classes, chance_margin)
    if y_tr.sum() == 0:
        raise InvalidArgumentError("the zoo's training split has no dying ReLU run; build a larger zoo")
    qs = np.linspace(0, 1, grid)
    cand_first = np.unique(np.concatenate([np.quantile(f_tr, qs), [0.0]]))
    cand_last = np.unique(np.concatenate([np.quantile(l_tr, qs), [0.0]]))
    # A false alarm stops a healthy run, so precision comes first: the most
    # recall among pairs with training precision >= min_precision (F1, then
    # smaller thresholds break ties).
    best = None
    for tf in cand_first:
        a = f_tr < tf
        for tl in cand_last:
            flagged = a & (l_tr < tl)
            if flagged.sum() < min_support:
                continue
            p, r, f1 = _prf(flagged, y_tr)
            if p < min_precision:
                continue
            key = (r, f1, -tf, -tl)
            if best is None or key > best[0]:
                best = (key, float(tf), float(tl))
    if best is None:
        t_first = t_last = None
        pred_tr = np.zeros_like(y_tr)
        pred_te = np.zeros_like(y_te)
    else:
        _, t_first, t_last = best
        pred_tr = (f_tr < t_first) & (l_tr < t_last)
        pred_te = (f_te < t_first) & (l_te < t_last)
    p_tr, r_tr, f1 = _prf(pred_tr, y_tr)
    p_te, r_te, f1_te = _prf(pred_te, y_te)
    healthy = ~y_te
    return {
        "t_first": t_first,
        "t_last": t_last,
        "epoch": epoch,
        "min_precision": min_precision,
        "chance_margin": chance_margin,
        "num_classes": num_classes,
        "train": {"rows": int(len(y_tr)), "positives": int(y_tr.sum()), "precision": p_tr, "recall": r_tr,
                  "f1": f1},
        "test": {"rows": int(len(y_te)), "positives": int(y_te.sum()), "precision": p_te, "recall": r_te,
                 "f1": f1_te,
                 "false_alarm_rate": float(pred_te[healthy].mean()) if healthy.any() else float("nan")},
        "zoo": str(getattr(zoo, "path", "")),
        "architecture_family": str(zoo.metrics["config.dnn_architecture"].iloc[0])
        if "config.dnn_architecture" in zoo.metrics else "",
    }


def rule_false_alarms(zoo, rules=("dying_relu", "dead_units", "output_collapse", "exploding_norm"),
                      input_range=(-1.0, 1.0), max_runs: int | None = None,
                      thresholds: dict | None = None, num_classes: int = runs.DEFAULT_NUM_CLASSES) -> dict:
    """Per rule: fraction of healthy runs flagged (any severity) at any checkpoint from epoch 1 on, and
    fraction of failed runs flagged (healthy, doomed: :func:`weightwatch.runs.label`)."""
    from ..plugins import get_registry
    from ..zoo.storage import Zoo

    if not hasattr(zoo, "features"):
        zoo = Zoo(zoo)
    table = get_registry().entries("rules")
    final = zoo.filter(last=True, status="ok").metrics.set_index("modeldir")["test_accuracy"]
    view = zoo.filter(status="ok")
    m = view.metrics
    run_ids = list(final.index)[:max_runs] if max_runs else list(final.index)
    flagged = {r: set() for r in rules}
    for modeldir in run_ids:
        idx = np.flatnonzero((m["modeldir"] == modeldir).to_numpy())
        idx = idx[np.argsort(m["epoch"].to_numpy()[idx])]
        history = []
        for i in idx:
            epoch = int(m["epoch"].iloc[i])
            net = view.network(int(i))
            if epoch >= 1:
                ctx = RuleContext(net, epoch, input_range=input_range, history=tuple(history),
                                  options={"dying_relu_thresholds": thresholds} if thresholds else {})
                for r in rules:
                    if table[r].obj(ctx) is not None:
                        flagged[r].add(modeldir)
                history.append({"epoch": epoch, "l2_norm": total_l2_norm(net)})
    healthy = {d for d in run_ids if runs.healthy(final[d], num_classes)}
    failed = {d for d in run_ids if runs.doomed(final[d], num_classes)}
    return {
        "healthy_runs": len(healthy),
        "failed_runs": len(failed),
        "rules": {r: {"healthy_flagged": len(flagged[r] & healthy) / max(len(healthy), 1),
                      "failed_flagged": len(flagged[r] & failed) / max(len(failed), 1)} for r in rules},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weightwatch.rules.fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("zoo", help="zoo directory (or a build directory holding zoo/)")
    parser.add_argument("--out", default=None, help="write the thresholds JSON here")
    parser.add_argument("--epoch", type=int, default=None, help="fit at one checkpoint epoch (default: all >= 1)")
    parser.add_argument("--chance-margin", type=float, default=0.1)
    parser.add_argument("--false-alarms", action="store_true", help="also measure every rule on the held-out runs")
    args = parser.parse_args(argv)
    from ..zoo.storage import Zoo

    zoo = Zoo(args.zoo)
    result = fit_dying_relu_thresholds(zoo, epoch=args.epoch, chance_margin=args.chance_margin)
    if args.false_alarms:
        _, test = zoo.split(test_fraction=0.3, seed=0)
        result["false_alarms_held_out"] = rule_false_alarms(test, thresholds=result)
    text = json.dumps(result, indent=2, sort_keys=True, default=lambda v: None)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
