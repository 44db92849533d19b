"""Lightning: ``LightningPruningCallback(trial)`` reports every epoch to Optuna and raises
``optuna.TrialPruned``."""

from __future__ import annotations

from typing import Optional

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the install
    try:
        import pytorch_lightning as pl
    except ImportError:
        from .._compat import require

        pl = require("lightning.pytorch", "weightwatch.optuna.LightningPruningCallback")

from .reporter import TrialReporter  # noqa: E402

__all__ = ["LightningPruningCallback"]


class LightningPruningCallback(pl.Callback):
    """Report each training epoch (after its validation) to the trial; raise ``optuna.TrialPruned`` when pruned.

    Parameters are those of :class:`~weightwatch.optuna.keras.KerasPruningCallback`; ``objective`` is a key of
    ``trainer.callback_metrics`` (e.g. ``"val_acc"``); the planned epochs are ``trainer.max_epochs``.
    """

    def __init__(self, trial, objective: Optional[str] = None, **options):
        super().__init__()
        self.reporter = TrialReporter(trial, objective, **options)

    def on_fit_start(self, trainer, pl_module):
        self.reporter.start(pl_module)
        max_epochs = getattr(trainer, "max_epochs", None)
        if self.reporter.epochs is None and max_epochs and max_epochs > 0:
            self.reporter.epochs = int(max_epochs)

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        optimizers = getattr(trainer, "optimizers", None) or [None]
        self.reporter.epoch_end(pl_module, int(trainer.current_epoch) + 1,
                                logs=dict(getattr(trainer, "callback_metrics", None) or {}), optimizer=optimizers[0])
