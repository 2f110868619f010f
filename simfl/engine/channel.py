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
from simfl.engine.job import Job
from simfl.geometry import MIN_DISTANCE_M
from simfl.network import Network
from simfl.radio import mean_gain, uplink_rate_bps
from simfl.world import World

MAX_STEPS = 256  # grid instants per stretch: long enough to amortise a call, short enough to stop early cheaply


class ChannelPath:
    """Rates of the uplinks in flight on a channel that changes in time (`RateSource`)."""

    def __init__(self, world: World, network: Network) -> None:
        assert network.channel_step_s is not None
        self.world, self.network, self.step_s = world, network, float(network.channel_step_s)

    def grid_after(self, time_s: float, count: int) -> np.ndarray:
        """The first `count` grid instants k x step strictly after `time_s`."""
        k = math.floor(time_s / self.step_s) + 1
        while k * self.step_s <= time_s:
            k += 1
        return np.arange(k, k + count, dtype=float) * self.step_s

    def chunk(self, job: Job, start_s: float) -> tuple[list[float], list[float], float]:
        """The job's next stretch from `start_s`: instants, the rate on each interval
        between them, and the channel gain at `start_s`."""
        network, world = self.network, self.world
        device, cell = job.device, job.cell
        grid = self.grid_after(start_s, MAX_STEPS)
        end = min(float(grid[-1]), network.mobility.next_change_s(device, start_s))
        time_channel = network.channel_time
        if time_channel is not None and time_channel.kind[cell] == STEPS:
            end = min(end, time_channel.next_change_s(start_s))
        times = np.concatenate([[start_s], grid[grid < end], [end]])
        samples = times[:-1]
        position, walked = network.mobility.path(device, samples)
        distance = np.maximum(np.linalg.norm(position - world.bs_position_m[cell], axis=1), MIN_DISTANCE_M)
        intercept, slope, std = world.path_loss_params[cell]
        gain = mean_gain(distance, intercept, slope, world.shadowing_z[device], std)
        if time_channel is not None and time_channel.kind[cell] != NONE:
            gain = gain * time_channel.power_factors(samples, device, cell, walked,
                                                     network.mobility.walk_speed_mps[device])
        else:
            gain = gain * job.round_fading
        rates = uplink_rate_bps(job.b_hz, gain, job.p_w, world.noise_w_per_hz[cell])
        return times.tolist(), rates.tolist(), float(gain[0])
