"""Built-in adapters: Keras, torch and flat vector + layout."""

from ..adapters import flat, keras, torch
from ..hookspecs import hookimpl


@hookimpl
def register_adapters(register):
    for adapter in (keras.ADAPTER, torch.ADAPTER, flat.ADAPTER):
        register(adapter)
