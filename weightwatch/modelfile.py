"""Read a saved model file into a :class:`Network` without training code.

``.keras`` / ``.h5``: Keras (``safe_mode=True``: no arbitrary code runs);
``.pt`` / ``.pth``: a torch state dict (``weights_only=True``); a whole
pickled module is only read with ``unsafe=True``, since unpickling runs code.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._compat import require
from .adapters import to_network
from .errors import ModelFileError
from .network import Network

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def load_model_file(path, *, unsafe: bool = False) -> Network:
    """Load ``path`` and return its weights as a Network."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        keras = require("keras", f"reading {suffix} files")
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
        except Exception as exc:
            raise ModelFileError(f"Keras could not load {path}: {exc}") from None
        net = to_network(model)
    elif suffix in TORCH_SUFFIXES:
        torch = require("torch", f"reading {suffix} files")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=not unsafe)
        except Exception as exc:
            hint = "" if unsafe else " (if it is a whole pickled module, not a state dict, pass --unsafe-load: unpickling runs code)"
            raise ModelFileError(f"torch could not load {path}: {exc}{hint}") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]  # Lightning checkpoints
        net = to_network(obj)
    else:
        raise ModelFileError(
            f"don't know how to read {path.name}: expected one of {', '.join(KERAS_SUFFIXES + TORCH_SUFFIXES)}"
        )
    if len(net) == 0:
        raise ModelFileError(f"{path} holds no supported weighted layer (Conv*, Dense/Linear)")
    return Network(net.layers, source=net.source, name=net.name or path.stem, meta={"path": str(path)})
