"""Built-in zoo network families: paper-cnn, cnn-deep, cnn-wide, cnn-maxpool, mlp (images); mlp-tabular (vectors, sized by the dataset) and mlp-binary (one sigmoid output)."""

from ..hookspecs import hookimpl
from ..zoo.architectures import ARCHITECTURES


@hookimpl
def register_architectures(register):
    for spec in ARCHITECTURES.values():
        register(spec)
