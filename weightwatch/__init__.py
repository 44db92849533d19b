"""weightwatch: predict a neural network's accuracy from its weights, and watch training with it.

Core modules import no deep-learning framework; Keras and torch are imported
only by their adapters and callbacks (``weightwatch.keras``,
``weightwatch.torch``, ``weightwatch.lightning``).
"""

__version__ = "0.1.0"

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
]
