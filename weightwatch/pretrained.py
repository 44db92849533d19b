"""Shipped accuracy predictors: ``list_predictors()``, ``load(name)``, ``auto_predictor(network)``.

Predictors are data only (LightGBM text + JSON manifest with sha256 of every
file) in the top-level ``pretrained/`` folder of the source tree, which the
wheel carries as ``weightwatch/_pretrained``. ``WEIGHTWATCH_PRETRAINED_DIR``
points elsewhere (tests, your own predictors).

Your own predictors (``weightwatch fit`` on a zoo of your family) are found
on the *predictor path*, searched before the shipped ones: the directories of
a callback's ``predictor_path=`` argument, then those of
``WEIGHTWATCH_PREDICTOR_PATH`` (``os.pathsep``-separated). A directory on the
path is a predictor itself or holds predictors; one whose manifest records the
network's family signature (:func:`family_signature`) is used for it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import FeatureMismatchError, InvalidArgumentError, PretrainedNotFoundError

ENV = "WEIGHTWATCH_PRETRAINED_DIR"
PATH_ENV = "WEIGHTWATCH_PREDICTOR_PATH"
PAPER_CNN_PREDICTOR = "paper-cnn-pooled-W_L-gbm"
AGNOSTIC_PREDICTOR = "agnostic-W_L-agnostic-gbm"
EARLY_PREDICTOR = "paper-cnn-early-forecast-gbm"
#: Probability that a paper-CNN run ends doomed, from the forecaster's features and the run's setup.
DOOM_PREDICTOR = "paper-cnn-early-doom-gbm"
#: For networks of dense layers only (MLPs on vector data).
MLP_PREDICTOR = "mlp-W_L-agnostic-gbm"
#: For CNNs with normalisation layers (fitted on the BatchNorm + max-pool zoos).
BATCHNORM_PREDICTOR = "cnn-bn-W_L-agnostic-gbm"
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


def list_predictors() -> "list[str]":
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
        hint = ""
        if name.startswith("paper-cnn-") and name.endswith("-W_L-gbm"):  # per-dataset ones ship only where they help
            hint = (f"; per-dataset predictors that do not beat the default stay in the source tree: set {ENV} to "
                    "a checkout's pretrained/ directory (pretrained/README.md, 'What the wheel ships')")
        raise PretrainedNotFoundError(f"no pretrained predictor {name!r} in {root()}; available: "
                                      f"{', '.join(list_predictors()) or '(none)'}{hint}")
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


def is_mlp(network) -> bool:
    """True for a network of dense layers only (an MLP; the adapters skip activations, dropout, flattening)."""
    return len(network) > 0 and all(kind == "dense" for kind, _, _ in network.signature())


def has_normalisation(network) -> bool:
    """True for a network with conv layers and normalisation layers (which the adapters skip and record)."""
    from . import domain

    return any(kind != "dense" for kind, _, _ in network.signature()) and bool(domain.facts(network).normalisation)


def family_signature(network) -> list:
    """``[[kind, kernel shape, has bias], ...]`` per layer, JSON-ready: what a predictor's family records."""
    return [[str(kind), [int(d) for d in shape], bool(bias)] for kind, shape, bias in network.signature()]


def search_path(predictor_path=None) -> "list[Path]":
    """The predictor path: ``predictor_path`` (a directory or a list of them), then ``WEIGHTWATCH_PREDICTOR_PATH``."""
    if predictor_path is None:
        given = []
    elif isinstance(predictor_path, (str, os.PathLike)):
        given = [predictor_path]
    elif isinstance(predictor_path, (list, tuple)):
        given = list(predictor_path)
    else:
        raise InvalidArgumentError("predictor_path entries must be directories (a path or a list of paths), got "
                                   f"{type(predictor_path).__name__} {predictor_path!r}")
    env = [p for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p.strip()]
    out = []
    for p in [*given, *env]:
        if not isinstance(p, (str, os.PathLike)):
            raise InvalidArgumentError(f"predictor_path entries must be directories, got {type(p).__name__} {p!r}")
        out.append(Path(p))
    return out


def _candidates(directory: Path) -> "list[Path]":
    if (directory / "manifest.json").exists():
        return [directory]
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".") and (p / "manifest.json").exists())


def find_on_path(network, predictor_path=None, *, forecaster: bool = False) -> Optional[tuple]:
    """(predictor, name, note) of the first predictor on the path fitted on ``network``'s family, or None.

    A manifest without a ``family`` section (a shipped predictor, an older fit) never matches; a damaged
    predictor whose family matches fails loudly instead of a silent fall back to another one.
    """
    from .predictors.persist import load_predictor, read_manifest

    want = family_signature(network)
    for directory in search_path(predictor_path):
        for cand in _candidates(directory):
            m = read_manifest(cand)
            if (m.get("family") or {}).get("signature") != want:
                continue
            pred = load_predictor(cand)
            if is_forecaster(pred) != forecaster:
                continue
            name = m.get("name") or cand.name
            family = (m.get("family") or {}).get("architecture") or m.get("architecture_family")
            return pred, name, f"your predictor {name} ({cand}), fitted on a zoo of this family ({family})"
    return None


def auto_predictor(network, predictor_path=None) -> Optional[tuple]:
    """(predictor, name, note) for ``network``: yours for its family on the predictor path, else the
    shipped BatchNorm-CNN predictor for a CNN with normalisation layers, the shipped paper-CNN predictor for
    that family, the shipped MLP predictor for a network of dense layers only, else the shipped agnostic one."""
    found = find_on_path(network, predictor_path)
    if found is not None:
        return found
    available = set(list_predictors())
    if has_normalisation(network) and BATCHNORM_PREDICTOR in available:
        return load(BATCHNORM_PREDICTOR), BATCHNORM_PREDICTOR, ("network with normalisation layers: W_L-agnostic "
                                                                "predictor fitted on BatchNorm + max-pool CNN zoos")
    if matches_paper_cnn(network) and PAPER_CNN_PREDICTOR in available:
        return load(PAPER_CNN_PREDICTOR), PAPER_CNN_PREDICTOR, "paper-CNN family: calibrated within its training zoos"
    if is_mlp(network) and MLP_PREDICTOR in available:
        return load(MLP_PREDICTOR), MLP_PREDICTOR, ("multilayer perceptron: W_L-agnostic predictor fitted on MLP "
                                                    "zoos of tabular data")
    if AGNOSTIC_PREDICTOR in available:
        return load(AGNOSTIC_PREDICTOR), AGNOSTIC_PREDICTOR, (
            "architecture outside the paper CNN: W_L-agnostic predictor; outside its training families "
            "its output ranks networks more than it calibrates accuracy")
    return None


def auto_forecaster(network, predictor_path=None) -> Optional[tuple]:
    """(forecaster, name, note) of the final accuracy for ``network``'s family (yours on the predictor path
    first, then the shipped one), or None."""
    found = find_on_path(network, predictor_path, forecaster=True)
    if found is not None:
        return found
    if matches_paper_cnn(network) and EARLY_PREDICTOR in set(list_predictors()):
        return load(EARLY_PREDICTOR), EARLY_PREDICTOR, "paper-CNN family: forecast of the final accuracy"
    return None


def auto_doom_model(network) -> Optional[tuple]:
    """(doom model, name) for a paper CNN when it is shipped, else None (see :data:`DOOM_PREDICTOR`)."""
    if matches_paper_cnn(network) and DOOM_PREDICTOR in set(list_predictors()):
        return load(DOOM_PREDICTOR), DOOM_PREDICTOR
    return None


@dataclass(frozen=True)
class Prediction:
    """A predictor's number for one network, and whether it may be trusted.

    ``in_domain`` is False when the network lies outside the envelope of the
    predictor's training data (``domain_reason`` says why); the number is
    then not calibrated for that network. For the doom model
    (:data:`DOOM_PREDICTOR`) ``accuracy`` is the probability that the run ends doomed.
    """

    accuracy: float
    interval: Optional[tuple]
    predictor: str
    note: str
    in_domain: bool = True
    domain_reason: str = ""

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "interval": [*self.interval] if self.interval else None,
                "predictor": self.predictor, "note": self.note, "in_domain": self.in_domain,
                "domain_reason": self.domain_reason or None}


def is_forecaster(predictor) -> bool:
    """True for a predictor of the final accuracy from a run's trajectory (see :mod:`weightwatch.forecast`)."""
    from .forecast import is_forecast_names

    return is_forecast_names(_names(predictor))


def is_doom_model(predictor) -> bool:
    """True for a model of the probability that a run ends doomed (see :data:`DOOM_PREDICTOR`)."""
    from .forecast import is_doom_names

    return is_doom_names(_names(predictor))


def _names(predictor) -> list:
    m = getattr(predictor, "manifest_", None) or {}
    names = m.get("feature_names")
    if names is None:
        names = getattr(predictor, "feature_names_in_", None)
    return [] if names is None else [str(n) for n in names]


def features_for(predictor, network, epoch: Optional[int] = None, *, init=None, steps=None,
                 progress: Optional[float] = None, feature_set: Optional[str] = None, setup=None) -> np.ndarray:
    """The predictor's feature vector for ``network`` (feature set from its manifest, else ``feature_set``).

    A forecaster (:func:`is_forecaster`) also takes the network at the start of training (``init``), the
    optimizer ``steps`` so far and the ``progress`` of the run (or ``epoch`` of the zoo's 18); the doom model
    also the run's ``setup`` (:func:`weightwatch.forecast.setup_of`).
    """
    from . import forecast
    from .features import get_extractor

    m = getattr(predictor, "manifest_", None) or {}
    names = _names(predictor)
    extractor = get_extractor(m.get("feature_set") or feature_set or "W_L")
    x = extractor(network)
    doom = forecast.is_doom_names(names)
    if doom and setup is None:
        raise InvalidArgumentError("this is a doom model: it needs the run's setup (learning rate, optimizer kind, "
                                   "dropout), which the training callbacks read from the framework")
    if doom or forecast.is_forecast_names(names):
        if progress is None:
            if epoch is None:
                raise InvalidArgumentError("this predictor forecasts the final accuracy from the weights after "
                                           "epoch k of an 18-epoch run: give the epoch (--epoch in the CLI)")
            progress = forecast.progress(epoch, None)
        x0 = None if init is None else extractor(init)
        if x0 is not None and x0.shape != x.shape:
            x0 = None
        x = forecast.vector(x, x0, steps, progress)
        if doom:
            x = np.concatenate([x, np.asarray(setup, np.float64).reshape(-1)])
    elif names and names[-1] == "epoch" and len(names) == len(x) + 1:
        if epoch is None:
            raise InvalidArgumentError("this predictor forecasts from the weights at epoch k: give the epoch "
                                       "(--epoch in the CLI)")
        x = np.append(x, float(epoch))
    if names and len(names) != len(x):
        raise FeatureMismatchError(f"predictor expects {len(names)} features, the network gives {len(x)} "
                         f"({m.get('feature_set')}); it was trained on another architecture family")
    return x


_OPTIMIZERS: dict = {}  # predictor (its files' sha256) -> zoo_optimizers(manifest): read once, not per check


def zoo_optimizers(manifest: dict) -> Optional[dict]:
    """The optimizers and learning-rate range the predictor's zoos were built with (from their build records)."""
    key = tuple(sorted((manifest.get("files") or {}).values()))
    if key and key in _OPTIMIZERS:
        return _OPTIMIZERS[key]
    found = _zoo_optimizers(manifest)
    if key:
        _OPTIMIZERS[key] = found
    return found


def _zoo_optimizers(manifest: dict) -> Optional[dict]:
    from .zoo.hparams import validate_ranges
    from .zoo.storage import build_records

    builds = []
    for build in ((manifest.get("zoo_summary") or {}).get("zoos") or {}).values():
        builds += build_records(build) if isinstance(build, dict) else []
    names, lows, highs = set(), [], []
    for build in builds:
        if not isinstance(build, dict) or "ranges" not in build:
            return None  # a zoo without a record of its ranges: nothing to compare with
        r = validate_ranges(build.get("ranges") or {})
        opt, lr = r["optimizer"], r["learning_rate"]
        names |= {opt["value"]} if "value" in opt else set(opt.get("values", []))
        lows.append(lr.get("low", lr.get("value"))), highs.append(lr.get("high", lr.get("value")))
    if not names or None in lows + highs:
        return None
    return {"names": sorted(str(n).lower() for n in names), "learning_rate": [float(min(lows)), float(max(highs))]}


def apply(predictor, network, *, name: Optional[str] = None, note: str = "", epoch: Optional[int] = None,
          init=None, steps=None, progress: Optional[float] = None, feature_set: Optional[str] = None,
          input_range=None, optimizer: Optional[dict] = None, setup=None) -> Prediction:
    """Apply a loaded predictor to a :class:`~weightwatch.network.Network`: number, interval, domain.

    The one path from a predictor and a network to a :class:`Prediction`, used by
    :func:`predict_accuracy` and by the monitor. The point prediction always lies inside its interval.
    ``input_range`` is the inputs' range when the user declared it, ``optimizer`` what trains the network
    (``{"name", "learning_rate"}``), both checked against the domain.
    """
    from . import domain

    network.check_finite()
    x = features_for(predictor, network, epoch, init=init, steps=steps, progress=progress,
                     feature_set=feature_set, setup=setup)[None, :]
    acc = float(np.clip(predictor.predict(x)[0], 0.0, 1.0))  # an accuracy, whatever the trees extrapolate
    interval = None
    if getattr(predictor, "has_interval", False):
        lo, hi = predictor.predict_interval(x)
        lo, hi = float(np.ravel(lo)[0]), float(np.ravel(hi)[0])
        interval = (min(lo, acc), max(hi, acc))
    m = getattr(predictor, "manifest_", None) or {}
    offset = (m.get("verdict") or {}).get("upper_offset")
    if offset is not None:  # a forecaster's calibrated upper bound: forecast + one-sided conformal offset
        interval = (min(acc, interval[0]) if interval else acc, acc + float(offset))
    if interval is not None:  # accuracies live in [0, 1]; the doom threshold is far inside it
        interval = (float(np.clip(interval[0], 0.0, 1.0)), float(np.clip(interval[1], 0.0, 1.0)))
    reason = domain.check(m.get("domain"), network, x, input_range, optimizer,
                          zoo_optimizers(m) if optimizer else None)
    name = name or m.get("name") or type(predictor).__name__
    return Prediction(acc, interval, name, note, reason is None, reason or "")


def predict_accuracy(model, predictor="auto", epoch: Optional[int] = None, predictor_path=None) -> Prediction:
    """Predicted test accuracy of ``model`` (Keras model, torch module, Network, ...) from its weights.

    ``Prediction.in_domain`` is False (with ``domain_reason``) when the model lies outside the data the
    predictor was fitted on. With ``predictor="auto"``, your predictors on the predictor path
    (``predictor_path``, then ``WEIGHTWATCH_PREDICTOR_PATH``) come before the shipped ones.
    """
    from .adapters import to_network

    network = to_network(model)
    if predictor == "auto":
        chosen = auto_predictor(network, predictor_path)
        if chosen is None:
            raise PretrainedNotFoundError(f"no shipped predictor found in {root()}")
        pred, name, note = chosen
    elif isinstance(predictor, str):
        pred, name, note = load(predictor), predictor, ""
    else:
        pred, name, note = predictor, getattr(predictor, "manifest_", {}).get("name", type(predictor).__name__), ""
    return apply(pred, network, name=name, note=note, epoch=epoch)


def __getattr__(name):
    if name == "list":  # the old name shadowed the builtin inside this module
        warnings.warn("weightwatch.pretrained.list() is deprecated; use weightwatch.pretrained.list_predictors()",
                      DeprecationWarning, stacklevel=2)
        return list_predictors
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
