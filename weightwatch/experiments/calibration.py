"""The calibration zoo: runs trained the way framework users train, for the verdict models.

The paper's zoo follows its appendix A.2 (Adam, the paper's initialisers, L2
and dropout everywhere, 18 epochs, batch 32). A user's ``model.fit`` does
not: Keras' default initialiser (or torch's, biases included), SGD, SGD with
momentum, RMSprop or Adam at any learning rate, batch 16 to 256, 10 to 30
epochs, inputs in [0, 1] or [-1, 1], sometimes a constant bias, an MLP, a
BatchNorm CNN. The verdict models (doom and forecast) are fitted, tuned and
measured on such runs.

The zoo is a list of *cells*, one ``weightwatch zoo build`` each (one
family, dataset, input scale, batch size and number of epochs; the
hyperparameters of :data:`PLAIN_RANGES` drawn per run), with weights and the
metrics Keras logs saved after **every** epoch. Every cell is built with the
zoo machinery, so a cell is sharded and resumable, and a Dask scheduler may
train it. ``python -m weightwatch.experiments.calibration build --out DIR``
builds every cell not built yet (re-run it to resume).

Runs are assigned to three parts (:func:`part_of`): ``fit`` (models are
fitted on it), ``choose`` (every threshold and setting is chosen on it) and
``measure`` (touched once, to report). The cells come in two rounds:

* round 1 (seeds 7001-7102, 3,264 runs) and round 2's extra cells (seeds
  8001-8099: a BatchNorm CNN at batch 128 and three families at batch 256) are split by a hash of
  the run id, 55% ``fit`` and 45% ``choose``;
* round 2's measure cells (seeds 9001-9199) are the ``measure`` part, every
  run of them: the same families, datasets and input ranges as round 1, at
  batch sizes and epoch counts of their own.

Split history: in version 1 a quarter of round 1 (by the same hash) was the
measure part; it was measured once (CHANGELOG, 0.9 verdict models) and then
became part of ``choose``, since a part that has been reported on is no
longer untouched. Adding a cell never moves a run between parts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import runs

__all__ = ["CELLS", "PLAIN_RANGES", "Cell", "part_of", "cells_of", "PARTS", "build"]

#: How a framework user's runs vary (``--ranges`` of every cell): four optimizers over learning rates wide
#: enough to hold runs that never move and runs that diverge, the frameworks' default initialisers, constant
#: bias starts (including ones that kill ReLU units), mostly no L2 and no dropout, mostly all the data.
PLAIN_RANGES = {
    "optimizer": {"dist": "choice", "values": ["adam", "sgd", "sgd_momentum", "rmsprop"]},
    "learning_rate": {"dist": "log_uniform", "low": 1e-5, "high": 5.0},
    "l2reg": {"dist": "choice", "values": [0.0, 0.0, 0.0, 1e-4]},
    "dropout": {"dist": "choice", "values": [0.0, 0.0, 0.0, 0.2, 0.5]},
    "w_init": {"dist": "choice", "values": ["glorot_uniform", "glorot_uniform", "he_uniform", "he_normal",
                                            "torch_default"]},
    "b_init": {"dist": "choice", "values": ["zeros", "zeros", "zeros", "zeros", "zeros", "torch_default",
                                            "torch_default", "constant_-20", "constant_-2", "constant_0.3"]},
    "activation": {"dist": "choice", "values": ["relu", "relu", "relu", "tanh"]},
    "train_fraction": {"dist": "choice", "values": [1.0, 1.0, 1.0, 0.5, 0.25]},
}

#: Shares of the two parts that runs outside the measure round are split into (by a hash of the run id).
PARTS = (("fit", 0.55), ("choose", 0.45))
#: Seeds of the measure round's cells: every run of them is in the ``measure`` part.
MEASURE_SEEDS = range(9001, 9200)


@dataclass(frozen=True)
class Cell:
    """One zoo build of the calibration zoo."""

    family: str
    dataset: str
    batch_size: int
    epochs: int
    runs: int = 64
    input_scale: str = "default"
    resolution: int = 16
    seed: int = 0
    #: ``"plain"`` (:data:`PLAIN_RANGES`) or ``"paper"`` (appendix A.2's ranges, the paper zoo's recipe)
    recipe: str = "plain"

    @property
    def part(self) -> str:
        """``"measure"`` for a cell of the measure round, else ``"fit/choose"`` (split by run id)."""
        return "measure" if self.seed in MEASURE_SEEDS else "fit/choose"

    @property
    def name(self) -> str:
        tag = "" if self.recipe == "plain" else f"-{self.recipe}"
        return (f"{self.family}{tag}-{self.dataset}-{self.input_scale}-b{self.batch_size}-e{self.epochs}"
                f"-s{self.seed}")

    def spec(self):
        from ..zoo.build import BuildSpec

        return BuildSpec(dataset=self.dataset, architecture=self.family, runs=self.runs, seed=self.seed,
                         epochs=self.epochs, checkpoints=tuple(range(self.epochs + 1)), shard_size=64,
                         batch_size=self.batch_size, resolution=self.resolution, population_size=64,
                         ranges=dict(PLAIN_RANGES) if self.recipe == "plain" else {},
                         input_scale=self.input_scale)


def _planned(plan, seed: int) -> list:
    """Cells of ``plan`` [(family, dataset, resolution, input scales, [(batch, epochs, runs)])], seeds counted
    up from ``seed + 1``, one list per family."""
    per_family = []
    for family, dataset, res, scales, shapes in plan:
        mine = []
        for scale in scales:
            for batch, epochs, n_runs in shapes:
                seed += 1
                mine.append(Cell(family, dataset, batch, epochs, n_runs, scale, res, seed))
        per_family.append(mine)
    return per_family


def _round_robin(per_family, extra=()) -> list:
    """Cells interleaved over the families (a build cut short still holds every family), ``extra`` cells one per
    turn."""
    cells = []
    for i in range(max(len(m) for m in per_family)):
        cells += [m[i] for m in per_family if i < len(m)]
        if i < len(extra):
            cells.append(extra[i])
    return cells


def _cells() -> tuple:
    # (family, dataset, resolution, input scales, [(batch, epochs, runs)])
    round1 = [
        ("paper-cnn", "digits", 16, ("default", "unit"),
         [(16, 10, 128), (32, 20, 128), (64, 30, 128), (128, 15, 128), (256, 30, 128)]),
        ("cnn-wide", "digits", 16, ("default", "unit"), [(32, 10, 64), (128, 20, 64)]),
        ("cnn-bn", "digits", 16, ("default", "unit"), [(16, 10, 64), (64, 20, 64), (256, 15, 64)]),
        ("mlp", "digits", 16, ("default", "unit"), [(16, 15, 64), (64, 30, 64), (256, 10, 64)]),
        ("mlp-tabular", "digits64", 16, ("default", "unit"), [(16, 10, 64), (64, 20, 64), (128, 30, 64)]),
        ("mlp-tabular", "breast_cancer", 16, ("default",), [(16, 20, 64), (64, 30, 64)]),
        ("mlp-tabular", "wine", 16, ("default",), [(16, 30, 64)]),
        ("paper-cnn", "mnist5k", 28, ("default", "unit"), [(64, 10, 64)]),
    ]
    paper1 = [Cell("paper-cnn", "digits", 32, 18, 128, "default", 16, 7101, "paper"),
              Cell("paper-cnn", "digits", 32, 18, 128, "default", 16, 7102, "paper")]
    # round 2, fit/choose: where version 1 measured weakest (BatchNorm CNNs, batch 256)
    extra = [
        ("cnn-bn", "digits", 16, ("default",), [(128, 15, 64)]),
        ("paper-cnn", "digits", 16, ("default",), [(256, 10, 64)]),
        ("mlp", "digits", 16, ("unit",), [(256, 20, 64)]),
        ("mlp-tabular", "digits64", 16, ("default",), [(256, 15, 64)]),
    ]
    # round 2, measure: round 1's families and data at batch sizes and lengths of their own
    measure = [
        ("paper-cnn", "digits", 16, ("default", "unit"),
         [(16, 15, 24), (32, 10, 24), (64, 20, 24), (128, 30, 24), (256, 20, 24)]),
        ("cnn-wide", "digits", 16, ("default", "unit"), [(64, 15, 16), (256, 20, 16)]),
        ("cnn-bn", "digits", 16, ("default", "unit"), [(32, 15, 16), (128, 10, 16), (256, 25, 16)]),
        ("mlp", "digits", 16, ("default", "unit"), [(32, 20, 24), (128, 15, 24), (256, 30, 24)]),
        ("mlp-tabular", "digits64", 16, ("default", "unit"), [(32, 15, 16), (128, 25, 16), (256, 10, 16)]),
        ("mlp-tabular", "breast_cancer", 16, ("default",), [(32, 25, 24), (128, 15, 24)]),
        ("mlp-tabular", "wine", 16, ("default",), [(32, 20, 24)]),
        ("paper-cnn", "mnist5k", 28, ("default", "unit"), [(128, 15, 16)]),
    ]
    paper2 = [Cell("paper-cnn", "digits", 32, 18, 64, "default", 16, 9101, "paper")]
    return tuple(_round_robin(_planned(round1, 7000), paper1) + _round_robin(_planned(extra, 8000))
                 + _round_robin(_planned(measure, 9000), paper2))


#: Every cell of the calibration zoo (round 1: 3,264 runs, 3,008 plain and 256 of the paper's recipe; round 2:
#: 256 more fit/choose runs and a measure part of 744 plain and 64 paper-recipe runs).
CELLS = _cells()


def part_of(run_id: str, version: int = 2) -> str:
    """``"fit"``, ``"choose"`` or ``"measure"``: a fixed function of the run id, so a run's part never changes
    when cells are added. Version 2 (the current split): a run of a measure-round cell (its id's ``seed<N>``,
    N in :data:`MEASURE_SEEDS`) is ``measure``; any other is ``fit`` or ``choose`` by the sha256 of its id
    (:data:`PARTS`). Version 1 (the split the verdict models of 0.9 were fitted, chosen and measured on, round 1
    only): 55% fit, 20% choose, 25% measure by the same hash."""
    u = runs.hash_share(run_id)
    if version == 1:
        return "fit" if u < 0.55 else ("choose" if u < 0.75 else "measure")
    match = _SEED.search(str(run_id))
    if match and int(match.group(1)) in MEASURE_SEEDS:
        return "measure"
    edge = 0.0
    for name, share in PARTS:
        edge += share
        if u < edge:
            return name
    return PARTS[-1][0]


def cells_of(version: int = 2) -> tuple:
    """The cells a split version covers: version 1, round 1 only (seeds below 8000); version 2, every cell."""
    return tuple(c for c in CELLS if version >= 2 or c.seed < 8000)


_SEED = re.compile(r"/seed(\d+)/")


def build_cells(cells, out, *, jobs: int = 1, only=None, scheduler=None, progress: bool = False,
                share=(0, 1)) -> list:
    """Build ``cells`` (each with ``name`` and ``spec()``) under ``out/<cell name>``; finished cells are skipped,
    an interrupted one resumes. ``share=(i, n)`` builds only every n-th cell from the i-th: n processes with
    their own shares build side by side (one shard per cell would otherwise leave a worker idle)."""
    from ..zoo.build import build_zoo

    done = []
    for index, cell in enumerate(cells):
        if (only and not any(o in cell.name for o in only)) or index % share[1] != share[0]:
            continue
        result = build_zoo(Path(out) / cell.name, cell.spec(), jobs=jobs, scheduler=scheduler, progress=progress)
        done.append({"cell": cell.name, **{k: result.get(k) for k in ("runs", "seconds", "trained_shards")}})
        print(json.dumps(done[-1]), flush=True)
    return done


def build(out, *, jobs: int = 1, only=None, scheduler=None, progress: bool = False, share=(0, 1)) -> list:
    """Build every calibration cell (:func:`build_cells` of :data:`CELLS`)."""
    return build_cells(CELLS, out, jobs=jobs, only=only, scheduler=scheduler, progress=progress, share=share)


def share_arg(text: str) -> tuple:
    """``--share i/n`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(v) for v in str(text).split("/"))
        if 0 <= i < n:
            return i, n
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"--share must be i/n with 0 <= i < n, got {text!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weightwatch.experiments.calibration",
                                     description="Build the calibration zoo of plain-framework runs (resumable).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or resume) every cell")
    b.add_argument("--out", required=True, help="directory of the cells (one zoo each)")
    b.add_argument("--jobs", type=int, default=1, help="local worker processes (default: 1)")
    b.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local processes)")
    b.add_argument("--only", nargs="*", default=None, help="build only cells whose name contains one of these")
    b.add_argument("--share", type=share_arg, default=(0, 1),
                   help="i/n: build only every n-th cell from the i-th (default: 0/1)")
    sub.add_parser("cells", help="list the cells")
    args = parser.parse_args(argv)
    if args.cmd == "cells":
        for cell in CELLS:
            print(cell.name, cell.runs)
        print(f"{sum(c.runs for c in CELLS)} runs in {len(CELLS)} cells")
        return 0
    build(args.out, jobs=args.jobs, only=args.only, scheduler=args.scheduler, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
