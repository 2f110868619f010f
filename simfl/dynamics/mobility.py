"""Where each device is: static, or the random-waypoint model (Johnson and Maltz, 1996)
inside its home cell's disk or anywhere in the cells' disks. Distance, path loss and the
serving cell (the strongest mean gain, so a device hands over when it crosses) follow the
position at each round start."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from simfl.dynamics.registry import (MAX_PERIOD_S, MAX_SPEED_MPS, MOBILITY, Fail, WithoutFields, declared,
                                    number_field, register, unknown_fields)
from simfl.limits import Bounds
from simfl.streams import keyed_rng

REGIONS = ("home", "all")


@register(MOBILITY)
@dataclass(frozen=True)
class Static(WithoutFields):
    """The device stays where it was placed."""

    kind: ClassVar[str] = "static"
    form: ClassVar[str] = "static"


@register(MOBILITY)
@dataclass(frozen=True)
class RandomWaypoint:
    """Walk in a straight line at `speed_mps` to a point drawn uniformly in the region,
    pause `pause_s`, and again. The walk starts at time 0 from the device's placed
    position. `region`: `home`, the disk of the cell the device was placed in; `all`, the
    union of every cell's disk (`uniform_in_disks`)."""

    speed_mps: float
    """The walking speed."""
    pause_s: float = 0.0
    """The pause at each waypoint."""
    region: str = "home"
    """Where waypoints are drawn: home (the disk of the cell the device was placed in) or
    all (anywhere in the union of every cell's disk)."""
    kind: ClassVar[str] = "random_waypoint"
    form: ClassVar[str] = "{random_waypoint: {speed_mps, pause_s, region: home | all}}"
    FIELDS: ClassVar[dict[str, Bounds]] = {"speed_mps": Bounds(above=0, maximum=MAX_SPEED_MPS, required=True),
                                           "pause_s": Bounds(minimum=0, maximum=MAX_PERIOD_S)}
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"region": REGIONS}

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> RandomWaypoint | None:
        unknown_fields(params, declared(cls), where, fail)
        speed = number_field(params, "speed_mps", where, fail, cls.FIELDS["speed_mps"])
        pause = number_field(params, "pause_s", where, fail, cls.FIELDS["pause_s"], default=cls.pause_s)
        region = params.get("region", cls.region) if isinstance(params, dict) else cls.region
        if region not in cls.CHOICES["region"]:
            fail(f"{where}.region", f"must be home (the disk of the cell the device was placed in) or all "
                                    f"(anywhere in the union of every cell's disk), got {region!r}")
            return None
        return None if speed is None or pause is None or speed <= 0 or pause < 0 else cls(speed, pause, region)


@dataclass(frozen=True)
class Leg:
    """One leg of a random walk: from `origin_m`, leaving at `depart_s`, straight to
    `target_m` at `speed_mps`, arriving at `arrive_s`, then standing there until
    `pause_until_s` (= arrive_s + pause), when the next leg departs. `walked_m`: the
    distance walked before the leg (speed x time walked), on which TR 38.901 links renew
    their draws (simfl.pathloss.link_state)."""

    origin_m: np.ndarray
    target_m: np.ndarray
    depart_s: float
    arrive_s: float
    speed_mps: float
    pause_until_s: float
    walked_m: float = 0.0

    def speed_at(self, t_s: float) -> float:
        """The speed at `t_s`: `speed_mps` while walking, 0 while paused (and on a leg of
        length 0)."""
        return self.speed_mps if self.depart_s <= t_s < self.arrive_s else 0.0


def uniform_in_disks(draw: np.random.Generator, centre_m: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
    """A point uniform over the union of the disks (centre_m (k, 2), radius_m (k,)).

    Propose a disk with probability proportional to its area and a point uniform in it,
    and accept the point with probability 1/c, c the number of disks covering it: the
    proposal's density at x is c(x) / (sum of the areas), so the accepted points have a
    constant density over the union. Unlike rejection from the bounding box, every proposal
    lands in the union and at least 1/(most disks overlapping at a point) is accepted,
    however far apart the cells are (two disks meeting in a lens: at least 1/2)."""
    centre, radius = np.asarray(centre_m, float), np.asarray(radius_m, float)
    cumulative = np.cumsum(radius**2)
    while True:
        k = min(int(np.searchsorted(cumulative, draw.random() * cumulative[-1], side="right")), len(radius) - 1)
        r = radius[k] * math.sqrt(draw.random())
        angle = 2.0 * math.pi * draw.random()
        point = centre[k] + r * np.array([math.cos(angle), math.sin(angle)])
        # the proposing disk covers its point even where rounding puts it a hair outside
        covering = max(int((np.linalg.norm(centre - point, axis=1) <= radius).sum()), 1)
        if draw.random() * covering < 1.0:
            return point


class MobilityTimeline:
    """Positions of the devices over time (monotone queries). Only random-waypoint devices
    carry a state: their current leg (index, start and end points, departure, arrival).

    `cell_centre_m` (n_cells, 2) and `cell_radius_m` (n_cells,) are every cell's disk,
    needed only by devices whose region is `all`."""

    def __init__(self, specs: Sequence[Any], start_m: np.ndarray, home_centre_m: np.ndarray,
                 home_radius_m: np.ndarray, seed: int, cell_centre_m: np.ndarray | None = None,
                 cell_radius_m: np.ndarray | None = None) -> None:
        self.specs, self.seed = list(specs), seed
        self.centre, self.radius = np.asarray(home_centre_m, float), np.asarray(home_radius_m, float)
        self.cell_centre = np.zeros((0, 2)) if cell_centre_m is None else np.asarray(cell_centre_m, float).reshape(-1, 2)
        self.cell_radius = np.zeros(0) if cell_radius_m is None else np.asarray(cell_radius_m, float).reshape(-1)
        if not len(self.cell_centre) and any(getattr(s, "region", "home") == "all" for s in self.specs):
            raise ValueError("random_waypoint with region `all` needs every cell's disk: pass cell_centre_m and "
                             "cell_radius_m (World.bs_position_m and World.cell_radius_m)")
        n = len(self.specs)
        self.moving = np.fromiter((isinstance(s, RandomWaypoint) for s in self.specs), dtype=bool, count=n)
        if not self.moving.any():
            # nobody walks: the legs are read-only broadcasts of one value and the positions
            # are the world's own array, so a million static phones cost no bytes here
            self.start_m = np.asarray(start_m, dtype=float)
            self.centre, self.radius = np.zeros((0, 2)), np.zeros(0)  # only walkers draw waypoints
            self.origin = self.target = self.start_m
            self.leg = np.broadcast_to(np.int64(0), (n,))
            self.depart_s = self.arrive_s = self.walked_s = self.walk_speed_mps = np.broadcast_to(0.0, (n,))
            return
        self.start_m = np.array(start_m, dtype=float)
        self.leg = np.zeros(n, dtype=np.int64)
        self.origin = self.start_m.copy()
        self.target = self.start_m.copy()
        self.depart_s = np.zeros(n)
        self.arrive_s = np.zeros(n)
        self.walked_s = np.zeros(n)  # time spent walking before the current leg (Clarke's Doppler phase)
        self.walk_speed_mps = np.array([getattr(s, "speed_mps", 0.0) for s in self.specs], dtype=float)
        for i in np.flatnonzero(self.moving):
            self._begin_leg(int(i), 0.0)

    @property
    def static(self) -> bool:
        return not self.moving.any()

    def _waypoint(self, i: int, draw: np.random.Generator) -> np.ndarray:
        if self.specs[i].region == "all":
            return uniform_in_disks(draw, self.cell_centre, self.cell_radius)
        r = self.radius[i] * math.sqrt(draw.random())  # uniform in the disk
        angle = 2.0 * math.pi * draw.random()
        return self.centre[i] + r * np.array([math.cos(angle), math.sin(angle)])

    def _begin_leg(self, i: int, depart_s: float) -> None:
        draw = keyed_rng(self.seed, "mobility", i, int(self.leg[i]))
        self.origin[i] = self.target[i]
        self.target[i] = self._waypoint(i, draw)
        self.depart_s[i] = depart_s
        self.arrive_s[i] = depart_s + float(np.linalg.norm(self.target[i] - self.origin[i])) / self.specs[i].speed_mps

    def _advance(self, i: int, t_s: float) -> None:
        """Walk device i's legs forward to the one in progress at `t_s` (walking or paused)."""
        spec = self.specs[i]
        while self.arrive_s[i] + spec.pause_s <= t_s:
            self.leg[i] += 1
            self.walked_s[i] += self.arrive_s[i] - self.depart_s[i]
            self._begin_leg(int(i), float(self.arrive_s[i] + spec.pause_s))

    def positions(self, t_s: float) -> np.ndarray:
        """(I, 2) positions at time `t_s`, walking each moving device's legs forward."""
        out = self.start_m.copy()
        for i in np.flatnonzero(self.moving):
            self._advance(int(i), t_s)
            span = self.arrive_s[i] - self.depart_s[i]
            frac = 1.0 if span <= 0 else min(max((t_s - self.depart_s[i]) / span, 0.0), 1.0)
            out[i] = self.origin[i] + frac * (self.target[i] - self.origin[i])
        return out

    def leg_at(self, device: int, t_s: float) -> Leg | None:
        """The leg device `device` is on at `t_s` (walking it, or paused at its end); None
        for a device that does not move. Queries go forward in time, as `positions`'."""
        if not self.moving[device]:
            return None
        if t_s < self.depart_s[device]:
            raise ValueError(f"device {device}: time {t_s} s is before its current leg (from {self.depart_s[device]} s); "
                             "queries go forward in time")
        self._advance(device, t_s)
        spec = self.specs[device]
        return Leg(origin_m=self.origin[device].copy(), target_m=self.target[device].copy(),
                   depart_s=float(self.depart_s[device]), arrive_s=float(self.arrive_s[device]),
                   speed_mps=float(spec.speed_mps), pause_until_s=float(self.arrive_s[device] + spec.pause_s),
                   walked_m=float(spec.speed_mps * self.walked_s[device]))

    def path(self, device: int, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (n, 2) and time spent walking since the run's start (n,) of `device` at
        `times_s`, all on the leg in progress at the first of them (walking or paused):
        what a transfer needs between two of the device's velocity changes
        (`next_change_s`). A static device stands where it was placed and never walks."""
        t = np.asarray(times_s, dtype=float)
        if not self.moving[device]:
            return np.repeat(self.start_m[device][None, :], len(t), axis=0), np.zeros(len(t))
        self.leg_at(device, float(t[0]))
        depart, arrive = self.depart_s[device], self.arrive_s[device]
        span = arrive - depart
        frac = np.ones(len(t)) if span <= 0 else np.clip((t - depart) / span, 0.0, 1.0)
        position = self.origin[device] + frac[:, None] * (self.target[device] - self.origin[device])
        return position, self.walked_s[device] + np.clip(t - depart, 0.0, max(span, 0.0))

    def walked_at(self, t_s: float) -> np.ndarray:
        """(I,) time each device has spent walking from 0 to `t_s` (after `positions(t_s)`,
        which brings every leg to `t_s`)."""
        span = np.maximum(self.arrive_s - self.depart_s, 0.0)
        return np.where(self.moving, self.walked_s + np.clip(t_s - self.depart_s, 0.0, span), 0.0)

    def speed_mps(self, device: int, t_s: float) -> float:
        """The device's speed at `t_s`: its walking speed on a leg, 0 while paused or static."""
        leg = self.leg_at(device, t_s)
        return 0.0 if leg is None else leg.speed_at(t_s)

    def next_change_s(self, device: int, t_s: float) -> float:
        """The next instant after `t_s` at which the device's velocity changes: its arrival
        at the waypoint while walking (the speed drops to 0, or without a pause the
        direction turns), the end of the pause while paused; inf for a static device."""
        leg = self.leg_at(device, t_s)
        if leg is None:
            return math.inf
        return leg.arrive_s if t_s < leg.arrive_s else leg.pause_until_s

    def state_dict(self) -> dict:
        if self.static:  # nothing moves: the world as built is the state, and a snapshot holds nothing
            return {}
        return {"leg": self.leg.copy(), "origin": self.origin.copy(), "target": self.target.copy(),
                "depart_s": self.depart_s.copy(), "arrive_s": self.arrive_s.copy(), "walked_s": self.walked_s.copy()}

    def load_state_dict(self, state: dict) -> None:
        if not state:  # a static world's snapshot (a static world's older snapshots hold its arrays)
            return
        self.leg = np.array(state["leg"], dtype=np.int64)
        self.origin = np.array(state["origin"], dtype=float).reshape(-1, 2)
        self.target = np.array(state["target"], dtype=float).reshape(-1, 2)
        self.depart_s = np.array(state["depart_s"], dtype=float)
        self.arrive_s = np.array(state["arrive_s"], dtype=float)
        # checkpoints from before Clarke fading lack it; nothing they resume reads it
        self.walked_s = np.array(state.get("walked_s", np.zeros(len(self.arrive_s))), dtype=float)
