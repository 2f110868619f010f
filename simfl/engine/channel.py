"""The channel an upload meets while it runs: where the channel changes in time
(`network.channel_step_s`, or fading in simulated time), the rate source of the jobs.

An upload's rate is re-evaluated on the grid of instants k x step (the same grid for
every run and policy, so they all sample the channel at the same instants), at the
device's position then (path loss to the cell it sends to, from where it has walked)
and with its fading at that instant (Clarke, Rayleigh blocks, Gauss-Markov steps;
per-round kinds keep the draw of the job's round); the rate holds until the next grid
instant. The first rate is the one at the upload's own start, its gain what events.csv
records. A stretch handed to the job ends at the first of `MAX_STEPS` grid instants, the
device's next change of velocity (end of a leg or of a pause, so that within a stretch
its position moves linearly) and the next Gauss-Markov step.
"""

from __future__ import annotations

import math

import numpy as np

from simfl.dynamics.channel_time import NONE, STEPS
from simfl.engine.job import DONE, UPLOAD, Job
from simfl.network import Network, serving_link
from simfl.radio import uplink_rate_bps
from simfl.world import World

MAX_STEPS = 256  # grid instants per stretch: long enough to amortise a call, short enough to stop early cheaply


class ChannelPath:
    """Rates of the uplinks in flight on a channel that changes in time (`RateSource`)."""

    def __init__(self, world: World, network: Network) -> None:
        assert network.channel_step_s is not None
        self.world, self.network, self.step_s = world, network, float(network.channel_step_s)
        self.jobs: list[Job] = []  # the jobs dispatched and not known to be done

    def grid_after(self, time_s: float, count: int) -> np.ndarray:
        """The first `count` grid instants k x step strictly after `time_s`."""
        k = math.floor(time_s / self.step_s) + 1
        while k * self.step_s <= time_s:
            k += 1
        return np.arange(k, k + count, dtype=float) * self.step_s

    def track(self, job: Job) -> None:
        """A job dispatched: it holds its sub-band in its cell until it ends."""
        self.jobs = [j for j in self.jobs if j.phase != DONE]
        self.jobs.append(job)

    def release(self, job: Job, now: float) -> None:
        """Nothing to do: a done job is dropped at the next dispatch (`track`)."""

    def wake(self, job: Job) -> None:
        """None: an upload's rate changes only where its stretch ends."""
        return None

    def free_band_hz(self, cell: int, but: Job) -> float:
        """What the jobs in flight in `cell` (other than `but`) leave of its band."""
        held = sum(j.b_hz for j in self.jobs if j is not but and j.phase != DONE and j.cell == cell)
        return max(float(self.world.bandwidth_hz[cell]) - held, 0.0)

    def _hand_over(self, job: Job, time_s: float, cell: int) -> None:
        """The job's device sends to `cell` from `time_s` on, on a sub-band from its free band."""
        job.cell, job.handovers = int(cell), job.handovers + 1
        if job.first_handover_s == math.inf:
            job.first_handover_s = float(time_s)
        job.b_hz = min(job.planned_b_hz, self.free_band_hz(job.cell, job))

    def _next_handover(self, job: Job, start_s: float) -> float | None:
        """The instant of the device's next handover within its current segment of walk,
        after those due at `start_s` itself have been made (a crossing at the very end of
        the window before is found there, at its start, from this one)."""
        serving, device = self.network.serving, job.device
        end = self.network.mobility.next_change_s(device, start_s)
        while True:
            handover = serving.peek(device, start_s, end)
            if handover is None or handover[0] > start_s:
                return None if handover is None else handover[0]
            serving.commit(device, start_s, start_s, handover)
            self._hand_over(job, handover[0], handover[1])

    def chunk(self, job: Job, start_s: float) -> tuple[list[float], list[float], float]:
        """The job's next stretch from `start_s`: instants, the rate on each interval
        between them (on noise alone, eq. (7)), and the channel gain at `start_s`."""
        times, gain = self.stretch(job, start_s)
        rates = (uplink_rate_bps(job.b_hz, gain, job.p_w, self.world.noise_w_per_hz[job.cell])
                 if not job.chunk_paused else np.zeros(len(gain)))
        return times.tolist(), rates.tolist(), float(gain[0])

    def stretch(self, job: Job, start_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The job's next stretch from `start_s`: instants t_0 = start_s < ... < t_n and the
        serving link's power gain on each interval (sampled at its start); the job's
        `chunk_paused` says whether it sends in it. A moving device's handovers up to
        `start_s` move the job to its new cell, with a sub-band from that cell's free band
        (re-taken at every stretch, up to its planned share: nothing while none is free);
        one at `start_s` itself (the previous stretch ended there) interrupts the upload
        for `network.handover.interruption_s` (a stretch at rate 0, drawing no power)."""
        network, world = self.network, self.world
        device = job.device
        moving, ahead = bool(network.mobility.moving[device]), None
        if moving:
            serving = network.serving
            for instant, cell in serving.advance(device, start_s):
                self._hand_over(job, instant, cell)
            ahead = self._next_handover(job, start_s)
            if job.handovers and job.last_handover_s != serving.handed_over_s[device]:
                job.last_handover_s = float(serving.handed_over_s[device])
                pause = serving.interruption_s
                if pause > 0 and job.last_handover_s == start_s and job.phase == UPLOAD:
                    job.chunk_paused = True
                    return np.array([start_s, start_s + pause]), np.array([job.gain])
        cell = job.cell
        if cell != job.start_cell:  # a guest in this cell: what its band has free now, up to the planned share
            job.b_hz = min(job.planned_b_hz, self.free_band_hz(cell, job))
        job.chunk_paused = job.b_hz <= 0  # no band free: it sends nothing, drawing no power, until some is
        grid = self.grid_after(start_s, 1 if job.chunk_paused else MAX_STEPS)  # waiting: look again every step
        end = min(float(grid[-1]), network.mobility.next_change_s(device, start_s))
        time_channel = network.channel_time
        if time_channel is not None and time_channel.kind[cell] == STEPS:
            end = min(end, time_channel.next_change_s(start_s))
        if ahead is not None and ahead < end:
            end = ahead  # the stretch stops where the device hands over
        times = np.concatenate([[start_s], grid[grid < end], [end]])
        samples = times[:-1]
        position, walked = network.mobility.path(device, samples)
        distance, gain = serving_link(world, position, np.full(len(samples), cell), device,
                                      network.mobility.walk_speed_mps[device] * walked)
        if start_s == job.compute_end_s:  # the upload's first stretch: where its recorded gain is taken
            job.distance_m = float(distance[0])
        if time_channel is not None and time_channel.kind[cell] != NONE:
            gain = gain * time_channel.power_factors(samples, device, cell, walked,
                                                     network.mobility.walk_speed_mps[device])
        else:
            gain = gain * job.round_fading
        return times, gain
