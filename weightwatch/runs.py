"""Run labels, in one place: chance level, doomed, healthy, in-between.

A run is *doomed* when its final accuracy is below chance + 0.1 (for 10 classes: below 0.2), *healthy* when
it is at least 0.5 (and not doomed), and *in-between* otherwise (the verdicts issue's definitions). Chance is
the accuracy of the best constant answer: 1 / k for balanced classes, the most frequent class's share of the
test set when the labeller is given it (:func:`majority_share`; breast cancer's test set: 0.626, so a network
that always answers "benign" is doomed, not healthy).
:func:`label` is the one labeller; every card, benchmark, protocol and test labels runs through it (or
through :func:`doomed` / :func:`healthy`, its two masks). :data:`DEFAULT_NUM_CLASSES` is the class count
assumed wherever a model's is not known.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .policy import first_stop  # noqa: F401  (the stop policy replayed on zoo runs; kept for its old home)

#: The class count assumed when a model's is not known (the zoos' datasets have 10 classes).
DEFAULT_NUM_CLASSES = 10
DOOMED_MARGIN = 0.1
#: A run is healthy when its final accuracy is at least this (whatever the class count), unless doomed.
HEALTHY_ACCURACY = 0.5
DOOMED, HEALTHY, IN_BETWEEN = "doomed", "healthy", "in-between"
#: The labels in words, for cards and reports.
LABELS = (f"Doomed: final accuracy < chance + {DOOMED_MARGIN:g} (chance: the best constant answer's accuracy, "
          f"1/k for balanced classes); healthy: final accuracy >= {HEALTHY_ACCURACY:g} (and not doomed); in-between: "
          "the rest.")


def hash_share(run_id) -> float:
    """A fixed number in [0, 1) for a run id (the first 48 bits of the sha256 of its text): the one way runs are
    assigned to the parts of a split by their id, so a run's part never depends on which other runs exist."""
    return int(hashlib.sha256(str(run_id).encode()).hexdigest()[:12], 16) / float(16 ** 12)


def chance(num_classes: int) -> float:
    """Accuracy of guessing: ``1 / num_classes``."""
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return 1.0 / int(num_classes)


def majority_share(labels) -> float:
    """The share of the most frequent class in ``labels``: the accuracy of always answering it."""
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    if not len(counts):
        raise ValueError("majority_share needs at least one label")
    return float(counts.max() / counts.sum())


def doom_line(num_classes: int = DEFAULT_NUM_CLASSES, margin: float = DOOMED_MARGIN, majority=None):
    """The accuracy below which a run is doomed: chance + ``margin``; chance is ``1 / num_classes``, or the
    test set's majority share ``majority`` when given and larger (scalar or per run)."""
    base = chance(num_classes) if majority is None else np.maximum(chance(num_classes), np.asarray(majority, float))
    return base + float(margin)


def label(final_accuracy, num_classes: int = DEFAULT_NUM_CLASSES, margin: float = DOOMED_MARGIN,
          majority=None) -> np.ndarray:
    """``"doomed"``, ``"healthy"`` or ``"in-between"`` per final accuracy (an array of the shape given).

    Doomed: below chance + ``margin`` (:data:`DOOMED_MARGIN`; chance: :func:`doom_line`, with the test set's
    ``majority`` share when known); healthy: at least :data:`HEALTHY_ACCURACY` and not doomed; in-between: the
    rest (a NaN accuracy is in-between: neither label can be claimed).
    """
    acc = np.asarray(final_accuracy, float)
    is_doomed = acc < doom_line(num_classes, margin, majority)
    is_healthy = ~is_doomed & (acc >= HEALTHY_ACCURACY)
    return np.where(is_doomed, DOOMED, np.where(is_healthy, HEALTHY, IN_BETWEEN))


def doomed(final_accuracy, num_classes: int = DEFAULT_NUM_CLASSES, margin: float = DOOMED_MARGIN):
    """True where :func:`label` says doomed."""
    return label(final_accuracy, num_classes, margin) == DOOMED


def healthy(final_accuracy, num_classes: int = DEFAULT_NUM_CLASSES, margin: float = DOOMED_MARGIN):
    """True where :func:`label` says healthy."""
    return label(final_accuracy, num_classes, margin) == HEALTHY


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
