"""numpy's SeedSequence and PCG64 seeding, vectorised over many spawn keys.

`keyed_rng(seed, name, *key)` builds a SeedSequence and a PCG64 per key: about 25 us,
most of it in SeedSequence's hashing, so a million devices' keyed draws cost half a
minute. Here the hashing runs once over all the keys in uint32 numpy arithmetic (the
algorithm of numpy.random.SeedSequence: O'Neill's seed_seq_fe with its mixing constants),
and each key's PCG64 state follows from its four seed words by the generator's own
seeding recurrence, so one Generator re-seeded per key draws exactly what `keyed_rng`
would: the same numbers, bit for bit (tests/test_seedseq.py checks it against numpy).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

# numpy.random.SeedSequence's constants (numpy/random/bit_generator.pyx)
_POOL_SIZE = 4
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_MASK32 = 0xFFFFFFFF
# PCG64's 128-bit LCG multiplier (PCG_DEFAULT_MULTIPLIER_128)
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
_MASK128 = (1 << 128) - 1


def _uint32_words(n: int) -> list[int]:
    """An integer as SeedSequence reads it: 32-bit words, least significant first, [0] for 0."""
    if n < 0:
        raise ValueError(f"seeds and keys must be non-negative, got {n}")
    if n == 0:
        return [0]
    words = []
    while n > 0:
        words.append(n & _MASK32)
        n >>= 32
    return words


class _Hash:
    """SeedSequence's hashmix with its running constant; the same constants for every key."""

    def __init__(self, init: int, mult: int) -> None:
        self.const, self.mult = init, mult

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = value ^ np.uint32(self.const)
        self.const = (self.const * self.mult) & _MASK32
        value = value * np.uint32(self.const)
        return value ^ (value >> np.uint32(16))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
    return result ^ (result >> np.uint32(16))


def seed_words(entropy: int, spawn_key: Sequence[int], keys: np.ndarray) -> np.ndarray:
    """`SeedSequence(entropy, spawn_key=spawn_key + tuple(row)).generate_state(4, np.uint64)`
    for every row of `keys` (n, m) at once: (n, 4) uint64. Keys must lie in [0, 2^32)."""
    keys = np.asarray(keys, dtype=np.int64)
    if keys.ndim != 2:
        raise ValueError(f"keys must be an (n, m) array, got shape {keys.shape}")
    if keys.size and (keys.min() < 0 or keys.max() > _MASK32):
        raise ValueError("vectorised keys must lie in [0, 2^32)")
    n = len(keys)
    run = _uint32_words(int(entropy))
    run += [0] * max(0, _POOL_SIZE - len(run))  # SeedSequence pads the entropy when there is a spawn key
    fixed = run + [w for part in spawn_key for w in _uint32_words(int(part))]
    columns = [np.full(n, w, dtype=np.uint32) for w in fixed] + [keys[:, j].astype(np.uint32) for j in range(keys.shape[1])]
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps modulo 2^32, as the hash means it to
        hashmix = _Hash(_INIT_A, _MULT_A)
        pool = [hashmix(columns[i]) for i in range(_POOL_SIZE)]
        for src in range(_POOL_SIZE):
            for dst in range(_POOL_SIZE):
                if src != dst:
                    pool[dst] = _mix(pool[dst], hashmix(pool[src]))
        for src in range(_POOL_SIZE, len(columns)):
            for dst in range(_POOL_SIZE):
                pool[dst] = _mix(pool[dst], hashmix(columns[src]))
        out_hash = _Hash(_INIT_B, _MULT_B)
        # generate_state(4, uint64) is 8 uint32 words, the pool cycled, read little-endian in pairs
        words = np.stack([out_hash(pool[i % _POOL_SIZE]) for i in range(8)], axis=1).astype("<u4")
    return np.ascontiguousarray(words).view("<u8").astype(np.uint64)


def pcg64_state(words: Sequence[int]) -> dict:
    """The state of `np.random.PCG64(seed_sequence)` whose generate_state(4, uint64) is
    `words`: pcg_setseq_128_srandom_r on (words[0] words[1], words[2] words[3])."""
    a, b, c, d = (int(w) for w in words)
    initstate, initseq = (a << 64) | b, (c << 64) | d
    inc = ((initseq << 1) | 1) & _MASK128
    state = (((inc + initstate) & _MASK128) * _PCG_MULT + inc) & _MASK128
    return {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}


def keyed_generators(entropy: int, spawn_key: Sequence[int], keys: np.ndarray) -> Iterator[np.random.Generator]:
    """For each row of `keys`, a Generator in the state `np.random.default_rng(
    SeedSequence(entropy, spawn_key=spawn_key + row))` starts in. It is one Generator,
    re-seeded for each row: draw from it before taking the next."""
    bit_generator = np.random.PCG64(0)
    generator = np.random.Generator(bit_generator)
    for row in seed_words(entropy, spawn_key, keys).tolist():
        bit_generator.state = pcg64_state(row)  # type: ignore[assignment]
        yield generator
