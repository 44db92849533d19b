"""``weightwatch zoo build | info | merge``."""

from __future__ import annotations

import numpy as np

from .._argtypes import int_at_least, json_object
from .._console import ProgressBar, print_json
from .datasets import INPUT_SCALES


def cmd_build(args) -> int:
    from .build import BuildSpec, build_zoo
    from .hparams import DEFAULT_CHECKPOINTS

    spec = BuildSpec(dataset=args.dataset, architecture=args.architecture, runs=args.runs, seed=args.seed,
                     epochs=args.epochs, checkpoints=tuple(args.checkpoints) if args.checkpoints else
                     tuple(c for c in DEFAULT_CHECKPOINTS if c <= args.epochs),
                     shard_size=args.shard_size, batch_size=args.batch_size, resolution=args.resolution,
                     population_size=args.population_size, input_scale=args.input_scale,
                     ranges=args.ranges or {})
    progress = not args.quiet
    if progress and ProgressBar("", None).enabled:  # a terminal: a bar with an ETA, else one line per shard
        def progress(total, done):
            return ProgressBar("zoo build (runs)", total, done).start()
    result = build_zoo(args.out, spec, jobs=args.jobs, scheduler=args.scheduler, data_dir=args.data_dir,
                       progress=progress, force=args.force)
    print_json(result)
    return 0


def text_histogram(values, bins=10, width=40, lo=0.0, hi=1.0) -> list:
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    peak = max(int(counts.max()), 1)
    return [f"{edges[i]:4.2f}-{edges[i + 1]:4.2f} {int(c):6d} {'#' * int(round(width * c / peak))}"
            for i, c in enumerate(counts)]


def cmd_info(args) -> int:
    from .storage import Zoo

    zoo = Zoo(args.dir)
    m = zoo.metrics
    final = zoo.filter(status=None, last=True).metrics
    info = {
        "path": str(zoo.path), "rows": len(zoo), "runs": zoo.n_runs,
        "parameters": zoo.n_params,
        "nan_runs": int((final["status"] == "nan").sum()),
        "epochs": sorted(int(e) for e in m["epoch"].unique()) if "epoch" in m else None,
        "datasets": sorted(map(str, m["config.dataset"].unique())) if "config.dataset" in m else None,
        "final_test_accuracy": {
            q: float(np.nanpercentile(final.loc[final.status == "ok", "test_accuracy"], p))
            for q, p in (("min", 0), ("median", 50), ("max", 100))
        } if (final.status == "ok").any() else None,
        "build": zoo.manifest.get("build"),
    }
    if args.json:
        print_json(info)
        return 0
    for k, v in info.items():
        if k != "build":
            print(f"{k:22s} {v}")
    ok = final.loc[final.status == "ok", "test_accuracy"].to_numpy()
    print("\nfinal test accuracy of finite runs:")
    for line in text_histogram(ok):
        print("  " + line)
    return 0


def cmd_merge(args) -> int:
    from .._files import check_output_dir
    from .storage import merge_zoos

    check_output_dir(args.out)

    out = merge_zoos(args.sources, args.out)
    print(f"merged {len(args.sources)} zoos into {out}")
    return 0


def _registered(kind: str) -> str:
    """The registered names of ``kind`` for a help text ("" when the registry cannot be read now)."""
    try:
        from ..plugins import get_registry

        return ", ".join(sorted(get_registry().entries(kind)))
    except Exception:  # noqa: BLE001 - a broken plugin must not break --help; the command itself says what is wrong
        return ""


def register_cli(sub) -> None:
    zoo = sub.add_parser("zoo", help="build and inspect CNN zoos").add_subparsers(dest="zoo_command", required=True)
    b = zoo.add_parser("build", help="train a zoo (resumable: re-run the same command to continue)")
    b.add_argument("--dataset", default="digits",
                   help="digits (sklearn, real); digits_jitter (AUGMENTED digits: three jittered copies of every "
                        "training image, offline augmentation, which the paper excluded); mnist5k (5,000 real "
                        "MNIST images, 28x28: pass --resolution 28); textures; shapes (synthetic); mnist, "
                        "fashion_mnist, cifar10, svhn from your files (--data-dir); or a plugin's. Registered: "
                        f"{_registered('datasets') or 'see `weightwatch plugins`'} (default: digits)")
    b.add_argument("--architecture", default="paper-cnn",
                   help=f"network family, one of: {_registered('architectures') or 'the registered ones'}; a "
                        "plugin's too (`weightwatch plugins` lists them; default: paper-cnn, the paper's "
                        "4,970-parameter CNN)")
    b.add_argument("--runs", type=int_at_least(1), default=100,
                   help="networks to train, one hyperparameter draw each (default: 100)")
    b.add_argument("--out", required=True, help="build directory (shards, build.json; the merged zoo in OUT/zoo)")
    b.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the hyperparameter draws and of every run's initialisation (default: 0)")
    b.add_argument("--epochs", type=int_at_least(0), default=18, help="epochs each network trains (default: 18)")
    b.add_argument("--checkpoints", type=int_at_least(0), nargs="*",
                   help="epochs to save (default 0 1 2 3 6 9 12 15 18)")
    b.add_argument("--shard-size", type=int_at_least(1), default=64,
                   help="runs per shard, the unit of work, resume and verification (default: 64)")
    b.add_argument("--population-size", type=int_at_least(1), default=64,
                   help="networks trained side by side in one batched model (default: 64)")
    b.add_argument("--batch-size", type=int_at_least(1), default=None,
                   help="training batch size (default: 32 for digits, digits_jitter and mnist5k, 64 otherwise)")
    b.add_argument("--resolution", type=int_at_least(1), default=16,
                   help="image side the data is resized to (default 16; mnist5k's native size is 28)")
    b.add_argument("--input-scale", default="default", choices=INPUT_SCALES,
                   help="inputs the networks see: default (images in [-1, 1], tabular standardised), unit [0, 1], "
                        "standard (zero mean, unit variance), raw (pixels 0..255, tabular as bundled) "
                        "(default: default)")
    b.add_argument("--ranges", type=json_object, default=None,
                   help='hyperparameter distributions overriding appendix A.2\'s, as JSON, e.g. \'{"optimizer": '
                        '{"dist": "choice", "values": ["adam", "sgd", "sgd_momentum", "rmsprop"]}}\' '
                        "(default: none, A.2's)")
    b.add_argument("--jobs", type=int_at_least(1), default=1, help="local worker processes (default: 1)")
    b.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786 (default: none, local)")
    b.add_argument("--data-dir", help="where mnist/fashion_mnist/cifar10/svhn files are (never downloaded; "
                                      "default: none, bundled datasets only)")
    b.add_argument("--quiet", action="store_true",
                   help="no progress (default: a bar with an ETA on a terminal, one line per shard otherwise)")
    b.add_argument("--force", action="store_true",
                   help="start over if --out holds a build with other settings (its shards are deleted)")
    b.set_defaults(func=cmd_build)
    i = zoo.add_parser("info", help="counts, accuracy histogram, NaN runs")
    i.add_argument("dir", help="a zoo directory (a build's OUT/zoo, or a merged zoo)")
    i.add_argument("--json", action="store_true", help="print JSON (NaN and infinities as null)")
    i.set_defaults(func=cmd_info)
    m = zoo.add_parser("merge", help="merge zoo directories (same layout) into one")
    m.add_argument("sources", nargs="+", help="zoo or shard directories of one layout")
    m.add_argument("--out", required=True, help="the merged zoo's directory")
    m.set_defaults(func=cmd_merge)
