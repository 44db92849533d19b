"""The forecaster's view of a run: features of the trajectory and the epoch mapping.

A forecaster predicts the accuracy a run will have at its *end* from the
weights now. It sees, at a check:

* ``W_L`` now (per-layer statistics),
* ``W_L`` now minus ``W_L`` at initialisation (``d.`` prefix; NaN when the
  weights at the start were not seen),
* ``log10_steps``: log10(1 + optimizer steps so far) (NaN when unknown),
* ``progress``: the fraction of the planned run done, ``epoch / epochs``.

The zoo's runs last :data:`ZOO_EPOCHS` epochs, so a zoo checkpoint at epoch
``k`` has progress ``k / 18``; a user's run of ``E`` epochs at epoch ``e``
has progress ``e / E``. The forecast is of the accuracy at the end of the
user's run.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

ZOO_EPOCHS = 18
TRAJECTORY = ("log10_steps", "progress")


def progress(epoch, epochs: Optional[int]) -> float:
    """Fraction of the run done after ``epoch`` of ``epochs`` epochs (``epochs`` None: the zoo's 18)."""
    total = ZOO_EPOCHS if not epochs or epochs <= 0 else int(epochs)
    return float(min(max(float(epoch), 0.0) / total, 1.0))


def feature_names(w_l_names: Sequence[str]) -> list:
    names = [str(n) for n in w_l_names]
    return names + [f"d.{n}" for n in names] + list(TRAJECTORY)


def is_forecast_names(names: Sequence[str]) -> bool:
    """True when ``names`` are a forecaster's (they end with the trajectory features)."""
    return len(names) > len(TRAJECTORY) and tuple(names[-len(TRAJECTORY):]) == TRAJECTORY


def vector(w_l_now, w_l_init=None, steps=None, progress_done: float = float("nan")) -> np.ndarray:
    """One feature row (1-D) or a matrix (rows of ``w_l_now``) in :func:`feature_names` order."""
    now = np.asarray(w_l_now, np.float64)
    init = np.full_like(now, np.nan) if w_l_init is None else np.broadcast_to(np.asarray(w_l_init, np.float64),
                                                                             now.shape)
    shape = now.shape[:-1]
    if steps is None:
        log_steps = np.full(shape, np.nan)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            log_steps = np.log10(1.0 + np.broadcast_to(np.asarray(steps, np.float64), shape))
    prog = np.broadcast_to(np.asarray(progress_done, np.float64), shape)
    return np.concatenate([now, now - init, log_steps[..., None], prog[..., None]], axis=-1)

