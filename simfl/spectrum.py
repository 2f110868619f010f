"""Where each transmission sits in frequency: the cells' bands, frequency reuse, and the
allocators that place a transmitter's sub-band inside its cell's band.

A cell's band is [carrier - B/2, carrier + B/2) in absolute frequency. A sub-band is a
list of pieces (lo, hi) in absolute Hz: one contiguous block where one fits, several
when the free band is fragmented (transfers that started and ended at different times
leave holes). Two transmissions interfere over the overlap of their pieces.

Reuse on a hexagonal grid: cell (q, r) in axial coordinates gets colour (q - r) mod 3
under reuse 3 and (q + 3r) mod 7 under reuse 7; a colour k puts the cell on carrier
f_c + k B. The six neighbours of a cell have colours other than its own in both
patterns (their axial steps (+-1, 0), (0, +-1), (1, -1), (-1, 1) change the colour by
a non-zero residue), and under reuse 7 all seven cells of a cluster differ.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, ClassVar, Protocol

import numpy as np

Pieces = list[tuple[float, float]]

REUSE_FACTORS = (1, 3, 7)
INTERFERENCE_MODELS = ("none", "co_channel")  # network.interference


def reuse_colour(q: int, r: int, reuse: int) -> int:
    """The carrier index of the hex-grid cell at axial (q, r) under reuse 1, 3 or 7."""
    if reuse == 1:
        return 0
    if reuse == 3:
        return (q - r) % 3
    if reuse == 7:
        return (q + 3 * r) % 7
    raise ValueError(f"reuse must be one of {REUSE_FACTORS}, got {reuse}")


def band_edges_hz(carrier_hz: np.ndarray, bandwidth_hz: np.ndarray) -> np.ndarray:
    """(n_cells, 2) each cell's band [carrier - B/2, carrier + B/2)."""
    carrier, band = np.asarray(carrier_hz, float), np.asarray(bandwidth_hz, float)
    return np.stack([carrier - band / 2.0, carrier + band / 2.0], axis=1)


def overlap_hz(a: Pieces, b: Pieces) -> float:
    """How much of the spectrum two sub-bands share."""
    total = 0.0
    for lo, hi in a:
        for lo2, hi2 in b:
            total += max(0.0, min(hi, hi2) - max(lo, lo2))
    return total


def width_hz(pieces: Pieces) -> float:
    return sum(hi - lo for lo, hi in pieces)


def free_pieces(band: tuple[float, float], held: list[Pieces]) -> Pieces:
    """The gaps of `band` that no sub-band in `held` covers, lowest first."""
    taken = sorted(piece for pieces in held for piece in pieces)
    gaps, cursor = [], band[0]
    for lo, hi in taken:
        if lo > cursor:
            gaps.append((cursor, min(lo, band[1])))
        cursor = max(cursor, hi)
    if cursor < band[1]:
        gaps.append((cursor, band[1]))
    return [(lo, hi) for lo, hi in gaps if hi > lo]


class Allocator(Protocol):
    """Places a transmitter's sub-band of width `b_hz` in its cell's band, given the
    sub-bands the cell's other transmitters hold now."""

    kind: ClassVar[str]

    def place(self, band: tuple[float, float], held: list[Pieces], b_hz: float, device: int) -> Pieces:
        ...


ALLOCATORS: dict[str, type] = {}


def register_allocator(cls: type) -> type:
    """Class decorator: an allocator under its `kind` (a name used twice is an error)."""
    kind = cls.kind  # type: ignore[attr-defined]
    if kind in ALLOCATORS and ALLOCATORS[kind] is not cls:
        raise ValueError(f"allocator {kind!r} is registered twice")
    ALLOCATORS[kind] = cls
    return cls


@register_allocator
class LowestFree:
    """Contiguous blocks, lowest free first: the lowest gap that holds the whole width;
    where none does (a fragmented band), the lowest gaps in turn until the width is
    placed. Never more than what is free."""

    kind = "lowest_free"

    def place(self, band: tuple[float, float], held: list[Pieces], b_hz: float, device: int) -> Pieces:
        gaps = free_pieces(band, held)
        for lo, hi in gaps:
            if hi - lo >= b_hz:
                return [(lo, lo + b_hz)]
        pieces, left = [], b_hz
        for lo, hi in gaps:
            if left <= 0:
                break
            take = min(hi - lo, left)
            pieces.append((lo, lo + take))
            left -= take
        return pieces


def allocator(name: str) -> Allocator:
    """The registered allocator `name` (ValueError, naming the allowed ones, otherwise)."""
    cls = ALLOCATORS.get(name)
    if cls is None:
        raise ValueError(_unknown(name))
    return cls()


def check_allocator(name: Any, where: str, fail: Callable[[str, str], None]) -> None:
    """A scenario's `network.allocator`: `fail(where, ...)` unless it names a registered allocator."""
    if not isinstance(name, str) or name not in ALLOCATORS:
        fail(where, _unknown(name))


def _unknown(name: Any) -> str:
    close = difflib.get_close_matches(str(name), ALLOCATORS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown allocator {name!r}{hint}; allowed: {', '.join(sorted(ALLOCATORS))}"


def sinr(p_w: float, gain: np.ndarray, b_hz: float, n0_w_per_hz: float, interference_w: np.ndarray) -> np.ndarray:
    """p g / (b N0 + I): the signal over noise and interference on a sub-band of width b."""
    return p_w * np.asarray(gain, float) / (b_hz * n0_w_per_hz + np.asarray(interference_w, float))


def rate_bps(b_hz: float, sinr_linear: np.ndarray) -> np.ndarray:
    """Shannon's b log2(1 + SINR)."""
    return b_hz * np.log2(1.0 + np.asarray(sinr_linear, float))


__all__ = ["ALLOCATORS", "Allocator", "INTERFERENCE_MODELS", "LowestFree", "Pieces", "REUSE_FACTORS", "allocator", "band_edges_hz",
           "check_allocator", "free_pieces", "overlap_hz", "rate_bps", "register_allocator", "reuse_colour", "sinr",
           "width_hz"]
