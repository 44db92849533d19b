"""What a trial keeps in the study's storage: one small JSON record per reported epoch.

Every record is a trial user attribute (``trial.set_user_attr``), so any storage Optuna offers (in-memory,
SQLite or another RDB, the journal file) holds it and every worker reads it; nothing lives only in one
process. A record says what the reporter saw at that epoch (the doom model's probability and whether it counts
as doom evidence, non-finite weights, the shipped forecast and the evidence row the verdict models read) and
carries the format version it was written in.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

import numpy as np

from ..errors import WeightWatchError

__all__ = ["FORMAT", "PREFIX", "DECISION", "key", "make", "read", "BadRecords"]

#: Version of the records' layout; a record of another version is ignored (with one warning), never guessed at.
FORMAT = 1
#: Attribute names: ``weightwatch:epoch:<n>`` per reported epoch, ``weightwatch:decision`` for the last decision.
PREFIX = "weightwatch:epoch:"
DECISION = "weightwatch:decision"


class BadRecords(WeightWatchError, ValueError):
    """A trial's weightwatch attributes cannot be read (another format version, or damaged)."""


def key(epoch: int) -> str:
    return f"{PREFIX}{int(epoch)}"


def _num(v) -> Optional[float]:
    """A JSON number (None for NaN / inf / missing), 5 significant digits: small in the storage."""
    if v is None:
        return None
    v = float(v)
    return float(f"{v:.5g}") if math.isfinite(v) else None


def make(epoch: int, *, p_doom=None, doomed: bool = False, non_finite: bool = False, forecast=None,
         in_domain: Optional[bool] = None, row=None, error: str = "") -> dict:
    """The record of one epoch (JSON-ready)."""
    out = {"v": FORMAT, "e": int(epoch), "p": _num(p_doom), "d": bool(doomed), "nf": bool(non_finite)}
    if forecast is not None:
        out["f"] = [_num(x) for x in forecast]
    if in_domain is not None:
        out["in"] = bool(in_domain)
    if row is not None:
        out["r"] = [_num(x) for x in np.asarray(row, np.float64).ravel()]
    if error:
        out["err"] = str(error)[:200]
    return out


def _check(name: str, rec) -> dict:
    if not isinstance(rec, Mapping):
        raise BadRecords(f"{name} is a {type(rec).__name__}, not a weightwatch record")
    if rec.get("v") != FORMAT:
        raise BadRecords(f"{name} is in format {rec.get('v')!r}; this weightwatch reads format {FORMAT}")
    try:
        int(rec["e"])
        bool(rec["d"])
    except (KeyError, TypeError, ValueError):
        raise BadRecords(f"{name} lacks its epoch or doom flag") from None
    f = rec.get("f")
    if f is not None and (not isinstance(f, (list, tuple)) or len(f) != 3):
        raise BadRecords(f"{name}'s forecast is not (point, low, high)")
    return dict(rec)


def read(user_attrs: Mapping) -> dict:
    """``{epoch: record}`` of a trial's user attributes (empty when it has none).

    Raises :class:`BadRecords` naming the first attribute of another format version or damaged.
    """
    out = {}
    for name, rec in user_attrs.items():
        if isinstance(name, str) and name.startswith(PREFIX):
            rec = _check(name, rec)
            out[int(rec["e"])] = rec
    return dict(sorted(out.items()))


def forecast_of(rec: Mapping) -> Optional[tuple]:
    """``(point, low, high)`` of a record, None when absent or not finite."""
    f = rec.get("f")
    if f is None or any(x is None for x in f):
        return None
    return tuple(float(x) for x in f)
