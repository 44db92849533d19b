"""Keras: ``KerasPruningCallback(trial)`` reports every epoch to Optuna and raises ``optuna.TrialPruned``."""

from __future__ import annotations

from typing import Optional

from .._compat import require

keras = require("keras", "weightwatch.optuna.KerasPruningCallback")

from ..adapters.keras import inner_optimizer  # noqa: E402
from .reporter import TrialReporter  # noqa: E402

__all__ = ["KerasPruningCallback"]


class KerasPruningCallback(keras.callbacks.Callback):
    """Report each epoch of ``model.fit`` to the trial; raise ``optuna.TrialPruned`` when the pruner says so.

    Parameters
    ----------
    trial : optuna.Trial
    objective : str or None
        None: report the forecast of the final accuracy read from the weights (no validation data needed);
        a logged metric (``"val_accuracy"``): report it.
    **options
        :class:`~weightwatch.optuna.reporter.TrialReporter` options (``num_classes``, ``doom_model``,
        ``forecaster``); the planned epochs are ``model.fit``'s.
    """

    def __init__(self, trial, objective: Optional[str] = None, **options):
        super().__init__()
        self.reporter = TrialReporter(trial, objective, **options)

    def on_train_begin(self, logs=None):
        self.reporter.start(self.model)
        if self.reporter.epochs is None:
            self.reporter.epochs = (self.params or {}).get("epochs") or None

    def on_epoch_end(self, epoch, logs=None):
        self.reporter.epoch_end(self.model, int(epoch) + 1, logs=logs,
                                optimizer=inner_optimizer(getattr(self.model, "optimizer", None)))
