"""PyTorch: watch a plain training loop through the model's weights.

::

    from weightwatch.torch import WeightWatch
    ww = WeightWatch(model, stop_on_doom=True)
    for epoch in range(1, epochs + 1):
        train_one_epoch(model)
        verdict = ww.step(epoch)
        if ww.should_stop:
            print(ww.stopping_message); break
"""

from __future__ import annotations

import logging
import warnings

from ._compat import require

torch = require("torch", "weightwatch.torch")

from .adapters import to_network  # noqa: E402
from .monitor import Monitor, WeightWatchWarning  # noqa: E402

log = logging.getLogger(__name__)

__all__ = ["WeightWatch", "is_plain_torch_chain"]

_PLAIN = (
    "Conv1d", "Conv2d", "Conv3d", "Linear", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "MaxPool1d",
    "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Flatten", "ReLU", "ReLU6",
    "Tanh", "Sigmoid", "Identity",
)


def is_plain_torch_chain(model) -> bool:
    """True for an ``nn.Sequential`` (possibly nested) of layers the interval-bound rules are sound for.

    Channels-first flattening is not channels-last, so a Linear after
    Flatten of a feature map wider than 1x1 is not plain.
    """
    if not isinstance(model, torch.nn.Sequential):
        return False
    leaves = [m for m in model.modules() if not list(m.children())]
    if not leaves or not all(type(m).__name__ in _PLAIN for m in leaves):
        return False
    prev_conv = None
    for m in leaves:
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            prev_conv = m
        elif isinstance(m, torch.nn.Linear):
            if prev_conv is not None and m.in_features != prev_conv.out_channels:
                return False  # channels-first flatten of a feature map
            prev_conv = None
    return True


class WeightWatch:
    """Monitor a torch model in a hand-written loop: call :meth:`step` after each epoch.

    Parameters are those of :class:`weightwatch.keras.WeightWatchCallback`
    (``predictor``, ``every``, ``stop_on_doom``, ``patience``,
    ``start_from_epoch``, ``min_delta``, ``input_range``, ``log_stats``,
    ``strict``, ``verbose``, ``rules``, monitor options).
    """

    def __init__(self, model, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                 start_from_epoch: int = 1, min_delta: float = 0.02, input_range=(-1, 1), log_stats: bool = False,
                 strict: bool = False, verbose: int = 0, rules="all", **monitor_options):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model = model
        self.every = int(every)
        self.stop_on_doom = bool(stop_on_doom)
        self.strict = bool(strict)
        self.verbose = int(verbose)
        self.monitor = Monitor(predictor=predictor, rules=rules, patience=patience,
                               start_from_epoch=start_from_epoch, min_delta=min_delta, input_range=input_range,
                               strict=strict, log_stats=log_stats, **monitor_options)
        self.reset()

    def reset(self) -> None:
        """Start a new run (history and counters cleared)."""
        self.monitor.reset()
        self.should_stop = False
        self.stopped_epoch = None
        self.stopping_reason = None
        self.stopping_message = ""
        self.verdict = None
        self._disabled = False

    def step(self, epoch: int):
        """Check the weights after ``epoch`` completed epochs; returns the Verdict (None if skipped)."""
        if self._disabled or int(epoch) % self.every:
            return None
        try:
            with torch.no_grad():
                network = to_network(self.model)
            verdict = self.monitor.step(network, int(epoch),
                                        options={"plain_chain": is_plain_torch_chain(self.model)})
        except Exception as exc:  # noqa: BLE001 - never crash the user's training
            if self.strict:
                raise
            self._disabled = True
            warnings.warn(f"weightwatch: monitoring failed ({type(exc).__name__}: {exc}) and is disabled for the "
                          "rest of this run (pass strict=True to raise)", WeightWatchWarning, stacklevel=2)
            return None
        self.verdict = verdict
        line = verdict.line()
        if self.verbose:
            print(line, flush=True)
        else:
            log.info("%s", line)
        if verdict.doomed and self.stop_on_doom and not self.should_stop:
            self.should_stop = True
            self.stopped_epoch = int(epoch)
            self.stopping_reason = verdict.reasons[0] if verdict.reasons else None
            self.stopping_message = verdict.message
            log.warning("weightwatch: stop training after epoch %d: %s", epoch, verdict.message)
        return verdict

    @property
    def history(self):
        return self.monitor.history_frame()

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "should_stop": self.should_stop,
                "stopped_epoch": self.stopped_epoch, "stopping_message": self.stopping_message}

    def load_state_dict(self, state: dict) -> None:
        self.monitor.load_state_dict(state.get("monitor", {}))
        self.should_stop = bool(state.get("should_stop", False))
        self.stopped_epoch = state.get("stopped_epoch")
        self.stopping_message = state.get("stopping_message", "")

