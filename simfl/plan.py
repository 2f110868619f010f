"""A plan: what a policy decides before training, per device (Section III-A, step S1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simfl.errors import InfeasiblePlan
from simfl.jobs import DeviceCosts, device_costs
from simfl.world import World

# Relative slack when checking a plan against its limits: solvers stop at a tolerance.
_SLACK = 1e-6


@dataclass(frozen=True)
class Plan:
    """Per device: synthetic amount (total and per class), CPU frequency, sub-band and
    transmit power; plus what the server keeps for itself (SST, CLSD).

    `generator` names the generative model that serves the synthetic data ("diffusion",
    "gan" or None when no device gets any). `info` carries solver diagnostics.
    """

    d_gen_per_class: np.ndarray  # (I, C) int
    f_hz: np.ndarray  # (I,)
    b_hz: np.ndarray  # (I,)
    p_w: np.ndarray  # (I,)
    generator: str | None = None
    server_synthetic_per_class: np.ndarray | None = None  # (C,) int, SST/CLSD
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def d_gen(self) -> np.ndarray:
        return self.d_gen_per_class.sum(axis=1)

    @staticmethod
    def no_synthesis(world: World, f_hz: np.ndarray, b_hz: np.ndarray, p_w: np.ndarray, **kwargs: Any) -> Plan:
        zeros = np.zeros(world.d_loc_per_class.shape, dtype=np.int64)
        return Plan(d_gen_per_class=zeros, f_hz=np.asarray(f_hz, float), b_hz=np.asarray(b_hz, float),
                    p_w=np.asarray(p_w, float), **kwargs)


@dataclass(frozen=True)
class RoundPlan:
    """CPU frequency, sub-band and transmit power of every device for one round (the
    entries of devices not selected are not used)."""

    f_hz: np.ndarray  # (I,)
    b_hz: np.ndarray  # (I,)
    p_w: np.ndarray  # (I,)
    # Local epochs per device this round, where a policy sets them per round (a Flower
    # strategy's `local-epochs`); None: the task's tau for everyone. Computation time and
    # energy (eqs. 5-6) scale with it.
    epochs: np.ndarray | None = None

    @staticmethod
    def fitted(world: World, plan: Plan, cell_of: np.ndarray, selected: np.ndarray,
               concurrency: int | None = None, band_hz: np.ndarray | None = None) -> RoundPlan:
        """The static plan's resources, with the selected devices' sub-bands scaled down
        in proportion in any cell whose band they would overfill (after a handover).

        Asynchronous modes (`concurrency` M, `band_hz` the band per cell that jobs in
        flight leave free): the static plan shares each cell's band among all its
        devices, but at most min(M, n_cell) of them transmit at once, so every device's
        planned share is first scaled up by B / (the sum of the min(M, n_cell) largest
        planned shares of its home cell): any min(M, n_cell) of them then fit the band.
        The selected devices are then fitted into the free band of the cell they are in.
        """
        b = np.array(plan.b_hz, dtype=float)
        if concurrency is not None:
            for k in range(world.n_cells):
                home = world.cell_of == k
                at_once = min(concurrency, int(home.sum()))
                top = np.sort(b[home])[::-1][:at_once].sum()
                if top > 0:
                    b[home] *= world.bandwidth_hz[k] / top
        if band_hz is None and np.array_equal(cell_of, world.cell_of):
            return RoundPlan(f_hz=plan.f_hz, b_hz=b, p_w=plan.p_w)
        budget = world.bandwidth_hz if band_hz is None else band_hz
        members = np.zeros(world.n_devices, dtype=bool)
        members[selected] = True
        for k in range(world.n_cells):
            mine = members & (cell_of == k)
            used = b[mine].sum()
            if used > budget[k]:
                b[mine] *= budget[k] / used
        return RoundPlan(f_hz=plan.f_hz, b_hz=b, p_w=plan.p_w)


def shared_among_selected(world: World, plan: Plan, cell_of: np.ndarray, selected: np.ndarray) -> RoundPlan:
    """The static plan's resources with each cell's band shared among the selected devices
    in it, in the plan's proportions (TFL's equal shares stay equal): what K of N devices
    use when a static plan was made for all N (task.participants_per_round)."""
    b = np.array(plan.b_hz, dtype=float)
    chosen = np.unique(np.asarray(selected, dtype=np.int64))  # sorted: each cell's sum in device order
    cells = cell_of[chosen]
    for k in np.unique(cells).tolist():  # the selected devices' cells only: K, not N, per round
        mine = chosen[cells == k]
        planned = b[mine].sum()
        if planned > 0:
            b[mine] = world.bandwidth_hz[k] * (b[mine] / planned)
    return RoundPlan(f_hz=plan.f_hz, b_hz=b, p_w=plan.p_w)


def check_round_plan(world: World, plan: RoundPlan, cell_of: np.ndarray, selected: np.ndarray,
                     band_hz: np.ndarray | None = None) -> None:
    """Raise InfeasiblePlan naming the first selected device and the limit of (P1) that
    this round's resources break (12d-f), with the cells the devices are in now; `band_hz`
    is each cell's band still free (asynchronous modes: what jobs in flight do not hold)."""
    sel = np.asarray(selected, dtype=np.int64)
    _check_values(world, plan, sel, "round plan .")
    _check_limits(world, plan, sel, cell_of, "this round's ", band_hz)


def _check_values(world: World, plan: Plan | RoundPlan, devices: np.ndarray, label: str) -> None:
    """f, b, P of the right shape, finite and > 0 for `devices`."""
    n = world.n_devices
    for name, arr in (("f_hz", plan.f_hz), ("b_hz", plan.b_hz), ("p_w", plan.p_w)):
        if np.shape(arr) != (n,):
            raise InfeasiblePlan(f"{label}{name} has shape {np.shape(arr)}, expected ({n},) for {n} devices")
        bad = devices[~np.isfinite(arr[devices]) | (arr[devices] <= 0)]
        if bad.size:
            raise InfeasiblePlan(f"device {bad[0]}: {label}{name} = {arr[bad[0]]!r}; it must be finite and > 0")


def _check_limits(world: World, plan: Plan | RoundPlan, devices: np.ndarray, cell_of: np.ndarray,
                  band_label: str, band_hz: np.ndarray | None = None) -> None:
    """(12d) f <= f_max, (12f) P <= P_max for `devices`, and (12e) their sub-bands within
    each cell's band, the cells being `cell_of`."""
    over = devices[plan.f_hz[devices] > world.f_max_hz[devices] * (1 + _SLACK)]
    if over.size:
        i = over[0]
        raise InfeasiblePlan(f"device {i}: CPU frequency {plan.f_hz[i]:.4g} Hz exceeds f_max {world.f_max_hz[i]:.4g} Hz (12d)")
    over = devices[plan.p_w[devices] > world.p_max_w[devices] * (1 + _SLACK)]
    if over.size:
        i = over[0]
        raise InfeasiblePlan(f"device {i}: transmit power {plan.p_w[i]:.4g} W exceeds P_max {world.p_max_w[i]:.4g} W (12f)")
    for k in range(world.n_cells):
        used = plan.b_hz[devices[cell_of[devices] == k]].sum()
        if band_hz is not None and used > band_hz[k] * (1 + _SLACK) + 1e-9:
            raise InfeasiblePlan(f"cell {world.cell_names[k]}: {band_label}sub-bands add up to {used:.6g} Hz, over "
                                 f"the {band_hz[k]:.6g} Hz of the cell's band B = {world.bandwidth_hz[k]:.6g} Hz that "
                                 "jobs in flight leave free (12e)")
        if used > world.bandwidth_hz[k] * (1 + _SLACK):
            raise InfeasiblePlan(f"cell {world.cell_names[k]}: {band_label}sub-bands add up to {used:.6g} Hz, over "
                                 f"the cell's band B = {world.bandwidth_hz[k]:.6g} Hz (12e)")


def plan_costs(world: World, plan: Plan, gain: np.ndarray | None = None) -> DeviceCosts:
    """Latency and energy of each device for one round under `plan` (mean gains unless given)."""
    k = world.constants
    return device_costs(k.tau, k.omega_cycles, k.model_bits, world.eps, world.d_loc + plan.d_gen, plan.f_hz,
                        plan.b_hz, plan.p_w, world.gain if gain is None else gain, world.device_noise_w_per_hz)


def check_plan(world: World, plan: Plan) -> None:
    """Raise InfeasiblePlan naming the first device and constraint of (P1) the plan breaks
    (resource limits only: the learning constraint is a policy's own business)."""
    n, c = world.n_devices, world.n_classes
    every = np.arange(n)
    _check_values(world, plan, every, "plan.")
    if plan.d_gen_per_class.shape != (n, c):
        raise InfeasiblePlan(f"plan.d_gen_per_class has shape {plan.d_gen_per_class.shape}, expected ({n}, {c})")
    if (plan.d_gen_per_class < 0).any():
        i = int(np.argwhere(plan.d_gen_per_class < 0)[0][0])
        raise InfeasiblePlan(f"device {i}: negative synthetic amount in d_gen_per_class")
    # a static plan's sub-bands fill the band it was planned on (World.planning_band_hz)
    _check_limits(world.with_planning_band(), plan, every, world.cell_of, "")
