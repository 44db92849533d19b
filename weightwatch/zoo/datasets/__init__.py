"""Small grayscale image-classification datasets for training CNN zoos.

The Small CNN Zoo (Unterthiner et al., 2020, "Predicting Neural Network
Accuracy from Weights") trained thousands of small CNNs on MNIST,
Fashion-MNIST, grayscale CIFAR10 and grayscale SVHN. This package provides
the same kind of data in a uniform format, and **never downloads anything**:

- :mod:`.base`: the common format, :class:`Dataset` (float32 ``(N, H, W, 1)``
  images in ``[-1, 1]``, uint8 pixels ``p`` mapping to ``p / 127.5 - 1``;
  int64 labels; one fixed, deterministic train/test split per dataset);
- :mod:`.images`: grayscale (BT.601 luma), resizing (every loader takes
  ``resolution``; ``None`` keeps the native size) and jitter;
- :mod:`.bundled`: ``digits``, ``digits_jitter`` (default install),
  ``mnist5k`` and ``textures`` (``pip install 'weightwatch[datasets]'``);
- :mod:`.synthetic`: ``shapes`` (``synthetic=True``);
- :mod:`.files`: ``mnist``, ``fashion_mnist``, ``cifar10``, ``svhn`` from
  files the user already has (``data_dir``, then the Keras cache);
- :mod:`.tabular`: ``breast_cancer``, ``wine``, ``iris``, ``digits64``:
  vectors ``(N, d)`` bundled with scikit-learn, for MLP zoos.

Loaders are registered through the ``register_datasets`` hook
(:mod:`weightwatch.builtin.datasets`); :func:`load_dataset` looks a name up
among every registered loader, a plugin's included.
"""

from __future__ import annotations

import os
from typing import Callable

from ...errors import DatasetNotFoundError, InvalidArgumentError
from .base import Dataset
from .bundled import (TEXTURE_PHOTOS, TexturePatchOrigins, load_digits, load_digits_jitter, load_mnist5k,
                      load_textures)
from .files import keras_cache_dir, load_cifar10, load_fashion_mnist, load_mnist, load_svhn
from .images import jitter_images, resize_images, rgb_to_gray
from .synthetic import SHAPE_CLASSES, load_shapes
from .tabular import TABULAR, load_breast_cancer, load_digits64, load_iris, load_tabular, load_wine

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "TexturePatchOrigins",
    "DATASET_LOADERS",
    "TEXTURE_PHOTOS",
    "SHAPE_CLASSES",
    "load_dataset",
    "INPUT_SCALES",
    "rescale_images",
    "load_digits",
    "load_digits_jitter",
    "load_mnist5k",
    "jitter_images",
    "load_textures",
    "load_shapes",
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "load_svhn",
    "resize_images",
    "rgb_to_gray",
    "keras_cache_dir",
    "TABULAR",
    "load_tabular",
    "load_breast_cancer",
    "load_wine",
    "load_iris",
    "load_digits64",
]

DATASET_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "digits_jitter": load_digits_jitter,
    "mnist5k": load_mnist5k,
    "textures": load_textures,
    "shapes": load_shapes,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "svhn": load_svhn,
    "breast_cancer": load_breast_cancer,
    "wine": load_wine,
    "iris": load_iris,
    "digits64": load_digits64,
}


#: Input scales a zoo can be built with (``zoo build --input-scale``).
INPUT_SCALES = ("default", "unit", "standard", "raw")


def load_dataset(
    name: str, *, data_dir: str | os.PathLike | None = None, resolution: int | None = 16,
    input_scale: str = "default", **kw
) -> Dataset:
    """Load a dataset by name (see :data:`DATASET_LOADERS`).

    ``data_dir`` is used by the file-backed datasets (mnist, fashion_mnist,
    cifar10, svhn) and ignored by the built-in ones.  ``input_scale``
    (:data:`INPUT_SCALES`): ``"default"`` is the loader's own (images in
    [-1, 1], tabular standardised); ``"unit"`` is [0, 1]; ``"standard"`` zero
    mean and unit variance (training statistics); ``"raw"`` pixels 0..255 (or
    tabular values as bundled). A loader with a ``scale`` argument (the
    tabular ones) scales itself. Extra keyword arguments go to the loader.
    """
    import inspect

    from ...plugins import get_registry

    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    loaders = {n: e.obj for n, e in get_registry().entries("datasets").items()}
    if key not in loaders:
        raise InvalidArgumentError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(loaders))}")
    if input_scale not in INPUT_SCALES:
        raise InvalidArgumentError(f"input scale must be one of {', '.join(INPUT_SCALES)}, got {input_scale!r}")
    loader = loaders[key]
    params = inspect.signature(loader).parameters
    if "data_dir" in params:
        kw["data_dir"] = data_dir
    if input_scale != "default" and "scale" in params:
        return loader(resolution=resolution, scale=input_scale, **kw)
    data = loader(resolution=resolution, **kw)
    return data if input_scale == "default" else rescale_images(data, input_scale)


def rescale_images(data: Dataset, input_scale: str) -> Dataset:
    """Images in [-1, 1] moved to ``input_scale`` (``unit``, ``standard`` or ``raw`` 0..255)."""
    from dataclasses import replace

    import numpy as np

    if data.is_vector:
        raise InvalidArgumentError(f"dataset {data.name!r} holds vectors and its loader has no scale argument: "
                                   f"input scale {input_scale!r} is not available for it")
    if input_scale == "unit":
        f = lambda x: (x + 1) / 2  # noqa: E731
    elif input_scale == "raw":
        f = lambda x: (x + 1) * 127.5  # noqa: E731  (p / 127.5 - 1 back to p)
    else:
        mu, sd = float(data.x_train.mean()), float(data.x_train.std()) or 1.0
        f = lambda x: (x - mu) / sd  # noqa: E731
    return replace(data, x_train=np.asarray(f(data.x_train), np.float32), x_test=np.asarray(f(data.x_test), np.float32),
                   description=f"{data.description} Inputs scaled '{input_scale}'.")
