"""Pictures of a run and of a zoo, from data only (``pip install 'weightwatch[plot]'``).

* :func:`plot_history`: per epoch, the accuracy now, the forecast of the final accuracy with its interval
  band, the doom probability and the epoch the run was stopped.
* :func:`plot_verdict`: the verdict card: why the run was stopped (or not), the evidence, the domain.
* :func:`plot_zoo`: predicted against actual accuracy, with R², Kendall τ and MAD.

Each takes plain data (a history as a list of dicts, a pandas DataFrame, or the path of a ``.csv`` /
``.json`` holding one; a table of actual and predicted accuracies), writes a PNG or an SVG by the
extension of ``path``, and returns the :class:`matplotlib.figure.Figure` (its artists carry ``gid``\\ s:
``"forecast-band"``, ``"stop"``, ...). No pyplot state is touched, so they run headless.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

from ._compat import require
from .errors import InvalidArgumentError

__all__ = ["plot_history", "plot_verdict", "plot_zoo", "read_history", "FORMATS"]

#: Output formats, by the extension of ``path``.
FORMATS = (".png", ".svg")

#: Column -> the names it may have (the first found wins): histories written by other versions.
_ALIASES = {
    "epoch": ("epoch",),
    "pred_accuracy": ("pred_accuracy", "ww_pred_accuracy"),
    "pred_lo": ("pred_lo", "pred_low", "pred_accuracy_low"),
    "pred_hi": ("pred_hi", "pred_high", "pred_accuracy_high"),
    "pred_final_accuracy": ("pred_final_accuracy", "ww_pred_final_accuracy", "forecast"),
    "final_lo": ("final_lo", "final_low", "pred_final_accuracy_low", "ww_pred_final_accuracy_low"),
    "final_hi": ("final_hi", "final_high", "pred_final_accuracy_high", "ww_pred_final_accuracy_high"),
    "doom_probability": ("doom_probability", "ww_doom_probability"),
    "in_domain": ("in_domain", "ww_in_domain"),
    "status": ("status", "ww_status"),
    "doomed": ("doomed", "ww_doomed"),
    "reasons": ("reasons",),
    "message": ("message",),
    "domain_reason": ("domain_reason",),
    "findings": ("findings",),
}
_STATUS_COLOURS = {"ok": "#2a9d4b", "warning": "#e0a100", "doomed": "#c8312b"}


# ------------------------------------------------------------------ reading data
def read_history(history) -> list:
    """A history as a list of dicts with the monitor's column names.

    ``history``: a list of dicts (``Monitor.history``), a pandas DataFrame (``callback.history``), a
    mapping holding one under ``"history"`` (a monitor's or a callback's ``state_dict()``), or the path
    of a ``.csv`` or ``.json`` file of any of these. Columns are read by name, and older or newer names
    of a column (``final_low``, ``ww_pred_accuracy``, ...) are accepted; absent ones are ``None``.
    """
    records = _records(history)
    if not records:
        raise InvalidArgumentError("the history is empty: nothing to plot (was the run checked at least once?)")
    out = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InvalidArgumentError(f"history row {i} is a {type(rec).__name__}, not a mapping of columns")
        row = {}
        for col, names in _ALIASES.items():
            row[col] = next((rec[n] for n in names if n in rec and not _missing(rec[n])), None)
        row["epoch"] = _number(row["epoch"], default=i)
        for col in ("pred_accuracy", "pred_lo", "pred_hi", "pred_final_accuracy", "final_lo", "final_hi",
                    "doom_probability"):
            row[col] = _number(row[col])
        row["in_domain"] = _flag(row["in_domain"])
        row["doomed"] = bool(_flag(row["doomed"])) or str(row["status"]).lower() in ("doomed", "2", "2.0")
        row["status"] = _status(row["status"], row["doomed"])
        reasons = row["reasons"]
        row["reasons"] = ([r for r in reasons.split(",") if r] if isinstance(reasons, str)
                          else list(reasons or []))
        out.append(row)
    return sorted(out, key=lambda r: r["epoch"])


def _records(history) -> list:
    if isinstance(history, (str, Path)):
        path = Path(history)
        if not path.is_file():
            raise InvalidArgumentError(f"{path}: no such history file")
        if path.suffix.lower() == ".csv":
            import pandas as pd

            return pd.read_csv(path).to_dict("records")
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(path.read_text())
            except ValueError as exc:
                raise InvalidArgumentError(f"{path}: not valid JSON ({exc})") from None
            return _records(data)
        raise InvalidArgumentError(f"{path}: a history is a .csv or a .json file")
    if hasattr(history, "to_dict") and hasattr(history, "columns"):  # a DataFrame
        return history.to_dict("records")
    if isinstance(history, dict):
        for key in ("history", "monitor"):
            if key in history:
                return _records(history[key])
        return [history]  # one record
    if isinstance(history, (list, tuple)):
        return list(history)
    raise InvalidArgumentError(f"cannot read a history from a {type(history).__name__}: give a list of dicts, "
                               "a DataFrame, or a .csv / .json path")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value, default=None):
    if _missing(value):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _flag(value):
    if _missing(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "1.0", "yes")
    return bool(value)


def _status(value, doomed: bool) -> str:
    if doomed:
        return "doomed"
    text = str(value).lower() if value is not None else "ok"
    return {"0": "ok", "0.0": "ok", "1": "warning", "1.0": "warning", "2": "doomed", "2.0": "doomed"}.get(text, text)


def stop_epoch(rows: list):
    """The first epoch whose verdict is doomed (the callbacks stop there), or None."""
    return next((r["epoch"] for r in rows if r["doomed"]), None)


# ------------------------------------------------------------------ figures
def _figure(*size, layout="constrained"):
    figure = require("matplotlib.figure", "plots")
    return figure.Figure(figsize=size, layout=layout)


def _save(fig, path) -> None:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InvalidArgumentError(f"{path}: plots are written as {' or '.join(FORMATS)} (by the extension)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix.lower()[1:], dpi=110)


def _series(rows, col):
    xs = [r["epoch"] for r in rows if r[col] is not None]
    return xs, [r[col] for r in rows if r[col] is not None]


def _band(rows, lo, hi):
    pts = [(r["epoch"], r[lo], r[hi]) for r in rows if r[lo] is not None and r[hi] is not None]
    return [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]


def plot_history(history, path, *, title: str | None = None):
    """Accuracy now, forecast with its interval band, doom probability and the stop, per epoch.

    Writes ``path`` (``.png`` or ``.svg``) and returns the figure.
    """
    rows = read_history(history)
    fig = _figure(7.5, 5.2)
    acc, doom = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1))
    x, lo, hi = _band(rows, "final_lo", "final_hi")
    if x:
        acc.fill_between(x, lo, hi, color="#4c78a8", alpha=0.22, lw=0, label="forecast interval", gid="forecast-band")
    x, y = _series(rows, "pred_final_accuracy")
    if x:
        acc.plot(x, y, "-o", color="#4c78a8", ms=4, label="forecast of the final accuracy", gid="forecast")
    x, lo, hi = _band(rows, "pred_lo", "pred_hi")
    if x:
        acc.fill_between(x, lo, hi, color="#f58518", alpha=0.15, lw=0, label="interval (now)", gid="accuracy-band")
    x, y = _series(rows, "pred_accuracy")
    if x:
        acc.plot(x, y, "-s", color="#f58518", ms=4, label="accuracy now (from the weights)", gid="accuracy-now")
    outside = [r["epoch"] for r in rows if r["in_domain"] is False]
    for i, e in enumerate(outside):
        acc.axvspan(e - 0.5, e + 0.5, color="0.85", lw=0, zorder=0, gid="out-of-domain",
                    label="out of domain (not calibrated)" if i == 0 else None)
    acc.set_ylim(0, 1)
    acc.set_ylabel("test accuracy")
    x, y = _series(rows, "doom_probability")
    if x:
        doom.plot(x, y, "-o", color="#c8312b", ms=4, label="doom probability", gid="doom-probability")
    for status, colour in _STATUS_COLOURS.items():
        xs = [r["epoch"] for r in rows if r["status"] == status]
        if xs:
            doom.scatter(xs, [-0.08] * len(xs), marker="s", s=28, color=colour, label=f"verdict: {status}",
                         clip_on=False, gid=f"status-{status}")
    doom.set_ylim(-0.15, 1)
    doom.set_ylabel("doom probability")
    doom.set_xlabel("epoch")
    stop = stop_epoch(rows)
    if stop is not None:
        for ax in (acc, doom):
            ax.axvline(stop, color="#c8312b", ls="--", lw=1.2, gid="stop",
                       label=f"stopped after epoch {stop:g}" if ax is acc else None)
    acc.legend(fontsize=7, loc="lower right")
    doom.legend(fontsize=7, loc="upper left")
    if title is None and stop is not None:
        reasons = next(r["reasons"] for r in rows if r["epoch"] == stop)
        title = f"stopped after epoch {stop:g}: {', '.join(reasons) or 'doomed'}"
    elif title is None:
        title = f"not stopped ({rows[-1]['status']} at epoch {rows[-1]['epoch']:g})"
    acc.set_title(title, fontsize=10)
    _save(fig, path)
    return fig


def _fmt(value, digits=3) -> str:
    return "unknown" if value is None else f"{value:.{digits}f}"


def _interval(lo, hi) -> str:
    return "" if lo is None or hi is None else f" (interval {lo:.3f}-{hi:.3f})"


def plot_verdict(record, path, *, title: str | None = None):
    """The verdict card: why the run was stopped (or why not), the evidence, the domain.

    ``record``: one history record (a dict), or a whole history (anything :func:`read_history` reads),
    of which the card shows the stop (the first doomed epoch) or else the last epoch. Writes ``path``
    (``.png`` or ``.svg``) and returns the figure.
    """
    rows = read_history(record)
    stop = stop_epoch(rows)
    row = next(r for r in rows if r["epoch"] == stop) if stop is not None else rows[-1]
    raw = _records(record)
    raw_row = next((r for r in raw if isinstance(r, dict) and _number(r.get("epoch"), None) == row["epoch"]),
                   raw[-1] if raw else {})
    findings = raw_row.get("findings") if isinstance(raw_row.get("findings"), dict) else {}
    colour = _STATUS_COLOURS.get(row["status"], "0.3")
    headline = title or (f"STOPPED after epoch {row['epoch']:g}: the run is doomed" if row["doomed"]
                         else f"{row['status'].upper()} at epoch {row['epoch']:g}: not stopped")
    why = row["message"] or ("no rule fired" if row["status"] == "ok" else ", ".join(row["reasons"]))
    evidence = [f"accuracy now (from the weights): {_fmt(row['pred_accuracy'])}"
                f"{_interval(row['pred_lo'], row['pred_hi'])}",
                f"forecast of the final accuracy: {_fmt(row['pred_final_accuracy'])}"
                f"{_interval(row['final_lo'], row['final_hi'])}",
                f"probability of ending doomed: {_fmt(row['doom_probability'], 2)}",
                f"reasons: {', '.join(row['reasons']) or 'none'}"]
    for rule, f in list(findings.items())[:4]:
        if isinstance(f, dict):
            evidence.append(f"{rule} ({f.get('severity', '')}): {f.get('message', '')}")
    if row["in_domain"] is None:
        domain = "unknown: no predictor judged this network"
    elif row["in_domain"]:
        domain = "inside the predictors' training data: the numbers above are calibrated"
    else:
        domain = ("OUTSIDE the predictors' training data: the numbers above are not calibrated and never stop "
                  f"the run. {row.get('domain_reason') or ''}").strip()

    def wrap(text, width=92):
        return "\n".join(textwrap.wrap(str(text), width)) or "-"

    lines_why = wrap(why)
    lines_ev = "\n".join(wrap(e) for e in evidence)
    lines_dom = wrap(domain)
    n_lines = 3 + lines_why.count("\n") + lines_ev.count("\n") + lines_dom.count("\n") + 9
    fig = _figure(7.5, max(3.2, 0.21 * n_lines + 0.9), layout=None)  # text placed by hand
    fig.patch.set_facecolor("white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.add_patch(_rect((0.0, 0.0), 0.018, 1.0, colour, gid="status-bar"))
    y, step = 0.95, 1.0 / n_lines
    fig.text(0.04, y, headline, fontsize=13, weight="bold", color=colour, va="top", gid="headline")
    y -= 2 * step
    for heading, body, gid in (("Why", lines_why, "why"), ("Evidence", lines_ev, "evidence"),
                               ("Domain", lines_dom, "domain")):
        fig.text(0.04, y, heading, fontsize=10, weight="bold", va="top")
        y -= step
        fig.text(0.06, y, body, fontsize=8.5, va="top", family="monospace", gid=gid)
        y -= step * (body.count("\n") + 2)
    _save(fig, path)
    return fig


def _rect(xy, w, h, colour, gid):
    patches = require("matplotlib.patches", "plots")
    return patches.Rectangle(xy, w, h, facecolor=colour, edgecolor="none", gid=gid)


def _zoo_columns(table) -> tuple:
    """(actual, predicted) arrays from a table, a mapping, or an object with test_true / test_pred."""
    import numpy as np

    if hasattr(table, "test_true") and hasattr(table, "test_pred"):  # a protocol result
        return np.asarray(table.test_true, float), np.asarray(table.test_pred, float)
    if isinstance(table, (str, Path)):
        path = Path(table)
        if not path.is_file():
            raise InvalidArgumentError(f"{path}: no such table")
        import pandas as pd

        table = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_json(path)
    cols = table.columns if hasattr(table, "columns") else table.keys()
    actual = next((c for c in ("actual", "test_accuracy", "true") if c in cols), None)
    pred = next((c for c in ("predicted", "pred_accuracy", "predicted_accuracy", "pred") if c in cols), None)
    if actual is None or pred is None:
        raise InvalidArgumentError("a zoo table needs columns 'actual' and 'predicted'; it has "
                                   f"{', '.join(map(str, cols))}")
    return np.asarray(table[actual], float), np.asarray(table[pred], float)


def plot_zoo(zoo_or_table, path, *, title: str | None = None):
    """Predicted against actual accuracy of a zoo's networks, with R², Kendall τ, MAD and their count.

    ``zoo_or_table``: columns ``actual`` and ``predicted`` (a DataFrame, a mapping of arrays, or a
    ``.csv`` / ``.json`` path), or a protocol result (``test_true`` / ``test_pred``: its held-out runs).
    Writes ``path`` (``.png`` or ``.svg``) and returns the figure.
    """
    import numpy as np

    from .predictors.metrics import evaluate

    actual, pred = _zoo_columns(zoo_or_table)
    ok = np.isfinite(actual) & np.isfinite(pred)
    if ok.sum() < 2:
        raise InvalidArgumentError(f"{int(ok.sum())} networks with a finite actual and predicted accuracy: "
                                   "too few to plot")
    actual, pred = actual[ok], pred[ok]
    m = evaluate(actual, pred)
    fig = _figure(5.2, 5.0)
    ax = fig.subplots()
    ax.scatter(actual, pred, s=7, alpha=0.45, color="#4c78a8", lw=0, gid="points")
    ax.plot([0, 1], [0, 1], "k--", lw=0.7, gid="diagonal")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("actual test accuracy")
    ax.set_ylabel("predicted test accuracy")
    text = (f"R² {m['r2']:.3f}\nKendall τ {m['kendall_tau']:.3f}\nMAD {m['mad']:.3f}\n"
            f"{len(actual)} networks")
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=9, gid="metrics",
            bbox={"facecolor": "white", "edgecolor": "0.7", "alpha": 0.9})
    ax.set_title(title or "predicted vs actual", fontsize=10)
    _save(fig, path)
    return fig
