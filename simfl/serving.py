"""Each moving device's serving cell over simulated time, under the handover rule of
`network.handover` (simfl.handover): it keeps its cell until another cell's mean gain has
exceeded it by the hysteresis for the time to trigger, then hands over at that instant,
found exactly on its walk.

Legs are walked forward in time (the mobility timeline's order): `advance` carries every
device to an instant, a segment at a time (a leg's walk, then its pause), with the
time-to-trigger count carried from one segment to the next. A transfer in flight asks
`peek` for the first handover in a window of its own, without moving the state, and
`commit`s the window once it has reached its end (a job that stops first leaves the
state where it was, for the next query to carry on from).
"""

from __future__ import annotations

import math

import numpy as np

from simfl.dynamics.mobility import Leg, MobilityTimeline
from simfl.handover import (condition_holds, condition_intervals, handover_instant, handover_instant_paused,
                            held_since_at_end)
from simfl.world import World


class ServingCells:
    """Serving cell, the instant it is known to, and the handover count's start, per device."""

    def __init__(self, world: World, mobility: MobilityTimeline, cell_of: np.ndarray) -> None:
        rule = world.constants.handover
        self.world, self.mobility = world, mobility
        self.hysteresis_db = 0.0 if rule is None else float(rule.hysteresis_db)
        self.time_to_trigger_s = 0.0 if rule is None else float(rule.time_to_trigger_s)
        self.interruption_s = 0.0 if rule is None else float(rule.interruption_s)
        self.cell = np.array(cell_of, dtype=np.int64)
        self.known_s = np.zeros(len(self.cell))
        self.held_since = np.full(len(self.cell), math.nan)  # nan: the condition does not hold
        self.handed_over_s = np.full(len(self.cell), -math.inf)  # each device's last handover
        # per device, its first handover on the rest of a segment of its walk, as last found:
        # (its cell and count then, from, the segment's end, the handover or None)
        self._first: dict[int, tuple[tuple[int, float], float, float, tuple[float, int] | None]] = {}

    @property
    def strongest_rule(self) -> bool:
        """Hysteresis and time to trigger 0: the serving cell is the strongest at every
        instant, what `World.serving` gives at any one."""
        return self.hysteresis_db == 0.0 and self.time_to_trigger_s == 0.0

    def peek(self, device: int, t_from_s: float, t_to_s: float) -> tuple[float, int] | None:
        """The first handover of `device` in [t_from_s, t_to_s] (within one segment of its
        walk: no change of velocity inside), from the state known at `t_from_s`.

        The search runs to the segment's end once, and later windows of the segment in the
        same state (cell and count) are answered from it: a transfer asks at every stretch
        of its upload, thousands of times a leg at vehicle speed."""
        held = float(self.held_since[device])
        state = (int(self.cell[device]), -1.0 if math.isnan(held) else held)
        known = self._first.get(device)
        if (known is not None and known[0] == state and known[1] <= t_from_s and t_to_s <= known[2]
                and (known[3] is None or known[3][0] >= t_from_s)):
            first = known[3]
        else:
            end = max(self.mobility.next_change_s(device, t_from_s), t_to_s)
            first = self._search(device, t_from_s, end)
            self._first[device] = (state, t_from_s, end, first)
        return first if first is not None and first[0] <= t_to_s else None

    def _search(self, device: int, t_from_s: float, t_to_s: float) -> tuple[float, int] | None:
        w = self.world
        leg = self.mobility.leg_at(device, t_from_s)
        if leg is None:
            return None
        held = None if math.isnan(self.held_since[device]) else float(self.held_since[device])
        args = (int(self.cell[device]), w.links.of(device), self.hysteresis_db, self.time_to_trigger_s, held)
        if t_from_s >= leg.arrive_s:
            return handover_instant_paused(leg.target_m, t_from_s, t_to_s, *args, walked_m=_walked_at_end(leg))
        return handover_instant(leg.origin_m, leg.target_m, leg.depart_s, leg.speed_mps, t_from_s, t_to_s, *args,
                                walked_m=leg.walked_m)

    def commit(self, device: int, t_from_s: float, t_to_s: float, handover: tuple[float, int] | None) -> None:
        """The device has reached `t_to_s` from `t_from_s`: at a handover (which resets the
        count), or through a window in which it kept its cell (the count carried on)."""
        if handover is not None:
            self.cell[device], self.held_since[device] = handover[1], math.nan
            self.handed_over_s[device] = handover[0]
        else:
            w = self.world
            leg = self.mobility.leg_at(device, t_from_s)
            if leg is not None and self.time_to_trigger_s == 0:
                # no count to carry: a window without a handover is one where the condition never held
                self.held_since[device] = math.nan
            elif leg is not None:
                if t_from_s >= leg.arrive_s:  # standing: the condition holds throughout or never
                    holds = condition_holds(leg.target_m, int(self.cell[device]), w.links.of(device),
                                            self.hysteresis_db, _walked_at_end(leg))
                    intervals = [(t_from_s, t_to_s)] if holds else []
                else:
                    intervals = condition_intervals(leg.origin_m, leg.target_m, leg.depart_s, leg.speed_mps, t_from_s,
                                                    t_to_s, int(self.cell[device]), w.links.of(device),
                                                    self.hysteresis_db, leg.walked_m)
                held = None if math.isnan(self.held_since[device]) else float(self.held_since[device])
                since = held_since_at_end(intervals, t_from_s, t_to_s, held)
                self.held_since[device] = math.nan if since is None else since
        self.known_s[device] = t_to_s

    def advance(self, device: int, t_s: float) -> list[tuple[float, int]]:
        """Carry `device` to `t_s`, segment by segment; the handovers on the way."""
        done: list[tuple[float, int]] = []
        while self.known_s[device] < t_s:
            start = float(self.known_s[device])
            end = min(t_s, self.mobility.next_change_s(device, start))
            handover = self.peek(device, start, end)
            self.commit(device, start, handover[0] if handover else end, handover)
            if handover:
                done.append(handover)
        return done

    def advance_all(self, t_s: float) -> None:
        for device in np.flatnonzero(self.mobility.moving).tolist():
            self.advance(device, t_s)

    def state_dict(self) -> dict:
        return {"cell": self.cell.copy(), "known_s": self.known_s.copy(), "held_since": self.held_since.copy(),
                "handed_over_s": self.handed_over_s.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.cell = np.array(state["cell"], dtype=np.int64)
        self.known_s = np.array(state["known_s"], dtype=float)
        self.held_since = np.array(state["held_since"], dtype=float)
        self.handed_over_s = np.array(state["handed_over_s"], dtype=float)


def _walked_at_end(leg: Leg) -> float:
    """The distance walked by the end of `leg`, where its device stands through the pause."""
    return leg.walked_m + leg.speed_mps * (leg.arrive_s - leg.depart_s)
