"""Procedurally generated datasets: ``shapes`` (``synthetic=True``; not real images)."""

from __future__ import annotations

import numpy as np

from ...errors import InvalidArgumentError
from .base import Dataset

__all__ = ["SHAPE_CLASSES", "load_shapes"]


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
