"""Labelled image sets as the trainer takes them (numpy, no torch): a device's synthetic
images, the lazy sources that make them on first use, the checks a set must pass, and
the per-channel normalisation every trainer of a run shares."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class LabelledImages:
    """Images uint8 (n, C, H, W) with int labels (n,); e.g. a device's synthetic data."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


SyntheticData = LabelledImages | tuple[np.ndarray, np.ndarray] | None


@runtime_checkable
class LazySynthetic(Protocol):
    """Per-device synthetic data made on first use (e.g. `SynthesisService.lazy`):
    `counts()` gives each device's number of images without making any, `source[i]`
    makes device i's."""

    def counts(self) -> np.ndarray: ...

    def __getitem__(self, i: int) -> SyntheticData: ...


_NORMALISATION_CACHE: dict[int, tuple[weakref.ref, tuple[np.ndarray, np.ndarray]]] = {}


def normalisation(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units.

    Computed exactly from each channel's 256-bin histogram, so no float copy of the
    whole set is made; remembered per array object, since every trainer of a run
    normalises by the same training set.
    """
    hit = _NORMALISATION_CACHE.get(id(images))
    if hit is not None and hit[0]() is images:
        return hit[1]
    stats = _histogram_moments(images)
    _NORMALISATION_CACHE[id(images)] = (weakref.ref(images), stats)
    return stats


def _histogram_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    levels = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(images.shape[1]):
        hist = np.bincount(np.ascontiguousarray(images[:, c]).ravel(), minlength=256).astype(np.float64)
        p = hist / hist.sum()
        m = float(p @ levels)
        mean.append(m)
        std.append(float(np.sqrt(max(p @ (levels - m) ** 2, 0.0))))
    return np.array(mean, dtype=np.float32), np.maximum(np.array(std, dtype=np.float32), 1e-3)


def as_labelled(data: SyntheticData, shape: tuple[int, int, int], owner: str, n_classes: int) -> LabelledImages:
    """Check a synthetic set against the data set's image shape; None is an empty set."""
    if data is None:
        return LabelledImages(np.zeros((0, *shape), dtype=np.uint8), np.zeros(0, dtype=np.int64))
    images, labels = (data.images, data.labels) if isinstance(data, LabelledImages) else data
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) == 0 and len(labels) == 0:
        return LabelledImages(np.zeros((0, *shape), dtype=np.uint8), np.zeros(0, dtype=np.int64))
    if images.dtype != np.uint8 or images.shape[1:] != tuple(shape):
        raise ValueError(f"{owner}: synthetic images must be uint8 (n, {', '.join(map(str, shape))}), "
                         f"got {images.dtype} {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{owner}: synthetic data has {len(images)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{owner}: synthetic labels must be classes 0..{n_classes - 1}, "
                         f"got {labels.min()}..{labels.max()}")
    return LabelledImages(images, labels.astype(np.int64))


__all__ = ["LabelledImages", "LazySynthetic", "SyntheticData", "as_labelled", "normalisation"]
