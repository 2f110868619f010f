"""FedBuff and FedAsync in simulated time: the server process of the asynchronous modes.

Every available device, up to `max_concurrency` M at once, takes the current global model,
trains and uploads on its own sub-band, and is then free for the next job. Whenever a
slot is free the server observes the network, lets the policy `select` among the idle
available devices (K = the free slots) and `plan_round` their f, b, P, and dispatches
them. A job is one synchronous round's work for one device (eqs. 5-9 with FIMI's
synthetic amounts when the policy sends them), bounded by T_max: a device still busy
T_max after its dispatch is cut (a straggler), and one that went offline or emptied its
battery stays silent until then, since the server cannot know. Each job is a process of
its own (engine.job, as in synchronous rounds) reporting to the server's one Store; the
jobs in flight are part of the checkpoint, progress included, so a resumed run ends them
at the same instants.

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
from typing import Any, Callable, Generator

import numpy as np
import simpy

from simfl.aggregation import Aggregation
from simfl.engine.clock import at, settled
from simfl.engine.dispatch import (DEADLINE_GRACE, checked_selection, charge_battery, device_record, job_bits,
                                   job_energy_j, make_jobs)
from simfl.engine.job import DONE, Job, RateSource, job_process
from simfl.engine.records import DeviceRecord, EngineState, RoundRecord
from simfl.engine.synthesis import Synthesis
from simfl.errors import InfeasiblePlan, RunFolderError
from simfl.jobs import BATTERY, OFFLINE, OK, STRAGGLER, spent_j
from simfl.learning.protocol import TrainJob, Trainer
from simfl.network import Network
from simfl.plan import check_round_plan
from simfl.policy import PlanContext, Policy
from simfl.world import World


OnRound = Callable[[RoundRecord, list[DeviceRecord], EngineState], None]


class AsyncServer:
    """The state of an asynchronous run between two events, and the server process."""

    def __init__(self, env: simpy.Environment, world: World, network: Network, policy: Policy, context: PlanContext,
                 trainer: Trainer, state: EngineState, rates: RateSource | None = None) -> None:
        k = world.constants
        settings = k.aggregation
        limit = settings.max_concurrency or k.participants_per_round or world.n_devices
        self.max_concurrency = min(limit, world.n_devices)
        self.settings: Aggregation = replace(settings, max_concurrency=self.max_concurrency)
        self.env, self.world, self.network, self.policy, self.trainer = env, world, network, policy, trainer
        self.context = replace(context, participants_per_round=None)
        self.state, self.rates = state, rates
        saved = state.asynchronous
        self.flights: dict[int, Job] = {f["job"]: saved_job(f) for f in saved.get("flights", [])}
        self.buffer: list[Job] = [saved_job(f) for f in saved.get("buffer", [])]
        self.jobs = int(saved.get("jobs", 0))
        self.decisions = int(saved.get("decisions", 0))
        self.last_base: dict[int, list[int]] = {int(d): v for d, v in saved.get("last_base", {}).items()}
        self.bases: dict[int, Any] = dict(state.models)
        self.since = saved.get("since", {"selected": 0})
        self.lost: list[Job] = []  # lost jobs reported since the last aggregation
        self.records: list[DeviceRecord] = []  # jobs to write with the next aggregation
        self.synthesis = Synthesis(context.plan, k.synthesis_images_per_s, state.synthesised)
        self.outbox = simpy.Store(env)  # where every job reports
        for job in sorted(self.flights.values(), key=lambda f: f.job):
            if rates is not None:
                rates.track(job)
            env.process(job_process(env, job, self.outbox, rates=rates))  # a resumed run: the jobs in flight go on

    # ------------------------------------------------------------------ the process

    def process(self, rounds: int, on_round: OnRound | None, result: list[EngineState]) -> Generator[simpy.Event, Any, None]:
        """Handle what finished, fill the free slots, wait for the next arrival (or for an
        idle device to come online); until `rounds` aggregations are done, the time
        budget is spent, or nothing is in flight and nothing will change: no device will
        come online again, or the policy selects nobody among the idle ones (CLSD)."""
        env, k = self.env, self.world.constants
        yield from settled(env)  # a resumed run: jobs that finished at this very instant report first
        reports: list[Job] = []
        while True:
            while self.outbox.items:
                reports.append((yield self.outbox.get()))
            for job in sorted(reports, key=lambda j: j.device):
                if self._over(rounds):
                    return
                if self._arrive(self.flights.pop(job.job)):
                    if k.aggregation_delay_s > 0:
                        yield at(env, env.now + k.aggregation_delay_s)  # no dispatch until the new model exists
                    self._aggregate(on_round, result)
            if self._over(rounds):
                return
            yield from self._dispatch()
            waits: list[simpy.Event] = []
            report = self.outbox.get() if self.flights else None
            if report is not None:
                waits.append(report)
            if len(self.flights) < self.max_concurrency:
                wake = self._next_idle_online_s()
                if math.isfinite(wake):
                    waits.append(at(env, wake))
            if not waits:
                return  # every device is offline for good or out of battery: the run ends
            yield env.any_of(waits)
            if report is not None and not report.triggered:
                report.cancel()
            reports = [report.value] if report is not None and report.triggered else []  # type: ignore[list-item]
            yield from settled(env)

    def _over(self, rounds: int) -> bool:
        """`rounds` aggregations done, or the scenario's simulated-time budget spent."""
        return self.state.next_round >= rounds or self.state.time_s >= self.world.constants.max_time_s

    def _arrive(self, flight: Job) -> bool:
        """A job reported: charge its battery; keep its update (a lost job's energy and
        record wait for the next aggregation); whether the mode aggregates now."""
        entry = flight.entry()
        charge_battery(self.world, self.network, flight.device, flight.f_hz, flight.p_w, entry)
        self.network.measured(flight.device, flight.b_hz, entry)
        if flight.outcome != OK:
            self.lost.append(flight)
            return False
        self.buffer.append(flight)
        return len(self.buffer) >= self.settings.arrivals_per_aggregation

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self) -> Generator[simpy.Event, Any, None]:
        """Fill the free slots with idle available devices the policy selects (after the
        server has made their synthetic images, if it had not)."""
        free = self.max_concurrency - len(self.flights)
        if free <= 0:
            return
        world, now = self.world, self.env.now
        view = self.network.observe(now, self.decisions, self.state.version, self._fading_block(now))
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
        making = self.synthesis.wait_s(chosen, first=self.jobs == 0 and self.state.next_round == 0)
        if making > 0:
            yield at(self.env, now + making)
            now = self.env.now
        grace = world.constants.t_max_s * (1.0 + DEADLINE_GRACE)
        self.bases.setdefault(self.state.version, self.trainer.global_params())
        for job in make_jobs(world, self.context.plan, round_plan, view, chosen, now, now + grace, first_job=self.jobs):
            last = self.last_base.get(job.device)
            job.repeat = last[1] + 1 if last is not None and last[0] == self.state.version else 0
            self.last_base[job.device] = [self.state.version, job.repeat]
            self.flights[job.job] = job
            if self.rates is not None:
                self.rates.track(job)
            self.env.process(job_process(self.env, job, self.outbox, rates=self.rates))
        self.jobs += len(chosen)
        self.since["selected"] = self.since.get("selected", 0) + len(chosen)

    def _fading_block(self, time_s: float) -> int:
        """Per-round fading without rounds: a new draw every T_max seconds of simulated
        time (the length of a synchronous round's deadline), so that every asynchronous
        policy meets the same channel at the same instant."""
        return math.floor(time_s / self.world.constants.t_max_s)

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
        view = self.network.observe(now, self.decisions, version, self._fading_block(now))
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
            spent_j, spent_bits = job_spent(world, f, now)
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
                                 asynchronous=self._snapshot(), models=self._models_needed(),
                                 synthesised=self.synthesis.state())
        self.bases = dict(self.state.models)
        result[0] = self.state
        if on_round is not None:
            on_round(record, records, self.state)

    def _record(self, flight: Job, staleness: int) -> DeviceRecord:
        return device_record(self.world, self.state.next_round, flight.device, flight.start_cell, flight.gain, flight.f_hz,
                             flight.planned_b_hz, flight.p_w, flight.entry(), flight.base_version, float(self.network.battery_j[flight.device]),
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


def job_spent(world: World, job: Job, time_s: float) -> tuple[float, float]:
    """Energy (J) and bits `job` has spent by `time_s`: the final eqs. (5) and (9) once it
    has ended, power times the time each phase has run before."""
    if job.phase == DONE and time_s >= job.end_s:
        e_cmp, e_com = job_energy_j(world, job.device, job.f_hz, job.p_w, job.entry())
        return e_cmp + e_com, job_bits(world, job.entry())
    e_cmp, e_com = spent_j(float(world.eps[job.device]), job.f_hz, job.p_w, job.computing_s(time_s),
                           job.sending_s(time_s))
    return e_cmp + e_com, job.bits_sent(time_s)


def saved_job(fields: dict[str, Any]) -> Job:
    """A job in flight from a checkpoint; one written before jobs became processes is refused."""
    try:
        return Job(**fields)
    except TypeError:
        raise RunFolderError("the checkpoint holds asynchronous jobs in flight written by an older simfl (before "
                             "jobs were processes): it cannot be resumed by this version; start the run afresh "
                             "in a new --out folder") from None


__all__ = ["AsyncServer", "job_spent"]
