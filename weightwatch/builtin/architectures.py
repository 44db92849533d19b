"""Built-in zoo network families: paper-cnn, cnn-deep, cnn-wide, mlp."""

from ..hookspecs import hookimpl
from ..zoo.architectures import ARCHITECTURES


@hookimpl
def register_architectures(register):
    for spec in ARCHITECTURES.values():
        register(spec)
