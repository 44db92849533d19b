"""Zoo files in the Small CNN Zoo release format, and the :class:`Zoo` reader.

A zoo directory holds

* ``weights.npy`` — one row per run x checkpoint, float32, flattened in
  ``layout.csv`` order;
* ``layout.csv`` — ``varname, start_idx, end_idx, shape``; like the release,
  each layer's bias comes before its kernel (``sequential/conv2d/bias:0``);
* ``metrics.csv.gz`` — the release's columns (``config.*``, ``modeldir``,
  ``step``, ``test_accuracy``, ...) plus our ``status`` (``ok``/``nan``, per
  run) and ``epoch``;
* ``zoo.json`` — what built it (ours; absent in the release);
* ``SHA256SUMS`` — sha256 of every other file (``sha256sum -c`` format),
  written last; :func:`verify_zoo` checks it before a build trusts or
  merges the files, and :class:`Zoo` on every open (a zoo without it, like
  the release, must at least open whole).

:class:`Zoo` opens our zoos and the official release alike (weights
memory-mapped; columns always mapped through ``layout.csv``). Reading a zoo
without ``status`` (the release) marks a run ``nan`` when any of its rows has
a non-finite weight or no test accuracy (the paper drops runs with
non-finite weights); ``config.w_init`` is read as our initializer names,
matched case-insensitively and without underscores (the release's
``TruncatedNormal`` is ``truncated_normal``), and an unknown name is a
:class:`ZooFormatError` naming it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import runs
from ..adapters.flat import FlatWeights, group_layers, is_normalisation, read_layout, write_layout
from .._files import SUMS, fsync_dir, fsync_file, verify_sums, write_sums
from ..errors import InvalidArgumentError, OutputPathError, ZooFormatError
from ..ranges import build_records  # noqa: F401  (its home was here; zoo readers import it from here)
from ..network import Network
from ..stats import PER_LAYER
from .architectures import canonical_initializer

CONFIG_KEYS = (
    "activation", "b_init", "dataset", "dnn_architecture", "dropout", "epochs", "init_std",
    "l2reg", "learning_rate", "optimizer", "random_seed", "train_fraction", "w_init",
)
METRIC_COLUMNS = tuple(f"config.{k}" for k in CONFIG_KEYS) + (
    "modeldir", "step", "test_accuracy", "test_loss", "train_accuracy", "train_loss",
)
EXTRA_COLUMNS = ("status", "epoch")
FILES = ("weights.npy", "layout.csv", "metrics.csv.gz")


def keras_layout(weight_shapes: Sequence) -> tuple[list, list]:
    """Layout ``[(varname, shape)]`` and, per layout entry, its index in Keras ``get_weights()`` order.

    ``weight_shapes`` is :func:`~weightwatch.zoo.architectures.weight_shapes`' ``[(layer, tensor, shape)]``;
    layers keep their order, a layer's bias comes before its kernel (the release's order), other tensors
    (BatchNormalization's) keep Keras' order.
    """
    layers: dict = {}
    for i, (layer, tensor, shape) in enumerate(weight_shapes):
        layers.setdefault(layer, []).append((i, layer, tensor, tuple(shape)))
    rank = {"bias": 0, "kernel": 1}
    order = [e for entries in layers.values() for e in sorted(entries, key=lambda e: rank.get(e[2], 2))]
    return [(f"sequential/{layer}/{tensor}:0", shape) for _, layer, tensor, shape in order], [e[0] for e in order]


def flatten_keras_weights(weights: Sequence[np.ndarray], order: Sequence[int]) -> np.ndarray:
    """Keras ``get_weights()`` -> one row in layout order (``order`` from :func:`keras_layout`)."""
    return np.concatenate([np.asarray(weights[i], np.float32).ravel() for i in order])


def _atomic_dir(final: Path, tag: str = "tmp"):
    tmp = final.parent / f".{tag}-{final.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    return tmp


def _dead_writers_folder(name: str, tag: str):
    """For ``.{tag}-<name>-<host>-<pid>-<id>`` whose writer on this host has died: ``<name>``; else None."""
    head, _, rest = name.partition("-")
    parts = rest.rsplit("-", 2)
    host = socket.gethostname()
    if head != f".{tag}" or len(parts) != 3 or not parts[0].endswith("-" + host):
        return None
    try:
        os.kill(int(parts[1]), 0)
        return None  # writer still alive
    except (ProcessLookupError, ValueError):
        return parts[0][:-len(host) - 1]
    except PermissionError:
        return None


def remove_stale_temp(directory) -> list:
    """Delete temp dirs left by killed writers on this host (their pid is gone); returns them.

    A zoo moved aside by a killed :func:`replace_dir` (``.old-<name>-...``)
    is moved back if nothing has taken its place, else deleted.
    """
    removed = []
    d = Path(directory)
    if not d.is_dir():
        return removed
    for old in sorted(d.glob(".old-*")):
        target = _dead_writers_folder(old.name, "old")
        if target is None:
            continue
        if not (d / target).exists():
            os.rename(old, d / target)  # killed between its two renames: the old zoo comes back
        else:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    for tmp in d.glob(".tmp-*"):
        if _dead_writers_folder(tmp.name, "tmp") is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def replace_dir(new: Path, target: Path) -> Path:
    """Put the finished directory ``new`` at ``target``; an existing ``target`` is deleted only once ``new`` is there."""
    aside = None
    if target.exists():
        aside = target.parent / f".old-{target.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        os.rename(target, aside)
    os.rename(new, target)
    fsync_dir(target.parent)
    if aside is not None:
        shutil.rmtree(aside)
    return target


def _finish_dir(tmp: Path, final: Path, *, replace: bool = False) -> None:
    """fsync the files of ``tmp``, record their sha256 (last), and rename it to ``final``."""
    names = [f.name for f in tmp.iterdir() if f.name != SUMS]
    for name in names:  # data on disk before the rename makes it visible
        fsync_file(tmp / name)
    write_sums(tmp, names)
    if replace:
        replace_dir(tmp, final)
    else:
        os.rename(tmp, final)
        fsync_dir(final.parent)


def write_zoo(directory, weights: np.ndarray, layout: Sequence, metrics, manifest: dict | None = None) -> Path:
    """Write a complete zoo directory atomically (temp directory + rename), with ``SHA256SUMS``.

    ``metrics`` is a pandas DataFrame with one row per weights row.
    """
    directory = Path(directory)
    if directory.exists():
        raise ZooFormatError(f"{directory} already exists; refusing to overwrite a zoo")
    if len(metrics) != len(weights):
        raise ZooFormatError(f"{len(metrics)} metric rows but {len(weights)} weight rows")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_dir(directory)
    try:
        np.save(tmp / "weights.npy", np.asarray(weights, np.float32))
        write_layout(tmp / "layout.csv", layout)
        metrics.to_csv(tmp / "metrics.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        if manifest is not None:
            (tmp / "zoo.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _finish_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def is_complete(directory) -> bool:
    """Cheap check: the zoo files and ``SHA256SUMS`` (written last) exist. :func:`verify_zoo` checks content."""
    d = Path(directory)
    return d.is_dir() and all((d / f).exists() for f in (*FILES, SUMS))


def _load_weights(path: Path):
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        raise ZooFormatError(f"{path} is unreadable ({exc}): truncated, or not a .npy file") from None


def _finite_rows(weights, chunk: int = 4096) -> np.ndarray:
    """True for each row of ``weights`` (memory-mapped, read in chunks) whose values are all finite."""
    return np.concatenate([np.isfinite(weights[i:i + chunk]).all(axis=1) for i in range(0, len(weights), chunk)]
                          or [np.zeros(0, bool)])


def verify_zoo(directory) -> str | None:
    """None if ``directory`` is a complete zoo whose files are intact, else what is wrong.

    With ``SHA256SUMS`` every file's sha256 is checked; a zoo without it (the
    official release, zoos written before it existed) must at least open,
    with as many metric rows as weight rows.
    """
    d = Path(directory)
    if not d.is_dir():
        return f"{d} is missing"
    missing = [f for f in FILES if not (d / f).exists() and not (f == "metrics.csv.gz" and (d / "metrics.csv").exists())]
    if missing:
        return f"{d} lacks {', '.join(missing)}"
    if (d / SUMS).exists():
        return verify_sums(d, required=FILES)
    try:
        rows = _load_weights(d / "weights.npy").shape[0]
        n = len(read_metrics(d))
    except ZooFormatError as exc:
        return str(exc)
    return None if n == rows else f"{d}: metrics has {n} rows, weights.npy {rows}"


_VERIFIED: dict = {}  # {zoo directory: stat of its files when their sha256 last matched}


def _files_stat(d: Path):
    out = []
    for f in sorted(d.iterdir()):
        try:
            st = f.stat()
        except OSError:
            return None
        out.append((f.name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _check_sums(d: Path) -> None:
    """Refuse a zoo whose ``SHA256SUMS`` does not match its files (naming the file); a zoo without one (the
    official release) is read as it is. Checked once per process while the files' size and mtime stay the same."""
    if not (d / SUMS).exists():
        return
    key = str(d.resolve())
    stat = _files_stat(d)
    if stat is not None and _VERIFIED.get(key) == stat:
        return
    problem = verify_sums(d, required=[f for f in FILES if (d / f).exists() or f != "metrics.csv.gz"])
    if problem:
        raise ZooFormatError(f"{problem}; this zoo cannot be trusted: rebuild it (zoo build re-merges it from its "
                             "shards) or restore it")
    _VERIFIED[key] = stat


def merge_zoos(sources: Sequence, out, manifest: dict | None = None, *, replace: bool = False) -> Path:
    """Concatenate zoo directories (e.g. shards) that share one layout into ``out``.

    Every source is verified first (:func:`verify_zoo`). ``out`` must not
    exist unless ``replace``: then the old ``out`` is deleted only after the
    new one is complete in its place.
    """
    import pandas as pd

    sources = [Path(s) for s in sources]
    if not sources:
        raise ZooFormatError("nothing to merge")
    out = Path(out)
    if out.exists() and not replace:
        raise ZooFormatError(f"{out} already exists; refusing to overwrite a zoo")
    for s in sources:
        problem = verify_zoo(s)
        if problem:
            raise ZooFormatError(f"cannot merge {s}: {problem}")
    layouts = [(Path(s) / "layout.csv").read_text() for s in sources]
    for s, text in zip(sources, layouts):
        if text != layouts[0]:
            raise ZooFormatError(f"{s} has a different layout.csv from {sources[0]}; cannot merge different families")
    arrays = [_load_weights(s / "weights.npy") for s in sources]
    total = sum(a.shape[0] for a in arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_free_space(out.parent, _merged_size(sources, arrays), out)
    tmp = _atomic_dir(out)
    try:
        _write_rows(tmp / "weights.npy", arrays, total)
        shutil.copy(sources[0] / "layout.csv", tmp / "layout.csv")
        metrics = pd.concat([read_metrics(s) for s in sources], ignore_index=True)
        metrics.to_csv(tmp / "metrics.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        if manifest is None:
            manifest = _merged_manifest(sources, metrics, out)
        (tmp / "zoo.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _finish_dir(tmp, out, replace=replace)
    except OSError as exc:  # a full disk (ENOSPC) or a quota: the sources are untouched, the half-merge goes
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputPathError(f"cannot write the merged zoo {out}: {exc.strerror or exc} (the sources are "
                              "untouched; free some space and run the command again)") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _merged_size(sources, arrays) -> int:
    """Bytes a merge writes: the weights, plus the sources' other files (metrics, layout) as an upper bound."""
    weights = sum(a.shape[0] for a in arrays) * arrays[0].shape[1] * 4 + 4096
    other = sum(f.stat().st_size for s in sources for f in Path(s).iterdir() if f.name != "weights.npy"
                and f.is_file())
    return weights + other


def _check_free_space(directory: Path, needed: int, out: Path) -> None:
    """Refuse a merge the file system has no room for, before writing: a full disk under a memory map is a
    SIGBUS that kills the process; ordinary writes (:func:`_write_rows`) turn the rest into an error."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OutputPathError(f"not enough free space for the merged zoo {out}: it needs {needed / 1e6:.1f} MB, "
                              f"{directory} has {free / 1e6:.1f} MB free (nothing was written)")


def _write_rows(path: Path, arrays, total: int, chunk: int = 4096) -> None:
    """Concatenate float32 row arrays into one ``.npy`` by ordinary writes, not a memory map: a full disk is
    then an ``OSError`` (ENOSPC) here, not a SIGBUS later. Byte-identical to ``np.save`` of the result."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                "shape": (total, int(arrays[0].shape[1]))})
        for a in arrays:
            for lo in range(0, a.shape[0], chunk):
                f.write(np.ascontiguousarray(a[lo:lo + chunk], dtype=np.float32).tobytes())
        f.flush()
        os.fsync(f.fileno())


def _merged_manifest(sources, metrics, out) -> dict:
    """Provenance of a merge: every source's build spec (from its zoo.json), its path relative to ``out``'s
    parent (no machine-specific prefix), and the run count."""
    parts = []
    for s in sources:
        info = read_json(s / "zoo.json") if (s / "zoo.json").exists() else {}
        parts.append({"path": os.path.relpath(Path(s).resolve(), Path(out).resolve().parent), **(info.get("build") or {})})
    n_runs = int(metrics["modeldir"].nunique()) if "modeldir" in metrics else None
    return {"build": {"runs": n_runs, "merged": parts}, "sources": f"{len(sources)} zoos merged"}


def read_metrics(directory):
    import pandas as pd

    d = Path(directory)
    for name in ("metrics.csv.gz", "metrics.csv"):
        if (d / name).exists():
            try:
                return pd.read_csv(d / name)
            except (OSError, ValueError, EOFError) as exc:  # gzip/CSV errors name no file
                raise ZooFormatError(f"{d / name} is unreadable ({' '.join(str(exc).split())})") from None
    raise ZooFormatError(f"{d} has no metrics.csv.gz (or metrics.csv)")


def read_json(path) -> dict:
    """A JSON object from ``path`` (zoo.json, build.json); ZooFormatError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ZooFormatError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (OSError, ValueError) as exc:
        raise ZooFormatError(f"{path} is unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise ZooFormatError(f"{path} does not hold a JSON object")
    return data


def _check_contents(d: Path, weights, layout, metrics) -> None:
    """Refuse a zoo whose files parse but cannot be right: weights not a 2-D float array, columns that disagree
    with ``layout.csv``, no rows, metrics without the columns every reader needs or with accuracies outside
    [0, 1]. (Non-finite weights are allowed: such runs are marked ``nan``.)"""
    w = d / "weights.npy"
    if weights.ndim != 2:
        raise ZooFormatError(f"{w} holds a {weights.ndim}-D array of shape {weights.shape}; a zoo's weights are "
                             "2-D (one row per run and checkpoint)")
    if weights.dtype.kind != "f":
        raise ZooFormatError(f"{w} holds {weights.dtype} values; a zoo's weights are floats")
    if weights.shape[0] == 0:
        raise ZooFormatError(f"{w} holds no rows: the zoo is empty")
    width = max((r.end_idx for r in layout), default=0)
    if width != weights.shape[1]:
        raise ZooFormatError(f"{d / 'layout.csv'} describes {width} weights per row, {w} has {weights.shape[1]}")
    missing = [c for c in ("modeldir", "test_accuracy") if c not in metrics]
    if missing:
        raise ZooFormatError(f"{d}: metrics lack the column(s) {', '.join(missing)}")
    import pandas as pd

    acc = pd.to_numeric(metrics["test_accuracy"], errors="coerce")
    bad = acc.isna() & metrics["test_accuracy"].notna() | ~acc.between(0, 1) & acc.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        value = metrics["test_accuracy"].iloc[i]
        value = value.item() if isinstance(value, np.generic) else value
        raise ZooFormatError(f"{d}: metrics row {i}: test_accuracy {value!r} is not an "
                             f"accuracy in [0, 1] ({int(bad.sum())} such rows)")


class Zoo:
    """A zoo directory: metrics as a DataFrame, weights memory-mapped.

    Parameters
    ----------
    path : str or Path
        Directory with ``weights.npy``, ``layout.csv``, ``metrics.csv[.gz]``.
    """

    def __init__(self, path, _rows=None, _metrics=None):
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidArgumentError(f"Zoo needs a directory path, got {type(path).__name__}")
        self.path = Path(path)
        if (self.path / "build.json").exists() and not (self.path / "weights.npy").exists():
            self.path = self.path / "zoo"  # a build directory: open its merged zoo
        if not self.path.is_dir():
            raise ZooFormatError(f"zoo directory {self.path} does not exist")
        for f in ("weights.npy", "layout.csv"):
            if not (self.path / f).exists():
                raise ZooFormatError(f"{self.path} is not a zoo: {f} is missing")
        _check_sums(self.path)
        self._weights = _load_weights(self.path / "weights.npy")
        self.layout = read_layout(self.path / "layout.csv")
        all_metrics = _metrics if _metrics is not None else read_metrics(self.path)
        if _rows is None:
            _check_contents(self.path, self._weights, self.layout, all_metrics)
            if len(all_metrics) != self._weights.shape[0]:
                raise ZooFormatError(
                    f"{self.path}: metrics has {len(all_metrics)} rows, weights.npy {self._weights.shape[0]}"
                )
            if "status" not in all_metrics:  # the release: a run with a non-finite weight or no accuracy is out
                ok = _finite_rows(self._weights) & all_metrics["test_accuracy"].notna().to_numpy()
                run_ok = all_metrics.assign(_ok=ok).groupby("modeldir")["_ok"].transform("all").to_numpy()
                all_metrics["status"] = np.where(run_ok, "ok", "nan")
            if "config.w_init" in all_metrics:
                names = all_metrics["config.w_init"]
                try:
                    all_metrics["config.w_init"] = names.map({v: canonical_initializer(v) for v in names.unique()})
                except InvalidArgumentError as exc:
                    raise ZooFormatError(f"{self.path}: config.w_init: {exc}") from None
            all_metrics["_row"] = np.arange(len(all_metrics))
            self._all = all_metrics
            self.metrics = all_metrics
        else:
            self._all = all_metrics
            self.metrics = all_metrics.iloc[_rows]
        self.manifest = {}
        if (self.path / "zoo.json").exists():
            self.manifest = read_json(self.path / "zoo.json")

    def __len__(self) -> int:
        return len(self.metrics)

    def __repr__(self) -> str:
        return f"Zoo({str(self.path)!r}, {len(self)} rows, {self.n_runs} runs)"

    @property
    def n_runs(self) -> int:
        return int(self.metrics["modeldir"].nunique())

    @property
    def rows(self) -> np.ndarray:
        """Indices of this view's rows in ``weights.npy``."""
        return self.metrics["_row"].to_numpy()

    @property
    def n_params(self) -> int:
        """Kernel and bias parameters per network (normalisation layers' columns of ``weights.npy`` not counted,
        as :attr:`Network.n_params` does not count them)."""
        return int(sum(r.end_idx - r.start_idx for tensors in self._layers(norm=False).values()
                       for r in tensors.values()))

    def _layers(self, norm: bool) -> dict:
        """The layout's normalisation layers (``norm``) or its layers with a kernel: ``{layer: {tensor: row}}``."""
        return {n: t for n, t in group_layers(self.layout).items() if is_normalisation(t) == norm}

    def select(self, mask) -> "Zoo":
        """The view of the rows where ``mask`` (a boolean array over this view's rows) is true."""
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self),):
            raise InvalidArgumentError(f"select needs a boolean mask of {len(self)} rows, got {mask.dtype} {mask.shape}")
        view = object.__new__(Zoo)
        view.__dict__.update(self.__dict__)
        view.metrics = self.metrics[mask]
        return view

    def filter(self, *, epoch=None, step=None, status="ok", last=False) -> "Zoo":
        """Rows at ``epoch``/``step`` (a value or a list), with ``status`` (None: any); ``last``: final checkpoint per run."""
        m = self.metrics
        mask = np.ones(len(m), bool)
        if status is not None:
            mask &= (m["status"] == status).to_numpy()
        for col, val in (("epoch", epoch), ("step", step)):
            if val is not None:
                if col not in m:
                    raise ZooFormatError(f"{self.path}: no column {col!r} in metrics")
                vals = [val] if np.isscalar(val) else list(val)
                mask &= m[col].isin(vals).to_numpy()
        if last:
            mask &= runs.final_rows(m, status=None)
        return self.select(mask)

    def weights(self) -> np.ndarray:
        """Weight rows of this view (read from the memory map)."""
        return np.asarray(self._weights[self.rows])

    def network(self, i: int) -> Network:
        """The ``i``-th row of this view as a Network."""
        row = self.metrics.iloc[i]
        act = row.get("config.activation")
        net = FlatWeights(np.asarray(self._weights[int(row["_row"])]), self.layout,
                          activation=act if isinstance(act, str) else None, name=str(row["modeldir"]))
        from ..adapters import to_network

        return to_network(net)

    def networks(self):
        for i in range(len(self)):
            yield self.network(i)

    def features(self, name="W_L", chunk=4096) -> tuple:
        """Feature matrix and names for every row of this view.

        ``W_L`` is computed for all rows at once (:func:`~weightwatch.features.wl_rows`, vectorised over
        rows: the extractor's numbers); other feature sets go network by network.
        """
        from ..features import extract_matrix, layer_stat_names, wl_rows

        if name != "W_L":
            return extract_matrix(list(self.networks()), name)
        layers = self._layers(norm=False)
        rows = self.rows
        out = np.empty((len(rows), len(layers) * PER_LAYER))
        for lo in range(0, len(rows), chunk):
            w = np.asarray(self._weights[rows[lo:lo + chunk]], dtype=np.float64)
            out[lo:lo + len(w)] = wl_rows([{part: w[:, r.start_idx:r.end_idx] for part, r in tensors.items()}
                                           for tensors in layers.values()], len(w))
        return out, layer_stat_names(range(len(layers)))

    @property
    def has_normalisation(self) -> bool:
        """True when the layout holds BatchNorm layers."""
        return bool(self._layers(norm=True))

    def normalisation_features(self, chunk=4096) -> np.ndarray:
        """:func:`~weightwatch.features.normalisation_summary` of every row of this view, vectorised over rows
        (the same numbers as the ``W_L-agnostic-bn`` extractor's on each network)."""
        from ..features import normalisation_names, normalisation_summary

        norm = self._layers(norm=True).values()
        rows = self.rows
        out = np.empty((len(rows), len(normalisation_names())))
        for lo in range(0, len(rows), chunk):
            w = np.asarray(self._weights[rows[lo:lo + chunk]], dtype=np.float64)
            layers = [{t: w[:, r.start_idx:r.end_idx] for t, r in tensors.items()} for tensors in norm]
            out[lo:lo + len(w)] = normalisation_summary(layers, len(w))
        return out

    def groups(self) -> np.ndarray:
        """Configuration id per row (all checkpoints of one run share it)."""
        return self.metrics["modeldir"].to_numpy()

    def split(self, test_fraction=0.2, seed=0) -> tuple:
        """(train, test) views split by configuration: no run in both."""
        ids = np.array(sorted(self.metrics["modeldir"].unique()))
        rng = np.random.default_rng(seed)
        test_runs = set(rng.choice(ids, size=int(round(test_fraction * len(ids))), replace=False))
        in_test = self.metrics["modeldir"].isin(test_runs).to_numpy()
        return self.select(~in_test), self.select(in_test)
