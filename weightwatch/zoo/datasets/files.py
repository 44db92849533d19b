"""Datasets read from files the user already has: ``mnist``, ``fashion_mnist``, ``cifar10``, ``svhn``.

They are looked up in ``data_dir`` first and then in the Keras dataset cache
(``$KERAS_HOME/datasets``, default ``~/.keras/datasets``). When missing,
:class:`~weightwatch.errors.DatasetNotFoundError` is raised naming what was
looked for and where; nothing is downloaded. CIFAR10 and SVHN are converted
to grayscale with BT.601 luma. CIFAR10's python batches are pickles, read with
a restricted unpickler that resolves only numpy's reconstruction helpers.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import DataFileError, DatasetNotFoundError
from .base import Dataset
from .images import _finish, _labels, _pixels_to_unit_gray

__all__ = ["keras_cache_dir", "load_mnist", "load_fashion_mnist", "load_cifar10", "load_svhn"]


def keras_cache_dir() -> Path:
    """Keras dataset cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".keras"
    return base / "datasets"


def _search_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    kc = keras_cache_dir()
    if kc not in dirs:
        dirs.append(kc)
    return dirs


def _not_found(dataset: str, expected: Sequence[str], dirs: Sequence[Path]) -> DatasetNotFoundError:
    exp = "\n".join(f"  - {e}" for e in expected)
    looked = "\n".join(f"  - {d}" for d in dirs)
    return DatasetNotFoundError(
        f"{dataset} not found locally. Expected one of these (relative to a search "
        f"directory):\n{exp}\nDirectories looked in (in order):\n{looked}\n"
        "Nothing is downloaded by weightwatch: place the file(s) there or pass "
        "data_dir=..."
    )


def _find_first(
    dirs: Sequence[Path], candidates: Sequence[tuple[str, Sequence[str]]]
) -> tuple[str, Path] | None:
    """First (kind, directory) such that all files of a candidate exist.

    ``candidates`` is a list of ``(kind, [relative paths])``; a relative path
    ending in ``.gz`` also matches its uncompressed twin.
    """
    for d in dirs:
        for kind, files in candidates:
            if all(_existing(d / f) is not None for f in files):
                return kind, d
    return None


def _existing(path: Path) -> Path | None:
    if path.is_file():
        return path
    if path.suffix == ".gz":
        alt = path.with_suffix("")
        if alt.is_file():
            return alt
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), e.g. MNIST ubyte files."""
    path = _existing(path) or path
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise DataFileError(f"{path}: not an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataFileError(f"{path}: unsupported IDX header (only unsigned-byte data)")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if arr.size != expected:
        raise DataFileError(f"{path}: expected {expected} values for shape {dims}, got {arr.size}")
    return arr.reshape(dims)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if missing:
            raise DataFileError(f"{path}: missing arrays {sorted(missing)}")
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def _make_file_dataset(
    name: str,
    raw: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    resolution: int | None,
    description: str,
    src: Path,
    num_classes: int = 10,
) -> Dataset:
    xtr, ytr, xte, yte = raw
    x_train = _finish(_pixels_to_unit_gray(xtr), resolution)
    x_test = _finish(_pixels_to_unit_gray(xte), resolution)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=_labels(ytr),
        x_test=x_test,
        y_test=_labels(yte),
        num_classes=num_classes,
        description=f"{description} ({x_train.shape[1]}x{x_train.shape[2]}, read from {src})",
        synthetic=False,
    )


_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _load_idx_dir(d: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        _read_idx(d / _IDX_FILES[0]),
        _read_idx(d / _IDX_FILES[1]),
        _read_idx(d / _IDX_FILES[2]),
        _read_idx(d / _IDX_FILES[3]),
    )


def _mnist_like(
    name: str, npz_name: str, idx_subdir: str, data_dir, resolution, description: str
) -> Dataset:
    dirs = _search_dirs(data_dir)
    candidates = [
        ("npz", [npz_name]),
        ("idx_sub", [f"{idx_subdir}/{f}" for f in _IDX_FILES]),
        ("idx", list(_IDX_FILES)),
    ]
    hit = _find_first(dirs, candidates)
    if hit is None:
        expected = [npz_name, ", ".join(f"{idx_subdir}/{f}" for f in _IDX_FILES)
                    + " (gzip or uncompressed)", ", ".join(_IDX_FILES) + " (directly in the directory)"]
        raise _not_found(name, expected, dirs)
    kind, d = hit
    if kind == "npz":
        src = d / npz_name
        raw = _load_npz(src)
    else:
        src = d / idx_subdir if kind == "idx_sub" else d
        raw = _load_idx_dir(src)
    return _make_file_dataset(name, raw, resolution, description, src)


def load_mnist(data_dir: str | os.PathLike | None = None, resolution: int | None = None) -> Dataset:
    """MNIST from local files (60000 train / 10000 test, 28x28). Never downloads.

    Looks in ``data_dir`` then the Keras cache for ``mnist.npz`` (Keras format:
    arrays ``x_train, y_train, x_test, y_test``), or the four IDX files
    (``train-images-idx3-ubyte.gz`` ...) in ``mnist/`` or directly in the
    directory.  ``resolution=None`` keeps 28x28.
    """
    return _mnist_like("mnist", "mnist.npz", "mnist", data_dir, resolution,
                       "MNIST handwritten digits")


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, resolution: int | None = None
) -> Dataset:
    """Fashion-MNIST from local files (60000 / 10000, 28x28). Never downloads.

    Accepts the Keras cache layout ``fashion-mnist/`` with the four gzip IDX
    files (``train-labels-idx1-ubyte.gz``, ``train-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``), the same
    files directly in the directory, or ``fashion_mnist.npz`` (Keras-style
    arrays).  ``resolution=None`` keeps 28x28.
    """
    return _mnist_like("fashion_mnist", "fashion_mnist.npz", "fashion-mnist", data_dir,
                       resolution, "Fashion-MNIST clothing images")


# -- CIFAR10 -----------------------------------------------------------------

_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

# Globals a CIFAR batch pickle (dict of numpy arrays / lists) may reference.
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}
for _mod in ("numpy.core", "numpy._core"):
    _PICKLE_ALLOWED |= {
        (f"{_mod}.multiarray", "_reconstruct"),
        (f"{_mod}.multiarray", "scalar"),
        (f"{_mod}.numeric", "_frombuffer"),
    }


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the numpy globals needed for CIFAR batches."""

    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} from a CIFAR batch pickle"
            )
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR10 python batch -> (N, 32, 32, 3) uint8 images, labels.

    The official CIFAR10 "python version" batches are Python pickles of dicts
    ``{b'data': uint8 (N, 3072) array, b'labels': list[int], ...}``.  They are
    read with :mod:`pickle` via a *restricted* unpickler that only resolves the
    numpy reconstruction helpers (arbitrary globals are refused), with
    ``encoding='bytes'`` for the Python-2 originals.  Only load files you trust.
    """
    with open(path, "rb") as f:
        d = _RestrictedUnpickler(f, encoding="bytes").load()
    if not isinstance(d, dict):
        raise DataFileError(f"{path}: expected a dict, got {type(d).__name__}")
    d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = d.get("labels", d.get("fine_labels"))
    if labels is None:
        raise DataFileError(f"{path}: no 'labels' entry")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(labels, dtype=np.int64)


def load_cifar10(data_dir: str | os.PathLike | None = None, resolution: int | None = None) -> Dataset:
    """CIFAR10 converted to grayscale (BT.601 luma), 50000 / 10000, 32x32.

    Never downloads.  Looks in ``data_dir`` then the Keras cache for the
    python-pickle batches directory ``cifar-10-batches-py/`` (``data_batch_1``
    .. ``data_batch_5``, ``test_batch``; see :func:`_load_cifar_batch` for how
    the pickles are read) or ``cifar10.npz`` (arrays ``x_train`` (N, 32, 32, 3)
    uint8, ``y_train``, ``x_test``, ``y_test``).  ``resolution=None`` keeps 32.
    """
    dirs = _search_dirs(data_dir)
    batch_files = [f"{_CIFAR_DIR}/{b}" for b in (*_CIFAR_BATCHES, "test_batch")]
    hit = _find_first(dirs, [("batches", batch_files), ("npz", ["cifar10.npz"])])
    if hit is None:
        raise _not_found(
            "cifar10",
            [f"{_CIFAR_DIR}/ with data_batch_1..data_batch_5 and test_batch", "cifar10.npz"],
            dirs,
        )
    kind, d = hit
    if kind == "batches":
        src = d / _CIFAR_DIR
        parts = [_load_cifar_batch(src / b) for b in _CIFAR_BATCHES]
        xtr = np.concatenate([p[0] for p in parts])
        ytr = np.concatenate([p[1] for p in parts])
        xte, yte = _load_cifar_batch(src / "test_batch")
        raw = (xtr, ytr, xte, yte)
    else:
        src = d / "cifar10.npz"
        xtr, ytr, xte, yte = _load_npz(src)
        # accept channels-first (N, 3, 32, 32) too
        if xtr.ndim == 4 and xtr.shape[1] == 3 and xtr.shape[-1] != 3:
            xtr, xte = xtr.transpose(0, 2, 3, 1), xte.transpose(0, 2, 3, 1)
        raw = (xtr, ytr, xte, yte)
    return _make_file_dataset(
        "cifar10", raw, resolution, "CIFAR10 converted to grayscale with ITU-R 601 luma", src
    )


# -- SVHN --------------------------------------------------------------------

_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def _load_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    m = loadmat(path)
    x = np.asarray(m["X"])  # (32, 32, 3, N)
    y = np.asarray(m["y"]).reshape(-1).astype(np.int64)
    x = np.moveaxis(x, -1, 0)  # (N, 32, 32, 3)
    y = np.where(y == 10, 0, y)
    return x, y


def load_svhn(data_dir: str | os.PathLike | None = None, resolution: int | None = None) -> Dataset:
    """SVHN (cropped digits) converted to grayscale (BT.601), 32x32.

    Never downloads.  Looks in ``data_dir``, ``data_dir/svhn`` and the Keras
    cache (and its ``svhn/``) for ``train_32x32.mat`` and ``test_32x32.mat``
    (the official format, read with ``scipy.io.loadmat``: ``X`` of shape
    (32, 32, 3, N), ``y`` of shape (N, 1) with label 10 meaning digit 0, mapped
    to 0).  The optional ``extra_32x32.mat`` is not used.
    """
    base = _search_dirs(data_dir)
    dirs: list[Path] = []
    for d in base:
        dirs += [d, d / "svhn"]
    hit = _find_first(dirs, [("mat", list(_SVHN_FILES))])
    if hit is None:
        raise _not_found("svhn", [" and ".join(_SVHN_FILES)], dirs)
    _, d = hit
    xtr, ytr = _load_svhn_mat(d / _SVHN_FILES[0])
    xte, yte = _load_svhn_mat(d / _SVHN_FILES[1])
    return _make_file_dataset(
        "svhn", (xtr, ytr, xte, yte), resolution,
        "SVHN cropped digits converted to grayscale with ITU-R 601 luma", d,
    )
