"""Fast summary statistics of weight tensors, numpy's up to float rounding.

The seven statistics of the paper (§4.2): mean, variance and the 0/25/50/75/100
percentiles (numpy's default "linear" interpolation). Percentiles come from
order statistics (tested against ``np.percentile`` within 1e-12 relative,
``tests/test_stats.py``), found by nested single-``kth`` partitions
(numpy dispatches a single ``kth`` to its SIMD selection, while a list of
``kth`` falls back to a much slower scalar path), and tensors are spread over
threads because numpy releases the GIL while partitioning.

:func:`row_stats` is the same kernel vectorised over the rows of a matrix
(many networks at once: zoos and feature tables), and :func:`tensor_stats`
uses it for tensors of up to 4096 values (every tensor of the zoos' networks); larger
tensors take a faster selection of their order statistics and the same
float64 mean and variance, so every tensor gets :func:`row_stats`'s numbers
bit for bit whichever path it takes (``tests/test_stats.py``). The one W_L
computation built on them is :func:`weightwatch.features.wl_rows`.

Non-finite input follows numpy: a tensor holding NaN gets NaN for every
statistic (``np.percentile`` does the same); +-inf propagate as numpy would.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from .errors import InvalidArgumentError

STAT_NAMES = ("mean", "var", "p0", "p25", "p50", "p75", "p100")
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
N_STATS = len(STAT_NAMES)
#: Column of each statistic in a row of :func:`tensor_stats` / :func:`row_stats`.
STAT = {name: i for i, name in enumerate(STAT_NAMES)}
#: The tensors of a layer, in W_L order: kernel statistics first, then bias statistics.
TENSORS = ("kernel", "bias")
KERNEL, BIAS = 0, 1
#: W_L features per layer (kernel and bias, seven statistics each).
PER_LAYER = len(TENSORS) * N_STATS

# Below this size threading and partition tricks cost more than they save.
_SMALL = 4096
_PARALLEL_MIN_TOTAL = 1_000_000


def _select(a: np.ndarray, lo: int, hi: int, ranks: list, out: dict) -> None:
    """Put the order statistics ``ranks`` (all in [lo, hi)) of ``a`` into ``out``.

    Partitions ``a[lo:hi]`` in place around the middle rank, then recurses on
    both sides, so each call uses numpy's fast single-kth selection.
    """
    while ranks:
        mid = len(ranks) // 2
        k = ranks[mid]
        view = a[lo:hi]
        view.partition(k - lo)
        out[k] = a[k]
        left, right = ranks[:mid], ranks[mid + 1 :]
        if len(left) <= len(right):
            _select(a, lo, k, left, out)
            lo, ranks = k + 1, right
        else:
            _select(a, k + 1, hi, right, out)
            hi, ranks = k, left


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's _lerp: symmetric formula keeps results monotone and exact at t=0/1.
    diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


def tensor_stats(x) -> np.ndarray:
    """The seven statistics of one tensor as a float64 vector.

    Raises
    ------
    ValueError
        If the tensor is empty.
    """
    arr = np.asarray(x)
    if arr.size == 0:
        raise InvalidArgumentError("cannot compute statistics of an empty tensor")
    flat = arr.reshape(-1)
    if flat.dtype.kind not in "f":
        flat = flat.astype(np.float64)
    n = flat.size
    if n <= _SMALL:  # a sort is cheapest here: the row kernel
        return row_stats(flat.reshape(1, -1))[0]
    # mean and var in float64 exactly as row_stats computes them (the numbers the shipped predictors were fitted
    # on); the order statistics are selected in the tensor's own dtype (exact values, half the memory traffic)
    mean, var = (float(v[0]) for v in _mean_var(flat.astype(np.float64).reshape(1, -1)))
    if not np.isfinite(mean) or not np.isfinite(var):
        # NaN/inf: let numpy define the semantics (rare, slow path)
        return row_stats(flat.reshape(1, -1))[0]

    positions = [q * (n - 1) for q in QUANTILES]
    ranks = set()
    for pos in positions:
        lo = int(np.floor(pos))
        ranks.add(lo)
        if lo + 1 < n and pos > lo:
            ranks.add(lo + 1)
    ranks.discard(0)
    ranks.discard(n - 1)
    values = {0: float(flat.min()), n - 1: float(flat.max())}
    if ranks:
        work = flat.copy()
        found: dict = {}
        _select(work, 0, n, sorted(ranks), found)
        values.update({r: float(v) for r, v in found.items()})
    pct = []
    for pos in positions:
        lo = int(np.floor(pos))
        t = pos - lo
        pct.append(values[lo] if t == 0 else _lerp(values[lo], values[lo + 1], t))
    return np.array([mean, var, *pct], dtype=np.float64)


def row_stats(block) -> np.ndarray:
    """The seven statistics of every row of a 2-D array, shape ``(rows, 7)``, vectorised over rows.

    Same numbers as :func:`tensor_stats` on each row (float64 arithmetic,
    numpy's linear percentiles); this is the kernel behind W_L for many
    networks at once (zoos, feature tables).
    """
    w = np.asarray(block, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] == 0:
        raise InvalidArgumentError(f"row_stats needs a 2-D array with at least one column, got shape {w.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        pct = np.percentile(w, [100 * q for q in QUANTILES], axis=1).T
    return np.column_stack([*_mean_var(w), pct])


def _mean_var(w: np.ndarray) -> tuple:
    """Per-row mean and variance of a float64 matrix (numpy's pairwise sums): one definition for both kernels."""
    with np.errstate(invalid="ignore", over="ignore"):
        return w.mean(1), w.var(1)


def _workers(n_jobs) -> int:
    if n_jobs is None or n_jobs == -1:
        return max(1, os.cpu_count() or 1)
    if n_jobs < 1:
        raise InvalidArgumentError(f"n_jobs must be a positive integer or -1, got {n_jobs}")
    return int(n_jobs)


def many_tensor_stats(tensors: Sequence, n_jobs=None) -> np.ndarray:
    """Statistics of many tensors, shape ``(len(tensors), 7)``.

    Large totals are spread over ``n_jobs`` threads (default: all cores),
    biggest tensors first.
    """
    tensors = list(tensors)
    out = np.empty((len(tensors), N_STATS), dtype=np.float64)
    total = sum(int(np.size(t)) for t in tensors)
    workers = _workers(n_jobs)
    if workers == 1 or total < _PARALLEL_MIN_TOTAL or len(tensors) == 1:
        for i, t in enumerate(tensors):
            out[i] = tensor_stats(t)
        return out
    order = sorted(range(len(tensors)), key=lambda i: -int(np.size(tensors[i])))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, row in zip(order, pool.map(lambda j: tensor_stats(tensors[j]), order)):
            out[i] = row
    return out
