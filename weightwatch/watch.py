"""The framework-neutral core of the training callbacks (:class:`Watcher`).

The Keras, torch and Lightning callbacks are thin subclasses: they read the framework's model into a
:class:`~weightwatch.network.Network` and stop the framework's way; the check cadence, never crashing the
user's training, the notes and the stop itself live here, around one :class:`~weightwatch.monitor.Monitor`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Optional

from .errors import InvalidArgumentError
from .monitor import Monitor, _optimizer_facts
from .verdict import StoppingReason, Verdict, WeightWatchWarning

log = logging.getLogger("weightwatch.monitor")  # silent unless the application configures logging

__all__ = ["Watcher"]


class Watcher:
    """Framework-neutral core of the training callbacks (a mixin).

    Owns what every framework adapter shares: the Keras-``EarlyStopping``
    style options, the check cadence (``every``), never crashing the user's
    training (one warning, then disabled, unless ``strict``), the output and
    the stop decision. Adapters supply the network and their own way to log,
    to print and to stop.

    Output: everything goes to the ``weightwatch`` logger (silent unless the
    application configures :mod:`logging`). With ``verbose`` on (``"auto"``:
    when the framework shows a progress bar) it is also printed: a short
    status line per check, every note once per run (which predictor, out of
    domain, nothing to check) and the reason in full once, at the stop.
    ``verbose=0`` prints nothing.
    """

    framework = "weightwatch"

    def _setup_watch(self, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                     start_from_epoch: int = 1, min_delta: float = 0.02, input_range=None,
                     log_stats: bool = False, strict: bool = False, verbose="auto", rules="all",
                     **monitor_options) -> None:
        if every < 1:
            raise InvalidArgumentError(f"every must be >= 1, got {every}")
        self.every = int(every)
        self.stop_on_doom = bool(stop_on_doom)
        self.strict = bool(strict)
        self.verbose = check_verbose(verbose)
        self.monitor = Monitor(predictor=predictor, rules=rules, patience=patience,
                               start_from_epoch=start_from_epoch, min_delta=min_delta, input_range=input_range,
                               strict=strict, log_stats=log_stats, **monitor_options)
        self._printing = self.verbose != 0
        self._reset_watch()

    def _reset_watch(self) -> None:
        self.stopped_epoch = None
        self.stopping_reason = StoppingReason.NOT_STOPPED
        self.stopping_message = ""
        self.verdict = None
        self._disabled = False
        self._said: set = set()

    def _show(self, text: str) -> None:
        """Print one line for the user (only when printing; adapters print their framework's way)."""
        print(text, flush=True)

    def _emit(self, text: str, level: int = logging.INFO, logged: Optional[str] = None) -> None:
        """Log ``logged`` (default ``text``) under the ``weightwatch`` logger; print ``text`` when verbose."""
        if level is not None:
            log.log(level, "%s", text if logged is None else logged)
        if self._printing:
            self._show(text)

    def _say(self, key: str, text: str, level: Optional[int] = logging.WARNING) -> None:
        """A note shown once per run (logged at ``level``; None: printed only, as it was logged elsewhere)."""
        if key in self._said:
            return
        self._said.add(key)
        self._emit(text, level)

    def _resolve_verbose(self, progress_bar: bool) -> None:
        """Whether this run prints: ``verbose="auto"`` follows the framework's progress bar."""
        self._printing = bool(progress_bar) if self.verbose == "auto" else bool(self.verbose)

    def _begin(self, read_network) -> None:
        """Start a run: forget the last one and record the weights at its start; never fails the user's
        training."""
        self.monitor.reset()
        self._reset_watch()
        try:
            self.monitor.start(read_network())
        except Exception as exc:  # noqa: BLE001 - e.g. a model not built yet: the forecast then lacks the start
            if self.strict:
                raise
            log.debug("weightwatch: initial weights not read (%s: %s)", type(exc).__name__, exc)

    def _watch(self, epoch: int, read_network, steps=None, optimizer=None, logs=None) -> Optional[Verdict]:
        """Check after ``epoch`` completed epochs; None when skipped or disabled.

        ``read_network()`` returns the Network (its adapter's description says whether the interval-bound
        rules are sound for it: :func:`~weightwatch.network.is_plain_chain`), ``steps`` the optimizer
        steps so far (None if unknown), ``logs`` the training loss and accuracy
        the framework logged for the epoch. Sets ``stopped_epoch`` when the run
        is doomed and ``stop_on_doom`` is on.
        """
        if self._disabled or epoch % self.every:
            return None
        try:
            network = read_network()
            if not len(network):
                self._disabled = True
                self._say("empty", f"weightwatch: nothing can be checked in this model: it has no layer the "
                          f"{self.framework} adapter reads (conv, dense); the callback is off for this run")
                return None
            verdict = self.monitor.step(network, epoch, steps=steps,
                                        optimizer=_optimizer_facts(optimizer), logs=_plain_logs(logs))
        except Exception as exc:  # noqa: BLE001 - never crash the user's training
            if self.strict:
                raise
            self._disabled = True
            warnings.warn(f"weightwatch: the {self.framework} callback failed ({type(exc).__name__}: {exc}) and "
                          "is disabled for the rest of this run (pass strict=True to raise)", WeightWatchWarning,
                          stacklevel=3)
            return None
        self.verdict = verdict
        if verdict.note:  # which predictor, once per run (the monitor logged it when it chose)
            self._say("note", f"weightwatch: {verdict.note}", level=None)
        if verdict.in_domain is False:
            self._say("domain", f"weightwatch: predicted accuracy is not calibrated for this model: "
                      f"{verdict.domain_reason}; ww_in_domain = 0 (the doom model still judges the run: unusual "
                      "is not healthy)")
        self._emit(verdict.line(short=True), logging.INFO, logged=verdict.line())
        if verdict.doomed and self.stop_on_doom and self.stopped_epoch is None:
            self.stopped_epoch = epoch
            self.stopping_reason = verdict.stopping_reason
            self.stopping_message = verdict.message
            self._say("doomed", f"weightwatch: stopping training after epoch {epoch}: {verdict.message}")
        elif verdict.doomed:
            self._say("doomed", f"weightwatch: the run is judged doomed after epoch {epoch} (training goes on: "
                      f"stop_on_doom=False): {verdict.message}")
        return verdict

    @staticmethod
    def _log_values(verdict: Verdict) -> dict:
        """What the callbacks log per check: :meth:`Verdict.to_dict` (``ww_pred_accuracy``,
        ``ww_pred_final_accuracy`` and its ``_low`` / ``_high``, ``ww_doom_probability``, ``ww_in_domain``, ...)."""
        return verdict.to_dict()

    @property
    def stopping_reason_message(self) -> Optional[str]:
        """Lightning's name for :attr:`stopping_message` (None until stopped)."""
        return self.stopping_message or None

    @property
    def history(self):
        """The monitor's history as a pandas DataFrame."""
        return self.monitor.history_frame()

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "stopped_epoch": self.stopped_epoch,
                "stopping_reason": self.stopping_reason.name, "stopping_message": self.stopping_message}

    def load_state_dict(self, state: dict) -> None:
        self.monitor.load_state_dict(state.get("monitor", {}))
        self.stopped_epoch = state.get("stopped_epoch")
        self.stopping_reason = StoppingReason[state.get("stopping_reason", "NOT_STOPPED")]
        self.stopping_message = state.get("stopping_message", "")


def check_verbose(verbose):
    """``"auto"``, 0, 1 or 2 (Keras' values; 1 and 2 both print one line per check), else an error."""
    if verbose == "auto":
        return "auto"
    if isinstance(verbose, bool) or (isinstance(verbose, int) and verbose in (0, 1, 2)):
        return int(verbose)
    raise InvalidArgumentError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")


def _plain_logs(logs) -> Optional[dict]:
    """The framework's logs as plain floats (Keras' numpy scalars, Lightning's tensors); what cannot be read as
    one number is left out, and our own ``ww_*`` values are never evidence."""
    if not logs:
        return None
    out = {}
    for key, value in dict(logs).items():
        if str(key).startswith("ww_"):
            continue
        try:
            out[str(key)] = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out
