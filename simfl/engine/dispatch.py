"""What the server does around a job, in every aggregation mode: check a selection, make
the selected devices' jobs from this round's gains and resources, and account what a job
did (its energy, its bits, its device's battery, its row of events.csv)."""

from __future__ import annotations

import math
from typing import Any, Generator

import numpy as np
import simpy

from simfl.engine.records import DeviceRecord, EngineState
from simfl.errors import InfeasiblePlan
from simfl.engine.clock import at
from simfl.engine.job import Job
from simfl.engine.synthesis import Synthesis
from simfl.jobs import BATTERY, OK, STRAGGLER, computing_power_w, device_costs, spent_j
from simfl.network import Network, RoundState
from simfl.plan import Plan, RoundPlan
from simfl.radio import uplink_rate_bps
from simfl.spectrum import overlap_hz, rate_bps, sinr
from simfl.world import World, mean_gains_to_all

# Solvers make T_cmp + T_com equal to T_max (Lemma 2); float rounding must not turn an
# exactly-on-time device into a straggler.
DEADLINE_GRACE = 1e-9


def synthetic_download(env: simpy.Environment, world: World, network: Network, state: EngineState,
                       synthetic_bits: np.ndarray | None, synthesis: Synthesis) -> Generator[simpy.Event, Any, None]:
    """At a run's very start, wait until the server has made every device's images and
    every device has received them over the downlink (nothing to wait for without one,
    or on a resume)."""
    if state.next_round == 0 and env.now == 0.0 and not state.asynchronous and synthetic_bits is not None:
        making = synthesis.wait_s(np.arange(world.n_devices), first=True)
        if making > 0:
            yield at(env, env.now + making)
        first = network.observe(env.now, 0, state.version)
        wait = downlink_time_s(world, first, synthetic_bits)
        if len(wait) and wait.max() > 0:
            yield env.timeout(float(wait.max()))


def checked_selection(selected: Any, view: RoundState) -> np.ndarray:
    """What a policy's `select` returned, as sorted unique device indices, after checking
    each is a device that is available now."""
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
    cell has no modelled downlink. With co-channel interference, the other cells' downlinks
    add to the noise wherever their bands overlap this one's (`downlink_interference_w`)."""
    out = np.zeros(world.n_devices)
    interference = downlink_interference_w(world, view) if world.constants.interference != "none" else None
    for c, link in enumerate(world.downlink):
        if link is None:
            continue
        members = view.cell_of == c
        band, power = link
        if interference is not None:
            rate = rate_bps(band, sinr(power, view.gain[members], band, float(world.noise_w_per_hz[c]),
                                       interference[members]))
        else:
            rate = uplink_rate_bps(band, view.gain[members], power, world.noise_w_per_hz[c])
        out[members] = np.asarray(bits, dtype=float)[members] / rate
    return out


def downlink_interference_w(world: World, view: RoundState) -> np.ndarray:
    """Per device, the power its receiver hears from the downlinks of the other cells:
    each cell j with a modelled downlink of band B_j (centred on its carrier) at power P_j
    contributes P_j / B_j x the overlap of its band with the device's cell's x the device's
    mean gain to base station j. Every downlink is taken to broadcast for the whole of
    every download (full buffer: the downlinks of a synchronous round start together)."""
    n = world.n_devices
    links = [(c, link) for c, link in enumerate(world.downlink) if link is not None]
    if len(links) < 2:
        return np.zeros(n)
    gains = mean_gains_to_all(world, view.position_m)
    edges = {c: (world.carrier_hz[c] - link[0] / 2, world.carrier_hz[c] + link[0] / 2) for c, link in links}
    total = np.zeros(n)
    for c, _ in links:
        members = view.cell_of == c
        for j, (band, power) in links:
            if j == c:
                continue
            shared = overlap_hz([edges[c]], [edges[j]])
            if shared > 0:
                total[members] += power / band * shared * gains[members, j]
    return total


def make_jobs(world: World, plan: Plan | None, round_plan: RoundPlan, view: RoundState, selected: np.ndarray,
              dispatch_s: float, deadline_s: float, first_job: int = 0) -> list[Job]:
    """The selected devices' jobs from the gains and resources decided at `view.time_s`,
    dispatched at `dispatch_s` (later when the server first made their synthetic images)
    and cut at `deadline_s`, numbered from `first_job`."""
    assert plan is not None
    k = world.constants
    tau = k.tau if round_plan.epochs is None else np.asarray(round_plan.epochs, dtype=float)
    costs = device_costs(tau, k.omega_cycles, k.model_bits, world.eps, world.d_loc + plan.d_gen, round_plan.f_hz,
                         round_plan.b_hz, round_plan.p_w, view.gain, world.noise_w_per_hz[view.cell_of])
    t_dl = downlink_time_s(world, view, np.full(world.n_devices, k.model_bits)) if any(world.downlink) else np.zeros(world.n_devices)
    computing_w = computing_power_w(world.eps, round_plan.f_hz)
    return [Job(job=first_job + n, device=i, base_version=view.version, repeat=0, cell=int(view.cell_of[i]),
                gain=float(view.gain[i]), round_fading=float(view.gain[i] / view.mean_gain[i]), f_hz=float(round_plan.f_hz[i]), b_hz=float(round_plan.b_hz[i]),
                p_w=float(round_plan.p_w[i]), rate_bps=float(costs.rate_bps[i]), model_bits=float(k.model_bits),
                computing_w=float(computing_w[i]), download_s=float(t_dl[i]), compute_s=float(costs.t_cmp_s[i]),
                battery_j=float(view.battery_j[i]), online_until_s=float(view.online_until_s[i]),
                dispatch_s=dispatch_s, deadline_s=deadline_s, distance_m=float(view.distance_m[i]))
            for n, i in enumerate(selected.tolist())]


def job_energy_j(world: World, device: int, f_hz: float, p_w: float, entry: dict[str, Any]) -> tuple[float, float]:
    """Compute and upload energy of a job from its log (`jobs.spent_j`)."""
    return spent_j(float(world.eps[device]), f_hz, p_w, entry["compute_end_s"] - entry["compute_start_s"],
                   entry["sending_s"])


def job_bits(world: World, entry: dict[str, Any]) -> float:
    """Bits a job put on the uplink: the whole update (S) when it arrived, else what its
    flow carried until it stopped."""
    if entry["outcome"] == OK:
        return float(world.constants.model_bits)
    return float(entry["bits_sent"])


def charge_battery(world: World, network: Network, device: int, f_hz: float, p_w: float, entry: dict[str, Any]) -> None:
    """Take a finished job's energy from the device's battery (empty when it ran out): the
    one place a battery is charged, when the server learns how the job ended."""
    if math.isfinite(network.battery_j[device]):
        e_cmp, e_com = job_energy_j(world, device, f_hz, p_w, entry)
        network.battery_j[device] = 0.0 if entry["outcome"] == BATTERY else max(network.battery_j[device] - e_cmp - e_com, 0.0)


def device_record(world: World, round_index: int, device: int, cell: int, gain: float, f_hz: float, b_hz: float,
                  p_w: float, entry: dict[str, Any], version: int, battery_left_j: float, staleness: int) -> DeviceRecord:
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
        version=version, staleness=staleness, b_hz=float(b_hz), p_w=float(p_w), handovers=int(entry["handovers"]),
        handover_s=float(entry["handover_s"]), paused_s=float(entry["paused_s"]),
        sinr_db=float(entry["sinr_db"]), interference_w=float(entry["interference_w"]),
        distance_m=float(entry["distance_m"]),
    )
