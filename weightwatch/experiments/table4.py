"""The paper's Table 4 on our residual population: rank Wide-ResNets with a GBM fitted on small CNNs only.

A GBM is fitted on the last-layer statistics (W_L^4: the 14 statistics of the dense classifier, kernel and
bias apart) of the paper-CNN zoo of the same dataset (its feature table, final checkpoints), then ranks the
residual networks of :mod:`weightwatch.experiments.residual_population` by their predicted accuracy. Nothing
it was fitted or tuned on is a residual network: its settings are fixed (LightGBM's defaults, 600 trees like
the protocol's other GBMs, no search). Kendall tau of its predictions against train and against test accuracy
per width, train vs test as the reference, each with a bootstrap 95% interval over the networks and a one-sided
test of tau > 0; the shipped predictors' own predictions (recorded in the population's table) beside them,
ranking and absolute error both, with how many networks their domain check accepts.
"""

from __future__ import annotations

import numpy as np

from ..predictors.metrics import kendall_tau

__all__ = ["PAPER_TABLE4", "run_table4", "fit_wl4_gbm", "tau_summary"]

#: The paper's Table 4: Kendall tau on DEMOGEN's ResNet32 x1, x2, x4 (GBM on W_L^4 from CIFAR10-GS).
PAPER_TABLE4 = {"vs_train": (0.31, 0.58, 0.68), "vs_test": (0.30, 0.59, 0.56), "train_vs_test": (0.83, 0.77, 0.64)}
WL4_GBM = dict(n_estimators=600, n_jobs=2, random_state=0)
BOOTSTRAP = 2000
LEVEL = 0.95


def fit_wl4_gbm(zoo_table, seed: int = 0):
    """(fitted GBM, info): the W_L^4 GBM on the final checkpoints of a paper-CNN zoo table."""
    from ..predictors.gbm import GBMPredictor
    from .tables import Table

    table = zoo_table if isinstance(zoo_table, Table) else Table(zoo_table)
    m = table.metrics
    last = m.groupby("modeldir")["epoch"].transform("max").to_numpy() == m["epoch"].to_numpy()
    ok = last & (m["status"].astype(str).to_numpy() == "ok")
    cols = [i for i, n in enumerate(table.names) if n.startswith("l3.")]
    if len(cols) != 14:
        raise ValueError(f"{table.path}: expected the paper CNN's 14 l3.* statistics, found {len(cols)}")
    X = table.X[np.ix_(ok, cols)]
    y = m["test_accuracy"].to_numpy(np.float64)[ok]
    finite = np.isfinite(X).all(axis=1) & np.isfinite(y)
    model = GBMPredictor(**{**WL4_GBM, "random_state": seed}).fit(X[finite], y[finite])
    return model, {"zoo_table": table.name, "networks": int(finite.sum()), "features": [table.names[i] for i in cols],
                   "params": dict(WL4_GBM)}


def tau_summary(a, b, rng, n_boot: int = BOOTSTRAP) -> dict:
    """Kendall tau of ``a`` vs ``b`` with a bootstrap interval over the pairs and a one-sided p-value (tau > 0)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3:
        return {"tau": None, "low": None, "high": None, "p_greater": None, "n": int(len(a))}
    tau = kendall_tau(b, a)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(a), len(a))
        t = kendall_tau(b[i], a[i])
        if np.isfinite(t):
            boots.append(t)
    lo, hi = np.quantile(boots, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2]) if boots else (np.nan, np.nan)
    p = float(kendalltau(a, b, alternative="greater").pvalue)
    return {"tau": float(tau), "low": float(lo), "high": float(hi), "p_greater": p, "n": int(len(a))}


def run_table4(population, zoo_table, *, seed: int = 0) -> dict:
    """Table 4 as plain data (``population``: :func:`residual_population.read_table`'s dict or its path)."""
    from . import residual_population as rp

    pop = population if isinstance(population, dict) else rp.read_table(population)
    model, info = fit_wl4_gbm(zoo_table, seed=seed)
    order = [str(n).split(".", 1)[-1] for n in info["features"]]
    names = [str(n) for n in pop["W_L4_names"]]
    if names != order:
        raise ValueError(f"the population's W_L^4 columns {names} differ from the zoo table's {order}")
    predicted = model.predict(pop["W_L4"])
    rng = np.random.default_rng(seed)
    widths = sorted(int(w) for w in np.unique(pop["width"]))
    rows = {"W_L^4 GBM": {"predictions": predicted, "in_domain": None, "refused": ""}}
    summary = pop["summary"]
    for i, name in enumerate(summary["shipped"]):
        refused = sorted(set(str(r) for r in pop[f"shipped{i}.refused"] if str(r)))
        used = sorted(set(str(u) for u in pop[f"shipped{i}.predictor"]))
        label = f"shipped {name}" + (f" ({', '.join(used)})" if name == "auto" else "")
        rows[label] = {"predictions": pop[f"shipped{i}.prediction"], "in_domain": pop[f"shipped{i}.in_domain"],
                       "refused": refused[0] if refused else ""}
    out = {"population": {k: summary[k] for k in ("dataset", "resolution", "epochs", "networks", "per_width",
                                                  "commands")},
           "predictor": info, "widths": widths, "paper": PAPER_TABLE4, "rows": {}, "reference": {},
           "accuracy": {}, "bootstrap": BOOTSTRAP, "level": LEVEL, "seed": seed}
    for w in widths:
        at = pop["width"] == w
        train, test = pop["train_accuracy"][at], pop["test_accuracy"][at]
        out["reference"][str(w)] = tau_summary(train, test, rng)
        out["accuracy"][str(w)] = {"train_mean": float(np.mean(train)), "test_mean": float(np.mean(test)),
                                   "train_max": float(np.max(train)), "test_max": float(np.max(test)),
                                   "test_min": float(np.min(test)), "train_at_least_0.99": float(np.mean(train >= 0.99))}
    for label, row in rows.items():
        res = {"refused": row["refused"], "per_width": {}}
        for w in widths:
            at = pop["width"] == w
            p = np.asarray(row["predictions"], np.float64)[at]
            cell = {"vs_train": tau_summary(p, pop["train_accuracy"][at], rng),
                    "vs_test": tau_summary(p, pop["test_accuracy"][at], rng)}
            if np.isfinite(p).any():
                cell["mad_test"] = float(np.nanmean(np.abs(p - pop["test_accuracy"][at])))
            if row["in_domain"] is not None:
                cell["in_domain"] = float(np.mean(np.asarray(row["in_domain"], bool)[at]))
            res["per_width"][str(w)] = cell
        out["rows"][label] = res
    return out
