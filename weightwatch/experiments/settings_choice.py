"""Each tuned constant of the shipped predictors chosen again on validation runs only, and recorded as data.

``python -m weightwatch.experiments.settings_choice --tables zoo_tables --out pretrained`` writes
``pretrained/settings-choices.json`` (:data:`RECORD_FILE`), then re-renders the model cards, whose Provenance
section (:mod:`.provenance`) reads it.

Validation runs are carved from the runs that fit the shipped predictors and never from runs that any card
measures: the *pool* is every run of the zoo tables outside every shipped manifest's ``split.heldout_runs`` (the
user runs of ``benchmarks/user_runs.py`` are in no table, and are taken out all the same); a run of the pool is a
validation run when the sha256 of its id falls in the first :data:`VALIDATION_SHARE` of the hash range
(:func:`is_validation`, a fixed function of the id), and the pool's other runs are the *choice-fit* runs. Every
candidate of a setting is fitted on the choice-fit runs and scored on the validation runs; the rule that picks
one is fixed beforehand (``criterion``) and each setting is chosen with the others at their shipped values. The
record holds, per setting: the candidates and their scores, the one chosen, the shipped one, whether they
differ, the validation runs (listed, with their sha256) and the choice-fit runs (count and sha256).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .. import policy, runs
from .._files import atomic_write_text
from ..errors import WeightWatchError
from . import protocol as ev
from .fitting import (DOOM_PARAMS, EARLY_PARAMS, FALSE_STOP_BUDGET, PATIENCE, SAFETY, SHIP_PARAMS, UPPER_COVERAGE,
                      _choose_threshold, _gbm)
from . import provenance
from .provenance import RECORD_FILE, USER_RUNS, list_sha256, read_record
from .tables import PAPER_CNN_DATASETS, PAPER_CNN_TABLES, TRAJECTORY_TABLES, Table

__all__ = ["VALIDATION_SHARE", "RECORD_FILE", "COMMAND", "SETTING_NAMES", "SettingsChoiceError", "is_validation",
           "measured_runs", "carve", "choose", "write_record", "main"]

log = logging.getLogger(__name__)

#: The share of the pool (runs no card measures) kept apart to choose settings on.
VALIDATION_SHARE = 0.25
#: The command that writes the record (:data:`RECORD_FILE`), from a fresh clone.
COMMAND = "python -m weightwatch.experiments.settings_choice --tables zoo_tables --out pretrained"
#: The tuned constants, in the order they are chosen (the trajectory ones share the shipped forecaster's fits).
SETTING_NAMES = ("SHIP_PARAMS", "TRAJECTORY_TABLES", "verdict", "EARLY_PARAMS", "DOOM_PARAMS")
#: LightGBM threads of every candidate fit (the machine is shared).
THREADS = 1
#: The default GBM settings the tuned ones were compared with (the protocol's: 300 trees).
DEFAULTS = {}


class SettingsChoiceError(WeightWatchError):
    """The settings cannot be chosen from these inputs (no shipped manifests, no tables, an unknown setting)."""


def is_validation(run_id: str, share: float = VALIDATION_SHARE) -> bool:
    """True when the sha256 of ``run_id`` falls in the first ``share`` of the hash range (fixed per run id)."""
    return runs.hash_share(run_id) < share


def measured_runs(root) -> set:
    """Every run that a shipped manifest under ``root`` lists in ``split.heldout_runs`` (what its card measures);
    :class:`SettingsChoiceError` when there is none."""
    out = provenance.measured_runs(root)
    if not out:
        raise SettingsChoiceError(f"{root}: no shipped manifest with split.heldout_runs; the validation runs must be "
                                  "carved away from the runs the cards measure")
    return out


def carve(run_ids, measured, share: float = VALIDATION_SHARE) -> tuple:
    """(choice-fit runs, validation runs) of ``run_ids``: the pool is the runs outside ``measured`` and the user
    runs; its validation part is :func:`is_validation`'s, the rest fits the candidates."""
    pool = set(map(str, run_ids)) - set(measured) - set(USER_RUNS)
    validation = {r for r in pool if is_validation(r, share)}
    return pool - validation, validation


# ---------------------------------------------------------------- scores


def _r2_tau(y, p) -> dict:
    from ..predictors import evaluate

    m = evaluate(y, p)
    return {"r2": float(m["r2"]), "kendall_tau": float(m["kendall_tau"])}


def _auroc(doomed, score):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(doomed, score)) if 0 < doomed.sum() < len(doomed) else None


def _mean_auroc(per: dict, what: str) -> float:
    """The mean of the AUROCs in ``per`` that exist (a validation set with no doomed or no other run has none)."""
    values = [v["doomed_auroc_epoch_1"] for v in per.values() if v["doomed_auroc_epoch_1"] is not None]
    if not values:
        raise SettingsChoiceError(f"{what}: no validation set holds both doomed and other runs")
    return float(np.mean(values))


def _runs_entry(fit: set, validation: set) -> dict:
    return {"validation_runs": sorted(validation), "validation_sha256": list_sha256(validation),
            "fit_runs": {"runs": len(fit), "sha256": list_sha256(fit)}}


def _named(constant: str, current, alternatives: dict) -> tuple:
    """([(name, value)], shipped name): the shipped value first, named as the alternative it equals or else as its
    ``constant``, then the other alternatives."""
    same = next((n for n, v in alternatives.items() if v == current), None)
    shipped = same or constant
    return [(shipped, current)] + [(n, v) for n, v in alternatives.items() if n != same], shipped


def _pick_max(candidates, key) -> str:
    """The name of the candidate with the highest ``score[key]`` (the first one on a tie: the shipped one)."""
    return max(candidates, key=lambda c: c["score"][key])["name"]


# ---------------------------------------------------------------- SHIP_PARAMS


def _ship_sets(tables: dict, measured) -> list:
    """The validation sets of the GBM settings: each A.2 paper-CNN table on its own (W_L, as its per-dataset
    predictor), the MLP tables pooled and the BatchNorm tables pooled (W_L-agnostic(-bn), as their predictors)."""
    sets = []
    for ds in PAPER_CNN_DATASETS:
        if ds in tables:
            sets.append((ds, [tables[ds].ok()], lambda t: t.X))
    mlps = [t.ok() for t in tables.values() if t.is_mlp]
    if mlps:
        sets.append(("MLP tables", mlps, lambda t: t.agnostic()))
    bns = [t.ok() for t in tables.values() if t.has_batchnorm]
    if bns:
        sets.append(("BatchNorm tables", bns, lambda t: t.agnostic_bn()))
    out = []
    for name, oks, features in sets:
        X = np.vstack([features(o) for o in oks])
        y = np.concatenate([o.metrics["test_accuracy"].to_numpy() for o in oks])
        g = np.concatenate([o.metrics["modeldir"].to_numpy().astype(str) for o in oks])
        fit, val = carve(g, measured)
        out.append((name, X, y, g, np.isin(g, list(fit)), np.isin(g, list(val))))
    return out


def choose_ship_params(tables: dict, measured, seed: int = 0) -> dict:
    """SHIP_PARAMS against the defaults: mean validation R² over :func:`_ship_sets`."""
    sets = _ship_sets(tables, measured)
    if not sets:
        raise SettingsChoiceError("SHIP_PARAMS: no paper-CNN, MLP or BatchNorm table")
    candidates, (named, shipped) = [], _named("SHIP_PARAMS", SHIP_PARAMS, {"defaults": DEFAULTS})
    for name, params in named:
        per = {}
        for set_name, X, y, g, fit, val in sets:
            model = _gbm(interval=None, **params, n_jobs=THREADS).fit(X[fit], y[fit])
            per[set_name] = _r2_tau(y[val], model.predict(X[val]))
            log.info("SHIP_PARAMS %s on %s: %s", name, set_name, per[set_name])
        candidates.append({"name": name, "value": _gbm_settings(params),
                           "score": {"mean_r2": float(np.mean([v["r2"] for v in per.values()])),
                                     "mean_kendall_tau": float(np.mean([v["kendall_tau"] for v in per.values()]))},
                           "per_set": per})
    fit_runs = set().union(*(set(g[f]) for _, _, _, g, f, _ in sets))
    val_runs = set().union(*(set(g[v]) for _, _, _, g, _, v in sets))
    return {"what": "GBM settings of every accuracy-now predictor (`SHIP_PARAMS` in "
                    "`weightwatch/experiments/fitting.py`) against the protocol's defaults",
            "criterion": "highest mean validation R² over the sets (each A.2 paper-CNN table alone on W_L; the MLP "
                         "tables and the BatchNorm tables each pooled on W_L-agnostic(-bn) features)",
            "tables": [s[0] for s in sets], "candidates": candidates, "shipped": shipped,
            "chosen": _pick_max(candidates, "mean_r2"), **_runs_entry(fit_runs, val_runs)}


def _gbm_settings(params: dict) -> dict:
    """The GBM settings a candidate runs with (the protocol's defaults under ``params``), for the record."""
    return {**ev.DEFAULT_PARAMS["gbm"], "n_estimators": ev.FIXED_PARAMS["gbm"]["n_estimators"],
            **{k: v for k, v in params.items() if k != "n_jobs"}}


# ---------------------------------------------------------------- trajectory models


class _Trajectories:
    """The trajectories of the paper-CNN tables, with each run's part (choice-fit or validation)."""

    def __init__(self, tables: dict, measured):
        from . import trajectories as tj

        self.trajs = {ds: tj.Trajectories.from_table(tables[ds]) for ds in PAPER_CNN_TABLES if ds in tables}
        if not self.trajs:
            raise SettingsChoiceError("no paper-CNN table for the trajectory models")
        self.checks = tj.common_checks(self.trajs.values())
        ids = np.concatenate([t.run_ids for t in self.trajs.values()]).astype(str)
        self.fit, self.validation = carve(ids, measured)

    def part(self, ds, validation: bool) -> np.ndarray:
        return np.isin(self.trajs[ds].run_ids.astype(str), list(self.validation if validation else self.fit))

    def forecast_rows(self, names, validation=False):
        Xs, ys, gs, ks = [], [], [], []
        for ds in names:
            X, y, g, k = self.trajs[ds].forecast_rows(self.part(ds, validation), self.checks)
            Xs.append(X), ys.append(y), gs.append(g), ks.append(k)
        return np.vstack(Xs), np.concatenate(ys), np.concatenate(gs), np.concatenate(ks)

    def runs_of(self, names, validation: bool) -> set:
        return {str(r) for ds in names for r in self.trajs[ds].run_ids[self.part(ds, validation)]}


def _present(traj: _Trajectories, names) -> list:
    return [ds for ds in names if ds in traj.trajs]


def _forecaster(traj: _Trajectories, names, params, seed) -> dict:
    """The shipped forecaster's recipe on the choice-fit runs of ``names``: out-of-fold forecasts (3 group
    folds), the one-sided conformal offset, and the final model on all of them."""
    from ..predictors import group_kfold

    X, y, g, k = traj.forecast_rows(names)
    oof = np.full(len(X), np.nan)
    for f_tr, f_va in group_kfold(g, n_splits=3, seed=seed):
        oof[f_va] = _gbm(interval=None, **params, n_jobs=THREADS).fit(X[f_tr], y[f_tr]).predict(X[f_va])
    model = _gbm(interval=None, **params, n_jobs=THREADS).fit(X, y)
    return {"oof": oof, "y": y, "groups": g, "epochs": k, "offset": float(np.quantile(y - oof, UPPER_COVERAGE)),
            "model": model}


def _stop_rates(traj: _Trajectories, fc: dict, names, safety: float, patience: int) -> dict:
    """Threshold from the out-of-fold bounds (budget x ``safety``), then the stop policy replayed on the validation
    runs of ``names``: doomed recall and healthy false stops (:func:`trajectories.rates`)."""
    from . import trajectories as tj

    threshold = _choose_threshold(fc["oof"] + fc["offset"], fc["y"], fc["groups"], fc["epochs"],
                                  FALSE_STOP_BUDGET * safety, patience, traj.checks)
    stops, finals = [], []
    for ds in names:
        t, val = traj.trajs[ds], traj.part(ds, True)
        upper = np.column_stack([fc["model"].predict(t.forecast_features(k, val)) for k in traj.checks]) + fc["offset"]
        stops.append(tj.stops(policy.below_threshold(upper, threshold), patience, traj.checks))
        finals.append(t.final[val])
    r = tj.rates(np.concatenate(stops), np.concatenate(finals))
    return {"threshold": float(threshold), "upper_offset": fc["offset"],
            **{k: r[k] for k in ("runs", "doomed", "healthy", "recall@1", "recall@3", "recall", "false_stop",
                                 "between_stop")}}


def _within_budget_then_recall(candidates) -> str:
    """Among the candidates whose validation false-stop rate is within the budget, the highest doomed recall by
    epoch 3 (the first on a tie); if none is within it, the fewest false stops."""
    ok = [c for c in candidates if c["score"]["false_stop"] <= FALSE_STOP_BUDGET]
    if ok:
        return max(ok, key=lambda c: c["score"]["recall@3"])["name"]
    return min(candidates, key=lambda c: c["score"]["false_stop"])["name"]


def choose_trajectory_tables(traj: _Trajectories, seed: int = 0, cache=None) -> dict:
    """TRAJECTORY_TABLES (the A.2 tables and digits_opt) against every paper-CNN table (with the plain-training
    variants): the forecaster fitted on each candidate's choice-fit runs, its stop policy replayed on the
    validation runs of every paper-CNN table."""
    all_tables = _present(traj, PAPER_CNN_TABLES)
    candidates = []
    for name, names in (("TRAJECTORY_TABLES", _present(traj, TRAJECTORY_TABLES)),
                        ("every paper-CNN table", all_tables)):
        fc = _forecaster(traj, names, EARLY_PARAMS, seed)
        if cache is not None:
            cache[name] = fc
        score = _stop_rates(traj, fc, all_tables, SAFETY, PATIENCE)
        plain = [ds for ds in all_tables if ds not in TRAJECTORY_TABLES]
        detail = {"plain-training tables": _stop_rates(traj, fc, plain, SAFETY, PATIENCE)} if plain else {}
        candidates.append({"name": name, "value": names, "score": score, "per_set": detail})
        log.info("TRAJECTORY_TABLES %s: %s", name, score)
    fit = traj.runs_of(all_tables, False)
    return {"what": "the zoos the trajectory models are fitted on (`TRAJECTORY_TABLES` in "
                    "`weightwatch/experiments/tables.py`), against every paper-CNN table",
            "criterion": f"among candidates whose healthy false-stop rate on the validation runs is within the "
                         f"{FALSE_STOP_BUDGET:.1%} budget, the highest doomed recall by epoch 3; the threshold of each "
                         f"is chosen on its out-of-fold bounds as shipped (SAFETY {SAFETY}, patience {PATIENCE}); "
                         "replayed without the callback's domain gate (an out-of-domain check may stop here)",
            "tables": all_tables, "candidates": candidates, "shipped": "TRAJECTORY_TABLES",
            "chosen": _within_budget_then_recall(candidates), **_runs_entry(fit, traj.runs_of(all_tables, True))}


def choose_verdict(traj: _Trajectories, seed: int = 0, cache=None) -> dict:
    """The stop rule's constants (SAFETY x the budget on the out-of-fold bounds, PATIENCE) on the forecaster of
    the shipped TRAJECTORY_TABLES: its stop policy replayed on their validation runs."""
    names = _present(traj, TRAJECTORY_TABLES)
    fc = (cache or {}).get("TRAJECTORY_TABLES") or _forecaster(traj, names, EARLY_PARAMS, seed)
    candidates = []
    # the shipped constants, and no safety margin (1.0) and no patience (1), alone and together
    grid = [(SAFETY, PATIENCE)] + [(s, p) for s in (0.8, 1.0) for p in (1, 2) if (s, p) != (SAFETY, PATIENCE)]
    for safety, patience in grid:
        score = _stop_rates(traj, fc, names, safety, patience)
        candidates.append({"name": f"SAFETY {safety:g}, PATIENCE {patience}",
                           "value": {"SAFETY": safety, "PATIENCE": patience}, "score": score})
    return {"what": "the stop rule's constants (`SAFETY`, the share of the false-stop budget the out-of-fold "
                    "threshold aims at, and `PATIENCE`, in `weightwatch/experiments/fitting.py`); the threshold and "
                    "the conformal offset themselves are fitted out-of-fold on the fit runs",
            "criterion": f"among candidates whose healthy false-stop rate on the validation runs is within the "
                         f"{FALSE_STOP_BUDGET:.1%} budget, the highest doomed recall by epoch 3; replayed without the "
                         "callback's domain gate (an out-of-domain check may stop here)",
            "tables": names, "candidates": candidates, "shipped": candidates[0]["name"],
            "chosen": _within_budget_then_recall(candidates),
            **_runs_entry(traj.runs_of(names, False), traj.runs_of(names, True))}


def choose_early_params(traj: _Trajectories, seed: int = 0, cache=None) -> dict:
    """EARLY_PARAMS against the defaults: doomed AUROC at epoch 1 of the forecast on the validation runs of shapes
    and textures (the forecaster fitted on the shipped TRAJECTORY_TABLES' choice-fit runs)."""
    names = _present(traj, TRAJECTORY_TABLES)
    scored = [ds for ds in ("shapes", "textures") if ds in traj.trajs] or names
    Xv, yv, _, _ = traj.forecast_rows(names, validation=True)
    named, shipped = _named("EARLY_PARAMS", EARLY_PARAMS, {"defaults": DEFAULTS})
    candidates = []
    for name, params in named:
        cached = (cache or {}).get("TRAJECTORY_TABLES") if name == shipped else None
        if cached is not None:
            model = cached["model"]
        else:
            X, y, _, _ = traj.forecast_rows(names)
            model = _gbm(interval=None, **params, n_jobs=THREADS).fit(X, y)
        per = {}
        for ds in scored:
            t, val = traj.trajs[ds], traj.part(ds, True)
            per[ds] = {"doomed_auroc_epoch_1": _auroc(runs.doomed(t.final[val]),
                                                      -model.predict(t.forecast_features(1, val)))}
        candidates.append({"name": name, "value": _gbm_settings(params),
                           "score": {"mean_doomed_auroc_epoch_1": _mean_auroc(per, "EARLY_PARAMS"),
                                     "r2": _r2_tau(yv, model.predict(Xv))["r2"]},
                           "per_set": per})
        log.info("EARLY_PARAMS %s: %s", name, candidates[-1]["score"])
    return {"what": "the forecaster's GBM settings (`EARLY_PARAMS` in `weightwatch/experiments/fitting.py`) "
                    "against the protocol's defaults",
            "criterion": "highest mean doomed AUROC at epoch 1 of the forecast on the validation runs of "
                         + " and ".join(scored) + " (fitted on the choice-fit runs of TRAJECTORY_TABLES)",
            "tables": names, "candidates": candidates, "shipped": shipped,
            "chosen": _pick_max(candidates, "mean_doomed_auroc_epoch_1"),
            **_runs_entry(traj.runs_of(names, False), traj.runs_of(names, True))}


def choose_doom_params(traj: _Trajectories, seed: int = 0, cache=None) -> dict:
    """DOOM_PARAMS with the setup features against the same without them and against the defaults: doomed AUROC
    at epoch 1 on the validation runs of shapes, textures and digits_opt."""
    from ..predictors import GBMPredictor

    names = _present(traj, TRAJECTORY_TABLES)
    scored = [ds for ds in ("shapes", "textures", "digits_opt") if ds in traj.trajs] or names

    def rows(ds, part, k, setup):
        t = traj.trajs[ds]
        return np.hstack([t.forecast_features(k, part), t.setup(part)]) if setup else t.forecast_features(k, part)

    candidates = []
    for name, params, setup in (("DOOM_PARAMS with the setup features", DOOM_PARAMS, True),
                                ("DOOM_PARAMS, W_L and its trajectory alone", DOOM_PARAMS, False),
                                ("defaults with the setup features", {**ev.DEFAULT_PARAMS["gbm"]}, True)):
        X = np.vstack([rows(ds, traj.part(ds, False), k, setup) for ds in names for k in traj.checks])
        y = np.concatenate([runs.doomed(traj.trajs[ds].final[traj.part(ds, False)]) for ds in names
                            for _ in traj.checks]).astype(float)
        model = GBMPredictor(**{**ev.FIXED_PARAMS["gbm"], "objective": "binary", **params, "n_jobs": THREADS}).fit(X, y)
        per = {}
        for ds in scored:
            val = traj.part(ds, True)
            per[ds] = {"doomed_auroc_epoch_1": _auroc(runs.doomed(traj.trajs[ds].final[val]),
                                                      model.predict(rows(ds, val, 1, setup)))}
        candidates.append({"name": name, "value": {"params": {**ev.FIXED_PARAMS["gbm"], **params}, "setup": setup},
                           "score": {"mean_doomed_auroc_epoch_1": _mean_auroc(per, "DOOM_PARAMS")},
                           "per_set": per})
        log.info("DOOM_PARAMS %s: %s", name, candidates[-1]["score"])
    for c in candidates:
        c["value"]["params"].pop("n_jobs", None)
    return {"what": "the doom model's GBM settings and features (`DOOM_PARAMS` in "
                    "`weightwatch/experiments/fitting.py`, with the run's setup features)",
            "criterion": "highest mean doomed AUROC at epoch 1 on the validation runs of " + ", ".join(scored)
                         + " (fitted on the choice-fit runs of TRAJECTORY_TABLES)",
            "tables": names, "candidates": candidates, "shipped": candidates[0]["name"],
            "chosen": _pick_max(candidates, "mean_doomed_auroc_epoch_1"),
            **_runs_entry(traj.runs_of(names, False), traj.runs_of(names, True))}


# ---------------------------------------------------------------- the record


def choose(tables_dir, root, only=None, seed: int = 0, done=None) -> dict:
    """Choose the settings in ``only`` (default: all of :data:`SETTING_NAMES`) on the tables in ``tables_dir``,
    the validation runs carved away from every run the manifests under ``root`` measure; returns
    ``{setting: entry}``. ``done(setting, entry)``, when given, is called as each setting is chosen."""
    only = list(only or SETTING_NAMES)
    unknown = [s for s in only if s not in SETTING_NAMES]
    if unknown:
        raise SettingsChoiceError(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTING_NAMES)}")
    paths = sorted(Path(tables_dir).glob("*.npz"))
    if not paths:
        raise SettingsChoiceError(f"{tables_dir}: no feature tables (*.npz; `weightwatch pretrained tables`)")
    measured = measured_runs(root)
    tables = {p.name.removesuffix(".npz"): Table(p) for p in paths}
    out, cache, traj = {}, {}, None
    for setting in [s for s in SETTING_NAMES if s in only]:
        t0 = time.perf_counter()
        if setting == "SHIP_PARAMS":
            entry = choose_ship_params(tables, measured, seed)
        else:
            traj = traj or _Trajectories(tables, measured)
            fn = {"EARLY_PARAMS": choose_early_params, "TRAJECTORY_TABLES": choose_trajectory_tables,
                  "verdict": choose_verdict, "DOOM_PARAMS": choose_doom_params}[setting]
            entry = fn(traj, seed, cache)
        entry["changed"] = entry["chosen"] != entry["shipped"]
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        out[setting] = entry
        if done is not None:
            done(setting, entry)
        log.info("%s: chose %s (%s) in %.0f s", setting, entry["chosen"],
                 "changed" if entry["changed"] else "as shipped", entry["seconds"])
    return out


def write_record(root, settings: dict) -> Path:
    """Merge ``settings`` into the record under ``root`` (other settings kept) and write it atomically."""
    record = read_record(root)
    record.update({"command": COMMAND, "validation_share": VALIDATION_SHARE,
                   "validation_rule": "a run no shipped card measures (in no manifest's split.heldout_runs, not a "
                                      "user run) whose id's sha256 (first 12 hex digits over 16^12) is below the "
                                      "share; the pool's other runs fit the candidates",
                   "settings": {**record.get("settings", {}), **settings}})
    path = Path(root) / RECORD_FILE
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m weightwatch.experiments.settings_choice",
                                description="choose each tuned constant of the shipped predictors on validation runs "
                                            "carved from their fit runs, record it and re-render the model cards")
    p.add_argument("--tables", required=True, help="directory of the feature tables (zoo_tables/)")
    p.add_argument("--out", required=True, help="the pretrained directory (its manifests give the measured runs; "
                                                f"the record is OUT/{RECORD_FILE})")
    p.add_argument("--only", nargs="+", metavar="SETTING", help=f"these settings only ({', '.join(SETTING_NAMES)})")
    p.add_argument("--no-cards", action="store_true", help="do not re-render the model cards")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        path = Path(args.out) / RECORD_FILE
        choose(args.tables, args.out, args.only, done=lambda s, e: write_record(args.out, {s: e}))
        if not args.no_cards:
            from .cards import refresh_cards

            refresh_cards(args.out)
    except WeightWatchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
