"""The residual population of the paper's Table 4: a DEMOGEN-like collection of Wide-ResNets, built and tabled.

DEMOGEN holds 216 Wide-ResNet32 networks (72 per width x1, x2, x4) trained on CIFAR-10 with varied
hyperparameters. Ours, scaled to a 2-core machine: :mod:`weightwatch.zoo.residual`'s ``wrn10-x1/x2/x4``
(WRN-10, stage widths (4, 8, 16) * k) on the bundled 5,000 MNIST images at 16x16 (500 training images per
network, the 1,000 test images), 40 epochs of SGD with momentum and a cosine learning rate, hyperparameters
varied like DEMOGEN's (:data:`~weightwatch.zoo.residual.RESIDUAL_RANGES`). It is a list of *cells* of 8 runs
(one ``weightwatch zoo build`` each, seeds :data:`CELLS`), taken round robin over the widths, so a build cut
short still holds every width; the build is resumable (re-run the command) and ``--share i/n`` lets n
processes build side by side.

``python -m weightwatch.experiments.residual_population build --out DIR`` builds (or resumes) the cells;
``... table --out DIR --to zoo_tables/residual/mnist5k.npz`` writes what Table 4 needs from the final weights:
the last layer's statistics (W_L^4, the same 14 numbers as the paper CNN's ``l3.*``), train and test
accuracy, the hyperparameters, and what the shipped predictors say about each network (their prediction and
domain check, with the sha256 of the predictor that said it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .calibration import share_arg

__all__ = ["CELLS", "EPOCHS", "DATASET", "RESOLUTION", "build", "write_table", "read_table"]

DATASET = "mnist5k"
RESOLUTION = 16
EPOCHS = 40
WIDTHS = (1, 2, 4)
ROUNDS = 6
RUNS_PER_CELL = 8
#: Shipped predictors asked about every network (besides the W_L^4 GBM that Table 4 fits).
SHIPPED = ("auto", "agnostic-W_L-agnostic-gbm", "paper-cnn-pooled-W_L-gbm")


@dataclass(frozen=True)
class Cell:
    width: int
    seed: int
    runs: int = RUNS_PER_CELL

    @property
    def architecture(self) -> str:
        return f"wrn10-x{self.width}"

    @property
    def name(self) -> str:
        return f"{self.architecture}-{DATASET}-s{self.seed}"

    def spec(self):
        from ..zoo.build import BuildSpec

        return BuildSpec(dataset=DATASET, architecture=self.architecture, runs=self.runs, seed=self.seed,
                         epochs=EPOCHS, checkpoints=(0, EPOCHS), shard_size=self.runs, resolution=RESOLUTION)

    def command(self, out: str = "DIR") -> str:
        return (f"weightwatch zoo build --dataset {DATASET} --architecture {self.architecture} --runs {self.runs} "
                f"--seed {self.seed} --epochs {EPOCHS} --checkpoints 0 {EPOCHS} --shard-size {self.runs} "
                f"--resolution {RESOLUTION} --out {out}/{self.name}")


#: 6 rounds x 3 widths x 8 runs = 144 networks, 48 per width (DEMOGEN: 72); seed 32RW (R: round, W: width).
CELLS = tuple(Cell(k, 3200 + 10 * r + k) for r in range(ROUNDS) for k in WIDTHS)


def build(out, *, jobs: int = 1, share=(0, 1), progress: bool = False) -> list:
    """Build every cell of ``share`` under ``out/<cell name>`` (finished ones are skipped)."""
    from .calibration import build_cells

    return build_cells(CELLS, out, jobs=jobs, share=share, progress=progress)


def _shipped_opinions(network) -> dict:
    from ..errors import WeightWatchError
    from ..pretrained import predict_accuracy

    said = {}
    for name in SHIPPED:
        try:
            p = predict_accuracy(network, predictor=name)
            said[name] = (p.accuracy, bool(p.in_domain), p.predictor, "")
        except WeightWatchError as exc:
            said[name] = (float("nan"), False, name, str(exc).splitlines()[0][:200])
    return said


def write_table(out, to) -> dict:
    """Tabulate the final checkpoints of every built cell under ``out`` into ``to`` (an ``.npz``); returns its
    summary."""
    from ..inference import LoadedPredictor  # noqa: F401 - the door's types, for the predictor hashes
    from ..pretrained import manifest
    from ..zoo.storage import Zoo

    rows = {k: [] for k in ("run", "width", "train_accuracy", "test_accuracy", "learning_rate", "l2reg",
                            "batch_size", "augment", "dropout", "label_noise")}
    wl4, names, said = [], None, {n: ([], [], [], []) for n in SHIPPED}
    cells = [c for c in CELLS if (Path(out) / c.name / "zoo" / "zoo.json").exists()]
    if not cells:
        raise FileNotFoundError(f"no residual-population cell built under {out}")
    for cell in cells:
        view = Zoo(Path(out) / cell.name / "zoo").filter(last=True)
        X, feature_names = view.features("W_L")
        last = feature_names[-14:]
        names = [n.split(".", 1)[1] for n in last]
        m = view.metrics
        for i in range(len(view)):
            rows["run"].append(str(m["modeldir"].iloc[i]))
            rows["width"].append(cell.width)
            for key in ("train_accuracy", "test_accuracy"):
                rows[key].append(float(m[key].iloc[i]))
            for key in ("learning_rate", "l2reg", "batch_size", "augment", "dropout", "label_noise"):
                rows[key].append(float(m[f"config.{key}"].iloc[i]))
            wl4.append(X[i, -14:])
            for name, (value, domain, used, why) in _shipped_opinions(view.network(i)).items():
                said[name][0].append(value)
                said[name][1].append(domain)
                said[name][2].append(used)
                said[name][3].append(why)
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    arrays["W_L4"] = np.asarray(wl4, np.float64)
    arrays["W_L4_names"] = np.asarray(names)
    hashes = {}
    for i, name in enumerate(SHIPPED):
        arrays[f"shipped{i}.prediction"] = np.asarray(said[name][0], np.float64)
        arrays[f"shipped{i}.in_domain"] = np.asarray(said[name][1], bool)
        arrays[f"shipped{i}.predictor"] = np.asarray(said[name][2])
        arrays[f"shipped{i}.refused"] = np.asarray(said[name][3])
        used = sorted(set(said[name][2]))
        hashes[name] = {u: manifest(u).get("sha256", {}) for u in used if not said[name][3][0]} if used else {}
    summary = {"cells": [c.name for c in cells], "commands": [c.command() for c in cells], "shipped": list(SHIPPED),
               "shipped_manifests": hashes, "dataset": DATASET, "resolution": RESOLUTION, "epochs": EPOCHS,
               "networks": int(len(arrays["run"])),
               "per_width": {str(k): int((arrays["width"] == k).sum()) for k in WIDTHS}}
    arrays["summary"] = np.asarray(json.dumps(summary, sort_keys=True))
    Path(to).parent.mkdir(parents=True, exist_ok=True)
    with open(to, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return summary


def read_table(path) -> dict:
    """The table :func:`write_table` wrote (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        table = {k: z[k] for k in z.files}
    table["summary"] = json.loads(str(table["summary"]))
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weightwatch.experiments.residual_population",
                                     description="Build and tabulate the residual population of Table 4.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or resume) every cell")
    b.add_argument("--out", required=True, help="directory of the cells (one zoo each)")
    b.add_argument("--jobs", type=int, default=1, help="local worker processes per cell (default: 1)")
    b.add_argument("--share", type=share_arg, default=(0, 1),
                   help="i/n: build only every n-th cell from the i-th (default: 0/1)")
    t = sub.add_parser("table", help="tabulate the built cells' final weights for Table 4")
    t.add_argument("--out", required=True, help="directory of the cells")
    t.add_argument("--to", default="zoo_tables/residual/mnist5k.npz", help="the table to write "
                   "(default: zoo_tables/residual/mnist5k.npz)")
    sub.add_parser("cells", help="list the cells and their zoo build commands")
    args = parser.parse_args(argv)
    if args.cmd == "cells":
        for cell in CELLS:
            print(cell.command())
        print(f"{sum(c.runs for c in CELLS)} networks in {len(CELLS)} cells")
        return 0
    if args.cmd == "table":
        print(json.dumps(write_table(args.out, args.to), indent=1))
        return 0
    build(args.out, jobs=args.jobs, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
