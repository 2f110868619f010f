"""Small-scale fading of each cell: none, Rayleigh (a new independent draw every round) or
Gauss-Markov (h_{t+1} = rho h_t + sqrt(1 - rho^2) w_t with w_t ~ CN(0, 1), so |h|^2 is
Exp(1) in every round, as under Rayleigh, but correlated from round to round with lag-1
correlation rho^2). Fading is constant within a round (block fading)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from simfl.dynamics.registry import WithoutFields, FADING, Fail, number_field, register, unknown_fields
from simfl.radio import rayleigh_power_gain
from simfl.streams import keyed_rng


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
class Rayleigh(WithoutFields):
    """|h|^2 ~ Exp(1), drawn anew for every round."""

    kind: ClassVar[str] = "rayleigh"
    form: ClassVar[str] = "rayleigh"

    def quantile(self, q: float) -> float:
        """F^-1(q) of Exp(1): a plan for this gain misses it with probability q."""
        return -math.log1p(-q)


@register(FADING)
@dataclass(frozen=True)
class GaussMarkov(Rayleigh):
    """First-order Gauss-Markov (AR(1)) complex gain; stationary marginal Exp(1) power."""

    rho: float = 0.9
    kind: ClassVar[str] = "gauss_markov"
    form: ClassVar[str] = "{gauss_markov: {rho}}"

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> GaussMarkov | None:  # type: ignore[override]
        unknown_fields(params, {"rho"}, where, fail)
        rho = number_field(params, "rho", where, fail, minimum=0, below=1)
        return None if rho is None or not 0 <= rho < 1 else cls(rho)


class FadingProcess:
    """Per round, each device's power gain factor |h|^2 under its current cell's fading.

    Rayleigh draws keep the engine's historical stream (the whole vector of devices drawn
    from the round's key of the "fading" stream), so runs written before dynamics existed
    keep their numbers. Gauss-Markov devices carry their complex gain h from round to round.
    """

    def __init__(self, cell_fading: Sequence[Any], n_devices: int, seed: int) -> None:
        self.cell_fading, self.seed, self.n = list(cell_fading), seed, n_devices
        self.h = np.zeros(n_devices, dtype=complex)
        self.last_round = -1
        self.markov = any(isinstance(f, GaussMarkov) for f in self.cell_fading)

    def power_gains(self, round_index: int, cell_of: np.ndarray) -> np.ndarray:
        """|h|^2 of every device in round `round_index` (rounds visited in order)."""
        kinds = [self.cell_fading[k] for k in cell_of]
        factor = np.ones(self.n)
        if any(type(f) is Rayleigh for f in kinds):
            draws = rayleigh_power_gain(keyed_rng(self.seed, "fading", round_index), self.n)
            rayleigh = np.array([type(f) is Rayleigh for f in kinds])
            factor = np.where(rayleigh, draws, factor)
        if self.markov:
            for r in range(self.last_round + 1, round_index + 1):
                w = _complex_normal(keyed_rng(self.seed, "gauss_markov", r), self.n)
                rho = np.array([f.rho if isinstance(f, GaussMarkov) else 0.0 for f in kinds])
                self.h = w if r == 0 else rho * self.h + np.sqrt(1.0 - rho**2) * w
            self.last_round = max(self.last_round, round_index)
            markov = np.array([isinstance(f, GaussMarkov) for f in kinds])
            factor = np.where(markov, np.abs(self.h) ** 2, factor)
        return factor

    def state_dict(self) -> dict:
        return {"h_re": self.h.real.tolist(), "h_im": self.h.imag.tolist(), "last_round": self.last_round}

    def load_state_dict(self, state: dict) -> None:
        self.h = np.array(state["h_re"], dtype=float) + 1j * np.array(state["h_im"], dtype=float)
        self.last_round = int(state["last_round"])


def _complex_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """CN(0, 1): real and imaginary parts N(0, 1/2)."""
    return (rng.normal(size=n) + 1j * rng.normal(size=n)) / math.sqrt(2.0)
