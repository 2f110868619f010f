"""Category-wise synthesis, Problem (P8) and Theorem 3 (47), in whole samples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simfl.optim.waterfill import data_entropy_bits, water_level, waterfill


def best_entropy_by_exhaustion(d_loc: np.ndarray, total: int) -> float:
    """Maximum of (45) over every integer allocation of `total` samples to the classes."""
    best = -np.inf
    for cut in itertools.combinations(range(total + len(d_loc) - 1), len(d_loc) - 1):
        # stars and bars: the gaps between the bars are the per-class amounts
        bounds = (-1, *cut, total + len(d_loc) - 1)
        alloc = np.array([bounds[j + 1] - bounds[j] - 1 for j in range(len(d_loc))])
        best = max(best, float(data_entropy_bits(d_loc, alloc)))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_waterfill_matches_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 5))
    d_loc = rng.integers(0, 9, (5, n_classes))
    d_loc[:, 0] += 1  # no device without data
    d_gen = rng.integers(0, 9, 5)
    got = waterfill(d_loc, d_gen)
    assert (got >= 0).all()
    assert (got.sum(axis=1) == d_gen).all()
    for i in range(5):
        assert data_entropy_bits(d_loc[i], got[i]) == pytest.approx(best_entropy_by_exhaustion(d_loc[i], int(d_gen[i])), abs=1e-12)


def test_hand_example_fills_the_emptiest_classes():
    # local [4, 0, 0], 2 synthetic: level pi = 1, one sample to each empty class
    assert waterfill(np.array([[4, 0, 0]]), np.array([2])).tolist() == [[0, 1, 1]]
    # local [5, 1, 0], 4 synthetic: pi = 2.5 -> [0, 1.5, 2.5]; the tied half goes to the
    # class with fewer local samples: [0, 1, 3], counts [5, 2, 3]
    assert waterfill(np.array([[5, 1, 0]]), np.array([4])).tolist() == [[0, 1, 3]]


def test_water_level_solves_eq47_continuously():
    d_loc = np.array([[300, 100, 50, 0], [10, 10, 10, 10]])
    d_gen = np.array([420, 6])
    level = water_level(d_loc, d_gen)
    share = np.clip(level[:, None] - d_loc, 0, d_gen[:, None])
    assert share.sum(axis=1) == pytest.approx(d_gen, rel=1e-9)
    assert level[0] == pytest.approx(190.0)  # (190-100) + (190-50) + 190 = 420


def test_zero_synthesis_and_determinism():
    d_loc = np.random.default_rng(1).integers(0, 50, (30, 10))
    assert (waterfill(d_loc, np.zeros(30, int)) == 0).all()
    d_gen = np.random.default_rng(2).integers(0, 500, 30)
    assert (waterfill(d_loc, d_gen) == waterfill(d_loc, d_gen)).all()


def test_large_amount_sums_exactly_and_raises_entropy():
    rng = np.random.default_rng(3)
    d_loc = rng.multinomial(1250, rng.dirichlet(np.full(10, 0.4)), size=20)
    d_gen = rng.integers(0, 800, 20)
    got = waterfill(d_loc, d_gen)
    assert (got.sum(axis=1) == d_gen).all() and (got >= 0).all()
    proportional = np.floor(d_gen[:, None] * d_loc / d_loc.sum(axis=1, keepdims=True))
    assert (data_entropy_bits(d_loc, got) >= data_entropy_bits(d_loc, proportional) - 1e-12).all()


def test_negative_amount_is_rejected():
    with pytest.raises(ValueError, match="device 1"):
        waterfill(np.array([[1, 2], [3, 4]]), np.array([1, -1]))
