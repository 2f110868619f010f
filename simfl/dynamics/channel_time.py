"""The channel as a function of simulated time: the time-based fading kinds of
simfl.dynamics.fading (`RayleighBlocks`, `GaussMarkovSteps`, `Clarke`), evaluated at any
instant for any devices.

How the engine is meant to use it
---------------------------------
One `ChannelInTime.for_world(world, seed)` per run, beside `FadingProcess` (which keeps the
per-round kinds: none, bare `rayleigh`, `{gauss_markov: {rho}}`; this object gives their
devices a factor of 1, and `FadingProcess` gives 1 to the devices here, so the engine
multiplies the two).

- `power_gains_at(t, devices, cell_of, speed_mps)`: |h|^2 of those devices at time t. Call
  it at every channel step of a transfer in flight and at every instant a device's speed
  or serving cell changes. `cell_of[j]` and `speed_mps[j]` are what device `devices[j]`
  held since its previous query (so the caller queries at each change, passing the
  values that held until then); `advance` does the same bookkeeping without computing
  gains. Each device's times must not decrease (ValueError otherwise).
- `default_step_s(max_speed_mps)`: a tenth of the shortest coherence time in use (None
  when nothing here changes in time): the channel step.
- `next_change_s(t)`: the next instant a block or step begins (inf without them), where a
  transfer's rate can be updated exactly.
- `state_dict()` / `load_state_dict()`: a snapshot from which a run continues bit for bit.

Common random numbers: every draw is keyed by (seed, stream, cell, block) or by (seed,
device), and the Gauss-Markov and Clarke states are advanced by arithmetic that depends
only on the instants of the changes, so every policy of a comparison meets the same gain
at the same instant, however often and in whatever order it asked before.

A handover starts a new Rayleigh block and a new Gauss-Markov process (the link to
another base station fades independently); a Clarke device keeps its sinusoids and its
accumulated phase, and only its carrier, hence its Doppler, changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from simfl.dynamics.fading import Clarke, GaussMarkovSteps, RayleighBlocks
from simfl.radio import coherence_time_s, doppler_hz, rayleigh_complex_gain
from simfl.streams import keyed_rng

if TYPE_CHECKING:
    from simfl.world import World

# M, the sinusoids per quadrature. Zheng and Xiao's autocorrelations are exact for any M;
# the envelope's law and the squared envelope's autocorrelation converge as M grows, "even
# when the number of sinusoids is as small as eight" (their abstract). Twice that keeps the
# envelopes of 4,000 devices at one instant indistinguishable from Rayleigh (a KS test,
# tests/test_channel_time.py), for 2M = 32 cosines per device and query.
SINUSOIDS = 16
# At t = 0 all of a device's sinusoids have the phase phi, and |h(0)|^2 = 2 cos^2(phi) x
# |sum_n exp(j psi_n)|^2 / M is not Exp(1); each device starts its Doppler phase at a uniform
# point of its first ORIGIN_CYCLES cycles, where even the slowest relative phase of two
# sinusoids (cos(alpha_1) - cos(alpha_2), about 0.01) has turned many times over. The
# autocorrelations depend on phase differences only, so they are unchanged.
ORIGIN_CYCLES = 1e4

NONE, BLOCKS, STEPS, CLARKE = 0, 1, 2, 3  # what a cell's fading is to this object


@dataclass(frozen=True)
class ClarkeSinusoids:
    """Each device's draw of Zheng and Xiao's model, arrays indexed by device.

    `freq[:, 0]` = cos(alpha_n), `freq[:, 1]` = sin(alpha_n), alpha_n = (2 pi n - pi +
    theta) / (4M), n = 1..M; `amp[:, 0]` = sqrt(2/M) cos(psi_n), `amp[:, 1]` = sqrt(2/M)
    sin(psi_n) (float32, as the cosines they multiply); `phase_cycles` = phi / (2 pi);
    theta, phi and psi_n independent and uniform on [-pi, pi); `origin_cycles` the Doppler
    phase each device starts at, in cycles.
    """

    freq: np.ndarray  # (I, 2, M)
    amp: np.ndarray  # (I, 2, M) float32
    phase_cycles: np.ndarray  # (I,)
    origin_cycles: np.ndarray  # (I,)

    @classmethod
    def draw(cls, seed: int, n_devices: int, m: int = SINUSOIDS) -> ClarkeSinusoids:
        """Device i's draw from the keyed stream (seed, "clarke", i): theta, phi, psi_1..M,
        then its phase origin."""
        freq, amp = np.empty((n_devices, 2, m)), np.empty((n_devices, 2, m), dtype=np.float32)
        phi, origin = np.empty(n_devices), np.empty(n_devices)
        n = np.arange(1, m + 1)
        for i in range(n_devices):
            rng = keyed_rng(seed, "clarke", i)
            theta, phi[i] = rng.uniform(-math.pi, math.pi, size=2)
            psi = rng.uniform(-math.pi, math.pi, size=m)
            origin[i] = rng.uniform(0.0, ORIGIN_CYCLES)
            alpha = (2.0 * math.pi * n - math.pi + theta) / (4 * m)
            freq[i] = np.cos(alpha), np.sin(alpha)
            amp[i] = math.sqrt(2.0 / m) * np.cos(psi), math.sqrt(2.0 / m) * np.sin(psi)
        return cls(freq, amp, phi / (2.0 * math.pi), origin)

    def rows(self, devices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """freq, amp and phase_cycles of `devices` (gathered as 2-D rows: numpy's fancy
        indexing is several times slower on the 3-D arrays)."""
        n, _, m = self.freq.shape
        return (self.freq.reshape(n, -1)[devices].reshape(-1, 2, m), self.amp.reshape(n, -1)[devices].reshape(-1, 2, m),
                self.phase_cycles[devices])


def sum_of_sinusoids(doppler_cycles: np.ndarray, freq: np.ndarray, amp: np.ndarray,
                     phase_cycles: np.ndarray) -> np.ndarray:
    """Rayleigh fading h = X_c + j X_s by Zheng and Xiao's improved model ("Simulation
    models with correct statistical properties for Rayleigh fading channels", IEEE Trans.
    Commun. 51(6), 2003), with the Doppler phase Phi = 2 pi x `doppler_cycles` (the
    integral of 2 pi f_d) in place of w_d t, so that f_d may change with the speed:

        X_c = sqrt(2/M) sum_n cos(psi_n) cos(Phi cos(alpha_n) + phi)
        X_s = sqrt(2/M) sum_n sin(psi_n) cos(Phi sin(alpha_n) + phi)

    The paper's 2/sqrt(M) gives E|h|^2 = 2; sqrt(2/M) gives 1. Over the draws, E[h(Phi +
    D) h*(Phi)] = J0(D) exactly for any M, J0(2 pi f_d tau) at a constant Doppler: the
    psi_n make every cross term vanish, and alpha_n is uniform on the n-th of M equal slices
    of [0, pi/2), so the mean over n of E cos(D cos alpha_n) is (2/pi) int_0^{pi/2}
    cos(D cos a) da = J0(D) (and likewise with sin). Arrays: cycles (m,), freq and amp
    (m, 2, M), phi / 2 pi (m,).
    """
    turns = np.multiply(doppler_cycles[:, None, None], freq)
    turns += phase_cycles[:, None, None]
    # whole turns dropped in float64 (exact to ~1e-12 even after 1e6 cycles); the cosine
    # itself in float32, which numpy vectorises (~30x faster than its float64 cosine): an
    # error of ~1e-6 in h, far below any effect of h on a rate
    turns -= np.rint(turns)
    angle = turns.astype(np.float32)
    angle *= np.float32(2.0 * math.pi)
    x = np.einsum("ijk,ijk->ij", amp, np.cos(angle, out=angle))
    return x[:, 0] + 1j * x[:, 1]


class ChannelInTime:
    """Each device's small-scale fading gain at any instant, under its cell's time-based
    fading (see the module docstring for how to call it).

    State per device: the last query's time and cell; the Gauss-Markov gain and its step
    index; for Clarke, the Doppler phase (in cycles) at the last change of its Doppler,
    that instant and the Doppler f_d since, so that the phase at t is anchor + f_d (t -
    t_anchor) however many queries fell in between.
    """

    def __init__(self, cell_fading: Sequence[Any], carrier_hz: ArrayLike, n_devices: int, seed: int) -> None:
        self.cell_fading, self.seed, self.n = list(cell_fading), int(seed), int(n_devices)
        self.carrier_hz = np.asarray(carrier_hz, dtype=float)
        self.kind = np.array([_kind(f) for f in self.cell_fading], dtype=np.int64)
        self.block_s = np.array([f.coherence_s if isinstance(f, RayleighBlocks) else f.step_s
                                 if isinstance(f, GaussMarkovSteps) else np.nan for f in self.cell_fading])
        self.rho = np.array([f.rho if isinstance(f, GaussMarkovSteps) else np.nan for f in self.cell_fading])
        self.min_doppler_hz = np.array([f.min_doppler_hz if isinstance(f, Clarke) else 0.0 for f in self.cell_fading])
        self.sinusoids = ClarkeSinusoids.draw(self.seed, self.n) if (self.kind == CLARKE).any() else None
        n = self.n
        self.t_last = np.zeros(n)
        self.cell_last = np.full(n, -1, dtype=np.int64)  # -1: not queried yet
        self.gm_re, self.gm_im = np.zeros(n), np.zeros(n)
        self.gm_step = np.zeros(n, dtype=np.int64)
        self.anchor_cycles = np.zeros(n) if self.sinusoids is None else self.sinusoids.origin_cycles.copy()
        self.t_anchor = np.zeros(n)
        self.f_d_hz = np.zeros(n)
        self._noise: dict[tuple[str, int, int], np.ndarray] = {}

    @classmethod
    def for_world(cls, world: World, seed: int) -> ChannelInTime:
        """The channel of `world`'s cells (their fading and carriers) for its devices."""
        return cls(world.fading, world.carrier_hz, world.n_devices, seed)

    # ------------------------------------------------------------------ what the engine calls

    def time_based(self, cell_of: ArrayLike) -> np.ndarray:
        """Which devices, in cells `cell_of`, have their fading drawn here (the rest: FadingProcess)."""
        return self.kind[np.asarray(cell_of, dtype=np.int64)] != NONE

    def power_gains_at(self, t_s: float, devices: ArrayLike, cell_of: ArrayLike, speed_mps: ArrayLike) -> np.ndarray:
        """|h|^2 of `devices` (distinct indices) at time `t_s`; `cell_of` and `speed_mps`
        (aligned with `devices`) are the serving cell and speed each held since its previous
        query. 1 for devices whose cell's fading is per round or none."""
        h = self.gains_at(t_s, devices, cell_of, speed_mps)
        return h.real**2 + h.imag**2

    def gains_at(self, t_s: float, devices: ArrayLike, cell_of: ArrayLike, speed_mps: ArrayLike) -> np.ndarray:
        """The complex gains h behind `power_gains_at` (1 for the devices not handled here)."""
        d, cells = self._advance(t_s, devices, cell_of, speed_mps)
        kind = self.kind[cells]
        h = np.ones(len(d), dtype=complex)
        for c in np.unique(cells[kind == BLOCKS]):
            j = np.flatnonzero(cells == c)
            h[j] = self._draw("rayleigh_blocks", int(c), _block(t_s, self.block_s[c]))[d[j]]
        steps = np.flatnonzero(kind == STEPS)
        h[steps] = self.gm_re[d[steps]] + 1j * self.gm_im[d[steps]]
        clarke = np.flatnonzero(kind == CLARKE)
        if len(clarke):
            i, s = d[clarke], self.sinusoids
            assert s is not None
            cycles = self.anchor_cycles[i] + self.f_d_hz[i] * (t_s - self.t_anchor[i])
            h[clarke] = sum_of_sinusoids(cycles, *s.rows(i))
        return h

    def power_factors(self, times_s: ArrayLike, devices: ArrayLike, cell_of: ArrayLike, walked_s: ArrayLike,
                      walk_speed_mps: ArrayLike) -> np.ndarray:
        """|h|^2 of `devices[j]` in cell `cell_of[j]` at `times_s[j]` (arrays aligned, or
        scalars), what the engine asks: 1 for per-round kinds. Clarke's Doppler phase is
        computed from the time each device has spent walking since t = 0 (`walked_s`, at
        its `walk_speed_mps`) and standing (the rest): origin + max(v f_c / c, f_min)
        walked + f_min (t - walked), on its cell's carrier, the same integral of f_d as
        `power_gains_at` keeps, as a function of time alone (no query order). Rayleigh
        blocks are keyed on the instant's block; Gauss-Markov steps go through the stepped
        state (each device's instants must not decrease)."""
        t, d, cells, walked, speed = np.broadcast_arrays(np.asarray(times_s, float), np.asarray(devices, np.int64),
                                                         np.asarray(cell_of, np.int64), np.asarray(walked_s, float),
                                                         np.asarray(walk_speed_mps, float))
        out = np.ones(t.shape)
        kind = self.kind[cells]
        clarke = np.flatnonzero(kind == CLARKE)
        if len(clarke):
            s = self.sinusoids
            assert s is not None
            c, i = cells[clarke], d[clarke]
            f_min = self.min_doppler_hz[c]
            f_walk = np.maximum(doppler_hz(speed[clarke], self.carrier_hz[c]), f_min)
            cycles = s.origin_cycles[i] + f_walk * walked[clarke] + f_min * (t[clarke] - walked[clarke])
            h = sum_of_sinusoids(cycles, *s.rows(i))
            out[clarke] = h.real**2 + h.imag**2
        blocks = np.flatnonzero(kind == BLOCKS)
        for j in blocks.tolist():
            cell = int(cells[j])
            h = self._draw("rayleigh_blocks", cell, _block(float(t[j]), float(self.block_s[cell])))[d[j]]
            out[j] = h.real**2 + h.imag**2
        steps = np.flatnonzero(kind == STEPS)
        for instant in np.unique(t[steps]):
            j = steps[t[steps] == instant]
            out[j] = self.power_gains_at(float(instant), d[j], cells[j], speed[j])
        return out

    def advance(self, t_s: float, devices: ArrayLike, cell_of: ArrayLike, speed_mps: ArrayLike) -> None:
        """Bring `devices` to time `t_s`, each having held `cell_of` at `speed_mps` since its
        previous query: for a change of speed or cell that nobody needs a gain at."""
        self._advance(t_s, devices, cell_of, speed_mps)

    def _advance(self, t_s: float, devices: ArrayLike, cell_of: ArrayLike,
                 speed_mps: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(devices, dtype=np.int64).reshape(-1)
        cells = np.asarray(cell_of, dtype=np.int64).reshape(-1)
        late = self.t_last[d] > t_s
        if late.any():
            i = int(d[np.argmax(late)])
            raise ValueError(f"device {i} was queried at {float(self.t_last[i])!r} s, "
                             f"then at the earlier {float(t_s)!r} s")
        kind = self.kind[cells]
        for c in np.unique(cells[kind == STEPS]):
            self._step_gauss_markov(t_s, d[cells == c], int(c))
        if self.sinusoids is not None:
            self._advance_doppler_phase(d, cells, np.asarray(speed_mps, dtype=float).reshape(-1))
        self.t_last[d] = t_s
        self.cell_last[d] = cells
        return d, cells

    def next_change_s(self, t_s: float) -> float:
        """The first instant after `t_s` at which a Rayleigh block or a Gauss-Markov step
        begins in some cell; inf when no cell has them (Clarke changes continuously: step
        it with `default_step_s`)."""
        lengths = {float(s) for s in self.block_s[np.isin(self.kind, (BLOCKS, STEPS))]}
        return min((_next_block_start(t_s, s) for s in lengths), default=math.inf)

    def default_step_s(self, max_speed_mps: float) -> float | None:
        """A tenth of the shortest coherence time among the cells' time-based fading:
        coherence_s, step_s, and Clarke's 0.423 / f_d at the fastest device's Doppler on
        the cell's carrier (at least min_doppler_hz). None when nothing here changes in
        time (no time-based fading, or Clarke without Doppler)."""
        times = list(self.block_s[np.isin(self.kind, (BLOCKS, STEPS))])
        clarke = self.kind == CLARKE
        f_d = np.maximum(doppler_hz(max_speed_mps, self.carrier_hz[clarke]), self.min_doppler_hz[clarke])
        times += list(coherence_time_s(f_d))
        finite = [float(x) for x in times if math.isfinite(x)]
        return min(finite) / 10.0 if finite else None

    def state_dict(self) -> dict[str, np.ndarray]:
        """The per-device state as arrays (copies; the checkpoint writes them as JSON lists,
        in which floats round-trip exactly)."""
        return {"t_last": self.t_last.copy(), "cell_last": self.cell_last.copy(), "gm_re": self.gm_re.copy(),
                "gm_im": self.gm_im.copy(), "gm_step": self.gm_step.copy(),
                "anchor_cycles": self.anchor_cycles.copy(), "t_anchor": self.t_anchor.copy(),
                "f_d_hz": self.f_d_hz.copy()}

    def load_state_dict(self, state: dict[str, list]) -> None:
        self.t_last = np.array(state["t_last"], dtype=float)
        self.cell_last = np.array(state["cell_last"], dtype=np.int64)
        self.gm_re, self.gm_im = np.array(state["gm_re"], dtype=float), np.array(state["gm_im"], dtype=float)
        self.gm_step = np.array(state["gm_step"], dtype=np.int64)
        self.anchor_cycles = np.array(state["anchor_cycles"], dtype=float)
        self.t_anchor = np.array(state["t_anchor"], dtype=float)
        self.f_d_hz = np.array(state["f_d_hz"], dtype=float)

    # ------------------------------------------------------------------ the kinds' dynamics

    def _step_gauss_markov(self, t_s: float, d: np.ndarray, c: int) -> None:
        """Step the AR(1) gains of devices `d`, in Gauss-Markov cell `c` since their last
        query, to the step of `t_s`. A device new to the cell starts afresh, h = w, at the
        step it entered in."""
        step_s, rho = float(self.block_s[c]), float(self.rho[c])
        entered = d[self.cell_last[d] != c]
        entered_in = np.floor(self.t_last[entered] / step_s).astype(np.int64)  # as _block counts
        for j0 in np.unique(entered_in):
            i = entered[entered_in == j0]
            w = self._draw("gauss_markov_steps", c, int(j0))[i]
            self.gm_re[i], self.gm_im[i], self.gm_step[i] = w.real, w.imag, j0
        innovation = math.sqrt(1.0 - rho * rho)
        target = _block(t_s, step_s)
        for j in range(int(self.gm_step[d].min()) + 1, target + 1):
            i = d[self.gm_step[d] < j]
            w = self._draw("gauss_markov_steps", c, j)[i]
            self.gm_re[i] = rho * self.gm_re[i] + innovation * w.real
            self.gm_im[i] = rho * self.gm_im[i] + innovation * w.imag
        self.gm_step[d] = np.maximum(self.gm_step[d], target)

    def _advance_doppler_phase(self, d: np.ndarray, cells: np.ndarray, speed_mps: np.ndarray) -> None:
        """Set each device's Doppler rate to the one it held since its last query; where the
        rate changed, move the anchor to that query (the instant of the change), so the
        phase is continuous and the same whatever queries came between two changes."""
        clarke = self.kind[cells] == CLARKE
        f_d = np.maximum(doppler_hz(speed_mps, self.carrier_hz[cells]), self.min_doppler_hz[cells])
        f_d = np.where(clarke, f_d, 0.0)  # outside Clarke cells the phase rests
        changed = f_d != self.f_d_hz[d]
        i = d[changed]
        self.anchor_cycles[i] = self.anchor_cycles[i] + self.f_d_hz[i] * (self.t_last[i] - self.t_anchor[i])
        self.t_anchor[i] = self.t_last[i]
        self.f_d_hz[i] = f_d[changed]

    def _draw(self, stream: str, cell: int, block: int) -> np.ndarray:
        """CN(0, 1) for every device, keyed (seed, stream, cell, block); the last few kept."""
        key = (stream, cell, block)
        if key not in self._noise:
            if len(self._noise) >= 64:
                del self._noise[next(iter(self._noise))]
            self._noise[key] = rayleigh_complex_gain(keyed_rng(self.seed, stream, cell, block), self.n)
        return self._noise[key]


def time_based(fading: Any) -> bool:
    """Whether a cell's fading changes in simulated time (this object's), not per round."""
    return _kind(fading) != NONE


def _kind(fading: Any) -> int:
    if isinstance(fading, RayleighBlocks):
        return BLOCKS
    if isinstance(fading, GaussMarkovSteps):
        return STEPS
    return CLARKE if isinstance(fading, Clarke) else NONE


def _block(t_s: float, length_s: float) -> int:
    """The block of length `length_s` that instant `t_s` falls in: floor(t / length)."""
    return math.floor(t_s / length_s)


def _next_block_start(t_s: float, length_s: float) -> float:
    """The first float after `t_s` in a later block than `t_s` (as `_block` counts them):
    (k + 1) length, moved by an ulp or two where rounding puts it in the wrong block."""
    k = _block(t_s, length_s)
    x = (k + 1) * length_s
    while _block(x, length_s) <= k:
        x = math.nextafter(x, math.inf)
    while _block(math.nextafter(x, -math.inf), length_s) > k:
        x = math.nextafter(x, -math.inf)
    return x


__all__ = ["CLARKE", "ChannelInTime", "time_based", "ClarkeSinusoids", "ORIGIN_CYCLES", "SINUSOIDS", "sum_of_sinusoids"]
