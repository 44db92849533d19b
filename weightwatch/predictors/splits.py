"""Group-aware data splits.

All checkpoints of one training run (same configuration id) must end up on
the same side of a split; otherwise a predictor can memorise per-run
idiosyncrasies and the holdout score is inflated (paper §4.1).
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["group_train_test_split", "group_kfold"]


def _encode_groups(groups) -> Tuple[np.ndarray, int]:
    g = np.asarray(groups)
    if g.ndim != 1:
        raise InvalidArgumentError(f"groups must be 1-D, got shape {g.shape}")
    if g.shape[0] == 0:
        raise InvalidArgumentError("groups is empty")
    if g.dtype.kind == "f" and np.isnan(g).any():
        raise InvalidArgumentError("groups contains NaN")
    # np.unique sorts, so the encoding does not depend on row order.
    _, codes = np.unique(g, return_inverse=True)
    codes = codes.reshape(-1)
    return codes, int(codes.max()) + 1


def group_train_test_split(groups, test_fraction: float = 0.2, seed: int = 0):
    """Split rows into train/test so that no group is in both.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Group label (e.g. configuration id) per row.
    test_fraction : float
        Fraction of *groups* (not rows) assigned to test; at least one group
        goes to each side.
    seed : int
        Seed for the group permutation.

    Returns
    -------
    train_idx, test_idx : ndarray of int
        Sorted row indices.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise InvalidArgumentError(f"test_fraction must be in (0, 1), got {test_fraction}")
    codes, n_groups = _encode_groups(groups)
    if n_groups < 2:
        raise InvalidArgumentError(f"Need at least 2 distinct groups to split, got {n_groups}")
    n_test = int(round(test_fraction * n_groups))
    n_test = min(max(n_test, 1), n_groups - 1)
    perm = np.random.default_rng(seed).permutation(n_groups)
    test_mask = np.isin(codes, perm[:n_test])
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)


def group_kfold(groups, n_splits: int = 3, seed: int = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Shuffled group k-fold.

    Groups are shuffled with ``seed`` and dealt into ``n_splits`` folds of
    (almost) equal group count.

    Returns
    -------
    list of (train_idx, val_idx)
        Sorted row-index arrays; validation sets partition all rows.
    """
    n_splits = int(n_splits)
    if n_splits < 2:
        raise InvalidArgumentError(f"n_splits must be >= 2, got {n_splits}")
    codes, n_groups = _encode_groups(groups)
    if n_groups < n_splits:
        raise InvalidArgumentError(
            f"Cannot make {n_splits} folds from only {n_groups} distinct groups"
        )
    perm = np.random.default_rng(seed).permutation(n_groups)
    folds = []
    for fold_groups in np.array_split(perm, n_splits):
        val_mask = np.isin(codes, fold_groups)
        folds.append((np.flatnonzero(~val_mask), np.flatnonzero(val_mask)))
    return folds
