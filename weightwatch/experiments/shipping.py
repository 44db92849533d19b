"""Build what ships in ``pretrained/``: compact feature tables, predictors, model cards.

Two commands (see ``pretrained/README.md`` for the full recipe):

* ``weightwatch pretrained tables NAME=ZOO_DIR ... --out pretrained/tables`` —
  per checkpoint: W_L statistics + metrics + configuration, compressed, so
  predictors can be retrained without the raw weights;
* ``weightwatch pretrained build --tables pretrained/tables --out pretrained`` —
  fits the shipped predictors from those tables and writes their model cards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .. import runs
from ..features import agnostic_from_wl
from .._argtypes import int_at_least
from .._console import json_text, print_json
from .._files import atomic_write_text
from . import protocol as ev
from ..predictors import (GBMPredictor, evaluate, group_kfold, kendall_tau, load_predictor, save_predictor,
                          summarize_folds)
from ..zoo.storage import build_records

PAPER_CNN_LAYERS = 4
CARD_EPOCHS = (1, 2, 3)
INTERVAL = (0.1, 0.9)
#: Paper-CNN tables of the A.2 zoos, one shipped predictor each (the table's name is its dataset's).
PAPER_CNN_DATASETS = ("digits", "digits_jitter", "mnist5k", "shapes", "textures")
#: Paper-CNN tables that widen the pooled predictor and the forecaster only: digits trained with four optimizers
#: at learning rates from 1e-4 (``digits_opt``); the same, trained as the frameworks' defaults train, without L2 or
#: dropout, from Keras' initializers (``digits_plain``) or from PyTorch's default initialisation of kernels and
#: biases (``digits_torchinit``).
PAPER_CNN_VARIANTS = ("digits_opt", "digits_plain", "digits_torchinit")
PAPER_CNN_TABLES = PAPER_CNN_DATASETS + PAPER_CNN_VARIANTS
#: The tables the trajectory models (forecaster, doom model) and their verdict card are fitted on: not the
#: plain-training variants. With them, the forecaster stopped 5 of 157 healthy user-style runs
#: (benchmarks/user_runs.py: SGD with momentum at 0.26-0.38 that recover late) against 1 without. Their runs
#: are split on their own (see :func:`paper_split`).
TRAJECTORY_TABLES = PAPER_CNN_DATASETS + ("digits_opt",)
#: GBM settings of the shipped predictors (on top of ``evaluation.DEFAULT_PARAMS["gbm"]``): more, slower
#: trees on half the features per tree; +0.002-0.004 held-out R^2 over the defaults on the digits zoos.
SHIP_PARAMS = {"n_estimators": 800, "learning_rate": 0.03, "colsample_bytree": 0.5}
#: The early forecast pools ~130k checkpoints of four zoos: it needs more capacity (doomed AUROC at
#: epoch 1 on shapes/textures 0.90 -> 0.93 with these settings, measured with the defaults beside them).
EARLY_PARAMS = {"n_estimators": 600, "learning_rate": 0.05, "num_leaves": 127, "colsample_bytree": 0.5}
#: The doom model (a classifier): doomed AUROC at epoch 1 on held-out runs of shapes/textures/digits_opt
#: 0.967/0.955/0.961 with these settings and the setup features, against 0.932/0.950/0.961 with W_L and its
#: trajectory alone (measured side by side on the forecaster's split).
DOOM_PARAMS = {"n_estimators": 400, "learning_rate": 0.03, "num_leaves": 31, "colsample_bytree": 0.5,
               "n_jobs": 2}
#: The leave-one-dataset/family-out models of the MLP card: fewer, faster trees than the shipped model (twelve
#: of them are fitted for one card).
LEAVE_OUT_PARAMS = {"n_estimators": 300, "learning_rate": 0.08}
#: The quantile boosters stay small: they bound an interval that is widened by conformal calibration anyway.
INTERVAL_PARAMS = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31}
#: At most this fraction of healthy runs may ever be stopped by the default callback (verdicts issue).
FALSE_STOP_BUDGET = 0.005
#: The threshold is chosen for SAFETY x the budget on out-of-fold runs, so that held-out runs keep within it.
SAFETY = 0.8
PATIENCE = 2
#: The doom bound is the point forecast plus the offset below which this fraction of final accuracies lie
#: (one-sided conformal bound from out-of-fold residuals): the point forecast ranks doomed runs better than
#: the quantile boosters do (recall at epoch 3 0.82 against 0.70 on a split of the training runs).
UPPER_COVERAGE = 0.9


# ------------------------------------------------------------------ tables


def write_table(zoo, path) -> dict:
    """W_L + metrics + config of every row of ``zoo`` into one compressed ``.npz``."""
    from .. import domain

    X, names = zoo.features("W_L")
    m = zoo.metrics
    cols = {c: m[c].to_numpy() for c in m.columns if c != "_row"}
    with np.errstate(over="ignore"):  # a diverged run's statistics may pass float32's range: inf, never an ok row
        X = X.astype(np.float32)
    arrays = {"W_L": X, "W_L_names": np.array(names),
              "n_params": np.array(zoo.n_params),
              "num_classes": np.array(domain.facts(zoo.network(0)).num_classes or 10),
              "input_range": np.array(zoo.manifest.get("input_range") or domain.ZOO_INPUT_RANGE, np.float64)}
    for c, v in cols.items():
        arrays[f"m:{c}"] = v.astype(str) if v.dtype == object else v
    arrays["manifest"] = np.array(json.dumps(zoo.manifest.get("build", {})))
    if zoo.has_normalisation:  # a BatchNorm family: its normalisation layers' features too
        arrays["BN"] = zoo.normalisation_features().astype(np.float32)
    np.savez_compressed(path, **arrays)
    return {"path": str(path), "rows": len(m), "runs": zoo.n_runs}


def _portable(build):
    """A zoo's build record without this machine's directories: an absolute ``path`` keeps its last three
    components (``/work/notes/zoos/digits-opt/zoo`` -> ``zoos/digits-opt/zoo``), as manifests and cards print it."""
    if isinstance(build, dict):
        return {k: (str(Path(*Path(v).parts[-3:])) if k == "path" and isinstance(v, str) and Path(v).is_absolute()
                    else _portable(v)) for k, v in build.items()}
    if isinstance(build, list):
        return [_portable(v) for v in build]
    return build


class Table:
    """A feature table read back: ``X`` (W_L), ``metrics`` DataFrame, build manifest."""

    def __init__(self, path):
        import pandas as pd

        self.path = Path(path)
        with np.load(self.path, allow_pickle=False) as z:
            self.X = z["W_L"].astype(np.float64)
            self.names = [str(n) for n in z["W_L_names"]]
            self.n_params = int(z["n_params"])
            # tables written before these were recorded are all of 10-class networks on [-1, 1] inputs
            self.num_classes = int(z["num_classes"]) if "num_classes" in z.files else 10
            self.input_range = tuple(float(v) for v in z["input_range"]) if "input_range" in z.files else (-1.0, 1.0)
            self.metrics = pd.DataFrame({k[2:]: z[k] for k in z.files if k.startswith("m:")})
            self.bn = z["BN"].astype(np.float64) if "BN" in z.files else None
            self.build = _portable(json.loads(str(z["manifest"])))
        self.name = self.path.name.removesuffix(".npz")

    def __len__(self):
        return len(self.X)

    @property
    def n_runs(self):
        return int(self.metrics["modeldir"].nunique())

    @property
    def _first_build(self) -> dict:
        """The build record (a merged zoo's: its first source's, which all share family and dataset)."""
        return build_records(self.build)[0]

    @property
    def architecture(self) -> str:
        return str(self._first_build.get("architecture", "paper-cnn"))

    @property
    def dataset(self) -> str:
        return str(self._first_build.get("dataset", self.name))

    @property
    def spec(self):
        """The zoo's family (built in or registered by a plugin), or None when its plugin is not installed here."""
        from ..errors import InvalidArgumentError
        from ..zoo.architectures import get_architecture

        try:
            return get_architecture(self.architecture)
        except InvalidArgumentError:
            return None

    @property
    def is_mlp(self) -> bool:
        """True for a zoo of an MLP family (dense layers only)."""
        return self.spec is not None and self.spec.is_mlp

    @property
    def has_batchnorm(self) -> bool:
        """True for a zoo of a family with BatchNormalization layers."""
        return self.spec is not None and self.spec.batchnorm

    def agnostic(self) -> np.ndarray:
        """W_L-agnostic features from W_L (the extractor's definition)."""
        return agnostic_from_wl(self.X, self.n_params)

    def agnostic_bn(self) -> np.ndarray:
        """W_L-agnostic-bn features: W_L-agnostic, then the BatchNorm layers' (NaN for a family without)."""
        from ..features import normalisation_names

        bn = self.bn if self.bn is not None else np.full((len(self), len(normalisation_names())), np.nan)
        return np.hstack([self.agnostic(), bn])

    def rows(self, mask) -> "Table":
        view = object.__new__(Table)
        view.__dict__.update(self.__dict__)
        view.X = self.X[mask]
        view.bn = None if self.bn is None else self.bn[mask]
        view.metrics = self.metrics[mask].reset_index(drop=True)
        return view

    def ok(self, trained=True) -> "Table":
        mask = (self.metrics["status"] == "ok").to_numpy().copy()
        if trained:
            mask &= (self.metrics["epoch"] > 0).to_numpy()
        return self.rows(mask)


# ------------------------------------------------------------------ fitting


def _gbm(interval=INTERVAL, **extra):
    return GBMPredictor(**{**ev.DEFAULT_PARAMS["gbm"], **ev.FIXED_PARAMS["gbm"], "interval": interval, **extra})


def _protocol(X, y, groups, seed, interval=INTERVAL, params=None, train_groups=None):
    """The experimental protocol (:func:`~weightwatch.experiments.protocol.run_protocol`) with the shipped GBM."""
    res = ev.run_protocol(X, y, groups, predictor="gbm", seed=seed, fixed_params={},
                          params={**ev.FIXED_PARAMS["gbm"], "interval": interval, **(params or {})},
                          train_groups=train_groups)
    return res.model, res.summary, res.train_idx, res.test_idx, res.coverage


def _heldout(table: Table, train_runs) -> Table:
    """The rows of ``table`` whose run the model never trained on."""
    return table.rows(~table.metrics["modeldir"].isin(set(train_runs)).to_numpy())


def _doomed_auroc(model, table: Table, feature_fn, train_runs, epochs=CARD_EPOCHS) -> dict:
    """AUROC at epoch k of the model's prediction for doomed runs, on runs the model never trained on."""
    from sklearn.metrics import roc_auc_score

    finals = runs.final_accuracy(table.metrics)
    num_classes = table.num_classes
    held = _heldout(table, train_runs)
    m = held.metrics
    out = {}
    for k in epochs:
        mask = ((m["status"] == "ok") & (m["epoch"] == k) & m["modeldir"].isin(finals.index)).to_numpy()
        if not mask.any():
            continue
        sub = held.rows(mask)
        doomed = runs.doomed(finals.loc[sub.metrics["modeldir"]].to_numpy(), num_classes)
        if 0 < doomed.sum() < len(doomed):
            out[int(k)] = float(roc_auc_score(doomed, -model.predict(feature_fn(sub, k))))
    return out


def _cross_tau(model, oks: dict, feature_fn, train_runs) -> dict:
    """Kendall tau of ``model`` on the rows of each table whose runs it never trained on (no fine-tuning)."""
    out = {}
    for name, o in oks.items():
        held = _heldout(o, train_runs)
        if len(held):
            out[name] = float(kendall_tau(held.metrics["test_accuracy"].to_numpy(), model.predict(feature_fn(held))))
    return out


def _natural(key) -> tuple:
    """Sort key putting "epoch 2" before "epoch 12" and "2" before "12"."""
    head, _, tail = str(key).rpartition(" ")
    return (head, int(tail)) if tail.isdigit() else (str(key), -1)


def _cell(value) -> str:
    """A card cell: a number to 4 places, a dict as ``k: v`` pairs (epochs in order)."""
    if isinstance(value, dict):
        items = list(value.items())
        epochs = all(str(k).isdigit() for k, _ in items)
        first = ("r2", "mse", "mad", "kendall_tau")  # metrics in the cards' order, then the rest by name
        items = sorted(items, key=lambda kv: _natural(kv[0]) if epochs else
                       (first.index(kv[0]) if kv[0] in first else len(first), str(kv[0])))
        label = "epoch " if epochs else ""
        return ", ".join(f"{label if i == 0 else ''}{k}: {v:.4f}" for i, (k, v) in enumerate(items))
    return f"{value:.4f}"


#: What a card says about its rows (the issue: final checkpoints or all epochs, stated on every card).
ALL_EPOCH_ROWS = ("every checkpoint after epoch 0 (epochs 1-18) of each finite run, not only final checkpoints; "
                  "all checkpoints of a run sit on the same side of the split")


def _card(name, title, notes, out: Path, rows: str = ALL_EPOCH_ROWS, scope=None) -> Path:
    """Store the card's words in the predictor's manifest (``card`` section, re-sealed), then render it."""
    from ..predictors.persist import seal

    path = out / name / "manifest.json"
    m = json.loads(path.read_text())
    m["card"] = {"title": title, "notes": list(notes), "rows": rows, **({"scope": list(scope)} if scope else {})}
    atomic_write_text(path, json.dumps(m, indent=2, sort_keys=True, allow_nan=True) + "\n")
    seal(out / name)
    return render_card(out / name, out)


#: Said wherever a dataset appears in a card.
DATASET_NOTES = {"digits_jitter": "; AUGMENTED digits (three jittered copies of each training image, offline "
                                  "augmentation, which the paper excluded)"}


def _provenance(zoos: dict) -> list:
    """One readable line per training zoo: family, dataset, resolution, runs, seeds (no machine paths)."""
    from ..zoo.datasets.tabular import TABULAR

    lines = []
    for name, b in (zoos or {}).items():
        parts = build_records(b)
        seeds = ", ".join(str(p.get("seed")) for p in parts)
        first = parts[0]
        res = None if first.get("dataset") in TABULAR else first.get("resolution")  # vectors have no resolution
        built = f"{len(parts)} builds merged, seeds {seeds}" if len(parts) > 1 else f"seed {seeds}"
        lines.append(f"  - `{name}`: {first.get('architecture', '?')} on {first.get('dataset', '?')}"
                     f"{f' at {res}x{res}' if res else ''}, {b.get('runs', first.get('runs'))} runs ({built}), "
                     f"{first.get('epochs', '?')} epochs{DATASET_NOTES.get(first.get('dataset'), '')}")
    return lines


def render_card(directory, out: Path | None = None) -> Path:
    """Write ``<name>.md`` beside the predictor directory from its manifest alone (so cards never drift)."""
    directory = Path(directory)
    out = Path(out) if out is not None else directory.parent
    m = json.loads((directory / "manifest.json").read_text())
    name, card, metrics = m["name"], m.get("card") or {}, m.get("metrics") or {}
    zs = m.get("zoo_summary") or {}
    lines = [f"# {name}", "", card.get("title", ""), "",
             f"- feature set: `{m['feature_set']}` ({len(m['feature_names'])} features)",
             f"- architecture family: {m.get('architecture_family')}",
             "- training zoo(s):", *_provenance(zs.get("zoos")),
             f"- rows: {card.get('rows', 'not recorded')}",
             f"- training rows: {zs.get('rows_train')} (runs: {zs.get('runs_train')}); "
             f"held-out rows: {zs.get('rows_test')} (split by configuration, used once)",
             f"- files: {', '.join(sorted(m['files']))} (LightGBM text + JSON; sha256 in manifest.json)",
             f"- built with `{card.get('built_with', 'weightwatch pretrained build')}`", "",
             "## Held-out metrics", "", "| metric | value (mean ± std over 3 CV-fold models) |", "|---|---|"]
    for k in ("r2", "mse", "mad", "kendall_tau"):
        if k in metrics:
            lines.append(f"| {k} | {metrics[k]['mean']:.4f} ± {metrics[k]['std']:.4f} |")
    if metrics.get("interval_coverage") is not None:
        lines.append(f"| {INTERVAL[0]:.0%}–{INTERVAL[1]:.0%} interval coverage | {metrics['interval_coverage']:.3f} |")
    for k, label in (("brier_heldout", "Brier score of the doom probability (held-out rows, one model)"),
                     ("doomed_rate_heldout", "doomed fraction of the held-out rows")):
        if metrics.get(k) is not None:
            lines.append(f"| {label} | {metrics[k]:.4f} |")
    for section, key in (("Cross-dataset Kendall τ (held-out rows of each zoo, no fine-tuning)", "cross_tau"),
                         ("Doomed-run AUROC (final accuracy < chance + 0.1) from the weights at epoch k", "doomed_auroc"),
                         ("The same held-out runs ranked by the forecast of the final accuracy instead",
                          "doomed_auroc_forecast"),
                         ("Per-epoch held-out R² / τ of the final-accuracy forecast", "per_epoch"),
                         ("Held-out dataset: fitted without it, scored on all its runs", "leave_one_dataset_out"),
                         ("Held-out family: fitted without it, scored on all its runs", "leave_one_family_out")):
        if metrics.get(key):
            lines += ["", f"## {section}", "", "| | value |", "|---|---|"]
            for k, v in sorted(metrics[key].items(), key=lambda kv: _natural(kv[0])):
                if v or v == 0:  # a zoo without both doomed and healthy held-out runs has no AUROC
                    lines.append(f"| {k} | {_cell(v)} |")
    scope = card.get("scope") or [
        "Tiny CNNs (and MLPs) trained on small grayscale images at 16×16, inputs in [-1, 1]: the zoos it was "
        "trained on. Within that family, predicted accuracy is calibrated to those datasets.",
        "On other architectures or data it ranks networks (Kendall τ) rather than calibrating accuracy."]
    against = against_default(directory.parent, name)
    if against:
        ds, default = against["dataset"], against["default"]
        lines += ["", f"## Against the default (`{default}`) on the held-out runs of `{ds}`", "",
                  "| | this predictor | default | difference |", "|---|---|---|---|"]
        for label, key in (("Kendall τ", "tau"), ("doomed-run AUROC at epoch 1", "auroc_1")):
            mine, theirs = against[key]
            if mine is not None and theirs is not None:
                lines.append(f"| {label} | {mine:.4f} | {theirs:.4f} | {mine - theirs:+.4f} |")
        lines += ["", (f"In the wheel: it beats the default's Kendall τ by {against['tau_gain']:+.3f}, at least "
                       f"{WHEEL_MIN_TAU_GAIN:.2f}." if against["in_wheel"] else
                       f"Not in the wheel: it beats the default's Kendall τ by {against['tau_gain']:+.3f}, less than "
                       f"{WHEEL_MIN_TAU_GAIN:.2f}; it loads from a source checkout (`pretrained/`) and is rebuilt from "
                       f"the committed tables by `weightwatch pretrained build --tables zoo_tables --out pretrained "
                       f"--only {name}`.")]
    lines += ["", "## Intended use and limits", "", *(f"- {s}" for s in scope),
              "- It sees only weights: a run can look healthy and still overfit, or be fine on data unlike the zoos'.",
              *card.get("notes", []), ""]
    path = out / f"{name}.md"
    atomic_write_text(path, "\n".join(lines))
    return path


#: A per-dataset paper-CNN predictor ships in the wheel when its Kendall τ on its own zoo's held-out rows beats
#: the default (pooled) predictor's on the same zoo by at least this much (pyproject's force-include lists them).
WHEEL_MIN_TAU_GAIN = 0.10


def against_default(root, name: str) -> dict:
    """For ``paper-cnn-<dataset>-W_L-gbm`` under ``root``: its held-out Kendall τ and doomed AUROC at epoch 1
    on its own dataset beside the default (pooled) predictor's, from the two manifests ({} otherwise)."""
    from ..pretrained import PAPER_CNN_PREDICTOR

    root = Path(root)
    ds = next((d for d in PAPER_CNN_DATASETS if name == f"paper-cnn-{d}-W_L-gbm"), None)
    if ds is None or not (root / PAPER_CNN_PREDICTOR / "manifest.json").is_file():
        return {}
    mine = json.loads((root / name / "manifest.json").read_text())["metrics"]
    pooled = json.loads((root / PAPER_CNN_PREDICTOR / "manifest.json").read_text())["metrics"]
    tau = ((mine.get("cross_tau") or {}).get(ds), (pooled.get("cross_tau") or {}).get(ds))
    if None in tau:
        return {}
    auroc = ((mine.get("doomed_auroc") or {}).get("1"), ((pooled.get("doomed_auroc") or {}).get(ds) or {}).get("1"))
    gain = tau[0] - tau[1]
    return {"dataset": ds, "default": PAPER_CNN_PREDICTOR, "tau": tau, "auroc_1": auroc, "tau_gain": gain,
            "in_wheel": bool(gain >= WHEEL_MIN_TAU_GAIN)}


def _data_domain(tables) -> dict:
    """What the tables' networks saw, for :func:`weightwatch.domain.fit`: their class counts and the range
    spanning their inputs."""
    tables = list(tables)
    return {"num_classes": [t.num_classes for t in tables],
            "input_range": (min(t.input_range[0] for t in tables), max(t.input_range[1] for t in tables))}


def split_runs(groups, tr, te) -> dict:
    """The run ids behind a fit and behind its held-out numbers (disjoint)."""
    return {"train_runs": sorted(set(map(str, groups[tr]))), "heldout_runs": sorted(set(map(str, groups[te])))}


def build_pretrained(tables_dir, out, *, seed=0, paper_cnn=PAPER_CNN_TABLES, params=None,
                     early_params=None, only=None) -> dict:
    """Fit every shipped predictor from the feature tables in ``tables_dir`` and write cards into ``out``.

    ``params`` / ``early_params`` override :data:`SHIP_PARAMS` / :data:`EARLY_PARAMS` (GBMPredictor
    settings; the quantile boosters use :data:`INTERVAL_PARAMS`). Every manifest records its ``split``
    (run ids) and its ``domain`` (envelope of the training features); every number in a card is
    computed on runs outside ``split["train_runs"]``. ``only`` (names) rebuilds just those predictors.
    """
    from .. import domain
    from ..pretrained import (AGNOSTIC_PREDICTOR, BATCHNORM_PREDICTOR, DOOM_PREDICTOR, EARLY_PREDICTOR, MLP_PREDICTOR,
                              PAPER_CNN_PREDICTOR)

    def wanted(name):
        return only is None or name in only

    params = {**SHIP_PARAMS, "interval_params": INTERVAL_PARAMS, **(params or {})}
    early_params = {**EARLY_PARAMS, "interval_params": INTERVAL_PARAMS, **(early_params or {})}
    tables_dir, out = Path(tables_dir), Path(out)
    tables = {p.name.removesuffix(".npz"): Table(p) for p in sorted(tables_dir.glob("*.npz"))}
    paper = {n: t for n, t in tables.items() if n in paper_cnn}
    if not paper:
        raise ValueError(f"no paper-CNN tables ({', '.join(paper_cnn)}) in {tables_dir}")
    t0 = time.perf_counter()
    summary = {}
    w_l = lambda t, k=None: t.X  # noqa: E731
    agnostic = lambda t, k=None: t.agnostic()  # noqa: E731

    def save(name, model, feature_set, names, family, zoos, X, groups, tr, te, metrics, extra=None, of=None,
             normalisation=False, parts=None):
        """``of``: the tables behind the model, whose class counts and input ranges bound its domain;
        ``normalisation``: its zoo networks have normalisation layers; ``parts``: the table of each row, when
        the domain spans every table's range fitted apart."""
        target = out / name
        envelope = domain.fit(X[tr], names, normalisation=normalisation, **_data_domain(of or paper.values()),
                              parts=None if parts is None else np.asarray(parts)[tr])
        metrics["in_domain_heldout"] = domain.in_domain_rate(envelope, X[te])
        save_predictor(model, target, name=name, feature_set=feature_set, feature_names=names,
                       architecture_family=family,
                       zoo_summary={"zoos": zoos, "rows_train": int(len(tr)), "rows_test": int(len(te)),
                                    "runs_train": int(len(set(groups[tr]))), "seed": seed},
                       metrics=metrics, overwrite=True,
                       extra={"split": split_runs(groups, tr, te), "domain": envelope, **(extra or {})})
        summary[name] = metrics

    def split_metrics(summ, coverage):
        d = {k: {"mean": v[0], "std": v[1]} for k, v in summ.items()}
        d["interval_coverage"] = coverage
        return d

    # per dataset
    for ds, table in paper.items():
        if ds in PAPER_CNN_VARIANTS or not wanted(f"paper-cnn-{ds}-W_L-gbm"):
            continue
        ok = table.ok()
        y, groups = ok.metrics["test_accuracy"].to_numpy(), ok.metrics["modeldir"].to_numpy()
        model, summ, tr, te, cov = _protocol(ok.X, y, groups, seed, params=params)
        metrics = split_metrics(summ, cov)
        train_runs = set(groups[tr])
        metrics["cross_tau"] = _cross_tau(model, {n: t.ok() for n, t in paper.items()}, w_l, train_runs)
        metrics["doomed_auroc"] = _doomed_auroc(model, table, w_l, train_runs)
        name = f"paper-cnn-{ds}-W_L-gbm"
        save(name, model, "W_L", table.names, "paper-cnn", {ds: table.build}, ok.X, groups, tr, te, metrics,
             of=[table])
        _card(name, f"GBM predicting the test accuracy of a paper CNN trained on `{ds}` from its W_L statistics.", [], out)

    # pooled over datasets
    oks = {ds: t.ok() for ds, t in paper.items()}
    if wanted(PAPER_CNN_PREDICTOR):
        _pooled(paper, oks, params, seed, save, split_metrics, w_l, out)
    if wanted(AGNOSTIC_PREDICTOR):
        _agnostic_predictor(tables, params, seed, save, split_metrics, agnostic, out)
    mlps = {n: t for n, t in tables.items() if t.is_mlp}
    if wanted(MLP_PREDICTOR) and mlps:
        _mlp_predictor(mlps, params, seed, save, split_metrics, agnostic, out)
    normalised = {n: t for n, t in tables.items() if t.has_batchnorm}
    if wanted(BATCHNORM_PREDICTOR) and normalised:
        _batchnorm_predictor(normalised, params, seed, save, split_metrics, agnostic, out)
    # the forecast of the final accuracy, with its doom threshold and verdict card
    trajectory = {n: t for n, t in paper.items() if n in TRAJECTORY_TABLES} or paper
    if wanted(EARLY_PREDICTOR):
        summary.update(build_forecaster(trajectory, out, seed=seed, params=early_params))
    if wanted(DOOM_PREDICTOR):
        summary.update(build_doom_model(trajectory, out, seed=seed))
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _fit_pooled(oks: dict, tables: dict, feature_fn, params, seed, split_metrics, train_groups=None) -> tuple:
    """One GBM on the rows of several tables (the protocol's split by run, or ``train_groups``), with its
    held-out metrics; ``parts`` (the table of each row) fits its domain table by table."""
    X = np.vstack([feature_fn(o) for o in oks.values()])
    parts = np.concatenate([np.full(len(o), name) for name, o in oks.items()])
    y = np.concatenate([o.metrics["test_accuracy"].to_numpy() for o in oks.values()])
    groups = np.concatenate([o.metrics["modeldir"].to_numpy() for o in oks.values()])
    model, summ, tr, te, cov = _protocol(X, y, groups, seed, params=params, train_groups=train_groups)
    metrics = split_metrics(summ, cov)
    train_runs = set(groups[tr])
    metrics["cross_tau"] = _cross_tau(model, oks, feature_fn, train_runs)
    metrics["doomed_auroc"] = {n: _doomed_auroc(model, t, feature_fn, train_runs) for n, t in tables.items()}
    return X, groups, model, tr, te, metrics, parts


def _pooled(paper, oks, params, seed, save, split_metrics, w_l, out):
    from ..pretrained import PAPER_CNN_PREDICTOR

    train_runs = paper_split({ds: np.unique(o.metrics["modeldir"].to_numpy()) for ds, o in oks.items()}, seed)
    X, groups, model, tr, te, metrics, parts = _fit_pooled(oks, paper, w_l, params, seed, split_metrics, train_runs)
    save(PAPER_CNN_PREDICTOR, model, "W_L", next(iter(paper.values())).names, "paper-cnn",
         {ds: t.build for ds, t in paper.items()}, X, groups, tr, te, metrics, parts=parts)
    _card(PAPER_CNN_PREDICTOR, "GBM on W_L pooled over the paper-CNN zoos of all embedded datasets; "
          "`predictor=\"auto\"` uses it for networks of the paper-CNN family.", [], out)


def _agnostic_predictor(tables, params, seed, save, split_metrics, agnostic, out):
    from ..pretrained import AGNOSTIC_PREDICTOR

    oks_all = {n: t.ok() for n, t in tables.items()}
    X, groups, model, tr, te, metrics, parts = _fit_pooled(oks_all, tables, agnostic, params, seed, split_metrics)
    save(AGNOSTIC_PREDICTOR, model, "W_L-agnostic", _feature_names(), "any (trained on: " + ", ".join(tables) + ")",
         {n: t.build for n, t in tables.items()}, X, groups, tr, te, metrics, of=tables.values(), parts=parts)
    _card(AGNOSTIC_PREDICTOR, "GBM on W_L-agnostic features (fixed length for any depth) trained across all "
          "zoo families; `predictor=\"auto\"` uses it outside the paper-CNN family.",
          ["- Cross-family τ above is the honest measure here: treat outputs as rankings."], out)


def _feature_names(feature_set="W_L-agnostic") -> list:
    """The names of a feature set whose length is the same for every depth (W_L-agnostic, W_L-agnostic-bn)."""
    from ..features import get_extractor
    from ..network import LayerWeights, Network

    return get_extractor(feature_set).feature_names(Network((LayerWeights("x", "dense", np.ones((1, 1)),
                                                                          np.ones(1)),)))


def leave_one_out(oks: dict, tables: dict, key, feature_fn, params) -> dict:
    """Per value of ``key(table)`` (a dataset, a family): a GBM fitted on the other tables' rows, scored on
    that value's rows (runs it never saw): R², Kendall τ, doomed AUROC at epochs 1-3."""
    out = {}
    for held in sorted({key(t) for t in tables.values()}):
        rest = [n for n, t in tables.items() if key(t) != held]
        if not rest:
            continue
        model = _gbm(interval=None, **params).fit(np.vstack([feature_fn(oks[n]) for n in rest]),
                                                  np.concatenate([oks[n].metrics["test_accuracy"] for n in rest]))
        mine = [n for n in tables if key(tables[n]) == held]
        X = np.vstack([feature_fn(oks[n]) for n in mine])
        y = np.concatenate([oks[n].metrics["test_accuracy"] for n in mine])
        cell = {k: v for k, v in evaluate(y, model.predict(X)).items() if k in ("r2", "kendall_tau")}
        aurocs = [a for n in mine for a in [_doomed_auroc(model, tables[n], feature_fn, set()).get(1)] if a is not None]
        if aurocs:
            cell["doomed_auroc_epoch_1"] = float(np.mean(aurocs))
        out[held] = cell
    return out


def _family_predictor(name, tables, params, seed, save, split_metrics, features, out, *, what, title, notes,
                      scope, normalisation=False, feature_set="W_L-agnostic"):
    """A GBM on ``feature_set`` (``features(table)``) over every zoo of a group of families (``what``: "MLPs",
    "BatchNorm CNNs"), with leave-one-dataset-out and leave-one-family-out numbers on its card."""
    oks = {n: t.ok() for n, t in tables.items()}
    X, groups, model, tr, te, metrics, parts = _fit_pooled(oks, tables, features, params, seed, split_metrics)
    gbm_params = {**{k: v for k, v in params.items() if k != "interval_params"}, **LEAVE_OUT_PARAMS}
    metrics["leave_one_dataset_out"] = leave_one_out(oks, tables, lambda t: t.dataset, features, gbm_params)
    metrics["leave_one_family_out"] = leave_one_out(oks, tables, lambda t: t.architecture, features, gbm_params)
    families = sorted({t.architecture for t in tables.values()})
    save(name, model, feature_set, _feature_names(feature_set), f"{what} (trained on: " + ", ".join(families) + ")",
         {n: t.build for n, t in tables.items()}, X, groups, tr, te, metrics, of=tables.values(),
         normalisation=normalisation, parts=parts)
    _card(name, title,
          ["- Held-out dataset / family rows: a model fitted without that dataset (or family) at all, scored on "
           "all of its runs; the honest measure for data and widths the zoos do not hold. Those models have "
           f"{LEAVE_OUT_PARAMS['n_estimators']} trees at learning rate {LEAVE_OUT_PARAMS['learning_rate']} (the "
           f"shipped one {params.get('n_estimators')} at {params.get('learning_rate')}).", *notes], out, scope=scope)


def _mlp_predictor(tables, params, seed, save, split_metrics, agnostic, out):
    """The MLP predictor: every MLP zoo (datasets, widths, depths, optimizers, binary sigmoid outputs)."""
    from ..pretrained import MLP_PREDICTOR

    datasets = sorted({t.dataset for t in tables.values()})
    classes = sorted({t.num_classes for t in tables.values()})
    _family_predictor(
        MLP_PREDICTOR, tables, params, seed, save, split_metrics, agnostic, out, what="MLPs",
        title="GBM on W_L-agnostic features of multilayer perceptrons on vector (tabular) data; "
              "`predictor=\"auto\"` uses it for networks made of dense layers only.",
        notes=[f"- Zoo runs: datasets {', '.join(datasets)}; {', '.join(map(str, classes))} classes (2 also as one "
               "sigmoid unit); optimizers sampled among Adam, SGD, SGD with momentum 0.9 and RMSprop (learning rate "
               "log-uniform in [1e-3, 0.5]); the rest of appendix A.2's hyperparameters."],
        scope=["Multilayer perceptrons (dense layers only) on vector data like the zoos': 1-2 hidden layers of "
               "16-32 units, " + ", ".join(map(str, classes)) + " classes, standardised or [0, 1] inputs; "
               "the monitor flags other class counts, optimizers, learning rates and weight statistics out of "
               "domain.",
               "The held-out dataset rows above are what to expect on a dataset the zoos do not hold."])


def _batchnorm_predictor(tables, params, seed, save, split_metrics, agnostic, out):
    """The BatchNorm CNN predictor: every zoo of a family with BatchNormalization (conv -> BN -> activation ->
    max-pool blocks); its domain admits normalisation layers."""
    from ..pretrained import BATCHNORM_PREDICTOR

    datasets = sorted({t.dataset for t in tables.values()})
    families = sorted({t.architecture for t in tables.values()})
    _family_predictor(
        BATCHNORM_PREDICTOR, tables, params, seed, save, split_metrics, lambda t, k=None: t.agnostic_bn(), out,
        what="BatchNorm CNNs", normalisation=True, feature_set="W_L-agnostic-bn",
        title="GBM on W_L-agnostic-bn features of CNNs with BatchNormalization and max-pooling (conv -> BatchNorm "
              "-> activation -> 2x2 max-pool blocks, global average pooling, dense logits); "
              "`predictor=\"auto\"` uses it for networks with normalisation layers.",
        notes=[f"- Zoo runs: families {', '.join(families)}; datasets {', '.join(datasets)}; optimizers sampled "
               "among Adam, SGD, SGD with momentum 0.9 and RMSprop (learning rate log-uniform in [1e-4, 0.3]); the "
               "rest of appendix A.2's hyperparameters. Features: W_L-agnostic of the conv and dense kernels and biases, "
               "and the first and last BatchNormalization layers' gamma, beta, moving mean and moving variance."],
        scope=["CNNs of 2-3 conv blocks (conv 3x3 'same' -> BatchNormalization -> ReLU or tanh -> 2x2 max-pool) "
               "of 16-32 filters on small grayscale images in [-1, 1], global average pooling and 10 logits; the "
               "monitor flags other class counts and weight statistics out of domain.",
               "The held-out dataset and family rows above are what to expect on data or widths the zoos do not "
               "hold."])


def build_forecaster(paper: dict, out, *, seed=0, params=None, budget=FALSE_STOP_BUDGET, patience=PATIENCE) -> dict:
    """Fit the final-accuracy forecaster, choose its doom threshold, write it, its card and the verdict card.

    The threshold on the forecast's upper bound is the largest one whose out-of-fold false-stop rate on the
    healthy runs of the training split stays within ``budget * SAFETY``; the verdict card then measures the
    stopping policy on the held-out runs only.
    """
    from .. import forecast
    from ..pretrained import EARLY_PREDICTOR, PAPER_CNN_PREDICTOR

    params = {**EARLY_PARAMS, "interval_params": INTERVAL_PARAMS, **(params or {})}
    out = Path(out)
    trajs, checks, train_runs = _trajectories(paper, seed)

    def rows(train: bool):
        Xs, ys, gs, ks = [], [], [], []
        for t in trajs.values():
            sel = np.isin(t.run_ids, list(train_runs)) == train
            X, y, g, k = t.forecast_rows(sel, checks)
            Xs.append(X), ys.append(y), gs.append(g), ks.append(k)
        return np.vstack(Xs), np.concatenate(ys), np.concatenate(gs), np.concatenate(ks)

    X_tr, y_tr, g_tr, k_tr = rows(True)
    X_te, y_te, g_te, k_te = rows(False)
    groups = np.concatenate([g_tr, g_te])
    tr, te = np.arange(len(X_tr)), np.arange(len(X_tr), len(groups))

    # out-of-fold forecasts on the training split: where the upper bound and the threshold are chosen
    oof = np.full(len(X_tr), np.nan)
    folds = []
    for f_tr, f_va in group_kfold(g_tr, n_splits=3, seed=seed):
        m = _gbm(interval=None, **params).fit(X_tr[f_tr], y_tr[f_tr])
        oof[f_va] = m.predict(X_tr[f_va])
        folds.append(evaluate(y_te, m.predict(X_te)))
    # one-sided conformal bound: the final accuracy is below forecast + offset for UPPER_COVERAGE of the rows
    upper_offset = float(np.quantile(y_tr - oof, UPPER_COVERAGE))
    threshold = _choose_threshold(oof + upper_offset, y_tr, g_tr, k_tr, budget * SAFETY, patience, checks)
    model = _gbm(**params).fit(X_tr, y_tr)
    f_tr, f_cal = group_kfold(g_tr, n_splits=3, seed=seed)[0]
    cal = _gbm(**params).fit(X_tr[f_tr], y_tr[f_tr])
    model.set_params(interval_offset=cal.calibrate_interval(X_tr[f_cal], y_tr[f_cal]))

    metrics = {k: {"mean": v[0], "std": v[1]} for k, v in summarize_folds(folds).items()}
    metrics["interval_coverage"] = float(model.interval_coverage(X_te, y_te))
    p_te = model.predict(X_te)
    metrics["upper_bound_coverage"] = float(np.mean(y_te <= p_te + upper_offset))
    metrics["per_epoch"] = {f"epoch {k}": {"r2": float(evaluate(y_te[k_te == k], p_te[k_te == k])["r2"]),
                                           "tau": float(kendall_tau(y_te[k_te == k], p_te[k_te == k]))}
                            for k in checks}
    from sklearn.metrics import roc_auc_score

    metrics["doomed_auroc"] = {}
    for ds, t in trajs.items():
        held = ~np.isin(t.run_ids, list(train_runs))
        doomed = runs.doomed(t.final[held])
        if 0 < doomed.sum() < len(doomed):
            metrics["doomed_auroc"][ds] = {int(k): float(roc_auc_score(doomed, -model.predict(t.forecast_features(k, held))))
                                           for k in CARD_EPOCHS if k in checks}
    names = forecast.feature_names(next(iter(paper.values())).names)
    verdict = {"rule": "forecast_doomed", "bound": "forecast + upper_offset", "upper_offset": upper_offset,
               "upper_coverage": UPPER_COVERAGE, "threshold": float(threshold),
               "chance": runs.chance(10), "patience": int(patience), "false_stop_budget": float(budget),
               "chosen_on": "out-of-fold upper bounds on the training split's healthy runs"}
    envelope = _save_trajectory_model(model, EARLY_PREDICTOR, names, paper, out, X_tr, X_te, groups, tr, te,
                                      len(train_runs), seed, checks, metrics,
                                      {"verdict": verdict,
                                       "forecast": {"target": "test accuracy at the end of the run",
                                                    "zoo_epochs": forecast.ZOO_EPOCHS,
                                                    "progress": "epoch / planned epochs (zoo: k / 18)",
                                                    "features": "W_L now, W_L now - W_L at start, log10(1 + steps), "
                                                                "progress"}})
    _card(EARLY_PREDICTOR, "GBM forecasting the test accuracy at the END of a paper-CNN run from W_L now, its "
          "change since initialisation, the optimizer steps so far and the fraction of the run done. "
          "`WeightWatchCallback()` judges doom by its calibrated upper bound.",
          ["- The epoch mapping: a check after epoch e of a run planned for E epochs is the zoo's epoch "
           "18·e/E."], out,
          rows="checkpoints at epochs " + ", ".join(map(str, checks)) + " (before the final epoch) of each complete "
               "finite run, not final checkpoints; the target is the run's final test accuracy")
    envelopes = [envelope]
    current = out / PAPER_CNN_PREDICTOR / "manifest.json"
    if current.is_file():  # the monitor also needs the current-accuracy predictor in domain
        envelopes.append(json.loads(current.read_text())["domain"])
    card = write_verdict_card(trajs, model, train_runs, verdict, out, envelopes, checks)
    return {EARLY_PREDICTOR: metrics, "verdict": card}


def _save_trajectory_model(model, name, names, paper, out, X_tr, X_te, groups, tr, te, runs_train, seed, checks,
                           metrics, extra) -> dict:
    """Save a model fitted on the trajectories' checkpoints (forecaster, doom model) with its split and its
    domain envelope, which it returns; ``metrics`` gains the held-out rows' in-domain rate."""
    from .. import domain

    envelope = domain.fit(X_tr, names, **_data_domain(paper.values()))
    # progress is a fraction of the run by definition: every value in [0, 1] is in domain (the zoo's last
    # check is at 15/18, but a user's run is checked up to its last epoch)
    i = names.index("progress")
    envelope["features"]["lo"][i], envelope["features"]["hi"][i] = 0.0, 1.0
    metrics["in_domain_heldout"] = domain.in_domain_rate(envelope, X_te)
    save_predictor(model, Path(out) / name, name=name, feature_set="W_L", feature_names=names,
                   architecture_family="paper-cnn",
                   zoo_summary={"zoos": {ds: t.build for ds, t in paper.items()}, "rows_train": int(len(tr)),
                                "rows_test": int(len(te)), "runs_train": runs_train, "seed": seed,
                                "checks": list(checks)},
                   metrics=metrics, overwrite=True,
                   extra={"split": split_runs(groups, tr, te), "domain": envelope, **extra})
    return envelope


def paper_split(run_ids: dict, seed: int) -> set:
    """The training runs of the one split every pooled paper-CNN model uses, from each table's run ids.

    The runs of :data:`TRAJECTORY_TABLES` are drawn together (the split the forecaster, the doom model and
    the pooled predictor have shipped with), the runs of each other table on their own: adding a zoo never
    moves an existing run across the split, so held-out numbers stay comparable from build to build.
    """
    together = [ds for ds in run_ids if ds in TRAJECTORY_TABLES]
    train = set()
    for part in [together] + [[ds] for ds in run_ids if ds not in together]:
        if part:
            ids = np.concatenate([np.asarray(run_ids[ds]) for ds in part])
            tr_idx, _ = ev.split_rows(ids, seed=seed)
            train |= set(ids[tr_idx])
    return train


def _trajectories(paper: dict, seed: int) -> tuple:
    """(trajectories, common checks, training runs) of the paper-CNN tables: the forecaster's and the doom
    model's split, :func:`paper_split` (the pooled predictor's too)."""
    from . import trajectories as tj

    trajs = {ds: tj.Trajectories.from_table(t) for ds, t in paper.items()}
    train = paper_split({ds: t.run_ids for ds, t in trajs.items()}, seed)
    return trajs, tj.common_checks(trajs.values()), train


def build_doom_model(paper: dict, out, *, seed=0, params=None) -> dict:
    """Fit the doom model (probability that a run ends near chance, from the forecaster's features and the
    run's setup), on the forecaster's training runs; write it and its card; return its held-out metrics.

    Its doomed-run AUROC at each of :data:`CARD_EPOCHS` is computed on the held-out runs of every zoo.
    """
    from sklearn.metrics import roc_auc_score

    from .. import forecast
    from ..pretrained import DOOM_PREDICTOR

    params = {**DOOM_PARAMS, **(params or {})}
    out = Path(out)
    trajs, checks, train_runs = _trajectories(paper, seed)

    def rows(train: bool):
        Xs, ys, gs = [], [], []
        for t in trajs.values():
            sel = np.isin(t.run_ids, list(train_runs)) == train
            setup = t.setup(sel)  # per run, the same at every check
            for k in checks:
                Xs.append(np.hstack([t.forecast_features(k, sel), setup]))
                ys.append(runs.doomed(t.final[sel])), gs.append(t.run_ids[sel])
        return np.vstack(Xs), np.concatenate(ys).astype(float), np.concatenate(gs)

    X_tr, y_tr, g_tr = rows(True)
    X_te, y_te, g_te = rows(False)
    groups = np.concatenate([g_tr, g_te])
    tr, te = np.arange(len(X_tr)), np.arange(len(X_tr), len(groups))
    model = GBMPredictor(**{**ev.FIXED_PARAMS["gbm"], "objective": "binary", **params}).fit(X_tr, y_tr)
    metrics = {"doomed_auroc": {}, "doomed_auroc_forecast": {}}
    forecaster = None
    from ..pretrained import EARLY_PREDICTOR

    if (out / EARLY_PREDICTOR / "manifest.json").is_file():
        forecaster = load_predictor(out / EARLY_PREDICTOR)
    for ds, t in trajs.items():
        held = ~np.isin(t.run_ids, list(train_runs))
        doomed = runs.doomed(t.final[held])
        if not 0 < doomed.sum() < len(doomed):
            continue
        metrics["doomed_auroc"][ds] = {int(k): float(roc_auc_score(doomed, model.predict(t.doom_features(k, held))))
                                       for k in CARD_EPOCHS if k in checks}
        if forecaster is not None:  # beside it, the forecast's own ranking of the same runs
            metrics["doomed_auroc_forecast"][ds] = {
                int(k): float(roc_auc_score(doomed, -forecaster.predict(t.forecast_features(k, held))))
                for k in CARD_EPOCHS if k in checks}
    p_te = model.predict(X_te)
    metrics["brier_heldout"] = float(np.mean((p_te - y_te) ** 2))
    metrics["doomed_rate_heldout"] = float(y_te.mean())
    names = forecast.doom_feature_names(next(iter(paper.values())).names)
    _save_trajectory_model(model, DOOM_PREDICTOR, names, paper, out, X_tr, X_te, groups, tr, te, len(train_runs),
                           seed, checks, metrics,
                           {"forecast": {"target": "probability that the run ends doomed (final test accuracy < "
                                                   "chance + 0.1)",
                                         "zoo_epochs": forecast.ZOO_EPOCHS,
                                         "progress": "epoch / planned epochs (zoo: k / 18)",
                                         "features": "the forecaster's (W_L now, its change since the start, "
                                                     "log10(1 + steps), progress), then the setup: log10 learning "
                                                     "rate, largest dropout rate, optimizer kind"}})
    _card(DOOM_PREDICTOR, "GBM classifier of the probability that a paper-CNN run ENDS doomed (final test "
          "accuracy < chance + 0.1), from the forecaster's features and the run's setup (learning rate, dropout, "
          "optimizer kind), as the callbacks read them from the framework. Logged as `ww_doom_probability`: "
          "it ranks runs (e.g. which of a sweep's runs to drop); the stop verdict stays the forecast's "
          "bound (`pretrained/VERDICTS.md`).",
          ["- `doomed_auroc`: AUROC of the doom probability on each zoo's held-out runs at zoo epochs "
           + ", ".join(map(str, CARD_EPOCHS)) + "; `doomed_auroc_forecast`: the same runs ranked by the "
           "forecast of the final accuracy (`paper-cnn-early-forecast-gbm`).",
           "- Without a readable setup (an optimizer outside " + ", ".join(forecast.SETUP_OPTIMIZERS)
           + ", a torch loop that does not pass its optimizer) no doom probability is logged.",
           "- It is not a stop reason: stops come from the forecast's bound, whose false-stop rate is measured "
           "(`pretrained/VERDICTS.md`); this probability ranks runs (`benchmarks/doom_auroc.py` prints its "
           "AUROCs beside the forecast's)."], out,
          scope=["Paper CNNs (the 4,970-parameter family) on the zoos' data, trained with Adam, SGD (with or "
                 "without momentum) or RMSprop at learning rates inside the zoos' range, checked at any epoch.",
                 "Outside its training envelope (`ww_in_domain`'s test on its own features) it logs nothing."],
          rows="checkpoints at epochs " + ", ".join(map(str, checks)) + " (before the final epoch) of each complete "
               "finite run, not final checkpoints; the target is whether the run ends doomed")
    return {DOOM_PREDICTOR: metrics}


def _choose_threshold(upper, y_final, groups, epochs, budget, patience, checks) -> float:
    """Largest threshold on the upper bound whose healthy false-stop rate (per run, any check) is <= budget."""
    from .trajectories import threshold_for_budget

    runs_, inv = np.unique(groups, return_inverse=True)
    grid = np.full((len(runs_), len(checks)), np.inf)
    grid[inv, np.searchsorted(np.asarray(checks), epochs)] = upper
    final = np.zeros(len(runs_))
    final[inv] = y_final
    return threshold_for_budget(grid, final, budget, patience)


def write_verdict_card(trajs: dict, model, train_runs, verdict: dict, out, envelopes=(), checks=None) -> dict:
    """Measure the forecast stopping policy on held-out runs; write ``pretrained/VERDICTS.md`` and return it.

    A check stops nothing when its row lies outside one of ``envelopes`` (out of domain), as in the monitor.
    """
    from .. import domain
    from . import trajectories as tj

    out = Path(out)
    checks = tj.common_checks(trajs.values()) if checks is None else checks
    threshold, patience = verdict["threshold"], verdict["patience"]
    rows, by_slice = {}, []
    pooled_stop, pooled_final, pooled_cfg, in_domain_rates = [], [], [], []
    for ds, t in trajs.items():
        held = ~np.isin(t.run_ids, list(train_runs))
        feats = [t.forecast_features(k, held) for k in checks]
        upper = np.column_stack([model.predict(f) for f in feats]) + verdict["upper_offset"]
        inside = np.column_stack([domain.inside(envelopes, f) for f in feats])
        stop = tj.stops((upper < threshold) & inside, patience, checks)
        in_domain_rates.append(inside.mean())
        rows[ds] = tj.rates(stop, t.final[held])
        pooled_stop.append(stop), pooled_final.append(t.final[held])
        pooled_cfg.append(t.config[held].assign(_zoo=ds))
    import pandas as pd

    stop, final = np.concatenate(pooled_stop), np.concatenate(pooled_final)
    cfg = pd.concat(pooled_cfg)
    rows["all held-out runs"] = tj.rates(stop, final)
    lr = cfg["config.learning_rate"].to_numpy()
    deciles = np.quantile(lr, np.linspace(0, 1, 11))
    lr_bin = np.clip(np.searchsorted(deciles, lr, side="right") - 1, 0, 9)
    slices = [("learning-rate decile", lr_bin, lambda b: f"{b + 1} ({deciles[b]:.2g}–{deciles[b + 1]:.2g})"),
              ("training fraction", cfg["config.train_fraction"].to_numpy(), lambda v: f"{v:g}"),
              ("activation", cfg["config.activation"].to_numpy(), str), ("zoo", cfg["_zoo"].to_numpy(), str)]
    for what, values, label in slices:
        for v in sorted(set(values.tolist())):
            sel = values == v
            by_slice.append((what, label(v), tj.rates(stop[sel], final[sel])))

    def pct(x):
        return "–" if x != x else f"{100 * x:.1f}%"

    lines = ["# Verdicts of the default callback, measured on held-out runs", "",
             "Generated by `weightwatch pretrained build` (`weightwatch.experiments.shipping.write_verdict_card`); do not edit.", "",
             f"Policy: `WeightWatchCallback()` with a paper CNN stops a run (`stop_on_doom=True`) when the upper bound "
             f"of `paper-cnn-early-forecast-gbm`'s forecast of the final accuracy (forecast + "
             f"{verdict['upper_offset']:.4f}, a one-sided {verdict['upper_coverage']:.0%} conformal bound) is "
             f"below **{threshold:.4f}** at {patience} consecutive checks (chance 0.1). The threshold was chosen on "
             f"out-of-fold forecasts of the training split's runs for a false-stop budget of "
             f"{100 * verdict['false_stop_budget']:.1f}% (target {100 * verdict['false_stop_budget'] * SAFETY:.2f}% "
             "there); every number below is on runs the forecaster never trained on.", "",
             "Doomed: final accuracy < chance + 0.1; healthy: final accuracy ≥ chance + 0.3. Checks are the zoo's "
             "checkpoints (epochs " + ", ".join(map(str, checks)) + " of 18); 'ever' is any of them. Compute "
             "saved: epochs not trained after a stop, over all epochs of the runs.", "",
             "| held-out runs | runs | doomed | healthy | doomed stopped by epoch 1 / 2 / 3 / ever | healthy stopped "
             "by epoch 1 / 2 / 3 / ever | compute saved |", "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['runs']} | {r['doomed']} | {r['healthy']} | {pct(r['recall@1'])} / "
                     f"{pct(r['recall@2'])} / {pct(r['recall@3'])} / {pct(r['recall'])} | {pct(r['false_stop@1'])} / "
                     f"{pct(r['false_stop@2'])} / {pct(r['false_stop@3'])} / {pct(r['false_stop'])} | "
                     f"{pct(r['compute_saved'])} |")
    lines += ["", "## By hyperparameter slice (all held-out runs)", "",
              "| slice | value | runs | doomed stopped by epoch 3 | doomed stopped ever | healthy stopped ever |",
              "|---|---|---|---|---|---|"]
    for what, label, r in by_slice:
        lines.append(f"| {what} | {label} | {r['runs']} | {pct(r['recall@3'])} ({r['doomed']}) | {pct(r['recall'])} | "
                     f"{pct(r['false_stop'])} ({r['healthy']}) |")
    lines += ["", f"A check stops nothing when the run is outside the forecaster's or the current-accuracy predictor's "
              f"training envelope (out of domain): {100 * (1 - float(np.mean(in_domain_rates))):.2f}% of the held-out "
              "checks above. Runs whose weights became non-finite are not in these tables: the `non_finite` rule "
              "stops them at the first check, whatever the forecast.", ""]
    (out / "VERDICTS.md").write_text("\n".join(lines))
    return {"threshold": threshold, "rates": rows}


def register_cli(sub) -> None:
    p = sub.add_parser("pretrained", help="build the shipped predictors (tables, predictors, model cards)")
    s = p.add_subparsers(dest="pretrained_command", required=True)
    t = s.add_parser("tables", help="compact per-checkpoint W_L + metrics tables from zoos")
    t.add_argument("zoos", nargs="+", help="NAME=ZOO_DIR, one per zoo; the table is OUT/NAME.npz")
    t.add_argument("--out", required=True, help="directory of the tables (zoo_tables/ in the repository)")
    t.set_defaults(func=_cmd_tables)
    b = s.add_parser("build", help="fit shipped predictors from tables and write model cards")
    b.add_argument("--tables", required=True, help="directory of the tables (`pretrained tables --out`)")
    b.add_argument("--out", required=True, help="directory of the predictors (pretrained/ in the repository)")
    b.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the splits and the fits (default: 0)")
    b.add_argument("--only", nargs="+", metavar="NAME",
                   help="rebuild only these predictors (and their cards) (default: all)")
    b.set_defaults(func=_cmd_build)
    ls = s.add_parser("list", help="shipped predictors")
    ls.add_argument("--json", action="store_true", help="print JSON (a list of names)")
    ls.set_defaults(func=_cmd_list)
    vc = s.add_parser("verdicts", help="rewrite VERDICTS.md from the shipped forecaster and the tables (no fitting)")
    vc.add_argument("--tables", required=True, help="directory of the tables (`pretrained tables --out`)")
    vc.add_argument("--out", required=True, help="the pretrained directory holding the forecaster")
    vc.set_defaults(func=_cmd_verdicts)
    tb = s.add_parser("table", help="the README's table of shipped predictors, from their manifests")
    tb.add_argument("--root", default=None, help="predictor directory (default: the shipped one)")
    tb.add_argument("--json", action="store_true", help="print JSON (NaN and infinities as null) instead of Markdown")
    tb.set_defaults(func=_cmd_table)


def _cmd_tables(args) -> int:
    from ..zoo.storage import Zoo

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.zoos:
        name, _, path = spec.rpartition("=")
        if not name:
            raise ValueError(f"give tables as NAME=ZOO_DIR, got {spec!r}")
        print(json_text(write_table(Zoo(path), out / f"{name}.npz"), indent=None))
    return 0


def _cmd_build(args) -> int:
    summary = build_pretrained(args.tables, args.out, seed=args.seed, only=args.only)
    print_json(summary)
    return 0


def verdict_card_from_shipped(tables_dir, out, paper_cnn=TRAJECTORY_TABLES) -> dict:
    """VERDICTS.md again from the saved forecaster (its split, verdict and envelopes) and the tables."""
    from . import trajectories as tj
    from ..predictors import load_predictor
    from ..pretrained import EARLY_PREDICTOR, PAPER_CNN_PREDICTOR

    out = Path(out)
    model = load_predictor(out / EARLY_PREDICTOR)
    m = model.manifest_
    paths = {ds: Path(tables_dir) / f"{ds}.npz" for ds in paper_cnn}
    trajs = {ds: tj.Trajectories.from_table(Table(p)) for ds, p in paths.items() if p.is_file()}
    envelopes = [m["domain"]]
    current = out / PAPER_CNN_PREDICTOR / "manifest.json"
    if current.is_file():
        envelopes.append(json.loads(current.read_text())["domain"])
    return write_verdict_card(trajs, model, set(m["split"]["train_runs"]), m["verdict"], out, envelopes,
                              tuple(m["zoo_summary"]["checks"]))


def _cmd_verdicts(args) -> int:
    card = verdict_card_from_shipped(args.tables, args.out)
    print_json(card["rates"]["all held-out runs"])
    return 0


def _cmd_table(args) -> int:
    from .. import pretrained

    root = args.root or pretrained.root()
    if args.json:
        print_json(predictor_records(root))
    else:
        print(predictor_table(root))
    return 0


def _cmd_list(args) -> int:
    from .. import pretrained

    names = pretrained.list_predictors()
    if args.json:
        print_json(names)
    else:
        print("\n".join(names))
    return 0


def predictor_records(root) -> list:
    """One dict per predictor under ``root``, from its manifest (``weightwatch pretrained table --json``)."""
    from .. import pretrained

    root = Path(root)
    records = []
    for name in sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()):
        m = json.loads((root / name / "manifest.json").read_text())
        met, split = m["metrics"], m.get("split") or {}
        auroc = met.get("doomed_auroc") or {}
        if auroc and all(isinstance(v, dict) for v in auroc.values()):
            auroc_1 = {k: v["1"] for k, v in auroc.items() if "1" in v}
        else:
            auroc_1 = auroc.get("1")
        role = {pretrained.PAPER_CNN_PREDICTOR: "accuracy now, default for the paper CNN",
                pretrained.EARLY_PREDICTOR: "final accuracy, judges doom",
                pretrained.DOOM_PREDICTOR: "probability of ending doomed; ranks runs",
                pretrained.AGNOSTIC_PREDICTOR: "any depth; ranks"}.get(name)
        records.append({"name": name, "role": role, "train_runs": len(split.get("train_runs", [])),
                        "heldout_runs": len(split.get("heldout_runs", [])),
                        # a classifier has neither
                        "r2": met["r2"]["mean"] if "r2" in met else None,
                        "kendall_tau": met["kendall_tau"]["mean"] if "kendall_tau" in met else None,
                        "doomed_auroc_epoch_1": auroc_1})
    return records


def predictor_table(root) -> str:
    """The README's table of shipped predictors, from their manifests (``weightwatch pretrained table``)."""
    lines = ["| predictor | runs (train / held-out) | R² | Kendall τ | doomed AUROC at epoch 1 (held-out runs) |",
             "|---|---|---|---|---|"]
    for r in predictor_records(root):
        auroc = r["doomed_auroc_epoch_1"]
        if isinstance(auroc, dict):
            cell = " / ".join(f"{k} {v:.3f}" for k, v in auroc.items())
        else:
            cell = f"{auroc:.3f}" if auroc is not None else "–"
        role = f" ({r['role']})" if r["role"] else ""
        r2, tau = (f"{r[k]:.3f}" if r[k] is not None else "–" for k in ("r2", "kendall_tau"))
        lines.append(f"| `{r['name']}`{role} | {r['train_runs']} / {r['heldout_runs']} | {r2} | {tau} | {cell} |")
    return "\n".join(lines)
