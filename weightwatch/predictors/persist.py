"""Save/load trained predictors as data only (no pickle).

Layout of a saved predictor directory::

    manifest.json          metadata + sha256 of every model file
    manifest.sha256        sha256 of manifest.json itself (``sha256sum`` format)
    model.txt              GBM: LightGBM text model (main, MSE objective)
    model_q_lo.txt, ...    GBM: quantile models, if fitted with ``interval``
    model.keras            DNN: Keras native archive (loaded with safe_mode)
    standardization.json   DNN: input mean/scale
    coefficients.json      logit-linear: coef/intercept

Floats in JSON are written with ``repr`` precision, so they round-trip
exactly and loaded predictions equal the saved predictor's.

Loading trusts nothing it has not checked: the manifest must match its
seal (``manifest.sha256``), hold only known keys, list bare file names (no
paths, no symlinks) whose sha256 match; anything else is a
:class:`~weightwatch.errors.PredictorIntegrityError` naming the file.
:func:`seal` re-seals a manifest you have checked and edited on purpose.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from .._compat import require
from .._files import atomic_write_text, jsonable, sha256_file
from ..errors import FeatureMismatchError, InvalidArgumentError, PredictorIntegrityError
from .dnn import DNNPredictor
from .gbm import GBMPredictor
from .lgbm_text import slim_model_text
from .linear import LogitLinearPredictor

__all__ = [
    "save_predictor",
    "load_predictor",
    "read_manifest",
    "seal",
    "PredictorIntegrityError",
    "FeatureMismatchError",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

FORMAT_NAME = "weightwatch-predictor"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SEAL = "manifest.sha256"
#: Optional top-level manifest sections (see ``save_predictor(extra=...)``).
EXTRA_SECTIONS = ("split", "domain", "verdict", "forecast", "card", "family", "role", "optimizers")
#: Top-level keys save_predictor always writes; the first group must be present to load.
REQUIRED_KEYS = ("format", "format_version", "name", "predictor_class", "params", "feature_set",
                 "feature_names", "n_features", "files")
OPTIONAL_KEYS = ("feature_set_version", "feature_names_from_fit", "architecture_family", "zoo_summary",
                 "metrics", "library_versions") + EXTRA_SECTIONS

# Explicit registry: class names in a manifest are never resolved by import.
_CLASSES = {
    "GBMPredictor": GBMPredictor,
    "DNNPredictor": DNNPredictor,
    "LogitLinearPredictor": LogitLinearPredictor,
}


def _write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(jsonable(data), indent=2, sort_keys=True, allow_nan=True) + "\n")


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
        ``verdict``: doom thresholds; ``forecast``: how epochs map to runs;
        ``card``: the text of its card; ``family``: the architecture and
        layer signature of the networks it was fitted on, by which the
        predictor path matches it to a network; ``role``: what it predicts,
        ``"accuracy"``, ``"forecaster"`` or ``"doom"``; ``optimizers``: the
        optimizers and learning-rate range of its zoos).

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
        raise InvalidArgumentError(
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
        raise InvalidArgumentError(f"unknown manifest sections {unknown}; allowed: {', '.join(EXTRA_SECTIONS)}")

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if (d / MANIFEST).exists() and not overwrite:
        raise FileExistsError(f"{d / MANIFEST} exists; pass overwrite=True to replace it")

    files = []
    versions = {}
    if isinstance(predictor, GBMPredictor):
        boosters = [("model.txt", predictor.booster_)]
        if predictor.quantile_boosters_ is not None:
            boosters += [(f"model_q_{tag}.txt", b) for tag, b in zip(("lo", "hi"), predictor.quantile_boosters_)]
        for fn, bst in boosters:  # the same predictions without LightGBM's training records (lgbm_text)
            atomic_write_text(d / fn, slim_model_text(bst.model_to_string()))
            files.append(fn)
    elif isinstance(predictor, DNNPredictor):
        predictor.model_.save(str(d / "model.keras"))
        _write_json(d / "standardization.json",
                    {"mean": predictor.mean_, "scale": predictor.scale_})
        files += ["model.keras", "standardization.json"]
        keras = require("keras", "saving a DNNPredictor")

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
        "files": {fn: _saved_hash(d / fn) for fn in files},
        "library_versions": {**_lib_versions(), **versions},
        **extra,
    }
    _write_json(d / MANIFEST, manifest)
    _write_seal(d)
    return d / MANIFEST


def slim(directory) -> Path:
    """Rewrite a saved GBM predictor's LightGBM texts without their training records
    (:func:`~weightwatch.predictors.lgbm_text.slim_model_text`: the same predictions, bit for bit), update the
    manifest's sha256 of each and re-seal it; nothing else in the manifest changes. Returns the manifest path."""
    d = Path(directory)
    m = _parse_manifest(d)
    _check_files(d, m)
    for fn in [f for f in m["files"] if f.endswith(".txt")]:
        atomic_write_text(d / fn, slim_model_text((d / fn).read_text()))
        m["files"][fn] = _saved_hash(d / fn)
    _write_json(d / MANIFEST, m)
    _write_seal(d)
    return d / MANIFEST


def _saved_hash(path: Path) -> str:
    """sha256 of a file just saved; a LightGBM text LightGBM itself wrote is known to parse."""
    digest = sha256_file(path)
    if path.suffix == ".txt":
        from .lgbm_text import mark_known

        mark_known(digest)
    return digest


def _write_seal(d: Path) -> Path:
    return atomic_write_text(d / SEAL, f"{sha256_file(d / MANIFEST)}  {MANIFEST}\n")


def seal(directory) -> Path:
    """Write ``manifest.sha256`` for the manifest in ``directory``, after checking everything else.

    For predictors saved before manifests were sealed, or a manifest you
    edited on purpose: the manifest must still be well formed and every file
    it lists must match its sha256. Returns the seal's path.
    """
    d = Path(directory)
    _check_files(d, _parse_manifest(d, sealed=False))
    return _write_seal(d)


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
    except json.JSONDecodeError as e:
        raise PredictorIntegrityError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e
    except (OSError, ValueError) as e:
        raise PredictorIntegrityError(f"cannot read {path}: {e}") from e


def _plain_file(path: Path, what: str) -> None:
    """Refuse a symlink or a non-file where a predictor file must be."""
    if path.is_symlink():
        raise PredictorIntegrityError(f"{path} is a symlink; a predictor's {what} must be a regular file in its directory")
    if not path.is_file():
        raise PredictorIntegrityError(f"{path} is missing" + (f" (listed in {MANIFEST})" if what != MANIFEST else ""))


def _parse_manifest(d: Path, *, sealed: bool = True) -> dict:
    """The checked manifest dict of predictor directory ``d`` (seal verified first if ``sealed``)."""
    if not d.is_dir():
        raise PredictorIntegrityError(f"predictor directory {d} does not exist" if not d.exists()
                                      else f"{d} is not a predictor directory (it is a file)")
    mpath = d / MANIFEST
    if not mpath.exists() and not mpath.is_symlink():
        raise PredictorIntegrityError(f"no {MANIFEST} in {d}: not a saved predictor, or its manifest was deleted")
    _plain_file(mpath, MANIFEST)
    if sealed:
        spath = d / SEAL
        if not spath.exists() and not spath.is_symlink():
            raise PredictorIntegrityError(
                f"{spath} is missing, so {mpath} cannot be trusted; if you have checked it, seal it with "
                f"weightwatch.predictors.seal({str(d)!r})")
        _plain_file(spath, SEAL)
        try:
            text = spath.read_text(encoding="utf-8")
        except (OSError, ValueError) as e:
            raise PredictorIntegrityError(f"cannot read {spath}: {e}") from e
        want = text.split()[0] if text.split() else ""
        if len(want) != 64 or text.split()[1:] not in ([], [MANIFEST]):
            raise PredictorIntegrityError(f"{spath} is corrupt: expected '<sha256>  {MANIFEST}'")
        if sha256_file(mpath) != want:
            raise PredictorIntegrityError(
                f"{mpath} does not match its sha256 in {SEAL}: it was edited or corrupted after saving")
    m = _read_json(mpath)
    _check_manifest(m, mpath)
    return m


def read_manifest(directory) -> dict:
    """The manifest of the predictor in ``directory``: seal verified, keys and file names checked."""
    return _parse_manifest(Path(directory))


def _check_manifest(m, mpath: Path) -> None:
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise PredictorIntegrityError(f"{mpath} is not a {FORMAT_NAME} manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise PredictorIntegrityError(
            f"{mpath}: unsupported format_version {m.get('format_version')!r} (supported: {FORMAT_VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in m]
    if missing:
        raise PredictorIntegrityError(f"{mpath} lacks required key(s) {', '.join(missing)}")
    unknown = sorted(set(m) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise PredictorIntegrityError(f"{mpath} has unknown key(s) {', '.join(unknown)}; "
                                      f"allowed: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}")
    cls = _CLASSES.get(m["predictor_class"]) if isinstance(m["predictor_class"], str) else None
    if cls is None:
        raise PredictorIntegrityError(f"{mpath}: unknown predictor_class {m['predictor_class']!r}; "
                                      f"known: {', '.join(_CLASSES)}")
    names, n = m["feature_names"], m["n_features"]
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise PredictorIntegrityError(f"{mpath}: feature_names must be a list of strings")
    if not isinstance(n, int) or isinstance(n, bool) or n != len(names):
        raise PredictorIntegrityError(f"{mpath}: n_features is {n!r} but feature_names has {len(names)} entries")
    if not isinstance(m["params"], dict):
        raise PredictorIntegrityError(f"{mpath}: params must be an object")
    unknown = sorted(set(m["params"]) - set(cls().get_params(deep=False)))
    if unknown:
        raise PredictorIntegrityError(f"{mpath}: unknown {cls.__name__} parameter(s) {', '.join(unknown)}")
    files = m["files"]
    if not isinstance(files, dict) or not files:
        raise PredictorIntegrityError(f"{mpath} lists no model files")
    for fn, digest in files.items():
        # Names are bare file names; refuse paths that would escape the directory.
        if os.path.basename(fn) != fn or fn in ("", ".", "..", MANIFEST, SEAL):
            raise PredictorIntegrityError(f"{mpath}: invalid file name {fn!r} (only bare file names in the "
                                          "predictor's directory are allowed)")
        if not isinstance(digest, str) or len(digest) != 64:
            raise PredictorIntegrityError(f"{mpath}: the sha256 of {fn} is not 64 hex digits")


def _check_files(d: Path, m: dict) -> None:
    for fn, digest in m["files"].items():
        p = d / fn
        _plain_file(p, "model file")
        actual = sha256_file(p)
        if actual != digest:
            raise PredictorIntegrityError(f"sha256 mismatch for {fn} in {d}: {MANIFEST} has {digest}, "
                                          f"the file {actual} (corrupted or replaced)")


def _check_shipped(d: Path, m: dict, name: str) -> None:
    """Refuse a shipped predictor whose files differ from the sha256 table inside the package: a file swapped
    together with its manifest and seal is caught here (the seal only catches accidents)."""
    from ._shipped_hashes import HASHES

    if not any(k.startswith(name + "/") for k in HASHES):
        raise PredictorIntegrityError(f"{d} is in weightwatch's own predictor directory but is not a predictor "
                                      "shipped with this version (no sha256 recorded for it in "
                                      "weightwatch/predictors/_shipped_hashes.py)")
    for fn in (MANIFEST, SEAL, *m["files"]):
        want = HASHES.get(f"{name}/{fn}")
        if want is None or sha256_file(d / fn) != want:
            raise PredictorIntegrityError(
                f"{d / fn} is not the file shipped with this version of weightwatch (its sha256 differs from the "
                "one recorded inside the package): the shipped predictor was replaced or damaged; reinstall "
                "weightwatch")


def load_predictor(directory, *, expected_feature_names: Optional[Sequence[str]] = None,
                   shipped_as: Optional[str] = None):
    """Load a predictor saved by :func:`save_predictor`.

    The manifest's seal and every model file's sha256 are verified before
    anything is parsed.

    Parameters
    ----------
    directory : path-like
    expected_feature_names : sequence of str, optional
        If given, must equal the saved feature names (same order).
    shipped_as : str, optional
        The name of a predictor shipped inside the package: its files must
        also match the sha256 recorded in the package code.

    Returns
    -------
    predictor
        Ready to ``predict``; ``manifest_`` holds the manifest dict.

    Raises
    ------
    PredictorIntegrityError
        Missing, unsealed, changed or malformed manifest (unknown keys, file
        names outside the directory, symlinks), missing file or sha256
        mismatch; the message names the file.
    FeatureMismatchError
        Saved feature names differ from ``expected_feature_names``.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise InvalidArgumentError(f"load_predictor needs a directory path, got {type(directory).__name__}")
    d = Path(directory)
    m = _parse_manifest(d)
    _check_files(d, m)
    if shipped_as is not None:
        _check_shipped(d, m, shipped_as)
    cls = _CLASSES[m["predictor_class"]]
    files = m["files"]

    names = list(m.get("feature_names", []))
    if expected_feature_names is not None:
        expected = [str(n) for n in expected_feature_names]
        if names != expected:
            raise FeatureMismatchError(
                "Feature names of the saved predictor differ from expected: "
                + _describe_name_diff(names, expected)
            )

    params = dict(m["params"])
    if cls is GBMPredictor and params.get("interval") is not None:
        params["interval"] = tuple(params["interval"])
    pred = cls(**params)
    pred.n_features_in_ = int(m["n_features"])
    if m.get("feature_names_from_fit"):
        pred.feature_names_in_ = np.asarray(names, dtype=object)

    if cls is GBMPredictor:
        _load_gbm(pred, d, files)
    elif cls is DNNPredictor:
        _load_dnn(pred, d, files)
    else:
        _require(files, "coefficients.json", d)
        c = _read_json(d / "coefficients.json")
        pred.coef_ = np.asarray(c["coef"], dtype=np.float64)
        pred.intercept_ = float(c["intercept"])
        if c.get("n_iter") is not None:
            pred.n_iter_ = int(c["n_iter"])
        if pred.coef_.shape != (pred.n_features_in_,):
            raise PredictorIntegrityError(f"{d / 'coefficients.json'} has the wrong number of coefficients")
    pred.manifest_ = m
    return pred


def _require(files, fn, d: Path):
    if fn not in files:
        raise PredictorIntegrityError(f"{d / MANIFEST} does not list {fn}, which this predictor needs")


def _load_gbm(pred, d: Path, files) -> None:
    """Parse the LightGBM texts; one not known to parse (:mod:`.lgbm_text`) is checked and parsed in a child
    process first, so a damaged file cannot crash this one."""
    import lightgbm as lgb

    from . import lgbm_text

    needed = ["model.txt"] + (["model_q_lo.txt", "model_q_hi.txt"] if pred.interval is not None else [])
    texts, digests = {}, {}
    for fn in needed:
        _require(files, fn, d)
        try:
            raw = (d / fn).read_bytes()
            texts[fn] = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PredictorIntegrityError(f"cannot read {d / fn}: {exc}") from None
        digests[fn] = hashlib.sha256(raw).hexdigest()  # of the bytes parsed, not only those checked before
        if digests[fn] != files[fn]:
            raise PredictorIntegrityError(f"sha256 mismatch for {fn} in {d}: it changed while being loaded")
    unknown = [fn for fn in needed if not lgbm_text.is_known(digests[fn])]
    for fn in unknown:
        lgbm_text.check_model_text(texts[fn], d / fn)
    if unknown:
        lgbm_text.parse_in_subprocess({d / fn: texts[fn] for fn in unknown})
        for fn in unknown:
            lgbm_text.mark_known(digests[fn])

    def booster(fn):
        return lgb.Booster(model_str=texts[fn])

    pred.booster_ = booster("model.txt")
    if pred.interval is not None:
        pred.quantile_boosters_ = (booster("model_q_lo.txt"), booster("model_q_hi.txt"))
    else:
        pred.quantile_boosters_ = None
    if pred.booster_.num_feature() != pred.n_features_in_:
        raise PredictorIntegrityError(f"{d / 'model.txt'}: its feature count disagrees with {MANIFEST}")


def _load_dnn(pred, d: Path, files) -> None:
    keras = require("keras", "loading a DNNPredictor")

    _require(files, "model.keras", d)
    _require(files, "standardization.json", d)
    s = _read_json(d / "standardization.json")
    pred.mean_ = np.asarray(s["mean"], dtype=np.float64)
    pred.scale_ = np.asarray(s["scale"], dtype=np.float64)
    # safe_mode refuses to deserialise arbitrary code (e.g. Lambda layers).
    pred.model_ = keras.saving.load_model(str(d / "model.keras"), compile=False, safe_mode=True)
