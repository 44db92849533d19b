"""Accuracy predictors: estimators, metrics, splits, search and persistence."""
from .base import AccuracyPredictor
from .dnn import DNNPredictor
from .gbm import GBMPredictor
from .linear import LogitLinearPredictor
from .metrics import evaluate, kendall_tau, mad, mse, r2, summarize_folds
from .persist import (
    FeatureMismatchError,
    PredictorIntegrityError,
    load_predictor,
    seal,
    save_predictor,
)
from .search import (
    PARAM_SAMPLERS,
    SearchResult,
    random_search,
    sample_dnn_params,
    sample_gbm_params,
    sample_logit_linear_params,
)
from .splits import group_kfold, group_train_test_split

__all__ = [
    "AccuracyPredictor",
    "GBMPredictor",
    "DNNPredictor",
    "LogitLinearPredictor",
    "r2",
    "mse",
    "mad",
    "kendall_tau",
    "evaluate",
    "summarize_folds",
    "group_train_test_split",
    "group_kfold",
    "random_search",
    "SearchResult",
    "PARAM_SAMPLERS",
    "sample_gbm_params",
    "sample_dnn_params",
    "sample_logit_linear_params",
    "save_predictor",
    "load_predictor",
    "seal",
    "PredictorIntegrityError",
    "FeatureMismatchError",
]
