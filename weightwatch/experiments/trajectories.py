"""Runs of a zoo table as trajectories: the forecaster's rows and simulated verdicts.

A feature table (:class:`weightwatch.experiments.shipping.Table`) holds one row per
checkpoint. Here the rows of each run are put side by side (runs x
checkpoints), which is what the forecaster trains on (features of the
weights now and at initialisation) and what a stopping policy is simulated
on: at every checked epoch, would the callback have stopped this run?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import forecast, policy, runs

#: Zoo checkpoints at which the forecaster is fitted and a verdict simulated (epoch 0 is the start,
#: the final epoch is what is forecast).
CHECKS = (1, 2, 3, 6, 9, 12, 15)


@dataclass
class Trajectories:
    """One zoo's complete runs: ``X[run, checkpoint]`` = W_L, with metrics alongside."""

    name: str
    run_ids: np.ndarray  # (runs,)
    epochs: np.ndarray  # (checkpoints,) zoo epochs, starting at 0
    X: np.ndarray  # (runs, checkpoints, features) W_L
    steps: np.ndarray  # (runs, checkpoints) optimizer steps
    test_accuracy: np.ndarray  # (runs, checkpoints)
    train_accuracy: np.ndarray  # (runs, checkpoints)
    config: object  # DataFrame, one row per run
    names: list
    n_failed: int  # runs with a non-finite checkpoint (caught by the non_finite rule, not by a forecast)

    @classmethod
    def from_table(cls, table) -> "Trajectories":
        m = table.metrics.assign(_i=np.arange(len(table.metrics)))
        epochs = np.array(sorted(m["epoch"].unique()))
        ok = m["status"] == "ok"
        counts = m[ok].groupby("modeldir").size()
        complete = counts[counts == len(epochs)].index
        failed = int(m["modeldir"].nunique() - len(complete))
        d = m[ok & m["modeldir"].isin(complete)].sort_values(["modeldir", "epoch"])
        ids = d["modeldir"].unique()
        idx = d["_i"].to_numpy().reshape(len(ids), len(epochs))

        def grid(col):
            return d[col].to_numpy().reshape(len(ids), len(epochs))

        config = d[d["epoch"] == epochs[0]].set_index("modeldir").loc[ids]
        return cls(table.name, np.asarray(ids), epochs, table.X[idx], grid("step").astype(float),
                   grid("test_accuracy"), grid("train_accuracy"), config, list(table.names), failed)

    @property
    def checks(self) -> tuple:
        """The :data:`CHECKS` this zoo has a checkpoint for, before its final epoch."""
        return tuple(k for k in CHECKS if k in set(self.epochs.tolist()) and k < self.epochs[-1])

    @property
    def final(self) -> np.ndarray:
        return self.test_accuracy[:, -1]

    def column(self, epoch: int) -> int:
        hit = np.flatnonzero(self.epochs == epoch)
        if not len(hit):
            raise ValueError(f"zoo {self.name} has no checkpoint at epoch {epoch}")
        return int(hit[0])

    def forecast_features(self, epoch: int, rows=slice(None)) -> np.ndarray:
        """The forecaster's rows at zoo ``epoch`` (one per run in ``rows``)."""
        j, j0 = self.column(epoch), self.column(0)
        return forecast.vector(self.X[rows, j], self.X[rows, j0], self.steps[rows, j],
                               forecast.progress(epoch, int(self.epochs[-1])))

    def setup(self, rows=slice(None)) -> np.ndarray:
        """The doom model's setup features (:data:`weightwatch.forecast.SETUP`) of the runs in ``rows``."""
        c = self.config.iloc[np.arange(len(self.run_ids))[rows]]
        x = forecast.setup_vector(c["config.learning_rate"].astype(float).to_numpy(),
                                  c["config.dropout"].astype(float).to_numpy(), c["config.optimizer"].to_numpy())
        if x is None:
            raise ValueError(f"zoo {self.name}: a run's optimizer is not one of {forecast.SETUP_OPTIMIZERS}")
        return x

    def doom_features(self, epoch: int, rows=slice(None)) -> np.ndarray:
        """The doom model's rows at zoo ``epoch``: the forecaster's features, then the setup."""
        return np.hstack([self.forecast_features(epoch, rows), self.setup(rows)])

    def forecast_rows(self, rows=slice(None), checks=None):
        """(X, y_final, run ids, epoch) stacked over ``checks`` (default: :attr:`checks`) for the runs in ``rows``."""
        checks = self.checks if checks is None else checks
        ids = self.run_ids[rows]
        X = np.vstack([self.forecast_features(k, rows) for k in checks])
        y = np.tile(self.final[rows], len(checks))
        return X, y, np.tile(ids, len(checks)), np.repeat(np.asarray(checks), len(ids))


def common_checks(trajs) -> tuple:
    """The checks every one of ``trajs`` has."""
    sets = [set(t.checks) for t in trajs]
    return tuple(k for k in CHECKS if all(k in s for s in sets))


def stops(below: np.ndarray, patience: int, checks=CHECKS) -> np.ndarray:
    """Zoo epoch at which each run is stopped (``inf`` if never), from ``below`` (runs x checks): the stop
    policy (:func:`weightwatch.policy.first_stop`) replayed on every run."""
    at = policy.first_stop(below, patience)
    epochs = np.asarray(checks, float)
    return np.where(at >= 0, epochs[np.maximum(at, 0)], np.inf)


def threshold_for_budget(scores: np.ndarray, final: np.ndarray, budget: float, patience: int,
                         num_classes: int = runs.DEFAULT_NUM_CLASSES) -> float:
    """Largest threshold t such that "score < t at ``patience`` consecutive checks" stops at most ``budget``
    of the healthy runs (``scores``: runs x checks, ``inf`` where a run has no check).

    A run stops for every t above its level (:func:`weightwatch.policy.stop_level`). No healthy run: -inf
    (never stop).
    """
    level = policy.stop_level(scores, patience)
    h = np.sort(level[runs.healthy(final, num_classes)])
    if not len(h):
        return float("-inf")
    allowed = int(np.floor(budget * len(h)))
    return float(h[allowed]) if allowed < len(h) else float("inf")


def rates(stop_epoch: np.ndarray, final: np.ndarray, by=(1, 2, 3), num_classes: int = runs.DEFAULT_NUM_CLASSES,
          total_epochs: int = forecast.ZOO_EPOCHS) -> dict:
    """Doomed recall, healthy false-stop rate and in-between stop rate by epoch ``k`` and ever, and the compute
    saved. In between: neither doomed nor healthy (final accuracy from chance + 0.1 up to chance + 0.3)."""
    doomed, healthy = runs.doomed(final, num_classes), runs.healthy(final, num_classes)
    between = ~doomed & ~healthy
    out = {"runs": int(len(final)), "doomed": int(doomed.sum()), "healthy": int(healthy.sum()),
           "in_between": int(between.sum())}
    for k in by:
        out[f"recall@{k}"] = float((stop_epoch[doomed] <= k).mean()) if doomed.any() else float("nan")
        out[f"false_stop@{k}"] = float((stop_epoch[healthy] <= k).mean()) if healthy.any() else float("nan")
        out[f"between_stop@{k}"] = float((stop_epoch[between] <= k).mean()) if between.any() else float("nan")
    out["recall"] = float(np.isfinite(stop_epoch[doomed]).mean()) if doomed.any() else float("nan")
    out["false_stop"] = float(np.isfinite(stop_epoch[healthy]).mean()) if healthy.any() else float("nan")
    out["between_stop"] = float(np.isfinite(stop_epoch[between]).mean()) if between.any() else float("nan")
    saved = np.where(np.isfinite(stop_epoch), total_epochs - np.minimum(stop_epoch, total_epochs), 0.0)
    out["compute_saved"] = float(saved.sum() / (total_epochs * len(final)))
    out["compute_saved_doomed"] = float(saved[doomed].sum() / (total_epochs * max(doomed.sum(), 1)))
    return out
