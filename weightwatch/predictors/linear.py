"""Logit-linear accuracy predictor (paper A.3)."""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from .base import AccuracyPredictor

__all__ = ["LogitLinearPredictor"]


def _sigmoid(z):
    # Stable in both tails, unlike 1 / (1 + exp(-z)).
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


class LogitLinearPredictor(AccuracyPredictor):
    """``sigmoid(X @ coef_ + intercept_)`` fitted by minimising MSE + L2.

    The paper trains this model with SGD/Adam; we use full-batch L-BFGS on
    standardized features instead, which is deterministic and much faster
    for the sizes involved. The solution is folded back so that ``coef_``
    applies to raw (unstandardized) features.

    Parameters
    ----------
    l2 : float
        Penalty ``l2 * ||w||²`` on the standardized-space weights.
    standardize : bool
        Optimise on z-scored features (better conditioning).
    max_iter : int
        L-BFGS iterations.
    tol : float
        L-BFGS gradient tolerance.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only set when names were given.
    """

    _fitted_attr = "coef_"
    _target_range = (0.0, 1.0)  # the sigmoid's MSE fit is meant for accuracies

    def __init__(self, l2: float = 1e-5, standardize: bool = True, max_iter: int = 1000,
                 tol: float = 1e-10):
        self.l2 = l2
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, X, y):
        from scipy.optimize import minimize

        if float(self.l2) < 0:
            raise InvalidArgumentError(f"l2 must be >= 0, got {self.l2}")
        n, d = X.shape
        if self.standardize:
            mean = X.mean(axis=0)
            scale = X.std(axis=0)
            # Constant columns carry no signal; scale 1 avoids division by zero.
            scale[scale == 0.0] = 1.0
        else:
            mean = np.zeros(d)
            scale = np.ones(d)
        Z = (X - mean) / scale
        l2 = float(self.l2)

        def loss_grad(theta):
            w, b = theta[:-1], theta[-1]
            p = _sigmoid(Z @ w + b)
            r = p - y
            loss = np.mean(r * r) + l2 * np.dot(w, w)
            g = (2.0 / n) * r * p * (1.0 - p)
            grad = np.empty_like(theta)
            grad[:-1] = Z.T @ g + 2.0 * l2 * w
            grad[-1] = g.sum()
            return loss, grad

        ybar = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        theta0 = np.zeros(d + 1)
        theta0[-1] = np.log(ybar / (1.0 - ybar))
        res = minimize(
            loss_grad,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": int(self.max_iter), "gtol": float(self.tol), "ftol": 1e-12},
        )
        w, b = res.x[:-1], res.x[-1]
        self.coef_ = w / scale
        self.intercept_ = float(b - np.dot(w, mean / scale))
        self.n_iter_ = int(res.nit)

    def _predict_raw(self, X):
        return _sigmoid(X @ self.coef_ + self.intercept_)
