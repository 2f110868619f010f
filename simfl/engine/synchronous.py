"""Synchronous rounds in simulated time: the server process of `aggregation.mode: sync`.

Each round the server observes the network (positions, serving cells, this round's
fading, who is online), lets the policy select the participants and set their resources,
dispatches the jobs, collects the updates until all have arrived or the deadline T_max
passes, and aggregates them through the policy's hook. A long-lived process per device
takes its jobs from an inbox and reports through a `simpy.Store`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Generator, cast

import numpy as np
import simpy

from simfl.engine.dispatch import (DEADLINE_GRACE, charge_battery, checked_selection, device_record, make_jobs,
                                   synthetic_download)
from simfl.engine.records import DeviceRecord, EngineState, RoundRecord
from simfl.jobs import BATTERY, OFFLINE, OK, STRAGGLER, Course
from simfl.learning.protocol import Trainer
from simfl.network import Network
from simfl.plan import check_round_plan
from simfl.policy import PlanContext, Policy
from simfl.world import World


class Rounds:
    """The mutable parts of a synchronous run: the devices' inboxes, the server's outbox
    and the current round's log."""

    def __init__(self, env: simpy.Environment, n_devices: int) -> None:
        self.env = env
        self.inbox = [simpy.Store(env, capacity=1) for _ in range(n_devices)]
        self.updates = simpy.Store(env)
        self.log: dict[int, dict[str, Any]] = {}
        for i in range(n_devices):
            env.process(device_process(env, i, self))


def device_process(env: simpy.Environment, device: int, run: Rounds) -> Generator[simpy.Event, Any, None]:
    """A device for the whole run: take a job, run its course (receive, compute, upload),
    report; again. A straggler does not report: the server cuts it at the deadline."""
    while True:
        version, job_course = cast(tuple[int, Course], (yield run.inbox[device].get()))
        if job_course.end_s > env.now:
            yield env.timeout(job_course.end_s - env.now)
        if job_course.outcome != STRAGGLER:
            run.updates.put((device, version, job_course.outcome))


def log_entry(job_course: Course, rate_bps: float) -> dict[str, Any]:
    """A job's row of the round's log (what `device_record` turns into events.csv)."""
    return {"download_start_s": job_course.start_s, "compute_start_s": job_course.compute_start_s,
            "compute_end_s": job_course.compute_end_s, "upload_start_s": job_course.compute_end_s,
            "upload_end_s": job_course.end_s, "outcome": job_course.outcome, "rate_bps": rate_bps}


def server_process(env: simpy.Environment, run: Rounds, world: World, network: Network, policy: Policy,
                   context: PlanContext, trainer: Trainer, rounds: int, state: EngineState,
                   synthetic_bits: np.ndarray | None,
                   on_round: Callable[[RoundRecord, list[DeviceRecord], EngineState], None] | None,
                   result: list[EngineState]) -> Generator[simpy.Event, Any, None]:
    """Synchronous rounds until `rounds` are played (or no device can ever take part)."""
    k = world.constants
    yield from synthetic_download(env, world, network, state, synthetic_bits)
    while state.next_round < rounds and state.time_s < k.max_time_s:
        r = state.next_round
        start = env.now
        view = network.observe(start, r, state.version)
        if not view.available.any():
            wake = network.next_online_s()
            if not math.isfinite(wake):
                break  # every device is offline for good or out of battery: the run ends
            yield env.timeout(wake - env.now)
            continue
        selected = checked_selection(policy.select(view, context), view)
        view = replace(view, selected=selected, aggregation=k.aggregation)
        round_plan = policy.plan_round(world, view, context)
        check_round_plan(world, round_plan, view.cell_of, selected)

        jobs = make_jobs(world, context.plan, round_plan, view, selected)
        deadline_s = start + k.t_max_s * (1.0 + DEADLINE_GRACE)
        run.log = {}
        for i, (job, rate) in zip(selected.tolist(), jobs):
            job_course = job.course(start, deadline_s)
            run.log[i] = log_entry(job_course, rate)
            run.inbox[i].put((job.version, job_course))
        deadline = env.timeout(deadline_s - start)
        pending, lost, delivered = set(selected.tolist()), False, []
        while pending:
            get = run.updates.get()
            fired: Any = yield get | deadline
            if get not in fired:
                get.cancel()
                break
            device, _, outcome = cast(tuple[int, int, str], get.value)  # (device, model version, outcome)
            pending.discard(device)
            if outcome == OK:
                delivered.append(device)
            else:
                lost = True
        if lost and not pending and not deadline.processed:
            yield deadline  # the server cannot know a silent device is gone: it waits out T_max
        run.updates.items.clear()

        for i in sorted(run.log):
            charge_battery(world, network, i, round_plan.f_hz[i], round_plan.p_w[i], run.log[i])
        devices = [device_record(world, r, i, int(view.cell_of[i]), float(view.gain[i]), round_plan.f_hz[i],
                                 round_plan.p_w[i], run.log[i], state.version, float(network.battery_j[i]),
                                 0 if run.log[i]["outcome"] == OK else -1) for i in sorted(run.log)]
        participants = np.array(sorted(delivered), dtype=np.int64)
        updates = trainer.local_updates(r, participants, state.version) if len(participants) else []
        new_global = policy.aggregate(updates, trainer, view)
        if new_global is not None:
            trainer.set_global(new_global)
        metrics = trainer.evaluate()
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
                            network=network.state_dict(), policy=policy.state_dict())
        result[0] = state
        if on_round is not None:
            on_round(record, devices, state)
