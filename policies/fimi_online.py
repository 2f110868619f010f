"""FIMI with its resources re-solved every round on the channel the round really has.

FIMI (Li et al., IEEE TMC 2024, Section IV) plans once, on the mean channel: with block
fading, a device whose gain this round falls below its mean misses T_max, since the
plan makes T_cmp + T_com = T_max exactly (Lemma 2). This policy keeps FIMI's synthetic
amounts and class split (its static plan) and, at each round's start, solves FIMI's
resource allocation again (f, b, P of every selected device, eqs. (5)-(9); problem (P1)
with D_gen fixed, by the exact dual solver) for the devices selected this round, on
their current realised gains and current cells: each cell's band is shared among its
selected devices only, and a device in a fade gets more band and power.

Assumptions: the server knows this round's gains before it allocates (channel feedback
at the round's start; block fading keeps them for the whole round), and its cells
(handover). Re-solving is a per-round adaptation of FIMI's own optimiser, not an
algorithm of the paper.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simfl.policies.fimi import Fimi
from simfl.compute import compute_latency_s
from simfl.network import RoundState
from simfl.optim.communication import b_min_hz
from simfl.optim.fimi import solve_resources
from simfl.plan import Plan, RoundPlan
from simfl.policy import PlanContext
from simfl.world import World

# A device is kept only if the selected devices of its cell need at most this share of
# the band: the exact solver wants a feasible set with an interior, and a device exactly
# on the edge of T_max would be on time only up to float rounding.
_BAND_MARGIN = 1e-6

# What a selected device the solver cannot serve is told to use: it idles through the
# round (a straggler that spends almost nothing). Only reached when `select` did not
# know the world (see FimiOnline.select).
_IDLE_FRACTION = 1e-6
_IDLE_BAND_HZ = 1.0


def deadline_keepers(world: World, state: RoundState, candidates: np.ndarray, d_gen: np.ndarray) -> np.ndarray:
    """The largest subset of `candidates` whose resource allocation can meet T_max this
    round, from (12b)-(12f) at this round's gains and cells (gains less the interference
    each device met last time, RoundState.planning_gain).

    A device needs at least b_min (eq. (31)) to upload S bits at P_max in the time left
    after training its D_loc + D_gen samples at f_max; the devices of a cell can all be on
    time iff their b_min add up to at most the cell's band B (the test of
    simfl.optim.infeasibility.time_split_bounds; here less a 1 Hz idle band per candidate
    and a 1e-6 margin). Per cell the devices with the smallest b_min are kept first, which
    keeps as many devices as possible (ties by lower index). In the asynchronous modes
    the band is what the jobs in flight leave free (`state.band_free_hz`). Returns them
    sorted.
    """
    k = world.constants
    idx = np.asarray(candidates, dtype=np.int64)
    cell = state.cell_of[idx]
    d_mix = world.d_loc[idx] + d_gen[idx]
    t_left = k.t_max_s - compute_latency_s(k.tau, k.omega_cycles, d_mix, world.f_max_hz[idx])
    need = np.full(len(idx), np.inf)
    ok = t_left > 0  # b_min_hz is meaningless for a negative upload time
    gain = state.planning_gain(world.noise_w_per_hz[state.cell_of], k.outage)[idx]
    need[ok] = b_min_hz(k.model_bits, t_left[ok], gain[ok], world.p_max_w[idx][ok],
                        world.noise_w_per_hz[cell[ok]])
    keep = np.zeros(len(idx), dtype=bool)
    band = free_band_hz(world, state)
    for c in np.unique(cell):
        members = np.flatnonzero(cell == c)
        order = members[np.argsort(need[members], kind="stable")]
        # an idle band is held back for every candidate, so whatever `select` keeps,
        # `plan_round` can serve even if it has to idle some of them
        room = (band[c] - len(members) * _IDLE_BAND_HZ) * (1.0 - _BAND_MARGIN)
        fits = np.cumsum(need[order]) <= room
        keep[order[fits]] = True
    return np.sort(idx[keep])


def free_band_hz(world: World, state: RoundState) -> np.ndarray:
    """Each cell's band this decision may share: all of it in synchronous rounds, what
    the jobs in flight leave free in the asynchronous modes."""
    return world.bandwidth_hz if state.band_free_hz is None else np.asarray(state.band_free_hz, dtype=float)


def restricted_world(world: World, state: RoundState, idx: np.ndarray) -> World:
    """The world of devices `idx` alone, in their current cells with this round's gains
    (and positions and distances): the sub-problem the round's allocation solves. Where
    the network has interference, the gains are scaled by what each device's base station
    measured over its last upload (RoundState.planning_gain)."""
    n = world.n_devices
    # per-device fields that may be empty (static worlds built by hand keep their defaults)
    optional = {name: getattr(world, name)[idx] for name in ("shadowing_z", "home_cell", "battery_j")
                if len(getattr(world, name)) == n}
    optional.update({name: tuple(getattr(world, name)[i] for i in idx) for name in ("availability", "mobility")
                     if len(getattr(world, name)) == n})
    return replace(
        world,
        cell_of=state.cell_of[idx], position_m=state.position_m[idx], distance_m=state.distance_m[idx],
        gain=state.planning_gain(world.noise_w_per_hz[state.cell_of], world.constants.outage)[idx],
        f_max_hz=world.f_max_hz[idx], eps=world.eps[idx], p_max_w=world.p_max_w[idx],
        d_loc_per_class=world.d_loc_per_class[idx], **optional,
    )


class FimiOnline(Fimi):
    """FIMI's amounts and class split; f, b, P re-solved each round on realised gains."""

    name = "fimi-online"

    def plan(self, world: World, context: PlanContext) -> Plan:
        """FIMI's static plan (Fimi.plan): its synthetic amounts and class split are kept
        for the whole run; its resources are the fall-back of an empty round."""
        return super().plan(world, context)

    def select(self, state: RoundState, context: PlanContext) -> np.ndarray:
        """The default participants (every available device, or the round's common
        draw of K), less those that cannot make T_max this round whatever they are given:
        a device in a fade so deep that even its cell's whole band at P_max, after
        training at f_max, is too slow, or the devices of a cell whose least bands add up
        to more than the band (the neediest are left out first, see `deadline_keepers`).
        They would only be stragglers; left out, they spend nothing.

        Keeping the common draw and filtering it (rather than drawing among the
        feasible) keeps a comparison with static FIMI to the resource decision alone.
        The world's limits come from `context.world`; without it (a hook called outside
        the engine) every default participant is kept and `plan_round` idles the
        hopeless ones.
        """
        chosen = super().select(state, context)
        if context.world is None or context.plan is None or len(chosen) == 0:
            return chosen
        return deadline_keepers(context.world, state, chosen, context.plan.d_gen)

    def plan_round(self, world: World, state: RoundState, context: PlanContext) -> RoundPlan:
        """f, b, P of the selected devices by the exact solver of (P1) with D_gen fixed
        to the static plan's amounts, for the selected devices alone with this round's
        gains and cells (`restricted_world`) in the band they may share (in the
        asynchronous modes what jobs in flight leave free); the other entries keep the
        static plan's.

        A selected device that cannot be on time (only possible when `select` was called
        without the world) is told to idle: f, P at a millionth of their limits and a 1 Hz
        band, taken from its cell's band before the others are solved for.
        """
        plan = context.plan
        assert plan is not None
        selected = np.asarray(state.selected, dtype=np.int64)
        f, b, p = plan.f_hz.copy(), plan.b_hz.copy(), plan.p_w.copy()
        if len(selected) == 0:
            return RoundPlan(f_hz=f, b_hz=b, p_w=p)
        served = deadline_keepers(world, state, selected, plan.d_gen)
        idle = np.setdiff1d(selected, served)
        f[idle], p[idle] = world.f_max_hz[idle] * _IDLE_FRACTION, world.p_max_w[idle] * _IDLE_FRACTION
        b[idle] = _IDLE_BAND_HZ
        if len(served):
            taken = np.bincount(state.cell_of[idle], minlength=world.n_cells) * _IDLE_BAND_HZ
            sub = replace(restricted_world(world, state, served), bandwidth_hz=free_band_hz(world, state) - taken)
            solution = solve_resources(sub, plan.d_gen[served], solver="exact")
            f[served], b[served], p[served] = solution.f_hz, solution.b_hz, solution.p_w
        return RoundPlan(f_hz=f, b_hz=b, p_w=p)
