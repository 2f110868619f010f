"""Centralised learning on synthetic data (CLSD, Section V-B): no federated training at
all; the server trains the model on the synthetic data alone. The set has FIMI's
per-class totals, from the diffusion model, so it shows what the synthetic data is worth
without the devices' real data (Fig. 4). Devices spend no energy and send nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from simfl.policies.equal_share import EqualShare
from simfl.policies.fimi import Fimi
from simfl.learning.protocol import LocalUpdate, Server
from simfl.network import RoundState
from simfl.plan import Plan
from simfl.policy import Policy, PlanContext
from simfl.world import World


class Clsd(Policy):
    """The server trains alone on FIMI's synthetic set; no device takes part."""

    name = "clsd"

    def plan(self, world: World, context: PlanContext) -> Plan:
        kept = Fimi().plan(world, context.restarted()).d_gen_per_class.sum(axis=0)
        # The device part of the plan is never executed; it only has to be valid.
        return replace(EqualShare().plan(world, context), generator=context.generator, server_synthetic_per_class=kept)

    def select(self, state: RoundState, context: PlanContext) -> np.ndarray:
        return np.zeros(0, dtype=np.int64)

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        return server.fedavg([server.server_update(state.round)])
