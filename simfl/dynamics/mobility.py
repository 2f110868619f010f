"""Where each device is: static, or the random-waypoint model (Johnson and Maltz, 1996)
inside its home cell's disk. Distance, path loss and the serving cell (the strongest mean
gain, so a device hands over when it crosses) follow the position at each round start."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from simfl.dynamics.registry import (MAX_PERIOD_S, MAX_SPEED_MPS, MOBILITY, Fail, WithoutFields, number_field,
                                    register, unknown_fields)
from simfl.streams import keyed_rng


@register(MOBILITY)
@dataclass(frozen=True)
class Static(WithoutFields):
    """The device stays where it was placed."""

    kind: ClassVar[str] = "static"
    form: ClassVar[str] = "static"


@register(MOBILITY)
@dataclass(frozen=True)
class RandomWaypoint:
    """Walk in a straight line at `speed_mps` to a point drawn uniformly in the home
    cell's disk, pause `pause_s`, and again. The walk starts at time 0 from the device's
    placed position."""

    speed_mps: float
    pause_s: float
    kind: ClassVar[str] = "random_waypoint"
    form: ClassVar[str] = "{random_waypoint: {speed_mps, pause_s}}"

    @classmethod
    def from_config(cls, params: Any, where: str, fail: Fail, context: dict) -> RandomWaypoint | None:
        unknown_fields(params, {"speed_mps", "pause_s"}, where, fail)
        speed = number_field(params, "speed_mps", where, fail, above=0, maximum=MAX_SPEED_MPS)
        pause = number_field(params, "pause_s", where, fail, minimum=0, maximum=MAX_PERIOD_S, default=0.0)
        return None if speed is None or pause is None or speed <= 0 or pause < 0 else cls(speed, pause)


class MobilityTimeline:
    """Positions of the devices over time (monotone queries). Only random-waypoint devices
    carry a state: their current leg (index, start and end points, departure, arrival)."""

    def __init__(self, specs: Sequence[Any], start_m: np.ndarray, home_centre_m: np.ndarray,
                 home_radius_m: np.ndarray, seed: int) -> None:
        self.specs, self.seed = list(specs), seed
        self.centre, self.radius = np.asarray(home_centre_m, float), np.asarray(home_radius_m, float)
        self.start_m = np.array(start_m, dtype=float)
        self.moving = np.array([isinstance(s, RandomWaypoint) for s in self.specs], dtype=bool)
        n = len(self.specs)
        self.leg = np.zeros(n, dtype=np.int64)
        self.origin = self.start_m.copy()
        self.target = self.start_m.copy()
        self.depart_s = np.zeros(n)
        self.arrive_s = np.zeros(n)
        for i in np.flatnonzero(self.moving):
            self._begin_leg(int(i), 0.0)

    @property
    def static(self) -> bool:
        return not self.moving.any()

    def _begin_leg(self, i: int, depart_s: float) -> None:
        draw = keyed_rng(self.seed, "mobility", i, int(self.leg[i]))
        r = self.radius[i] * math.sqrt(draw.random())  # uniform in the disk
        angle = 2.0 * math.pi * draw.random()
        self.origin[i] = self.target[i]
        self.target[i] = self.centre[i] + r * np.array([math.cos(angle), math.sin(angle)])
        self.depart_s[i] = depart_s
        self.arrive_s[i] = depart_s + float(np.linalg.norm(self.target[i] - self.origin[i])) / self.specs[i].speed_mps

    def positions(self, t_s: float) -> np.ndarray:
        """(I, 2) positions at time `t_s`, walking each moving device's legs forward."""
        out = self.start_m.copy()
        for i in np.flatnonzero(self.moving):
            spec = self.specs[i]
            while self.arrive_s[i] + spec.pause_s <= t_s:
                self.leg[i] += 1
                self._begin_leg(int(i), float(self.arrive_s[i] + spec.pause_s))
            span = self.arrive_s[i] - self.depart_s[i]
            frac = 1.0 if span <= 0 else min(max((t_s - self.depart_s[i]) / span, 0.0), 1.0)
            out[i] = self.origin[i] + frac * (self.target[i] - self.origin[i])
        return out

    def state_dict(self) -> dict:
        return {"leg": self.leg.tolist(), "origin": self.origin.tolist(), "target": self.target.tolist(),
                "depart_s": self.depart_s.tolist(), "arrive_s": self.arrive_s.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.leg = np.array(state["leg"], dtype=np.int64)
        self.origin = np.array(state["origin"], dtype=float).reshape(-1, 2)
        self.target = np.array(state["target"], dtype=float).reshape(-1, 2)
        self.depart_s = np.array(state["depart_s"], dtype=float)
        self.arrive_s = np.array(state["arrive_s"], dtype=float)
