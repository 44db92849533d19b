"""Evidence tables: every check of every run of a zoo, as the verdict models see it.

A row is what a callback knows after epoch ``e`` (``e >= 1``) of a run of
``E`` epochs (:func:`weightwatch.evidence.vector`: the weights now, at the
start and one epoch before, the training loss and accuracy the framework
logs, the optimizer, dropout and progress), with what the run did: its test
accuracy now, its final test accuracy (the end of its configured run),
whether its weights are non-finite at that check (a run that diverged: the
callbacks stop it on that alone), and the run's cell, family, dataset,
optimizer, batch size and input scale for the per-group reports.

Tables are cached as ``.npz`` (``write`` / ``read``); one table per zoo, and
``concat`` joins them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import evidence
from ..features import get_extractor
from ..zoo.storage import Zoo

__all__ = ["from_zoo", "write", "read", "concat", "with_trend", "META"]

#: Per-row metadata columns (strings or numbers) kept beside the evidence matrix.
META = ("run", "cell", "family", "dataset", "optimizer", "batch_size", "input_scale", "w_init", "b_init",
        "learning_rate", "epoch", "epochs", "num_classes", "accuracy_now", "final_accuracy", "non_finite")


def from_zoo(zoo_dir, *, cell: str = "", family: str = "", batch_size: int = 0, input_scale: str = "default",
             progress: bool = False) -> dict:
    """The evidence table of one zoo whose runs are saved after every epoch (a calibration cell)."""
    zoo = Zoo(zoo_dir)
    m = zoo.metrics.reset_index(drop=True)
    extractor = get_extractor(evidence.WEIGHT_FEATURES)
    rows, meta = [], {k: [] for k in META}
    weight_names = None
    for run, idx in m.groupby("modeldir", sort=True).indices.items():
        sub = m.iloc[idx].sort_values("epoch")
        epochs = int(sub["config.epochs"].iloc[0]) if "config.epochs" in sub else int(sub["epoch"].max())
        by_epoch = {int(e): i for e, i in zip(sub["epoch"], sub.index)}
        if 0 not in by_epoch:
            continue
        final = sub[sub["epoch"] == sub["epoch"].max()]["test_accuracy"].iloc[0]
        final = 0.0 if not np.isfinite(final) else float(final)  # a diverged run ends with nothing
        nets = {}

        def net(e):
            if e not in nets:
                nets[e] = zoo.network(by_epoch[e])
            return nets[e]

        start = net(0)
        trend = evidence.LogTrend()
        k = int(start.layers[-1].kernel.shape[-1])
        k = 2 if k == 1 else k
        cfg = sub.iloc[0]
        opt = {"kind": str(cfg["config.optimizer"]), "learning_rate": float(cfg["config.learning_rate"])}
        for e in sorted(by_epoch):
            if e == 0:
                continue
            r = m.iloc[by_epoch[e]]
            now = net(e)
            prev = max(p for p in by_epoch if p < e)
            w = extractor(now)
            if weight_names is None:
                weight_names = extractor.feature_names(now)
            non_finite = not np.isfinite(r["test_accuracy"])
            logs = {"loss": r.get("fit_loss", float("nan")), "accuracy": r.get("fit_accuracy", float("nan"))}
            logs = {key: v for key, v in logs.items() if v is not None and np.isfinite(v)}
            rows.append(evidence.vector(now, w, start=start, previous=net(prev), epochs_since_previous=e - prev,
                                        logs=logs, optimizer=opt, dropout=float(cfg["config.dropout"]), epoch=e,
                                        epochs=epochs, num_classes=k, trend=trend))
            values = dict(run=run, cell=cell, family=family, dataset=str(cfg["config.dataset"]),
                          optimizer=opt["kind"], batch_size=batch_size, input_scale=input_scale,
                          w_init=str(cfg["config.w_init"]), b_init=str(cfg["config.b_init"]),
                          learning_rate=opt["learning_rate"], epoch=e, epochs=epochs, num_classes=k,
                          accuracy_now=float(r["test_accuracy"]) if not non_finite else float("nan"),
                          final_accuracy=final, non_finite=non_finite)
            for key in META:
                meta[key].append(values[key])
            nets.pop(prev - 1, None)  # keep memory flat: only the start, the previous and the current network
    names = evidence.names(weight_names or [])
    big = float(np.finfo(np.float32).max)  # an exploding run's numbers stay the largest float32, not inf
    X = (np.clip(np.asarray(rows, np.float64), -big, big).astype(np.float32).reshape(len(rows), len(names))
         if rows else np.zeros((0, len(names)), np.float32))
    return {"X": X, "names": np.asarray(names), **{k: np.asarray(v) for k, v in meta.items()}}


def write(table: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **table)
    tmp.replace(path)
    return path


def read(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def concat(tables) -> dict:
    tables = [t for t in tables if len(t["X"])]
    names = tables[0]["names"]
    for t in tables[1:]:
        if list(t["names"]) != list(names):
            raise ValueError("evidence tables with different feature names")
    out = {"names": names, "X": np.vstack([t["X"] for t in tables])}
    for k in META:
        out[k] = np.concatenate([np.asarray(t[k]).astype(str) if np.asarray(t[k]).dtype.kind in "US"
                                 else t[k] for t in tables])
    return out


def with_trend(table: dict) -> dict:
    """``table`` with the :data:`~weightwatch.evidence.TREND` columns, derived run by run (in epoch order) with
    :class:`~weightwatch.evidence.LogTrend` from its logged columns, when it was written before they existed;
    a table that has them is returned as it is."""
    names = [str(n) for n in table["names"]]
    if names[-len(evidence.TREND):] == list(evidence.TREND):
        return table
    if any(n in names for n in evidence.TREND):
        raise ValueError("an evidence table with some, not all, trend columns at the end")
    X = np.asarray(table["X"])
    loss, lift = names.index("log.loss_ratio"), names.index("log.accuracy_lift")
    extra = np.full((len(X), len(evidence.TREND)), np.nan)
    order = np.lexsort((table["epoch"], table["run"]))
    trend, last_run = None, None
    for i in order:
        if table["run"][i] != last_run:
            trend, last_run = evidence.LogTrend(), table["run"][i]
        extra[i] = trend.update(float(X[i, loss]), float(X[i, lift]), float(table["epoch"][i]))
    big = float(np.finfo(np.float32).max)
    out = dict(table)
    out["X"] = np.hstack([X, np.clip(extra, -big, big).astype(X.dtype)])
    out["names"] = np.asarray(names + list(evidence.TREND))
    return out


def select(table: dict, mask) -> dict:
    mask = np.asarray(mask)
    return {k: (v if k == "names" else v[mask]) for k, v in table.items()}


def chance(num_classes) -> np.ndarray:
    return 1.0 / np.maximum(np.asarray(num_classes, np.float64), 2)

