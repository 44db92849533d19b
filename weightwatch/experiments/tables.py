"""Feature tables of zoos (``weightwatch pretrained tables``): one compact row per checkpoint (W_L, metrics,
configuration), the shipped tables' names, and the stable split of their runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import runs
from ..features import agnostic_from_wl
from . import protocol as ev
from ..zoo.storage import build_records


PAPER_CNN_LAYERS = 4


CARD_EPOCHS = (1, 2, 3)


INTERVAL = (0.1, 0.9)


#: Paper-CNN tables of the A.2 zoos, one shipped predictor each (the table's name is its dataset's).
PAPER_CNN_DATASETS = ("digits", "digits_jitter", "mnist5k", "shapes", "textures")


#: Paper-CNN tables that widen the pooled predictor and the forecaster only: digits trained with four optimizers
#: at learning rates from 1e-4 (``digits_opt``); the same, trained as the frameworks' defaults train, without L2 or
#: dropout, from Keras' initializers (``digits_plain``) or from PyTorch's default initialisation of kernels and
#: biases (``digits_torchinit``).
PAPER_CNN_VARIANTS = ("digits_opt", "digits_plain", "digits_torchinit")


PAPER_CNN_TABLES = PAPER_CNN_DATASETS + PAPER_CNN_VARIANTS


#: The tables the trajectory models (forecaster, doom model) and their verdict card are fitted on: not the
#: plain-training variants. With them, the forecaster stopped 5 of 157 healthy user-style runs
#: (benchmarks/user_runs.py: SGD with momentum at 0.26-0.38 that recover late) against 1 without. Their runs
#: are split on their own (see :func:`paper_split`).
TRAJECTORY_TABLES = PAPER_CNN_DATASETS + ("digits_opt",)


def write_table(zoo, path) -> dict:
    """W_L + metrics + config of every row of ``zoo`` into one compressed ``.npz``."""
    from .. import domain

    X, names = zoo.features("W_L")
    m = zoo.metrics
    cols = {c: m[c].to_numpy() for c in m.columns if c != "_row"}
    with np.errstate(over="ignore"):  # a diverged run's statistics may pass float32's range: inf, never an ok row
        X = X.astype(np.float32)
    arrays = {"W_L": X, "W_L_names": np.array(names),
              "n_params": np.array(zoo.n_params),
              "num_classes": np.array(domain.facts(zoo.network(0)).num_classes or runs.DEFAULT_NUM_CLASSES),
              "input_range": np.array(zoo.manifest.get("input_range") or domain.ZOO_INPUT_RANGE, np.float64)}
    for c, v in cols.items():
        arrays[f"m:{c}"] = v.astype(str) if v.dtype == object else v
    arrays["manifest"] = np.array(json.dumps(zoo.manifest.get("build", {})))
    if zoo.has_normalisation:  # a BatchNorm family: its normalisation layers' features too
        arrays["BN"] = zoo.normalisation_features().astype(np.float32)
    np.savez_compressed(path, **arrays)
    return {"path": str(path), "rows": len(m), "runs": zoo.n_runs}


def _portable(build):
    """A zoo's build record without this machine's directories: an absolute ``path`` keeps its last three
    components (``/work/notes/zoos/digits-opt/zoo`` -> ``zoos/digits-opt/zoo``), as manifests and cards print it."""
    if isinstance(build, dict):
        return {k: (str(Path(*Path(v).parts[-3:])) if k == "path" and isinstance(v, str) and Path(v).is_absolute()
                    else _portable(v)) for k, v in build.items()}
    if isinstance(build, list):
        return [_portable(v) for v in build]
    return build


class Table:
    """A feature table read back: ``X`` (W_L), ``metrics`` DataFrame, build manifest."""

    def __init__(self, path):
        import pandas as pd

        self.path = Path(path)
        with np.load(self.path, allow_pickle=False) as z:
            self.X = z["W_L"].astype(np.float64)
            self.names = [str(n) for n in z["W_L_names"]]
            self.n_params = int(z["n_params"])
            # tables written before these were recorded are all of 10-class networks on [-1, 1] inputs
            self.num_classes = int(z["num_classes"]) if "num_classes" in z.files else runs.DEFAULT_NUM_CLASSES
            self.input_range = tuple(float(v) for v in z["input_range"]) if "input_range" in z.files else (-1.0, 1.0)
            self.metrics = pd.DataFrame({k[2:]: z[k] for k in z.files if k.startswith("m:")})
            self.bn = z["BN"].astype(np.float64) if "BN" in z.files else None
            self.build = _portable(json.loads(str(z["manifest"])))
        self.name = self.path.name.removesuffix(".npz")

    def __len__(self):
        return len(self.X)

    @property
    def n_runs(self):
        return int(self.metrics["modeldir"].nunique())

    @property
    def _first_build(self) -> dict:
        """The build record (a merged zoo's: its first source's, which all share family and dataset)."""
        return build_records(self.build)[0]

    @property
    def architecture(self) -> str:
        return str(self._first_build.get("architecture", "paper-cnn"))

    @property
    def dataset(self) -> str:
        return str(self._first_build.get("dataset", self.name))

    @property
    def spec(self):
        """The zoo's family (built in or registered by a plugin), or None when its plugin is not installed here."""
        from ..errors import InvalidArgumentError
        from ..zoo.architectures import get_architecture

        try:
            return get_architecture(self.architecture)
        except InvalidArgumentError:
            return None

    @property
    def is_mlp(self) -> bool:
        """True for a zoo of an MLP family (dense layers only)."""
        return self.spec is not None and self.spec.is_mlp

    @property
    def has_batchnorm(self) -> bool:
        """True for a zoo of a family with BatchNormalization layers."""
        return self.spec is not None and self.spec.batchnorm

    def agnostic(self) -> np.ndarray:
        """W_L-agnostic features from W_L (the extractor's definition)."""
        return agnostic_from_wl(self.X, self.n_params)

    def agnostic_bn(self) -> np.ndarray:
        """W_L-agnostic-bn features: W_L-agnostic, then the BatchNorm layers' (NaN for a family without)."""
        from ..features import normalisation_names

        bn = self.bn if self.bn is not None else np.full((len(self), len(normalisation_names())), np.nan)
        return np.hstack([self.agnostic(), bn])

    def rows(self, mask) -> "Table":
        view = object.__new__(Table)
        view.__dict__.update(self.__dict__)
        view.X = self.X[mask]
        view.bn = None if self.bn is None else self.bn[mask]
        view.metrics = self.metrics[mask].reset_index(drop=True)
        return view

    def ok(self, trained=True) -> "Table":
        mask = (self.metrics["status"] == "ok").to_numpy().copy()
        if trained:
            mask &= (self.metrics["epoch"] > 0).to_numpy()
        return self.rows(mask)


def _heldout(table: Table, train_runs) -> Table:
    """The rows of ``table`` whose run the model never trained on."""
    return table.rows(~table.metrics["modeldir"].isin(set(train_runs)).to_numpy())


def _data_domain(tables) -> dict:
    """What the tables' networks saw, for :func:`weightwatch.domain.fit`: their class counts and the range
    spanning their inputs."""
    tables = list(tables)
    return {"num_classes": [t.num_classes for t in tables],
            "input_range": (min(t.input_range[0] for t in tables), max(t.input_range[1] for t in tables))}


def split_runs(groups, tr, te) -> dict:
    """The run ids behind a fit and behind its held-out numbers (disjoint)."""
    return {"train_runs": sorted(set(map(str, groups[tr]))), "heldout_runs": sorted(set(map(str, groups[te])))}


def paper_split(run_ids: dict, seed: int) -> set:
    """The training runs of the one split every pooled paper-CNN model uses, from each table's run ids.

    The runs of :data:`TRAJECTORY_TABLES` are drawn together (the split the forecaster, the doom model and
    the pooled predictor have shipped with), the runs of each other table on their own: adding a zoo never
    moves an existing run across the split, so held-out numbers stay comparable from build to build.
    """
    together = [ds for ds in run_ids if ds in TRAJECTORY_TABLES]
    train = set()
    for part in [together] + [[ds] for ds in run_ids if ds not in together]:
        if part:
            ids = np.concatenate([np.asarray(run_ids[ds]) for ds in part])
            tr_idx, _ = ev.split_rows(ids, seed=seed)
            train |= set(ids[tr_idx])
    return train
