"""Equal share: no synthetic data; every device runs at f_max, sends at P_max and gets an
equal slice of its cell's band. The simplest resource baseline: nothing is optimised."""

from __future__ import annotations

import numpy as np

from simfl.plan import Plan
from simfl.policy import Policy, PlanContext
from simfl.world import World


class EqualShare(Policy):
    """Every device gets B_k / I_k of its cell's band, f_max and P_max; no synthesis."""

    name = "equal-share"

    def plan(self, world: World, context: PlanContext) -> Plan:
        per_cell = np.bincount(world.cell_of, minlength=world.n_cells)
        b_hz = world.bandwidth_hz[world.cell_of] / per_cell[world.cell_of]
        return Plan.no_synthesis(world, f_hz=world.f_max_hz, b_hz=b_hz, p_w=world.p_max_w)
