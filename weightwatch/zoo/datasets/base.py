"""The common format of every zoo dataset: :class:`Dataset`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InvalidArgumentError

__all__ = ["Dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset with a fixed train/test split.

    ``x_*`` are float32 ``(N, H, W, 1)`` images in ``[-1, 1]``, or float32
    ``(N, d)`` vectors (tabular data, for MLPs); ``y_*`` are int64 labels in
    ``[0, num_classes)``.  ``synthetic`` is True for procedurally generated
    data.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    description: str
    synthetic: bool

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if x.dtype != np.float32 or not (x.ndim == 4 and x.shape[-1] == 1 or x.ndim == 2):
                raise InvalidArgumentError(
                    f"x_{split} must be float32 images (N, H, W, 1) or vectors (N, d), got "
                    f"{x.dtype} {x.shape}"
                )
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise InvalidArgumentError(
                    f"y_{split} must be int64 of shape ({x.shape[0]},), got "
                    f"{y.dtype} {y.shape}"
                )
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise InvalidArgumentError(f"y_{split} labels outside [0, {self.num_classes})")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise InvalidArgumentError(f"train and test examples have different shapes: {self.x_train.shape[1:]} "
                                       f"and {self.x_test.shape[1:]}")

    @property
    def input_shape(self) -> tuple:
        """Shape of one example: ``(H, W, 1)`` for an image, ``(d,)`` for a vector."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def is_vector(self) -> bool:
        """True for tabular data (vectors, for MLPs)."""
        return self.x_train.ndim == 2

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:  # arrays are too large for the default repr
        return (
            f"Dataset(name={self.name!r}, input_shape={self.input_shape}, "
            f"n_train={self.n_train}, n_test={self.n_test}, "
            f"num_classes={self.num_classes}, synthetic={self.synthetic})"
        )
