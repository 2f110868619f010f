"""Synchronous rounds in simulated time: the server process of `aggregation.mode: sync`.

Each round the server observes the network (positions, serving cells, this round's
fading, who is online), lets the policy select the participants and set their resources,
dispatches the jobs (a process each, engine.job), collects every job's report until all
have come in (a lost job reports at the deadline T_max, a straggler is cut there), and
aggregates the updates that arrived through the policy's hook.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Generator

import numpy as np
import simpy

from simfl.engine.clock import at
from simfl.engine.dispatch import (DEADLINE_GRACE, charge_battery, checked_selection, device_record, make_jobs,
                                   synthetic_download)
from simfl.engine.job import Job, RateSource, job_process
from simfl.engine.records import DeviceRecord, EngineState, RoundRecord
from simfl.engine.synthesis import Synthesis
from simfl.jobs import BATTERY, OFFLINE, OK, STRAGGLER
from simfl.learning.protocol import Trainer
from simfl.network import Network
from simfl.plan import check_round_plan
from simfl.policy import PlanContext, Policy
from simfl.world import World


def server_process(env: simpy.Environment, world: World, network: Network, policy: Policy,
                   context: PlanContext, trainer: Trainer, rounds: int, state: EngineState,
                   synthetic_bits: np.ndarray | None,
                   on_round: Callable[[RoundRecord, list[DeviceRecord], EngineState], None] | None,
                   result: list[EngineState], rates: RateSource | None = None) -> Generator[simpy.Event, Any, None]:
    """Synchronous rounds until `rounds` are played (or no device can ever take part);
    `rates`: the channel uploads meet while they run, where it changes in time."""
    k = world.constants
    outbox = simpy.Store(env)  # where every job reports
    synthesis = Synthesis(context.plan, k.synthesis_images_per_s, state.synthesised)
    yield from synthetic_download(env, world, network, state, synthetic_bits, synthesis)
    while state.next_round < rounds and state.time_s < k.max_time_s:
        r = state.next_round
        start = env.now
        view = network.observe(start, r, state.version)
        if not view.available.any():
            wake = network.next_online_s()
            if not math.isfinite(wake):
                break  # every device is offline for good or out of battery: the run ends
            yield at(env, wake)
            continue
        selected = checked_selection(policy.select(view, context), view)
        if not selected.size and getattr(policy, "waits_for_devices", False):
            # the policy waits for more devices (a Flower strategy short of its minimum):
            # no round is played until the next device comes online
            wake = network.next_online_s()
            if not math.isfinite(wake):
                break
            yield at(env, wake)
            continue
        view = replace(view, selected=selected, aggregation=k.aggregation)
        round_plan = policy.plan_round(world, view, context)
        check_round_plan(world, round_plan, view.cell_of, selected)

        making = synthesis.wait_s(selected, first=r == 0)
        if making > 0:
            yield at(env, start + making)
        dispatch = env.now
        deadline_s = dispatch + k.t_max_s * (1.0 + DEADLINE_GRACE)
        deadline = at(env, deadline_s)
        for job in make_jobs(world, context.plan, round_plan, view, selected, dispatch, deadline_s):
            if rates is not None:
                rates.track(job)
            env.process(job_process(env, job, outbox, deadline, rates))
        jobs: dict[int, Job] = {}
        while len(jobs) < len(selected):
            job = yield outbox.get()
            jobs[job.device] = job
        delivered = [i for i, job in jobs.items() if job.outcome == OK]

        for i in sorted(jobs):
            entry = jobs[i].entry()
            charge_battery(world, network, i, round_plan.f_hz[i], round_plan.p_w[i], entry)
            network.measured(i, jobs[i].b_hz, entry)
        devices = [device_record(world, r, i, jobs[i].start_cell, jobs[i].gain, round_plan.f_hz[i],
                                 round_plan.b_hz[i], round_plan.p_w[i], jobs[i].entry(), state.version, float(network.battery_j[i]),
                                 0 if jobs[i].outcome == OK else -1) for i in sorted(jobs)]
        participants = np.array(sorted(delivered), dtype=np.int64)
        updates = trainer.local_updates(r, participants, state.version) if len(participants) else []
        new_global = policy.aggregate(updates, trainer, view)
        if new_global is not None:
            trainer.set_global(new_global)
        metrics = trainer.evaluate()
        if k.aggregation_delay_s > 0:
            yield at(env, env.now + k.aggregation_delay_s)  # the devices wait for the new model meanwhile
        end = env.now
        energy = sum(d.e_cmp_j + d.e_com_j for d in devices)
        bits = sum(d.bits_sent for d in devices)
        outcomes = [d.outcome for d in devices]
        record = RoundRecord(
            round=r, start_s=start, end_s=end, duration_s=end - start,
            energy_j=energy, cum_energy_j=state.cum_energy_j + energy,
            uplink_bits=bits, cum_uplink_bits=state.cum_uplink_bits + bits,
            participants=len(participants), stragglers=outcomes.count(STRAGGLER),
            accuracy=float(metrics.accuracy), loss=float(metrics.loss),
            available=int(view.available.sum()), selected=len(selected),
            dropouts=outcomes.count(OFFLINE), depleted=outcomes.count(BATTERY), version=state.version + 1,
        )
        state = EngineState(next_round=r + 1, time_s=end, cum_energy_j=record.cum_energy_j,
                            cum_uplink_bits=record.cum_uplink_bits, version=state.version + 1,
                            network=network.state_dict(), policy=policy.state_dict(),
                            synthesised=synthesis.state())
        result[0] = state
        if on_round is not None:
            on_round(record, devices, state)
