"""Named random streams (ns-3 style), derived from the scenario seed: adding a draw to one
never shifts another. Keyed draws (`keyed_rng`, `keyed_uniform`) are counter-based on top
of them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

import numpy as np
from numpy.typing import ArrayLike

from simfl.seedseq import keyed_generators

# New names go at the end: a stream's seed depends on its position.
STREAMS = ("placement", "channel", "partition", "training", "fading", "policy", "generator", "similarity",
           "availability", "mobility", "battery", "gauss_markov", "selection", "similarity_devices",
           "rayleigh_blocks", "gauss_markov_steps", "clarke", "path_loss", "interfering_links", "flower", "local_images")


def streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """One SeedSequence per concern, derived from the scenario seed."""
    return dict(zip(STREAMS, np.random.SeedSequence(seed).spawn(len(STREAMS))))


def rng(seed: int, name: str) -> np.random.Generator:
    """The numpy Generator of one named stream."""
    return np.random.default_rng(streams(seed)[name])


@lru_cache(maxsize=64)
def _stream_key(seed: int, name: str) -> tuple[Any, tuple[int, ...]]:
    parent = streams(seed)[name]
    return parent.entropy, tuple(parent.spawn_key)


def keyed_rng(seed: int, name: str, *key: int) -> np.random.Generator:
    """A Generator for one keyed draw of a named stream, e.g. (device, period) or
    (round,): counter-based, so the draw is the same whenever and in whatever order it
    is asked for, and nothing but the key has to be stored to resume."""
    entropy, spawn_key = _stream_key(int(seed), name)
    return np.random.default_rng(np.random.SeedSequence(entropy=entropy, spawn_key=spawn_key + tuple(int(k) for k in key)))


def keyed_rngs(seed: int, name: str, keys: np.ndarray) -> Iterator[np.random.Generator]:
    """`keyed_rng(seed, name, *row)` for every row of the (n, m) integer `keys`, in turn,
    bit for bit, at a fifth of the cost (the seeds are hashed for all rows at once,
    simfl.seedseq). One Generator is re-seeded per row: draw from it before the next."""
    entropy, spawn_key = _stream_key(int(seed), name)
    return keyed_generators(entropy, spawn_key, keys)


# splitmix64's constants (Steele, Lea and Flood, "Fast splittable pseudorandom number
# generators", OOPSLA 2014): the golden-ratio increment and the two multipliers of its finaliser
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 whose every output bit depends on every input bit."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@lru_cache(maxsize=64)
def _stream_word(seed: int, name: str) -> np.uint64:
    return np.uint64(streams(seed)[name].generate_state(1, np.uint64)[0])


def keyed_uniform(seed: int, name: str, *keys: ArrayLike) -> np.ndarray:
    """Uniform draws in (0, 1), one per element of the broadcast integer `keys` (e.g.
    purpose, device, cell, period), counter-based as `keyed_rng` is: the same whenever and
    in whatever order they are asked for. Vectorised: `keyed_rng` costs ~20 us a call, too
    slow for a draw per link of 10,000 devices x 19 cells; this hashes the stream's word and
    the keys with splitmix64's finaliser, one round per key, and keeps the top 53 bits."""
    arrays = np.broadcast_arrays(*[np.asarray(k, dtype=np.int64) for k in keys]) if keys else []
    shape = arrays[0].shape if arrays else ()
    h = np.full(shape, _stream_word(int(seed), name), dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2^64, as the hash means it to
        for key in arrays:
            h = _mix((h ^ key.astype(np.uint64)) + _GOLDEN)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


__all__ = ["STREAMS", "keyed_rng", "keyed_rngs", "keyed_uniform", "rng", "streams"]
