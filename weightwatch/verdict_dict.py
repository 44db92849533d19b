"""A verdict as a plain dict: the values the Keras callback logs, for any logger (W&B, MLflow, a CSV row).

Framework-free: it reads the attributes of a :class:`weightwatch.monitor.Verdict` and returns floats,
NaN for what is unknown (no predictor, no forecast interval, no doom model), so every logger gets one
number per key every epoch.
"""

from __future__ import annotations

__all__ = ["KEYS", "verdict_to_dict"]

#: The keys, in the order the callbacks log them.
KEYS = ("ww_pred_accuracy", "ww_pred_final_accuracy", "ww_pred_final_accuracy_low", "ww_pred_final_accuracy_high",
        "ww_doom_probability", "ww_in_domain", "ww_doomed", "ww_status")


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def verdict_to_dict(verdict) -> dict:
    """``{"ww_pred_accuracy": ..., "ww_status": ...}`` (:data:`KEYS`) of ``verdict``, floats, NaN for unknown.

    ``ww_in_domain`` and ``ww_doomed`` are 1.0 / 0.0; ``ww_status`` is the verdict's severity as a number
    (0 ok, 1 warning, 2 doomed); the ``_low`` / ``_high`` keys are the forecast's calibrated interval. The
    feature sets logged with ``features=[...]`` follow, as ``ww_feature_<name>`` / ``ww_feature_<name>_<i>``.
    """
    lo, hi = verdict.forecast_interval if verdict.forecast_interval is not None else (None, None)
    return {"ww_pred_accuracy": _number(verdict.predicted_accuracy),
            "ww_pred_final_accuracy": _number(verdict.forecast),
            "ww_pred_final_accuracy_low": _number(lo),
            "ww_pred_final_accuracy_high": _number(hi),
            "ww_doom_probability": _number(verdict.doom_probability),
            "ww_in_domain": _number(verdict.in_domain),
            "ww_doomed": float(verdict.doomed),
            "ww_status": float(int(verdict.status)),
            **{str(k): _number(v) for k, v in (getattr(verdict, "features", None) or {}).items()}}
