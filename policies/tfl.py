"""Traditional FL (McMahan et al. 2017; Section V-B): no synthetic data; CPU frequency,
sub-band and power still optimised for energy under the round deadline, as in FIMI. The
ablation "w/o DA" of Fig. 5(e) (FIMI without data augmentation) is the same plan."""

from __future__ import annotations

from dataclasses import replace

from simfl.policies.fimi import solution_info
from simfl.optim.fimi import plan_from_solution, solve
from simfl.plan import Plan
from simfl.policy import Policy, PlanContext
from simfl.world import World


class Tfl(Policy):
    """Local data only; resources optimised."""

    name = "tfl"

    def plan(self, world: World, context: PlanContext) -> Plan:
        solution = solve(world, solver=context.solver, rng=context.rng,
                         settings=context.cross_entropy, synthesis=False)
        plan = plan_from_solution(world, solution, generator=None)
        return replace(plan, info=solution_info(solution, plan))


class FimiNoDa(Tfl):
    """Ablation w/o DA (Fig. 5e): FIMI's resource allocation without synthetic data."""

    name = "fimi-no-da"
