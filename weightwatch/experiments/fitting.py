"""Fitting helpers of the shipped predictors: their GBM settings, the protocol, held-out AUROC and Kendall
tau, pooled fits, leave-one-out models, and the trajectories the forecaster and doom model fit on.
"""

from __future__ import annotations

import numpy as np

from .. import runs
from . import protocol as ev
from ..predictors import GBMPredictor, evaluate, kendall_tau
from .tables import CARD_EPOCHS, INTERVAL, Table, _heldout, paper_split


#: GBM settings of the shipped predictors (on top of ``evaluation.DEFAULT_PARAMS["gbm"]``): more, slower
#: trees on half the features per tree; +0.002-0.004 held-out R^2 over the defaults on the digits zoos.
SHIP_PARAMS = {"n_estimators": 800, "learning_rate": 0.03, "colsample_bytree": 0.5}


#: The early forecast pools ~130k checkpoints of four zoos: it needs more capacity (doomed AUROC at
#: epoch 1 on shapes/textures 0.90 -> 0.93 with these settings, measured with the defaults beside them).
EARLY_PARAMS = {"n_estimators": 600, "learning_rate": 0.05, "num_leaves": 127, "colsample_bytree": 0.5}


#: The doom model (a classifier): doomed AUROC at epoch 1 on held-out runs of shapes/textures/digits_opt
#: 0.967/0.955/0.961 with these settings and the setup features, against 0.932/0.950/0.961 with W_L and its
#: trajectory alone (measured side by side on the forecaster's split).
DOOM_PARAMS = {"n_estimators": 400, "learning_rate": 0.03, "num_leaves": 31, "colsample_bytree": 0.5,
               "n_jobs": 2}


#: The leave-one-dataset/family-out models of the MLP card: fewer, faster trees than the shipped model (twelve
#: of them are fitted for one card).
LEAVE_OUT_PARAMS = {"n_estimators": 300, "learning_rate": 0.08}


#: The quantile boosters stay small: they bound an interval that is widened by conformal calibration anyway.
INTERVAL_PARAMS = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31}


#: At most this fraction of healthy runs may ever be stopped by the default callback (verdicts issue).
FALSE_STOP_BUDGET = 0.005


#: The threshold is chosen for SAFETY x the budget on out-of-fold runs, so that held-out runs keep within it.
SAFETY = 0.8


PATIENCE = 2


#: The doom bound is the point forecast plus the offset below which this fraction of final accuracies lie
#: (one-sided conformal bound from out-of-fold residuals): the point forecast ranks doomed runs better than
#: the quantile boosters do (recall at epoch 3 0.82 against 0.70 on a split of the training runs).
UPPER_COVERAGE = 0.9


def _gbm(interval=INTERVAL, **extra):
    return GBMPredictor(**{**ev.DEFAULT_PARAMS["gbm"], **ev.FIXED_PARAMS["gbm"], "interval": interval, **extra})


def _protocol(X, y, groups, seed, interval=INTERVAL, params=None, train_groups=None):
    """The experimental protocol (:func:`~weightwatch.experiments.protocol.run_protocol`) with the shipped GBM."""
    res = ev.run_protocol(X, y, groups, predictor="gbm", seed=seed, fixed_params={},
                          params={**ev.FIXED_PARAMS["gbm"], "interval": interval, **(params or {})},
                          train_groups=train_groups)
    return res.model, res.summary, res.train_idx, res.test_idx, res.coverage


def _doomed_auroc(model, table: Table, feature_fn, train_runs, epochs=CARD_EPOCHS) -> dict:
    """AUROC at epoch k of the model's prediction for doomed runs, on runs the model never trained on."""
    from sklearn.metrics import roc_auc_score

    finals = runs.final_accuracy(table.metrics)
    num_classes = table.num_classes
    held = _heldout(table, train_runs)
    m = held.metrics
    out = {}
    for k in epochs:
        mask = ((m["status"] == "ok") & (m["epoch"] == k) & m["modeldir"].isin(finals.index)).to_numpy()
        if not mask.any():
            continue
        sub = held.rows(mask)
        doomed = runs.doomed(finals.loc[sub.metrics["modeldir"]].to_numpy(), num_classes)
        if 0 < doomed.sum() < len(doomed):
            out[int(k)] = float(roc_auc_score(doomed, -model.predict(feature_fn(sub, k))))
    return out


def _cross_tau(model, oks: dict, feature_fn, train_runs) -> dict:
    """Kendall tau of ``model`` on the rows of each table whose runs it never trained on (no fine-tuning)."""
    out = {}
    for name, o in oks.items():
        held = _heldout(o, train_runs)
        if len(held):
            out[name] = float(kendall_tau(held.metrics["test_accuracy"].to_numpy(), model.predict(feature_fn(held))))
    return out


def _fit_pooled(oks: dict, tables: dict, feature_fn, params, seed, split_metrics, train_groups=None) -> tuple:
    """One GBM on the rows of several tables (the protocol's split by run, or ``train_groups``), with its
    held-out metrics; ``parts`` (the table of each row) fits its domain table by table."""
    X = np.vstack([feature_fn(o) for o in oks.values()])
    parts = np.concatenate([np.full(len(o), name) for name, o in oks.items()])
    y = np.concatenate([o.metrics["test_accuracy"].to_numpy() for o in oks.values()])
    groups = np.concatenate([o.metrics["modeldir"].to_numpy() for o in oks.values()])
    model, summ, tr, te, cov = _protocol(X, y, groups, seed, params=params, train_groups=train_groups)
    metrics = split_metrics(summ, cov)
    train_runs = set(groups[tr])
    metrics["cross_tau"] = _cross_tau(model, oks, feature_fn, train_runs)
    metrics["doomed_auroc"] = {n: _doomed_auroc(model, t, feature_fn, train_runs) for n, t in tables.items()}
    return X, groups, model, tr, te, metrics, parts


def _feature_names(feature_set="W_L-agnostic") -> list:
    """The names of a feature set whose length is the same for every depth (W_L-agnostic, W_L-agnostic-bn)."""
    from ..features import get_extractor
    from ..network import LayerWeights, Network

    return get_extractor(feature_set).feature_names(Network((LayerWeights("x", "dense", np.ones((1, 1)),
                                                                          np.ones(1)),)))


def leave_one_out(oks: dict, tables: dict, key, feature_fn, params) -> dict:
    """Per value of ``key(table)`` (a dataset, a family): a GBM fitted on the other tables' rows, scored on
    that value's rows (runs it never saw): R², Kendall τ, doomed AUROC at epochs 1-3."""
    out = {}
    for held in sorted({key(t) for t in tables.values()}):
        rest = [n for n, t in tables.items() if key(t) != held]
        if not rest:
            continue
        model = _gbm(interval=None, **params).fit(np.vstack([feature_fn(oks[n]) for n in rest]),
                                                  np.concatenate([oks[n].metrics["test_accuracy"] for n in rest]))
        mine = [n for n in tables if key(tables[n]) == held]
        X = np.vstack([feature_fn(oks[n]) for n in mine])
        y = np.concatenate([oks[n].metrics["test_accuracy"] for n in mine])
        cell = {k: v for k, v in evaluate(y, model.predict(X)).items() if k in ("r2", "kendall_tau")}
        aurocs = [a for n in mine for a in [_doomed_auroc(model, tables[n], feature_fn, set()).get(1)] if a is not None]
        if aurocs:
            cell["doomed_auroc_epoch_1"] = float(np.mean(aurocs))
        out[held] = cell
    return out


def _trajectories(paper: dict, seed: int) -> tuple:
    """(trajectories, common checks, training runs) of the paper-CNN tables: the forecaster's and the doom
    model's split, :func:`paper_split` (the pooled predictor's too)."""
    from . import trajectories as tj

    trajs = {ds: tj.Trajectories.from_table(t) for ds, t in paper.items()}
    train = paper_split({ds: t.run_ids for ds, t in trajs.items()}, seed)
    return trajs, tj.common_checks(trajs.values()), train


def _choose_threshold(upper, y_final, groups, epochs, budget, patience, checks) -> float:
    """Largest threshold on the upper bound whose healthy false-stop rate (per run, any check) is <= budget."""
    from .trajectories import threshold_for_budget

    runs_, inv = np.unique(groups, return_inverse=True)
    grid = np.full((len(runs_), len(checks)), np.inf)
    grid[inv, np.searchsorted(np.asarray(checks), epochs)] = upper
    final = np.zeros(len(runs_))
    final[inv] = y_final
    return threshold_for_budget(grid, final, budget, patience)
