"""``weightwatch evaluate``: a report directory (Markdown, HTML, PNG) regenerating the paper's results.

Every number is computed here from the zoos given; the report names the
zoos (path, size, seed) and the code version that produced it.
"""

from __future__ import annotations

import html
import json
import logging
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .._version import __version__
from . import protocol as ev
from ..stats import PER_LAYER
from ..zoo.storage import build_records

log = logging.getLogger(__name__)


@dataclass
class ReportOptions:
    feature_sets: Sequence[str] = ev.PAPER_FEATURE_SETS
    predictors: Sequence[str] = ("gbm", "linear", "dnn")
    n_configs: int = 1
    max_runs: int | None = None  # subsample runs per zoo to bound the cost
    epochs: str = "trained"
    seed: int = 0
    transfer_zoos: dict = field(default_factory=dict)  # other architecture families: name -> Zoo
    weightwatcher_networks: int = 200
    sensitivity_networks: int = 200
    n_jobs: int = 2


def _fmt(mean_std, digits=3):
    m, s = mean_std
    if not np.isfinite(m):
        return "n/a"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def _git_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).parent).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def subsample_runs(zoo, max_runs, seed=0):
    if not max_runs or zoo.n_runs <= max_runs:
        return zoo
    runs = np.array(sorted(zoo.metrics["modeldir"].unique()))
    keep = set(np.random.default_rng(seed).choice(runs, max_runs, replace=False))
    return zoo.select(zoo.metrics["modeldir"].isin(keep).to_numpy())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_histograms(zoos: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(2, len(zoos), figsize=(4 * len(zoos), 7), squeeze=False)
    for j, (name, zoo) in enumerate(zoos.items()):
        last = zoo.filter(status="ok", last=True).metrics
        axes[0, j].hist(last["test_accuracy"], bins=40, range=(0, 1), color="tab:blue")
        axes[0, j].set_title(f"{name}: final test accuracy")
        axes[1, j].scatter(last["train_accuracy"], last["test_accuracy"], s=3, alpha=0.4)
        axes[1, j].plot([0, 1], [0, 1], "k--", lw=0.5)
        axes[1, j].set_xlabel("train accuracy")
        axes[1, j].set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def bias_summary(zoo) -> dict:
    """First/last layer bias range and max per final finite run (paper Figure 3)."""
    last = zoo.filter(status="ok", last=True)
    X, names = last.features("W_L")
    n_layers = X.shape[1] // PER_LAYER

    def col(layer, stat):
        return X[:, names.index(f"l{layer}.bias.{stat}")]

    return {
        "first_range": col(0, "p100") - col(0, "p0"), "last_range": col(n_layers - 1, "p100") - col(n_layers - 1, "p0"),
        "first_max": col(0, "p100"), "last_max": col(n_layers - 1, "p100"),
        "accuracy": last.metrics["test_accuracy"].to_numpy(),
        "relu": (last.metrics["config.activation"] == "relu").to_numpy(),
    }


def figure_bias(zoo, path: Path) -> dict:
    plt = _plt()
    b = bias_summary(zoo)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (x, y, title) in zip(axes, [("first_range", "last_range", "bias range (max - min)"),
                                         ("first_max", "last_max", "bias maximum")]):
        sc = ax.scatter(b[x], b[y], c=b["accuracy"], s=4, cmap="viridis", vmin=0, vmax=1)
        ax.set_xlabel(f"first layer {title}")
        ax.set_ylabel(f"last layer {title}")
        if "max" in x:
            ax.axvline(0, color="r", lw=0.5)
    fig.colorbar(sc, ax=axes, label="test accuracy")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    neg = b["first_max"] < 0
    return {"runs": int(len(neg)), "first_bias_max_negative": int(neg.sum()),
            "of_which_relu": int((neg & b["relu"]).sum()),
            "mean_accuracy_first_max_negative": float(b["accuracy"][neg].mean()) if neg.any() else float("nan"),
            "mean_accuracy_other": float(b["accuracy"][~neg].mean()) if (~neg).any() else float("nan")}


def figure_importances(model, names, path: Path, top=20) -> list:
    plt = _plt()
    imp = model.booster_.feature_importance(importance_type="gain")
    order = np.argsort(imp)[::-1][:top]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh([names[i] for i in order][::-1], imp[order][::-1])
    ax.set_xlabel("total gain")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [(names[i], float(imp[i])) for i in order]


def figure_scatter(true, pred, title, path: Path) -> None:
    """Predicted vs actual with R², Kendall τ and MAD (:func:`weightwatch.plot.plot_zoo`)."""
    from ..plot import plot_zoo

    plot_zoo({"actual": np.asarray(true), "predicted": np.asarray(pred)}, path, title=title)


def _weightwatcher_section(zoo, opts, out: Path) -> tuple:
    """Kendall tau of WeightWatcher metrics (raw and as GBM features) vs ours, same held-out networks."""
    from ..features import get_extractor
    from ..plugins import UnknownNameError
    from ..predictors import kendall_tau

    try:
        ww = get_extractor("weightwatcher")
    except UnknownNameError:
        return "WeightWatcher plugin not installed (`pip install ./plugins/weightwatch-weightwatcher`): section skipped.", {}
    last = zoo.filter(status="ok", last=True)
    groups = last.groups()
    tr, te = ev.split_rows(groups, seed=opts.seed)
    rng = np.random.default_rng(opts.seed)
    n = opts.weightwatcher_networks
    te = np.sort(rng.choice(te, min(n, len(te)), replace=False))
    tr = np.sort(rng.choice(tr, min(4 * n, len(tr)), replace=False))
    y = last.metrics["test_accuracy"].to_numpy()
    nets_te = [last.network(i) for i in te]
    nets_tr = [last.network(i) for i in tr]
    names = ww.feature_names(nets_te[0])
    W_te = np.vstack([ww(nt) for nt in nets_te])
    W_tr = np.vstack([ww(nt) for nt in nets_tr])
    rows, result = [], {}
    for j, name in enumerate(names):
        col = W_te[:, j]
        ok = np.isfinite(col)
        if ok.sum() < 10:
            continue
        tau = float(kendall_tau(y[te][ok], col[ok]))
        result[f"raw:{name}"] = tau
        rows.append((f"{name} (raw)", f"{tau:+.3f}", int(ok.sum())))
    from ..predictors import GBMPredictor

    params = {**ev.DEFAULT_PARAMS["gbm"], **ev.FIXED_PARAMS["gbm"], "min_child_samples": 10}
    gbm_ww = GBMPredictor(**params).fit(W_tr, y[tr])
    tau_ww = float(kendall_tau(y[te], gbm_ww.predict(W_te)))
    XL, _ = last.features("W_L")
    gbm_ours = GBMPredictor(**params).fit(XL[tr], y[tr])
    tau_ours = float(kendall_tau(y[te], gbm_ours.predict(XL[te])))
    rows += [("GBM on WeightWatcher metrics", f"{tau_ww:+.3f}", len(te)), ("GBM on W_L (ours)", f"{tau_ours:+.3f}", len(te))]
    result.update(gbm_weightwatcher=tau_ww, gbm_w_l=tau_ours)
    text = (f"Held-out final-epoch networks: {len(te)}; GBMs trained on {len(tr)} training-split networks.\n\n"
            + md_table(["predictor / metric", "Kendall τ vs test accuracy", "networks"], rows))
    return text, result


def build_report(zoos: dict, out, opts: ReportOptions | None = None, progress=None) -> dict:
    """Compute every section on ``zoos`` (name -> Zoo) and write ``out``/report.md, report.html, *.png, results.json.

    ``progress(step, done, total)``, when given, is called as each step ends.
    """
    opts = opts or ReportOptions()
    total = (len(zoos) * len(opts.predictors) * len(opts.feature_sets) + 1 + (len(zoos) if len(zoos) > 1 else 0)
             + (1 if opts.transfer_zoos else 0) + 2 + len(zoos) + 1)  # tables, figures, 3, 4, 9 and 3, early, WW
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(what, done, total)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    zoos = {name: subsample_runs(z, opts.max_runs, opts.seed) for name, z in zoos.items()}
    results: dict = {"version": __version__, "git": _git_version(), "zoos": {}, "options": {
        k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in vars(opts).items() if k != "transfer_zoos"}}
    md = ["# weightwatch report", "",
          f"weightwatch {__version__} (git {results['git']}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.platform()}, python {platform.python_version()}.", "", "## Zoos", ""]
    zoo_rows = []
    for name, z in zoos.items():
        build = z.manifest.get("build", {})
        parts = build_records(build)  # a merged zoo lists its sources' specs

        def joined(key, parts=parts):
            vals = sorted({str(p.get(key)) for p in parts if p.get(key) is not None})
            return ", ".join(vals) if vals else None

        info = {"path": str(z.path), "runs": z.n_runs, "rows": len(z), "seed": joined("seed"),
                "architecture": joined("architecture"), "epochs": joined("epochs")}
        results["zoos"][name] = info
        zoo_rows.append((name, info["path"], info["runs"], info["rows"], info["seed"], info["architecture"]))
    md += [md_table(["zoo", "path", "runs used", "rows", "seed", "architecture"], zoo_rows), "",
           f"Rows: checkpoints of finite runs ({opts.epochs}); split by configuration, "
           f"held-out test split used once; ± is the std over the 3 CV-fold models.", ""]

    # Figure 2
    figure_histograms(zoos, out / "fig2_histograms.png")
    md += ["## Figure 2: accuracy histograms", "", "![histograms](fig2_histograms.png)", ""]

    # Tables 1/2/5/6
    md += ["## Tables 1/2/5/6: R² and MSE per feature set and predictor", ""]
    results["tables"] = {}
    best_models = {}
    for name, z in zoos.items():
        header = ["predictor"] + list(opts.feature_sets)
        r2_rows, mse_rows, tau_rows = [], [], []
        for pred in opts.predictors:
            r2_row, mse_row, tau_row = [pred], [pred], [pred]
            for fs in opts.feature_sets:
                try:
                    res = ev.protocol_on_zoo(z, fs, pred, epochs=opts.epochs, n_configs=opts.n_configs,
                                             seed=opts.seed, n_jobs=opts.n_jobs)
                except Exception as exc:  # a feature set may not apply (e.g. W^4 of a 3-layer MLP)
                    log.warning("report: %s/%s/%s failed: %s", name, pred, fs, exc)
                    r2_row.append("n/a"), mse_row.append("n/a"), tau_row.append("n/a")
                    step(f"{name}: {pred} on {fs}")
                    continue
                results["tables"].setdefault(name, {}).setdefault(pred, {})[fs] = {
                    k: list(v) for k, v in res.summary.items()} | {"n_train": res.n_train, "n_test": res.n_test}
                r2_row.append(_fmt(res.summary["r2"]))
                mse_row.append(_fmt(res.summary["mse"], 4))
                tau_row.append(_fmt(res.summary["kendall_tau"]))
                if pred == "gbm" and fs == "W_L":
                    best_models[name] = res
                step(f"{name}: {pred} on {fs}")
            r2_rows.append(r2_row), mse_rows.append(mse_row), tau_rows.append(tau_row)
        md += [f"### {name}: R²", "", md_table(header, r2_rows), "", f"### {name}: MSE", "",
               md_table(header, mse_rows), "", f"### {name}: Kendall τ", "", md_table(header, tau_rows), ""]

    # Figure 5 and scatter of GBM W_L
    for name, res in best_models.items():
        top = figure_importances(res.model, res.feature_names, out / f"fig5_importances_{name}.png")
        figure_scatter(res.test_true, res.test_pred, f"{name}: GBM on W_L, held-out", out / f"scatter_{name}.png")
        md += [f"## Figure 5: GBM importances ({name}, W_L)", "", f"![importances](fig5_importances_{name}.png)",
               f"![scatter](scatter_{name}.png)", "", "Top features: " + ", ".join(n for n, _ in top[:8]), ""]
    step("figures")

    # Table 3: cross-dataset
    if len(zoos) > 1:
        names = list(zoos)
        matrix = {}
        for src in names:
            t = ev.transfer_tau(zoos[src], zoos, "W_L", epochs=opts.epochs, seed=opts.seed)
            matrix[src] = t["tau"]
            step(f"Table 3: trained on {src}")
        results["cross_dataset_tau"] = matrix
        md += ["## Table 3: cross-dataset Kendall τ (rows: trained on, columns: ranked)", "",
               md_table(["trained on \\ ranked"] + names, [[s] + [f"{matrix[s][t]:.3f}" for t in names] for s in names]), ""]

    # Table 4: architecture transfer
    if opts.transfer_zoos:
        src_name = next(iter(zoos))
        rows, res4 = [], {}
        for fs in ("W_L-agnostic", "W_L^4"):
            try:
                t = ev.transfer_tau(zoos[src_name], opts.transfer_zoos, fs, epochs=opts.epochs, seed=opts.seed)
            except Exception as exc:
                log.warning("report: transfer with %s failed: %s", fs, exc)
                continue
            res4[fs] = t["tau"]
            rows.append([fs] + [f"{t['tau'][k]:.3f}" for k in opts.transfer_zoos])
        results["architecture_transfer_tau"] = res4
        step("Table 4")
        md += [f"## Table 4: trained on {src_name} (paper CNN), ranking other families", "",
               md_table(["features"] + list(opts.transfer_zoos), rows), ""]

    # Table 9: sensitivity
    first = next(iter(zoos))
    z = zoos[first]
    last = ev.zoo_rows(z, opts.epochs)
    tr, te = ev.split_rows(last.groups(), seed=opts.seed)
    rng = np.random.default_rng(opts.seed)
    te_s = np.sort(rng.choice(te, min(opts.sensitivity_networks, len(te)), replace=False))
    nets = [last.network(i) for i in te_s]
    mods = ["scale:0.001", "scale:0.1", "scale:2", "scale:10", "scale:100", "perm:global"] + \
        [f"perm:layer{i + 1}" for i in range(len(nets[0]))]
    sens = {}
    for fs in ("W", "W_L"):
        X, _ = ev.feature_matrix(last.select(np.isin(np.arange(len(last)), tr)), fs)
        y = last.metrics["test_accuracy"].to_numpy()[tr]
        params = {**ev.DEFAULT_PARAMS["gbm"], **ev.FIXED_PARAMS["gbm"]}
        if fs == "W":
            params["colsample_bytree"] = 0.05
        model = ev.PREDICTORS["gbm"](**params).fit(X, y)
        sens[fs] = ev.sensitivity(model, nets, fs, mods, seed=opts.seed)
        step(f"Table 9: {fs}")
    results["sensitivity_mad"] = sens
    md += [f"## Table 9: sensitivity (MAD of GBM predictions, {len(nets)} held-out {first} networks)", "",
           md_table(["modification", "GBM on W", "GBM on W_L"], [[m, f"{sens['W'][m]:.4f}", f"{sens['W_L'][m]:.4f}"] for m in mods]),
           "", "W_L is invariant to permutations within a layer by construction (its MAD there is 0 up to float "
           "rounding); scaling changes it.", ""]

    # Figure 3
    fig3 = figure_bias(z, out / "fig3_bias.png")
    results["figure3"] = fig3
    md += [f"## Figure 3: first vs last layer bias ({first})", "", "![bias](fig3_bias.png)", "",
           f"{fig3['first_bias_max_negative']} of {fig3['runs']} final networks have a negative first-layer bias "
           f"maximum ({fig3['of_which_relu']} of them ReLU); their mean test accuracy is "
           f"{fig3['mean_accuracy_first_max_negative']:.3f} vs {fig3['mean_accuracy_other']:.3f} for the others.", ""]

    # Early forecasting
    md += ["## Early forecasting: final accuracy from the weights at epoch k", ""]
    results["early_forecast"] = {}
    for name, zz in zoos.items():
        rows_k = ev.early_forecast(zz, seed=opts.seed)
        results["early_forecast"][name] = rows_k
        step(f"early forecast: {name}")
        md += [f"### {name}", "", md_table(
            ["k", "R²", "τ", "doomed AUROC", "doomed caught", "healthy stopped", "compute saved"],
            [[r["epoch"], f"{r['r2']:.3f}", f"{r['tau']:.3f}", f"{r['auroc']:.3f}", f"{r['doomed_recall']:.2f}",
              f"{r['healthy_false_stop']:.3f}", f"{r['compute_saved']:.2f}"] for r in rows_k]),
            "", "Doomed: final accuracy below chance + 0.1. Stop threshold chosen on the training split "
            "(out-of-fold) so that ≤ 1% of healthy training runs stop; rates shown on held-out runs.", ""]

    # WeightWatcher
    text, ww = _weightwatcher_section(z, opts, out)
    results["weightwatcher"] = ww
    step("WeightWatcher")
    md += [f"## Side by side with WeightWatcher ({first})", "", text, ""]

    results["seconds"] = time.perf_counter() - t0
    md += [f"_Computed in {results['seconds']:.0f} s._", ""]
    text = "\n".join(md)
    (out / "report.md").write_text(text)
    (out / "report.html").write_text(markdown_to_html(text))
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    return results


def markdown_to_html(text: str) -> str:
    """Minimal Markdown -> HTML for our own report (headings, tables, images, paragraphs)."""
    import re

    out, table = ["<!doctype html><meta charset='utf-8'><title>weightwatch report</title>",
                  "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{border:1px solid #ccc;"
                  "padding:2px 6px;font-size:13px}table{border-collapse:collapse}</style>"], []

    def flush():
        if table:
            out.append("<table>")
            for i, row in enumerate(table):
                if i == 1:
                    continue
                cells = [html.escape(c.strip()) for c in row.strip().strip("|").split("|")]
                tag = "th" if i == 0 else "td"
                out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            out.append("</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        m = re.match(r"^(#+) (.*)", line)
        img = re.match(r"^!\[(.*)\]\((.*)\)$", line)
        if m:
            n = len(m.group(1))
            out.append(f"<h{n}>{html.escape(m.group(2))}</h{n}>")
        elif img:
            out.append(f"<img alt='{html.escape(img.group(1))}' src='{html.escape(img.group(2))}'>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)
