"""Online intervals that repeat with a period, with every on and off instant an exact float.

A device is online at time t when a_k <= t mod P <= b_k for some k: closed intervals of a
period P, the rule of FedScale's client-behaviour traces (`simfl.dynamics.fedscale`).
`t mod P` is the exact remainder of the float t by the float P (what Python's `t % P`
gives for t >= 0: fmod is exact). In real numbers the device is online on
[nP + a_k, nP + b_k] for every n >= 0; nP + a_k is rarely a float, so each edge is found
in exact rational arithmetic: a device comes online at the first float >= nP + a_k and
goes offline at the first float > nP + b_k. An interval that ends at b_k = P runs to the
start of the next period (t mod P is never P) and joins an interval there that starts at
0, so a device online across the wrap has one online period, not two.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Iterator

INF = math.inf

# A search for the next edge looks this many periods past the one it starts in: every
# schedule that is not online throughout has an offline gap of positive length in each
# period, so only at times so large that the floats are spaced wider than its gaps (or its
# intervals) do whole periods pass without an edge; the device then stays as it is for good.
_SEARCH_PERIODS = 3


@dataclass(frozen=True)
class PeriodicSchedule:
    """Closed online intervals [a_k, b_k] of a period `period_s`, sorted, with
    0 <= a_k <= b_k <= a_{k+1} and b_k <= period_s (intervals may touch, not overlap)."""

    period_s: float
    intervals: tuple[tuple[float, float], ...]

    def period_from(self, start_s: float) -> tuple[bool, float]:
        """Whether the device is online at `start_s` (>= 0), and the first float
        instant after it at which that changes (inf: never)."""
        if not self.intervals:
            return False, INF
        if self._online_throughout:
            return True, INF
        first = math.floor(Fraction(start_s) / Fraction(self.period_s))
        # intervals ending before start_s mod P lie wholly before start_s: skip them
        # (t % P is exact for t >= 0, so the comparison is too)
        skip = bisect.bisect_left(self._ends, start_s % self.period_s)
        ranges = self._ranges(first, skip, first + _SEARCH_PERIODS)
        for lo, hi in ranges:
            if hi > start_s:
                break
        else:
            return False, INF
        if lo > start_s:
            return False, lo
        for lo, next_hi in ranges:  # an online range the next one starts at continues in it
            if lo > hi:
                return True, hi
            hi = next_hi
        return True, INF

    def _ranges(self, first: int, skip: int, last: int) -> Iterator[tuple[float, float]]:
        """The float ranges [lo, hi) in which the device is online in periods `first` to
        `last` (in the first, from interval `skip` on), in order; ranges without a float
        left out."""
        p = Fraction(self.period_s)
        for n in range(first, last + 1):
            base = n * p
            for a, b in self._exact[skip if n == first else 0:]:
                lo = _first_float_at_or_after(base + a)
                hi = _first_float_after(base + b) if b < p else _first_float_at_or_after(base + p)
                if lo < hi:
                    yield lo, hi

    @cached_property
    def _ends(self) -> tuple[float, ...]:
        return tuple(b for _, b in self.intervals)

    @cached_property
    def _exact(self) -> tuple[tuple[Fraction, Fraction], ...]:
        return tuple((Fraction(a), Fraction(b)) for a, b in self.intervals)

    @cached_property
    def _online_throughout(self) -> bool:
        """The intervals, touching ones joined, cover the whole period."""
        reach = 0.0
        for a, b in self.intervals:
            if a > reach:
                return False
            reach = max(reach, b)
        return reach >= self.period_s


def _first_float_at_or_after(x: Fraction) -> float:
    near = float(x)  # correctly rounded: int / int division in Fraction.__float__
    return near if Fraction(near) >= x else math.nextafter(near, INF)


def _first_float_after(x: Fraction) -> float:
    near = float(x)
    return near if Fraction(near) > x else math.nextafter(near, INF)
