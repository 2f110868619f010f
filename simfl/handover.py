"""When a moving device hands over, and to which cell: the A3-style rule with hysteresis
and time to trigger, on mean gains (path loss and shadowing, no fast fading).

The condition: some other cell's mean gain (dB) exceeds the serving cell's by more than
`hysteresis_db`. A device hands over when the condition has held without a break for
`time_to_trigger_s` (a break restarts the count), at the END of that time, to the cell
strongest at that instant. The condition is on the union of the other cells, one timer
for all of them (3GPP's A3 event keeps one per neighbour; the two agree with one
neighbour and differ only when several neighbours take turns above the threshold).

Crossings are exact, not rounded to a step. Along a straight leg at constant speed a
device's squared distance to a base station is a quadratic q(l) in the distance walked l,
so a gain difference in dB is D(l) = (b_s / 2) log10 q_s - (b_k / 2) log10 q_k + const,
and D'(l) = 0 where b_s q_s' q_k - b_k q_k' q_s = 0: a cubic. Between its real roots, the
closest approaches to both stations and the points 1 m from them (where the distance
floor starts or stops), D is monotone, so each such piece holds at most one crossing,
bracketed by a sign change and found by scipy's brentq to full float precision. One code
path serves equal and unequal path-loss slopes (with equal slopes the cubic drops to a
quadratic and the crossings lie on an Apollonius circle, which has a closed form, but
its quadratic formula loses digits to cancellation near a base station); no time grid
can miss a short crossing.

With a TR 38.901 model in any cell (simfl.pathloss), links have no such closed form and
step where their LOS state or shadowing is renewed: the leg is split at every instant a
link may step or turn (`DeviceLinks.breaks_along`) and the crossings between are found
by bisection on bounds (simfl.crossings), exact at the steps, and to full precision
elsewhere but for excursions shorter than a microsecond.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from simfl.crossings import margin_crossings
from simfl.geometry import MIN_DISTANCE_M
from simfl.links import DeviceLinks
from simfl.pathloss.link_state import LinkState

Interval = tuple[float, float]


def margins_db(position_m: np.ndarray, serving: int, links: DeviceLinks, walked_m: float | np.ndarray = 0.0
               ) -> np.ndarray:
    """(n, n_cells) each cell's mean gain (dB) minus the serving cell's, for one device at
    the n points `position_m` having walked `walked_m` there; -inf in the serving cell's column."""
    gain = links.gains_db(position_m, walked_m)
    margin = gain - gain[:, [serving]]
    margin[:, serving] = -np.inf
    return margin


def condition_holds(position_m: np.ndarray, serving: int, links: DeviceLinks, hysteresis_db: float,
                    walked_m: float = 0.0) -> bool:
    """Whether some other cell's mean gain exceeds the serving cell's by more than
    `hysteresis_db` for a device standing at `position_m` (2,) having walked `walked_m`."""
    point = np.asarray(position_m, float)[None]
    return bool(margins_db(point, serving, links, walked_m).max() > hysteresis_db)


def condition_intervals(origin_m: np.ndarray, target_m: np.ndarray, depart_s: float, speed_mps: float,
                        t_from_s: float, t_to_s: float, serving: int, links: DeviceLinks, hysteresis_db: float,
                        walked_m: float = 0.0) -> list[Interval]:
    """The maximal intervals of [t_from_s, t_to_s] in which some other cell's mean gain
    exceeds the serving cell's by more than `hysteresis_db`, for a device that leaves
    `origin_m` at `depart_s`, having walked `walked_m` before, and walks straight to
    `target_m` at `speed_mps`; it stands at `origin_m` before and at `target_m` after its
    arrival, so a window may run on into the pause at the waypoint. Ends are exact
    crossings, or the window's ends where the condition holds there."""
    if t_from_s > t_to_s:
        return []
    origin = np.asarray(origin_m, float)
    heading = np.asarray(target_m, float) - origin
    length = float(np.hypot(*heading))
    if length == 0.0 or speed_mps <= 0.0:
        return [(t_from_s, t_to_s)] if condition_holds(origin, serving, links, hysteresis_db, walked_m) else []
    unit = heading / length
    walk_s = length / speed_mps

    def where(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # positions and walked distances at instants t
        walked_s = np.clip(np.asarray(t, float) - depart_s, 0.0, walk_s)
        return origin + np.multiply.outer(speed_mps * walked_s, unit), walked_m + speed_mps * walked_s

    def excess(t: np.ndarray) -> np.ndarray:  # (n, n_cells): margin above the hysteresis
        position, walked_there = where(np.atleast_1d(t))
        return margins_db(position, serving, links, walked_there) - hysteresis_db

    # the margins are constant before the departure and after the arrival: no crossing there
    exact = links.links.log_distance_only
    walked = (_monotone_breaks(origin, unit, links.links.bs_position_m, links.links.path_loss_params[:, 1], serving)
              if exact else links.breaks_along(origin, unit, length, walked_m, speed_mps * (t_from_s - depart_s),
                                               speed_mps * (t_to_s - depart_s)))
    breaks = np.concatenate([depart_s + walked / speed_mps, [depart_s, depart_s + walk_s]])
    points = np.unique(np.concatenate([[t_from_s, t_to_s], breaks[(breaks > t_from_s) & (breaks < t_to_s)]]))
    # full precision: brentq stops within (xtol + 4 eps |t|) / 2 of the root
    xtol = 4.0 * np.finfo(float).eps * max(1.0, abs(t_from_s), abs(t_to_s))
    if exact:
        roots = _log_distance_roots(points, excess(points), origin, unit, depart_s, speed_mps, walk_s, serving, links,
                                    hysteresis_db, xtol)
    else:
        def state_at(t: np.ndarray) -> LinkState:
            return links.state(*where(t))

        def gains_in(state: LinkState, t: np.ndarray, cells: list[int] | None) -> np.ndarray:
            return links.links.gains_db_in(state, where(t)[0], cells)

        roots = margin_crossings(points, serving, state_at, gains_in, hysteresis_db, xtol)
    points = np.unique(np.concatenate([points, roots]))
    holds_at = excess(points).max(axis=1) > 0.0
    if len(points) == 1:
        return [(t_from_s, t_to_s)] if holds_at[0] else []
    holds_between = excess((points[:-1] + points[1:]) / 2.0).max(axis=1) > 0.0
    intervals, start = [], None
    for i, holds in enumerate(holds_between):
        if holds and start is not None and not holds_at[i]:  # touched the threshold and rose again: a break
            intervals.append((start, float(points[i])))
            start = float(points[i])
        elif holds and start is None:
            start = float(points[i])
        elif not holds and start is not None:
            intervals.append((start, float(points[i])))
            start = None
    if start is not None:
        intervals.append((start, float(points[-1])))
    return intervals


def _log_distance_roots(points: np.ndarray, values: np.ndarray, origin: np.ndarray, unit: np.ndarray, depart_s: float,
                        speed_mps: float, walk_s: float, serving: int, links: DeviceLinks, hysteresis_db: float,
                        xtol: float) -> list[float]:
    """The crossings of the log-distance margins, each bracketed by a sign change of
    `values` (the excess at `points`, between which every margin is monotone)."""
    bs, params = links.links.bs_position_m, np.asarray(links.links.path_loss_params, float)
    roots = []
    for k in (k for k in range(len(bs)) if k != serving):
        for a, b, fa, fb in zip(points[:-1], points[1:], values[:-1, k], values[1:, k]):
            if fa * fb < 0.0:
                pair = _PairMargin(origin, unit, depart_s, speed_mps, walk_s, bs[[serving, k]], params[[serving, k]],
                                   links.shadowing_z, hysteresis_db)
                # the scalar and the array arithmetic may round an end's tiny margin to opposite signs
                pa, pb = pair(a), pair(b)
                if pa * pb < 0.0:
                    roots.append(brentq(pair, a, b, xtol=xtol, maxiter=200))
    return roots


class _PairMargin:
    """One other cell's mean gain (dB) minus the serving cell's, less the hysteresis, at
    time t on the leg: `excess` for one pair of cells in scalar arithmetic (the same
    formula as simfl.radio.mean_gain_db), for brentq's many evaluations."""

    def __init__(self, origin: np.ndarray, unit: np.ndarray, depart_s: float, speed_mps: float, walk_s: float,
                 pair_bs: np.ndarray, pair_params: np.ndarray, shadowing_z: float, hysteresis_db: float) -> None:
        self.x0, self.y0 = float(origin[0]), float(origin[1])
        self.ux, self.uy = float(unit[0]), float(unit[1])
        self.depart_s, self.speed, self.walk_s = depart_s, speed_mps, walk_s
        self.bs = [(float(x), float(y)) for x, y in pair_bs]
        self.params = [(float(a), float(b), float(sd)) for a, b, sd in pair_params]
        self.z, self.h = float(shadowing_z), hysteresis_db

    def gain_db(self, j: int, x: float, y: float) -> float:
        a, b, sd = self.params[j]
        d = max(math.hypot(x - self.bs[j][0], y - self.bs[j][1]), MIN_DISTANCE_M)
        return -(a + b * math.log10(d / 1000.0)) + self.z * sd

    def __call__(self, t: float) -> float:
        walked = self.speed * min(max(t - self.depart_s, 0.0), self.walk_s)
        x, y = self.x0 + walked * self.ux, self.y0 + walked * self.uy
        return self.gain_db(1, x, y) - self.gain_db(0, x, y) - self.h


def handover_instant(origin_m: np.ndarray, target_m: np.ndarray, depart_s: float, speed_mps: float, t_from_s: float,
                     t_to_s: float, serving: int, links: DeviceLinks, hysteresis_db: float, time_to_trigger_s: float,
                     held_since_s: float | None = None, walked_m: float = 0.0) -> tuple[float, int] | None:
    """The first instant in [t_from_s, t_to_s] at which a device walking a straight leg
    (`condition_intervals`: at constant speed, then standing at the waypoint; `walked_m`
    walked before it) hands over, and the cell it hands over to (the strongest at that
    instant); None if it does not in the window.

    `held_since_s` carries the count across segments: the condition has held since then
    without a break up to `t_from_s` (`held_since_at_end` of the segment before; a count
    already past `time_to_trigger_s` hands over at `t_from_s`); None: the count starts in
    the window."""
    intervals = condition_intervals(origin_m, target_m, depart_s, speed_mps, t_from_s, t_to_s, serving, links,
                                    hysteresis_db, walked_m)
    fire = _first_trigger(intervals, t_from_s, time_to_trigger_s, held_since_s)
    if fire is None:
        return None
    heading = np.asarray(target_m, float) - np.asarray(origin_m, float)
    length = float(np.hypot(*heading))
    step = 0.0 if length == 0.0 or speed_mps <= 0.0 else min(max(speed_mps * (fire - depart_s) / length, 0.0), 1.0)
    position = np.asarray(origin_m, float) + step * heading
    return fire, _strongest_other(position, serving, links, walked_m + step * length)


def handover_instant_paused(position_m: np.ndarray, t_from_s: float, t_to_s: float, serving: int,
                            links: DeviceLinks, hysteresis_db: float, time_to_trigger_s: float,
                            held_since_s: float | None = None, walked_m: float = 0.0) -> tuple[float, int] | None:
    """A device standing at `position_m` through [t_from_s, t_to_s], having walked
    `walked_m`: its gains do not change, so it hands over only if the condition already
    holds where it stands, when the count that began at `held_since_s` (or at `t_from_s`)
    reaches `time_to_trigger_s`; never otherwise, until it moves again."""
    holds = condition_holds(position_m, serving, links, hysteresis_db, walked_m)
    intervals = [(t_from_s, t_to_s)] if holds and t_from_s <= t_to_s else []
    fire = _first_trigger(intervals, t_from_s, time_to_trigger_s, held_since_s)
    if fire is None:
        return None
    return fire, _strongest_other(np.asarray(position_m, float), serving, links, walked_m)


def held_since_at_end(intervals: list[Interval], t_from_s: float, t_to_s: float,
                      held_since_s: float | None = None) -> float | None:
    """Since when the condition has held at the window's end `t_to_s` (what the next
    segment's `held_since_s` is), given the window's `condition_intervals` and the
    `held_since_s` it began with; None if it does not hold there."""
    if not intervals or intervals[-1][1] < t_to_s:
        return None
    start = intervals[-1][0]
    return held_since_s if held_since_s is not None and start == t_from_s else start


def _first_trigger(intervals: list[Interval], t_from_s: float, time_to_trigger_s: float,
                   held_since_s: float | None) -> float | None:
    """The first instant the condition has held for `time_to_trigger_s`, or None."""
    for start, end in intervals:
        onset = held_since_s if held_since_s is not None and start == t_from_s else start
        fire = max(onset + time_to_trigger_s, t_from_s)
        if fire <= end:
            return fire
    return None


def _strongest_other(position_m: np.ndarray, serving: int, links: DeviceLinks, walked_m: float) -> int:
    margin = margins_db(np.asarray(position_m, float)[None], serving, links, walked_m)
    return int(np.argmax(margin[0]))


def _monotone_breaks(origin: np.ndarray, unit: np.ndarray, bs: np.ndarray, slope: np.ndarray,
                     serving: int) -> np.ndarray:
    """Distances walked along the line origin + l unit between which the gain difference
    of every other station and the serving one is monotone in l (a superset: extra points
    only split pieces).

    q_j(l) = l^2 + B_j l + C_j is the squared distance to station j. Unfloored, D'(l) = 0
    where b_s q_s' q_k - b_k q_k' q_s = 0, a cubic with coefficients c3 = 2 (b_s - b_k),
    c2 = b_s (2 B_k + B_s) - b_k (2 B_s + B_k), c1 = 2 (b_s C_k - b_k C_s) + (b_s - b_k) B_s B_k,
    c0 = b_s B_s C_k - b_k B_k C_s (a quadratic when the slopes are equal); with one distance
    floored at 1 m, where the other's q' = 0 (its closest approach); the floor starts or
    stops where q_j = 1. The real parts of complex roots are kept too: a near-double root
    may come out slightly complex."""
    w = origin[None, :] - bs
    b_lin, c_const = 2.0 * (w @ unit), np.einsum("ij,ij->i", w, w)
    found = [-b_lin / 2.0]  # closest approaches
    discriminant = b_lin**2 / 4.0 - c_const + MIN_DISTANCE_M**2
    near = discriminant >= 0.0
    found += [-b_lin[near] / 2.0 - np.sqrt(discriminant[near]), -b_lin[near] / 2.0 + np.sqrt(discriminant[near])]
    bs_, Bs, Cs = slope[serving], b_lin[serving], c_const[serving]
    for k in range(len(bs)):
        if k == serving:
            continue
        bk, Bk, Ck = slope[k], b_lin[k], c_const[k]
        cubic = [2.0 * (bs_ - bk), bs_ * (2.0 * Bk + Bs) - bk * (2.0 * Bs + Bk),
                 2.0 * (bs_ * Ck - bk * Cs) + (bs_ - bk) * Bs * Bk, bs_ * Bs * Ck - bk * Bk * Cs]
        found.append(_real_parts_of_roots(cubic))
    return np.concatenate(found)


def _real_parts_of_roots(coefficients: list[float]) -> np.ndarray:
    """Real parts of the roots of a polynomial (highest degree first); a quadratic by the
    formula that avoids cancellation, a cubic by numpy's companion matrix."""
    c3, c2, c1, c0 = coefficients
    if c3 != 0.0:
        return np.roots(coefficients).real
    if c2 == 0.0:
        return np.array([-c0 / c1]) if c1 != 0.0 else np.zeros(0)
    discriminant = c1 * c1 - 4.0 * c2 * c0
    if discriminant < 0.0:
        return np.array([-c1 / (2.0 * c2)])
    q = -0.5 * (c1 + math.copysign(math.sqrt(discriminant), c1))
    return np.array([q / c2, c0 / q]) if q != 0.0 else np.array([0.0])


__all__ = ["condition_holds", "condition_intervals", "handover_instant", "handover_instant_paused", "held_since_at_end",
           "margins_db"]
