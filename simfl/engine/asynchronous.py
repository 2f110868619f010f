"""FedBuff and FedAsync in simulated time: the server process of the asynchronous modes.

Every available device, up to `max_concurrency` M at once, takes the current global model,
trains and uploads on its own sub-band, and is then free for the next job. Whenever a
slot is free the server observes the network, lets the policy `select` among the idle
available devices (K = the free slots) and `plan_round` their f, b, P, and dispatches
them. A job is one synchronous round's work for one device (eqs. 5-9 with FIMI's
synthetic amounts when the policy sends them), bounded by T_max: a device still busy
T_max after its dispatch is cut (a straggler), and one that went offline or emptied its
battery stays silent until then, since the server cannot know. A job's whole course is
fixed at its dispatch (block fading, the rate of its sub-band, when its device goes
offline or empties), so its device process waits for the absolute times of its phases
and a resumed run replays it exactly.

Arrivals are kept in a buffer (FedBuff: aggregated every `buffer_size` arrivals) or
aggregated one by one (FedAsync), through the policy's `aggregate` hook. Local training
runs lazily, when an update is aggregated, from the model version it was dispatched with
(kept until no job needs it), seeded by (base version, device, repeat) like a synchronous
round's, so FedBuff with K = N equally fast devices and no staleness trains and averages
exactly what synchronous rounds do.

Each aggregation is one row of rounds.csv: the energy and bits spent since the previous
one (jobs in flight counted up to the aggregation time, so energy to reach a target is
what was spent by then), the updates aggregated, and the accuracy (every `eval_every`
aggregations and the last; NaN in between). Each job is one row of events.csv, written
with the aggregation that used its update (with its staleness) or, for a lost job, with
the next one after the server learnt of it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from heapq import heappush
from typing import Any, Callable, Generator

import numpy as np
import simpy

from simfl.aggregation import Aggregation
from simfl.engine.dispatch import (DEADLINE_GRACE, Job, checked_selection, charge_battery, device_record, job_bits,
                                   job_energy_j, make_jobs)
from simfl.engine.records import DeviceRecord, EngineState, RoundRecord
from simfl.errors import InfeasiblePlan
from simfl.jobs import BATTERY, OFFLINE, OK, STRAGGLER, spent_j
from simfl.learning.protocol import TrainJob, Trainer
from simfl.network import Network, RoundState
from simfl.plan import check_round_plan
from simfl.policy import PlanContext, Policy
from simfl.world import World


OnRound = Callable[[RoundRecord, list[DeviceRecord], EngineState], None]

# simpy's event priorities are URGENT = 0 and NORMAL = 1; a lower one runs after every
# normal event of the same instant.
_LATE = 2


def at(env: simpy.Environment, time_s: float, priority: int = 1) -> simpy.Event:
    """An event that fires at the absolute time `time_s`.

    `env.timeout(t - env.now)` would fire at now + (t - now), which floating point may
    put an ulp away from t; a job's phase ends are computed once at its dispatch, and a
    run resumed in the middle of a job must end it at the very same instant. simpy has no
    public call for this; its queue entries are (time, priority, id, event).
    """
    event = simpy.Event(env)
    event._ok, event._value = True, None
    queue: list[Any] = env._queue
    heappush(queue, (time_s, priority, next(env._eid), event))  # type: ignore[attr-defined]
    return event


def settled(env: simpy.Environment) -> simpy.Event:
    """An event at the current instant that fires after every other event of it: what
    the server waits for before handling arrivals, so that all the devices finishing at
    the same instant are handled together, in device order, however simpy queued them."""
    return at(env, env.now, _LATE)


@dataclass
class Flight:
    """One job: dispatched at `dispatch_s`, its course fixed then (absolute times)."""

    job: int  # dispatch number in the run
    device: int
    base_version: int  # the global model it took
    repeat: int  # its device's earlier jobs from the same base version (training seed)
    dispatch_s: float
    compute_start_s: float  # after the download (if a downlink is modelled)
    compute_end_s: float  # = upload start
    end_s: float  # upload end, or where it stopped short
    report_s: float  # when the server learns of it: its arrival, or T_max after dispatch if lost
    outcome: str
    rate_bps: float
    f_hz: float
    b_hz: float
    p_w: float
    cell: int
    gain: float
    counted_j: float = 0.0  # energy already counted in rounds.csv rows
    counted_bits: float = 0.0

    def entry(self) -> dict[str, Any]:
        """The job as a synchronous round's log entry (for `engine.device_record`)."""
        return {"download_start_s": self.dispatch_s, "compute_start_s": self.compute_start_s,
                "compute_end_s": self.compute_end_s, "upload_start_s": self.compute_end_s,
                "upload_end_s": self.end_s, "outcome": self.outcome, "rate_bps": self.rate_bps}

    def spent(self, world: World, time_s: float) -> tuple[float, float]:
        """Energy (J) and bits the job has spent by `time_s`: the final eqs. (5) and (9)
        once it has ended, power times elapsed time before."""
        if time_s >= self.end_s:
            e_cmp, e_com = job_energy_j(world, self.device, self.f_hz, self.p_w, self.entry())
            return e_cmp + e_com, job_bits(world, self.entry())
        cmp_s = max(min(time_s, self.compute_end_s) - self.compute_start_s, 0.0)
        up_s = max(time_s - self.compute_end_s, 0.0)
        e_cmp, e_com = spent_j(float(world.eps[self.device]), self.f_hz, self.p_w, cmp_s, up_s)
        return e_cmp + e_com, float(self.rate_bps * up_s)


class _Mailbox:
    """Where devices leave their finished jobs, and the event that wakes the server."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.jobs: list[int] = []
        self.signal = simpy.Event(env)

    def post(self, job: int) -> None:
        self.jobs.append(job)
        if not self.signal.triggered:
            self.signal.succeed()

    def take(self) -> list[int]:
        jobs, self.jobs = self.jobs, []
        self.signal = simpy.Event(self.env)
        return jobs


def device_process(env: simpy.Environment, inbox: simpy.Store, mailbox: _Mailbox) -> Generator[simpy.Event, Any, None]:
    """A device for the whole run: take a job, compute, upload, report; again. A lost job
    reports at the time the server gives up on it."""
    while True:
        flight: Flight = yield inbox.get()
        for t in (flight.compute_start_s, flight.compute_end_s, flight.end_s, flight.report_s):
            if t > env.now:
                yield at(env, t)
        mailbox.post(flight.job)


class AsyncServer:
    """The state of an asynchronous run between two events, and the server process."""

    def __init__(self, env: simpy.Environment, world: World, network: Network, policy: Policy, context: PlanContext,
                 trainer: Trainer, state: EngineState) -> None:
        k = world.constants
        settings = k.aggregation
        limit = settings.max_concurrency or k.participants_per_round or world.n_devices
        self.max_concurrency = min(limit, world.n_devices)
        self.settings: Aggregation = replace(settings, max_concurrency=self.max_concurrency)
        self.env, self.world, self.network, self.policy, self.trainer = env, world, network, policy, trainer
        self.context = replace(context, participants_per_round=None)
        self.state = state
        saved = state.asynchronous
        self.flights: dict[int, Flight] = {f["job"]: Flight(**f) for f in saved.get("flights", [])}
        self.buffer: list[Flight] = [Flight(**f) for f in saved.get("buffer", [])]
        self.jobs = int(saved.get("jobs", 0))
        self.decisions = int(saved.get("decisions", 0))
        self.last_base: dict[int, list[int]] = {int(d): v for d, v in saved.get("last_base", {}).items()}
        self.bases: dict[int, Any] = dict(state.models)
        self.since = saved.get("since", {"selected": 0})
        self.lost: list[Flight] = []  # lost jobs reported since the last aggregation
        self.records: list[DeviceRecord] = []  # jobs to write with the next aggregation
        self.mailbox = _Mailbox(env)
        self.inbox = [simpy.Store(env, capacity=1) for _ in range(world.n_devices)]
        for i in range(world.n_devices):
            env.process(device_process(env, self.inbox[i], self.mailbox))
        for flight in sorted(self.flights.values(), key=lambda f: f.job):
            self.inbox[flight.device].put(flight)  # a resumed run: the jobs in flight go on

    # ------------------------------------------------------------------ the process

    def process(self, rounds: int, on_round: OnRound | None, result: list[EngineState]) -> Generator[simpy.Event, Any, None]:
        """Handle what finished, fill the free slots, wait for the next arrival (or for an
        idle device to come online); until `rounds` aggregations are done, the time
        budget is spent, or nothing is in flight and nothing will change: no device will
        come online again, or the policy selects nobody among the idle ones (CLSD)."""
        env = self.env
        yield settled(env)  # a resumed run: jobs that finished at this very instant report first
        while True:
            for job in sorted(self.mailbox.take(), key=lambda j: self.flights[j].device):
                if self._over(rounds):
                    return
                self._arrive(self.flights.pop(job), on_round, result)
            if self._over(rounds):
                return
            self._dispatch()
            waits = [self.mailbox.signal] if self.flights else []
            if len(self.flights) < self.max_concurrency:
                wake = self._next_idle_online_s()
                if math.isfinite(wake):
                    waits.append(at(env, wake))
            if not waits:
                return  # every device is offline for good or out of battery: the run ends
            yield env.any_of(waits)
            yield settled(env)

    def _over(self, rounds: int) -> bool:
        """`rounds` aggregations done, or the scenario's simulated-time budget spent."""
        return self.state.next_round >= rounds or self.state.time_s >= self.world.constants.max_time_s

    def _arrive(self, flight: Flight, on_round: OnRound | None, result: list[EngineState]) -> None:
        """A job reported: charge its battery; keep its update (a lost job's energy and
        record wait for the next aggregation); aggregate when the mode says so."""
        charge_battery(self.world, self.network, flight.device, flight.f_hz, flight.p_w, flight.entry())
        if flight.outcome != OK:
            self.lost.append(flight)
            return
        self.buffer.append(flight)
        if len(self.buffer) >= self.settings.arrivals_per_aggregation:
            self._aggregate(on_round, result)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self) -> None:
        """Fill the free slots with idle available devices the policy selects."""
        free = self.max_concurrency - len(self.flights)
        if free <= 0:
            return
        world, now = self.world, self.env.now
        view = self.network.observe(now, self.decisions, self.state.version)
        busy = np.zeros(world.n_devices, dtype=bool)
        busy[[f.device for f in self.flights.values()]] = True
        idle = view.available & ~busy
        if not idle.any():
            return
        band_free = world.bandwidth_hz.astype(float).copy()
        for f in self.flights.values():
            band_free[f.cell] -= f.b_hz
        view = replace(view, available=idle, aggregation=self.settings, band_free_hz=np.maximum(band_free, 0.0))
        self.decisions += 1
        chosen = checked_selection(self.policy.select(view, replace(self.context, participants_per_round=free)), view)
        if len(chosen) > free:
            raise InfeasiblePlan(f"select() chose {len(chosen)} devices at {now:.6g} s, but only {free} of the "
                                 f"aggregation.max_concurrency = {self.max_concurrency} slots are free")
        if not len(chosen):
            return
        view = replace(view, selected=chosen)
        round_plan = self.policy.plan_round(world, view, self.context)
        check_round_plan(world, round_plan, view.cell_of, chosen, view.band_free_hz)
        grace = world.constants.t_max_s * (1.0 + DEADLINE_GRACE)
        self.bases.setdefault(self.state.version, self.trainer.global_params())
        for i, (job, rate) in zip(chosen.tolist(), make_jobs(world, self.context.plan, round_plan, view, chosen)):
            flight = self._flight(i, job, rate, now, now + grace, view, round_plan)
            self.flights[flight.job] = flight
            self.inbox[i].put(flight)
        self.since["selected"] = self.since.get("selected", 0) + len(chosen)

    def _flight(self, device: int, job: Job, rate: float, now: float, deadline: float, view: RoundState,
                round_plan: Any) -> Flight:
        """A job's whole course from its dispatch (`jobs.course`); a lost job reports at
        the deadline, when the server gives up on it."""
        run = job.course(now, deadline)
        last = self.last_base.get(device)
        repeat = last[1] + 1 if last is not None and last[0] == self.state.version else 0
        self.last_base[device] = [self.state.version, repeat]
        self.jobs += 1
        return Flight(job=self.jobs - 1, device=device, base_version=self.state.version, repeat=repeat,
                      dispatch_s=now, compute_start_s=run.compute_start_s, compute_end_s=run.compute_end_s,
                      end_s=run.end_s, report_s=run.end_s if run.outcome == OK else deadline, outcome=run.outcome,
                      rate_bps=rate, f_hz=float(round_plan.f_hz[device]), b_hz=float(round_plan.b_hz[device]),
                      p_w=float(round_plan.p_w[device]), cell=int(view.cell_of[device]), gain=float(view.gain[device]))

    def _next_idle_online_s(self) -> float:
        """When the next idle device with battery left comes online (inf: none will)."""
        availability = self.network.availability
        waiting = ~availability.online & (self.network.battery_j > 0)
        for f in self.flights.values():
            waiting[f.device] = False
        return float(availability.until_s[waiting].min()) if waiting.any() else math.inf

    # ------------------------------------------------------------------ aggregation

    def _aggregate(self, on_round: OnRound | None, result: list[EngineState]) -> None:
        """Train the buffered updates from their base models, aggregate them through the
        policy, and write the row: energy and bits spent since the last one."""
        world, state, now = self.world, self.state, self.env.now
        version, row = state.version, state.next_round
        buffer, self.buffer = self.buffer, []
        updates = self.trainer.train([TrainJob(client=f.device, key=f.base_version, base_version=f.base_version,
                                               base=self.bases[f.base_version], repeat=f.repeat) for f in buffer])
        view = self.network.observe(now, self.decisions, version)
        view = replace(view, round=row, aggregation=self.settings,
                       selected=np.array(sorted({f.device for f in buffer}), dtype=np.int64))
        new_global = self.policy.aggregate(updates, self.trainer, view)
        if new_global is not None:
            self.trainer.set_global(new_global)
        # every eval_every-th aggregation and the scenario's last (by its rounds or its
        # time budget; not the call's, so that a run stopped and resumed evaluates the same rows)
        k = self.world.constants
        evaluate = row + 1 >= k.rounds or now >= k.max_time_s or self.settings.evaluates(row, state.time_s, now)
        metrics = self.trainer.evaluate() if evaluate else None

        for f in self.lost:
            self.records.append(self._record(f, -1))
        self.records.extend(self._record(f, version - f.base_version) for f in buffer)
        energy = bits = 0.0
        for f in [*self.lost, *buffer, *self.flights.values()]:
            spent_j, spent_bits = f.spent(world, now)
            energy += spent_j - f.counted_j
            bits += spent_bits - f.counted_bits
            f.counted_j, f.counted_bits = spent_j, spent_bits
        records, self.records, self.lost = self.records, [], []
        outcomes = [r.outcome for r in records]
        record = RoundRecord(
            round=row, start_s=state.time_s, end_s=now, duration_s=now - state.time_s,
            energy_j=energy, cum_energy_j=state.cum_energy_j + energy,
            uplink_bits=bits, cum_uplink_bits=state.cum_uplink_bits + bits,
            participants=len(updates), stragglers=outcomes.count(STRAGGLER),
            accuracy=float(metrics.accuracy) if metrics else math.nan, loss=float(metrics.loss) if metrics else math.nan,
            available=int(view.available.sum()), selected=int(self.since.get("selected", 0)),
            dropouts=outcomes.count(OFFLINE), depleted=outcomes.count(BATTERY), version=version + 1,
        )
        self.since = {"selected": 0}
        self.state = EngineState(next_round=row + 1, time_s=now, cum_energy_j=record.cum_energy_j,
                                 cum_uplink_bits=record.cum_uplink_bits, version=version + 1,
                                 network=self.network.state_dict(), policy=self.policy.state_dict(),
                                 asynchronous=self._snapshot(), models=self._models_needed())
        self.bases = dict(self.state.models)
        result[0] = self.state
        if on_round is not None:
            on_round(record, records, self.state)

    def _record(self, flight: Flight, staleness: int) -> DeviceRecord:
        return device_record(self.world, self.state.next_round, flight.device, flight.cell, flight.gain, flight.f_hz,
                             flight.p_w, flight.entry(), flight.base_version, float(self.network.battery_j[flight.device]),
                             staleness)

    def _models_needed(self) -> dict[int, Any]:
        """The base models of the jobs in flight and the buffered updates (the current
        global model is saved as the checkpoint's own)."""
        needed = {f.base_version for f in [*self.flights.values(), *self.buffer]}
        return {v: m for v, m in self.bases.items() if v in needed}

    def _snapshot(self) -> dict[str, Any]:
        return {"flights": [asdict(f) for f in sorted(self.flights.values(), key=lambda f: f.job)],
                "buffer": [asdict(f) for f in self.buffer], "jobs": self.jobs, "decisions": self.decisions,
                "last_base": {str(d): v for d, v in sorted(self.last_base.items())}, "since": dict(self.since)}


__all__ = ["AsyncServer", "Flight", "at", "settled"]
