"""Provenance of every shipped predictor: which runs fit it, which chose its settings, which measured it.

Computed from the shipped manifests and the settings record alone (nothing is refitted): a manifest's ``split``
holds the runs it was fitted on (``train_runs``) and the runs behind its card's numbers (``heldout_runs``); the
runs its settings were chosen on are the validation runs of :data:`RECORD_FILE`, written by
``python -m weightwatch.experiments.settings_choice`` (:mod:`.settings_choice`), which chose each tuned constant
again on runs that no card measures. A setting missing from the record falls back to :data:`SETTINGS`, where it
was first chosen (held-out and user runs among them: the card then says "not independent"). Each list is
published with the sha256 of its sorted run ids, one per line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import WeightWatchError
from ..zoo.storage import build_records

__all__ = ["USER_RUNS", "SETTINGS", "PREDICTOR_SETTINGS", "RECORD_FILE", "ProvenanceError", "roles", "list_sha256",
           "read_record", "measured_runs", "card_lines"]

#: The runs of ``benchmarks/user_runs.py`` (its defaults: 192 runs, seed 1000), outside every zoo; the README
#: reports them as held-out evidence.
USER_RUNS = tuple(f"user-runs/seed1000/run-{i:03d}" for i in range(192))
FORECASTER = "paper-cnn-early-forecast-gbm"
#: The settings record beside the predictors (written by :mod:`.settings_choice`).
RECORD_FILE = "settings-choices.json"
#: Where each tuned constant was first chosen (before the settings record): (what, sources). A source is
#: ("user",) for :data:`USER_RUNS`, ("heldout", predictor, zoos or None) for that predictor's held-out runs (of
#: those zoos), ("fit", predictor) for its training runs (out-of-fold).
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
    "verdict": ("the stop rule (`verdict`): its threshold and conformal offset fitted on out-of-fold forecasts of "
                "the fit runs; its constants SAFETY and PATIENCE set with no recorded comparison",
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


def read_record(root) -> dict:
    """The settings record under ``root`` ({} when there is none); :class:`ProvenanceError` when unreadable."""
    path = Path(root) / RECORD_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProvenanceError(f"{path}: cannot read the settings record ({exc})") from None


def measured_runs(root) -> set:
    """The runs that any manifest under ``root`` lists as measured (``split.heldout_runs``). The verdict models
    record their runs by count and hash only (calibration-zoo runs, in no zoo table)."""
    out = set()
    for path in sorted(Path(root).glob("*/manifest.json")):
        try:
            runs = (json.loads(path.read_text()).get("split") or {}).get("heldout_runs")
        except (OSError, ValueError) as exc:
            raise ProvenanceError(f"{path}: cannot read the manifest ({exc})") from None
        if isinstance(runs, list):
            out |= set(map(str, runs))
    return out


def roles(name: str, root) -> dict:
    """The run lists of predictor ``name`` under ``root``: ``fit`` (``split.train_runs``), ``choose`` (the runs its
    settings were chosen on), ``measure`` (``split.heldout_runs``), and per setting where it was chosen.

    A setting in the settings record was chosen on its validation runs; one missing from it, on the runs
    :data:`SETTINGS` names (which may be measured runs: then ``measure_also_chosen_on`` lists them). Raises
    :class:`ProvenanceError` when the fit and measure lists share a run, or when a recorded validation run is
    measured by this or any other card, or is a user run.
    """
    root = Path(root)
    m = _manifest(root, name)
    fit, measure = set(m["split"]["train_runs"]), set(m["split"]["heldout_runs"])
    if fit & measure:
        raise ProvenanceError(f"{name}: {len(fit & measure)} runs are both fitted on and measured")
    record = read_record(root)
    recorded = record.get("settings") or {}
    measured_anywhere = measured_runs(root) if recorded else set()
    choices, choose = [], set()
    for setting in PREDICTOR_SETTINGS.get(name, DEFAULT_SETTINGS):
        entry = recorded.get(setting)
        if entry is not None:
            runs = set(entry["validation_runs"])
            if list_sha256(runs) != entry["validation_sha256"]:
                raise ProvenanceError(f"{RECORD_FILE}: the validation runs of {setting} do not match their sha256")
            bad = {"measured by this card": runs & measure, "measured by another card": (runs - measure) &
                   measured_anywhere, "user runs": runs & set(USER_RUNS)}
            bad = {k: v for k, v in bad.items() if v}
            if bad:
                raise ProvenanceError(f"{name}: the validation runs of {setting} include " + ", ".join(
                    f"{len(v)} {k}" for k, v in bad.items()))
            choose |= runs
            choices.append({"setting": setting, "kind": "validation", "what": entry["what"],
                            "criterion": entry["criterion"], "runs": len(runs), "sha256": entry["validation_sha256"],
                            "in_fit": len(runs & fit), "in_measure": 0, "user_runs": 0,
                            "fit_runs": entry["fit_runs"], "candidates": entry["candidates"],
                            "chosen": entry["chosen"], "shipped": entry["shipped"], "changed": entry["changed"],
                            "first": SETTINGS[setting][0] if setting in SETTINGS else None,
                            "first_looked_at_heldout": _looked_words(setting),
                            "missing": []})
            continue
        what, sources = SETTINGS[setting]
        found = [_source_runs(root, s) for s in sources]
        runs = set().union(*(f for f in found if f is not None))
        choose |= runs
        choices.append({"setting": setting, "kind": "looked", "what": what, "runs": len(runs),
                        "in_measure": len(runs & measure), "in_fit": len(runs & fit),
                        "user_runs": len(runs & set(USER_RUNS)),
                        "missing": [s[1] for s, f in zip(sources, found) if f is None]})
    return {"fit": sorted(fit), "choose": sorted(choose), "measure": sorted(measure),
            "measure_also_chosen_on": sorted(choose & measure), "choices": choices,
            "command": record.get("command"), "validation_share": record.get("validation_share")}


def _looked_words(setting: str) -> str:
    """What of the reported evidence a setting was first chosen on, as :data:`SETTINGS` says ("" if none)."""
    kinds = {src[0] for src in SETTINGS.get(setting, ("", []))[1]}
    return " and ".join(w for k, w in (("heldout", "held-out runs"), ("user", "the user runs")) if k in kinds)


def _score(candidate: dict) -> str:
    """A candidate's validation score(s), as the record holds them."""
    return ", ".join(f"{k.replace('_', ' ')} {v:.4f}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
                     for k, v in candidate["score"].items() if k in _HEADLINE)


#: The scores a card quotes per candidate (the record holds more).
_HEADLINE = ("mean_r2", "mean_doomed_auroc_epoch_1", "false_stop", "recall@3")


def _validation_line(c: dict) -> list:
    """A setting chosen on validation runs: what, how it was first chosen, the criterion, every candidate's
    score, the choice, and the runs (Markdown lines)."""
    scores = "; ".join(f"{x['name']}: {_score(x)}" for x in c["candidates"])
    outside = c["runs"] - c["in_fit"]
    where = f"{c['in_fit']} of them among its fit runs"
    if outside:
        where += f", {outside} of zoos it was not fitted on"
    if c["changed"]:
        outcome = (f"{c['chosen']}, NOT the shipped {c['shipped']}: this predictor was not rebuilt with the "
                   f"validation choice, so it still runs with {c['shipped']}, which validation did not pick")
        if c.get("first_looked_at_heldout"):
            outcome += (f", and which was first chosen on {c['first_looked_at_heldout']}: its held-out numbers are "
                        "not independent of that choice")
    else:
        outcome = f"{c['chosen']}, the shipped value: kept"
    lines = [f"- `{c['setting']}`: {c['what']}"]
    if c.get("first"):
        lines.append(f"  - first chosen (`provenance.SETTINGS`): {c['first']}")
    return lines + [f"  - chosen again on validation runs only; criterion: {c['criterion']}",
                    f"  - validation scores: {scores}", f"  - chosen: {outcome}",
                    f"  - on {c['runs']} validation runs (sha256 `{c['sha256']}`; {where}; measured by no card, no "
                    f"user run); the candidates fitted on {c['fit_runs']['runs']} other runs that no card measures "
                    f"(sha256 `{c['fit_runs']['sha256']}`)"]


def card_lines(name: str, root) -> list:
    """The Provenance section of a model card (Markdown lines)."""
    r = roles(name, root)
    validated = [c for c in r["choices"] if c["kind"] == "validation"]
    in_fit = len(set(r["choose"]) & set(r["fit"]))
    chose = f"- chose its settings: {len(r['choose'])} runs, sha256 `{list_sha256(r['choose'])}`"
    if validated and len(validated) == len(r["choices"]):
        chose += (f": validation runs, none measured by this or any other card, none a user run; {in_fit} of them "
                  "are also among its fit runs (carved from them: the candidates were fitted on other runs and "
                  "scored on these, then the shipped model was refit on all its fit runs, these included)")
    lines = ["## Provenance", "",
             "Run lists (sha256 of the sorted run ids, one per line; recomputed from the manifests and "
             f"`pretrained/{RECORD_FILE}` by `weightwatch.experiments.provenance`, and checked by "
             "`tests/test_provenance.py`):", "",
             f"- fit it: {len(r['fit'])} runs (`split.train_runs`), sha256 `{list_sha256(r['fit'])}`", chose,
             f"- measured it: {len(r['measure'])} runs (`split.heldout_runs`, every number above), sha256 "
             f"`{list_sha256(r['measure'])}`", ""]
    if validated:
        lines += [f"Where its settings were chosen (`{r['command']}`: validation runs are "
                  f"{r['validation_share']:.0%} of the runs no card measures, by the sha256 of the run id; each "
                  "setting chosen with the others at their shipped values):", ""]
    else:
        lines += ["Where its settings were chosen:", ""]
    for c in r["choices"]:
        if c["kind"] == "validation":
            lines += _validation_line(c)
            continue
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
