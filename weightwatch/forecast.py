"""The forecaster's view of a run: features of the trajectory and the epoch mapping.

A forecaster predicts the accuracy a run will have at its *end* from the
weights now. It sees, at a check:

* ``W_L`` now (per-layer statistics),
* ``W_L`` now minus ``W_L`` at initialisation (``d.`` prefix; NaN when the
  weights at the start were not seen),
* ``log10_steps``: log10(1 + optimizer steps so far) (NaN when unknown),
* ``progress``: the fraction of the planned run done, ``epoch / epochs``.

The doom model (``paper-cnn-early-doom-gbm``, the probability that the run
ends near chance) also sees the run's *setup*, what a callback reads from
the framework: ``log10_learning_rate`` and the optimizer's kind (one-hot over
:data:`SETUP_OPTIMIZERS`, the zoo's names) from the optimizer, and
``dropout``, the largest rate of the model's dropout layers (0 without one).

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
#: Optimizer kinds the doom model knows (the zoo's names, :data:`weightwatch.zoo.architectures.OPTIMIZERS`).
SETUP_OPTIMIZERS = ("adam", "sgd", "sgd_momentum", "rmsprop")
SETUP = ("log10_learning_rate", "dropout", *(f"optimizer={o}" for o in SETUP_OPTIMIZERS))


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


def doom_feature_names(w_l_names: Sequence[str]) -> list:
    """The doom model's features: the forecaster's, then the run's setup (:data:`SETUP`)."""
    return feature_names(w_l_names) + list(SETUP)


def is_doom_names(names: Sequence[str]) -> bool:
    """True when ``names`` are a doom model's (the forecaster's features, then the setup)."""
    names = tuple(names)
    return (len(names) > len(SETUP) and names[-len(SETUP):] == SETUP
            and is_forecast_names(names[:-len(SETUP)]))


def setup_vector(learning_rate, dropout, optimizer) -> Optional[np.ndarray]:
    """The setup features of one run, or rows of runs (arrays); None when any is unknown.

    ``optimizer``: the zoo's name of its kind (``"sgd_momentum"`` for SGD with momentum); a kind outside
    :data:`SETUP_OPTIMIZERS` is unknown to the doom model, so None.
    """
    if learning_rate is None or dropout is None or optimizer is None:
        return None
    kinds = np.asarray(optimizer, dtype=object)
    lr = np.asarray(learning_rate, np.float64)
    drop = np.asarray(dropout, np.float64)
    if not np.all(np.isin(kinds, SETUP_OPTIMIZERS)) or not np.all(lr > 0) or not np.all(np.isfinite(drop)):
        return None
    shape = np.broadcast_shapes(kinds.shape, lr.shape, drop.shape)
    onehot = [np.broadcast_to(kinds == o, shape).astype(np.float64) for o in SETUP_OPTIMIZERS]
    return np.stack([np.broadcast_to(np.log10(lr), shape), np.broadcast_to(drop, shape), *onehot], axis=-1)


def dropout_of(network) -> Optional[float]:
    """Largest dropout rate among a network's dropout layers (0 without any); None when the adapter did not look
    (a flat vector, a state dict)."""
    rates = (getattr(network, "meta", None) or {}).get("dropout")
    if rates is None:
        return None
    return float(max(rates, default=0.0))


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


def setup_of(network, optimizer: Optional[dict]) -> Optional[np.ndarray]:
    """The doom model's setup features of a run (:data:`SETUP`) from what trains it (``{"kind",
    "learning_rate"}``, see the callbacks) and the network's dropout layers; None when any is unknown."""
    if not optimizer:
        return None
    return setup_vector(optimizer.get("learning_rate"), dropout_of(network), optimizer.get("kind"))
