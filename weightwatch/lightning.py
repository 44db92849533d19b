"""Lightning callback: watch a ``Trainer.fit`` run through the model's weights.

::

    from weightwatch.lightning import WeightWatchCallback
    trainer = L.Trainer(callbacks=[WeightWatchCallback(stop_on_doom=True)])

Uses ``lightning.pytorch`` when installed, else ``pytorch_lightning``.
"""

from __future__ import annotations

import enum

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the install
    try:
        import pytorch_lightning as pl
    except ImportError:
        from ._compat import require

        pl = require("lightning.pytorch", "weightwatch.lightning")

from .adapters import to_network  # noqa: E402
from .monitor import Watcher  # noqa: E402
from .torch import is_plain_torch_chain  # noqa: E402


__all__ = ["WeightWatchCallback", "WeightWatchStoppingReason"]


class WeightWatchStoppingReason(enum.Enum):
    """Why this callback stopped training (like Lightning's EarlyStopping reasons)."""

    NOT_STOPPED = 0
    DOOMED = 1
    NON_FINITE = 2


class WeightWatchCallback(Watcher, pl.Callback):
    """Check the weights at the end of every ``every``-th training epoch.

    Parameters are those of :class:`weightwatch.keras.WeightWatchCallback`.
    Logs ``ww_pred_accuracy``, ``ww_pred_final_accuracy``, ``ww_in_domain``, ``ww_doomed`` and ``ww_status`` through
    ``pl_module.log``; with ``stop_on_doom`` sets ``trainer.should_stop``
    and records ``stopping_reason`` / ``stopping_reason_message``.
    """

    framework = "Lightning"

    def __init__(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                 start_from_epoch: int = 1, min_delta: float = 0.02, input_range=None, log_stats: bool = False,
                 strict: bool = False, verbose: int = 0, rules="all", **monitor_options):
        super().__init__()
        self._epochs_from_trainer = "epochs" not in monitor_options
        self._setup_watch(predictor, every, stop_on_doom, patience, start_from_epoch, min_delta, input_range,
                          log_stats, strict, verbose, rules, **monitor_options)

    def _reset_watch(self):
        super()._reset_watch()
        self.stopping_reason = WeightWatchStoppingReason.NOT_STOPPED

    @property
    def stopping_reason_message(self):
        """Lightning's name for the stopping message (None until stopped)."""
        return self.stopping_message or None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every=self.every, patience=self.monitor.patience)

    def on_fit_start(self, trainer, pl_module):
        # a resumed fit restores state after this hook; a fresh one starts clean
        if trainer.ckpt_path is None:
            self._begin(lambda: to_network(pl_module))
        if self._epochs_from_trainer:
            max_epochs = getattr(trainer, "max_epochs", None)
            self.monitor.epochs = max_epochs if max_epochs and max_epochs > 0 else None

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        done = int(trainer.current_epoch) + 1
        optimizers = getattr(trainer, "optimizers", None) or [None]
        verdict = self._watch(done, lambda: to_network(pl_module), lambda: _plain(pl_module),
                              steps=int(trainer.global_step), optimizer=optimizers[0])
        if verdict is None:
            return
        for key, value in self._log_values(verdict).items():
            pl_module.log(key, value, on_epoch=True, prog_bar=key == "ww_pred_accuracy")
        if self.stopped_epoch == done:
            trainer.should_stop = True
            non_finite = any(r.value == "non_finite" for r in verdict.reasons)
            self.stopping_reason = (WeightWatchStoppingReason.NON_FINITE if non_finite
                                    else WeightWatchStoppingReason.DOOMED)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "stopping_reason": self.stopping_reason.name}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.stopping_reason = WeightWatchStoppingReason[state_dict.get("stopping_reason", "NOT_STOPPED")]


def _plain(pl_module) -> bool:
    """A LightningModule whose only child is a plain ``nn.Sequential`` chain."""
    children = list(pl_module.children())
    return len(children) == 1 and is_plain_torch_chain(children[0])
