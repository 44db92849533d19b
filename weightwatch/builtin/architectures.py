"""Built-in zoo network families: paper-cnn, cnn-deep, cnn-wide, cnn-maxpool, mlp (images); mlp-tabular (vectors, sized by the dataset) and mlp-binary (one sigmoid output); the residual wrn10-x1/x2/x4 (trained by Keras' fit)."""

from ..hookspecs import hookimpl
from ..zoo.architectures import ARCHITECTURES
from ..zoo.residual import RESIDUAL_FAMILIES


@hookimpl
def register_architectures(register):
    for spec in ARCHITECTURES.values():
        register(spec)
    for family in RESIDUAL_FAMILIES.values():
        register(family)
