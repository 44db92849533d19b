"""The paper's protocol, side by side with the paper's numbers (Unterthiner et al. 2020, §4.2-4.4, A.4-A.5, C).

Protocol (``weightwatch evaluate --protocol paper``):

* one row per run: its final checkpoint, finite weights only;
* a held-out split of runs (20%), drawn once and used once;
* for every (predictor, feature set) a random search over the A.4 ranges,
  scored by group 3-fold CV on the training split (MSE);
* the best configuration is trained on each of the three CV folds and those
  three models are scored on the held-out split: mean ± std, as Tables 2 and 5.

:func:`run_paper` computes; :mod:`weightwatch.experiments.paper_doc` lays the stored numbers out beside the
paper's, states every deviation and the commands that reproduce them (nothing is fitted there).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import runs
from .._files import atomic_write_text, jsonable
from ..errors import InvalidArgumentError
from ..predictors import kendall_tau, r2
from ..zoo.storage import build_records
from . import protocol as ev

# ---------------------------------------------------------------- the paper's numbers (MNIST unless noted)

#: Table 2, MNIST column: R² of GBM per feature set.
PAPER_TABLE2 = {
    "W^1": 0.921, "W^2": 0.905, "W^3": 0.904, "W^4": 0.976, "W": 0.976, "W_L-l1": 0.965, "W_L-l2": 0.963,
    "W-global": 0.853, "W_L": 0.988, "A": 0.915, "lambda_LR": 0.545, "A+W": 0.980,
}
#: Table 5, MNIST block: R² per predictor and feature set.
TABLE5_FEATURES = ("W^1", "W^2", "W^3", "W^4", "W", "A", "A+W", "W-global", "W_L")
PAPER_TABLE5 = {
    "linear": dict(zip(TABLE5_FEATURES, (0.446, 0.577, 0.601, 0.876, 0.799, 0.645, 0.801, 0.410, 0.815))),
    "gbm": dict(zip(TABLE5_FEATURES, (0.921, 0.905, 0.904, 0.976, 0.976, 0.915, 0.980, 0.853, 0.988))),
    "dnn": dict(zip(TABLE5_FEATURES, (0.926, 0.915, 0.900, 0.975, 0.951, 0.902, 0.948, 0.819, 0.989))),
}
#: Table 3: Kendall τ of a W_L GBM trained on the row collection, scored on the column collection.
PAPER_TABLE3_COLLECTIONS = ("MNIST", "Fashion MNIST", "CIFAR10-GS", "SVHN-GS")
PAPER_TABLE3 = (
    (0.92, 0.76, 0.78, 0.69),
    (0.70, 0.90, 0.76, 0.66),
    (0.70, 0.62, 0.90, 0.71),
    (0.62, 0.57, 0.70, 0.85),
)
#: Table 9 (CIFAR10-GS in the paper): MAD between a W GBM's predictions on modified and original networks.
PAPER_TABLE9 = (
    ("scale:0.001", "scale, c = 1e-3", 0.1353),
    ("scale:0.1", "scale, c = 1e-1", 0.1144),
    ("perm:global", "global permutation", 0.1100),
    ("perm:all+mix", "permuting within all layers (mixing b. and w.)", 0.0893),
    ("perm:final+mix", "permuting within final layer (mixing b. and w.)", 0.0680),
    ("perm:all", "permuting within all layers (not mixing b. and w.)", 0.0671),
    ("perm:final", "permuting within final layer (not mixing b. and w.)", 0.0585),
    ("scale:100", "scale, c = 100", 0.0470),
    ("scale:10", "scale, c = 10", 0.0465),
    ("scale:2", "scale, c = 2", 0.0401),
    ("perm:first3+mix", "permuting within first 3 layers (mixing b. and w.)", 0.0311),
    ("perm:first3", "permuting within first 3 layers (not mixing b. and w.)", 0.0133),
)
PAPER_RUNS = {"MNIST": 16183}
PAPER_TRAIN_RUNS = 15000
PAPER_SEARCH_CONFIGS = 1000
#: Within this distance of the paper's number a row needs no explanation (the issue's tolerance).
TOLERANCE = 0.03
#: The explanation cell of W_L's Kendall τ: W_L and the run's training fraction (not a row of the paper's tables).
FRACTION_SET = "W_L+train_fraction"
#: Binomial redraws averaged for the Kendall τ noise ceiling.
TAU_CEILING_DRAWS = 20
#: Every row of Table 2's MNIST column, with the two rows this protocol does not measure (W_L^4, W_L^{1,4}).
PAPER_TABLE2_ALL = {**PAPER_TABLE2, "W_L^4": 0.948, "W_L^{1,4}": 0.965}
TABLE2_ORDER = ("W^1", "W^2", "W^3", "W^4", "W", "W_L-l1", "W_L-l2", "W-global", "W_L", "A", "lambda_LR", "A+W")


@dataclass
class PaperOptions:
    """Budget of the protocol. The paper searched 1,000 configurations per cell; we cannot on two cores."""

    n_configs: Mapping[str, int] = field(default_factory=lambda: {"gbm": 12, "linear": 6, "dnn": 2})
    n_estimators: int = 600  # trees per GBM (the paper does not state it)
    dnn_epochs: int = 40
    test_fraction: float = 0.2
    seed: int = 0
    sensitivity_networks: int = 1000
    table5: Sequence[str] = ("linear", "dnn")  # Table 5's other rows (the costly part); () for GBM only
    n_jobs: int = 2
    min_child_samples: int = 20  # LightGBM's default; A.4 does not search it

    def fixed(self, predictor: str) -> dict:
        return {"gbm": {"n_estimators": self.n_estimators, "n_jobs": 1, "min_child_samples": self.min_child_samples},
                "dnn": {"epochs": self.dnn_epochs},
                "linear": {"max_iter": 500, "tol": 1e-7}}[predictor]


# ---------------------------------------------------------------- collections: final checkpoints of a zoo or a table


@dataclass
class Collection:
    """One row per run (its final checkpoint): targets, run ids, hyperparameters, and a feature source."""

    name: str
    y: np.ndarray
    groups: np.ndarray
    metrics: object  # DataFrame of config.* columns, one row per run
    source: str
    weights: Callable[[str], tuple] | None = None  # feature set -> (X, names), for weight features
    wl: np.ndarray | None = None  # W_L when only a table is at hand

    def features(self, feature_set: str) -> tuple:
        """(X, names) of ``feature_set`` for every run, computed once per collection."""
        cache = self.__dict__.setdefault("_cache", {})
        if feature_set not in cache:
            cache[feature_set] = self._features(feature_set)
        return cache[feature_set]

    def _features(self, feature_set: str) -> tuple:
        if feature_set in ("A", "lambda_LR"):
            return ev.hyperparameter_matrix(self.metrics.drop(columns=["epoch"], errors="ignore"), feature_set)
        if feature_set == "A+W":
            a, an = self.features("A")
            w, wn = self.features("W")
            return np.hstack([a, w]), an + wn
        if feature_set == FRACTION_SET:  # W_L and the one hyperparameter that sets a run's generalisation gap
            a, an = self.features("A")
            w, wn = self.features("W_L")
            i = an.index("train_fraction")
            return np.hstack([w, a[:, [i]]]), wn + [an[i]]
        if self.weights is not None:
            return self.weights(feature_set)
        if feature_set == "W_L" and self.wl is not None:
            return self.wl, [f"W_L[{i}]" for i in range(self.wl.shape[1])]
        raise InvalidArgumentError(f"collection {self.name!r} holds W_L only (a feature table), not {feature_set!r}")

    def split(self, opts: PaperOptions) -> tuple:
        return ev.split_rows(self.groups, opts.test_fraction, opts.seed)


PAPER_BUDGETS = {  # PaperOptions overrides per --budget
    "default": {},
    "tiny": {"n_configs": {"gbm": 2, "linear": 1, "dnn": 1}, "n_estimators": 30, "dnn_epochs": 2,
             "min_child_samples": 3, "n_jobs": 1},  # for tests: seconds, one process
}


def zoo_collection(name: str, zoo) -> Collection:
    """Final checkpoint of every finite run of a zoo."""
    view = zoo.filter(status="ok", last=True)
    if len(view) < 10:
        raise InvalidArgumentError(f"zoo {zoo.path} has {len(view)} finished finite runs; the protocol needs 10 or more")
    return Collection(name, view.metrics["test_accuracy"].to_numpy(float), view.groups(),
                      view.metrics.reset_index(drop=True), f"zoo {zoo.path} ({view.n_runs} runs)",
                      weights=view.features)


def table_collection(name: str, table) -> Collection:
    """Final checkpoint of every finite run of a feature table (W_L and hyperparameters only)."""
    rows = table.rows(runs.final_rows(table.metrics))
    return Collection(name, rows.metrics["test_accuracy"].to_numpy(float), rows.metrics["modeldir"].to_numpy(),
                      rows.metrics, f"table {table.path.name} ({len(rows)} runs)", wl=rows.X)


# ---------------------------------------------------------------- the protocol


#: Source files (under the package) that compute a cell: a change to any of them makes stored cells stale.
CODE_FILES = ("experiments/protocol.py", "experiments/paper.py", "predictors/*.py", "features.py", "stats.py",
              "network.py", "runs.py")


def code_version(root: Path | None = None) -> dict:
    """The package version and a sha256 over :data:`CODE_FILES` (names and bytes): part of every cell's key."""
    from .._version import __version__

    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for pattern in CODE_FILES:
        for f in sorted(root.glob(pattern)):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return {"package": __version__, "protocol_sha256": h.hexdigest()}


class CellStore:
    """Finished cells of one protocol run in a JSON file, so that an interrupted run continues where it stopped.

    Every cell is written (atomically) as soon as it is done, under ``collection|feature set|predictor``,
    beside a fingerprint of what the cells depend on (each collection's runs, the options and the code version,
    :func:`code_version`): a file of another run or of other code is ignored and rewritten. ``path=None`` keeps
    nothing.
    """

    def __init__(self, path=None, fingerprint: dict | None = None, log=print):
        self.path, self.fingerprint, self.cells = (Path(path) if path else None), jsonable(fingerprint or {}), {}
        if self.path is not None and self.path.is_file():
            try:
                saved = json.loads(self.path.read_text())
            except ValueError:
                saved = {}
            if saved.get("fingerprint") == self.fingerprint:
                self.cells = dict(saved.get("cells", {}))
                log(f"resuming: {len(self.cells)} finished cells in {self.path}")
            else:
                log(f"{self.path} holds cells of another run (other runs, options or code): starting afresh")

    def get(self, key: str):
        return self.cells.get(key)

    def put(self, key: str, value: dict) -> None:
        self.cells[key] = value
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps({"fingerprint": self.fingerprint, "cells": self.cells}) + "\n")


def cell(coll: Collection, feature_set: str, predictor: str, opts: PaperOptions, refit: bool = False,
         store: CellStore | None = None) -> tuple:
    """One table cell: search, three fold models on the held-out split, mean ± std; and with ``refit`` the model
    refit on the training split.

    A cell found in ``store`` is not searched again; when its model is needed it is refit with the stored
    parameters (the same data and settings give the same model).
    """
    key = f"{coll.name}|{feature_set}|{predictor}"
    done = store.get(key) if store is not None else None
    if done is not None and not refit:
        return done, None
    X, names = coll.features(feature_set)
    t0 = time.time()
    res = ev.run_protocol(X, coll.y, coll.groups, predictor=predictor, feature_set=feature_set,
                          n_configs=1 if done else opts.n_configs[predictor], test_fraction=opts.test_fraction,
                          seed=opts.seed, n_jobs=opts.n_jobs, fixed_params=opts.fixed(predictor), feature_names=names,
                          refit=refit, params=done["params"] if done else None)
    if done is not None:
        return done, res.model
    out = {"r2": res.summary["r2"], "mse": res.summary["mse"], "kendall_tau": res.summary["kendall_tau"],
           "n_train": res.n_train, "n_test": res.n_test, "n_features": int(X.shape[1]),
           "n_configs": int(opts.n_configs[predictor]), "params": jsonable(res.params),
           "seconds": round(time.time() - t0, 1)}
    if store is not None:
        store.put(key, out)
    return (out, res.model) if refit else (out, None)


#: Fractions of the training runs for the learning curves that explain rows far from the paper.
LC_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
#: Runs behind each of the paper's fold models (two of the three CV folds of its 15,000 training runs): where
#: the learning curves are projected.
PAPER_FOLD_RUNS = PAPER_TRAIN_RUNS * 2 // 3


def learning_curve(coll: Collection, feature_set: str, predictor: str, params: dict, opts: PaperOptions) -> dict:
    """R² and Kendall τ against the number of training runs, measured inside the training split (held-out
    split untouched).

    A model with the cell's chosen parameters is fitted on a growing share of
    CV fold 0's training runs and scored on fold 0's validation runs.
    """
    X, _ = coll.features(feature_set)
    tr, _ = coll.split(opts)
    Xtr, ytr, gtr = X[tr], coll.y[tr], coll.groups[tr]
    f_tr, f_va = ev.group_kfold(gtr, n_splits=3, seed=opts.seed)[0]
    ids = np.random.default_rng(opts.seed).permutation(np.unique(gtr[f_tr]))
    out = {}
    for frac in LC_FRACTIONS:
        k = max(2, int(round(frac * len(ids))))
        keep = f_tr[np.isin(gtr[f_tr], ids[:k])]
        model = ev.PREDICTORS[predictor](**params).fit(Xtr[keep], ytr[keep])
        p = model.predict(Xtr[f_va])
        out[str(frac)] = {"runs": int(k), "r2": float(r2(ytr[f_va], p)), "tau": float(kendall_tau(ytr[f_va], p))}
    return out


def project(curve: Mapping[str, dict], metric: str, runs: int) -> float | None:
    """``metric`` at ``runs`` training runs from a power law ``a - b * n**-c`` fitted to a learning curve
    (None when the curve has fewer than four points or the fit fails)."""
    pts = [(p["runs"], p[metric]) for p in curve.values() if metric in p]
    if len(pts) < 4:
        return None
    from scipy.optimize import curve_fit

    n, v = (np.asarray(x, float) for x in zip(*pts))
    law = lambda n, a, b, c: a - b * n ** (-c)  # noqa: E731
    try:
        with np.errstate(all="ignore"):
            (a, b, c), _ = curve_fit(law, n, v, p0=(v[-1] + 0.02, 1.0, 0.5), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    value = float(law(runs, a, b, c))
    return value if np.isfinite(value) else None


def transfer(collections: Sequence[Collection], models: Mapping[str, object], opts: PaperOptions) -> dict:
    """Table 3: τ of each collection's W_L model (refit on its training split) on every held-out split."""
    out = {}
    for src in collections:
        out[src.name] = {}
        for dst in collections:
            _, te = dst.split(opts)
            X, _ = dst.features("W_L")
            out[src.name][dst.name] = float(kendall_tau(dst.y[te], models[src.name].predict(X[te])))
    return out


def sensitivity(coll: Collection, model, zoo, opts: PaperOptions) -> dict:
    """Table 9 on our zoo: MAD between the W model's predictions on modified and original held-out networks."""
    _, te = coll.split(opts)
    view = zoo.filter(status="ok", last=True)
    pick = te[:opts.sensitivity_networks]
    nets = [view.network(int(i)) for i in pick]
    return {"n_networks": len(nets), "runs": [str(coll.groups[i]) for i in pick],
            "mad": ev.sensitivity(model, nets, "W", [m for m, _, _ in PAPER_TABLE9], seed=opts.seed)}


def run_paper(zoo, name: str = "mnist5k", tables: Mapping[str, object] | None = None,
              opts: PaperOptions | None = None, log=print, cells=None) -> dict:
    """Everything ``docs/paper-comparison.md`` reports, as plain data.

    ``cells``: a JSON file keeping every finished cell (:class:`CellStore`); run again with the same file after
    an interruption and the finished cells are not searched again.
    """
    opts = opts or PaperOptions()
    t0 = time.time()
    main = zoo_collection(name, zoo)
    others = [table_collection(n, t) for n, t in (tables or {}).items() if n != name]
    code = code_version()
    store = CellStore(cells, {"options": asdict(opts), "code": code,
                              "runs": {c.name: [len(c.y), str(c.groups[0]), str(c.groups[-1])]
                                       for c in (main, *others)}}, log=log)

    def run_cell(*args, **kw):  # every cell of this run goes through the store
        return cell(*args, store=store, **kw)

    width = main.features("W_L")[0].shape[1]
    for coll in others:
        if coll.wl.shape[1] != width:
            raise InvalidArgumentError(f"table {coll.name!r} has {coll.wl.shape[1]} W_L features, the zoo {width}: "
                                       "Table 3 transfers between collections of the same architecture only")
    results = {"collection": name, "source": main.source, "zoo_manifest": jsonable(getattr(zoo, "manifest", {})),
               "options": jsonable(asdict(opts)), "code_version": code, "n_runs": int(len(main.y)),
               "n_train": None, "n_test": None, "table2": {}, "table5": {}, "conclusions": {}}
    tr, te = main.split(opts)
    results["split"] = {"train_runs": sorted(map(str, main.groups[tr])), "heldout_runs": sorted(map(str, main.groups[te]))}
    models = {}
    for fs in TABLE2_ORDER:
        log(f"table 2: {fs} (gbm)")
        res, model = run_cell(main, fs, "gbm", opts, refit=fs in ("W", "W_L"))
        results["table2"][fs] = res
        results["n_train"], results["n_test"] = res["n_train"], res["n_test"]
        if model is not None:
            models[fs] = model
    results["table5"]["gbm"] = {fs: results["table2"][fs] for fs in TABLE5_FEATURES}
    log(f"explanation: {FRACTION_SET} (gbm)")
    results["explanations"] = {FRACTION_SET: run_cell(main, FRACTION_SET, "gbm", opts)[0]}
    results["learning_curves"] = {}
    for fs, res in results["table2"].items():
        if abs(res["r2"][0] - PAPER_TABLE2[fs]) > TOLERANCE:
            log(f"learning curve: {fs}")
            results["learning_curves"][fs] = learning_curve(main, fs, "gbm", res["params"], opts)
    for predictor in opts.table5:
        if predictor in ("linear", "dnn"):
            results["table5"][predictor] = {}
            for fs in TABLE5_FEATURES:
                log(f"table 5: {fs} ({predictor})")
                results["table5"][predictor][fs], _ = run_cell(main, fs, predictor, opts)
    log("table 9: sensitivity of the W model")
    results["table9"] = sensitivity(main, models["W"], zoo, opts)
    wl_models = {name: models["W_L"]}
    results["conclusions"][name] = {fs: results["table2"][fs]["r2"] for fs in ("W_L", "A", "lambda_LR")}
    if "linear" in results["table5"]:
        results["conclusions"][name]["W_L linear"] = results["table5"]["linear"]["W_L"]["r2"]
    else:
        results["conclusions"][name]["W_L linear"] = run_cell(main, "W_L", "linear", opts)[0]["r2"]
    for coll in others:
        log(f"table 3 and conclusions: {coll.name}")
        res, wl_models[coll.name] = run_cell(coll, "W_L", "gbm", opts, refit=True)
        concl = {"W_L": res["r2"]}
        for fs in ("A", "lambda_LR"):
            concl[fs] = run_cell(coll, fs, "gbm", opts)[0]["r2"]
        concl["W_L linear"] = run_cell(coll, "W_L", "linear", opts)[0]["r2"]
        results["conclusions"][coll.name] = concl
        results.setdefault("others", {})[coll.name] = {"source": coll.source, "n_runs": int(len(coll.y))}
    results["table3"] = transfer([main, *others], wl_models, opts)
    results["noise_ceiling"] = noise_ceiling(main, zoo, opts)
    results["init_std_effect"] = init_std_effect(main.metrics, f"the {main.name} zoo's final checkpoints")
    results["seconds"] = round(time.time() - t0, 1)
    return results


def init_std_effect(metrics, source: str) -> dict:
    """Final accuracy and doomed share of the runs whose ``init_std`` is used as a standard deviation
    (``random_normal``, ``truncated_normal``), below and inside the paper's standard deviations (0.1 and up, A.2's
    variances 1e-2 to 0.5): what reading A.2's variance as a standard deviation did to the zoo."""
    m = metrics[metrics["config.w_init"].isin(["random_normal", "truncated_normal"])]
    final = m["test_accuracy"].astype(float).to_numpy()
    low = m["config.init_std"].astype(float).to_numpy() < 0.1
    out = {"source": source}
    for name, sel in (("below", low), ("inside", ~low)):
        out[name] = {"runs": int(sel.sum()), "doomed": float(runs.doomed(final[sel]).mean()) if sel.any() else None,
                     "mean_accuracy": float(final[sel].mean()) if sel.any() else None}
    return out


def noise_ceiling(coll: Collection, zoo, opts: PaperOptions) -> dict | None:
    """The R² a perfect predictor of the *expected* accuracy would reach on the held-out split.

    A run's test accuracy is a mean over ``n`` test images, so it carries
    binomial noise of variance ``acc (1 - acc) / n`` that no function of the
    weights can predict: ``R²max = 1 - mean(acc (1 - acc) / n) / var(acc)``.
    """
    from ..zoo.datasets import load_dataset

    build = build_records(getattr(zoo, "manifest", {}).get("build", {}))[0]
    try:
        data = load_dataset(build["dataset"], data_dir=build.get("data_dir"), resolution=int(build["resolution"]))
    except Exception:  # noqa: BLE001 - the ceiling is a remark; an unreadable dataset only omits it
        return None
    n = int(len(data.y_test))
    _, te = coll.split(opts)
    y = coll.y[te]
    # Kendall τ between each run's accuracy and a fresh binomial measurement of it on n images: what a perfect
    # predictor of the expected accuracy would reach (the measured accuracy standing in for the expected one)
    rng = np.random.default_rng(opts.seed)
    taus = [kendall_tau(y, rng.binomial(n, np.clip(y, 0, 1)) / n) for _ in range(TAU_CEILING_DRAWS)]
    return {"test_images": n, "r2_max": float(1 - np.mean(y * (1 - y) / n) / np.var(y)),
            "tau_max": float(np.mean(taus))}


# ---------------------------------------------------------------- the comparison document
