"""weightwatch: predict a neural network's accuracy from its weights, and watch training with it.

Core modules import no deep-learning framework; Keras and torch are imported
only by their adapters and callbacks (``weightwatch.keras``,
``weightwatch.torch``, ``weightwatch.lightning``).
"""

from ._version import __version__

import importlib
import logging
from typing import TYPE_CHECKING

# A library's logger stays silent until the application configures logging (the stdlib's advice): without
# this, Python's last-resort handler would print our warnings to stderr even with verbose=0.
logging.getLogger(__name__).addHandler(logging.NullHandler())

from . import plugins as _plugins

# The built-in plugins, declared from the top of the package (they sit above what they register); each is
# imported the first time its kind is used.
_plugins.declare_builtins({
    "extractors": "weightwatch.builtin.extractors",
    "adapters": "weightwatch.builtin.adapters",
    "rules": "weightwatch.builtin.rules",
    "datasets": "weightwatch.builtin.datasets",
    "architectures": "weightwatch.builtin.architectures",
})

from .adapters import to_network
from .errors import NonFiniteWeightsError, WeightWatchError
from .features import extract, extract_matrix, get_extractor
from .network import LayerWeights, Network, WeightsError
from .pretrained import Prediction, predict_accuracy

__all__ = [
    "__version__",
    "LayerWeights",
    "Network",
    "WeightsError",
    "WeightWatchError",
    "NonFiniteWeightsError",
    "to_network",
    "extract",
    "extract_matrix",
    "get_extractor",
    "predict_accuracy",
    "Prediction",
    "Monitor",
    "Verdict",
    "LogitLinearPredictor",
    "GBMPredictor",
    "DNNPredictor",
    "Zoo",
]

# Imported on first use: the predictors pull in scikit-learn, pandas and scipy (about a second), which
# ``import weightwatch`` does not need. No name here imports keras, tensorflow, torch or lightgbm.
_LAZY = {
    "Monitor": "weightwatch.monitor",
    "Verdict": "weightwatch.monitor",
    "LogitLinearPredictor": "weightwatch.predictors",
    "GBMPredictor": "weightwatch.predictors",
    "DNNPredictor": "weightwatch.predictors",
    "Zoo": "weightwatch.zoo.storage",
}

if TYPE_CHECKING:
    from .monitor import Monitor, Verdict
    from .predictors import DNNPredictor, GBMPredictor, LogitLinearPredictor
    from .zoo.storage import Zoo


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
