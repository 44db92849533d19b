"""Save/load trained predictors as data only (no pickle).

Layout of a saved predictor directory::

    manifest.json          metadata + sha256 of every model file
    model.txt              GBM: LightGBM text model (main, MSE objective)
    model_q_lo.txt, ...    GBM: quantile models, if fitted with ``interval``
    model.keras            DNN: Keras native archive (loaded with safe_mode)
    standardization.json   DNN: input mean/scale
    coefficients.json      logit-linear: coef/intercept

Floats in JSON are written with ``repr`` precision, so they round-trip
exactly and loaded predictions equal the saved predictor's.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from .dnn import DNNPredictor
from .gbm import GBMPredictor
from .linear import LogitLinearPredictor

__all__ = [
    "save_predictor",
    "load_predictor",
    "PredictorIntegrityError",
    "FeatureMismatchError",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

FORMAT_NAME = "weightwatch-predictor"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Optional top-level manifest sections (see ``save_predictor(extra=...)``).
EXTRA_SECTIONS = ("split", "domain", "verdict", "forecast")

# Explicit registry: class names in a manifest are never resolved by import.
_CLASSES = {
    "GBMPredictor": GBMPredictor,
    "DNNPredictor": DNNPredictor,
    "LogitLinearPredictor": LogitLinearPredictor,
}


class PredictorIntegrityError(Exception):
    """A saved predictor is malformed or a file's sha256 does not match."""


class FeatureMismatchError(ValueError):
    """Saved feature names differ from the expected ones."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"Value of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def _write_json(path: Path, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_jsonable(data), f, indent=2, sort_keys=True, allow_nan=True)
        f.write("\n")


def _lib_versions() -> Dict[str, str]:
    import sklearn

    out = {"numpy": np.__version__, "scikit-learn": sklearn.__version__}
    try:
        import lightgbm

        out["lightgbm"] = lightgbm.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def save_predictor(
    predictor,
    directory,
    *,
    name: str,
    feature_set: str,
    feature_set_version: str = "1",
    feature_names: Sequence[str],
    architecture_family: str,
    zoo_summary: Mapping,
    metrics: Mapping,
    overwrite: bool = False,
    extra: Optional[Mapping] = None,
) -> Path:
    """Write a fitted predictor and its manifest to ``directory``.

    Parameters
    ----------
    predictor : GBMPredictor, DNNPredictor or LogitLinearPredictor
        Fitted.
    directory : path-like
        Created if missing; must not already hold a manifest unless
        ``overwrite``.
    name, feature_set, feature_set_version, architecture_family : str
        Descriptive metadata.
    feature_names : sequence of str
        One per input column; must match ``predictor.feature_names_in_`` if
        the predictor has it.
    zoo_summary, metrics : dict
        JSON-serialisable descriptions of the training zoo and evaluation.
    overwrite : bool
    extra : dict, optional
        More top-level manifest sections, data only; keys must be in
        :data:`EXTRA_SECTIONS` (``split``: run ids behind the fit and the
        held-out numbers; ``domain``: the envelope of the training features;
        ``verdict``: doom thresholds; ``forecast``: how epochs map to runs).

    Returns
    -------
    Path
        The manifest path.
    """
    from sklearn.utils.validation import check_is_fitted

    cls_name = type(predictor).__name__
    if _CLASSES.get(cls_name) is not type(predictor):
        raise TypeError(f"Cannot save predictor of type {cls_name}")
    check_is_fitted(predictor, predictor._fitted_attr)
    names = [str(n) for n in feature_names]
    if len(names) != predictor.n_features_in_:
        raise ValueError(
            f"feature_names has {len(names)} entries but the predictor expects "
            f"{predictor.n_features_in_} features"
        )
    own = getattr(predictor, "feature_names_in_", None)
    if own is not None and list(own) != names:
        raise FeatureMismatchError(
            "feature_names differ from the predictor's feature_names_in_: "
            + _describe_name_diff(list(own), names)
        )

    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(EXTRA_SECTIONS))
    if unknown:
        raise ValueError(f"unknown manifest sections {unknown}; allowed: {', '.join(EXTRA_SECTIONS)}")

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if (d / MANIFEST).exists() and not overwrite:
        raise FileExistsError(f"{d / MANIFEST} exists; pass overwrite=True to replace it")

    files = []
    versions = {}
    if isinstance(predictor, GBMPredictor):
        predictor.booster_.save_model(str(d / "model.txt"))
        files.append("model.txt")
        if predictor.quantile_boosters_ is not None:
            for tag, bst in zip(("lo", "hi"), predictor.quantile_boosters_):
                fn = f"model_q_{tag}.txt"
                bst.save_model(str(d / fn))
                files.append(fn)
    elif isinstance(predictor, DNNPredictor):
        predictor.model_.save(str(d / "model.keras"))
        _write_json(d / "standardization.json",
                    {"mean": predictor.mean_, "scale": predictor.scale_})
        files += ["model.keras", "standardization.json"]
        import keras

        versions["keras"] = keras.__version__
    else:
        _write_json(d / "coefficients.json",
                    {"coef": predictor.coef_, "intercept": predictor.intercept_,
                     "n_iter": getattr(predictor, "n_iter_", None)})
        files.append("coefficients.json")

    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": name,
        "predictor_class": cls_name,
        "params": predictor.get_params(deep=False),
        "feature_set": feature_set,
        "feature_set_version": str(feature_set_version),
        "feature_names": names,
        "n_features": int(predictor.n_features_in_),
        "feature_names_from_fit": own is not None,
        "architecture_family": architecture_family,
        "zoo_summary": dict(zoo_summary),
        "metrics": dict(metrics),
        "files": {fn: _sha256(d / fn) for fn in files},
        "library_versions": {**_lib_versions(), **versions},
        **extra,
    }
    _write_json(d / MANIFEST, manifest)
    return d / MANIFEST


def _describe_name_diff(saved: Sequence[str], expected: Sequence[str]) -> str:
    parts = []
    if len(saved) != len(expected):
        parts.append(f"saved has {len(saved)} names, expected {len(expected)}")
    missing = [n for n in expected if n not in set(saved)]
    unexpected = [n for n in saved if n not in set(expected)]
    if missing:
        parts.append(f"missing from saved: {missing[:10]}")
    if unexpected:
        parts.append(f"not expected: {unexpected[:10]}")
    if not missing and not unexpected:
        moved = [f"position {i}: saved {a!r}, expected {b!r}"
                 for i, (a, b) in enumerate(zip(saved, expected)) if a != b]
        parts.append("order differs at " + "; ".join(moved[:10]))
    return "; ".join(parts)


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise PredictorIntegrityError(f"Cannot read {path.name}: {e}") from e


def load_predictor(directory, *, expected_feature_names: Optional[Sequence[str]] = None):
    """Load a predictor saved by :func:`save_predictor`.

    Every model file's sha256 is verified before it is parsed.

    Parameters
    ----------
    directory : path-like
    expected_feature_names : sequence of str, optional
        If given, must equal the saved feature names (same order).

    Returns
    -------
    predictor
        Ready to ``predict``; ``manifest_`` holds the manifest dict.

    Raises
    ------
    PredictorIntegrityError
        Missing/invalid manifest, missing file or sha256 mismatch.
    FeatureMismatchError
        Saved feature names differ from ``expected_feature_names``.
    """
    d = Path(directory)
    if not (d / MANIFEST).is_file():
        raise PredictorIntegrityError(f"No {MANIFEST} in {d}")
    m = _read_json(d / MANIFEST)
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise PredictorIntegrityError(f"{d / MANIFEST} is not a {FORMAT_NAME} manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise PredictorIntegrityError(
            f"Unsupported format_version {m.get('format_version')!r} (supported: {FORMAT_VERSION})"
        )
    cls = _CLASSES.get(m.get("predictor_class"))
    if cls is None:
        raise PredictorIntegrityError(f"Unknown predictor_class {m.get('predictor_class')!r}")
    files = m.get("files")
    if not isinstance(files, dict) or not files:
        raise PredictorIntegrityError("Manifest lists no model files")
    for fn, digest in files.items():
        # Names are bare file names; refuse paths that would escape the directory.
        if os.path.basename(fn) != fn or fn in ("", ".", ".."):
            raise PredictorIntegrityError(f"Invalid file name in manifest: {fn!r}")
        p = d / fn
        if not p.is_file():
            raise PredictorIntegrityError(f"Model file {fn} listed in manifest is missing")
        actual = _sha256(p)
        if actual != digest:
            raise PredictorIntegrityError(
                f"sha256 mismatch for {fn}: manifest {digest}, file {actual}"
            )

    names = list(m.get("feature_names", []))
    if expected_feature_names is not None:
        expected = [str(n) for n in expected_feature_names]
        if names != expected:
            raise FeatureMismatchError(
                "Feature names of the saved predictor differ from expected: "
                + _describe_name_diff(names, expected)
            )

    valid = cls().get_params(deep=False)
    params = {k: v for k, v in m.get("params", {}).items() if k in valid}
    if cls is GBMPredictor and params.get("interval") is not None:
        params["interval"] = tuple(params["interval"])
    pred = cls(**params)
    pred.n_features_in_ = int(m["n_features"])
    if len(names) != pred.n_features_in_:
        raise PredictorIntegrityError("Manifest feature_names length != n_features")
    if m.get("feature_names_from_fit"):
        pred.feature_names_in_ = np.asarray(names, dtype=object)

    if cls is GBMPredictor:
        _load_gbm(pred, d, files)
    elif cls is DNNPredictor:
        _load_dnn(pred, d, files)
    else:
        _require(files, "coefficients.json")
        c = _read_json(d / "coefficients.json")
        pred.coef_ = np.asarray(c["coef"], dtype=np.float64)
        pred.intercept_ = float(c["intercept"])
        if c.get("n_iter") is not None:
            pred.n_iter_ = int(c["n_iter"])
        if pred.coef_.shape != (pred.n_features_in_,):
            raise PredictorIntegrityError("coefficients.json has the wrong number of coefficients")
    pred.manifest_ = m
    return pred


def _require(files, fn):
    if fn not in files:
        raise PredictorIntegrityError(f"Manifest does not list required file {fn}")


def _load_gbm(pred, d: Path, files) -> None:
    import lightgbm as lgb

    def booster(fn):
        _require(files, fn)
        return lgb.Booster(model_str=(d / fn).read_text(encoding="utf-8"))

    pred.booster_ = booster("model.txt")
    if pred.interval is not None:
        pred.quantile_boosters_ = (booster("model_q_lo.txt"), booster("model_q_hi.txt"))
    else:
        pred.quantile_boosters_ = None
    if pred.booster_.num_feature() != pred.n_features_in_:
        raise PredictorIntegrityError("model.txt feature count disagrees with the manifest")


def _load_dnn(pred, d: Path, files) -> None:
    import keras

    _require(files, "model.keras")
    _require(files, "standardization.json")
    s = _read_json(d / "standardization.json")
    pred.mean_ = np.asarray(s["mean"], dtype=np.float64)
    pred.scale_ = np.asarray(s["scale"], dtype=np.float64)
    # safe_mode refuses to deserialise arbitrary code (e.g. Lambda layers).
    pred.model_ = keras.saving.load_model(str(d / "model.keras"), compile=False, safe_mode=True)
