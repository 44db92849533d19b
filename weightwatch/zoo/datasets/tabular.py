"""Tabular datasets bundled with scikit-learn, as vectors for MLP zoos: nothing is downloaded.

* ``breast_cancer``: 569 tumours, 30 features, 2 classes;
* ``wine``: 178 wines, 13 features, 3 classes;
* ``iris``: 150 flowers, 4 features, 3 classes;
* ``digits64``: scikit-learn's 1797 handwritten digits as 64-vectors, 10 classes.

Each has one fixed stratified split (``test_size`` of the examples, seed 0)
and an input ``scale``: ``"standard"`` (default: zero mean, unit variance per
feature, with the training split's statistics), ``"unit"`` (``[0, 1]`` per
feature, from the training split's range) or ``"raw"`` (the values as
bundled; for ``digits64`` gray levels 0..16).
"""

from __future__ import annotations

import numpy as np

from ...errors import InvalidArgumentError
from .base import Dataset

__all__ = ["SCALES", "TABULAR", "load_tabular", "load_breast_cancer", "load_wine", "load_iris", "load_digits64"]

SCALES = ("standard", "unit", "raw")
#: name -> (scikit-learn loader, description)
TABULAR = {
    "breast_cancer": ("load_breast_cancer", "Wisconsin diagnostic breast cancer (569 x 30, 2 classes)"),
    "wine": ("load_wine", "UCI wine recognition (178 x 13, 3 classes)"),
    "iris": ("load_iris", "Fisher's iris (150 x 4, 3 classes)"),
    "digits64": ("load_digits", "handwritten digits as 64-vectors of gray levels 0..16 (1797 x 64, 10 classes)"),
}


def _scaled(x_train: np.ndarray, x_test: np.ndarray, scale: str) -> tuple:
    if scale == "raw":
        return x_train, x_test
    if scale == "standard":
        lo, width = x_train.mean(0), x_train.std(0)
    else:
        lo, width = x_train.min(0), x_train.max(0) - x_train.min(0)
    width = np.where(width > 0, width, 1.0)  # a constant feature stays constant (0) instead of NaN
    return (x_train - lo) / width, (x_test - lo) / width


def load_tabular(name: str, resolution=None, *, scale: str = "standard", test_size: float = 0.3,
                 seed: int = 0) -> Dataset:
    """One of :data:`TABULAR` as float32 vectors (``resolution`` is accepted for the loader protocol and unused:
    vectors have none)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in TABULAR:
        raise InvalidArgumentError(f"unknown tabular dataset {name!r}; known: {', '.join(TABULAR)}")
    if scale not in SCALES:
        raise InvalidArgumentError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    loader, about = TABULAR[name]
    bunch = getattr(datasets, loader)()
    x, y = np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    tr, te = np.sort(tr), np.sort(te)
    x_train, x_test = _scaled(x[tr], x[te], scale)
    return Dataset(name, x_train.astype(np.float32), y[tr], x_test.astype(np.float32), y[te],
                   num_classes=int(y.max()) + 1,
                   description=f"{about}, bundled with scikit-learn; stratified split {1 - test_size:.0%} / "
                               f"{test_size:.0%} (seed {seed}); inputs scaled '{scale}'.",
                   synthetic=False)


def load_breast_cancer(resolution=None, *, scale: str = "standard", **kw) -> Dataset:
    return load_tabular("breast_cancer", resolution, scale=scale, **kw)


def load_wine(resolution=None, *, scale: str = "standard", **kw) -> Dataset:
    return load_tabular("wine", resolution, scale=scale, **kw)


def load_iris(resolution=None, *, scale: str = "standard", **kw) -> Dataset:
    return load_tabular("iris", resolution, scale=scale, **kw)


def load_digits64(resolution=None, *, scale: str = "standard", **kw) -> Dataset:
    return load_tabular("digits64", resolution, scale=scale, **kw)
