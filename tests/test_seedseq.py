"""simfl.seedseq: numpy's SeedSequence and PCG64 seeding vectorised over keys, checked
against numpy itself, and the keyed draws built on it (streams.keyed_rngs)."""

from __future__ import annotations

import numpy as np
import pytest

from simfl.dynamics.availability import MarkovOnOff
from simfl.seedseq import seed_words
from simfl.streams import keyed_rng, keyed_rngs


@pytest.mark.parametrize("entropy, spawn_key", [(0, ()), (1, (8,)), (2**32 + 5, (3, 2**33)), (2**130 + 7, (19,))])
def test_seed_words_are_numpys_seedsequence_state(entropy, spawn_key):
    rng = np.random.default_rng(entropy % 1000)
    keys = np.concatenate([rng.integers(0, 2**32, size=(40, 2)), [[0, 0], [2**32 - 1, 1]]])
    got = seed_words(entropy, spawn_key, keys)
    for row, words in zip(keys, got):
        expected = np.random.SeedSequence(entropy, spawn_key=spawn_key + tuple(int(k) for k in row))
        assert words.tolist() == expected.generate_state(4, np.uint64).tolist()


def test_keyed_rngs_draw_what_keyed_rng_draws():
    keys = np.array([[d, k] for d in (0, 1, 7, 999_999) for k in (0, 1, 5)])
    for seed in (1, 2, 123456789012):
        for row, draw in zip(keys, keyed_rngs(seed, "availability", keys)):
            ours = (draw.random(), draw.exponential(3.5), draw.integers(0, 10, 3).tolist())
            ref = keyed_rng(seed, "availability", *row)
            assert ours == (ref.random(), ref.exponential(3.5), ref.integers(0, 10, 3).tolist())


def test_keys_outside_32_bits_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 2\^32\)"):
        seed_words(1, (0,), np.array([[-1, 0]]))
    with pytest.raises(ValueError, match=r"\[0, 2\^32\)"):
        seed_words(1, (0,), np.array([[2**32, 0]]))


def test_markov_periods_for_many_devices_are_its_periods_one_by_one():
    spec = MarkovOnOff(600.0, 300.0)
    devices = np.array([0, 3, 4, 10, 500_000])
    k = np.array([0, 0, 2, 7, 1])
    start = np.array([0.0, 0.0, 812.5, 4000.25, 31.0])
    was = np.array([False, False, True, False, True])
    online, until = spec.periods(5, devices, k, start, was)
    for j in range(len(devices)):
        assert (online[j], until[j]) == spec.period(5, int(devices[j]), int(k[j]), float(start[j]), bool(was[j]))
