"""Small-scale fading of each cell, per round or in simulated time.

Per round (`FadingProcess`; block fading, constant within a round): none, Rayleigh (a new
independent draw every round) or Gauss-Markov (h_{t+1} = rho h_t + sqrt(1 - rho^2) w_t
with w_t ~ CN(0, 1), so |h|^2 is Exp(1) in every round, as under Rayleigh, but correlated
from round to round with lag-1 correlation rho^2).

In simulated time (`simfl.dynamics.channel_time.ChannelInTime`): Rayleigh blocks of
`coherence_s` seconds, Gauss-Markov steps of `step_s` seconds, and Clarke's model whose
Doppler follows each device's speed. The bare `rayleigh` and `{gauss_markov: {rho}}` keep
their per-round meaning; the fields `coherence_s` and `step_s` make them time-based. Each
process handles only its own kinds and leaves a factor of 1 for the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from simfl.dynamics.registry import (MAX_PERIOD_S, FADING, Fail, WithoutFields, declared, number_field, register,
                                    unknown_fields)
from simfl.limits import Bounds
from simfl.radio import rayleigh_complex_gain, rayleigh_power_gain
from simfl.streams import keyed_rng

# A block or step of a microsecond is shorter than the coherence time of any channel a phone
# meets (28 GHz at 300 km/h: about 50 us) and keeps block counters below 2^53, where floats
# count exactly, for 9e9 s (285 years) of simulated time.
MIN_BLOCK_S = 1e-6
# Above the Doppler of the fastest speed (1e3 m/s) on the highest carrier (1e12 Hz): 3.3e6 Hz.
MAX_DOPPLER_HZ = 1e7
BLOCK = Bounds(minimum=MIN_BLOCK_S, maximum=MAX_PERIOD_S, required=True)  # a block or step in simulated time


def exp1_quantile(q: float) -> float:
    """F^-1(q) of Exp(1), the power gain factor |h|^2 of Rayleigh fading: a plan for this
    gain misses it with probability q."""
    return -math.log1p(-q)


@register(FADING)
@dataclass(frozen=True)
class NoFading(WithoutFields):
    """The channel gain is the mean gain (path loss and shadowing only)."""

    kind: ClassVar[str] = "none"
    form: ClassVar[str] = "none"

    def quantile(self, q: float) -> float:
        """The q-quantile of the power gain factor |h|^2: there is no fading."""
        return 1.0


@register(FADING)
@dataclass(frozen=True)
class Rayleigh:
    """|h|^2 ~ Exp(1), drawn anew for every round. Written `rayleigh`; with a field,
    `{rayleigh: {coherence_s}}`, it is `RayleighBlocks`, drawn anew in simulated time."""

    kind: ClassVar[str] = "rayleigh"
    form: ClassVar[str] = "rayleigh | {rayleigh: {coherence_s}}"
    # the field of the time-based form, RayleighBlocks
    FIELDS: ClassVar[dict[str, Bounds]] = {"coherence_s": BLOCK}

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> Rayleigh | RayleighBlocks | None:
        if params is None:
            return cls()
        unknown_fields(params, declared(cls), where, fail)
        coherence = number_field(params, "coherence_s", where, fail, cls.FIELDS["coherence_s"])
        if coherence is None or not _within(coherence, MIN_BLOCK_S, MAX_PERIOD_S):
            return None
        return RayleighBlocks(coherence)

    def quantile(self, q: float) -> float:
        return exp1_quantile(q)


@register(FADING)
@dataclass(frozen=True)
class GaussMarkov(Rayleigh):
    """First-order Gauss-Markov (AR(1)) complex gain stepped once per round; stationary
    marginal Exp(1) power. With `step_s` it is `GaussMarkovSteps`, stepped in simulated time."""

    rho: float = 0.9
    """The correlation of the complex gain from one round (or step) to the next."""
    kind: ClassVar[str] = "gauss_markov"
    form: ClassVar[str] = "{gauss_markov: {rho}} | {gauss_markov: {rho, step_s}}"
    # step_s, when given, makes it the time-based form, GaussMarkovSteps
    FIELDS: ClassVar[dict[str, Bounds]] = {"rho": Bounds(minimum=0, below=1, required=True),
                                           "step_s": Bounds(minimum=MIN_BLOCK_S, maximum=MAX_PERIOD_S)}

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail,  # type: ignore[override]
                    context: dict) -> GaussMarkov | GaussMarkovSteps | None:
        unknown_fields(params, declared(cls), where, fail)
        rho = number_field(params, "rho", where, fail, cls.FIELDS["rho"])
        if isinstance(params, dict) and "step_s" in params:
            step = number_field(params, "step_s", where, fail, cls.FIELDS["step_s"])
            if rho is None or step is None or not 0 <= rho < 1 or not _within(step, MIN_BLOCK_S, MAX_PERIOD_S):
                return None
            return GaussMarkovSteps(rho, step)
        return None if rho is None or not 0 <= rho < 1 else cls(rho)


@dataclass(frozen=True)
class RayleighBlocks:
    """|h|^2 ~ Exp(1), drawn anew every `coherence_s` seconds of simulated time (block k
    covers [k coherence_s, (k + 1) coherence_s)); every policy meets the same draw at the
    same instant."""

    coherence_s: float
    """How long each draw holds."""
    kind: ClassVar[str] = "rayleigh"

    def quantile(self, q: float) -> float:
        return exp1_quantile(q)


@dataclass(frozen=True)
class GaussMarkovSteps:
    """The AR(1) complex gain h_k = rho h_{k-1} + sqrt(1 - rho^2) w_k, h_0 = w_0, stepped
    every `step_s` seconds of simulated time: |h|^2 is Exp(1) at every instant, and h's
    correlation k steps apart is rho^k."""

    rho: float
    """The complex gain's correlation from one step to the next."""
    step_s: float
    """How often the gain steps."""
    kind: ClassVar[str] = "gauss_markov"

    def quantile(self, q: float) -> float:
        return exp1_quantile(q)


@register(FADING)
@dataclass(frozen=True)
class Clarke:
    """Clarke's Rayleigh fading, a sum of sinusoids (Zheng and Xiao's model) whose Doppler
    f_d = v f_c / c follows each device's current speed v on its cell's carrier f_c, at
    least `min_doppler_hz` (0: a device that stands still has a frozen channel)."""

    min_doppler_hz: float = 0.0
    """The least Doppler, whatever the device's speed (0: a device standing still keeps its gain)."""
    kind: ClassVar[str] = "clarke"
    form: ClassVar[str] = "clarke | {clarke: {min_doppler_hz}}"
    FIELDS: ClassVar[dict[str, Bounds]] = {"min_doppler_hz": Bounds(minimum=0, maximum=MAX_DOPPLER_HZ)}

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> Clarke | None:
        if params is None:
            return cls()
        unknown_fields(params, declared(cls), where, fail)
        floor = number_field(params, "min_doppler_hz", where, fail, cls.FIELDS["min_doppler_hz"],
                             default=cls.min_doppler_hz)
        return None if floor is None or not _within(floor, 0.0, MAX_DOPPLER_HZ) else cls(floor)

    def quantile(self, q: float) -> float:
        """The envelope is Rayleigh (as the number of sinusoids grows), so |h|^2 is Exp(1)."""
        return exp1_quantile(q)


def _within(value: float, low: float, high: float) -> bool:
    """Whether a field number_field read is in [low, high] (number_field reports it if not)."""
    return low <= value <= high


class FadingProcess:
    """Per round, each device's power gain factor |h|^2 under its current cell's fading.

    Rayleigh draws keep the engine's historical stream (the whole vector of devices drawn
    from the round's key of the "fading" stream), so runs written before dynamics existed
    keep their numbers. Gauss-Markov devices carry their complex gain h from round to round.
    Devices in cells with time-based fading (`RayleighBlocks`, `GaussMarkovSteps`, `Clarke`)
    get 1 here: `ChannelInTime` draws theirs.
    """

    def __init__(self, cell_fading: Sequence[Any], n_devices: int, seed: int) -> None:
        self.cell_fading, self.seed, self.n = list(cell_fading), seed, n_devices
        self.h = np.zeros(n_devices, dtype=complex)
        self.last_round = -1
        self.markov = any(isinstance(f, GaussMarkov) for f in self.cell_fading)

    def power_gains(self, round_index: int, cell_of: np.ndarray) -> np.ndarray:
        """|h|^2 of every device in round `round_index` (rounds visited in order)."""
        # per cell, then looked up per device: no Python object per device (a million phones)
        cell_of = np.asarray(cell_of, dtype=np.int64)
        factor = np.ones(self.n)
        rayleigh = np.array([type(f) is Rayleigh for f in self.cell_fading])[cell_of]
        if rayleigh.any():
            draws = rayleigh_power_gain(keyed_rng(self.seed, "fading", round_index), self.n)
            factor = np.where(rayleigh, draws, factor)
        if self.markov:
            rho = np.array([f.rho if isinstance(f, GaussMarkov) else 0.0 for f in self.cell_fading])[cell_of]
            for r in range(self.last_round + 1, round_index + 1):
                w = rayleigh_complex_gain(keyed_rng(self.seed, "gauss_markov", r), self.n)
                self.h = w if r == 0 else rho * self.h + np.sqrt(1.0 - rho**2) * w
            self.last_round = max(self.last_round, round_index)
            markov = np.array([isinstance(f, GaussMarkov) for f in self.cell_fading])[cell_of]
            factor = np.where(markov, np.abs(self.h) ** 2, factor)
        return factor

    def state_dict(self) -> dict:
        return {"h_re": self.h.real.copy(), "h_im": self.h.imag.copy(), "last_round": self.last_round}

    def load_state_dict(self, state: dict) -> None:
        self.h = np.array(state["h_re"], dtype=float) + 1j * np.array(state["h_im"], dtype=float)
        self.last_round = int(state["last_round"])

