"""Server-side training (Section V-B): devices train on local data only (resources
optimised as in TFL); the synthetic data FIMI would have sent to the devices stays at the
server, which trains on it every round and adds its update to the aggregation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from simfl.aggregation import default_aggregate
from simfl.policies.fimi import Fimi
from simfl.policies.tfl import Tfl
from simfl.learning.protocol import LocalUpdate, Server
from simfl.network import RoundState
from simfl.plan import Plan
from simfl.policy import Policy, PlanContext
from simfl.world import World


class Sst(Policy):
    """No device-side synthesis; the server keeps FIMI's synthetic set (the same
    per-class totals, from the diffusion model) and trains on it each round."""

    name = "sst"

    def plan(self, world: World, context: PlanContext) -> Plan:
        kept = Fimi().plan(world, context.restarted()).d_gen_per_class.sum(axis=0)
        return replace(Tfl().plan(world, context.restarted()), generator=context.generator, server_synthetic_per_class=kept)

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        """FedAvg of the devices' updates and the server's own, weighted by samples; the
        server always contributes, so with no device arriving the global model is its."""
        return default_aggregate([*updates, server.server_update(state.round, state.version)], server,
                                 state.version, state.aggregation)
