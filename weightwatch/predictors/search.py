"""Random hyperparameter search with group k-fold CV (paper A.4)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np
from sklearn.base import clone

from ..errors import InvalidArgumentError
from .dnn import DNNPredictor
from .gbm import GBMPredictor
from .linear import LogitLinearPredictor
from .metrics import evaluate, summarize_folds
from .splits import group_kfold

__all__ = [
    "SearchResult",
    "random_search",
    "sample_gbm_params",
    "sample_dnn_params",
    "sample_logit_linear_params",
    "PARAM_SAMPLERS",
    "HIGH_DIM_THRESHOLD",
]

#: Inputs wider than this get the paper's "high dimensional" colsample range.
HIGH_DIM_THRESHOLD = 500


def _log_uniform(rng, lo, hi) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def sample_gbm_params(rng: np.random.Generator, n_features: int) -> Dict[str, Any]:
    """One GBM configuration from the A.4 ranges."""
    p = {
        "num_leaves": int(rng.integers(20, 1000, endpoint=True)),
        "max_depth": int(rng.integers(5, 15, endpoint=True)),
        "learning_rate": _log_uniform(rng, 1e-2, 1e-1),
        "max_bin": int(rng.choice([63, 127, 255])),
        "min_child_weight": int(rng.integers(1, 5, endpoint=True)),
        "reg_lambda": float(rng.uniform(1e-3, 100.0)),
        "reg_alpha": float(rng.uniform(1e-6, 5.0)),
        "subsample": float(rng.choice(np.round(np.arange(1, 11) / 10, 1))),
        "subsample_freq": 1,
    }
    if n_features > HIGH_DIM_THRESHOLD:
        p["colsample_bytree"] = _log_uniform(rng, 1e-2, 1e-1)
    else:
        p["colsample_bytree"] = float(rng.uniform(0.7, 1.0))
    return p


def sample_dnn_params(rng: np.random.Generator, n_features: int) -> Dict[str, Any]:
    """One DNN configuration from the A.4 ranges."""
    return {
        "n_layers": int(rng.integers(3, 9, endpoint=True)),
        "units": int(rng.integers(256, 511, endpoint=True)),
        "dropout": float(rng.uniform(0.0, 0.2)),
        # The paper's lower bound is garbled in our copy ("10^-?"); 1e-6 assumed.
        "l2": _log_uniform(rng, 1e-6, 1e-3),
        "learning_rate": _log_uniform(rng, 1e-2, 0.5),
        "init_variance": _log_uniform(rng, 1e-3, 0.1),
        "optimizer": str(rng.choice(["adam", "sgd"])),
        "batch_size": int(rng.choice([64, 128, 256, 512])),
        "init": str(rng.choice(
            ["glorot_normal", "he_normal", "orthogonal", "normal", "truncated_normal"])),
    }


def sample_logit_linear_params(rng: np.random.Generator, n_features: int) -> Dict[str, Any]:
    """One logit-linear configuration.

    The paper reuses the DNN protocol with zero layers. Our model is fitted
    by L-BFGS, so only the L2 coefficient of that protocol applies.
    """
    return {"l2": _log_uniform(rng, 1e-6, 1e-3)}


PARAM_SAMPLERS: Dict[type, Callable] = {
    GBMPredictor: sample_gbm_params,
    DNNPredictor: sample_dnn_params,
    LogitLinearPredictor: sample_logit_linear_params,
}


@dataclass
class SearchResult:
    """Outcome of :func:`random_search`.

    Attributes
    ----------
    best_params : dict
        Sampled parameters of the winning configuration (merged with
        ``fixed_params``).
    best_estimator : estimator
        Refit on all rows with ``best_params``.
    best_index : int
        Index into ``cv_results``.
    cv_results : list of dict
        One entry per configuration: ``params``, ``fold_metrics`` (list of
        metric dicts from :func:`evaluate`), ``summary`` (name -> (mean,
        std)), ``error`` (str or None if fitting failed).
    """

    best_params: Dict[str, Any]
    best_estimator: Any
    best_index: int
    cv_results: List[Dict[str, Any]] = field(default_factory=list)


def _fit_eval(estimator_cls, params, X, y, train_idx, val_idx):
    est = estimator_cls(**params)
    try:
        est.fit(X[train_idx], y[train_idx])
        return evaluate(y[val_idx], est.predict(X[val_idx])), None
    except Exception as e:  # noqa: BLE001 - one bad config must not abort the search
        return None, f"{type(e).__name__}: {e}"


def random_search(
    estimator_cls,
    X,
    y,
    groups,
    n_configs: int = 8,
    n_splits: int = 3,
    seed: int = 0,
    n_jobs: int = 2,
    *,
    fixed_params: Optional[Mapping[str, Any]] = None,
    sampler: Optional[Callable] = None,
    selection_metric: str = "mse",
) -> SearchResult:
    """Random search over the A.4 ranges, scored by group k-fold CV.

    Parameters
    ----------
    estimator_cls : type
        ``GBMPredictor``, ``DNNPredictor``, ``LogitLinearPredictor`` or any
        class with a ``sampler``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,)
        Run/configuration id; folds never split a group.
    n_configs : int
        Number of distinct sampled configurations.
    n_splits : int
        CV folds.
    seed : int
        Seeds both the parameter sampler and the fold assignment.
    n_jobs : int
        joblib workers over (configuration, fold) pairs.
    fixed_params : dict, optional
        Overrides applied to every configuration (e.g. ``n_estimators``,
        ``epochs``, inner ``n_jobs``).
    sampler : callable(rng, n_features) -> dict, optional
        Defaults to ``PARAM_SAMPLERS[estimator_cls]``.
    selection_metric : {"mse", "mad", "r2", "kendall_tau"}
        Mean validation metric used to pick the winner (MSE, as the
        predictors are trained on MSE).

    Returns
    -------
    SearchResult
    """
    from joblib import Parallel, delayed

    X = np.asarray(X, dtype=np.float64) if not hasattr(X, "iloc") else X.to_numpy(np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    groups = np.asarray(groups)
    if X.ndim != 2 or X.shape[0] != y.shape[0] or y.shape[0] != groups.shape[0]:
        raise InvalidArgumentError(
            f"X {X.shape}, y {y.shape} and groups {groups.shape} must have matching rows"
        )
    if n_configs < 1:
        raise InvalidArgumentError(f"n_configs must be >= 1, got {n_configs}")
    higher_is_better = {"r2": True, "kendall_tau": True, "mse": False, "mad": False}
    if selection_metric not in higher_is_better:
        raise InvalidArgumentError(f"selection_metric must be one of {sorted(higher_is_better)}")
    if sampler is None:
        if estimator_cls not in PARAM_SAMPLERS:
            raise InvalidArgumentError(f"No default sampler for {estimator_cls!r}; pass sampler=")
        sampler = PARAM_SAMPLERS[estimator_cls]
    fixed = dict(fixed_params or {})

    rng = np.random.default_rng(seed)
    configs, seen = [], set()
    for _ in range(100 * n_configs):
        p = {**sampler(rng, X.shape[1]), **fixed}
        key = repr(sorted(p.items()))
        if key not in seen:
            seen.add(key)
            configs.append(p)
        if len(configs) == n_configs:
            break

    folds = group_kfold(groups, n_splits=n_splits, seed=seed)
    jobs = [(ci, fi) for ci in range(len(configs)) for fi in range(len(folds))]
    outs = Parallel(n_jobs=n_jobs)(
        delayed(_fit_eval)(estimator_cls, configs[ci], X, y, *folds[fi]) for ci, fi in jobs
    )

    cv_results = []
    for ci, p in enumerate(configs):
        res = [outs[k] for k, (c, _) in enumerate(jobs) if c == ci]
        errors = [e for _, e in res if e is not None]
        fm = [m for m, _ in res if m is not None]
        summary = summarize_folds(fm) if not errors else None
        cv_results.append({"params": p, "fold_metrics": fm, "summary": summary,
                           "error": errors[0] if errors else None})

    def score(r):
        if r["summary"] is None:
            return -np.inf
        v = r["summary"][selection_metric][0]
        if np.isnan(v):
            return -np.inf
        return v if higher_is_better[selection_metric] else -v

    scores = [score(r) for r in cv_results]
    best = int(np.argmax(scores))
    if not np.isfinite(scores[best]):
        raise RuntimeError(
            "All configurations failed; first error: " + str(cv_results[0]["error"])
        )
    best_params = dict(configs[best])
    best_estimator = clone(estimator_cls(**best_params)).fit(X, y)
    return SearchResult(best_params, best_estimator, best, cv_results)
