"""Read a saved model file into a :class:`Network` without training code.

``.keras`` / ``.h5``: Keras (``safe_mode=True``: no arbitrary code runs);
``.pt`` / ``.pth``: a torch state dict (``weights_only=True``); a whole
pickled module is only read with ``unsafe=True``, since unpickling runs code.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from ._compat import require
from .adapters import to_network
from .errors import ModelFileError, UnsupportedModelError, WeightsError
from .network import Network

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth", ".bin")


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_container(path: Path, suffix: str) -> None:
    """Refuse what cannot be a model file before a framework gives a misleading message."""
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes): the save was interrupted, or it is not a model file")
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a Keras archive (.keras files are zip archives; this one is "
                             "truncated or in another format)")
    if suffix in (".h5", ".hdf5"):
        with open(path, "rb") as f:
            head = f.read(8)
        if head != _HDF5_SIGNATURE:
            raise ModelFileError(f"{path} is not an HDF5 file (no HDF5 signature): truncated or another format")
    if suffix in TORCH_SUFFIXES and not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if not head.startswith(b"\x80"):  # legacy torch files are pickles, which start with PROTO
            raise ModelFileError(f"{path} is not a torch file (neither a torch zip archive nor a pickle): "
                                 "truncated or another format")


def _describe(obj) -> str:
    if type(obj).__name__ == "Tensor" or hasattr(obj, "shape") and not isinstance(obj, dict):
        return f"a single tensor of shape {tuple(getattr(obj, 'shape', ()))}"
    if isinstance(obj, dict):
        if not obj:
            return "an empty dict"
        if not any(hasattr(v, "shape") for v in obj.values()):
            keys = ", ".join(map(str, [*obj][:5])) + (", ..." if len(obj) > 5 else "")
            return f"a dict without tensors (keys: {keys})"
        return "a dict of tensors"
    return f"a {type(obj).__module__}.{type(obj).__name__}"


def _torch_reason(exc: Exception) -> str:
    """The useful part of torch.load's message (it is a paragraph long)."""
    text = " ".join(str(exc).split())
    m = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    return m.group(1) if m else (text[:300] or type(exc).__name__)


def _is_pickled_object(exc: Exception) -> bool:
    """True when torch refused a file in weights-only mode because it holds other objects than tensors."""
    text = " ".join(str(exc).split())
    return "Unsupported global" in text or "not an allowed global" in text


def load_model_file(path, *, unsafe: bool = False) -> Network:
    """Load ``path`` and return its weights as a Network."""
    if not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(f"a model file path is needed, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        _check_container(path, suffix)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        keras = require("keras", f"reading {suffix} files")
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
        except Exception as exc:
            raise ModelFileError(f"Keras could not load {path}: {' '.join(str(exc).split())}") from None
        net = to_network(model)
    elif suffix in TORCH_SUFFIXES:
        _check_container(path, suffix)
        torch = require("torch", f"reading {suffix} files")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=not unsafe)
        except Exception as exc:
            if not unsafe and _is_pickled_object(exc):
                raise ModelFileError(
                    f"{path} holds pickled Python objects (a whole module, not a state dict): loading it can run "
                    "any code it contains, so it was not loaded; only if you trust its source, pass --unsafe-load "
                    "(load_model_file(path, unsafe=True)), or save model.state_dict() instead") from None
            raise ModelFileError(f"torch could not load {path}: {_torch_reason(exc)}") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]  # Lightning checkpoints
        try:
            net = to_network(obj)
        except UnsupportedModelError:
            raise ModelFileError(f"{path} holds {_describe(obj)}, not a state dict of layer weights "
                                 "(name -> tensor), a Lightning checkpoint or a torch module") from None
        except WeightsError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
    else:
        raise ModelFileError(
            f"don't know how to read {path.name}: expected one of {', '.join(KERAS_SUFFIXES + TORCH_SUFFIXES)}"
        )
    if len(net) == 0:
        raise ModelFileError(f"{path} holds no supported weighted layer (Conv*, Dense/Linear)")
    return Network(net.layers, source=net.source, name=net.name or path.stem, meta={"path": str(path)})
