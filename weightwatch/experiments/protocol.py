"""The experimental protocol (one for every experiment, fit and shipped predictor), after §4.2-4.5 and A-C.

Everything here computes numbers; :mod:`~weightwatch.experiments.report` and
:mod:`~weightwatch.experiments.paper` lay them out. Protocol: rows of a zoo (checkpoints of finite runs) are split by
configuration into a training split and a held-out test split used once;
hyperparameters are chosen by random search with group 3-fold CV on the
training split; then one model per CV fold is trained (on that fold's
training part) and evaluated on the held-out split, giving mean and std over
the three folds as in Tables 5-8.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .. import policy, runs
from ..errors import InvalidArgumentError
from ..zoo.architectures import PAPER_WEIGHT_INITIALIZERS, canonical_initializer
from ..network import LayerWeights, Network
from ..predictors import (DNNPredictor, GBMPredictor, LogitLinearPredictor, evaluate, group_kfold,
                         group_train_test_split, random_search, summarize_folds)

log = logging.getLogger(__name__)

PREDICTORS = {"gbm": GBMPredictor, "dnn": DNNPredictor, "linear": LogitLinearPredictor}
# fixed (not searched) settings sized for a 2-core machine; the paper gives no values for these
FIXED_PARAMS = {"gbm": {"n_estimators": 300, "n_jobs": 2}, "dnn": {"epochs": 25}, "linear": {"max_iter": 200, "tol": 1e-7}}
DEFAULT_PARAMS = {
    "gbm": {"num_leaves": 63, "learning_rate": 0.05, "min_child_samples": 20, "subsample": 0.8,
            "colsample_bytree": 0.9, "reg_lambda": 1.0},
    "dnn": {"n_layers": 3, "units": 256, "learning_rate": 1e-3, "batch_size": 256},
    "linear": {"l2": 1e-4},
}
HYPER_SETS = ("A", "lambda_LR", "A+W")
PAPER_FEATURE_SETS = ("W", "W^1", "W^2", "W^3", "W^4", "W_L", "W_L-l1", "W_L-l2", "W-global", "W_L^4",
                      "W_L^{1,4}", "A", "lambda_LR", "A+W")
W_INITS = PAPER_WEIGHT_INITIALIZERS
#: The L2 factor that stands for none (0) in the hyperparameter features: below A.2's range (1e-8 .. 1e-3).
NO_L2 = 1e-10


def hyperparameter_matrix(metrics, which: str = "A", initializers=W_INITS) -> tuple:
    """Hyperparameter features from ``config.*`` columns: ``A`` (all) or ``lambda_LR`` (learning rate).

    ``config.w_init`` is one-hot over ``initializers`` (the paper's, :data:`W_INITS`, by default), names
    matched as :func:`~weightwatch.zoo.architectures.canonical_initializer` does; a name outside them is an
    error, never an all-zero row.
    """
    lr = np.log10(metrics["config.learning_rate"].astype(float).to_numpy())
    if which == "lambda_LR":
        return lr[:, None], ["log10_learning_rate"]
    # no L2 at all (l2reg 0) is log10 1e-10, below A.2's smallest (1e-8), instead of -inf
    cols = [lr, np.log10(np.maximum(metrics["config.l2reg"].astype(float).to_numpy(), NO_L2)),
            metrics["config.dropout"].astype(float).to_numpy(),
            np.log10(metrics["config.init_std"].astype(float).to_numpy()),
            metrics["config.train_fraction"].astype(float).to_numpy(),
            (metrics["config.activation"] == "relu").to_numpy().astype(float)]
    names = ["log10_learning_rate", "log10_l2reg", "dropout", "log10_init_std", "train_fraction", "relu"]
    w_init = metrics["config.w_init"]
    w_init = w_init.map({v: canonical_initializer(v) for v in w_init.unique()})
    other = sorted(set(w_init.unique()) - set(initializers))
    if other:
        raise InvalidArgumentError(f"the hyperparameter features one-hot the initializers {', '.join(initializers)}; "
                                   f"these runs also use {', '.join(map(repr, other))}")
    for w in initializers:
        cols.append((w_init == w).to_numpy().astype(float))
        names.append(f"w_init={w}")
    if "epoch" in metrics:
        cols.append(metrics["epoch"].astype(float).to_numpy())
        names.append("epoch")
    return np.column_stack(cols), names


def feature_matrix(zoo, feature_set: str) -> tuple:
    """Features of every row of a zoo view: any extractor, or A / lambda_LR / A+W."""
    if feature_set in ("A", "lambda_LR"):
        return hyperparameter_matrix(zoo.metrics, feature_set)
    if feature_set == "A+W":
        a, an = hyperparameter_matrix(zoo.metrics, "A")
        w, wn = zoo.features("W")
        return np.hstack([a, w]), an + wn
    return zoo.features(feature_set)


@dataclass
class ProtocolResult:
    feature_set: str
    predictor: str
    n_train: int
    n_test: int
    summary: dict  # metric -> (mean, std) over the CV-fold models on the held-out split
    fold_metrics: list
    params: dict
    model: object = field(repr=False, default=None)  # refit on the whole training split
    feature_names: list = field(repr=False, default_factory=list)
    test_pred: np.ndarray = field(repr=False, default=None)
    test_true: np.ndarray = field(repr=False, default=None)
    train_idx: np.ndarray = field(repr=False, default=None)
    test_idx: np.ndarray = field(repr=False, default=None)
    coverage: float | None = None  # held-out coverage of the calibrated interval, when the model has one


def split_rows(groups, test_fraction=0.2, seed=0):
    return group_train_test_split(groups, test_fraction=test_fraction, seed=seed)


def run_protocol(X, y, groups, *, predictor="gbm", feature_set="", n_configs=1, n_splits=3, test_fraction=0.2,
                 seed=0, n_jobs=2, params=None, feature_names=None, refit=True, fixed_params=None,
                 train_groups=None, progress=None) -> ProtocolResult:
    """Search (optional), then 3 fold models scored on the held-out split, then the model to save.

    The one experimental protocol: rows are split by ``groups`` (runs) into a
    training split and a held-out split used once. ``fixed_params`` replaces
    :data:`FIXED_PARAMS` (settings never searched, e.g. the number of trees).
    When the parameters ask for an ``interval``, the saved model's interval
    is calibrated (split conformal: an interval model fitted on fold 0's
    training part, scored on its other part) and its held-out coverage is
    reported; fold models are scored on their point predictions only.
    ``train_groups`` gives the split instead (the groups that train; the rest are held out), e.g. one that
    other models share. ``progress(step, done, total)``, when given, is called as each step (search,
    fold models, refit, calibration) ends.
    """
    if predictor not in PREDICTORS:
        raise InvalidArgumentError(f"unknown predictor {predictor!r}; choose from {', '.join(PREDICTORS)}")
    cls = PREDICTORS[predictor]
    X, y, groups = np.asarray(X), np.asarray(y, float), np.asarray(groups)
    if train_groups is None:
        tr, te = split_rows(groups, test_fraction, seed)
    else:
        inside = np.isin(groups, list(train_groups))
        tr, te = np.flatnonzero(inside), np.flatnonzero(~inside)
        if not len(tr) or not len(te):
            raise InvalidArgumentError(f"train_groups leaves {len(tr)} training and {len(te)} held-out rows")
    fixed = dict(FIXED_PARAMS[predictor] if fixed_params is None else fixed_params)
    searching = params is None and n_configs > 1
    wants_interval = bool({**(params or {}), **fixed}.get("interval"))
    steps = int(searching) + n_splits + (int(refit) * (1 + int(wants_interval)))
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(what, done, steps)

    if params is not None:
        best = {**DEFAULT_PARAMS[predictor], **params}
    elif n_configs > 1:
        search = random_search(cls, X[tr], y[tr], groups[tr], n_configs=n_configs, n_splits=n_splits, seed=seed,
                               n_jobs=min(n_jobs, 2), fixed_params=fixed)
        best = dict(search.best_params)
        step("search")
    else:
        best = dict(DEFAULT_PARAMS[predictor])
    best = {**best, **fixed}
    if predictor == "gbm" and X.shape[1] > 500 and params is None and n_configs <= 1:
        best["colsample_bytree"] = 0.05  # paper A.4: log-uniform [0.01, 0.1] for high-dimensional inputs
    interval = best.get("interval")
    point = {k: v for k, v in best.items() if k != "interval"} if interval else best
    folds = group_kfold(groups[tr], n_splits=n_splits, seed=seed)
    fold_metrics, preds = [], []
    for fold_train, _ in folds:
        model = cls(**point).fit(X[tr][fold_train], y[tr][fold_train])
        p = model.predict(X[te])
        preds.append(p)
        fold_metrics.append(evaluate(y[te], p))
        step(f"fold model {len(preds)} of {n_splits}")
    final, coverage = None, None
    if refit:
        final = cls(**best).fit(X[tr], y[tr], **({"feature_names": feature_names} if feature_names else {}))
        step("refit on the training split")
        if interval:
            f_tr, f_cal = folds[0]
            cal = cls(**best).fit(X[tr][f_tr], y[tr][f_tr])
            final.set_params(interval_offset=cal.calibrate_interval(X[tr][f_cal], y[tr][f_cal]))
            coverage = float(final.interval_coverage(X[te], y[te]))
            step("interval calibration")
    return ProtocolResult(feature_set, predictor, int(len(tr)), int(len(te)), summarize_folds(fold_metrics),
                          fold_metrics, best, final, list(feature_names or []), np.mean(preds, axis=0), y[te],
                          tr, te, coverage)


def zoo_rows(zoo, epochs="trained"):
    """Rows used for predictors: finite runs; ``trained`` = every checkpoint after epoch 0."""
    view = zoo.filter(status="ok")
    if epochs == "trained":
        return view.select((view.metrics["epoch"] > 0).to_numpy())
    if epochs == "final":
        return view.filter(last=True)
    if epochs == "all":
        return view
    return view.filter(epoch=list(epochs))


def protocol_on_zoo(zoo, feature_set, predictor="gbm", epochs="trained", **kw) -> ProtocolResult:
    view = zoo_rows(zoo, epochs)
    X, names = feature_matrix(view, feature_set)
    return run_protocol(X, view.metrics["test_accuracy"].to_numpy(), view.groups(), predictor=predictor,
                        feature_set=feature_set, feature_names=names, **kw)


# ---------------------------------------------------------------- cross-dataset / architecture


def transfer_tau(train_zoo, target_zoos: dict, feature_set="W_L", epochs="trained", seed=0, **kw) -> dict:
    """Kendall tau of a GBM trained on ``train_zoo`` ranking each target zoo's held-out rows (no fine-tuning)."""
    from ..predictors import kendall_tau

    res = protocol_on_zoo(train_zoo, feature_set, "gbm", epochs=epochs, seed=seed, **kw)
    out = {}
    for name, zoo in target_zoos.items():
        view = zoo_rows(zoo, epochs)
        X, _ = feature_matrix(view, feature_set)
        _, te = split_rows(view.groups(), seed=seed)
        y = view.metrics["test_accuracy"].to_numpy()[te]
        out[name] = float(kendall_tau(y, res.model.predict(X[te])))
    return {"tau": out, "model": res.model, "source": res}


# ---------------------------------------------------------------- Table 9: invariances


def _rebuild(net: Network, flat: np.ndarray) -> Network:
    layers, pos = [], 0
    for layer in net:
        k = flat[pos:pos + layer.kernel.size].reshape(layer.kernel.shape)
        pos += layer.kernel.size
        b = None
        if layer.bias is not None:
            b = flat[pos:pos + layer.bias.size]
            pos += layer.bias.size
        layers.append(LayerWeights(layer.name, layer.kind, k, b, layer.activation))
    return Network(tuple(layers), source=net.source, name=net.name)


def _permuted(net: Network, flat: np.ndarray, layers: Sequence[int], mix: bool, rng) -> np.ndarray:
    """Permute each listed layer's parameters within that layer: kernel and bias jointly (``mix``) or apart."""
    flat = flat.copy()
    starts = np.cumsum([0] + [l.n_params for l in net.layers])
    for idx in layers:
        layer, start = net[idx], int(starts[idx])
        n_bias = 0 if layer.bias is None else layer.bias.size
        spans = [(start, layer.kernel.size + n_bias)] if mix else [(start, layer.kernel.size),
                                                                   (start + layer.kernel.size, n_bias)]
        for lo, size in spans:
            flat[lo:lo + size] = flat[lo:lo + size][rng.permutation(size)]
    return flat


def modify(net: Network, how: str, rng) -> Network:
    """A modified copy of ``net`` (paper appendix C, Table 9).

    ``scale:c`` multiplies every parameter by c; ``perm:global`` permutes the
    whole flattened vector; ``perm:<scope>`` permutes within each layer of the
    scope, kernel and bias apart, and ``perm:<scope>+mix`` kernel and bias
    jointly. Scopes: ``all``, ``final``, ``first3`` (every layer but the last)
    and ``layer<l>`` (1-based).
    """
    kind, _, arg = how.partition(":")
    if kind == "scale":
        c = float(arg)
        return Network(tuple(LayerWeights(l.name, l.kind, l.kernel * c, None if l.bias is None else l.bias * c,
                                          l.activation) for l in net), source=net.source, name=net.name)
    if kind != "perm":
        raise InvalidArgumentError(f"unknown modification {how!r}: use scale:<c> or perm:<scope>[+mix]")
    flat = net.flat(np.float32)
    if arg == "global":
        return _rebuild(net, flat[rng.permutation(flat.size)])
    scope, mix = arg.removesuffix("+mix"), arg.endswith("+mix")
    n = len(net)
    if scope == "all":
        layers = range(n)
    elif scope == "final":
        layers = [n - 1]
    elif scope == "first3":
        layers = range(n - 1)
    elif scope.startswith("layer") and scope[5:].isdigit() and 1 <= int(scope[5:]) <= n:
        layers = [int(scope[5:]) - 1]
    else:
        raise InvalidArgumentError(f"unknown permutation scope in {how!r}: use global, all, final, first3 or "
                                   f"layer1..layer{n}")
    return _rebuild(net, _permuted(net, flat, layers, mix, rng))


def sensitivity(model, nets: Sequence[Network], feature_set: str, modifications: Sequence[str], seed=0) -> dict:
    """MAD between the model's predictions on original and modified networks (paper Table 9)."""
    from ..features import get_extractor

    ex = get_extractor(feature_set)
    base = model.predict(np.vstack([ex(n) for n in nets]))
    out = {}
    for how in modifications:
        rng = np.random.default_rng(seed)
        mod = model.predict(np.vstack([ex(modify(n, how, rng)) for n in nets]))
        out[how] = float(np.mean(np.abs(mod - base)))
    return out


# ---------------------------------------------------------------- early forecasting


def final_accuracy(zoo) -> dict:
    """run id -> final-epoch test accuracy (finite runs)."""
    return runs.final_accuracy(zoo.metrics).to_dict()


def early_forecast(zoo, epochs: Sequence[int] | None = None, *, num_classes=runs.DEFAULT_NUM_CLASSES,
                   chance_margin=runs.DOOMED_MARGIN,
                   max_false_stop=0.01, seed=0, feature_set="W_L") -> list:
    """Predict the FINAL test accuracy from the weights at epoch k, for each k.

    Returns per k: R2 and tau on held-out runs, doomed-run AUROC, the stop
    threshold chosen on the training split so that at most ``max_false_stop``
    of healthy training runs are stopped, and on held-out runs the doomed
    recall, healthy false-stop rate and fraction of training compute saved.
    Runs are labelled by :func:`weightwatch.runs.label` (``chance_margin``: its doom margin) and a held-out
    run is stopped by the stop policy (:mod:`weightwatch.policy`) on its one check at epoch k.
    """
    from sklearn.metrics import roc_auc_score

    from ..predictors import kendall_tau, r2

    ok = zoo.filter(status="ok")
    finals = final_accuracy(zoo)
    final_epoch = int(ok.metrics["epoch"].max())
    if epochs is None:
        epochs = sorted(int(e) for e in ok.metrics["epoch"].unique() if e < final_epoch)
    groups_all = np.array(sorted(finals))
    tr_idx, te_idx = split_rows(groups_all, seed=seed)
    train_runs, test_runs = set(groups_all[tr_idx]), set(groups_all[te_idx])
    # compute per run ~ train_fraction x epochs (steps)
    out = []
    for k in epochs:
        view = ok.filter(epoch=k)
        run_ids = view.metrics["modeldir"].to_numpy()
        keep = np.array([r in finals for r in run_ids])
        view = view.select(keep)
        run_ids = run_ids[keep]
        X, _ = feature_matrix(view, feature_set)
        y = np.array([finals[r] for r in run_ids])
        frac = view.metrics["config.train_fraction"].astype(float).to_numpy()
        tr = np.array([r in train_runs for r in run_ids])
        te = np.array([r in test_runs for r in run_ids])
        model = GBMPredictor(**{**DEFAULT_PARAMS["gbm"], **FIXED_PARAMS["gbm"]}).fit(X[tr], y[tr])
        p_te = model.predict(X[te])
        doomed_te = runs.doomed(y[te], num_classes, chance_margin)
        healthy_tr, healthy_te = (runs.healthy(y[tr], num_classes, chance_margin),
                                  runs.healthy(y[te], num_classes, chance_margin))
        # threshold from out-of-fold predictions would be stricter; in-sample GBM predictions are optimistic,
        # so take the threshold from CV predictions on the training split
        oof = np.empty(tr.sum())
        for f_tr, f_va in group_kfold(run_ids[tr], n_splits=3, seed=seed):
            m = GBMPredictor(**{**DEFAULT_PARAMS["gbm"], **FIXED_PARAMS["gbm"]}).fit(X[tr][f_tr], y[tr][f_tr])
            oof[f_va] = m.predict(X[tr][f_va])
        healthy_scores = np.sort(oof[healthy_tr])
        n_allowed = int(np.floor(max_false_stop * len(healthy_scores)))
        threshold = float(healthy_scores[n_allowed]) if len(healthy_scores) > n_allowed else 0.0
        stop = policy.first_stop(policy.below_threshold(p_te, threshold)[:, None], patience=1) >= 0
        total = (frac[te] * final_epoch).sum()
        saved = (frac[te][stop] * (final_epoch - k)).sum() / total if total > 0 else 0.0
        auroc = float(roc_auc_score(doomed_te, -p_te)) if 0 < doomed_te.sum() < len(doomed_te) else float("nan")
        out.append({
            "epoch": int(k), "n_test_runs": int(te.sum()), "r2": float(r2(y[te], p_te)),
            "tau": float(kendall_tau(y[te], p_te)), "doomed_fraction": float(doomed_te.mean()),
            "auroc": auroc, "threshold": threshold,
            "doomed_recall": float(stop[doomed_te].mean()) if doomed_te.any() else float("nan"),
            "healthy_false_stop": float(stop[healthy_te].mean()) if healthy_te.any() else float("nan"),
            "compute_saved": float(saved),
        })
    return out
