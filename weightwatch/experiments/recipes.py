"""The shipped predictors' recipes (``weightwatch pretrained build``): the per-zoo, pooled, agnostic, MLP and
BatchNorm predictors, then the forecaster and the doom model.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..inference import ACCURACY
from .packaging import package_predictor
from .tables import (PAPER_CNN_TABLES, PAPER_CNN_VARIANTS, TRAJECTORY_TABLES, Table, _data_domain, paper_split,
                     split_runs)
from .cards import _card
from .fitting import (EARLY_PARAMS, INTERVAL_PARAMS, LEAVE_OUT_PARAMS, SHIP_PARAMS, _cross_tau, _doomed_auroc,
                      _feature_names, _fit_pooled, _protocol, leave_one_out)
from .forecasting import build_doom_model, build_forecaster


def build_pretrained(tables_dir, out, *, seed=0, paper_cnn=PAPER_CNN_TABLES, params=None,
                     early_params=None, only=None) -> dict:
    """Fit every shipped predictor from the feature tables in ``tables_dir`` and write cards into ``out``.

    ``params`` / ``early_params`` override :data:`SHIP_PARAMS` / :data:`EARLY_PARAMS` (GBMPredictor
    settings; the quantile boosters use :data:`INTERVAL_PARAMS`). Every manifest records its ``split``
    (run ids) and its ``domain`` (envelope of the training features); every number in a card is
    computed on runs outside ``split["train_runs"]``. ``only`` (names) rebuilds just those predictors.
    """
    from .. import domain
    from ..pretrained import (AGNOSTIC_PREDICTOR, BATCHNORM_PREDICTOR, DOOM_PREDICTOR, EARLY_PREDICTOR, MLP_PREDICTOR,
                              PAPER_CNN_PREDICTOR)

    def wanted(name):
        return only is None or name in only

    params = {**SHIP_PARAMS, "interval_params": INTERVAL_PARAMS, **(params or {})}
    early_params = {**EARLY_PARAMS, "interval_params": INTERVAL_PARAMS, **(early_params or {})}
    tables_dir, out = Path(tables_dir), Path(out)
    tables = {p.name.removesuffix(".npz"): Table(p) for p in sorted(tables_dir.glob("*.npz"))}
    paper = {n: t for n, t in tables.items() if n in paper_cnn}
    if not paper:
        raise ValueError(f"no paper-CNN tables ({', '.join(paper_cnn)}) in {tables_dir}")
    t0 = time.perf_counter()
    summary = {}
    w_l = lambda t, k=None: t.X  # noqa: E731
    agnostic = lambda t, k=None: t.agnostic()  # noqa: E731

    def save(name, model, feature_set, names, family, zoos, X, groups, tr, te, metrics, extra=None, of=None,
             normalisation=False, parts=None):
        """``of``: the tables behind the model, whose class counts and input ranges bound its domain;
        ``normalisation``: its zoo networks have normalisation layers; ``parts``: the table of each row, when
        the domain spans every table's range fitted apart."""
        target = out / name
        envelope = domain.fit(X[tr], names, normalisation=normalisation, **_data_domain(of or paper.values()),
                              parts=None if parts is None else np.asarray(parts)[tr])
        metrics["in_domain_heldout"] = domain.in_domain_rate(envelope, X[te])
        package_predictor(model, target, name=name, role=ACCURACY, feature_set=feature_set, feature_names=names,
                          family=family,
                          zoo_summary={"zoos": zoos, "rows_train": int(len(tr)), "rows_test": int(len(te)),
                                       "runs_train": int(len(set(groups[tr]))), "seed": seed},
                          metrics=metrics, extra={"split": split_runs(groups, tr, te), "domain": envelope,
                                                  **(extra or {})})
        summary[name] = metrics

    def split_metrics(summ, coverage):
        d = {k: {"mean": v[0], "std": v[1]} for k, v in summ.items()}
        d["interval_coverage"] = coverage
        return d

    # per dataset
    for ds, table in paper.items():
        if ds in PAPER_CNN_VARIANTS or not wanted(f"paper-cnn-{ds}-W_L-gbm"):
            continue
        ok = table.ok()
        y, groups = ok.metrics["test_accuracy"].to_numpy(), ok.metrics["modeldir"].to_numpy()
        model, summ, tr, te, cov = _protocol(ok.X, y, groups, seed, params=params)
        metrics = split_metrics(summ, cov)
        train_runs = set(groups[tr])
        metrics["cross_tau"] = _cross_tau(model, {n: t.ok() for n, t in paper.items()}, w_l, train_runs)
        metrics["doomed_auroc"] = _doomed_auroc(model, table, w_l, train_runs)
        name = f"paper-cnn-{ds}-W_L-gbm"
        save(name, model, "W_L", table.names, "paper-cnn", {ds: table.build}, ok.X, groups, tr, te, metrics,
             of=[table])
        _card(name, f"GBM predicting the test accuracy of a paper CNN trained on `{ds}` from its W_L statistics.", [], out)

    # pooled over datasets
    oks = {ds: t.ok() for ds, t in paper.items()}
    if wanted(PAPER_CNN_PREDICTOR):
        _pooled(paper, oks, params, seed, save, split_metrics, w_l, out)
    if wanted(AGNOSTIC_PREDICTOR):
        _agnostic_predictor(tables, params, seed, save, split_metrics, agnostic, out)
    mlps = {n: t for n, t in tables.items() if t.is_mlp}
    if wanted(MLP_PREDICTOR) and mlps:
        _mlp_predictor(mlps, params, seed, save, split_metrics, agnostic, out)
    normalised = {n: t for n, t in tables.items() if t.has_batchnorm}
    if wanted(BATCHNORM_PREDICTOR) and normalised:
        _batchnorm_predictor(normalised, params, seed, save, split_metrics, agnostic, out)
    # the forecast of the final accuracy, with its doom threshold and verdict card
    trajectory = {n: t for n, t in paper.items() if n in TRAJECTORY_TABLES} or paper
    if wanted(EARLY_PREDICTOR):
        summary.update(build_forecaster(trajectory, out, seed=seed, params=early_params))
    if wanted(DOOM_PREDICTOR):
        summary.update(build_doom_model(trajectory, out, seed=seed))
    from .cards import refresh_cards  # each card's provenance reads its siblings' manifests

    refresh_cards(out)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _pooled(paper, oks, params, seed, save, split_metrics, w_l, out):
    from ..pretrained import PAPER_CNN_PREDICTOR

    train_runs = paper_split({ds: np.unique(o.metrics["modeldir"].to_numpy()) for ds, o in oks.items()}, seed)
    X, groups, model, tr, te, metrics, parts = _fit_pooled(oks, paper, w_l, params, seed, split_metrics, train_runs)
    save(PAPER_CNN_PREDICTOR, model, "W_L", next(iter(paper.values())).names, "paper-cnn",
         {ds: t.build for ds, t in paper.items()}, X, groups, tr, te, metrics, parts=parts)
    _card(PAPER_CNN_PREDICTOR, "GBM on W_L pooled over the paper-CNN zoos of all embedded datasets; "
          "`predictor=\"auto\"` uses it for networks of the paper-CNN family.", [], out)


def _agnostic_predictor(tables, params, seed, save, split_metrics, agnostic, out):
    from ..pretrained import AGNOSTIC_PREDICTOR

    oks_all = {n: t.ok() for n, t in tables.items()}
    X, groups, model, tr, te, metrics, parts = _fit_pooled(oks_all, tables, agnostic, params, seed, split_metrics)
    save(AGNOSTIC_PREDICTOR, model, "W_L-agnostic", _feature_names(), "any (trained on: " + ", ".join(tables) + ")",
         {n: t.build for n, t in tables.items()}, X, groups, tr, te, metrics, of=tables.values(), parts=parts)
    _card(AGNOSTIC_PREDICTOR, "GBM on W_L-agnostic features (fixed length for any depth) trained across all "
          "zoo families; `predictor=\"auto\"` uses it outside the paper-CNN family.",
          ["- Cross-family τ above is the honest measure here: treat outputs as rankings."], out)


def _family_predictor(name, tables, params, seed, save, split_metrics, features, out, *, what, title, notes,
                      scope, normalisation=False, feature_set="W_L-agnostic"):
    """A GBM on ``feature_set`` (``features(table)``) over every zoo of a group of families (``what``: "MLPs",
    "BatchNorm CNNs"), with leave-one-dataset-out and leave-one-family-out numbers on its card."""
    oks = {n: t.ok() for n, t in tables.items()}
    X, groups, model, tr, te, metrics, parts = _fit_pooled(oks, tables, features, params, seed, split_metrics)
    gbm_params = {**{k: v for k, v in params.items() if k != "interval_params"}, **LEAVE_OUT_PARAMS}
    metrics["leave_one_dataset_out"] = leave_one_out(oks, tables, lambda t: t.dataset, features, gbm_params)
    metrics["leave_one_family_out"] = leave_one_out(oks, tables, lambda t: t.architecture, features, gbm_params)
    families = sorted({t.architecture for t in tables.values()})
    save(name, model, feature_set, _feature_names(feature_set), f"{what} (trained on: " + ", ".join(families) + ")",
         {n: t.build for n, t in tables.items()}, X, groups, tr, te, metrics, of=tables.values(),
         normalisation=normalisation, parts=parts)
    _card(name, title,
          ["- Held-out dataset / family rows: a model fitted without that dataset (or family) at all, scored on "
           "all of its runs; the honest measure for data and widths the zoos do not hold. Those models have "
           f"{LEAVE_OUT_PARAMS['n_estimators']} trees at learning rate {LEAVE_OUT_PARAMS['learning_rate']} (the "
           f"shipped one {params.get('n_estimators')} at {params.get('learning_rate')}).", *notes], out, scope=scope)


def _mlp_predictor(tables, params, seed, save, split_metrics, agnostic, out):
    """The MLP predictor: every MLP zoo (datasets, widths, depths, optimizers, binary sigmoid outputs)."""
    from ..pretrained import MLP_PREDICTOR

    datasets = sorted({t.dataset for t in tables.values()})
    classes = sorted({t.num_classes for t in tables.values()})
    _family_predictor(
        MLP_PREDICTOR, tables, params, seed, save, split_metrics, agnostic, out, what="MLPs",
        title="GBM on W_L-agnostic features of multilayer perceptrons on vector (tabular) data; "
              "`predictor=\"auto\"` uses it for networks made of dense layers only.",
        notes=[f"- Zoo runs: datasets {', '.join(datasets)}; {', '.join(map(str, classes))} classes (2 also as one "
               "sigmoid unit); optimizers sampled among Adam, SGD, SGD with momentum 0.9 and RMSprop (learning rate "
               "log-uniform in [1e-3, 0.5]); the rest of appendix A.2's hyperparameters."],
        scope=["Multilayer perceptrons (dense layers only) on vector data like the zoos': 1-2 hidden layers of "
               "16-32 units, " + ", ".join(map(str, classes)) + " classes, standardised or [0, 1] inputs; "
               "the monitor flags other class counts, optimizers, learning rates and weight statistics out of "
               "domain.",
               "The held-out dataset rows above are what to expect on a dataset the zoos do not hold."])


def _batchnorm_predictor(tables, params, seed, save, split_metrics, agnostic, out):
    """The BatchNorm CNN predictor: every zoo of a family with BatchNormalization (conv -> BN -> activation ->
    max-pool blocks); its domain admits normalisation layers."""
    from ..pretrained import BATCHNORM_PREDICTOR

    datasets = sorted({t.dataset for t in tables.values()})
    families = sorted({t.architecture for t in tables.values()})
    _family_predictor(
        BATCHNORM_PREDICTOR, tables, params, seed, save, split_metrics, lambda t, k=None: t.agnostic_bn(), out,
        what="BatchNorm CNNs", normalisation=True, feature_set="W_L-agnostic-bn",
        title="GBM on W_L-agnostic-bn features of CNNs with BatchNormalization and max-pooling (conv -> BatchNorm "
              "-> activation -> 2x2 max-pool blocks, global average pooling, dense logits); "
              "`predictor=\"auto\"` uses it for networks with normalisation layers.",
        notes=[f"- Zoo runs: families {', '.join(families)}; datasets {', '.join(datasets)}; optimizers sampled "
               "among Adam, SGD, SGD with momentum 0.9 and RMSprop (learning rate log-uniform in [1e-4, 0.3]); the "
               "rest of appendix A.2's hyperparameters. Features: W_L-agnostic of the conv and dense kernels and biases, "
               "and the first and last BatchNormalization layers' gamma, beta, moving mean and moving variance."],
        scope=["CNNs of 2-3 conv blocks (conv 3x3 'same' -> BatchNormalization -> ReLU or tanh -> 2x2 max-pool) "
               "of 16-32 filters on small grayscale images in [-1, 1], global average pooling and 10 logits; the "
               "monitor flags other class counts and weight statistics out of domain.",
               "The held-out dataset and family rows above are what to expect on data or widths the zoos do not "
               "hold."])
