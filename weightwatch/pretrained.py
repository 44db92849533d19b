"""The predictor catalogue: ``list_predictors()``, ``load(name)``, ``resolve(spec, network)``.

:func:`resolve` is the one door to a predictor for the monitor, the CLI and :func:`predict_accuracy`: it
returns a :class:`~weightwatch.inference.LoadedPredictor` from ``"auto"`` (chosen for the network), a
shipped name, a directory or a fitted estimator. A path that is given and does not exist is an error
(:class:`~weightwatch.errors.PredictorPathError`), wherever it is given.

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

import dataclasses
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InvalidArgumentError, PredictorPathError, PretrainedNotFoundError
from .inference import (ACCURACY, DOOM, FORECASTER, VERDICT_DOOM, VERDICT_FORECASTER, LoadedPredictor,  # noqa: F401
                        Prediction, apply, as_loaded, features_for)

ENV = "WEIGHTWATCH_PRETRAINED_DIR"
PATH_ENV = "WEIGHTWATCH_PREDICTOR_PATH"
PAPER_CNN_PREDICTOR = "paper-cnn-pooled-W_L-gbm"
AGNOSTIC_PREDICTOR = "agnostic-W_L-agnostic-gbm"
EARLY_PREDICTOR = "paper-cnn-early-forecast-gbm"
#: Probability that a paper-CNN run ends doomed, from the forecaster's features and the run's setup.
DOOM_PREDICTOR = "paper-cnn-early-doom-gbm"
#: The verdict models the callbacks use by default, for any architecture (fitted on the calibration zoo of
#: runs trained the way users train: :mod:`weightwatch.experiments.plain_verdicts`).
VERDICT_DOOM_MODEL = "plain-doom-gbm"
VERDICT_FORECASTER_MODEL = "plain-forecast-gbm"
#: For networks of dense layers only (MLPs on vector data).
MLP_PREDICTOR = "mlp-W_L-agnostic-gbm"
#: For CNNs with normalisation layers (fitted on the BatchNorm + max-pool zoos).
BATCHNORM_PREDICTOR = "cnn-bn-W_L-agnostic-gbm"
#: What the default path resolves, for every family and role: exactly what the wheel ships (pyproject's
#: force-include, checked by tests/test_pretrained.py). The other predictors stay in the source tree.
WHEEL_PREDICTORS = (PAPER_CNN_PREDICTOR, AGNOSTIC_PREDICTOR, MLP_PREDICTOR, BATCHNORM_PREDICTOR,
                    VERDICT_DOOM_MODEL, VERDICT_FORECASTER_MODEL)
PAPER_CNN_SIGNATURE = (
    ("conv", (3, 3, 1, 16), True), ("conv", (3, 3, 16, 16), True), ("conv", (3, 3, 16, 16), True),
    ("dense", (16, 10), True),
)


def root() -> Path:
    """Directory holding the shipped predictors."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    return packaged_root()  # installed wheel: weightwatch/_pretrained; source tree: pretrained/


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
        if name.startswith("paper-cnn-"):  # the wheel ships the default path only
            hint = (f"; the wheel ships the predictors the default path uses, the others stay in the source tree: "
                    f"set {ENV} to a checkout's pretrained/ directory, give the predictor's directory, or rebuild "
                    f"it (pretrained/README.md, 'What the wheel ships')")
        raise PretrainedNotFoundError(f"no pretrained predictor {name!r} in {root()}; available: "
                                      f"{', '.join(list_predictors()) or '(none)'}{hint}")
    return read_manifest(root() / name)


def packaged_root() -> Path:
    """Where this installation's own predictors are (``root()`` without ``WEIGHTWATCH_PRETRAINED_DIR``)."""
    shipped = resources.files("weightwatch") / "_pretrained"
    if shipped.is_dir():
        return Path(str(shipped))
    return Path(__file__).resolve().parent.parent / "pretrained"


@lru_cache(maxsize=16)
def _load_cached(path: str):
    """Load a predictor; one in :func:`packaged_root` must also match the sha256 table inside the package."""
    from .predictors.persist import load_predictor

    p = Path(path)
    shipped = p.parent.resolve() == packaged_root().resolve()
    return load_predictor(path, shipped_as=p.name if shipped else None)


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
    """The predictor path: ``predictor_path`` (a directory or a list of them), then ``WEIGHTWATCH_PREDICTOR_PATH``;
    an entry that does not exist is an error (:class:`~weightwatch.errors.PredictorPathError`)."""
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
    for p, where in [*((p, "predictor_path") for p in given), *((p, PATH_ENV) for p in env)]:
        if not isinstance(p, (str, os.PathLike)):
            raise InvalidArgumentError(f"predictor_path entries must be directories, got {type(p).__name__} {p!r}")
        if not Path(p).exists():
            raise PredictorPathError(f"predictor path {str(p)!r} (from {where}) does not exist")
        out.append(Path(p))
    return out


def _candidates(directory: Path) -> "list[Path]":
    if (directory / "manifest.json").exists():
        return [directory]
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".") and (p / "manifest.json").exists())


def find_on_path(network, predictor_path=None, *, role: str = ACCURACY) -> Optional[LoadedPredictor]:
    """The first predictor of ``role`` on the path fitted on ``network``'s family, or None.

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
            found = as_loaded(load_predictor(cand), source=str(cand))
            if found.role != role:
                continue
            family = (m.get("family") or {}).get("architecture") or m.get("architecture_family")
            return found.with_note(f"your predictor {found.name} ({cand}), fitted on a zoo of this family ({family})")
    return None


def _shipped(name: str, note: str = "") -> LoadedPredictor:
    return as_loaded(load(name), name=name, source="shipped", note=note)


def _first_installed(choices, network) -> Optional[LoadedPredictor]:
    """The first installed of ``choices`` ((name, matches(network), note), most specific first); the note of a
    fall back names the preferred predictors that are missing."""
    available, missing = set(list_predictors()), []
    for name, matches, note in choices:
        if not matches(network):
            continue
        if name in available:
            if missing:
                note += f" (preferred for this network but not installed in {root()}: {', '.join(missing)})"
            return _shipped(name, note)
        missing.append(name)
    return None


def auto_predictor(network, predictor_path=None) -> Optional[LoadedPredictor]:
    """The predictor of the accuracy now for ``network``: yours for its family on the predictor path, else the
    shipped BatchNorm-CNN predictor for a CNN with normalisation layers, the shipped paper-CNN predictor for
    that family, the shipped MLP predictor for a network of dense layers only, else the shipped agnostic one."""
    found = find_on_path(network, predictor_path)
    if found is not None:
        return found
    return _first_installed((
        (BATCHNORM_PREDICTOR, has_normalisation,
         "network with normalisation layers: W_L-agnostic predictor fitted on BatchNorm + max-pool CNN zoos"),
        (PAPER_CNN_PREDICTOR, matches_paper_cnn, "paper-CNN family: calibrated within its training zoos"),
        (MLP_PREDICTOR, is_mlp, "multilayer perceptron: W_L-agnostic predictor fitted on MLP zoos of tabular data"),
        (AGNOSTIC_PREDICTOR, lambda _: True,
         "architecture outside the paper CNN: W_L-agnostic predictor; outside its training families its output "
         "ranks networks more than it calibrates accuracy"),
    ), network)


def auto_forecaster(network, predictor_path=None) -> Optional[LoadedPredictor]:
    """The forecaster of the final accuracy for ``network`` (yours for its family on the predictor path first,
    then the shipped verdict forecaster, :data:`VERDICT_FORECASTER_MODEL`, for any network), or None."""
    for role in (VERDICT_FORECASTER, FORECASTER):
        found = find_on_path(network, predictor_path, role=role)
        if found is not None:
            return found
    return _first_installed(((VERDICT_FORECASTER_MODEL, _any, "final accuracy: forecast from the run's evidence"),),
                            network)


def auto_doom_model(network, predictor_path=None) -> Optional[LoadedPredictor]:
    """The doom model for ``network`` (yours for its family on the predictor path first, then the shipped
    verdict doom model, :data:`VERDICT_DOOM_MODEL`, for any network), or None."""
    for role in (VERDICT_DOOM, DOOM):
        found = find_on_path(network, predictor_path, role=role)
        if found is not None:
            return found
    return _first_installed(((VERDICT_DOOM_MODEL, _any, ""),), network)


def _any(network) -> bool:
    return True


def resolve(spec, network=None, *, role: str = ACCURACY, predictor_path=None) -> Optional[LoadedPredictor]:
    """The one door to a predictor: ``spec`` as a :class:`~weightwatch.inference.LoadedPredictor`, or None.

    ``spec`` is None (None), ``"auto"`` (the predictor of ``role`` for ``network``: yours on the predictor
    path first, then the shipped one; None when none fits), a shipped predictor's name, the directory of a
    saved predictor (an existing path wins over a shipped name), a fitted estimator or a LoadedPredictor.
    A path that does not exist raises :class:`~weightwatch.errors.PredictorPathError` naming it; an unknown
    name :class:`~weightwatch.errors.PretrainedNotFoundError` listing the shipped ones.
    """
    if spec is None:
        return None
    if isinstance(spec, str) and spec == "auto":
        if network is None:
            raise InvalidArgumentError("predictor 'auto' is chosen for a network: give the network")
        auto = {ACCURACY: auto_predictor, FORECASTER: auto_forecaster, DOOM: auto_doom_model}  # looked up now
        if role not in auto:
            raise InvalidArgumentError(f"unknown predictor role {role!r} (known: {', '.join(auto)})")
        return auto[role](network, predictor_path)
    if isinstance(spec, (str, os.PathLike)) and check_path(spec):
        from .predictors.persist import load_predictor

        return as_loaded(load_predictor(spec), source=str(Path(spec).resolve()))
    if isinstance(spec, str):
        return _shipped(spec)
    return as_loaded(spec)


def check_path(spec) -> bool:
    """True when ``spec`` is an existing path, False for a shipped predictor's name; a path that does not exist
    raises :class:`~weightwatch.errors.PredictorPathError` naming it (an existing path wins over a name)."""
    if os.path.exists(spec):
        return True
    if isinstance(spec, str) and is_name(spec):
        return False
    raise PredictorPathError(f"predictor path {str(spec)!r} does not exist (give a shipped name, "
                             f"{', '.join(list_predictors()) or 'none installed'}, or a saved predictor's directory)")


def is_forecaster(predictor) -> bool:
    """True for a predictor of the final accuracy from a run's trajectory (see :mod:`weightwatch.forecast`)."""
    return as_loaded(predictor).role == FORECASTER


def is_doom_model(predictor) -> bool:
    """True for a model of the probability that a run ends doomed (:data:`VERDICT_DOOM_MODEL`,
    :data:`DOOM_PREDICTOR`)."""
    return as_loaded(predictor).role in (DOOM, VERDICT_DOOM)


def predict_accuracy(model, predictor="auto", epoch: Optional[int] = None, predictor_path=None) -> Prediction:
    """Predicted test accuracy of ``model`` (Keras model, torch module, Network, ...) from its weights.

    ``predictor`` is anything :func:`resolve` takes. ``Prediction.in_domain`` is False (with
    ``domain_reason``) when the model lies outside the data the predictor was fitted on. With
    ``predictor="auto"``, your predictors on the predictor path (``predictor_path``, then
    ``WEIGHTWATCH_PREDICTOR_PATH``) come before the shipped ones.
    """
    from .adapters import to_network

    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0):
        raise InvalidArgumentError(f"epoch must be an integer >= 0 (epochs trained so far), got {epoch!r}")
    network = to_network(model)
    chosen = resolve(predictor, network, predictor_path=predictor_path)
    if chosen is None:
        raise PretrainedNotFoundError(f"no shipped predictor found in {root()}" if predictor == "auto"
                                      else "no predictor given (predictor=None)")
    pred = apply(chosen, network, epoch=epoch)
    why = _epoch_outside(chosen, epoch) if epoch is not None and pred.in_domain else None
    return pred if why is None else dataclasses.replace(pred, in_domain=False, domain_reason=why)


def _epoch_outside(predictor: LoadedPredictor, epoch) -> Optional[str]:
    """Why ``epoch`` lies outside the epochs a forecaster (or an epoch-feature predictor) was fitted on; else None.

    A forecaster saw the checks of runs of ``forecast.zoo_epochs`` epochs (18): a later epoch is an
    extrapolation (its progress would be clipped to the end of the run), not a forecast.
    """
    from . import forecast

    names = predictor.feature_names
    if predictor.role not in (FORECASTER, DOOM) and not (names and names[-1] == "epoch"):
        return None
    last = int((predictor.manifest.get("forecast") or {}).get("zoo_epochs") or forecast.ZOO_EPOCHS)
    if not 0 <= float(epoch) <= last:
        return (f"epoch {epoch} is outside the epochs this predictor was fitted on (0 to {last}, checks of "
                f"{last}-epoch runs); beyond them its forecast is an extrapolation")
    return None
