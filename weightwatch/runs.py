"""Run labels, in one place: chance level, doomed, healthy.

A run is *doomed* when its final accuracy is below chance + 0.1 and
*healthy* when it is at least chance + 0.3 (the verdicts issue's
definitions); runs in between are neither. Every card, benchmark and test
labels runs through these functions.
"""

from __future__ import annotations

import numpy as np

DOOMED_MARGIN = 0.1
HEALTHY_MARGIN = 0.3


def chance(num_classes: int) -> float:
    """Accuracy of guessing: ``1 / num_classes``."""
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return 1.0 / int(num_classes)


def doomed(final_accuracy, num_classes: int = 10):
    """True where the final accuracy is below chance + :data:`DOOMED_MARGIN`."""
    return np.asarray(final_accuracy, float) < chance(num_classes) + DOOMED_MARGIN


def healthy(final_accuracy, num_classes: int = 10):
    """True where the final accuracy is at least chance + :data:`HEALTHY_MARGIN`."""
    return np.asarray(final_accuracy, float) >= chance(num_classes) + HEALTHY_MARGIN


def final_rows(metrics, status="ok") -> np.ndarray:
    """Mask of the rows that hold a run's final checkpoint (its largest ``epoch``, else ``step``).

    ``metrics`` is a zoo's or a feature table's metrics (one row per
    checkpoint, run id in ``modeldir``); with ``status`` (default ``"ok"``:
    runs whose weights stayed finite) only such runs count, ``None`` for all.
    """
    key = "epoch" if "epoch" in metrics else "step"
    mask = (metrics[key] == metrics.groupby("modeldir")[key].transform("max")).to_numpy()
    if status is not None:
        mask = mask & (metrics["status"] == status).to_numpy()
    return mask


def final_accuracy(metrics, status="ok"):
    """Final test accuracy per run: a pandas Series indexed by run id (see :func:`final_rows`)."""
    return metrics[final_rows(metrics, status)].set_index("modeldir")["test_accuracy"]


def first_stop(below, patience: int, start: int = 0):
    """Index of the check at which a run is stopped, or -1 (one row per run).

    ``below`` is a boolean matrix (runs x checks, in time order) of "the
    finding fired at this check"; a run stops at the first check that ends
    ``max(patience, 1)`` consecutive firing checks, counting from check
    ``start``. This is the monitor's patience rule, vectorised for
    simulations on zoo tables.
    """
    b = np.asarray(below, bool)
    if b.ndim != 2:
        raise ValueError(f"below must be 2-D (runs x checks), got shape {b.shape}")
    need = max(int(patience), 1)
    streak = np.zeros(len(b), int)
    out = np.full(len(b), -1)
    for j in range(b.shape[1]):
        streak = np.where(b[:, j] & (j >= start), streak + 1, 0)
        hit = (streak >= need) & (out < 0)
        out[hit] = j
    return out
