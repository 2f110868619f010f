"""Dirichlet partitions: sizes, disjointness, proportions from the documented draw."""

from __future__ import annotations

import numpy as np
import pytest

from simfl.errors import ScenarioError
from simfl.learning.partition import class_counts, dirichlet_partition, largest_remainder


def _labels(per_class: int, n_classes: int = 10) -> np.ndarray:
    return np.random.default_rng(99).permutation(np.repeat(np.arange(n_classes), per_class))


def test_largest_remainder_hand_example() -> None:
    # 7 x (0.5, 0.3, 0.2) = 3.5, 2.1, 1.4 -> floors 3, 2, 1 (sum 6); the largest
    # remainder (0.5) gets the missing one -> 4, 2, 1
    assert largest_remainder(np.array([0.5, 0.3, 0.2]), 7).tolist() == [4, 2, 1]


def test_partition_sizes_disjoint_and_counts_follow_the_dirichlet_draw() -> None:
    labels = _labels(1000)
    parts = dirichlet_partition(labels, n_devices=8, samples_per_device=250, z=0.5, rng=np.random.default_rng(7))
    assert [len(p) for p in parts] == [250] * 8
    flat = np.concatenate(parts)
    assert len(np.unique(flat)) == len(flat)  # no sample on two devices
    # The documented draw order: all proportions first. Re-draw them independently.
    p = np.random.default_rng(7).dirichlet(np.full(10, 0.5), size=8)
    counts = class_counts(parts, labels, 10)
    for i in range(8):
        expected = np.floor(p[i] * 250)
        # largest remainder never moves a count by a whole sample from floor(p * S)
        assert np.all(counts[i] >= expected) and np.all(counts[i] <= expected + 1)
        assert counts[i].sum() == 250


def test_small_z_is_skewed_large_z_is_even() -> None:
    labels = _labels(2000)
    skewed = class_counts(dirichlet_partition(labels, 10, 500, 0.1, np.random.default_rng(1)), labels, 10)
    even = class_counts(dirichlet_partition(labels, 10, 500, 1000.0, np.random.default_rng(1)), labels, 10)
    # E[max_c p_c] for Dir(0.1 * 1_10) is well above 0.5; for Dir(1000 * 1_10) it is ~0.1
    assert (skewed.max(axis=1) / 500).mean() > 0.5
    assert np.abs(even / 500 - 0.1).max() < 0.05


def test_exhausted_class_falls_back_with_a_warning() -> None:
    # Two classes of 100 each; 4 devices x 50 = all 200 samples.
    labels = np.repeat([0, 1], 100)
    p = np.random.default_rng(5).dirichlet([0.05, 0.05], size=4)
    demand = sum(largest_remainder(row, 50) for row in p)
    assert demand.max() > 100  # precondition: this seed over-asks one class
    with pytest.warns(UserWarning, match="ran out"):
        parts = dirichlet_partition(labels, 4, 50, 0.05, np.random.default_rng(5))
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(200))  # every sample used exactly once
    assert [len(p) for p in parts] == [50] * 4


def test_too_few_samples_is_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match="samples_per_device"):
        dirichlet_partition(np.zeros(10, dtype=int), 3, 4, 1.0, np.random.default_rng(0))


def test_class_counts_hand_example() -> None:
    labels = np.array([0, 1, 1, 2, 2, 2])
    assert class_counts([np.array([0, 1]), np.array([2, 3, 4, 5])], labels, 4).tolist() == [[1, 1, 0, 0], [0, 1, 3, 0]]
