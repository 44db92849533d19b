"""weightwatch: predict a neural network's accuracy from its weights, and watch training with it.

Core modules import no deep-learning framework; Keras and torch are imported
only by their adapters and callbacks (``weightwatch.keras``,
``weightwatch.torch``, ``weightwatch.lightning``).
"""

from ._version import __version__

import importlib
from typing import TYPE_CHECKING

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
