"""Shared scikit-learn plumbing for accuracy predictors."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import InvalidArgumentError, WeightWatchError

__all__ = ["AccuracyPredictor"]


def _validate(estimator, *args, **kwargs):
    """scikit-learn's ``validate_data``, its ValueErrors raised as :class:`InvalidArgumentError` (a ValueError)."""
    try:
        return validate_data(estimator, *args, **kwargs)
    except ValueError as exc:
        if isinstance(exc, WeightWatchError):
            raise
        raise InvalidArgumentError(str(exc)) from exc


class AccuracyPredictor(RegressorMixin, BaseEstimator):
    """Base class: validation, feature names, clipping to [0, 1].

    Subclasses implement ``_fit(X, y)`` and ``_predict_raw(X)`` and list the
    attribute(s) that mark them as fitted in ``_fitted_attr``.

    Targets are test accuracies: any finite values are accepted, unless the
    subclass sets ``_target_range`` (the logit-linear model, whose sigmoid
    fit needs accuracies in [0, 1]). Predictions are clipped to [0, 1].
    """

    _allow_nan_X = False
    _fitted_attr = "n_features_in_"
    _target_range = None  # (lo, hi): targets outside are an InvalidArgumentError

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, feature_names: Optional[Sequence[str]] = None):
        """Fit the predictor.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Accuracies (finite; in ``_target_range`` when the class sets one).
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
        X, y = _validate(
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

    def _check_targets(self, y):
        """Return y if it lies inside ``_target_range`` (when set), else raise (``validate_data`` checked finiteness)."""
        if self._target_range is not None:
            lo, hi = self._target_range
            if y.min() < lo or y.max() > hi:
                raise InvalidArgumentError(
                    f"{type(self).__name__} needs y in [{lo:g}, {hi:g}] (accuracies); got range "
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
            return _validate(
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
    @property
    def has_interval(self) -> bool:
        """True when the fitted predictor can give an interval (:meth:`predict_interval`)."""
        return False

    def _fit(self, X, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_raw(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan_X
        tags.target_tags.required = True
        # predictions are accuracies, clipped to [0, 1]: on scikit-learn's standardised test targets
        # (mean 0, std 1) the R^2 cannot reach its 0.5 bar, however good the fit
        tags.regressor_tags.poor_score = True
        return tags
