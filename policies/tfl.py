"""Traditional FL (McMahan et al. 2017; Section V-B): no synthetic data; CPU frequency,
sub-band and power still optimised for energy under the round deadline, as in FIMI. The
ablation "w/o DA" of Fig. 5(e) (FIMI without data augmentation) is the same plan."""

from __future__ import annotations

import numpy as np

from simfl.optim.fimi import solve
from simfl.plan import Plan
from simfl.policy import Policy, PlanContext
from simfl.world import World


class Tfl(Policy):
    """Local data only; resources optimised."""

    name = "tfl"

    def plan(self, world: World, context: PlanContext) -> Plan:
        solution = solve(world, solver=context.solver, rng=context.rng, d_gen=np.zeros(world.n_devices, dtype=np.int64))
        return Plan.no_synthesis(world, f_hz=solution.f_hz, b_hz=solution.b_hz, p_w=solution.p_w, info=solution.info)


class FimiNoDa(Tfl):
    """Ablation w/o DA (Fig. 5e): FIMI's resource allocation without synthetic data."""

    name = "fimi-no-da"
