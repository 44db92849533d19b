"""Built-in zoo datasets: digits, textures, shapes (embedded), file-backed ones and tabular vectors."""

from ..hookspecs import hookimpl
from ..zoo.datasets import DATASET_LOADERS


@hookimpl
def register_datasets(register):
    for name, loader in DATASET_LOADERS.items():
        register(name, loader)
