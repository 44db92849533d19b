"""Provenance of every shipped predictor: which runs fit it, which chose its settings, which measured it.

Computed from the shipped manifests alone (nothing is refitted): a manifest's ``split`` holds the runs it was
fitted on (``train_runs``) and the runs behind its card's numbers (``heldout_runs``); the runs its settings were
chosen on are resolved from :data:`SETTINGS`, which records, for each tuned constant of
:mod:`~weightwatch.experiments.shipping`, the runs that were looked at when it was chosen (as the comments beside
those constants and the benchmarks say). Where those runs are also reported as held-out (in the card, or as the
user runs of ``benchmarks/user_runs.py`` in the README), the card says so: "not independent". Each list is
published with the sha256 of its sorted run ids, one per line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import WeightWatchError
from ..zoo.storage import build_records

__all__ = ["USER_RUNS", "SETTINGS", "PREDICTOR_SETTINGS", "ProvenanceError", "roles", "list_sha256", "card_lines"]

#: The runs of ``benchmarks/user_runs.py`` (its defaults: 192 runs, seed 1000), outside every zoo; the README
#: reports them as held-out evidence.
USER_RUNS = tuple(f"user-runs/seed1000/run-{i:03d}" for i in range(192))
FORECASTER = "paper-cnn-early-forecast-gbm"
#: Where each tuned constant was chosen: (what, sources). A source is ("user",) for :data:`USER_RUNS`,
#: ("heldout", predictor, zoos or None) for that predictor's held-out runs (of those zoos), ("fit", predictor) for
#: its training runs (out-of-fold).
SETTINGS = {
    "SHIP_PARAMS": ("GBM settings (`SHIP_PARAMS`), compared with the defaults on the held-out R² of the digits "
                    "zoos and by the user runs' results",
                    [("heldout", "paper-cnn-digits-W_L-gbm", None), ("heldout", "paper-cnn-digits_jitter-W_L-gbm", None),
                     ("user",)]),
    "EARLY_PARAMS": ("forecaster settings (`EARLY_PARAMS`), by doomed AUROC at epoch 1 on the forecaster's held-out "
                     "shapes and textures runs",
                     [("heldout", FORECASTER, ("shapes", "textures"))]),
    "TRAJECTORY_TABLES": ("the zoos of the trajectory models (`TRAJECTORY_TABLES`), by the healthy user runs they "
                          "stop and the held-out digits_jitter results",
                          [("user",), ("heldout", FORECASTER, ("digits_jitter",))]),
    "verdict": ("stopping threshold and conformal offset (`verdict`), on out-of-fold forecasts of the fit runs",
                [("fit", FORECASTER, None)]),
    "DOOM_PARAMS": ("doom-model settings (`DOOM_PARAMS`), by doomed AUROC on the forecaster's held-out shapes, "
                    "textures and digits_opt runs, and by the user runs and the held-out digits_jitter results",
                    [("heldout", FORECASTER, ("shapes", "textures", "digits_opt", "digits_jitter")), ("user",)]),
}
#: The tuned constants behind each shipped predictor (every other GBM predictor uses SHIP_PARAMS).
PREDICTOR_SETTINGS = {
    FORECASTER: ("EARLY_PARAMS", "TRAJECTORY_TABLES", "verdict"),
    "paper-cnn-early-doom-gbm": ("DOOM_PARAMS", "TRAJECTORY_TABLES"),
}
DEFAULT_SETTINGS = ("SHIP_PARAMS",)


class ProvenanceError(WeightWatchError):
    """A predictor's run lists overlap (a run both fits and measures it) or cannot be read."""


def list_sha256(run_ids) -> str:
    """sha256 of the sorted run ids, one per line (``\\n``-terminated)."""
    return hashlib.sha256("".join(f"{r}\n" for r in sorted(run_ids)).encode()).hexdigest()


def _manifest(root: Path, name: str) -> dict:
    path = Path(root) / name / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProvenanceError(f"{path}: cannot read the manifest ({exc})") from None


def _zoo_prefixes(manifest: dict, zoos) -> tuple:
    """Run-id prefixes (``dataset/architecture/seedN/``) of the named training zoos of a manifest."""
    out = []
    for name, build in ((manifest.get("zoo_summary") or {}).get("zoos") or {}).items():
        if zoos is None or name in zoos:
            out += [f"{b.get('dataset')}/{b.get('architecture')}/seed{b.get('seed')}/" for b in build_records(build)]
    return tuple(out)


def _source_runs(root: Path, source: tuple) -> set | None:
    """The runs of a source, or None when its predictor is not under ``root`` (a partial build)."""
    if source[0] == "user":
        return set(USER_RUNS)
    kind, name, zoos = source
    if not (Path(root) / name / "manifest.json").is_file():
        return None
    m = _manifest(root, name)
    runs = m["split"]["heldout_runs" if kind == "heldout" else "train_runs"]
    if zoos is None:
        return set(runs)
    prefixes = _zoo_prefixes(m, zoos)
    return {r for r in runs if r.startswith(prefixes)}


def roles(name: str, root) -> dict:
    """The run lists of predictor ``name`` under ``root``: ``fit``, ``choose`` (runs looked at only to choose its
    settings), ``measure``, the choices and, per choice, how many of its runs are also fit or measured runs.

    Raises :class:`ProvenanceError` when the fit and measure lists share a run.
    """
    root = Path(root)
    m = _manifest(root, name)
    fit, measure = set(m["split"]["train_runs"]), set(m["split"]["heldout_runs"])
    if fit & measure:
        raise ProvenanceError(f"{name}: {len(fit & measure)} runs are both fitted on and measured")
    choices, looked = [], set()
    for setting in PREDICTOR_SETTINGS.get(name, DEFAULT_SETTINGS):
        what, sources = SETTINGS[setting]
        found = [_source_runs(root, s) for s in sources]
        runs = set().union(*(f for f in found if f is not None))
        looked |= runs
        choices.append({"setting": setting, "what": what, "runs": len(runs), "in_measure": len(runs & measure),
                        "in_fit": len(runs & fit), "user_runs": len(runs & set(USER_RUNS)),
                        "missing": [s[1] for s, f in zip(sources, found) if f is None]})
    return {"fit": sorted(fit), "choose": sorted(looked - fit - measure), "measure": sorted(measure),
            "measure_also_chosen_on": sorted(looked & measure), "choices": choices}


def card_lines(name: str, root) -> list:
    """The Provenance section of a model card (Markdown lines)."""
    r = roles(name, root)
    lines = ["## Provenance", "",
             "Run lists (sha256 of the sorted run ids, one per line; recomputed from the manifests by "
             "`weightwatch.experiments.provenance`, and checked disjoint by `tests/test_provenance.py`):", "",
             f"- fit it: {len(r['fit'])} runs (`split.train_runs`), sha256 `{list_sha256(r['fit'])}`",
             f"- chose its settings, and nothing else: {len(r['choose'])} runs, sha256 `{list_sha256(r['choose'])}`",
             f"- measured it: {len(r['measure'])} runs (`split.heldout_runs`, every number above), sha256 "
             f"`{list_sha256(r['measure'])}`", "", "Where its settings were chosen:", ""]
    for c in r["choices"]:
        parts = []
        if c["in_fit"]:
            parts.append(f"{c['in_fit']} of its fit runs")
        if c["in_measure"]:
            parts.append(f"{c['in_measure']} of its measured runs")
        if c["user_runs"]:
            parts.append(f"the {c['user_runs']} user runs of `benchmarks/user_runs.py`")
        rest = c["runs"] - c["in_fit"] - c["in_measure"] - c["user_runs"]
        if rest:
            parts.append(f"{rest} held-out runs of other shipped predictors")
        also = []
        if c["in_measure"]:
            also.append("this card's held-out runs")
        if c["user_runs"]:
            also.append("the README's user-run results")
        if rest:
            also.append("other cards' held-out runs")
        verdict = (f", which {'are' if len(also) > 1 or c['user_runs'] else 'is'} also reported as held-out "
                   f"({', '.join(also)}): not independent") if also else " (no held-out run)"
        missing = (f" (the runs of {', '.join(c['missing'])} are not in this build: not resolved)"
                   if c["missing"] else "")
        lines.append(f"- {c['what']}: chosen on {', '.join(parts) or 'no recorded runs'}{verdict}{missing}.")
    if r["measure_also_chosen_on"]:
        lines += ["", f"Not independent: {len(r['measure_also_chosen_on'])} of the {len(r['measure'])} measured "
                      f"runs (sha256 `{list_sha256(r['measure_also_chosen_on'])}`) were also looked at to choose "
                      "settings, so the held-out numbers of this card are not independent of those choices. No "
                      "validation split was kept apart for them."]
    return lines + [""]
