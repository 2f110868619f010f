"""FIMI (Li et al., IEEE TMC 2024): the optimiser of Section IV decides each device's
synthetic amount and its CPU frequency, sub-band and power (Algorithms 1-3, or the exact
solver); water-filling (Theorem 3) spreads the amount over classes; the scenario's generator
(`generator.kind`, the diffusion model by default) serves the images."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simfl.optim.cross_entropy import history_frame
from simfl.optim.fimi import integer_d_gen, plan_from_solution, solve
from simfl.optim.waterfill import waterfill
from simfl.plan import Plan
from simfl.policy import Policy, PlanContext
from simfl.world import World


class Fimi(Policy):
    """Filling the missing: optimised amounts, water-filled over classes, diffusion data."""

    name = "fimi"
    generator: str | None = None  # None: the scenario's generator.kind (diffusion by default)
    equal_bandwidth = False

    def plan(self, world: World, context: PlanContext) -> Plan:
        """The optimiser's plan (Section IV). Planned for the expected transmitters of K of
        N (`optimisation.plan_for`), each device's sub-band is its equal share of its cell's
        band among them: the cells then decouple, and the devices are tied only by the
        learning target (12a)'s one multiplier, so a million phones plan in 1.5 minutes (the
        band among the round's actual devices is the round's decision: shared by the
        K-of-N rule, or re-solved by fimi-online)."""
        equal_bandwidth = self.equal_bandwidth or world.plans_for_expected_transmitters
        solution = solve(world, solver=context.solver, rng=context.rng,
                         settings=context.cross_entropy, equal_bandwidth=equal_bandwidth)
        # the policy's own class split of the whole samples (water-filling here, others in HDC and no-OA)
        per_class = self.spread(world, integer_d_gen(world, solution))
        plan = plan_from_solution(world, solution, self.generator or context.generator, d_gen_per_class=per_class)
        return replace(plan, info=solution_info(solution, plan))

    def spread(self, world: World, d_gen: np.ndarray) -> np.ndarray:
        """Category-wise synthesis, Problem (P8): maximise each device's data entropy."""
        return waterfill(world.d_loc_per_class, d_gen)


def solution_info(solution, plan: Plan) -> dict:
    """The plan's diagnostics plus the CE trajectory (Fig. 5a) when there is one."""
    info = dict(plan.info)
    if solution.history is not None:
        info["ce_history"] = history_frame(solution.history).to_dict("records")
    return info
