"""Shared scikit-learn plumbing for accuracy predictors."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import InvalidArgumentError

__all__ = ["AccuracyPredictor"]


class AccuracyPredictor(RegressorMixin, BaseEstimator):
    """Base class: validation, feature names, clipping to [0, 1].

    Subclasses implement ``_fit(X, y)`` and ``_predict_raw(X)`` and list the
    attribute(s) that mark them as fitted in ``_fitted_attr``.

    Targets must be test accuracies, i.e. finite values in [0, 1].
    """

    _allow_nan_X = False
    _fitted_attr = "n_features_in_"

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, feature_names: Optional[Sequence[str]] = None):
        """Fit the predictor.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Accuracies in [0, 1].
        feature_names : sequence of str, optional
            Stored as ``feature_names_in_``; if X is a DataFrame its column
            names must agree.

        Returns
        -------
        self
        """
        X, y = self._validate_fit_data(X, y, feature_names)
        self._fit(X, y)
        return self

    def _validate_fit_data(self, X, y, feature_names):
        if y is None:
            raise InvalidArgumentError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        ensure_all_finite = "allow-nan" if self._allow_nan_X else True
        X, y = validate_data(
            self,
            X,
            y,
            reset=True,
            dtype=np.float64,
            y_numeric=True,
            ensure_all_finite=ensure_all_finite,
        )
        y = self._check_targets(np.asarray(y, dtype=np.float64))
        if feature_names is not None:
            names = np.asarray(list(feature_names), dtype=object)
            if names.ndim != 1 or names.shape[0] != X.shape[1]:
                raise InvalidArgumentError(
                    f"feature_names has {names.shape[0]} entries but X has "
                    f"{X.shape[1]} features"
                )
            if not all(isinstance(n, str) for n in names):
                raise InvalidArgumentError("feature_names must all be strings")
            if len(set(names)) != len(names):
                raise InvalidArgumentError("feature_names contains duplicates")
            df_names = getattr(self, "feature_names_in_", None)
            if df_names is not None and list(df_names) != list(names):
                diff = [
                    f"{a!r} != {b!r}" for a, b in zip(df_names, names) if a != b
                ]
                raise InvalidArgumentError(
                    "feature_names disagree with the DataFrame columns of X: "
                    + ", ".join(diff[:10])
                )
            self.feature_names_in_ = names
        return X, y

    @staticmethod
    def _check_targets(y):
        """Return y if it holds finite accuracies in [0, 1], else raise."""
        if not np.all(np.isfinite(y)):
            raise InvalidArgumentError("y contains NaN or infinite values")
        if y.min() < 0.0 or y.max() > 1.0:
            raise InvalidArgumentError(
                f"y must contain accuracies in [0, 1]; got range "
                f"[{y.min():.6g}, {y.max():.6g}]"
            )
        return y

    # -------------------------------------------------------------- predict
    def _validate_predict_X(self, X):
        check_is_fitted(self, self._fitted_attr)
        ensure_all_finite = "allow-nan" if self._allow_nan_X else True
        has_names = hasattr(X, "columns")
        with warnings.catch_warnings():
            if not has_names:
                # Feature names are often given via ``feature_names=`` with
                # plain ndarrays, so a names-less X at predict time is normal.
                warnings.filterwarnings(
                    "ignore", message="X does not have valid feature names"
                )
            return validate_data(
                self,
                X,
                reset=False,
                dtype=np.float64,
                ensure_all_finite=ensure_all_finite,
            )

    def predict(self, X):
        """Predict accuracies, clipped to [0, 1].

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._validate_predict_X(X)
        return np.clip(np.asarray(self._predict_raw(X), dtype=np.float64).reshape(-1), 0.0, 1.0)

    # -------------------------------------------------------- subclass API
    def _fit(self, X, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_raw(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan_X
        tags.target_tags.required = True
        return tags
