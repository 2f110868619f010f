"""Co-channel interference among the uploads in flight (`network.interference: co_channel`).

Each upload holds a sub-band of its cell's band (simfl.spectrum) from the instant it
starts sending to the instant it stops (ends, is cut, or pauses for a handover or for a
free band), placed by the scenario's allocator. Its SINR at its base station is

    p g / (b N0 + I),   I = sum over the uploads j of OTHER cells of (p_j / b_j) x
                            overlap(j's sub-band, its sub-band) x g_j,c(t),

where g_j,c is j's power gain to this upload's base station c: its mean gain (path loss
and shadowing, `World.link_gain`, or along its walk where it moves) times the fading of
that link. The links to other base stations fade independently of the serving one, as
Rayleigh blocks keyed (seed, cell, block) like `{rayleigh: {coherence_s}}`: blocks of the
cell's coherence time (`coherence_s`, `step_s`, ten channel steps under Clarke) or of
T_max where the cell draws its fading per round, constant across blocks where it has none.
The rate is b log2(1 + SINR) (eq. (7) with I added to the noise).

Uploads of the same cell never overlap (FDMA: the allocator places them in free band).
Whenever an upload starts sending, stops, or moves to another cell or sub-band, the
uploads of other cells whose sub-bands overlap its own are re-rated at that instant: their
current stretch is cut there and their process woken (`wake`), and they take a new one
from the medium as it is then. Between such instants a stretch holds the interferers
fixed; their gains are sampled at its channel steps (where the channel changes in time)
or held (where it does not, up to the next fading block of the receiving cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from simfl.engine.channel import ChannelPath
from simfl.engine.job import UPLOAD, Job
from simfl.network import Network, serving_link
from simfl.dynamics.fading import Clarke, GaussMarkovSteps, NoFading, RayleighBlocks
from simfl.spectrum import Pieces, allocator, band_edges_hz, rate_bps, sinr
from simfl.streams import keyed_rng
from simfl.world import World


class InterferenceMedium:
    """The uplink medium shared by every cell: the `RateSource` of runs with co-channel
    interference. `inner` is the channel in time where the scenario has one."""

    def __init__(self, env: simpy.Environment, world: World, network: Network, seed: int,
                 inner: ChannelPath | None = None) -> None:
        self.env, self.world, self.network, self.inner, self.seed = env, world, network, inner, seed
        self.allocator = allocator(world.constants.allocator)
        self.bands = band_edges_hz(world.carrier_hz, world.bandwidth_hz)
        # job number -> an upload transmitting now; its sub-band, and the cell and width it
        # was placed for, are the job's own (Job.pieces, placed_cell, placed_b_hz), so that
        # an asynchronous checkpoint holds them
        self.sending: dict[int, Job] = {}
        self.wakes: dict[int, simpy.Event] = {}
        self.block_s = np.array([_fading_block_s(f, world, network) for f in world.fading])
        self._blocks: dict[tuple[int, int], np.ndarray] = {}  # (cell, block) -> every device's factor
        self._senders: _Senders | None = None  # the table of what is sending (None: to rebuild)

    # ------------------------------------------------------------ RateSource

    def track(self, job: Job) -> None:
        """A job dispatched, or resumed from a checkpoint: one that was sending goes on
        sending on its sub-band (the others' stretches were computed with it)."""
        if self.inner is not None:
            self.inner.track(job)
        if job.phase == UPLOAD and job.pieces:
            self.sending[job.job] = job
            self._senders = None

    def wake(self, job: Job) -> simpy.Event:
        event = self.wakes.get(job.job)
        if event is None or event.triggered:
            event = self.wakes[job.job] = self.env.event()
        return event

    def release(self, job: Job, now: float) -> None:
        self._stop_sending(job, now)
        self.wakes.pop(job.job, None)
        if self.inner is not None:
            self.inner.release(job, now)

    def chunk(self, job: Job, start_s: float) -> tuple[list[float], list[float], float]:
        """The job's next stretch from `start_s` with the interference of the uploads
        sending now; a job that starts or stops sending, or changes cell or band, here
        re-rates those it overlaps."""
        if self.inner is not None:
            times, gain = self.inner.stretch(job, start_s)
        else:
            job.chunk_paused = False
            times, gain = np.array([start_s, self._held_until_s(job, start_s)]), np.array([job.gain])
        if job.chunk_paused or job.b_hz <= 0:
            self._stop_sending(job, start_s)
            job.chunk_interference = []
            return times.tolist(), [0.0] * (len(times) - 1), float(gain[0])
        if job.job not in self.sending or (job.placed_cell, job.placed_b_hz) != (job.cell, job.b_hz):
            self._stop_sending(job, start_s)
            cell = job.cell
            held = [_pieces(other) for other in self.sending.values() if other.placed_cell == cell]
            band = (float(self.bands[cell, 0]), float(self.bands[cell, 1]))
            job.pieces = [list(piece) for piece in self.allocator.place(band, held, job.b_hz, job.device)]
            job.placed_cell, job.placed_b_hz = cell, job.b_hz
            self.sending[job.job] = job
            self._senders = None
            self._rerate_overlapping(job, start_s)
        interference = self.interference_w(job, times[:-1])
        quality = sinr(job.p_w, gain, job.b_hz, float(self.world.noise_w_per_hz[job.cell]), interference)
        job.chunk_interference = interference.tolist()
        return times.tolist(), rate_bps(job.b_hz, quality).tolist(), float(gain[0])

    # ------------------------------------------------------------ the medium

    def interference_w(self, job: Job, samples: np.ndarray) -> np.ndarray:
        """The interference power at `job`'s base station at each of `samples` from the
        uploads of other cells sending now."""
        cell = job.cell
        rows, shared = self._overlapping(job)
        total = np.zeros(len(samples))
        if not len(rows):
            return total
        table = self._table()
        devices, weight = table.device[rows], table.psd[rows] * shared  # power spectral density over the overlap
        mobility = self.network.mobility
        moving = mobility.moving[devices]
        if moving.any():
            for device, w in zip(devices[moving].tolist(), weight[moving].tolist()):
                position, walked = mobility.path(device, samples)
                _, gain = serving_link(self.world, position, np.full(len(samples), cell), device,
                                       mobility.walk_speed_mps[device] * walked)
                total += w * gain * self.fading(device, cell, samples)
            devices, weight = devices[~moving], weight[~moving]
        if len(devices):
            total += (weight * self.world.link_gain[devices, cell]) @ self.fading(devices, cell, samples)
        return total

    def _overlapping(self, job: Job) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the senders' table (pieces of uploads of other cells) that overlap
        `job`'s sub-band, and by how much (Hz)."""
        table = self._table()
        shared = np.zeros(len(table.lo))
        for lo, hi in job.pieces:
            shared += np.clip(np.minimum(table.hi, hi) - np.maximum(table.lo, lo), 0.0, None)
        rows = np.flatnonzero((shared > 0) & (table.cell != job.placed_cell))
        return rows, shared[rows]

    def _table(self) -> _Senders:
        """Every piece of every upload sending now, as arrays (rebuilt when they change), in
        the order of the jobs' numbers: whatever order they started in, or were resumed in,
        the interference is summed in the same order, to the same bits."""
        if self._senders is None:
            rows = [(lo, hi, job.placed_cell, job.device, job.p_w / job.b_hz, key)
                    for key, job in sorted(self.sending.items()) for lo, hi in job.pieces]
            columns = list(zip(*rows)) if rows else [()] * 6
            self._senders = _Senders(lo=np.array(columns[0], float), hi=np.array(columns[1], float),
                                     cell=np.array(columns[2], np.int64), device=np.array(columns[3], np.int64),
                                     psd=np.array(columns[4], float), key=list(columns[5]))
        return self._senders

    def fading(self, devices: np.ndarray | int, cell: int, samples: np.ndarray) -> np.ndarray:
        """|h|^2 of the links of `devices` to `cell` at `samples`: (len(devices), n) for an
        array, (n,) for one device."""
        one = np.ndim(devices) == 0
        rows = np.atleast_1d(devices)
        length = self.block_s[cell]
        if length == 0:
            factors = np.ones((len(rows), len(samples)))
        else:
            factors = np.stack([self._block(cell, int(math.floor(t / length)))[rows] for t in samples], axis=1)
        return factors[0] if one else factors

    def _block(self, cell: int, block: int) -> np.ndarray:
        found = self._blocks.get((cell, block))
        if found is None:
            if len(self._blocks) > 4096:
                self._blocks.clear()
            found = keyed_rng(self.seed, "interfering_links", cell, block).exponential(1.0, self.world.n_devices)
            self._blocks[(cell, block)] = found
        return found

    def _held_until_s(self, job: Job, start_s: float) -> float:
        """Where a stretch on a channel that does not change in time ends: the next fading
        block of the links into the job's cell, or its deadline."""
        length = self.block_s[job.cell]
        end = job.deadline_s
        if length > 0:
            end = min(end, (math.floor(start_s / length) + 1) * length)
        return end if end > start_s else start_s + (length or 1.0)

    def _stop_sending(self, job: Job, now: float) -> None:
        if job.job in self.sending:
            self._rerate_overlapping(job, now)
            del self.sending[job.job]
            job.pieces, job.placed_cell, job.placed_b_hz = [], -1, 0.0
            self._senders = None

    def _rerate_overlapping(self, job: Job, now: float) -> None:
        """Cut at `now` the stretches of the uploads of other cells that overlap `job`'s
        sub-band, and wake them to take new ones."""
        rows, _ = self._overlapping(job)
        table = self._table()
        for other_key in dict.fromkeys(table.key[r] for r in rows.tolist()):  # a sender once, however many pieces
            _cut(self.sending[other_key], now)
            event = self.wakes.get(other_key)
            if event is not None and not event.triggered:
                event.succeed()


@dataclass(frozen=True)
class _Senders:
    """The pieces of the uploads sending now, one row each."""

    lo: np.ndarray
    hi: np.ndarray
    cell: np.ndarray
    device: np.ndarray
    psd: np.ndarray  # the upload's power over its width, W/Hz
    key: list[int]  # its job's number


def _pieces(job: Job) -> Pieces:
    return [(float(lo), float(hi)) for lo, hi in job.pieces]


def _cut(job: Job, now: float) -> None:
    """End the job's current stretch at `now` (what it sent until then stands)."""
    if job.phase != UPLOAD or not job.chunk_times or job.chunk_times[-1] <= now:
        return
    times = job.chunk_times
    k = int(np.searchsorted(times, now, side="right"))  # times[k-1] <= now < times[k]
    job.chunk_times = times[:k] + [now]
    job.chunk_rates = job.chunk_rates[:k]
    if job.chunk_interference:
        job.chunk_interference = job.chunk_interference[:k]


def _fading_block_s(fading: object, world: World, network: Network) -> float:
    """How long the fading of the links into a cell holds (0: they do not fade)."""
    if isinstance(fading, NoFading):
        return 0.0
    if isinstance(fading, RayleighBlocks):
        return float(fading.coherence_s)
    if isinstance(fading, GaussMarkovSteps):
        return float(fading.step_s)
    if isinstance(fading, Clarke):
        assert network.channel_step_s is not None
        return 10.0 * float(network.channel_step_s)
    return float(world.constants.t_max_s)  # drawn per round
