"""FIMI (Li et al., IEEE TMC 2024): the optimiser of Section IV decides each device's
synthetic amount and its CPU frequency, sub-band and power (Algorithms 1-3, or the exact
solver); water-filling (Theorem 3) spreads the amount over classes; the diffusion model
serves the images."""

from __future__ import annotations

from simfl.optim.fimi import solve
from simfl.optim.waterfill import waterfill
from simfl.plan import Plan
from simfl.policy import Policy, PlanContext
from simfl.world import World


class Fimi(Policy):
    """Filling the missing: optimised amounts, water-filled over classes, diffusion data."""

    name = "fimi"
    generator = "diffusion"
    equal_bandwidth = False

    def plan(self, world: World, context: PlanContext) -> Plan:
        solution = solve(world, solver=context.solver, rng=context.rng, equal_bandwidth=self.equal_bandwidth)
        return Plan(
            d_gen_per_class=self.spread(world, solution.d_gen),
            f_hz=solution.f_hz,
            b_hz=solution.b_hz,
            p_w=solution.p_w,
            generator=self.generator,
            info=solution.info,
        )

    def spread(self, world: World, d_gen):
        """Category-wise synthesis, Problem (P8): maximise each device's data entropy."""
        return waterfill(world.d_loc_per_class, d_gen)
