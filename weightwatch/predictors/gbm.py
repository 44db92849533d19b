"""LightGBM accuracy predictor (paper §4.2, A.3)."""
from __future__ import annotations

import copy

import numbers
from typing import Optional, Tuple

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..errors import InvalidArgumentError
from .base import AccuracyPredictor

__all__ = ["GBMPredictor"]


#: Objectives of :class:`GBMPredictor`: accuracies (L2) or 0/1 labels (log loss, predicting a probability).
OBJECTIVES = ("regression", "binary")
#: Upper bound (MB) on LightGBM's histogram cache per booster.
HISTOGRAM_POOL_MB = 1024


def _seed_from(random_state) -> int:
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class GBMPredictor(AccuracyPredictor):
    """Gradient-boosted regression trees (LightGBM, L2 objective).

    Parameter names follow the LightGBM scikit-learn API. With
    ``interval=(q_lo, q_hi)`` two extra quantile-objective boosters are
    trained for :meth:`predict_interval`.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, max_depth, max_bin,
    min_child_weight, min_child_samples, reg_lambda, reg_alpha, subsample,
    subsample_freq, colsample_bytree
        LightGBM hyperparameters.
    interval : tuple of two floats in (0, 1), optional
        Quantile levels for the prediction interval.
    interval_offset : float
        Widening applied to both ends of the interval; set from held-out rows
        by :meth:`calibrate_interval` (conformalized quantile regression).
    interval_params : dict, optional
        Settings that differ for the two quantile boosters, e.g.
        ``{"n_estimators": 300, "num_leaves": 63}`` to keep them smaller than
        a large point model.
    objective : {"regression", "binary"}
        ``"regression"`` (L2): ``y`` are accuracies. ``"binary"`` (log loss):
        ``y`` are 0/1 labels and :meth:`predict` gives the probability of 1
        (the doom model: the probability that a run ends near chance). No
        ``interval`` with ``"binary"``.
    n_jobs : int
        LightGBM threads.
    random_state : int, RandomState or None

    Attributes
    ----------
    booster_ : lightgbm.Booster
        Main (MSE) model.
    quantile_boosters_ : tuple of two lightgbm.Booster or None
        Models for ``interval[0]`` and ``interval[1]``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only set when names were given (``feature_names=`` or DataFrame).
    """

    _allow_nan_X = True  # LightGBM handles missing values natively.
    _fitted_attr = "booster_"

    def __init__(
        self,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        max_depth: int = -1,
        max_bin: int = 255,
        min_child_weight: float = 1e-3,
        min_child_samples: int = 20,
        reg_lambda: float = 0.0,
        reg_alpha: float = 0.0,
        subsample: float = 1.0,
        subsample_freq: int = 1,
        colsample_bytree: float = 1.0,
        interval: Optional[Tuple[float, float]] = None,
        interval_offset: float = 0.0,
        interval_params: Optional[dict] = None,
        objective: str = "regression",
        n_jobs: int = 1,
        random_state=0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.max_bin = max_bin
        self.min_child_weight = min_child_weight
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.interval = interval
        self.interval_offset = interval_offset
        self.interval_params = interval_params
        self.objective = objective
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_interval(self):
        if self.interval is None:
            return None
        try:
            lo, hi = (float(q) for q in self.interval)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"interval must be a pair of quantile levels, got {self.interval!r}"
            ) from None
        if not (0.0 < lo < hi < 1.0):
            raise InvalidArgumentError(
                f"interval must satisfy 0 < lo < hi < 1, got {self.interval!r}"
            )
        return lo, hi

    def _lgb_params(self, objective: str, alpha: Optional[float] = None) -> dict:
        params = {
            "objective": objective,
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "max_depth": int(self.max_depth),
            "max_bin": int(self.max_bin),
            "min_sum_hessian_in_leaf": float(self.min_child_weight),
            "min_data_in_leaf": int(self.min_child_samples),
            "lambda_l2": float(self.reg_lambda),
            "lambda_l1": float(self.reg_alpha),
            "bagging_fraction": float(self.subsample),
            "bagging_freq": int(self.subsample_freq),
            "feature_fraction": float(self.colsample_bytree),
            "seed": _seed_from(self.random_state),
            "num_threads": int(self.n_jobs),
            "deterministic": True,
            # column-wise histograms: same trees as row-wise; 1.06x faster on 15,000 x 56 (W_L), 1.31x on 3,000 x 4970
            # (W) (benchmarks/predictor_fit.py measures both); forcing it also skips LightGBM's timing test
            "force_col_wise": True,
            # LightGBM caches one histogram per leaf: with ~1000 leaves (A.4's range) and thousands of features
            # (W) that cache alone reached 13 GB and was OOM-killed. A cap changes memory, not the trees.
            "histogram_pool_size": HISTOGRAM_POOL_MB,
            "verbosity": -1,
        }
        if alpha is not None:
            params["alpha"] = float(alpha)
        return params

    def _fit(self, X, y):
        import lightgbm as lgb

        if int(self.n_estimators) < 1:
            raise InvalidArgumentError(f"n_estimators must be >= 1, got {self.n_estimators}")
        quantiles = self._check_interval()
        if self.objective not in OBJECTIVES:
            raise InvalidArgumentError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.objective == "binary":
            if quantiles is not None:
                raise InvalidArgumentError("a binary GBM (objective='binary') has no interval: pass interval=None")
            if not np.isin(y, (0.0, 1.0)).all():
                raise InvalidArgumentError("objective='binary' needs y of 0/1 labels; got values "
                                           f"{sorted(set(np.unique(y).tolist()) - {0.0, 1.0})[:5]}")

        quantile_view = self._quantile_view() if quantiles is not None else None

        def train(est, objective, alpha=None):
            params = est._lgb_params(objective, alpha)
            ds = lgb.Dataset(X, label=y, params={"max_bin": params["max_bin"], "verbosity": -1},
                             free_raw_data=True)
            return lgb.train(params, ds, num_boost_round=int(est.n_estimators))

        self.booster_ = train(self, self.objective)
        if quantiles is None:
            self.quantile_boosters_ = None
        else:
            self.quantile_boosters_ = tuple(train(quantile_view, "quantile", q) for q in quantiles)

    def _quantile_view(self) -> "GBMPredictor":
        """This estimator with ``interval_params`` applied: the settings of the quantile boosters."""
        over = dict(self.interval_params or {})
        allowed = set(self.get_params()) - {"interval", "interval_offset", "interval_params"}
        unknown = sorted(set(over) - allowed)
        if unknown:
            raise InvalidArgumentError(f"interval_params has unknown keys {unknown}; allowed: {', '.join(sorted(allowed))}")
        view = copy.copy(self)
        view.__dict__.update(over)
        return view

    def _threads(self, X) -> int:
        # thread start-up dominates for a handful of rows (the callback predicts one network per epoch)
        return 1 if len(X) < 1000 else int(self.n_jobs)

    def _predict_raw(self, X):
        return self.booster_.predict(X, num_threads=self._threads(X))

    @property
    def has_interval(self) -> bool:
        """True once fitted with ``interval`` (quantile boosters present)."""
        return getattr(self, "quantile_boosters_", None) is not None

    def predict_interval(self, X):
        """Quantile interval ``(lo, hi)``, clipped to [0, 1], with lo <= predict(X) <= hi.

        Raises
        ------
        ValueError
            If the predictor was fitted without ``interval``.
        """
        check_is_fitted(self, "booster_")
        if getattr(self, "quantile_boosters_", None) is None:
            raise InvalidArgumentError(
                "predict_interval requires the predictor to be fitted with interval=(lo, hi)"
            )
        X = self._validate_predict_X(X)
        a, b = (
            np.clip(bst.predict(X, num_threads=self._threads(X)), 0.0, 1.0)
            for bst in self.quantile_boosters_
        )
        # Independently fitted quantile models can cross; sorting keeps a valid interval.
        # The point model is fitted apart from the quantile models and can land outside their interval;
        # widening to contain it keeps lo <= point <= hi (coverage can only grow).
        point = np.clip(self._predict_raw(X), 0.0, 1.0)
        lo, hi = np.minimum(np.minimum(a, b), point), np.maximum(np.maximum(a, b), point)
        if self.interval_offset:
            # conformal widening (calibrate_interval, which calibrates this same family of intervals)
            lo, hi = np.clip(lo - self.interval_offset, 0.0, 1.0), np.clip(hi + self.interval_offset, 0.0, 1.0)
        return lo, hi

    def calibrate_interval(self, X_cal, y_cal) -> float:
        """Set ``interval_offset`` by conformalized quantile regression on held-out calibration rows.

        The quantile models must not have seen ``X_cal``. Returns the offset.
        """
        saved, self.interval_offset = self.interval_offset, 0.0
        try:
            lo, hi = self.predict_interval(X_cal)
        except Exception:
            self.interval_offset = saved
            raise
        y = np.asarray(y_cal, dtype=np.float64).reshape(-1)
        scores = np.maximum(lo - y, y - hi)
        q_lo, q_hi = self._check_interval()
        level = min(1.0, (q_hi - q_lo) * (1 + 1 / len(y)))
        self.interval_offset = float(max(0.0, np.quantile(scores, level, method="higher")))
        return self.interval_offset

    def interval_coverage(self, X, y) -> float:
        """Fraction of ``y`` inside ``predict_interval(X)`` (bounds inclusive)."""
        lo, hi = self.predict_interval(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if y.shape[0] != lo.shape[0]:
            raise InvalidArgumentError(f"y has {y.shape[0]} rows but X has {lo.shape[0]}")
        return float(np.mean((y >= lo) & (y <= hi)))
