"""Image conversions shared by every loader: grayscale, pixel range, resizing, jitter.

Resizing
    :func:`resize_images` is bilinear (``order=1``), edge mode, with Gaussian
    anti-aliasing when downscaling (sigma = (factor - 1) / 2): the algorithm of
    ``skimage.transform.resize(..., order=1, mode="edge", preserve_range=True)``,
    implemented with ``scipy.ndimage`` so that no optional dependency is needed
    (``tests/test_datasets.py`` checks that both give the same pixels).
    Fully deterministic.

Colour to grayscale conversion uses ITU-R BT.601 luma weights
``Y = 0.299 R + 0.587 G + 0.114 B`` everywhere.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ...errors import InvalidArgumentError

__all__ = ["LUMA_601", "rgb_to_gray", "resize_images", "jitter_images"]

LUMA_601 = (0.299, 0.587, 0.114)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of ``(..., 3)`` RGB data, returned as float64."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb @ np.asarray(LUMA_601)


def resize_images(
    images: np.ndarray, resolution: int | None, *, chunk: int = 4096
) -> np.ndarray:
    """Resize a stack ``(N, H, W)`` to ``(N, resolution, resolution)``.

    Deterministic: bilinear interpolation (``order=1``) over pixel areas
    (``scipy.ndimage.zoom(..., grid_mode=True)``), edge mode, and Gaussian
    anti-aliasing when downscaling (sigma = (factor - 1) / 2), clipped to the
    input's range: the steps of ``skimage.transform.resize(order=1,
    mode="edge", preserve_range=True)``. The batch axis is never mixed (zoom
    factor 1 and sigma 0 on that axis). ``resolution=None`` or equal to the
    current size returns the input unchanged (as float32).
    """
    from scipy import ndimage

    images = np.asarray(images)
    if images.ndim != 3:
        raise InvalidArgumentError(f"expected (N, H, W) images, got shape {images.shape}")
    n, h, w = images.shape
    if resolution is None or (h == resolution and w == resolution):
        return images.astype(np.float32, copy=False)
    resolution = int(resolution)
    if resolution < 1:
        raise InvalidArgumentError(f"resolution must be a positive integer, got {resolution}")
    factors = np.array([1.0, h / resolution, w / resolution])
    sigma = np.maximum(0.0, (factors - 1.0) / 2.0) if (resolution < h or resolution < w) else None
    zoom = [1.0 / f for f in factors]
    out = np.empty((n, resolution, resolution), dtype=np.float32)
    for start in range(0, n, chunk):
        block = images[start : start + chunk].astype(np.float64)
        smooth = block if sigma is None else ndimage.gaussian_filter(block, sigma, mode="nearest")
        resized = ndimage.zoom(smooth, zoom, order=1, mode="nearest", grid_mode=True)
        out[start : start + chunk] = np.clip(resized, block.min(), block.max())
    return out


def _finish(x_unit: np.ndarray, resolution: int | None) -> np.ndarray:
    """(N, H, W) values in [-1, 1] -> resized float32 (N, r, r, 1), clipped."""
    x = resize_images(x_unit, resolution)
    np.clip(x, -1.0, 1.0, out=x)
    return np.ascontiguousarray(x[..., None], dtype=np.float32)


def _labels(y: Iterable) -> np.ndarray:
    return np.asarray(y).reshape(-1).astype(np.int64)


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
