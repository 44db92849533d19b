"""Keras 3 callback: watch a ``model.fit`` run through its weights.

A thin adapter around :class:`weightwatch.monitor.Monitor`; works with
Sequential, Functional and subclassed models on any Keras 3 backend::

    from weightwatch.keras import WeightWatchCallback
    model.fit(x, y, epochs=20, callbacks=[WeightWatchCallback(stop_on_doom=True)])
"""

from __future__ import annotations

import logging
import sys

from ._compat import require

keras = require("keras", "weightwatch.keras")

from .adapters import to_network  # noqa: E402
from .adapters.keras import inner_optimizer  # noqa: E402
from .network import is_plain_chain  # noqa: E402
from .verdict import StoppingReason  # noqa: E402
from .watch import Watcher  # noqa: E402


__all__ = ["WeightWatchCallback", "StoppingReason", "is_plain_keras_chain"]

log = logging.getLogger(__name__)

def run_first(callback, caller, depth: int = 4) -> bool:
    """Move ``callback`` to the front of the Keras ``CallbackList`` that is calling it (found among the
    ``caller`` frame and its parents), so the ``ww_*`` values it adds to the epoch's logs reach the callbacks
    listed before it (CSVLogger, TensorBoard, EarlyStopping). Safe during the list's ``on_train_begin`` loop:
    the callbacks before it, shifted by one, were already called. False when no list was found (a log says
    so)."""
    frame = caller
    for _ in range(depth):
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList):
            items = owner.callbacks
            where = next((i for i, c in enumerate(items) if c is callback), None)
            if where is None:
                break
            if where:
                items.insert(0, items.pop(where))
            return True
        frame = frame.f_back
    log.debug("weightwatch: the Keras callback list was not found; callbacks listed before WeightWatchCallback "
              "do not see its ww_* values")
    return False


def is_plain_keras_chain(model) -> bool:
    """True when the interval-bound rules are sound for the model: :func:`weightwatch.network.is_plain_chain` of
    what the Keras adapter reads (a Sequential or Functional model of the layers they see through)."""
    return is_plain_chain(to_network(model))


class WeightWatchCallback(Watcher, keras.callbacks.Callback):
    """Predict the run's accuracy from its weights every ``every`` epochs and flag doomed runs.

    Parameters
    ----------
    predictor : None, "auto", name, path or fitted predictor
        See :class:`~weightwatch.monitor.Monitor`. ``"auto"``: the shipped
        predictor of the accuracy now and forecaster of the final accuracy
        for the model's family; doom is judged by the forecast.
    every : int
        Check every ``every`` epochs.
    stop_on_doom : bool
        Set ``model.stop_training`` once the run is doomed.
    patience, start_from_epoch, min_delta, strict, rules
        Passed to the monitor (Keras ``EarlyStopping`` vocabulary).
    input_range : (lo, hi) or None
        Declared range of the inputs; makes the interval-bound rules proofs
        that may stop the run (without it they only warn).
    log_stats : bool
        Keep per-layer statistics in the history.
    verbose : "auto", 0 or 1
        ``"auto"`` (default): print when ``model.fit`` shows its progress bar
        (``fit(verbose != 0)``), nothing otherwise; 1: print; 0: print
        nothing (everything is logged under the ``weightwatch`` logger
        either way). Printed: a short status line per check, after Keras'
        own line for the epoch, each note once per run, and the reason once,
        at the stop.
    features : list of str, optional
        Feature sets to log every check, any registered extractor (a
        plugin's too): ``ww_feature_<name>`` (one number) or
        ``ww_feature_<name>_<i>`` (each element of a vector). An unknown name
        is an error here.
    **monitor_options
        Other :class:`Monitor` arguments (``predictor_path``: directories of your own predictors, searched first;
        ``forecaster``, ``doom_model``, ``num_classes``, ``chance_margin``, ``feature_set``,
        ``epochs``; by default ``epochs`` is ``model.fit``'s).

    Logs ``ww_pred_accuracy`` (accuracy now), ``ww_pred_final_accuracy``
    (forecast of the accuracy at the end of the run) and its interval
    ``ww_pred_final_accuracy_low`` / ``_high``, ``ww_doom_probability``
    (probability that the run ends doomed), ``ww_in_domain`` (0
    when the model is outside the predictors' training data), ``ww_doomed``
    and ``ww_status`` into ``logs`` (History, CSVLogger, TensorBoard).
    CSVLogger, TensorBoard and EarlyStopping see them wherever the callback
    is listed: at the start of ``fit`` it moves itself to the front of
    Keras' callback list, so it runs first at every epoch end.

    Attributes
    ----------
    monitor : Monitor
    stopped_epoch : int or None
        Epochs completed when training was stopped.
    stopping_reason : StoppingReason
        ``NOT_STOPPED``, ``DOOMED`` or ``NON_FINITE`` (the same type in the torch and Lightning callbacks).
    stopping_message : str
        Why, in words (``stopping_reason_message``: the same, None until stopped).
    verdict : Verdict or None
        Latest verdict.
    """

    framework = "Keras"

    def __init__(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                 start_from_epoch: int = 1, min_delta: float = 0.02, input_range=None, log_stats: bool = False,
                 strict: bool = False, verbose="auto", rules="all", **monitor_options):
        super().__init__()
        self._monitor_options = dict(monitor_options)
        self._setup_watch(predictor, every, stop_on_doom, patience, start_from_epoch, min_delta, input_range,
                          log_stats, strict, verbose, rules, **monitor_options)

    def _reset_watch(self):
        super()._reset_watch()
        self._pending = []

    def on_train_begin(self, logs=None):
        run_first(self, sys._getframe(1))
        self._begin(lambda: to_network(self.model))
        self._resolve_verbose((self.params or {}).get("verbose", 0) != 0)
        if "epochs" not in self._monitor_options:  # the planned length is model.fit's
            self.monitor.plan((self.params or {}).get("epochs") or None)

    def on_epoch_begin(self, epoch, logs=None):
        self._flush()

    def on_train_end(self, logs=None):
        self._flush()

    def _show(self, text: str) -> None:
        # printed at the next epoch's start or the end of fit: after Keras' progress bar closed its line
        self._pending.append(text)

    def _flush(self) -> None:
        for text in self._pending:
            print(text, flush=True)
        self._pending = []

    def on_epoch_end(self, epoch, logs=None):
        done = int(epoch) + 1
        verdict = self._watch(done, lambda: to_network(self.model), steps=self._steps(),
                              optimizer=inner_optimizer(getattr(self.model, "optimizer", None)), logs=logs)
        if verdict is None:
            return
        if logs is not None:
            logs.update(self._log_values(verdict))
        if self.stopped_epoch == done:
            self.model.stop_training = True

    def _steps(self):
        try:
            return int(inner_optimizer(self.model.optimizer).iterations)  # steps applied, not skipped by loss scaling
        except Exception:  # noqa: BLE001 - no optimizer yet or another backend's counter
            return None

