"""Waiting in simulated time with SimPy's public calls only.

A job's instants are computed from its own state (a phase's start plus its duration, a
flow's segment start plus its remaining bits over its rate), so that a run resumed in
the middle of a job ends it at the very same float. `env.timeout(t - env.now)` fires at
now + (t - now), which rounding may put an ulp away from t; `at` picks the delay whose
sum with now is t exactly.
"""

from __future__ import annotations

import math
from typing import Any, Generator

import simpy

# Enough steps of one ulp to reach t from any delay rounding can produce (a handful in practice).
_MAX_ULP_STEPS = 64


def delay_to(now: float, time_s: float) -> float:
    """The delay d >= 0 with now + d == time_s in floating point (time_s >= now), or the
    nearest one when no delay reaches it exactly."""
    delay = max(time_s - now, 0.0)
    for _ in range(_MAX_ULP_STEPS):
        reached = now + delay
        if reached == time_s:
            break
        delay = math.nextafter(delay, math.inf if reached < time_s else 0.0)
    return delay


def at(env: simpy.Environment, time_s: float) -> simpy.Timeout:
    """An event that fires at the absolute time `time_s` (not before now)."""
    return env.timeout(delay_to(env.now, max(time_s, env.now)))


def settled(env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
    """Wait until every other event of the current instant has run: what the server does
    before handling arrivals, so that all the devices finishing at the same instant are
    handled together, in device order, however SimPy queued them."""
    while env.peek() <= env.now:
        yield env.timeout(0)
