"""Named random streams (ns-3 style), derived from the scenario seed: adding a draw to one
never shifts another. Keyed draws (`keyed_rng`) are counter-based on top of them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

# New names go at the end: a stream's seed depends on its position.
STREAMS = ("placement", "channel", "partition", "training", "fading", "policy", "generator", "similarity",
           "availability", "mobility", "battery", "gauss_markov", "selection", "similarity_devices",
           "rayleigh_blocks", "gauss_markov_steps", "clarke", "interfering_links")


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


__all__ = ["STREAMS", "keyed_rng", "rng", "streams"]
