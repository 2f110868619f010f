"""The SimPy engine: one environment for the whole run.

A long-lived process per device waits for jobs in its inbox; a job is "receive the global
model (if the cell has a modelled downlink), compute for tau*omega*(D_loc+D_gen)/f
seconds (eq. 6), upload S bits on the sub-band at the power the round plan gives (eqs.
7-9)". Finished updates travel to the server through a `simpy.Store`, each carrying the
model version it was computed from. A device stops short when it goes offline or its
battery empties during the job (its energy until then counts, its update is lost); the
server cuts at the deadline T_max whoever is still busy (a straggler).

The server process plays synchronous rounds: observe the network (positions, serving
cells, this round's fading, who is online), let the policy select the participants and
set their resources, dispatch the jobs, collect the updates until all have arrived or the
deadline passes, and aggregate them through the policy's hook. The engine asks a Trainer
for accuracy; it knows nothing of torch, and of a policy only its hooks. In the
asynchronous modes (FedBuff, FedAsync) `simfl.asynchronous.AsyncServer` is the server
process instead, with the same jobs, accounting and hooks.

Everything a run carries from one round to the next is in an `EngineState` (simulated
time, model version, totals, every device's battery, availability, position and fading
state), so a run resumed from one continues bit for bit.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Generator, cast

import numpy as np
import simpy

from simfl.compute import compute_latency_s
from simfl.learning.protocol import Trainer
from simfl.network import Network, RoundState
from simfl.plan import Plan, RoundPlan, check_plan, check_round_plan
from simfl.policy import FixedPlan, PlanContext, Policy
from simfl.radio import uplink_latency_s, uplink_rate_bps
from simfl.streams import rng
from simfl.world import World

# Solvers make T_cmp + T_com equal to T_max (Lemma 2); float rounding must not turn an
# exactly-on-time device into a straggler.
DEADLINE_GRACE = 1e-9

OK, STRAGGLER, OFFLINE, BATTERY = "ok", "straggler", "offline", "battery"


@dataclass(frozen=True)
class DeviceRecord:
    """What one selected device did in one round (a row of events.csv)."""

    round: int
    device: int
    cell: int
    gain: float
    rate_bps: float
    compute_start_s: float
    compute_end_s: float
    upload_start_s: float
    upload_end_s: float
    e_cmp_j: float
    e_com_j: float
    bits_sent: float
    straggler: bool
    outcome: str  # ok | straggler (cut at T_max) | offline (went offline) | battery (emptied)
    download_start_s: float
    battery_j: float  # left after the round; inf when mains powered
    version: int  # the global model version the device started from
    staleness: int = 0  # versions between its base and the model it was aggregated into; -1: not aggregated


@dataclass(frozen=True)
class RoundRecord:
    """One round as the server saw it (a row of rounds.csv)."""

    round: int
    start_s: float
    end_s: float
    duration_s: float
    energy_j: float
    cum_energy_j: float
    uplink_bits: float
    cum_uplink_bits: float
    participants: int  # updates aggregated
    stragglers: int  # cut at the deadline
    accuracy: float
    loss: float
    available: int  # online with battery left at the round's start
    selected: int
    dropouts: int  # went offline during their job
    depleted: int  # battery emptied during their job
    version: int  # the global model version after this round


@dataclass(frozen=True)
class EngineState:
    """Everything a run carries from one round to the next: a snapshot to resume from.

    `network` is the dynamics' state (`Network.state_dict`) and `policy` what the policy
    remembers (`Policy.state_dict`); both empty before the first round.
    """

    next_round: int = 0
    time_s: float = 0.0
    cum_energy_j: float = 0.0
    cum_uplink_bits: float = 0.0
    version: int = 0
    network: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)  # Policy.state_dict()
    asynchronous: dict[str, Any] = field(default_factory=dict)  # FedBuff/FedAsync: jobs in flight, buffer
    # The base models that jobs in flight and buffered updates started from, by version
    # (the trainer's own tensors: saved beside the JSON in the checkpoint, not in it).
    models: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> str:
        data = asdict(replace(self, models={}))
        del data["models"]
        return json.dumps(data)

    @staticmethod
    def from_json(text: str, models: dict[int, Any] | None = None) -> EngineState:
        return EngineState(**json.loads(text), models=dict(models or {}))


@dataclass(frozen=True)
class Job:
    """One device's work in one round, with everything its process needs precomputed."""

    version: int
    download_s: float
    compute_s: float
    upload_s: float
    stop_at_s: float  # when it goes offline or its battery empties, whichever is first (inf: never)
    stop_cause: str


class _Run:
    """The mutable parts of one simulation: inboxes, outbox and the current round's log."""

    def __init__(self, env: simpy.Environment, n_devices: int) -> None:
        self.env = env
        self.inbox = [simpy.Store(env, capacity=1) for _ in range(n_devices)]
        self.updates = simpy.Store(env)
        self.log: dict[int, dict[str, Any]] = {}
        self.procs = [env.process(device_process(env, i, self)) for i in range(n_devices)]


def device_process(env: simpy.Environment, device: int, run: _Run) -> Generator[simpy.Event, Any, None]:
    """A device for the whole run: take a job, receive, compute, upload, report; again."""
    while True:
        job: Job = yield run.inbox[device].get()
        entry = run.log[device]
        entry["download_start_s"] = env.now
        try:
            finished = yield from _work(env, job, entry)
        except simpy.Interrupt:  # the deadline passed: the server has moved on
            _end_job(entry, env.now, STRAGGLER)
            continue
        _end_job(entry, env.now, OK if finished else job.stop_cause)
        run.updates.put((device, job.version, entry["outcome"]))


def _work(env: simpy.Environment, job: Job, entry: dict[str, Any]) -> Generator[simpy.Event, Any, bool]:
    """Receive, compute and upload, recording when each phase starts; False when the job
    stopped short (the device went offline or its battery emptied)."""
    if job.download_s > 0 and not (yield from _phase(env, job.download_s, job)):
        return False
    entry["compute_start_s"] = env.now
    if not (yield from _phase(env, job.compute_s, job)):
        return False
    entry["compute_end_s"] = entry["upload_start_s"] = env.now
    return (yield from _phase(env, job.upload_s, job))


def _phase(env: simpy.Environment, seconds: float, job: Job) -> Generator[simpy.Event, Any, bool]:
    """Spend `seconds` on one phase of a job, or only until the job stops short; True when
    the phase completed."""
    if env.now + seconds > job.stop_at_s:
        yield env.timeout(job.stop_at_s - env.now)
        return False
    yield env.timeout(seconds)
    return True


def _end_job(entry: dict[str, Any], now: float, outcome: str) -> None:
    """Close a job's log at `now`: phases it never reached start and end there."""
    entry.setdefault("compute_start_s", now)
    entry.setdefault("compute_end_s", now)
    entry.setdefault("upload_start_s", now)
    entry["upload_end_s"] = now
    entry["outcome"] = outcome


def server_process(env: simpy.Environment, run: _Run, world: World, network: Network, policy: Policy,
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
        run.log = {}
        for i, (job, rate) in zip(selected.tolist(), jobs):
            run.log[i] = {"rate_bps": rate}
            run.inbox[i].put(job)
        deadline = env.timeout(k.t_max_s * (1.0 + DEADLINE_GRACE))
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
        for device in sorted(pending):
            run.procs[device].interrupt()
        if pending:
            yield env.timeout(0)  # let the interrupted devices record where they stopped
        elif lost and not deadline.processed:
            yield deadline  # the server cannot know a silent device is gone: it waits out T_max
        run.updates.items.clear()

        devices = _device_records(world, r, view, round_plan, run.log, state.version, network)
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


def synthetic_download(env: simpy.Environment, world: World, network: Network, state: EngineState,
                       synthetic_bits: np.ndarray | None) -> Generator[simpy.Event, Any, None]:
    """At a run's very start, wait until every device has received its synthetic data
    over the downlink (nothing to wait for without one, or on a resume)."""
    if state.next_round == 0 and env.now == 0.0 and not state.asynchronous and synthetic_bits is not None:
        first = network.observe(env.now, 0, state.version)
        wait = downlink_time_s(world, first, synthetic_bits)
        if len(wait) and wait.max() > 0:
            yield env.timeout(float(wait.max()))


def checked_selection(selected: Any, view: RoundState) -> np.ndarray:
    from simfl.errors import InfeasiblePlan

    chosen = np.unique(np.asarray(selected, dtype=np.int64))
    if chosen.size and (chosen[0] < 0 or chosen[-1] >= view.n_devices):
        raise InfeasiblePlan(f"select() returned devices outside 0..{view.n_devices - 1}: {chosen.tolist()}")
    offline = chosen[~view.available[chosen]]
    if offline.size:
        raise InfeasiblePlan(f"device {offline[0]}: select() chose it in round {view.round}, but it is not "
                             "available (offline or out of battery)")
    return chosen


def downlink_time_s(world: World, view: RoundState, bits: np.ndarray) -> np.ndarray:
    """Per device, the time to receive `bits` over its cell's downlink at its own rate
    (the base station's power over the whole downlink band, eq. 7 with the downlink's
    numbers: a rateless broadcast each device decodes once it has the bits); 0 where the
    cell has no modelled downlink."""
    out = np.zeros(world.n_devices)
    for c, link in enumerate(world.downlink):
        if link is None:
            continue
        members = view.cell_of == c
        band, power = link
        rate = uplink_rate_bps(band, view.gain[members], power, world.noise_w_per_hz[c])
        out[members] = np.asarray(bits, dtype=float)[members] / rate
    return out


def make_jobs(world: World, plan: Plan | None, round_plan: RoundPlan, view: RoundState,
              selected: np.ndarray) -> list[tuple[Job, float]]:
    """The selected devices' jobs and uplink rates, from this round's gains and resources."""
    assert plan is not None
    k = world.constants
    d_mix = world.d_loc + plan.d_gen
    t_cmp = compute_latency_s(k.tau, k.omega_cycles, d_mix, round_plan.f_hz)
    rate = uplink_rate_bps(round_plan.b_hz, view.gain, round_plan.p_w, world.noise_w_per_hz[view.cell_of])
    t_com = uplink_latency_s(k.model_bits, rate)
    t_dl = downlink_time_s(world, view, np.full(world.n_devices, k.model_bits)) if any(world.downlink) else np.zeros(world.n_devices)
    p_cmp = world.eps * round_plan.f_hz ** 3  # power while computing, eq. (5) over eq. (6)
    jobs = []
    for i in selected.tolist():
        battery = view.battery_j[i]
        empty_at = math.inf
        if math.isfinite(battery):
            e_cmp = p_cmp[i] * t_cmp[i]
            if battery < e_cmp:
                empty_at = view.time_s + t_dl[i] + battery / p_cmp[i]
            elif battery - e_cmp < round_plan.p_w[i] * t_com[i]:
                empty_at = view.time_s + t_dl[i] + t_cmp[i] + (battery - e_cmp) / round_plan.p_w[i]
        offline_at = float(view.online_until_s[i])
        stop, cause = (offline_at, OFFLINE) if offline_at <= empty_at else (empty_at, BATTERY)
        jobs.append((Job(version=view.version, download_s=float(t_dl[i]), compute_s=float(t_cmp[i]),
                         upload_s=float(t_com[i]), stop_at_s=stop, stop_cause=cause), float(rate[i])))
    return jobs


def _device_records(world: World, round_index: int, view: RoundState, round_plan: RoundPlan,
                    log: dict[int, dict[str, Any]], version: int, network: Network) -> list[DeviceRecord]:
    """One record per selected device of a synchronous round, charging its battery."""
    records = []
    for i in sorted(log):
        charge_battery(network, i, log[i]["outcome"], *job_energy_j(world, i, round_plan.f_hz[i], round_plan.p_w[i], log[i]))
        records.append(device_record(world, round_index, i, int(view.cell_of[i]), float(view.gain[i]), round_plan.f_hz[i],
                                     round_plan.p_w[i], log[i], version, float(network.battery_j[i]),
                                     0 if log[i]["outcome"] == OK else -1))
    return records


def job_energy_j(world: World, device: int, f_hz: float, p_w: float, entry: dict[str, Any]) -> tuple[float, float]:
    """Compute and upload energy of a job from its log: power while computing is eps f^3
    (eq. 5 with D = f T / (tau omega)), while sending P; energy is power times the time
    actually spent, which equals eqs. (5) and (9) for a job that finishes."""
    cmp_s = entry["compute_end_s"] - entry["compute_start_s"]
    up_s = entry["upload_end_s"] - entry["upload_start_s"]
    return float(world.eps[device] * f_hz ** 3 * cmp_s), float(p_w * up_s)


def job_bits(world: World, entry: dict[str, Any]) -> float:
    """Bits a job put on the uplink: the whole update (S) when it arrived, else what its
    rate carried until it stopped."""
    if entry["outcome"] == OK:
        return float(world.constants.model_bits)
    return float(entry["rate_bps"] * (entry["upload_end_s"] - entry["upload_start_s"]))


def charge_battery(network: Network, device: int, outcome: str, e_cmp: float, e_com: float) -> None:
    """Take a finished job's energy from the device's battery (empty when it ran out)."""
    if math.isfinite(network.battery_j[device]):
        network.battery_j[device] = 0.0 if outcome == BATTERY else max(network.battery_j[device] - e_cmp - e_com, 0.0)


def device_record(world: World, round_index: int, device: int, cell: int, gain: float, f_hz: float, p_w: float,
                  entry: dict[str, Any], version: int, battery_left_j: float, staleness: int) -> DeviceRecord:
    """A job's row of events.csv from its log (phase times, outcome, uplink rate)."""
    e_cmp, e_com = job_energy_j(world, device, f_hz, p_w, entry)
    outcome = entry["outcome"]
    bits = job_bits(world, entry)
    return DeviceRecord(
        round=round_index, device=device, cell=cell, gain=gain, rate_bps=entry["rate_bps"],
        compute_start_s=entry["compute_start_s"], compute_end_s=entry["compute_end_s"],
        upload_start_s=entry["upload_start_s"], upload_end_s=entry["upload_end_s"],
        e_cmp_j=e_cmp, e_com_j=e_com, bits_sent=float(bits), straggler=outcome == STRAGGLER,
        outcome=outcome, download_start_s=entry["download_start_s"], battery_j=battery_left_j,
        version=version, staleness=staleness,
    )


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
                      participants_per_round=world.constants.participants_per_round, world=world)
    network = Network(world, seed)
    if state.network:
        network.load_state_dict(state.network)
    if state.policy:
        policy.load_state_dict(state.policy)
    env = simpy.Environment(initial_time=state.time_s)
    result = [state]
    if world.constants.aggregation.asynchronous:
        from simfl.asynchronous import AsyncServer

        def asynchronous() -> Generator[simpy.Event, Any, None]:
            yield from synthetic_download(env, world, network, state, synthetic_bits)
            server = AsyncServer(env, world, network, policy, context, trainer, state)
            yield from server.process(rounds, on_round, result)

        env.process(asynchronous())
    else:
        sim = _Run(env, world.n_devices)
        env.process(server_process(env, sim, world, network, policy, context, trainer, rounds, state,
                                   synthetic_bits, on_round, result))
    env.run()
    return result[0]
