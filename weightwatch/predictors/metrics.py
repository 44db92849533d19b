"""Regression metrics for accuracy predictors.

All functions take ``y_true`` and ``y_pred`` as 1-D array-likes of equal,
non-zero length without NaN/inf and return Python floats.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Tuple

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["r2", "mse", "mad", "kendall_tau", "evaluate", "summarize_folds"]


def _check_pair(y_true, y_pred) -> Tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.ndim != 1:
        yt = yt.reshape(-1) if yt.ndim == 2 and 1 in yt.shape else yt
    if yp.ndim != 1:
        yp = yp.reshape(-1) if yp.ndim == 2 and 1 in yp.shape else yp
    if yt.ndim != 1 or yp.ndim != 1:
        raise InvalidArgumentError(
            f"y_true and y_pred must be 1-D, got shapes {np.shape(y_true)} "
            f"and {np.shape(y_pred)}"
        )
    if yt.shape[0] != yp.shape[0]:
        raise InvalidArgumentError(
            f"Length mismatch: y_true has {yt.shape[0]} elements, "
            f"y_pred has {yp.shape[0]}"
        )
    if yt.shape[0] == 0:
        raise InvalidArgumentError("Empty input: y_true and y_pred have no elements")
    for name, arr in (("y_true", yt), ("y_pred", yp)):
        if not np.all(np.isfinite(arr)):
            raise InvalidArgumentError(f"{name} contains NaN or infinite values")
    return yt, yp


def mse(y_true, y_pred) -> float:
    """Mean squared error."""
    yt, yp = _check_pair(y_true, y_pred)
    return float(np.mean((yt - yp) ** 2))


def mad(y_true, y_pred) -> float:
    """Mean absolute deviation ``mean(|y_true - y_pred|)``."""
    yt, yp = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(yt - yp)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination.

    Notes
    -----
    For constant ``y_true`` R² is undefined; like scikit-learn's
    ``r2_score`` we return 1.0 for a perfect prediction and 0.0 otherwise.
    """
    yt, yp = _check_pair(y_true, y_pred)
    ss_res = float(np.sum((yt - yp) ** 2))
    ss_tot = float(np.sum((yt - yt.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def kendall_tau(y_true, y_pred) -> float:
    """Kendall rank correlation, tau-b variant (handles ties).

    Returns NaN if either input is constant (tau is undefined there).
    """
    yt, yp = _check_pair(y_true, y_pred)
    if yt.shape[0] < 2:
        return float("nan")
    from scipy.stats import kendalltau

    return float(kendalltau(yt, yp, variant="b").statistic)


def evaluate(y_true, y_pred) -> Dict[str, float]:
    """All metrics at once.

    Returns
    -------
    dict
        Keys ``"r2"``, ``"mse"``, ``"mad"``, ``"kendall_tau"``.
    """
    yt, yp = _check_pair(y_true, y_pred)
    return {
        "r2": r2(yt, yp),
        "mse": mse(yt, yp),
        "mad": mad(yt, yp),
        "kendall_tau": kendall_tau(yt, yp),
    }


def summarize_folds(fold_metrics: Iterable[Mapping[str, float]]) -> Dict[str, Tuple[float, float]]:
    """Aggregate per-fold metric dicts into ``{name: (mean, std)}``.

    The std is the population std (``ddof=0``), matching how the paper
    reports spread over three CV folds. NaN fold values propagate.
    """
    folds = list(fold_metrics)
    if not folds:
        raise InvalidArgumentError("summarize_folds needs at least one fold")
    keys = set(folds[0])
    for i, f in enumerate(folds[1:], start=1):
        if set(f) != keys:
            raise InvalidArgumentError(
                f"Fold {i} has metric keys {sorted(f)}, expected {sorted(keys)}"
            )
    out = {}
    for k in folds[0]:
        vals = np.asarray([f[k] for f in folds], dtype=np.float64)
        out[k] = (float(np.mean(vals)), float(np.std(vals)))
    return out
