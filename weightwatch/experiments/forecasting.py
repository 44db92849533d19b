"""The trajectory models: the forecaster of the final accuracy (with its doom threshold, chosen for a
false-stop budget) and the doom model, with their cards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import runs
from . import protocol as ev
from ..inference import DOOM, FORECASTER
from ..predictors import GBMPredictor, evaluate, group_kfold, kendall_tau, load_predictor, summarize_folds
from .packaging import package_predictor
from .tables import CARD_EPOCHS, _data_domain, split_runs
from .cards import _card
from .fitting import (DOOM_PARAMS, EARLY_PARAMS, FALSE_STOP_BUDGET, INTERVAL_PARAMS, PATIENCE, SAFETY, UPPER_COVERAGE,
                      _choose_threshold, _gbm, _trajectories)
from .verdict_page import write_verdict_card


def build_forecaster(paper: dict, out, *, seed=0, params=None, budget=FALSE_STOP_BUDGET, patience=PATIENCE) -> dict:
    """Fit the final-accuracy forecaster, choose its doom threshold, write it, its card and the verdict card.

    The threshold on the forecast's upper bound is the largest one whose out-of-fold false-stop rate on the
    healthy runs of the training split stays within ``budget * SAFETY``; the verdict card then measures the
    stopping policy on the held-out runs only.
    """
    from .. import forecast
    from ..pretrained import EARLY_PREDICTOR, PAPER_CNN_PREDICTOR

    params = {**EARLY_PARAMS, "interval_params": INTERVAL_PARAMS, **(params or {})}
    out = Path(out)
    trajs, checks, train_runs = _trajectories(paper, seed)

    def rows(train: bool):
        Xs, ys, gs, ks = [], [], [], []
        for t in trajs.values():
            sel = np.isin(t.run_ids, list(train_runs)) == train
            X, y, g, k = t.forecast_rows(sel, checks)
            Xs.append(X), ys.append(y), gs.append(g), ks.append(k)
        return np.vstack(Xs), np.concatenate(ys), np.concatenate(gs), np.concatenate(ks)

    X_tr, y_tr, g_tr, k_tr = rows(True)
    X_te, y_te, g_te, k_te = rows(False)
    groups = np.concatenate([g_tr, g_te])
    tr, te = np.arange(len(X_tr)), np.arange(len(X_tr), len(groups))

    # out-of-fold forecasts on the training split: where the upper bound and the threshold are chosen
    oof = np.full(len(X_tr), np.nan)
    folds = []
    for f_tr, f_va in group_kfold(g_tr, n_splits=3, seed=seed):
        m = _gbm(interval=None, **params).fit(X_tr[f_tr], y_tr[f_tr])
        oof[f_va] = m.predict(X_tr[f_va])
        folds.append(evaluate(y_te, m.predict(X_te)))
    # one-sided conformal bound: the final accuracy is below forecast + offset for UPPER_COVERAGE of the rows
    upper_offset = float(np.quantile(y_tr - oof, UPPER_COVERAGE))
    threshold = _choose_threshold(oof + upper_offset, y_tr, g_tr, k_tr, budget * SAFETY, patience, checks)
    model = _gbm(**params).fit(X_tr, y_tr)
    f_tr, f_cal = group_kfold(g_tr, n_splits=3, seed=seed)[0]
    cal = _gbm(**params).fit(X_tr[f_tr], y_tr[f_tr])
    model.set_params(interval_offset=cal.calibrate_interval(X_tr[f_cal], y_tr[f_cal]))

    metrics = {k: {"mean": v[0], "std": v[1]} for k, v in summarize_folds(folds).items()}
    metrics["interval_coverage"] = float(model.interval_coverage(X_te, y_te))
    p_te = model.predict(X_te)
    metrics["upper_bound_coverage"] = float(np.mean(y_te <= p_te + upper_offset))
    metrics["per_epoch"] = {f"epoch {k}": {"r2": float(evaluate(y_te[k_te == k], p_te[k_te == k])["r2"]),
                                           "tau": float(kendall_tau(y_te[k_te == k], p_te[k_te == k]))}
                            for k in checks}
    from sklearn.metrics import roc_auc_score

    metrics["doomed_auroc"] = {}
    for ds, t in trajs.items():
        held = ~np.isin(t.run_ids, list(train_runs))
        doomed = runs.doomed(t.final[held])
        if 0 < doomed.sum() < len(doomed):
            metrics["doomed_auroc"][ds] = {int(k): float(roc_auc_score(doomed, -model.predict(t.forecast_features(k, held))))
                                           for k in CARD_EPOCHS if k in checks}
    names = forecast.feature_names(next(iter(paper.values())).names)
    verdict = {"rule": "forecast_doomed", "bound": "forecast + upper_offset", "upper_offset": upper_offset,
               "upper_coverage": UPPER_COVERAGE, "threshold": float(threshold),
               "chance": runs.chance(10), "patience": int(patience), "false_stop_budget": float(budget),
               "chosen_on": "out-of-fold upper bounds on the training split's healthy runs"}
    envelope = _save_trajectory_model(model, EARLY_PREDICTOR, names, paper, out, X_tr, X_te, groups, tr, te,
                                      len(train_runs), seed, checks, metrics,
                                      {"verdict": verdict,
                                       "forecast": {"target": "test accuracy at the end of the run",
                                                    "zoo_epochs": forecast.ZOO_EPOCHS,
                                                    "progress": "epoch / planned epochs (zoo: k / 18)",
                                                    "features": "W_L now, W_L now - W_L at start, log10(1 + steps), "
                                                                "progress"}})
    _card(EARLY_PREDICTOR, "GBM forecasting the test accuracy at the END of a paper-CNN run from W_L now, its "
          "change since initialisation, the optimizer steps so far and the fraction of the run done. "
          "`WeightWatchCallback()` judges doom by its calibrated upper bound.",
          ["- The epoch mapping: a check after epoch e of a run planned for E epochs is the zoo's epoch "
           "18·e/E."], out,
          rows="checkpoints at epochs " + ", ".join(map(str, checks)) + " (before the final epoch) of each complete "
               "finite run, not final checkpoints; the target is the run's final test accuracy")
    envelopes = [envelope]
    current = out / PAPER_CNN_PREDICTOR / "manifest.json"
    if current.is_file():  # the monitor also needs the current-accuracy predictor in domain
        envelopes.append(json.loads(current.read_text())["domain"])
    card = write_verdict_card(trajs, model, train_runs, verdict, out, envelopes, checks)
    return {EARLY_PREDICTOR: metrics, "verdict": card}


def _save_trajectory_model(model, name, names, paper, out, X_tr, X_te, groups, tr, te, runs_train, seed, checks,
                           metrics, extra, role=FORECASTER) -> dict:
    """Save a model fitted on the trajectories' checkpoints (forecaster, doom model) with its split and its
    domain envelope, which it returns; ``metrics`` gains the held-out rows' in-domain rate."""
    from .. import domain

    envelope = domain.fit(X_tr, names, **_data_domain(paper.values()))
    # progress is a fraction of the run by definition: every value in [0, 1] is in domain (the zoo's last
    # check is at 15/18, but a user's run is checked up to its last epoch)
    i = names.index("progress")
    envelope["features"]["lo"][i], envelope["features"]["hi"][i] = 0.0, 1.0
    metrics["in_domain_heldout"] = domain.in_domain_rate(envelope, X_te)
    package_predictor(model, Path(out) / name, name=name, role=role, feature_set="W_L", feature_names=names,
                      family="paper-cnn",
                      zoo_summary={"zoos": {ds: t.build for ds, t in paper.items()}, "rows_train": int(len(tr)),
                                   "rows_test": int(len(te)), "runs_train": runs_train, "seed": seed,
                                   "checks": list(checks)},
                      metrics=metrics, extra={"split": split_runs(groups, tr, te), "domain": envelope, **extra})
    return envelope


def build_doom_model(paper: dict, out, *, seed=0, params=None) -> dict:
    """Fit the doom model (probability that a run ends near chance, from the forecaster's features and the
    run's setup), on the forecaster's training runs; write it and its card; return its held-out metrics.

    Its doomed-run AUROC at each of :data:`CARD_EPOCHS` is computed on the held-out runs of every zoo.
    """
    from sklearn.metrics import roc_auc_score

    from .. import forecast
    from ..pretrained import DOOM_PREDICTOR

    params = {**DOOM_PARAMS, **(params or {})}
    out = Path(out)
    trajs, checks, train_runs = _trajectories(paper, seed)

    def rows(train: bool):
        Xs, ys, gs = [], [], []
        for t in trajs.values():
            sel = np.isin(t.run_ids, list(train_runs)) == train
            setup = t.setup(sel)  # per run, the same at every check
            for k in checks:
                Xs.append(np.hstack([t.forecast_features(k, sel), setup]))
                ys.append(runs.doomed(t.final[sel])), gs.append(t.run_ids[sel])
        return np.vstack(Xs), np.concatenate(ys).astype(float), np.concatenate(gs)

    X_tr, y_tr, g_tr = rows(True)
    X_te, y_te, g_te = rows(False)
    groups = np.concatenate([g_tr, g_te])
    tr, te = np.arange(len(X_tr)), np.arange(len(X_tr), len(groups))
    model = GBMPredictor(**{**ev.FIXED_PARAMS["gbm"], "objective": "binary", **params}).fit(X_tr, y_tr)
    metrics = {"doomed_auroc": {}, "doomed_auroc_forecast": {}}
    forecaster = None
    from ..pretrained import EARLY_PREDICTOR

    if (out / EARLY_PREDICTOR / "manifest.json").is_file():
        forecaster = load_predictor(out / EARLY_PREDICTOR)
    for ds, t in trajs.items():
        held = ~np.isin(t.run_ids, list(train_runs))
        doomed = runs.doomed(t.final[held])
        if not 0 < doomed.sum() < len(doomed):
            continue
        metrics["doomed_auroc"][ds] = {int(k): float(roc_auc_score(doomed, model.predict(t.doom_features(k, held))))
                                       for k in CARD_EPOCHS if k in checks}
        if forecaster is not None:  # beside it, the forecast's own ranking of the same runs
            metrics["doomed_auroc_forecast"][ds] = {
                int(k): float(roc_auc_score(doomed, -forecaster.predict(t.forecast_features(k, held))))
                for k in CARD_EPOCHS if k in checks}
    p_te = model.predict(X_te)
    metrics["brier_heldout"] = float(np.mean((p_te - y_te) ** 2))
    metrics["doomed_rate_heldout"] = float(y_te.mean())
    names = forecast.doom_feature_names(next(iter(paper.values())).names)
    _save_trajectory_model(model, DOOM_PREDICTOR, names, paper, out, X_tr, X_te, groups, tr, te, len(train_runs),
                           seed, checks, metrics,
                           {"forecast": {"target": "probability that the run ends doomed (final test accuracy < "
                                                   "chance + 0.1)",
                                         "zoo_epochs": forecast.ZOO_EPOCHS,
                                         "progress": "epoch / planned epochs (zoo: k / 18)",
                                         "features": "the forecaster's (W_L now, its change since the start, "
                                                     "log10(1 + steps), progress), then the setup: log10 learning "
                                                     "rate, largest dropout rate, optimizer kind"}}, role=DOOM)
    _card(DOOM_PREDICTOR, "GBM classifier of the probability that a paper-CNN run ENDS doomed (final test "
          "accuracy < chance + 0.1), from the forecaster's features and the run's setup (learning rate, dropout, "
          "optimizer kind), as the callbacks read them from the framework. Logged as `ww_doom_probability`: "
          "it ranks runs (e.g. which of a sweep's runs to drop); the stop verdict stays the forecast's "
          "bound (`pretrained/VERDICTS.md`).",
          ["- `doomed_auroc`: AUROC of the doom probability on each zoo's held-out runs at zoo epochs "
           + ", ".join(map(str, CARD_EPOCHS)) + "; `doomed_auroc_forecast`: the same runs ranked by the "
           "forecast of the final accuracy (`paper-cnn-early-forecast-gbm`).",
           "- Without a readable setup (an optimizer outside " + ", ".join(forecast.SETUP_OPTIMIZERS)
           + ", a torch loop that does not pass its optimizer) no doom probability is logged.",
           "- It is not a stop reason: stops come from the forecast's bound, whose false-stop rate is measured "
           "(`pretrained/VERDICTS.md`); this probability ranks runs (`benchmarks/doom_auroc.py` prints its "
           "AUROCs beside the forecast's)."], out,
          scope=["Paper CNNs (the 4,970-parameter family) on the zoos' data, trained with Adam, SGD (with or "
                 "without momentum) or RMSprop at learning rates inside the zoos' range, checked at any epoch.",
                 "Outside its training envelope (`ww_in_domain`'s test on its own features) it logs nothing."],
          rows="checkpoints at epochs " + ", ".join(map(str, checks)) + " (before the final epoch) of each complete "
               "finite run, not final checkpoints; the target is whether the run ends doomed")
    return {DOOM_PREDICTOR: metrics}
