"""Model cards: the Markdown beside each shipped predictor, written from its manifest alone, and the table of
shipped predictors.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._files import atomic_write_text
from ..zoo.storage import build_records
from .tables import INTERVAL, PAPER_CNN_DATASETS


#: The commands, from a fresh clone, that write the model cards and the verdict card (relative paths only).
BUILD_COMMAND = "weightwatch pretrained build --tables zoo_tables --out pretrained"
VERDICTS_COMMAND = "weightwatch pretrained verdicts --tables zoo_tables --out pretrained"


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


#: Written by ``python benchmarks/against_default.py`` beside the predictors: each per-dataset predictor's Kendall τ
#: and the default's on the same rows (its dataset's runs neither was fitted on).
AGAINST_DEFAULT_FILE = "against-default-measured.json"


def against_default(root, name: str) -> dict:
    """For ``paper-cnn-<dataset>-W_L-gbm`` under ``root``: its Kendall τ on its own dataset beside the default
    (pooled) predictor's on the same held-out rows, as :data:`AGAINST_DEFAULT_FILE` records them ({} without)."""
    path = Path(root) / AGAINST_DEFAULT_FILE
    if not path.is_file():
        return {}
    measured = json.loads(path.read_text())
    row = measured["predictors"].get(name)
    return {} if row is None else {**row, "default": measured["default"], "command": measured["command"]}


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
             f"- built with `{card.get('built_with', BUILD_COMMAND)}` from a fresh clone (the zoo tables in `zoo_tables/` "
             "come from the zoo recipe in `pretrained/README.md`: build commands with their seeds)", "",
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
                  f"Measured by `{against['command']}` on the {against['rows']} rows ({against['runs']} runs) of "
                  f"`{ds}` that neither predictor was fitted on.", "",
                  "| | this predictor | default | difference |", "|---|---|---|---|",
                  f"| Kendall τ | {against['tau']:.4f} | {against['default_tau']:.4f} | {against['tau_gain']:+.4f} |",
                  "", f"It {'beats' if against['tau_gain'] > 0 else 'does not beat'} the default by "
                      f"{against['tau_gain']:+.3f} Kendall τ on `{ds}`."]
    from ..pretrained import WHEEL_PREDICTORS

    if name not in WHEEL_PREDICTORS:
        lines += ["", "Not in the wheel: the wheel ships what the default path uses (`\"auto\"` never picks this "
                  "predictor). It loads from a source checkout (`pretrained/`, or `WEIGHTWATCH_PRETRAINED_DIR`) or "
                  f"by path, and is rebuilt from the committed tables by `weightwatch pretrained build --tables "
                  f"zoo_tables --out pretrained --only {name}`."]
    lines += ["", "## Intended use and limits", "", *(f"- {s}" for s in scope),
              "- It sees only weights: a run can look healthy and still overfit, or be fine on data unlike the zoos'.",
              *card.get("notes", []), ""]
    from .provenance import card_lines  # which runs fit it, chose its settings, measured it

    lines += card_lines(Path(directory).name, Path(directory).parent)
    path = out / f"{name}.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def predictor_table(root) -> str:
    """The README's table of shipped predictors, from their manifests (``weightwatch pretrained table``)."""
    from .. import pretrained

    root = Path(root)
    lines = ["| predictor | runs (train / held-out) | R² | Kendall τ | doomed AUROC at epoch 1 (held-out runs) |",
             "|---|---|---|---|---|"]
    for name in sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()):
        m = json.loads((root / name / "manifest.json").read_text())
        if str(m.get("role", "")).startswith("verdict"):  # the verdict models: their own cards, measured apart
            continue
        met, split = m["metrics"], m.get("split") or {}
        auroc = met.get("doomed_auroc") or {}
        if auroc and all(isinstance(v, dict) for v in auroc.values()):
            cell = " / ".join(f"{k} {v['1']:.3f}" for k, v in auroc.items() if "1" in v)
        else:
            cell = f"{auroc['1']:.3f}" if "1" in auroc else "–"
        role = {pretrained.PAPER_CNN_PREDICTOR: " (accuracy now, default for the paper CNN)",
                pretrained.EARLY_PREDICTOR: " (final accuracy, judges doom)",
                pretrained.DOOM_PREDICTOR: " (probability of ending doomed; ranks runs)",
                pretrained.AGNOSTIC_PREDICTOR: " (any depth; ranks)"}.get(name, "")
        r2, tau = (f"{met[k]['mean']:.3f}" if k in met else "–" for k in ("r2", "kendall_tau"))  # a classifier has none
        lines.append(f"| `{name}`{role} | {len(split.get('train_runs', []))} / {len(split.get('heldout_runs', []))} | "
                     f"{r2} | {tau} | {cell} |")
    return "\n".join(lines)


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
                pretrained.EARLY_PREDICTOR: "final accuracy of the paper CNN (not the default)",
                pretrained.DOOM_PREDICTOR: "probability of ending doomed, paper CNN (not the default)",
                pretrained.VERDICT_DOOM_MODEL: "probability of ending doomed, any network: the stop decision",
                pretrained.VERDICT_FORECASTER_MODEL: "final accuracy and its 90% interval, any network",
                pretrained.AGNOSTIC_PREDICTOR: "any depth; ranks"}.get(name)
        records.append({"name": name, "role": role,
                        "train_runs": len(split["train_runs"]) if "train_runs" in split else
                        (split.get("fit") or {}).get("runs", 0),
                        "heldout_runs": len(split["heldout_runs"]) if "heldout_runs" in split else
                        (split.get("measure") or {}).get("runs", 0),
                        # a classifier has neither
                        "r2": met["r2"]["mean"] if "r2" in met else None,
                        "kendall_tau": met["kendall_tau"]["mean"] if "kendall_tau" in met else None,
                        "doomed_auroc_epoch_1": auroc_1})
    return records


def refresh_cards(root) -> list:
    """Re-render every model card under ``root`` from its manifest (with its Provenance section): run once all
    predictors of a build are written, since a card's provenance reads its siblings' manifests. The verdict
    models' cards are written by ``benchmarks/verdicts_plain.py --cards``."""
    return [render_card(d) for d in sorted(Path(root).iterdir()) if (d / "manifest.json").is_file()
            and not str(json.loads((d / "manifest.json").read_text()).get("role", "")).startswith("verdict")]
