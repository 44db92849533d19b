"""W_L statistics speed: weightwatch vs a straightforward numpy computation, same arrays.

Usage: python benchmarks/stats_speed.py [--repeat 5] [--json OUT]
Builds keras.applications.ResNet50(weights=None) locally (no download) when
Keras is installed, else random tensors with ResNet-50's shapes.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np


def resnet50_network():
    from weightwatch.adapters import to_network

    try:
        import keras
    except ImportError:
        return None
    return to_network(keras.applications.ResNet50(weights=None))


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", help="write results here")
    args = p.parse_args(argv)
    from weightwatch.features import layer_stats
    from weightwatch.network import Network

    net = resnet50_network()
    tensors = net.tensors()
    print(f"model: ResNet50(weights=None): {net.n_params:,} parameters in {len(tensors)} tensors ({len(net)} layers)")

    def ours():
        fresh = Network(net.layers)  # new instance: no memoised statistics
        return layer_stats(fresh)

    def numpy_reference():
        return [(t.mean(), t.var(), np.percentile(t, [0, 25, 50, 75, 100])) for t in tensors]

    ref = np.array([[m, v, *q] for m, v, q in numpy_reference()])
    got = ours().reshape(-1, 7)
    got = got[~np.isnan(got[:, 0])]
    assert np.allclose(got[:, 2:], ref[:, 2:], rtol=0, atol=1e-6), "percentiles differ from numpy"
    ours_best, ours_med = best_of(ours, args.repeat)
    np_best, np_med = best_of(numpy_reference, args.repeat)
    print(f"{'':28s}{'best':>10s}{'median':>10s}")
    print(f"{'weightwatch layer_stats':28s}{ours_best:10.3f}{ours_med:10.3f} s")
    print(f"{'numpy mean/var/percentile':28s}{np_best:10.3f}{np_med:10.3f} s")
    print(f"speed-up (numpy / weightwatch, best): {np_best / ours_best:.1f}x; goal <= 0.3 s: "
          f"{'met' if ours_best <= 0.3 else 'NOT met'}")
    result = {"benchmark": "stats_speed", "params": net.n_params, "tensors": len(tensors),
              "weightwatch_s": ours_best, "numpy_s": np_best, "ratio": np_best / ours_best}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
