"""Built-in zoo network families: paper-cnn, cnn-deep, cnn-wide, mlp (images) and mlp-tabular (vectors, sized by the dataset)."""

from ..hookspecs import hookimpl
from ..zoo.architectures import ARCHITECTURES


@hookimpl
def register_architectures(register):
    for spec in ARCHITECTURES.values():
        register(spec)
