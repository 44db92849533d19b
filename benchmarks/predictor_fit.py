"""Predictor fit time on 15,000 x 56 W_L features, and prediction latency for one network.

Usage: python benchmarks/predictor_fit.py [--zoo DIR] [--rows 15000] [--json OUT]
With --zoo, real W_L rows of that zoo are used; otherwise a synthetic table
with the same shape (features ~ N(0,1), accuracy a noisy sigmoid of them).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np


def table(zoo_dir, rows, seed=0):
    rng = np.random.default_rng(seed)
    if zoo_dir:
        from weightwatch.experiments.protocol import zoo_rows
        from weightwatch.zoo.storage import Zoo

        view = zoo_rows(Zoo(zoo_dir))
        idx = np.sort(rng.choice(len(view), min(rows, len(view)), replace=False))
        view = view.select(np.isin(np.arange(len(view)), idx))
        X, _ = view.features("W_L")
        return X, view.metrics["test_accuracy"].to_numpy(), f"zoo {zoo_dir}"
    X = rng.standard_normal((rows, 56))
    y = 1 / (1 + np.exp(-(X @ rng.standard_normal(56) * 0.3))) + rng.normal(0, 0.05, rows)
    return X, np.clip(y, 0, 1), "synthetic"


def histogram_layouts(gbm, X, y, wide=4970, wide_rows=3000, rounds=30):
    """LightGBM fit time with row-wise and column-wise histograms, side by side, on this table and on a W-wide one.

    The predictor forces one layout; this measures both with its parameters on the same data, and checks that
    the layout changes time only, not the model.
    """
    import lightgbm as lgb

    rng = np.random.default_rng(2)
    xw = rng.standard_normal((min(wide_rows, len(X)), wide))
    out = {}
    for name, (xs, ys) in {f"{X.shape[1]} features": (X, y), f"{wide} features": (xw, y[:len(xw)])}.items():
        times, preds = {}, {}
        for layout in ("force_row_wise", "force_col_wise"):
            params = {k: v for k, v in gbm._lgb_params("regression").items() if not k.startswith("force_")}
            params[layout] = True
            t0 = time.perf_counter()
            booster = lgb.train(params, lgb.Dataset(xs, label=ys, params={"verbosity": -1}), num_boost_round=rounds)
            times[layout] = time.perf_counter() - t0
            preds[layout] = booster.predict(xs[:200])
        out[f"{name} ({rounds} trees)"] = (times["force_row_wise"], times["force_col_wise"],
                                           np.allclose(preds["force_row_wise"], preds["force_col_wise"], atol=1e-9))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--zoo")
    p.add_argument("--rows", type=int, default=15000)
    p.add_argument("--json")
    args = p.parse_args(argv)
    from weightwatch.experiments.protocol import DEFAULT_PARAMS, FIXED_PARAMS
    from weightwatch.features import get_extractor
    from weightwatch.network import LayerWeights, Network
    from weightwatch.predictors import GBMPredictor, LogitLinearPredictor

    X, y, source = table(args.zoo, args.rows)
    print(f"data: {X.shape[0]} x {X.shape[1]} ({source})")
    params = {**DEFAULT_PARAMS["gbm"], **FIXED_PARAMS["gbm"]}
    t0 = time.perf_counter()
    gbm = GBMPredictor(**params).fit(X, y)
    fit_gbm = time.perf_counter() - t0
    layouts = histogram_layouts(gbm, X, y)
    t0 = time.perf_counter()
    LogitLinearPredictor().fit(X, y)
    fit_lin = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    shapes = [((3, 3, 1, 16), 16), ((3, 3, 16, 16), 16), ((3, 3, 16, 16), 16), ((16, 10), 10)]
    net = Network(tuple(LayerWeights(f"l{i}", "conv" if len(k) == 4 else "dense", rng.standard_normal(k).astype(np.float32),
                                     np.zeros(b, np.float32)) for i, (k, b) in enumerate(shapes)))
    ex = get_extractor("W_L")
    n = 200

    def one_network():
        fresh = Network(net.layers)
        return gbm.predict(ex(fresh)[None, :])

    one_network()
    t0 = time.perf_counter()
    for _ in range(n):
        one_network()
    latency = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        ex(Network(net.layers))
    feat = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    gbm.predict(X[:10000])
    batch = (time.perf_counter() - t0) / 10000
    print(f"GBM fit ({params['n_estimators']} trees, {params['num_leaves']} leaves): {fit_gbm:8.2f} s")
    for name, (row_s, col_s, same) in layouts.items():
        print(f"histograms on {name}: row-wise {row_s:6.2f} s, column-wise {col_s:6.2f} s "
              f"(row / column: {row_s / col_s:.2f}x; same predictions: {same})")
    print(f"logit-linear fit (L-BFGS):             {fit_lin:8.2f} s   (GBM / linear: {fit_gbm / fit_lin:.1f}x)")
    print(f"one network, W_L + GBM predict:       {latency * 1e3:8.2f} ms  (features {feat * 1e3:.2f} ms)")
    print(f"GBM predict per row in a batch of 10k: {batch * 1e3:8.4f} ms  (single / batched: {latency / batch:.0f}x)")
    result = {"benchmark": "predictor_fit", "rows": int(X.shape[0]), "source": source, "gbm_fit_s": fit_gbm,
              "linear_fit_s": fit_lin, "one_network_ms": latency * 1e3, "features_ms": feat * 1e3,
              "batched_row_ms": batch * 1e3,
              "histogram_layouts": {k: {"row_wise_s": r, "col_wise_s": c, "same_predictions": bool(same)}
                                    for k, (r, c, same) in layouts.items()}}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
