"""Fit, choose and measure the verdict models on the calibration zoo.

Three disjoint parts of the calibration zoo's runs
(:func:`weightwatch.experiments.calibration.part_of`):

* ``fit``: the doom classifier and the forecaster (point and 5%/95%
  quantile boosters) are fitted on its checks;
* ``choose``: every setting is chosen on its runs: the doom threshold (the
  lowest whose replayed stop policy stops at most :data:`BUDGET` of healthy
  runs), the forecast's smoothing (the least smoothing whose healthy forecast
  moves at most :data:`MOVE_TARGET` from epoch 3 on, 90th percentile), the
  conformal offsets per progress bin and the out-of-envelope offset;
* ``measure``: the measure round's cells (:data:`~weightwatch.experiments.calibration.MEASURE_SEEDS`),
  touched by ``benchmarks/verdicts_plain.py`` only.

``python -m weightwatch.experiments.plain_verdicts build --calib DIR`` builds
the evidence tables (cached in ``zoo_tables/evidence/``) and writes both
shipped models to ``pretrained/``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from .. import domain, runs
from ..policy import first_stop
from ..predictors.gbm import GBMPredictor
from ..predictors.persist import save_predictor
from ..inference import VERDICT_DOOM, VERDICT_FORECASTER
from ..verdict_models import DoomModel, Forecaster
from . import evidence_tables as et
from .calibration import CELLS, cells_of, part_of

__all__ = ["load_table", "fit_models", "replay"]

#: Largest share of healthy choose-part runs the chosen threshold may stop.
BUDGET = 0.005
#: Checks in a row the doom evidence must hold before a stop (the callbacks' default patience).
PATIENCE = 2
#: The healthy forecast's 90th-percentile move between consecutive epochs (epoch >= 3) the smoothing aims at.
MOVE_TARGET = 0.04
#: Upper edges of the progress bins of the conformal offsets.
PROGRESS_BINS = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
#: The interval is a 90% one; its conformal offsets are taken at 92% on the choose part, so that the coverage
#: of every epoch (not only the average over a progress bin) stays near 90%.
COVERAGE = 0.90
CONFORMAL_LEVEL = 0.92
DOOM_NAME = "plain-doom-gbm"
FORECAST_NAME = "plain-forecast-gbm"
TABLES = Path("zoo_tables") / "evidence"
DOOM_PARAMS = dict(n_estimators=400, learning_rate=0.05, num_leaves=31, min_child_samples=40,
                   colsample_bytree=0.7, subsample=0.8, objective="binary", n_jobs=2, random_state=0)
FORECAST_PARAMS = dict(n_estimators=400, learning_rate=0.05, num_leaves=31, min_child_samples=40,
                       colsample_bytree=0.7, subsample=0.8, interval=(0.05, 0.95), n_jobs=2, random_state=0)


#: The split the shipped models were made on: 1 until they are refitted on version 2 (the fresh measure round).
SPLIT_VERSION = 2


def split_version(manifest) -> int:
    """The calibration split a model's manifest records (models from before the field: version 1)."""
    return int((manifest or {}).get("split", {}).get("version", 1))


def load_table(calib_dir, tables=TABLES, *, build: bool = True, version: int = SPLIT_VERSION) -> dict:
    """Every built calibration cell's evidence table of split ``version`` (cached per cell), with each row's
    ``part`` and ``label`` (version 2 labels with the test set's majority share as chance where larger than 1/k;
    version 1 with 1/k, as its models were made and measured)."""
    parts = []
    for cell in cells_of(version):
        cache = Path(tables) / f"{cell.name}.npz"
        zoo_dir = Path(calib_dir) / cell.name / "zoo" if calib_dir else None
        if not cache.exists():
            if not build or zoo_dir is None or not (zoo_dir / "zoo.json").exists():
                continue
            et.write(et.from_zoo(zoo_dir, cell=cell.name, family=cell.family, batch_size=cell.batch_size,
                                 input_scale=cell.input_scale), cache)
        parts.append(et.read(cache))
    if not parts:
        raise FileNotFoundError(f"no calibration cell built under {calib_dir} nor cached in {tables}")
    table = et.with_trend(et.concat(parts))
    table["part"] = np.asarray([part_of(r, version) for r in table["run"]])
    table["label"] = labels(table["final_accuracy"], table["num_classes"], table["dataset"] if version >= 2 else None)
    return table


def labels(final_accuracy, num_classes, datasets=None) -> np.ndarray:
    """:func:`weightwatch.runs.label` per row, each with its own class count and (given ``datasets``) its test
    set's majority share as chance when that is larger than 1/k."""
    final_accuracy, num_classes = np.asarray(final_accuracy, float), np.asarray(num_classes, int)
    datasets = np.asarray(datasets if datasets is not None else [""] * len(final_accuracy), dtype=str)
    out = np.empty(len(final_accuracy), dtype=object)
    for k in np.unique(num_classes):
        for name in np.unique(datasets[num_classes == k]):
            at = (num_classes == k) & (datasets == name)
            out[at] = runs.label(final_accuracy[at], int(k), majority=majority_share(name) if name else None)
    return out.astype(str)


@functools.lru_cache(maxsize=None)
def majority_share(dataset: str) -> float:
    """The share of the most frequent class in ``dataset``'s test set (as the zoo splits it)."""
    from ..zoo.datasets import load_dataset

    return runs.majority_share(load_dataset(dataset).y_test)


def _masked(X: np.ndarray, names, seed: int = 0) -> np.ndarray:
    """Training rows as callbacks may see them: a quarter without logs, a tenth without the optimizer, one in
    twenty without the run's planned length."""
    X = X.copy()
    rng = np.random.default_rng(seed)
    names = list(names)
    logs = [names.index(n) for n in names if n.startswith(("log.", "trend."))]  # no logs: no trend either
    setup = [names.index(n) for n in names if n.startswith("setup.log10") or n.startswith("setup.optimizer")]
    X[np.ix_(rng.random(len(X)) < 0.25, logs)] = np.nan
    X[np.ix_(rng.random(len(X)) < 0.10, setup)] = np.nan
    X[rng.random(len(X)) < 0.05, names.index("progress")] = np.nan  # a loop that does not say its length
    return X


def _run_weights(table: dict) -> np.ndarray:
    """Each run weighs 1 in total, whatever its number of epochs."""
    return 1.0 / np.asarray(table["epochs"], np.float64)


def fit_models(table: dict):
    """(doom GBM, forecast GBM) fitted on the fit part's finite checks."""
    fit = et.select(table, (table["part"] == "fit") & ~table["non_finite"].astype(bool))
    X = _masked(fit["X"].astype(np.float64), table["names"])
    doomed = (fit["label"] == runs.DOOMED).astype(np.float64)
    doom = GBMPredictor(**DOOM_PARAMS).fit(X, doomed)
    forecast = GBMPredictor(**FORECAST_PARAMS).fit(X, fit["final_accuracy"].astype(np.float64))
    return doom, forecast


def directions(table: dict) -> list:
    """Per feature, +1 / -1 when doomed fit-part checks lie above / below healthy ones (medians), 0 when neither,
    2 for the statistics of the weights and of their movement (both ways are doomed runs' ways: frozen, dead,
    exploding). The depth and size of the network stay 0: an unfamiliar architecture is no evidence of doom."""
    fit = et.select(table, (table["part"] == "fit") & ~table["non_finite"].astype(bool))
    X = fit["X"].astype(np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature a group never has (BatchNorm's) is NaN
        d = (np.nanmedian(X[fit["label"] == runs.DOOMED], axis=0)
             - np.nanmedian(X[fit["label"] == runs.HEALTHY], axis=0))
    out = np.sign(np.nan_to_num(d)).astype(int)
    for j, name in enumerate(table["names"]):
        if str(name).startswith(("move.", "norm.", "first.", "last.", "middle_", "bn.")):
            out[j] = 2  # frozen, vanishing and exploding weights are all ways doomed runs go
    return out.tolist()


def runs_of(table: dict) -> list:
    """Row indices of each run, in epoch order."""
    order = np.lexsort((table["epoch"], table["run"]))
    runs_sorted = table["run"][order]
    cuts = np.flatnonzero(runs_sorted[1:] != runs_sorted[:-1]) + 1
    return np.split(order, cuts)


def replay(table: dict, evidence_flags: np.ndarray, patience: int = PATIENCE) -> dict:
    """Stop epoch of every run (None: never) under the one stop policy, from each check's doom evidence; a check
    with non-finite weights stops the run at once."""
    groups = runs_of(table)
    width = int(np.max(table["epoch"])) + 1 if len(table["epoch"]) else 1
    evidence = np.zeros((len(groups), width), bool)
    broken = np.full(len(groups), np.inf)
    for g, idx in enumerate(groups):
        e = table["epoch"][idx].astype(int)
        evidence[g, e] = np.asarray(evidence_flags, bool)[idx]
        bad = e[table["non_finite"][idx].astype(bool)]
        if len(bad):
            broken[g] = bad.min()
    at = first_stop(evidence, patience=patience, start=1)
    out = {}
    for g, idx in enumerate(groups):
        stop = min(float(at[g]) if at[g] >= 0 else np.inf, broken[g])
        out[str(table["run"][idx[0]])] = None if not np.isfinite(stop) else int(stop)
    return out


def stop_rates(table: dict, stops: dict, by_epoch: int = 3) -> dict:
    """Shares of doomed runs stopped by ``by_epoch``, of healthy and in-between runs ever stopped."""
    label = {str(r): lab for r, lab in zip(table["run"], table["label"])}
    res = {}
    for lab, key in ((runs.DOOMED, "doomed_by_3"), (runs.HEALTHY, "healthy_ever"), (runs.IN_BETWEEN, "between_ever")):
        rs = [r for r, v in label.items() if v == lab]
        if key == "doomed_by_3":
            hit = [stops[r] is not None and stops[r] <= by_epoch for r in rs]
        else:
            hit = [stops[r] is not None for r in rs]
        res[key] = float(np.mean(hit)) if rs else float("nan")
        res[key.split("_")[0] + "_runs"] = len(rs)
    return res


#: The thresholds the choice tries, lowest first: steps of 0.01, of 0.001 above 0.9 (where doomed and healthy
#: runs' probabilities crowd).
THRESHOLDS = np.unique(np.round(np.concatenate([np.arange(0.20, 0.90, 0.01), np.arange(0.90, 0.9995, 0.001)]), 4))


def choose_threshold(table: dict, p: np.ndarray, budget: float = BUDGET, gate=None) -> tuple:
    """The lowest threshold of :data:`THRESHOLDS` whose replay stops at most ``budget`` of healthy runs (choose
    part only), the highest when none does. ``gate``: per row, whether the doom model's domain gate lets the
    row's evidence count (as the callbacks apply it). A higher threshold flags a subset of the checks, so it
    never stops more runs: the lowest one is found by bisection."""
    allowed = np.ones(len(p), bool) if gate is None else np.asarray(gate, bool)

    def rates(t):
        return stop_rates(table, replay(table, (p >= t) & allowed))

    lo, hi = 0, len(THRESHOLDS) - 1  # the answer lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if rates(THRESHOLDS[mid])["healthy_ever"] <= budget:
            hi = mid
        else:
            lo = mid + 1
    t = float(THRESHOLDS[lo])
    return t, rates(t)


def smooth_series(table: dict, raw: np.ndarray, alpha: float) -> np.ndarray:
    """The forecaster's smoothing applied along every run's checks (rows in table order)."""
    out = raw.copy()
    for idx in runs_of(table):
        prev = None
        prev_epoch = None
        for i in idx:
            if prev is not None and alpha < 1.0:
                a = 1.0 - (1.0 - alpha) ** max(table["epoch"][i] - prev_epoch, 1)
                out[i] = prev + a * (raw[i] - prev)
            prev, prev_epoch = out[i], table["epoch"][i]
    return out


def healthy_moves(table: dict, point: np.ndarray, from_epoch: int = 3) -> np.ndarray:
    moves = []
    for idx in runs_of(table):
        if table["label"][idx[0]] != runs.HEALTHY:
            continue
        e = table["epoch"][idx]
        d = np.abs(np.diff(point[idx]))[(e[1:] >= from_epoch) & (np.diff(e) == 1)]
        moves.append(d)
    return np.concatenate(moves) if moves else np.zeros(0)


def conformal(table: dict, finished: np.ndarray, in_domain: np.ndarray, coverage: float = CONFORMAL_LEVEL) -> tuple:
    """Offsets per progress bin (in-domain rows) and for out-of-envelope rows, from smoothed (point, lo, hi)."""
    y = table["final_accuracy"].astype(np.float64)
    score = np.maximum(finished[:, 1] - y, y - finished[:, 2])
    prog = np.nan_to_num(table["X"][:, list(table["names"]).index("progress")].astype(np.float64))
    b = np.minimum(np.searchsorted(PROGRESS_BINS, prog, side="left"), len(PROGRESS_BINS) - 1)

    def q(s):
        if len(s) < 20:
            return 1.0  # too few rows to say: an interval as wide as [0, 1]
        level = min(1.0, np.ceil((len(s) + 1) * coverage) / len(s))
        return float(np.quantile(s, level, method="higher"))

    offsets = [q(score[(b == i) & in_domain]) for i in range(len(PROGRESS_BINS))]
    return offsets, q(score[~in_domain])


def build(calib_dir, out="pretrained", tables=TABLES) -> dict:
    """Fit on ``fit``, choose on ``choose``, write both models; returns what was chosen."""
    table = load_table(calib_dir, tables)
    finite = ~table["non_finite"].astype(bool)
    names = [str(n) for n in table["names"]]
    doom, forecast = fit_models(table)
    fit_rows = (table["part"] == "fit") & finite
    envelope = domain.fit(table["X"][fit_rows].astype(np.float64), names,
                          num_classes=sorted({int(k) for k in table["num_classes"]}),
                          normalisation=True, input_range=(-1.0, 1.0))
    choose = et.select(table, table["part"] == "choose")
    Xc = choose["X"].astype(np.float64)
    directions_ = directions(table)
    ungated = DoomModel(doom, {"feature_names": names, "domain": envelope,
                               "verdict": {"threshold": 0.0, "patience": PATIENCE, "directions": directions_}})
    p, allowed, _, _ = ungated.batch(Xc)  # with threshold 0, the evidence flags are the domain gate alone
    threshold, rates = choose_threshold(choose, p, gate=allowed)
    manifest_doom = {"feature_names": names, "domain": envelope,
                     "verdict": {"threshold": threshold, "patience": PATIENCE, "directions": directions_}}
    ungated_rates = stop_rates(choose, replay(choose, p >= threshold))
    # the forecaster: smoothing, then conformal offsets, on the choose part
    fc0 = Forecaster(forecast, {"feature_names": names, "domain": envelope, "forecast": {
        "progress_bins": list(PROGRESS_BINS), "offsets": [0.0] * len(PROGRESS_BINS), "ood_offset": 0.0}})
    raw = fc0.raw(Xc)
    alpha, moves = 1.0, None
    for a in (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2):
        sm = smooth_series(choose, raw, a)
        moves = healthy_moves(choose, sm[:, 0])
        alpha = a
        if len(moves) == 0 or np.quantile(moves, 0.9) <= MOVE_TARGET:
            break
    smoothed = smooth_series(choose, raw, alpha)
    ok = fc0.in_domain(Xc)
    base = np.column_stack([np.clip(smoothed[:, 0], 0, 1), np.minimum(smoothed[:, 1], smoothed[:, 0]),
                            np.maximum(smoothed[:, 2], smoothed[:, 0])])
    offsets, ood = conformal(choose, base, ok)
    split = {part: _ids(table, part) for part in ("fit", "choose", "measure")}
    split["version"] = SPLIT_VERSION
    chosen = {"threshold": threshold, "choose_rates": ungated_rates, "choose_rates_gated": rates,
              "smoothing": alpha, "healthy_move_p90_choose": float(np.quantile(moves, 0.9)) if len(moves) else None,
              "offsets": offsets, "ood_offset": ood, "in_domain_choose": float(ok.mean())}
    summary = {"calibration_cells": [c.name for c in CELLS if c.name in set(table["cell"])],
               "rows_fit": int(fit_rows.sum()),
               "runs": {k: v["runs"] for k, v in split.items() if isinstance(v, dict)},
               "built_by": "python -m weightwatch.experiments.plain_verdicts build --calib zoos/calib"}
    common = dict(feature_set="evidence", feature_names=names, architecture_family="any",
                  zoo_summary=summary, overwrite=True)
    save_predictor(doom, Path(out) / DOOM_NAME, name=DOOM_NAME, metrics={"chosen_on_choose": chosen},
                   extra={"split": split, "domain": envelope, "role": VERDICT_DOOM,
                          "verdict": {**manifest_doom["verdict"], "budget": BUDGET,
                                      "chosen_on": "choose"}}, **common)
    save_predictor(forecast, Path(out) / FORECAST_NAME, name=FORECAST_NAME, metrics={"chosen_on_choose": chosen},
                   extra={"split": split, "domain": envelope, "role": VERDICT_FORECASTER,
                          "forecast": {"progress_bins": list(PROGRESS_BINS),
                                       "offsets": offsets, "ood_offset": ood, "smoothing": alpha,
                                       "coverage": COVERAGE, "conformal_level": CONFORMAL_LEVEL,
                                       "chosen_on": "choose"}}, **common)
    return chosen


def load_models(pretrained="pretrained") -> tuple:
    """(DoomModel, Forecaster) as shipped in ``pretrained``."""
    from ..verdict_models import load

    return load(Path(pretrained) / DOOM_NAME), load(Path(pretrained) / FORECAST_NAME)


def _pct(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.1f}%"


def _num(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"


#: Beside the models: what ``benchmarks/verdicts_plain.py --cards`` measured on the untouched part (the cards
#: are rendered from it and the manifests alone).
MEASURED = "plain-verdicts-measured.json"


def write_cards(pretrained, out=None) -> list:
    """The two models' cards (into ``out``, default ``pretrained``), from their manifests and :data:`MEASURED`."""
    from ..predictors.persist import read_manifest

    data = json.loads((Path(pretrained) / MEASURED).read_text())
    measured, groups, runs_measured = data["headline"], data["groups"], data["runs"]
    paths = []
    plain, paper = measured["overall (plain recipe)"], measured["paper recipe (A.2)"]
    rows = "\n".join(
        f"| {name} | {r['doomed_runs']} / {r['healthy_runs']} / {r['between_runs']} | {_pct(r['doomed_by_3'])} | "
        f"{_pct(r['healthy_ever'])} | {_pct(r['between_ever'])} | {_num(r['coverage_min_epoch'])} | "
        f"{_num(r['healthy_move_p90'])} | {_num(r['auroc_epoch1'])} |"
        for name, r in {**measured, **groups}.items() if r is not None)
    for name, what in ((DOOM_NAME, "doom"), (FORECAST_NAME, "forecast")):
        m = read_manifest(Path(pretrained) / name)
        split = m["split"]
        chosen = m["metrics"]["chosen_on_choose"]
        if what == "doom":
            role = (f"Probability that a run ends doomed (final accuracy below chance + 0.1) within its configured "
                    f"epochs. The callbacks stop a run when it is at least **{chosen['threshold']:.3f}** at "
                    f"{PATIENCE} checks in a row (and at once on non-finite weights); outside the calibration runs' "
                    "envelope the evidence counts only when every unusual feature lies the way doomed runs lie.")
            settings = (f"threshold {chosen['threshold']:.3f}: the lowest whose replay stopped at most "
                        f"{100 * BUDGET:.1f}% of the choose part's healthy runs (there: "
                        f"{_pct(chosen['choose_rates_gated']['healthy_ever'])} of healthy, "
                        f"{_pct(chosen['choose_rates_gated']['doomed_by_3'])} of doomed stopped by epoch 3)")
        else:
            role = ("Forecast of the final test accuracy (the end of the configured run) with a 90% interval, "
                    "conformal per progress bin, smoothed over the run's checks; out of the envelope the interval "
                    "takes the offset measured on the choose part's out-of-envelope checks.")
            settings = (f"smoothing {chosen['smoothing']:g} (the least whose healthy forecast moved at most "
                        f"{MOVE_TARGET} from epoch 3 on, 90th percentile, on the choose part: "
                        f"{_num(chosen['healthy_move_p90_choose'])}); conformal offsets per progress bin "
                        f"{', '.join(f'{v:.3f}' for v in chosen['offsets'])} (bins ending at "
                        f"{', '.join(str(b) for b in PROGRESS_BINS)}), out of the envelope {chosen['ood_offset']:.3f}")
        text = f"""# {name}

{role}

Evidence (`weightwatch.evidence`, {len(m['feature_names'])} numbers, any architecture): the weights now
(`W_L-agnostic-bn`), how far they moved since the start and the last check, the dying-ReLU signature per layer,
the training loss and accuracy the framework logs compared with chance, the optimizer's kind and learning rate,
dropout, and progress (epoch / epochs). Nothing counts optimizer steps.

## Provenance

Calibration zoo: `python -m weightwatch.experiments.calibration build --out zoos/calib --jobs 2` (cells, seeds
and ranges in `weightwatch/experiments/calibration.py`){_split_words(split_version(m))}

| part | used for | runs | sha256 of the sorted run ids |
|---|---|---|---|
| fit | fitting the model | {split['fit']['runs']} | `{split['fit']['sha256'][:16]}` |
| choose | every setting below | {split['choose']['runs']} | `{split['choose']['sha256'][:16]}` |
| measure | the numbers below, nothing else | {split['measure']['runs']} | `{split['measure']['sha256'][:16]}` |

Chosen on the choose part: {settings}.

Built by `python -m weightwatch.experiments.plain_verdicts build --calib zoos/calib`.

## Measured on the untouched measure part

`python benchmarks/verdicts_plain.py --cards` ({runs_measured} runs). Doomed: final accuracy < chance + 0.1;
healthy: at least 0.5 and not doomed; in-between: the rest. Every check replays the callbacks' path (patience
{PATIENCE}, every epoch).

| group | runs doomed / healthy / in-between | doomed stopped by epoch 3 | healthy stopped | in-between stopped | 90% interval coverage (worst epoch) | healthy forecast move p90 (epoch >= 3) | epoch-1 doomed AUROC |
|---|---|---|---|---|---|---|---|
{rows}

Plain recipe overall: doomed stopped by epoch 3 {_pct(plain['doomed_by_3'])}, healthy stopped
{_pct(plain['healthy_ever'])}, interval coverage {_num(plain['coverage_all'])} over all checks (worst epoch
{_num(plain['coverage_min_epoch'])}). Paper recipe: {_pct(paper['doomed_by_3'] if paper else float('nan'))} /
{_pct(paper['healthy_ever'] if paper else float('nan'))}.

## Limits

Trained on small networks (paper CNN, a wider CNN, a BatchNorm CNN, MLPs) on digits, 5,000 MNIST images and
small tabular sets, 10 to 30 epochs, batch 16 to 256, the four optimizers above; a network far outside that
(size, depth, data) is out of its envelope: its doom probability is then a stop reason only when it is unusual
the way doomed runs are, and its forecast interval is the wider out-of-envelope one.
"""
        path = Path(out or pretrained) / f"{name}.md"
        path.write_text(text)
        paths.append(path)
    return paths


def _split_words(version: int) -> str:
    if version == 1:
        return "; runs assigned to parts by a hash of their run id."
    return (". Parts: fit and choose split the first round's and the\nextra cells' runs by a hash of their run id; "
            "measure is every run of the measure round's cells (seeds 9001 and\nup), built after the previous "
            "version of these models had been measured, and touched only to report.")


def _ids(table: dict, part: str) -> dict:
    ids = sorted({str(r) for r, p in zip(table["run"], table["part"]) if p == part})
    return {"runs": len(ids), "sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weightwatch.experiments.plain_verdicts",
                                     description="Fit the verdict models on the calibration zoo.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the evidence tables, fit, choose, write pretrained/")
    b.add_argument("--calib", required=True, help="the calibration zoo's directory (one zoo per cell)")
    b.add_argument("--out", default="pretrained", help="where the models are written (default: pretrained)")
    b.add_argument("--tables", default=str(TABLES), help=f"evidence table cache (default: {TABLES})")
    b.add_argument("--no-build", action="store_true", help="use the cached tables only (do not read zoos)")
    t = sub.add_parser("tables", help="build the evidence tables of the cells built so far")
    t.add_argument("--calib", required=True, help="the calibration zoo's directory")
    t.add_argument("--tables", default=str(TABLES), help=f"evidence table cache (default: {TABLES})")
    args = parser.parse_args(argv)
    if args.cmd == "tables":
        table = load_table(args.calib, args.tables)
        print(json.dumps({"rows": int(len(table["X"])), "runs": int(len(set(table["run"])))}))
        return 0
    print(json.dumps(build(None if args.no_build else args.calib, args.out, args.tables), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
