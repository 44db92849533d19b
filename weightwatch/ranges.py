"""What inference knows of the zoos' training recipe, without importing the zoo.

A predictor's manifest records the builds of the zoos it was fitted on (``zoo_summary``); the optimizers
and learning rates of those runs are part of its domain. Builds record only the ranges they changed, so the
zoo's defaults for the two live here, where both the zoo's sampler (:mod:`weightwatch.zoo.hparams`) and
inference (:mod:`weightwatch.inference`) read them.
"""

from __future__ import annotations

from typing import Any, Optional

#: The zoo's default learning-rate and optimizer ranges (:data:`weightwatch.zoo.hparams.DEFAULT_RANGES`).
DEFAULT_LEARNING_RATE: "dict[str, Any]" = {"dist": "log_uniform", "low": 1e-3, "high": 0.5}
DEFAULT_OPTIMIZER: "dict[str, Any]" = {"dist": "constant", "value": "adam"}


def build_records(build: dict) -> list:
    """The build specs behind a zoo's ``build`` record: its own, or a merged zoo's sources' (which share family
    and dataset), never empty."""
    build = build if isinstance(build, dict) else {}
    merged = [b for b in (build.get("merged") or []) if isinstance(b, dict)]
    return merged or [build]


def zoo_optimizers(zoo_summary: Optional[dict]) -> Optional[dict]:
    """``{"names": [...], "learning_rate": [lo, hi]}``: the optimizers and learning-rate range of the zoos in a
    manifest's ``zoo_summary``; None when a build does not record its ranges (nothing to compare with)."""
    builds = []
    for build in ((zoo_summary or {}).get("zoos") or {}).values():
        builds += build_records(build) if isinstance(build, dict) else []
    names, lows, highs = set(), [], []
    for build in builds:
        if not isinstance(build, dict) or "ranges" not in build:
            return None
        ranges = build.get("ranges") or {}
        opt = ranges.get("optimizer", DEFAULT_OPTIMIZER)
        lr = ranges.get("learning_rate", DEFAULT_LEARNING_RATE)
        if not isinstance(opt, dict) or not isinstance(lr, dict):
            return None
        names |= {opt["value"]} if "value" in opt else set(opt.get("values", []))
        low, high = lr.get("low", lr.get("value")), lr.get("high", lr.get("value"))
        lows.append(None if low is None else float(low)), highs.append(None if high is None else float(high))
    if not names or None in lows + highs:
        return None
    return {"names": sorted(str(n).lower() for n in names), "learning_rate": [float(min(lows)), float(max(highs))]}
