"""Optuna sweeps pruned from the weights: no validation data needed, and the pruner learns from the sweep.

::

    import optuna
    from weightwatch.optuna import WeightWatchPruner, KerasPruningCallback

    def objective(trial):
        model = build(trial)
        model.fit(x, y, epochs=20, callbacks=[KerasPruningCallback(trial)])
        return model.evaluate(x_test, y_test)[1]

    study = optuna.create_study(direction="maximize", pruner=WeightWatchPruner())
    study.optimize(objective, n_trials=50)

``KerasPruningCallback``, ``LightningPruningCallback`` and :func:`report` (a plain torch loop) store each
epoch's weight evidence in the trial's user attributes and report the forecast (or your metric);
:class:`WeightWatchPruner` prunes doomed trials from the first trial and, once trials finished, the ones whose
corrected forecast cannot reach them. Everything lives in the study's storage: workers on one RDB or journal
storage share it. Needs ``pip install 'weightwatch[optuna]'``.
"""

from __future__ import annotations

from .._compat import require

require("optuna", "weightwatch.optuna")

from .correction import Correction  # noqa: E402
from .pruner import WeightWatchPruner  # noqa: E402
from .reporter import TrialReporter, report  # noqa: E402

__all__ = ["WeightWatchPruner", "KerasPruningCallback", "LightningPruningCallback", "TrialReporter", "report",
           "Correction"]

_LAZY = {"KerasPruningCallback": ".keras", "LightningPruningCallback": ".lightning"}


def __getattr__(name):  # the framework is imported only when its callback is asked for
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
