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


from typing import Optional

from ._compat import require

torch = require("torch", "weightwatch.torch")

from .adapters import to_network  # noqa: E402
from .network import is_plain_chain  # noqa: E402
from .verdict import StoppingReason  # noqa: E402
from .watch import Watcher  # noqa: E402


__all__ = ["WeightWatch", "StoppingReason", "is_plain_torch_chain"]

def is_plain_torch_chain(model) -> bool:
    """True when the interval-bound rules are sound for the model: :func:`weightwatch.network.is_plain_chain` of
    what the torch adapter reads (an ``nn.Sequential``, possibly nested, of the layers they see through; a
    Linear after a channels-first flatten of a feature map wider than 1x1 is not plain)."""
    with torch.no_grad():
        return is_plain_chain(to_network(model))


class WeightWatch(Watcher):
    """Monitor a torch model in a hand-written loop: call :meth:`step` after each epoch.

    Parameters are those of :class:`weightwatch.keras.WeightWatchCallback`
    (``predictor``, ``every``, ``stop_on_doom``, ``patience``,
    ``start_from_epoch``, ``min_delta``, ``input_range``, ``log_stats``,
    ``strict``, ``verbose``, ``rules``, ``features``, monitor options); ``verbose="auto"`` prints (a short
    line per check, notes once, the reason at the stop), as a plain loop has no progress bar to follow;
    ``verbose=0`` prints nothing. The weights at
    construction are taken as the start of training; pass ``epochs=`` (the
    planned number of epochs) so the forecast knows how far the run is, and
    ``steps=`` to :meth:`step` (optimizer steps so far) when you count them.
    Once stopped, ``stopping_reason`` (:class:`~weightwatch.monitor.StoppingReason`, as in the Keras and
    Lightning callbacks) and ``stopping_message`` say why.
    """

    framework = "PyTorch"

    def __init__(self, model, predictor="auto", every: int = 1, stop_on_doom: bool = False, patience: int = 2,
                 start_from_epoch: int = 1, min_delta: float = 0.02, input_range=None, log_stats: bool = False,
                 strict: bool = False, verbose="auto", rules="all", **monitor_options):
        self.model = model
        self._setup_watch(predictor, every, stop_on_doom, patience, start_from_epoch, min_delta, input_range,
                          log_stats, strict, verbose, rules, **monitor_options)
        self.reset()

    @property
    def should_stop(self) -> bool:
        """True once the run was judged doomed with ``stop_on_doom``."""
        return self.stopped_epoch is not None

    def reset(self) -> None:
        """Start a new run (history and counters cleared; the weights now are its start)."""
        self._begin(self._read)
        self._resolve_verbose(True)

    def _read(self):
        with torch.no_grad():
            return to_network(self.model)

    def step(self, epoch: int, steps: Optional[int] = None, optimizer=None, logs: Optional[dict] = None):
        """Check the weights after ``epoch`` completed epochs; returns the Verdict (None if skipped).

        ``verdict.to_dict()`` is what the Keras callback logs (``ww_pred_accuracy``, ..., and the
        ``ww_feature_*`` values of ``features=``), for your logger.

        ``steps``: optimizer steps so far; ``optimizer``: the torch optimizer (the doom model reads its kind and
        learning rate); ``logs``: the epoch's mean training loss and accuracy, ``{"loss": ..., "accuracy":
        ...}`` (the doom model compares them with chance). All optional; each one given sharpens the verdict.
        """
        return self._watch(int(epoch), self._read, steps=steps, optimizer=optimizer, logs=logs)

