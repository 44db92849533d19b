"""Keras 3 callback: watch a ``model.fit`` run through its weights.

A thin adapter around :class:`weightwatch.monitor.Monitor`; works with
Sequential, Functional and subclassed models on any Keras 3 backend::

    from weightwatch.keras import WeightWatchCallback
    model.fit(x, y, epochs=20, callbacks=[WeightWatchCallback(stop_on_doom=True)])
"""

from __future__ import annotations

import logging
import warnings

from ._compat import require

keras = require("keras", "weightwatch.keras")

from .adapters import to_network  # noqa: E402
from .monitor import Monitor, WeightWatchWarning  # noqa: E402

log = logging.getLogger(__name__)

__all__ = ["WeightWatchCallback", "is_plain_keras_chain"]

# Layers the interval-bound rules can see through (identity, per-channel pooling or elementwise at inference).
_PLAIN = (
    "InputLayer", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
    "SeparableConv2D", "Dense", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Flatten", "Activation", "ReLU",
)


def is_plain_keras_chain(model) -> bool:
    """True when the model holds only layers the interval-bound rules are sound for."""
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    leaves = [l for l in layers if not list(l._flatten_layers(include_self=False, recursive=False))]
    if not leaves:
        return False
    if isinstance(model, keras.Sequential) or type(model).__name__ == "Functional":
        return all(type(l).__name__ in _PLAIN for l in leaves)
    return False  # subclassed: the forward pass is unknown, so the bounds could be unsound


class WeightWatchCallback(keras.callbacks.Callback):
    """Predict the run's accuracy from its weights every ``every`` epochs and flag doomed runs.

    Parameters
    ----------
    predictor : None, "auto", path or fitted predictor
        See :class:`~weightwatch.monitor.Monitor`.
    every : int
        Check every ``every`` epochs.
    stop_on_doom : bool
        Set ``model.stop_training`` once the run is doomed.
    patience, start_from_epoch, min_delta, input_range, strict, rules
        Passed to the monitor (Keras ``EarlyStopping`` vocabulary).
    log_stats : bool
        Keep per-layer statistics in the history.
    verbose : int
        1: one line per checked epoch; 0: silent (logging only).
    **monitor_options
        Other :class:`Monitor` arguments (``num_classes``, ``chance_margin``, ``features``).

    Attributes
    ----------
    monitor : Monitor
    stopped_epoch : int or None
        Epochs completed when training was stopped.
    stopping_reason : Reason or None
    stopping_message : str
    verdict : Verdict or None
        Latest verdict.
    """

    def __init__(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                 start_from_epoch: int = 1, min_delta: float = 0.02, input_range=(-1, 1), log_stats: bool = False,
                 strict: bool = False, verbose: int = 1, rules="all", **monitor_options):
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
        self.stopping_reason = None
        self.stopping_message = ""
        self.verdict = None
        self._disabled = False
        self._plain = None

    def on_train_begin(self, logs=None):
        self.monitor.reset()
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        done = int(epoch) + 1
        if self._disabled:
            return
        if done % self.every:
            return
        try:
            verdict = self._check(done)
        except Exception as exc:  # noqa: BLE001 - never crash the user's training
            if self.strict:
                raise
            self._disabled = True
            warnings.warn(f"weightwatch: the Keras callback failed ({type(exc).__name__}: {exc}) and is disabled "
                          "for the rest of this run (pass strict=True to raise)", WeightWatchWarning, stacklevel=2)
            return
        p = verdict.predicted_accuracy
        logs["ww_pred_accuracy"] = float("nan") if p is None else float(p)
        logs["ww_doomed"] = float(verdict.doomed)
        logs["ww_status"] = float(int(verdict.status))
        if verdict.doomed and self.stop_on_doom and self.stopped_epoch is None:
            self.model.stop_training = True
            self.stopped_epoch = done
            self.stopping_reason = verdict.reasons[0] if verdict.reasons else None
            self.stopping_message = verdict.message
            log.warning("weightwatch: stopping training after epoch %d: %s", done, verdict.message)

    def _check(self, done: int):
        if self._plain is None:
            self._plain = is_plain_keras_chain(self.model)
        network = to_network(self.model)
        verdict = self.monitor.step(network, done, options={"plain_chain": self._plain})
        self.verdict = verdict
        if self.verbose:
            print(verdict.line(), flush=True)
        else:
            log.info("%s", verdict.line())
        return verdict

    @property
    def history(self):
        """The monitor's history as a pandas DataFrame."""
        return self.monitor.history_frame()

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "stopped_epoch": self.stopped_epoch,
                "stopping_message": self.stopping_message}

    def load_state_dict(self, state: dict) -> None:
        self.monitor.load_state_dict(state.get("monitor", {}))
        self.stopped_epoch = state.get("stopped_epoch")
        self.stopping_message = state.get("stopping_message", "")

