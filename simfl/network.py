"""The live network of a run: where the devices are, which cell serves them, their channel
this round, who is online and how much battery each has left.

The World is what was placed before the run; the Network moves it through simulated time
with the dynamics the scenario chose (simfl.dynamics). What the server knows at a round's
start is a `RoundState`, which the policy's round hooks receive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simfl.aggregation import Aggregation
from simfl.dynamics.availability import AlwaysOn, AvailabilityTimeline
from simfl.dynamics.channel_time import ChannelInTime, time_based
from simfl.dynamics.fading import FadingProcess
from simfl.dynamics.mobility import MobilityTimeline, Static
from simfl.serving import ServingCells
from simfl.world import World


@dataclass(frozen=True)
class RoundState:
    """What the server knows at the start of a round. Arrays are indexed by device.

    `gain` is this round's realised channel power gain (block fading: constant within the
    round, known to the server through channel feedback); `mean_gain` is path loss and
    shadowing only. `available` = online and battery left; `online_until_s` is when each
    online device's current online period ends (inf if it never does), which the engine
    uses and a policy may not rely on. `selected` is filled in once `select` has run.
    """

    round: int
    time_s: float
    version: int
    available: np.ndarray
    online_until_s: np.ndarray
    position_m: np.ndarray
    cell_of: np.ndarray
    distance_m: np.ndarray
    mean_gain: np.ndarray
    gain: np.ndarray
    battery_j: np.ndarray
    selected: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    aggregation: Aggregation = Aggregation()  # the mode the server runs (its `aggregate` default follows it)
    band_free_hz: np.ndarray | None = None  # per cell, the band not held by jobs in flight (None: all of it)
    # per device, the interference power spectral density its base station measured over its
    # last upload (mean interference power / its sub-band), nan before any; None: the network
    # has no interference
    interference_w_per_hz: np.ndarray | None = None

    def planning_gain(self, noise_w_per_hz: np.ndarray, outage: float = 0.0) -> np.ndarray:
        """This round's gains scaled by N0 / (N0 + I/b): with interference spread evenly
        over a device's sub-band, b log2(1 + p g / (b N0 + I)) is eq. (7) at this gain, so
        a planner that knows only noise plans on the interference it measured.
        `noise_w_per_hz`: per device, its cell's N0.

        I/b is what the device met over its last upload, and for a device that has not
        uploaded yet the median of what the devices of its cell met over theirs (0 where none
        has). With an outage probability q > 0 (optimisation.outage) it is the (1 - q)-quantile
        of its cell's for every device, so that about q of the uploads meet more than was
        planned for: an upload's sub-band is placed anew each time, so what one device met
        last is one draw of what its cell's uploads meet."""
        if self.interference_w_per_hz is None:
            return self.gain
        noise = np.asarray(noise_w_per_hz, float)
        measured = self.interference_w_per_hz
        interference = np.where(np.isfinite(measured), measured, 0.0)
        for cell in np.unique(self.cell_of):
            members = self.cell_of == cell
            known = measured[members][np.isfinite(measured[members])]
            if not len(known):
                continue
            if outage > 0:
                interference[members] = np.quantile(known, 1.0 - outage)
            else:
                interference[members & ~np.isfinite(measured)] = np.median(known)
        return self.gain * (noise / (noise + interference))

    @property
    def n_devices(self) -> int:
        return len(self.available)


class Network:
    """The dynamic state of cells and devices; `observe` advances it to a round's start."""

    def __init__(self, world: World, seed: int) -> None:
        self.world, self.seed = world, seed
        n = world.n_devices
        self.availability = AvailabilityTimeline(world.availability or [AlwaysOn()] * n, seed)
        home = world.home_cell if len(world.home_cell) == n else world.cell_of
        self.mobility = MobilityTimeline(world.mobility or [Static()] * n, world.position_m,
                                         world.bs_position_m[home] if len(world.bs_position_m) else world.position_m,
                                         world.cell_radius_m[home] if len(world.cell_radius_m) else np.ones(n), seed,
                                         cell_centre_m=world.bs_position_m, cell_radius_m=world.cell_radius_m)
        self.serving = ServingCells(world, self.mobility, world.cell_of)
        self.fading = FadingProcess(world.fading, n, seed)
        self.channel_time = ChannelInTime.for_world(world, seed) if any(map(time_based, world.fading)) else None
        fastest = float(self.mobility.walk_speed_mps.max(initial=0.0))
        # how often a transfer's rate is re-evaluated while it runs (None: never, the paper's block fading)
        self.channel_step_s: float | None = world.constants.channel_step_s or (
            self.channel_time.default_step_s(fastest) if self.channel_time is not None else None)
        self.battery_j = (world.battery_j.astype(float).copy() if len(world.battery_j) == n else np.full(n, np.inf))
        self.hears_interference = world.constants.interference != "none"
        self.interference_w_per_hz = np.full(n, np.nan)  # measured over each device's last upload (nan: none yet)

    def observe(self, time_s: float, round_index: int, version: int, fading_key: int | None = None) -> RoundState:
        """Move every dynamic to `time_s` and return what the server sees. Per-round fading
        is drawn for `fading_key` (default: the round)."""
        w = self.world
        if self.mobility.static:
            position, cell_of, distance, mean_gain = w.position_m, w.cell_of, w.distance_m, w.gain
        elif self.serving.strongest_rule:
            position = self.mobility.positions(time_s)
            cell_of, distance, mean_gain = w.serving(position, self.walked_m(time_s))
            still = ~self.mobility.moving  # static devices keep the world's own numbers, bit for bit
            cell_of[still], distance[still], mean_gain[still] = w.cell_of[still], w.distance_m[still], w.gain[still]
            self.serving.cell = cell_of.copy()
            self.serving.known_s[self.mobility.moving] = time_s
        else:  # hysteresis or a time to trigger: each device keeps its cell until the rule hands it over
            self.serving.advance_all(time_s)
            position = self.mobility.positions(time_s)
            cell_of = self.serving.cell.copy()
            distance, mean_gain = serving_link(w, position, cell_of, walked_m=self.walked_m(time_s))
            still = ~self.mobility.moving
            distance[still], mean_gain[still] = w.distance_m[still], w.gain[still]
        gain = mean_gain * self.fading.power_gains(round_index if fading_key is None else fading_key, cell_of)
        if self.channel_time is not None:
            gain = gain * self.channel_time.power_factors(time_s, np.arange(w.n_devices), cell_of,
                                                          self.mobility.walked_at(time_s), self.mobility.walk_speed_mps)
        self.availability.advance(time_s)
        alive = self.battery_j > 0
        return RoundState(
            round=round_index, time_s=time_s, version=version,
            available=self.availability.online & alive,
            online_until_s=np.where(self.availability.online, self.availability.until_s, time_s),
            position_m=position, cell_of=cell_of, distance_m=distance, mean_gain=mean_gain, gain=gain,
            battery_j=self.battery_j.copy(),
            interference_w_per_hz=self.interference_w_per_hz.copy() if self.hears_interference else None,
        )

    def measured(self, device: int, b_hz: float, entry: dict[str, Any]) -> None:
        """What the base station measured over the device's upload that just ended
        (`Job.entry`): its mean interference power over its sub-band, if it sent at all."""
        interference = entry.get("interference_w", np.nan)
        if self.hears_interference and np.isfinite(interference) and b_hz > 0:
            self.interference_w_per_hz[device] = interference / b_hz

    def walked_m(self, time_s: float) -> np.ndarray:
        """(I,) the distance each device has walked by `time_s` (after `mobility.positions(time_s)`)."""
        return self.mobility.walk_speed_mps * self.mobility.walked_at(time_s)

    def next_online_s(self) -> float:
        """When the next device with battery left comes online (inf if none will)."""
        waiting = ~self.availability.online & (self.battery_j > 0)
        return float(self.availability.until_s[waiting].min()) if waiting.any() else np.inf

    def state_dict(self) -> dict[str, Any]:
        state = {"availability": self.availability.state_dict(), "mobility": self.mobility.state_dict(),
                 "fading": self.fading.state_dict(), "battery_j": self.battery_j.copy()}
        if not self.mobility.static:
            state["serving"] = self.serving.state_dict()
        if self.channel_time is not None:
            state["channel_time"] = self.channel_time.state_dict()
        if self.hears_interference:
            state["interference_w_per_hz"] = self.interference_w_per_hz.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.availability.load_state_dict(state["availability"])
        self.mobility.load_state_dict(state["mobility"])
        self.fading.load_state_dict(state["fading"])
        self.battery_j = np.array(state["battery_j"], dtype=float)
        if "serving" in state:  # checkpoints from before handovers had none: nothing to restore
            self.serving.load_state_dict(state["serving"])
        if self.channel_time is not None:
            self.channel_time.load_state_dict(state["channel_time"])
        if "interference_w_per_hz" in state:
            self.interference_w_per_hz = np.array(state["interference_w_per_hz"], dtype=float)


def serving_link(world: World, position_m: np.ndarray, cell_of: np.ndarray, device: np.ndarray | int | None = None,
                 walked_m: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distance (floored at 1 m) and mean gain (path loss and shadowing) from each point of
    `position_m` to the cell `cell_of` there, for `device` there (default: every device,
    one point each) having walked `walked_m` (default: none); the world's links
    (simfl.links.Links.gain_to), what handover compares too."""
    return world.links.gain_to(cell_of, position_m, device, walked_m)
