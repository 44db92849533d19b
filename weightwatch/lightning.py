"""Lightning callback: watch a ``Trainer.fit`` run through the model's weights.

::

    from weightwatch.lightning import WeightWatchCallback
    trainer = L.Trainer(callbacks=[WeightWatchCallback(stop_on_doom=True)])

Uses ``lightning.pytorch`` when installed, else ``pytorch_lightning``.
"""

from __future__ import annotations

import enum
import logging
import warnings

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the install
    try:
        import pytorch_lightning as pl
    except ImportError:
        from ._compat import require

        pl = require("lightning.pytorch", "weightwatch.lightning")

from .adapters import to_network  # noqa: E402
from .monitor import Monitor, WeightWatchWarning  # noqa: E402
from .torch import is_plain_torch_chain  # noqa: E402

log = logging.getLogger(__name__)

__all__ = ["WeightWatchCallback", "WeightWatchStoppingReason"]


class WeightWatchStoppingReason(enum.Enum):
    """Why this callback stopped training (like Lightning's EarlyStopping reasons)."""

    NOT_STOPPED = 0
    DOOMED = 1
    NON_FINITE = 2


class WeightWatchCallback(pl.Callback):
    """Check the weights at the end of every ``every``-th training epoch.

    Parameters are those of :class:`weightwatch.keras.WeightWatchCallback`.
    Logs ``ww_pred_accuracy``, ``ww_doomed`` and ``ww_status`` through
    ``pl_module.log``; with ``stop_on_doom`` sets ``trainer.should_stop``
    and records ``stopping_reason`` / ``stopping_reason_message``.
    """

    def __init__(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                 start_from_epoch: int = 1, min_delta: float = 0.02, input_range=(-1, 1), log_stats: bool = False,
                 strict: bool = False, verbose: int = 0, rules="all", **monitor_options):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = int(every)
        self.stop_on_doom = bool(stop_on_doom)
        self.strict = bool(strict)
        self.verbose = int(verbose)
        self.monitor = Monitor(predictor=predictor, rules=rules, patience=patience,
                               start_from_epoch=start_from_epoch, min_delta=min_delta, input_range=input_range,
                               strict=strict, log_stats=log_stats, **monitor_options)
        self._reset()

    def _reset(self):
        self.stopped_epoch = None
        self.stopping_reason = WeightWatchStoppingReason.NOT_STOPPED
        self.stopping_reason_message = None
        self.verdict = None
        self._disabled = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every=self.every, patience=self.monitor.patience)

    def on_fit_start(self, trainer, pl_module):
        # a resumed fit restores state after this hook; a fresh one starts clean
        if trainer.ckpt_path is None:
            self.monitor.reset()
            self._reset()

    def on_train_epoch_end(self, trainer, pl_module):
        if self._disabled or trainer.sanity_checking:
            return
        done = int(trainer.current_epoch) + 1
        if done % self.every:
            return
        try:
            network = to_network(pl_module)
            verdict = self.monitor.step(network, done, options={"plain_chain": _plain(pl_module)})
        except Exception as exc:  # noqa: BLE001 - never crash the user's training
            if self.strict:
                raise
            self._disabled = True
            warnings.warn(f"weightwatch: the Lightning callback failed ({type(exc).__name__}: {exc}) and is "
                          "disabled for the rest of this run (pass strict=True to raise)", WeightWatchWarning,
                          stacklevel=2)
            return
        self.verdict = verdict
        p = verdict.predicted_accuracy
        pl_module.log("ww_pred_accuracy", float("nan") if p is None else float(p), on_epoch=True, prog_bar=True)
        pl_module.log("ww_doomed", float(verdict.doomed), on_epoch=True)
        pl_module.log("ww_status", float(int(verdict.status)), on_epoch=True)
        if self.verbose:
            print(verdict.line(), flush=True)
        else:
            log.info("%s", verdict.line())
        if verdict.doomed and self.stop_on_doom and self.stopped_epoch is None:
            trainer.should_stop = True
            self.stopped_epoch = done
            non_finite = any(r.value == "non_finite" for r in verdict.reasons)
            self.stopping_reason = (WeightWatchStoppingReason.NON_FINITE if non_finite
                                    else WeightWatchStoppingReason.DOOMED)
            self.stopping_reason_message = verdict.message
            log.warning("weightwatch: stopping training after epoch %d: %s", done, verdict.message)

    @property
    def history(self):
        return self.monitor.history_frame()

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "stopped_epoch": self.stopped_epoch,
                "stopping_reason": self.stopping_reason.name, "stopping_reason_message": self.stopping_reason_message}

    def load_state_dict(self, state_dict: dict) -> None:
        self.monitor.load_state_dict(state_dict.get("monitor", {}))
        self.stopped_epoch = state_dict.get("stopped_epoch")
        self.stopping_reason = WeightWatchStoppingReason[state_dict.get("stopping_reason", "NOT_STOPPED")]
        self.stopping_reason_message = state_dict.get("stopping_reason_message")


def _plain(pl_module) -> bool:
    """A LightningModule whose only child is a plain ``nn.Sequential`` chain."""
    children = list(pl_module.children())
    return len(children) == 1 and is_plain_torch_chain(children[0])
