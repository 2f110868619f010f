"""Dirichlet partitions: sizes, disjointness, proportions from the documented draw; and,
beyond the private pool, each phone's own draw with replacement across phones."""

from __future__ import annotations

import numpy as np
import pytest

from simfl.errors import DataNotFound, ScenarioError
from simfl.learning.partition import (DRAW_CHUNK, LocalData, class_counts, dirichlet_draws, dirichlet_partition,
                                      keyed_dirichlet, largest_counts, largest_remainder, local_data, mixture_counts)


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


# ---------------------------------------------------------------- with replacement across phones


def test_with_replacement_no_image_twice_on_a_phone_but_images_repeat_across_phones() -> None:
    labels = _labels(30)  # a pool of 300 for 200 phones x 5 = 1,000 images
    local = dirichlet_draws(labels, 200, 5, 0.4, seed=3)
    assert len(local) == 200 and (local.sizes() == 5).all()
    for images in local:
        assert len(np.unique(images)) == 5  # never twice on one phone
        assert (np.diff(images) > 0).all()  # each phone's in increasing order, as dirichlet_partition gives them
    assert len(np.unique(local.indices)) < local.indices.size  # the pool is smaller than the demand
    assert local.indices.min() >= 0 and local.indices.max() < labels.size


def test_with_replacement_counts_are_largest_remainder_of_each_phones_dirichlet_draw() -> None:
    labels = _labels(500)
    local = dirichlet_draws(labels, 300, 40, 0.5, seed=11)
    p = keyed_dirichlet(11, np.arange(300), 10, 0.5)
    counts = class_counts(local, labels, 10)
    # no class pool (500) is short of 40, so no cap bites: the scalar rounding, row by row
    assert all(counts[i].tolist() == largest_remainder(p[i], 40).tolist() for i in range(300))


def test_class_counts_are_capped_by_the_class_pool_hand_example() -> None:
    # S p = 5 x (0.75, 0.125, 0.125) = 3.75, 0.625, 0.625 -> floors 3, 0, 0; the two largest
    # remainders (0.75, then 0.625 of the lower index) get one each -> 4, 1, 0. Class 0's
    # pool holds 2: its excess of 2 goes to the classes with room by p over them,
    # (0.125, 0.125) x 2 = 1, 1 -> 2, 2, 1.
    p = np.array([[0.75, 0.125, 0.125]])
    assert largest_counts(p, 5).tolist() == [[4, 1, 0]]
    assert mixture_counts(p, 5, np.array([2, 10, 10])).tolist() == [[2, 2, 1]]


def test_a_small_class_pool_caps_the_draw_with_a_warning() -> None:
    labels = np.array([0] * 2 + [1] * 50)  # class 0 holds 2 images
    with pytest.warns(UserWarning, match="more samples of a class than its pool holds"):
        local = dirichlet_draws(labels, 400, 5, 0.1, seed=2)
    counts = class_counts(local, labels, 2)
    assert (counts[:, 0] <= 2).all() and (counts.sum(axis=1) == 5).all()
    assert (counts[:, 0] == 2).any()  # at z = 0.1 some phones want mostly class 0


def test_a_phones_images_depend_on_the_seed_and_the_phone_alone() -> None:
    labels = _labels(100)
    few = dirichlet_draws(labels, 50, 5, 0.4, seed=5)
    many = dirichlet_draws(labels, 5000, 5, 0.4, seed=5)
    asked = dirichlet_draws(labels, np.array([4999, 7, 49]), 5, 0.4, seed=5)
    assert all(np.array_equal(few[i], many[i]) for i in range(50))
    assert np.array_equal(asked[0], many[4999]) and np.array_equal(asked[1], few[7]) and np.array_equal(asked[2], few[49])
    other = dirichlet_draws(labels, 50, 5, 0.4, seed=6)
    assert any(not np.array_equal(few[i], other[i]) for i in range(50))


def test_the_draw_does_not_depend_on_how_many_phones_are_drawn_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = _labels(100)
    whole = dirichlet_draws(labels, 100, 5, 0.4, seed=5)
    assert DRAW_CHUNK > 100
    monkeypatch.setattr("simfl.learning.partition.DRAW_CHUNK", 7)
    assert np.array_equal(dirichlet_draws(labels, 100, 5, 0.4, seed=5).indices, whole.indices)


@pytest.mark.parametrize("z", [0.1, 0.4, 3.0])
def test_keyed_proportions_are_dirichlet(z: float) -> None:
    # each proportion of Dir(z 1_C) is Beta(z, (C - 1) z): mean 1/C, variance
    # (1/C)(1 - 1/C) / (C z + 1)
    from scipy import stats

    p = keyed_dirichlet(0, np.arange(20_000), 10, z)
    assert np.allclose(p.sum(axis=1), 1.0)
    for c in (0, 9):
        assert stats.kstest(p[:, c], stats.beta(z, 9 * z).cdf).pvalue > 1e-3
    assert abs(p.var() / (0.1 * 0.9 / (10 * z + 1)) - 1) < 0.05


def test_a_phones_images_of_a_class_are_a_uniform_subset() -> None:
    # one class of 6 images, 2 per phone: each of the C(6, 2) = 15 pairs equally likely
    from scipy import stats

    local = dirichlet_draws(np.zeros(6, dtype=np.int64), 30_000, 2, 1.0, seed=4)
    pairs = local.indices.reshape(-1, 2)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    codes = np.bincount(pairs[:, 0] * 6 + pairs[:, 1], minlength=36)
    observed = codes[[a * 6 + b for a in range(6) for b in range(a + 1, 6)]]
    assert observed.sum() == 30_000
    assert stats.chisquare(observed).pvalue > 1e-3


def test_local_data_keeps_the_rule_without_replacement_while_the_pool_suffices() -> None:
    labels = _labels(100)
    fits = local_data(labels, 10, 50, 2.0, np.random.default_rng(3), seed=3)  # 500 of 1,000
    expected = dirichlet_partition(labels, 10, 50, 2.0, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(fits, expected)) and len(fits) == 10
    assert len(np.unique(fits.indices)) == 500
    beyond = local_data(labels, 21, 50, 2.0, np.random.default_rng(3), seed=3)  # 1,050 of 1,000
    assert np.array_equal(beyond.indices, dirichlet_draws(labels, 21, 50, 2.0, seed=3).indices)


def test_a_phone_cannot_hold_more_distinct_images_than_the_pool() -> None:
    with pytest.raises(ScenarioError, match="samples_per_device"):
        dirichlet_draws(np.zeros(10, dtype=int), 3, 11, 1.0, seed=0)


def test_local_data_stores_a_phone_in_bytes() -> None:
    parts = [np.array([3, 1]), np.array([], dtype=np.int64), np.array([7])]
    local = LocalData.of(parts)
    assert local.offsets.tolist() == [0, 2, 2, 3] and local.indices.dtype == np.int32
    assert [x.tolist() for x in local] == [[3, 1], [], [7]] and local[-1].tolist() == [7]
    assert local.remap(np.arange(10) * 10)[0].tolist() == [30, 10]
    assert class_counts(local, np.array([0, 1, 0, 1, 0, 1, 0, 1]), 2).tolist() == [[0, 2], [0, 0], [0, 1]]
    with pytest.raises(IndexError):
        local[3]
    # 100,000 phones x 5 images: 5 int32 indices and one int64 offset, 28 bytes a phone
    many = dirichlet_draws(_labels(100), 100_000, 5, 0.4, seed=1)
    assert many.nbytes / len(many) < 28.001


def test_a_scenario_with_more_images_than_its_private_pool_validates_and_builds() -> None:
    from simfl.experiment import prepare
    from simfl.scenario import scenario_from_dict

    from conftest import scenario_dict

    raw = scenario_dict(devices={"count": 300}, task={"dataset": "fashion-mnist", "samples_per_device": 5,
                                                      "public_samples": 59_000})  # 1,000 private images
    try:
        setup = prepare(scenario_from_dict(raw, "x.yaml"))
    except DataNotFound as exc:
        pytest.skip(f"Fashion-MNIST unavailable: {exc}")
    world, held = setup.world, setup.device_indices.indices
    assert world.n_devices == 300 and (world.d_loc == 5).all()
    assert len(np.unique(held)) < held.size <= 1_500  # phones share images
    assert not np.isin(held, setup.public_idx).any()  # ... of the private pool only
    labels = setup.dataset.train_labels
    assert np.array_equal(world.d_loc_per_class, class_counts(list(setup.device_indices), labels, 10))
    # one phone cannot hold more distinct images than the private pool: refused when the scenario loads
    raw["task"]["samples_per_device"] = 1_001
    with pytest.raises(ScenarioError, match=r"task.samples_per_device: must be at most the 1000 private images"):
        scenario_from_dict(raw, "x.yaml")
