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

from . import __version__
from . import evaluation as ev
from .predictors import GBMPredictor, evaluate, group_kfold, kendall_tau, save_predictor, summarize_folds

PAPER_CNN_LAYERS = 4
CARD_EPOCHS = (1, 2, 3)
INTERVAL = (0.1, 0.9)
PAPER_CNN_DATASETS = ("digits", "digits_jitter", "shapes", "textures")
#: GBM settings of the shipped predictors (on top of ``evaluation.DEFAULT_PARAMS["gbm"]``): more, slower
#: trees on half the features per tree; +0.002-0.004 held-out R^2 over the defaults on the digits zoos.
SHIP_PARAMS = {"n_estimators": 800, "learning_rate": 0.03, "colsample_bytree": 0.5}
#: The early forecast pools ~130k checkpoints of four zoos: it needs more capacity (doomed AUROC at
#: epoch 1 on shapes/textures 0.90 -> 0.93 with these settings, measured with the defaults beside them).
EARLY_PARAMS = {"n_estimators": 600, "learning_rate": 0.05, "num_leaves": 127, "colsample_bytree": 0.5}
#: The quantile boosters stay small: they bound an interval that is widened by conformal calibration anyway.
INTERVAL_PARAMS = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31}


# ------------------------------------------------------------------ tables


def write_table(zoo, path) -> dict:
    """W_L + metrics + config of every row of ``zoo`` into one compressed ``.npz``."""
    X, names = zoo.features("W_L")
    m = zoo.metrics
    cols = {c: m[c].to_numpy() for c in m.columns if c != "_row"}
    arrays = {"W_L": X.astype(np.float32), "W_L_names": np.array(names),
              "n_params": np.array(int(zoo._weights.shape[1]))}
    for c, v in cols.items():
        arrays[f"m:{c}"] = v.astype(str) if v.dtype == object else v
    arrays["manifest"] = np.array(json.dumps(zoo.manifest.get("build", {})))
    np.savez_compressed(path, **arrays)
    return {"path": str(path), "rows": len(m), "runs": zoo.n_runs}


class Table:
    """A feature table read back: ``X`` (W_L), ``metrics`` DataFrame, build manifest."""

    def __init__(self, path):
        import pandas as pd

        self.path = Path(path)
        with np.load(self.path, allow_pickle=False) as z:
            self.X = z["W_L"].astype(np.float64)
            self.names = [str(n) for n in z["W_L_names"]]
            self.n_params = int(z["n_params"])
            self.metrics = pd.DataFrame({k[2:]: z[k] for k in z.files if k.startswith("m:")})
            self.build = json.loads(str(z["manifest"]))
        self.name = self.path.name.removesuffix(".npz")

    def __len__(self):
        return len(self.X)

    @property
    def n_runs(self):
        return int(self.metrics["modeldir"].nunique())

    def agnostic(self) -> np.ndarray:
        """W_L-agnostic features from W_L (same definition as the extractor)."""
        L = self.X.shape[1] // 14
        s = self.X.reshape(len(self.X), L, 14)
        first, last = s[:, 0], s[:, -1]
        if L > 2:
            mid_mean, mid_std = s[:, 1:-1].mean(1), s[:, 1:-1].std(1)
        else:
            mid_mean = mid_std = np.full_like(first, np.nan)
        extra = np.column_stack([np.full(len(s), L), np.full(len(s), np.log10(self.n_params))])
        return np.hstack([first, last, mid_mean, mid_std, extra])

    def rows(self, mask) -> "Table":
        view = object.__new__(Table)
        view.__dict__.update(self.__dict__)
        view.X = self.X[mask]
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


def _protocol(X, y, groups, seed, interval=INTERVAL, params=None):
    """3 fold models scored on the held-out split + a final model on the whole training split."""
    params = dict(params or {})
    tr, te = ev.split_rows(groups, seed=seed)
    folds = []
    for f_tr, _ in group_kfold(groups[tr], n_splits=3, seed=seed):
        folds.append(evaluate(y[te], _gbm(interval=None, **params).fit(X[tr][f_tr], y[tr][f_tr]).predict(X[te])))
    model = _gbm(interval=interval, **params).fit(X[tr], y[tr])
    coverage = None
    if interval:
        # conformal calibration: an interval model fitted on fold 0's training part, scored on its other part
        f_tr, f_cal = group_kfold(groups[tr], n_splits=3, seed=seed)[0]
        cal = _gbm(interval=interval, **params).fit(X[tr][f_tr], y[tr][f_tr])
        model.set_params(interval_offset=cal.calibrate_interval(X[tr][f_cal], y[tr][f_cal]))
        coverage = float(model.interval_coverage(X[te], y[te]))
    return model, summarize_folds(folds), tr, te, coverage


def _doomed_auroc(model, table: Table, feature_fn, seed, epochs=CARD_EPOCHS, num_classes=10, margin=0.1,
                  with_epoch=False) -> dict:
    """AUROC of the model's prediction at epoch k for runs whose FINAL accuracy is below chance + margin."""
    from sklearn.metrics import roc_auc_score

    ok = table.metrics["status"] == "ok"
    final_epoch = table.metrics.loc[ok, "epoch"].max()
    finals = table.metrics[ok & (table.metrics["epoch"] == final_epoch)].set_index("modeldir")["test_accuracy"]
    groups = np.array(sorted(finals.index))
    _, te = ev.split_rows(groups, seed=seed)
    test_runs = set(groups[te])
    out = {}
    for k in epochs:
        mask = (ok & (table.metrics["epoch"] == k) & table.metrics["modeldir"].isin(test_runs)).to_numpy()
        if not mask.any():
            continue
        sub = table.rows(mask)
        X = feature_fn(sub)
        if with_epoch:
            X = np.column_stack([X, np.full(len(X), float(k))])
        y_final = finals.loc[sub.metrics["modeldir"]].to_numpy()
        doomed = y_final < 1.0 / num_classes + margin
        if 0 < doomed.sum() < len(doomed):
            out[int(k)] = float(roc_auc_score(doomed, -model.predict(X)))
    return out


def _cross_tau(model, oks: dict, feature_fn, seed) -> dict:
    """Kendall tau of ``model`` on the held-out rows of each table (no fine-tuning)."""
    out = {}
    for name, o in oks.items():
        _, te = ev.split_rows(o.metrics["modeldir"].to_numpy(), seed=seed)
        out[name] = float(kendall_tau(o.metrics["test_accuracy"].to_numpy()[te], model.predict(feature_fn(o)[te])))
    return out


def _natural(key) -> tuple:
    """Sort key putting "epoch 2" before "epoch 12" and "2" before "12"."""
    head, _, tail = str(key).rpartition(" ")
    return (head, int(tail)) if tail.isdigit() else (str(key), -1)


def _cell(value) -> str:
    """A card cell: a number to 4 places, a dict as ``k: v`` pairs (epochs in order)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: _natural(kv[0]))
        label = "epoch " if all(str(k).isdigit() for k, _ in items) else ""
        return ", ".join(f"{label if i == 0 else ''}{k}: {v:.4f}" for i, (k, v) in enumerate(items))
    return f"{value:.4f}"


def _card(name, title, manifest_extra, out: Path):
    m = json.loads((out / name / "manifest.json").read_text())
    metrics = m["metrics"]
    lines = [f"# {name}", "", title, "",
             f"- feature set: `{m['feature_set']}` ({len(m['feature_names'])} features)",
             f"- architecture family: {m['architecture_family']}",
             f"- training zoo(s): {json.dumps(m['zoo_summary'].get('zoos'))}",
             f"- training rows: {m['zoo_summary'].get('rows_train')} (runs: {m['zoo_summary'].get('runs_train')}); "
             f"held-out rows: {m['zoo_summary'].get('rows_test')} (split by configuration, used once)",
             f"- files: {', '.join(sorted(m['files']))} (LightGBM text + JSON; sha256 in manifest.json)",
             f"- built by weightwatch {__version__} with `weightwatch pretrained build`", "",
             "## Held-out metrics", "", "| metric | value (mean ± std over 3 CV-fold models) |", "|---|---|"]
    for k in ("r2", "mse", "mad", "kendall_tau"):
        if k in metrics:
            lines.append(f"| {k} | {metrics[k]['mean']:.4f} ± {metrics[k]['std']:.4f} |")
    if metrics.get("interval_coverage") is not None:
        lines.append(f"| {INTERVAL[0]:.0%}–{INTERVAL[1]:.0%} interval coverage | {metrics['interval_coverage']:.3f} |")
    for section, key in (("Cross-dataset Kendall τ (held-out rows of each zoo, no fine-tuning)", "cross_tau"),
                         ("Doomed-run AUROC (final accuracy < chance + 0.1) from the weights at epoch k", "doomed_auroc"),
                         ("Per-epoch held-out R² / τ of the final-accuracy forecast", "per_epoch")):
        if metrics.get(key):
            lines += ["", f"## {section}", "", "| | value |", "|---|---|"]
            for k, v in sorted(metrics[key].items(), key=lambda kv: _natural(kv[0])):
                lines.append(f"| {k} | {_cell(v)} |")
    lines += ["", "## Intended use and limits", "",
              "- Tiny CNNs (and MLPs) trained on small grayscale images at 16×16, inputs in [-1, 1]: the zoos it "
              "was trained on. Within that family, predicted accuracy is calibrated to those datasets.",
              "- On other architectures or data it ranks networks (Kendall τ) rather than calibrating accuracy.",
              "- It sees only weights: a run can look healthy and still overfit, or be fine on data unlike the zoos'.",
              *manifest_extra, ""]
    (out / f"{name}.md").write_text("\n".join(lines))


def build_pretrained(tables_dir, out, *, seed=0, paper_cnn=PAPER_CNN_DATASETS, params=None,
                     early_params=None) -> dict:
    """Fit every shipped predictor from the feature tables in ``tables_dir`` and write cards into ``out``.

    ``params`` / ``early_params`` override :data:`SHIP_PARAMS` / :data:`EARLY_PARAMS` (GBMPredictor
    settings; the quantile boosters use :data:`INTERVAL_PARAMS`).
    """
    params = {**SHIP_PARAMS, "interval_params": INTERVAL_PARAMS, **(params or {})}
    early_params = {**EARLY_PARAMS, "interval_params": INTERVAL_PARAMS, **(early_params or {})}
    tables_dir, out = Path(tables_dir), Path(out)
    tables = {p.name.removesuffix(".npz"): Table(p) for p in sorted(tables_dir.glob("*.npz"))}
    paper = {n: t for n, t in tables.items() if n in paper_cnn}
    if not paper:
        raise ValueError(f"no paper-CNN tables ({', '.join(paper_cnn)}) in {tables_dir}")
    t0 = time.perf_counter()
    summary = {}
    w_l = lambda t: t.X  # noqa: E731

    def save(name, model, feature_set, names, family, zoos, rows_train, rows_test, runs_train, metrics):
        target = out / name
        save_predictor(model, target, name=name, feature_set=feature_set, feature_names=names,
                       architecture_family=family,
                       zoo_summary={"zoos": zoos, "rows_train": int(rows_train), "rows_test": int(rows_test),
                                    "runs_train": int(runs_train), "seed": seed},
                       metrics=metrics, overwrite=True)
        summary[name] = metrics

    def split_metrics(summ, coverage):
        d = {k: {"mean": v[0], "std": v[1]} for k, v in summ.items()}
        d["interval_coverage"] = coverage
        return d

    # per dataset
    for ds, table in paper.items():
        ok = table.ok()
        y, groups = ok.metrics["test_accuracy"].to_numpy(), ok.metrics["modeldir"].to_numpy()
        model, summ, tr, te, cov = _protocol(ok.X, y, groups, seed, params=params)
        metrics = split_metrics(summ, cov)
        metrics["cross_tau"] = _cross_tau(model, {n: t.ok() for n, t in paper.items()}, w_l, seed)
        metrics["doomed_auroc"] = _doomed_auroc(model, table, w_l, seed)
        name = f"paper-cnn-{ds}-W_L-gbm"
        save(name, model, "W_L", table.names, "paper-cnn", {ds: table.build}, len(tr), len(te),
             len(set(groups[tr])), metrics)
        _card(name, f"GBM predicting the test accuracy of a paper CNN trained on `{ds}` from its W_L statistics.", [], out)

    # pooled over datasets
    oks = {ds: t.ok() for ds, t in paper.items()}
    X = np.vstack([o.X for o in oks.values()])
    y = np.concatenate([o.metrics["test_accuracy"].to_numpy() for o in oks.values()])
    groups = np.concatenate([o.metrics["modeldir"].to_numpy() for o in oks.values()])
    model, summ, tr, te, cov = _protocol(X, y, groups, seed, params=params)
    metrics = split_metrics(summ, cov)
    metrics["cross_tau"] = _cross_tau(model, oks, w_l, seed)
    metrics["doomed_auroc"] = {ds: _doomed_auroc(model, t, w_l, seed) for ds, t in paper.items()}
    from .pretrained import AGNOSTIC_PREDICTOR, EARLY_PREDICTOR, PAPER_CNN_PREDICTOR

    save(PAPER_CNN_PREDICTOR, model, "W_L", next(iter(paper.values())).names, "paper-cnn",
         {ds: t.build for ds, t in paper.items()}, len(tr), len(te), len(set(groups[tr])), metrics)
    _card(PAPER_CNN_PREDICTOR, "GBM on W_L pooled over the paper-CNN zoos of all embedded datasets; "
          "`predictor=\"auto\"` uses it for networks of the paper-CNN family.", [], out)

    # architecture-agnostic, across families
    oks_all = {n: t.ok() for n, t in tables.items()}
    X = np.vstack([o.agnostic() for o in oks_all.values()])
    y = np.concatenate([o.metrics["test_accuracy"].to_numpy() for o in oks_all.values()])
    groups = np.concatenate([o.metrics["modeldir"].to_numpy() for o in oks_all.values()])
    model, summ, tr, te, cov = _protocol(X, y, groups, seed, params=params)
    metrics = split_metrics(summ, cov)
    metrics["cross_tau"] = _cross_tau(model, oks_all, Table.agnostic, seed)
    metrics["doomed_auroc"] = {n: _doomed_auroc(model, t, Table.agnostic, seed) for n, t in tables.items()}
    from .features import get_extractor
    from .network import LayerWeights, Network

    agn_names = get_extractor("W_L-agnostic").feature_names(
        Network((LayerWeights("x", "dense", np.ones((1, 1)), np.ones(1)),)))
    save(AGNOSTIC_PREDICTOR, model, "W_L-agnostic", agn_names, "any (trained on: " + ", ".join(tables) + ")",
         {n: t.build for n, t in tables.items()}, len(tr), len(te), len(set(groups[tr])), metrics)
    _card(AGNOSTIC_PREDICTOR, "GBM on W_L-agnostic features (fixed length for any depth) trained across all "
          "zoo families; `predictor=\"auto\"` uses it outside the paper-CNN family.",
          ["- Cross-family τ above is the honest measure here: treat outputs as rankings."], out)

    # early forecast: final accuracy from the weights at epoch k (k is a feature)
    Xs, ys, gs, per_ds = [], [], [], {}
    for ds, t in paper.items():
        ok = t.metrics["status"] == "ok"
        final_epoch = t.metrics.loc[ok, "epoch"].max()
        finals = t.metrics[ok & (t.metrics["epoch"] == final_epoch)].set_index("modeldir")["test_accuracy"]
        mask = (ok & (t.metrics["epoch"] < final_epoch) & t.metrics["modeldir"].isin(finals.index)).to_numpy()
        sub = t.rows(mask)
        Xs.append(np.column_stack([sub.X, sub.metrics["epoch"].to_numpy().astype(float)]))
        ys.append(finals.loc[sub.metrics["modeldir"]].to_numpy())
        gs.append(sub.metrics["modeldir"].to_numpy())
    X, y, groups = np.vstack(Xs), np.concatenate(ys), np.concatenate(gs)
    model, summ, tr, te, cov = _protocol(X, y, groups, seed, params=early_params)
    metrics = split_metrics(summ, cov)
    epochs_col = X[:, -1]
    metrics["per_epoch"] = {}
    for k in sorted(set(epochs_col[te].astype(int))):
        sel = te[epochs_col[te] == k]
        p = model.predict(X[sel])
        metrics["per_epoch"][f"epoch {k}"] = {"r2": float(ev.evaluate(y[sel], p)["r2"]), "tau": float(kendall_tau(y[sel], p))}
    metrics["doomed_auroc"] = {ds: _doomed_auroc(model, t, w_l, seed, epochs=(0, 1, 2, 3), with_epoch=True)
                               for ds, t in paper.items()}
    save(EARLY_PREDICTOR, model, "W_L", next(iter(paper.values())).names + ["epoch"], "paper-cnn",
         {ds: t.build for ds, t in paper.items()}, len(tr), len(te), len(set(groups[tr])), metrics)
    _card(EARLY_PREDICTOR, "GBM forecasting the FINAL (epoch-18) test accuracy of a paper CNN from its W_L "
          "statistics at epoch k (k is the last feature). Give its name to a callback "
          f"(`WeightWatchCallback(predictor=\"{EARLY_PREDICTOR}\")`) to judge every epoch by the forecast of the "
          "final accuracy.", ["- The epoch feature counts epochs of the zoo's regime (18 epochs of Adam); for "
                              "runs of another length treat k as a rough stage of training."], out)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def register_cli(sub) -> None:
    p = sub.add_parser("pretrained", help="build the shipped predictors (tables, predictors, model cards)")
    s = p.add_subparsers(dest="pretrained_command", required=True)
    t = s.add_parser("tables", help="compact per-checkpoint W_L + metrics tables from zoos")
    t.add_argument("zoos", nargs="+", help="NAME=ZOO_DIR")
    t.add_argument("--out", required=True)
    t.set_defaults(func=_cmd_tables)
    b = s.add_parser("build", help="fit shipped predictors from tables and write model cards")
    b.add_argument("--tables", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_cmd_build)
    ls = s.add_parser("list", help="shipped predictors")
    ls.set_defaults(func=_cmd_list)


def _cmd_tables(args) -> int:
    from .zoo.storage import Zoo

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.zoos:
        name, _, path = spec.rpartition("=")
        if not name:
            raise ValueError(f"give tables as NAME=ZOO_DIR, got {spec!r}")
        print(json.dumps(write_table(Zoo(path), out / f"{name}.npz")))
    return 0


def _cmd_build(args) -> int:
    summary = build_pretrained(args.tables, args.out, seed=args.seed)
    print(json.dumps(summary, indent=2, default=float))
    return 0


def _cmd_list(args) -> int:
    from . import pretrained

    for name in pretrained.list():
        print(name)
    return 0
