"""The monitor's history: one JSON-ready record per checked epoch, and its table.

A record holds the verdict's numbers (``pred_accuracy``, ``pred_lo``/``pred_hi``, ``pred_final_accuracy``,
``final_lo``/``final_hi``, ``doom_probability``, ``in_domain``), the decision (``status``, ``doomed``,
``reasons``, ``message``), every rule's finding and the weight norm (which the rules compare across epochs);
with ``log_stats`` also per-layer statistics, with ``features`` the logged feature sets (``ww_feature_*``
columns). :meth:`weightwatch.monitor.Monitor.state_dict` saves it.
"""

from __future__ import annotations

from typing import Optional

from ._files import jsonable
from .network import Network
from .rules import Severity, total_l2_norm
from .stats import BIAS, KERNEL, STAT

__all__ = ["COLUMNS", "frame", "jsonable_record", "record"]

#: The table's columns (:func:`frame`), before the per-layer statistics.
COLUMNS = ["epoch", "pred_accuracy", "pred_lo", "pred_hi", "pred_final_accuracy", "final_lo", "final_hi",
           "doom_probability", "in_domain", "status", "doomed", "reasons", "message"]


def jsonable_record(obj):
    """History records as plain JSON (severities by name, NaN as None, unknown objects as their repr)."""
    return jsonable(obj, strict=False, nan_to_none=True, enum_as=str)


def _ends(pair, i):
    return None if pair is None else pair[i]


def record(network: Network, epoch: int, now, fc, p_doom, in_domain, domain_reason: str, status: Severity,
           reasons, message: str, findings, steps: Optional[int] = None, log_stats: bool = False,
           features: Optional[dict] = None) -> dict:
    """The record of one check (``now``, ``fc``: the predictor's and forecaster's Predictions or None;
    ``features``: the logged feature sets, ``{"ww_feature_...": value}``)."""
    rec = {
        "epoch": epoch,
        "pred_accuracy": None if now is None else now.accuracy,
        "pred_lo": _ends(None if now is None else now.interval, 0),
        "pred_hi": _ends(None if now is None else now.interval, 1),
        "pred_final_accuracy": None if fc is None else fc.accuracy,
        "final_lo": _ends(None if fc is None else fc.interval, 0),
        "final_hi": _ends(None if fc is None else fc.interval, 1),
        "in_domain": in_domain,
        "domain_reason": domain_reason,
        "doom_probability": p_doom,
        "status": str(status),
        "doomed": status == Severity.DOOMED,
        "reasons": [str(r) for r in reasons],
        "message": message,
        "findings": {f.rule: {"reason": str(f.reason), "severity": str(f.severity), "message": f.message,
                              "details": f.details} for f in findings},
        "l2_norm": total_l2_norm(network),
    }
    if steps is not None:
        rec["steps"] = int(steps)
    if log_stats:
        rec["stats"] = layer_stats(network)
    if features:
        rec["features"] = dict(features)
    return jsonable_record(rec)


def layer_stats(network: Network) -> dict:
    """Per layer: the bias maximum and the kernel variance (``l{i}.bias.max``, ``l{i}.kernel.var``)."""
    from .features import layer_stats as stats_of

    stats = stats_of(network)
    out = {}
    for i, _ in enumerate(network.layers):
        out[f"l{i}.bias.max"] = float(stats[i, BIAS, STAT["p100"]])
        out[f"l{i}.kernel.var"] = float(stats[i, KERNEL, STAT["var"]])
    return out


def frame(history: list):
    """History as a pandas DataFrame (one row per checked epoch)."""
    import pandas as pd

    if not history:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for rec in history:
        row = {k: rec.get(k) for k in COLUMNS}
        row["reasons"] = ",".join(rec.get("reasons", []))
        for k, v in (rec.get("stats") or {}).items():
            row[k] = v
        for k, v in (rec.get("features") or {}).items():
            row[k] = v
        row["l2_norm"] = rec.get("l2_norm")
        rows.append(row)
    return pd.DataFrame(rows)
