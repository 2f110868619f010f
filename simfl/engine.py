"""The SimPy engine: plays federated rounds in simulated time.

Each round the server broadcasts the global model (the downlink is not charged, as in
the paper: the base station has mains power). Every device process computes for
tau*omega*(D_loc+D_gen)/f seconds (eq. 6) and then uploads S bits on its own sub-band at
its own power (eqs. 7-9). The server process aggregates the updates that arrive by the
deadline T_max; a device still busy at the deadline is a straggler: its update is
dropped and its transmission cut, but the energy it spent until then counts.

The engine executes a Plan and asks a Trainer for accuracy; it knows nothing about
policies and nothing about torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Generator

import numpy as np
import simpy

from simfl.compute import compute_latency_s
from simfl.learning.protocol import Trainer
from simfl.plan import Plan, check_plan
from simfl.radio import rayleigh_power_gain, uplink_latency_s, uplink_rate_bps
from simfl.world import World, streams

# Solvers make T_cmp + T_com equal to T_max (Lemma 2); float rounding must not turn an
# exactly-on-time device into a straggler.
DEADLINE_GRACE = 1e-9


@dataclass(frozen=True)
class DeviceRecord:
    """What one device did in one round (a row of events.csv)."""

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
    participants: int
    stragglers: int
    accuracy: float
    loss: float


@dataclass(frozen=True)
class EngineState:
    """Where a run stands after some rounds; lets an interrupted run continue."""

    next_round: int = 0
    time_s: float = 0.0
    cum_energy_j: float = 0.0
    cum_uplink_bits: float = 0.0


def fading_gains(world: World, seed: int, round_index: int) -> np.ndarray:
    """Realised channel gains of one round: the mean gain times Rayleigh |h|^2 in cells
    with fading. Each round has its own seed, so a resumed run draws the same values."""
    parent = streams(seed)["fading"]
    child = np.random.SeedSequence(entropy=parent.entropy, spawn_key=parent.spawn_key + (round_index,))
    draws = rayleigh_power_gain(np.random.default_rng(child), world.n_devices)
    faded = np.array([world.fading[k] == "rayleigh" for k in world.cell_of])
    return np.where(faded, world.gain * draws, world.gain)


def device_round(env: simpy.Environment, device: int, t_cmp_s: float, t_com_s: float,
                 log: dict[int, dict[str, float]]) -> Generator[simpy.Event, Any, None]:
    """One device's round: compute, then upload. Interrupted at the deadline if late."""
    entry = log[device]
    entry["compute_start_s"] = env.now
    try:
        yield env.timeout(t_cmp_s)
        entry["compute_end_s"] = env.now
        entry["upload_start_s"] = env.now
        yield env.timeout(t_com_s)
        entry["upload_end_s"] = env.now
    except simpy.Interrupt:
        entry.setdefault("compute_end_s", env.now)
        entry.setdefault("upload_start_s", env.now)
        entry["upload_end_s"] = env.now
        entry["straggler"] = 1.0


def server_round(env: simpy.Environment, world: World, plan: Plan, gain: np.ndarray,
                 log: dict[int, dict[str, float]]) -> Generator[simpy.Event, Any, None]:
    """Start every device, wait for all of them or the deadline, cut the late ones."""
    k = world.constants
    d_mix = world.d_loc + plan.d_gen
    t_cmp = compute_latency_s(k.tau, k.omega_cycles, d_mix, plan.f_hz)
    rate = uplink_rate_bps(plan.b_hz, gain, plan.p_w, world.device_noise_w_per_hz)
    t_com = uplink_latency_s(k.model_bits, rate)
    procs = []
    for i in range(world.n_devices):
        log[i] = {"rate_bps": float(rate[i])}
        procs.append(env.process(device_round(env, i, float(t_cmp[i]), float(t_com[i]), log)))
    deadline = env.timeout(k.t_max_s * (1.0 + DEADLINE_GRACE))
    yield env.all_of(procs) | deadline
    for proc in procs:
        if proc.is_alive:
            proc.interrupt()
    # let the interrupted processes record where they stopped
    yield env.timeout(0)


def play_round(world: World, plan: Plan, round_index: int, start_s: float, gain: np.ndarray) -> tuple[list[DeviceRecord], float]:
    """Simulate one round from `start_s`; return the device records and the round's end time."""
    env = simpy.Environment(initial_time=start_s)
    log: dict[int, dict[str, float]] = {}
    env.process(server_round(env, world, plan, gain, log))
    env.run()
    k = world.constants
    records = []
    end_s = start_s
    for i in range(world.n_devices):
        e = log[i]
        straggler = bool(e.get("straggler", 0.0))
        cmp_s = e["compute_end_s"] - e["compute_start_s"]
        up_s = e["upload_end_s"] - e["upload_start_s"]
        # Power while computing is eps f^3 (eq. 5 with D = f T / (tau omega)); while
        # sending it is P. Energy is power times the time actually spent, which equals
        # eqs. (5) and (9) for a device that finishes.
        e_cmp = float(world.eps[i] * plan.f_hz[i] ** 3 * cmp_s)
        e_com = float(plan.p_w[i] * up_s)
        bits = k.model_bits if not straggler else e["rate_bps"] * up_s
        end_s = max(end_s, e["upload_end_s"])
        records.append(DeviceRecord(
            round=round_index, device=i, cell=int(world.cell_of[i]), gain=float(gain[i]), rate_bps=e["rate_bps"],
            compute_start_s=e["compute_start_s"], compute_end_s=e["compute_end_s"],
            upload_start_s=e["upload_start_s"], upload_end_s=e["upload_end_s"],
            e_cmp_j=e_cmp, e_com_j=e_com, bits_sent=float(bits), straggler=straggler,
        ))
    return records, end_s


def run(world: World, plan: Plan, trainer: Trainer, rounds: int, seed: int,
        state: EngineState = EngineState(),
        on_round: Callable[[RoundRecord, list[DeviceRecord]], None] | None = None) -> EngineState:
    """Play rounds `state.next_round .. rounds-1`; call `on_round` after each one.

    Returns the state after the last round, from which a later call can continue.
    """
    check_plan(world, plan)
    for r in range(state.next_round, rounds):
        gain = fading_gains(world, seed, r)
        devices, end_s = play_round(world, plan, r, state.time_s, gain)
        participants = np.array([d.device for d in devices if not d.straggler], dtype=np.int64)
        metrics = trainer.train_round(r, participants)
        energy = sum(d.e_cmp_j + d.e_com_j for d in devices)
        bits = sum(d.bits_sent for d in devices)
        record = RoundRecord(
            round=r, start_s=state.time_s, end_s=end_s, duration_s=end_s - state.time_s,
            energy_j=energy, cum_energy_j=state.cum_energy_j + energy,
            uplink_bits=bits, cum_uplink_bits=state.cum_uplink_bits + bits,
            participants=len(participants), stragglers=world.n_devices - len(participants),
            accuracy=float(metrics.accuracy), loss=float(metrics.loss),
        )
        state = EngineState(next_round=r + 1, time_s=end_s, cum_energy_j=record.cum_energy_j,
                            cum_uplink_bits=record.cum_uplink_bits)
        if on_round is not None:
            on_round(record, devices)
    return state


def record_dict(record: RoundRecord | DeviceRecord) -> dict:
    return asdict(record)
