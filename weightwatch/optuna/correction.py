"""The study-specific correction: a trial's final objective from its score at one epoch, learnt on the sweep.

The score is what the trial reported at that epoch (the shipped forecast of the final accuracy, or the user's
metric); the finished trials of the study, each a labelled run of exactly the architecture and data being
tuned, give pairs (score at epoch ``e``, final objective). An isotonic regression maps one to the other (the
final objective never falls as the score rises), and the upper bound adds the residuals' conformal quantile,
taken leave-one-out so that a small sweep does not fool itself.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Correction"]


class Correction:
    """Final objective from a score at one epoch (larger is better), fitted on the study's finished trials.

    Parameters
    ----------
    coverage : float
        The upper bound lies above the final objective of this share of held-out finished trials.

    Attributes (after :meth:`fit`): ``trials_`` the trial numbers it was fitted on, ``margin_`` the conformal
    margin added to the fitted value.
    """

    def __init__(self, coverage: float = 0.9):
        if not 0.0 < float(coverage) < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {coverage}")
        self.coverage = float(coverage)

    def fit(self, scores, finals, trials=()) -> "Correction":
        from sklearn.isotonic import IsotonicRegression

        s, y = np.asarray(scores, np.float64), np.asarray(finals, np.float64)
        ok = np.isfinite(s) & np.isfinite(y)
        s, y = s[ok], y[ok]
        if len(s) < 2:
            raise ValueError(f"a correction needs at least 2 finished trials with a score, got {len(s)}")
        self.trials_ = [int(t) for t, k in zip(trials, ok) if k] if len(trials) else []
        self.model_ = IsotonicRegression(out_of_bounds="clip").fit(s, y)
        residuals = np.empty(len(s))
        for i in range(len(s)):  # leave-one-out: n isotonic fits of n <= a few hundred points
            keep = np.arange(len(s)) != i
            residuals[i] = y[i] - IsotonicRegression(out_of_bounds="clip").fit(s[keep], y[keep]).predict(s[i:i + 1])[0]
        k = min(math.ceil((len(s) + 1) * self.coverage), len(s))
        self.margin_ = float(np.sort(residuals)[k - 1])
        return self

    def predict(self, scores) -> np.ndarray:
        return self.model_.predict(np.atleast_1d(np.asarray(scores, np.float64)))

    def upper(self, score: float) -> float:
        """Upper bound of the final objective of a trial with this score."""
        return float(self.predict([score])[0] + max(self.margin_, 0.0))
