"""Verdicts on the calibration zoo's untouched runs: runs trained the way framework users train.

Usage: python benchmarks/verdicts_plain.py [--tables zoo_tables/evidence] [--pretrained pretrained] [--json OUT]

The shipped doom model and forecaster (``plain-doom-gbm``, ``plain-forecast-gbm``) were fitted on the
calibration zoo's ``fit`` part and every setting was chosen on its ``choose`` part
(``weightwatch.experiments.plain_verdicts``); this benchmark reads only the ``measure`` part, which nothing
else touched. Every run is replayed check by check (every epoch) through the callbacks' own path: the doom
model's probability with its domain gate, the one stop policy (patience 2, non-finite weights stop at once),
the forecaster's smoothing and its conformal interval.

Doomed: final accuracy < chance + 0.1; healthy: at least 0.5 and not doomed; in-between: the rest.
Printed per family, optimizer, batch size and input scale, then for the runs of the paper's recipe, then
overall, with the issue's targets beside the measured values.
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
sys.path.insert(0, str(HERE.parent))

from weightwatch import runs  # noqa: E402
from weightwatch.experiments import evidence_tables as et  # noqa: E402
from weightwatch.experiments import plain_verdicts as pv  # noqa: E402

TARGETS = {"doomed_by_3": (">=", 0.85), "healthy_ever": ("<=", 0.005), "coverage_min_epoch": (">=", 0.88),
           "healthy_move_p90": ("<=", 0.05), "auroc_epoch1": (">=", 0.97)}


def auroc(score, positive) -> float:
    score, positive = np.asarray(score, float), np.asarray(positive, bool)
    ok = np.isfinite(score)
    score, positive = score[ok], positive[ok]
    n1, n0 = positive.sum(), (~positive).sum()
    if not n1 or not n0:
        return float("nan")
    from scipy.stats import rankdata

    r = rankdata(score)
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def kendall(a, b) -> float:
    from scipy.stats import kendalltau

    ok = np.isfinite(a) & np.isfinite(b)
    return float(kendalltau(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")


def evaluate(table: dict, doom, forecaster) -> dict:
    """Every measured number of one group of runs (rows of the measure part)."""
    X = table["X"].astype(np.float64)
    if not len(X):
        return None
    finite = ~table["non_finite"].astype(bool)
    p, flags, _, _ = doom.batch(X)
    flags = flags & finite
    stops = pv.replay(table, flags)
    rates = pv.stop_rates(table, stops)
    raw = forecaster.raw(X)
    smoothed = pv.smooth_series(table, raw, forecaster.smoothing)
    ok = forecaster.in_domain(X)
    fin = forecaster.finish(smoothed, X, ok)
    y = table["final_accuracy"].astype(np.float64)
    covered = (fin[:, 1] <= y) & (y <= fin[:, 2])
    epoch = table["epoch"].astype(int)
    by_epoch = {}
    for e in sorted(set(epoch[finite])):
        at = (epoch == e) & finite
        if at.sum() < 5:
            continue
        by_epoch[int(e)] = {"rows": int(at.sum()), "coverage": float(covered[at].mean()),
                            "mae": float(np.abs(fin[at, 0] - y[at]).mean()), "tau": kendall(fin[at, 0], y[at])}
    moves = pv.healthy_moves(table, fin[:, 0])
    e1 = (epoch == 1) & finite
    doomed_run = table["label"] == runs.DOOMED
    return {**rates, "auroc_epoch1": auroc(p[e1], doomed_run[e1]),
            "coverage_min_epoch": min((v["coverage"] for v in by_epoch.values()), default=float("nan")),
            "coverage_all": float(covered[finite].mean()) if finite.any() else float("nan"),
            "healthy_move_p90": float(np.quantile(moves, 0.9)) if len(moves) else float("nan"),
            "healthy_move_max": float(moves.max()) if len(moves) else float("nan"),
            "in_domain": float(ok[finite].mean()) if finite.any() else float("nan"),
            "forecast_rows": int(np.isfinite(fin[:, 0]).sum()), "rows": int(len(X)), "by_epoch": by_epoch}


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def row(name, r) -> str:
    return (f"| {name} | {r['doomed_runs']} / {r['healthy_runs']} / {r['between_runs']} | {_fmt(r['doomed_by_3'])} "
            f"| {_fmt(r['healthy_ever'])} | {_fmt(r['between_ever'])} | {_fmt(r['coverage_min_epoch'])} "
            f"| {_fmt(r['healthy_move_p90'])} | {_fmt(r['auroc_epoch1'])} |")


HEADER = ("| group | runs doomed / healthy / in-between | doomed stopped by epoch 3 | healthy stopped "
          "| in-between stopped | 90% interval coverage (worst epoch) | healthy forecast move p90 (epoch >= 3) "
          "| epoch-1 doomed AUROC |\n|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", default=str(HERE.parent / pv.TABLES), help="evidence tables (default: %(default)s)")
    ap.add_argument("--pretrained", default=str(HERE.parent / "pretrained"),
                    help="where the shipped models are (default: %(default)s)")
    ap.add_argument("--json", default=None, help="also write every number as JSON here")
    ap.add_argument("--part", default="measure", choices=("measure", "choose"),
                    help="which part to report: measure (untouched; the published numbers) or choose (where the "
                         "settings were chosen: for development, never published) (default: %(default)s)")
    ap.add_argument("--cards", action="store_true",
                    help="also (re)write the two models' cards in --pretrained with these numbers")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    doom, forecaster = pv.load_models(args.pretrained)
    from weightwatch.predictors.persist import read_manifest

    version = pv.split_version(read_manifest(Path(args.pretrained) / pv.DOOM_NAME))
    table = pv.load_table(None, args.tables, build=False, version=version)
    measure = et.select(table, table["part"] == args.part)
    if args.cards and args.part != "measure":
        ap.error("--cards publishes numbers: only with --part measure")
    recipe = np.array(["paper" if "-paper-" in c else "plain" for c in measure["cell"]])
    out = {"overall (plain recipe)": evaluate(et.select(measure, recipe == "plain"), doom, forecaster),
           "paper recipe (A.2)": evaluate(et.select(measure, recipe == "paper"), doom, forecaster)}
    groups = {}
    for key in ("family", "optimizer", "batch_size", "input_scale", "dataset"):
        for value in sorted(set(measure[key][recipe == "plain"])):
            mask = (measure[key] == value) & (recipe == "plain")
            groups[f"{key}={value}"] = evaluate(et.select(measure, mask), doom, forecaster)
    runs_total = len(set(measure["run"]))
    print(f"{args.part} part: {runs_total} runs ({len(set(measure['run'][recipe == 'plain']))} plain, "
          f"{len(set(measure['run'][recipe == 'paper']))} paper recipe){', never used to fit or choose' if args.part == 'measure' else ': settings were chosen here'}\n")
    print(HEADER)
    for name, r in {**out, **groups}.items():
        if r is not None:
            print(row(name, r))
    o = out["overall (plain recipe)"]
    print("\nforecast by epoch (plain recipe): epoch, rows, 90% interval coverage, mean abs error, Kendall tau")
    for e, v in o["by_epoch"].items():
        print(f"  {e:3d} {v['rows']:6d}  {v['coverage']:.3f}  {v['mae']:.3f}  {_fmt(v['tau'])}")
    print("\ntargets (untouched plain runs): measured vs target")
    for key, (op, target) in TARGETS.items():
        v = o[key]
        met = (v >= target) if op == ">=" else (v <= target)
        print(f"  {key}: {_fmt(v)} (target {op} {target}) {'met' if met else 'NOT met'}")
    print(f"  every check has a forecast: {o['forecast_rows'] == o['rows']} ({o['forecast_rows']} of {o['rows']})")
    print(f"\n{time.perf_counter() - t0:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({**out, **groups}, indent=2, default=float))
    if args.cards:
        def plain(v):
            return {k: plain(x) for k, x in v.items()} if isinstance(v, dict) else (
                None if isinstance(v, float) and not np.isfinite(v) else v)

        measured = {"command": "python benchmarks/verdicts_plain.py --cards", "runs": runs_total,
                    "headline": plain(out), "groups": plain(groups)}
        (Path(args.pretrained) / pv.MEASURED).write_text(json.dumps(measured, indent=1, default=float) + "\n")
        for path in pv.write_cards(args.pretrained):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
