"""One SimPy environment for a whole run, whatever the aggregation mode."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Generator

import numpy as np
import simpy

from simfl.engine.asynchronous import AsyncServer
from simfl.engine.channel import ChannelPath
from simfl.engine.dispatch import synthetic_download
from simfl.engine.interference import InterferenceMedium
from simfl.engine.records import DeviceRecord, EngineState, RoundRecord
from simfl.engine.synchronous import server_process
from simfl.learning.protocol import Trainer
from simfl.network import Network
from simfl.plan import Plan, check_plan
from simfl.policy import FixedPlan, PlanContext, Policy
from simfl.streams import rng
from simfl.world import World


def run(world: World, plan: Plan, trainer: Trainer, rounds: int, seed: int,
        state: EngineState = EngineState(),
        on_round: Callable[[RoundRecord, list[DeviceRecord], EngineState], None] | None = None,
        policy: Policy | None = None, context: PlanContext | None = None,
        synthetic_bits: np.ndarray | None = None) -> EngineState:
    """Play rounds `state.next_round .. rounds-1` (aggregations, in the asynchronous
    modes; fewer when `world.constants.max_time_s` is reached first) in one SimPy
    environment; call `on_round(record, devices, state)` after each one with the state
    to resume from.

    `policy` supplies the round hooks (default: the plan as given, every default hook);
    `synthetic_bits` per device are sent over modelled downlinks before the first round.
    Returns the state after the last round.
    """
    check_plan(world, plan)
    policy = policy or FixedPlan(plan)
    context = replace(context or PlanContext(scenario=None, rng=rng(seed, "policy")), seed=seed, plan=plan,
                      participants_per_round=world.constants.participants_per_round, world=world,
                      server=trainer)
    network = Network(world, seed)
    if state.network:
        network.load_state_dict(state.network)
    if state.policy:
        policy.load_state_dict(state.policy)
    env = simpy.Environment(initial_time=state.time_s)
    result = [state]
    channel = ChannelPath(world, network) if network.channel_step_s is not None else None
    rates: ChannelPath | InterferenceMedium | None = channel
    if world.constants.interference == "co_channel":
        rates = InterferenceMedium(env, world, network, seed, inner=channel)
    if world.constants.aggregation.asynchronous:

        def asynchronous() -> Generator[simpy.Event, Any, None]:
            server = AsyncServer(env, world, network, policy, context, trainer, state, rates)
            yield from synthetic_download(env, world, network, state, synthetic_bits, server.synthesis)
            yield from server.process(rounds, on_round, result)

        env.process(asynchronous())
    else:
        env.process(server_process(env, world, network, policy, context, trainer,
                                   rounds, state, synthetic_bits, on_round, result, rates))
    env.run()
    return result[0]
