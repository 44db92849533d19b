"""Shipped accuracy predictors: ``list()``, ``load(name)``, ``auto_predictor(network)``.

Predictors are data only (LightGBM text + JSON manifest with sha256 of every
file) in the top-level ``pretrained/`` folder of the source tree, which the
wheel carries as ``weightwatch/_pretrained``. ``WEIGHTWATCH_PRETRAINED_DIR``
points elsewhere (tests, your own predictors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import PretrainedNotFoundError

ENV = "WEIGHTWATCH_PRETRAINED_DIR"
PAPER_CNN_PREDICTOR = "paper-cnn-pooled-W_L-gbm"
AGNOSTIC_PREDICTOR = "agnostic-W_L-agnostic-gbm"
EARLY_PREDICTOR = "paper-cnn-early-forecast-gbm"
PAPER_CNN_SIGNATURE = (
    ("conv", (3, 3, 1, 16), True), ("conv", (3, 3, 16, 16), True), ("conv", (3, 3, 16, 16), True),
    ("dense", (16, 10), True),
)


def root() -> Path:
    """Directory holding the shipped predictors."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    shipped = resources.files("weightwatch") / "_pretrained"
    if shipped.is_dir():  # installed wheel
        return Path(str(shipped))
    return Path(__file__).resolve().parent.parent / "pretrained"  # source tree / editable install


# a folder holding any of these is a predictor, even a damaged one: loading it then fails loudly
# instead of a silent fall back to another predictor
_PREDICTOR_FILES = ("manifest.json", "manifest.sha256", "model.txt", "model.keras", "coefficients.json")


def list() -> list:  # noqa: A001 - the public name the issue asks for
    """Names of the shipped predictors (including damaged ones, which then fail to load)."""
    r = root()
    if not r.is_dir():
        return []
    return sorted(p.name for p in r.iterdir()
                  if not p.name.startswith(".") and p.is_dir() and any((p / f).exists() for f in _PREDICTOR_FILES))


def is_name(text) -> bool:
    """True if ``text`` can be a shipped predictor's name (a bare name, not a path)."""
    return (isinstance(text, str) and text not in ("", ".", "..") and not text.startswith(".")
            and "/" not in text and "\\" not in text and os.sep not in text)


def manifest(name: str) -> dict:
    """The checked manifest of the shipped predictor ``name`` (seal verified)."""
    from .predictors.persist import read_manifest

    if not is_name(name):
        raise PretrainedNotFoundError(
            f"{name!r} is not a shipped predictor's name (names hold no path); to use a predictor directory, "
            "load it with weightwatch.predictors.load_predictor(path)")
    if not (root() / name).is_dir():
        raise PretrainedNotFoundError(f"no pretrained predictor {name!r} in {root()}; available: {', '.join(list()) or '(none)'}")
    return read_manifest(root() / name)


@lru_cache(maxsize=16)
def _load_cached(path: str):
    from .predictors.persist import load_predictor

    return load_predictor(path)


def load(name: str):
    """Load a shipped predictor (hashes verified; cached per process)."""
    manifest(name)  # clear error for unknown names
    return _load_cached(str(root() / name))


def matches_paper_cnn(network) -> bool:
    return tuple(network.signature()) == PAPER_CNN_SIGNATURE


def auto_predictor(network) -> Optional[tuple]:
    """(predictor, name, note) for ``network``: paper-CNN predictor for that family, else the agnostic one."""
    available = set(list())
    if matches_paper_cnn(network) and PAPER_CNN_PREDICTOR in available:
        return load(PAPER_CNN_PREDICTOR), PAPER_CNN_PREDICTOR, "paper-CNN family: calibrated within its training zoos"
    if AGNOSTIC_PREDICTOR in available:
        return load(AGNOSTIC_PREDICTOR), AGNOSTIC_PREDICTOR, (
            "architecture outside the paper CNN: W_L-agnostic predictor; outside its training families "
            "its output ranks networks more than it calibrates accuracy")
    return None


@dataclass(frozen=True)
class Prediction:
    accuracy: float
    interval: Optional[tuple]
    predictor: str
    note: str

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "interval": [*self.interval] if self.interval else None,
                "predictor": self.predictor, "note": self.note}


def features_for(predictor, network, epoch: Optional[int] = None) -> np.ndarray:
    """The predictor's feature vector for ``network`` (feature set from its manifest)."""
    from .features import get_extractor

    m = getattr(predictor, "manifest_", {})
    names = m.get("feature_names", [])
    x = get_extractor(m.get("feature_set", "W_L"))(network)
    if names and names[-1] == "epoch" and len(names) == len(x) + 1:
        if epoch is None:
            raise ValueError("this predictor forecasts from the weights at epoch k: pass epoch=")
        x = np.append(x, float(epoch))
    if names and len(names) != len(x):
        raise ValueError(f"predictor expects {len(names)} features, the network gives {len(x)} "
                         f"({m.get('feature_set')}); it was trained on another architecture family")
    return x


def predict_accuracy(model, predictor="auto", epoch: Optional[int] = None) -> Prediction:
    """Predicted test accuracy of ``model`` (Keras model, torch module, Network, ...) from its weights."""
    from .adapters import to_network

    network = to_network(model)
    network.check_finite()
    if predictor == "auto":
        chosen = auto_predictor(network)
        if chosen is None:
            raise PretrainedNotFoundError(f"no shipped predictor found in {root()}")
        pred, name, note = chosen
    elif isinstance(predictor, str):
        pred, name, note = load(predictor), predictor, ""
    else:
        pred, name, note = predictor, getattr(predictor, "manifest_", {}).get("name", type(predictor).__name__), ""
    x = features_for(pred, network, epoch)[None, :]
    acc = float(pred.predict(x)[0])
    interval = None
    if getattr(pred, "quantile_boosters_", None) is not None:
        lo, hi = pred.predict_interval(x)
        interval = (float(lo[0]), float(hi[0]))
    return Prediction(acc, interval, name, note)
