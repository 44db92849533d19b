"""Lightning callback: watch a ``Trainer.fit`` run through the model's weights.

::

    from weightwatch.lightning import WeightWatchCallback
    trainer = L.Trainer(callbacks=[WeightWatchCallback(stop_on_doom=True)])

Uses ``lightning.pytorch`` when installed, else ``pytorch_lightning``.
"""

from __future__ import annotations

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the install
    try:
        import pytorch_lightning as pl
    except ImportError:
        from ._compat import require

        pl = require("lightning.pytorch", "weightwatch.lightning")

from .adapters import to_network  # noqa: E402
from .verdict import StoppingReason  # noqa: E402
from .watch import Watcher  # noqa: E402


__all__ = ["WeightWatchCallback", "StoppingReason"]


class WeightWatchCallback(Watcher, pl.Callback):
    """Check the weights at the end of every ``every``-th training epoch.

    Parameters are those of :class:`weightwatch.keras.WeightWatchCallback`;
    ``verbose="auto"`` prints (through the progress bar, so it stays
    intact) when the trainer shows one, nothing otherwise.
    Logs ``ww_pred_accuracy``, ``ww_pred_final_accuracy`` (``_low`` / ``_high``), ``ww_doom_probability``,
    ``ww_in_domain``, ``ww_doomed``, ``ww_status`` and the ``ww_feature_*`` values of ``features=`` through
    ``pl_module.log``; with ``stop_on_doom`` sets ``trainer.should_stop``
    and records ``stopping_reason`` (:class:`~weightwatch.monitor.StoppingReason`) /
    ``stopping_reason_message``.
    """

    framework = "Lightning"

    def __init__(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                 start_from_epoch: int = 1, min_delta: float = 0.02, input_range=None, log_stats: bool = False,
                 strict: bool = False, verbose="auto", rules="all", **monitor_options):
        super().__init__()
        self._bar = None
        self._epochs_from_trainer = "epochs" not in monitor_options
        self._setup_watch(predictor, every, stop_on_doom, patience, start_from_epoch, min_delta, input_range,
                          log_stats, strict, verbose, rules, **monitor_options)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every=self.every, patience=self.monitor.patience)

    def on_fit_start(self, trainer, pl_module):
        # a resumed fit restores state after this hook; a fresh one starts clean
        if trainer.ckpt_path is None:
            self._begin(lambda: to_network(pl_module))
        self._bar = getattr(trainer, "progress_bar_callback", None)
        self._resolve_verbose(self._bar is not None)
        if self._epochs_from_trainer:
            max_epochs = getattr(trainer, "max_epochs", None)
            self.monitor.plan(max_epochs if max_epochs and max_epochs > 0 else None)

    def _show(self, text: str) -> None:
        if self._bar is not None:
            self._bar.print(text)  # above the bar, which stays intact
        else:
            print(text, flush=True)

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        done = int(trainer.current_epoch) + 1
        optimizers = getattr(trainer, "optimizers", None) or [None]
        verdict = self._watch(done, lambda: to_network(pl_module), steps=int(trainer.global_step),
                              optimizer=optimizers[0], logs=getattr(trainer, "callback_metrics", None))
        if verdict is None:
            return
        for key, value in self._log_values(verdict).items():
            pl_module.log(key, value, on_epoch=True, prog_bar=key == "ww_pred_accuracy")
        if self.stopped_epoch == done:
            trainer.should_stop = True
