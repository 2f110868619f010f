"""The SimPy engine against closed forms: round time is max_i(T_cmp + T_com), energy is
the sum of eqs. (5) and (9); fading produces stragglers exactly where the realised rate
misses the deadline."""

from dataclasses import replace

import numpy as np
import pytest

from simfl.compute import compute_energy_j, compute_latency_s
from simfl.engine import run
from simfl.errors import InfeasiblePlan
from simfl.plan import Plan, check_plan
from simfl.radio import rayleigh_power_gain, uplink_energy_j, uplink_latency_s, uplink_rate_bps
from simfl.scenario import scenario_from_dict
from simfl.world import build_world

from simfl.streams import keyed_rng

from conftest import StandInTrainer, scenario_dict

S_BITS = 32 * 50_000


def fading_gains(world, seed, round_index):
    """Rayleigh gains of one round, drawn independently of the engine: the mean gain
    times |h|^2 ~ Exp(1) from the round's key of the "fading" stream."""
    return world.gain * rayleigh_power_gain(keyed_rng(seed, "fading", round_index), world.n_devices)


def first_round(world, plan):
    """The first round of a run of `plan` on `world` (no fading unless the world has it):
    its device records and end time."""
    rows = []
    run(world, plan, StandInTrainer(), rounds=1, seed=0, on_round=lambda r, d, s: rows.append((r, d)))
    record, devices = rows[0]
    return devices, record.end_s


def world_of(raw):
    return build_world(scenario_from_dict(raw), model_bits=S_BITS)


def fixed_plan(world, f_fraction=0.8, p_fraction=1.0):
    share = world.bandwidth_hz[world.cell_of] / np.bincount(world.cell_of)[world.cell_of]
    d_gen = np.zeros_like(world.d_loc_per_class)
    d_gen[:, 0] = np.arange(world.n_devices) * 7  # some synthetic data, unequal
    return Plan(d_gen_per_class=d_gen, f_hz=world.f_max_hz * f_fraction, b_hz=share, p_w=world.p_max_w * p_fraction)


def test_round_time_is_max_of_cmp_plus_com_and_energy_is_eq5_plus_eq9():
    world = world_of(scenario_dict())
    plan = fixed_plan(world)
    k = world.constants
    d_mix = world.d_loc + plan.d_gen
    rate = uplink_rate_bps(plan.b_hz, world.gain, plan.p_w, world.device_noise_w_per_hz)
    t_total = compute_latency_s(k.tau, k.omega_cycles, d_mix, plan.f_hz) + uplink_latency_s(k.model_bits, rate)
    energy = compute_energy_j(k.tau, world.eps, k.omega_cycles, d_mix, plan.f_hz) + uplink_energy_j(k.model_bits, plan.p_w, rate)
    assert t_total.max() < k.t_max_s  # the test needs an on-time plan

    trainer = StandInTrainer()
    records = []
    state = run(world, plan, trainer, rounds=3, seed=1, on_round=lambda r, d, s: records.append((r, d)))
    for index, (record, devices) in enumerate(records):
        assert record.duration_s == pytest.approx(t_total.max(), rel=1e-12)
        assert record.energy_j == pytest.approx(energy.sum(), rel=1e-12)
        assert record.uplink_bits == pytest.approx(world.n_devices * S_BITS)
        assert record.stragglers == 0 and record.participants == world.n_devices
        assert record.start_s == pytest.approx(index * t_total.max())
        for d in devices:
            assert d.e_cmp_j + d.e_com_j == pytest.approx(energy[d.device], rel=1e-12)
            assert d.upload_end_s - d.compute_start_s == pytest.approx(t_total[d.device], rel=1e-12)
    assert state.cum_energy_j == pytest.approx(3 * energy.sum(), rel=1e-12)
    assert state.time_s == pytest.approx(3 * t_total.max(), rel=1e-12)
    assert [list(p) for _, p in trainer.calls] == [list(range(world.n_devices))] * 3


def test_uniform_single_cell_energy_by_hand():
    # One device 100 m away, b = 1 MHz, P = 23 dBm, 1250 samples at 1.5 GHz, eps 5e-27:
    # E_cmp = 70.3125 J, T_cmp = 4.1667 s (eqs. 5, 6); with S = 111,728,960 bits,
    # r = 15.447 Mbit/s, T_com = 7.2331 s, E_com = 1.44318 J (eqs. 7-9).
    raw = scenario_dict(
        cells=[{"name": "bs", "position_m": [0, 0], "radius_m": 400, "bandwidth_hz": 1e6, "noise_dbm_per_hz": -174}],
        devices=[{"position_m": [100, 0], "f_max_hz": 1.5e9, "eps": 5e-27, "p_max_dbm": 23}],
        task={"samples_per_device": 1250},
    )
    world = build_world(scenario_from_dict(raw), model_bits=32 * 3_491_530)
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=np.array([1.5e9]),
                b_hz=np.array([1e6]), p_w=world.p_max_w)
    devices, end_s = first_round(world, plan)
    assert devices[0].e_cmp_j == pytest.approx(70.3125, rel=1e-9)
    assert devices[0].e_com_j == pytest.approx(1.44318, rel=1e-5)
    assert end_s == pytest.approx(4.1666667 + 7.2331, rel=1e-5)


def test_fading_makes_stragglers_where_the_realised_rate_misses_the_deadline():
    raw = scenario_dict(devices={"count": 20})
    raw["cells"][0]["path_loss"] = {"fading": "rayleigh"}
    world = world_of(raw)
    k = world.constants
    # A plan that is on time with the mean channel, with 0.5 s of slack for compute.
    b = np.full(world.n_devices, 20e6 / world.n_devices)
    rate_mean = uplink_rate_bps(b, world.gain, world.p_max_w, world.device_noise_w_per_hz)
    t_cmp = k.t_max_s - uplink_latency_s(k.model_bits, rate_mean) - 0.5
    f = k.tau * k.omega_cycles * world.d_loc / t_cmp
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=np.minimum(f, world.f_max_hz),
                b_hz=b, p_w=world.p_max_w)
    t_cmp = compute_latency_s(k.tau, k.omega_cycles, world.d_loc, plan.f_hz)
    world = replace(world, f_max_hz=np.maximum(world.f_max_hz, plan.f_hz))

    trainer = StandInTrainer()
    rows = []
    run(world, plan, trainer, rounds=10, seed=11, on_round=lambda r, d, s: rows.append((r, d)))
    total = 0
    for (record, devices), (round_index, participants) in zip(rows, trainer.calls):
        gain = fading_gains(world, 11, round_index)
        realised = t_cmp + uplink_latency_s(k.model_bits, uplink_rate_bps(b, gain, world.p_max_w, world.device_noise_w_per_hz))
        late = realised > k.t_max_s
        assert [d.straggler for d in devices] == list(late)
        assert list(participants) == list(np.flatnonzero(~late))
        assert record.stragglers == late.sum()
        total += late.sum()
        if late.any():
            assert record.duration_s == pytest.approx(k.t_max_s, rel=1e-6)
        for d in devices:
            if d.straggler:
                # cut at the deadline: full compute energy, upload energy only until T_max
                sent_s = k.t_max_s - t_cmp[d.device]
                assert d.e_com_j == pytest.approx(world.p_max_w[d.device] * sent_s, rel=1e-6)
                assert d.bits_sent == pytest.approx(d.rate_bps * sent_s, rel=1e-6)
                assert d.bits_sent < k.model_bits
    assert total > 0, "Rayleigh fading at 0.5 s of slack should produce stragglers"


def test_no_fading_means_the_realised_gain_is_the_mean_gain():
    world = world_of(scenario_dict())
    devices, _ = first_round(world, fixed_plan(world))
    assert [d.gain for d in devices] == world.gain.tolist()


def test_resumed_run_equals_uninterrupted_run():
    raw = scenario_dict(devices={"count": 8})
    raw["cells"][0]["path_loss"] = {"fading": "rayleigh"}
    world = world_of(raw)
    plan = fixed_plan(world, f_fraction=1.0)
    whole, part = [], []
    run(world, plan, StandInTrainer(), rounds=4, seed=5, on_round=lambda r, d, s: whole.append((r, d)))
    state = run(world, plan, StandInTrainer(), rounds=2, seed=5, on_round=lambda r, d, s: part.append((r, d)))
    run(world, plan, StandInTrainer(), rounds=4, seed=5, state=state, on_round=lambda r, d, s: part.append((r, d)))
    assert part == whole


def test_two_cells_each_share_their_own_band():
    raw = scenario_dict(
        cells=[
            {"name": "w", "position_m": [-500, 0], "radius_m": 300, "bandwidth_hz": 10e6},
            {"name": "e", "position_m": [500, 0], "radius_m": 300, "bandwidth_hz": 20e6},
        ],
        devices=[
            {"count": 4, "cell": "w", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 23},
            {"count": 6, "cell": "e", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 23},
        ],
    )
    world = world_of(raw)
    assert list(world.cell_of) == [0] * 4 + [1] * 6
    plan = fixed_plan(world)
    assert plan.b_hz[:4] == pytest.approx([2.5e6] * 4)
    assert plan.b_hz[4:] == pytest.approx([20e6 / 6] * 6)
    check_plan(world, plan)  # each cell's band is full but not exceeded
    devices, _ = first_round(world, plan)
    assert [d.cell for d in devices] == list(world.cell_of)

    greedy = Plan(d_gen_per_class=plan.d_gen_per_class, f_hz=plan.f_hz, b_hz=np.full(10, 3e6), p_w=plan.p_w)
    with pytest.raises(InfeasiblePlan, match=r"cell w: sub-bands add up to 1\.2e\+07 Hz.*B = 1e\+07 Hz \(12e\)"):
        check_plan(world, greedy)


def test_check_plan_names_the_device_and_constraint():
    world = world_of(scenario_dict())
    plan = fixed_plan(world)
    too_fast = Plan(d_gen_per_class=plan.d_gen_per_class, f_hz=world.f_max_hz * 1.1, b_hz=plan.b_hz, p_w=plan.p_w)
    with pytest.raises(InfeasiblePlan, match=r"device 0: CPU frequency .* exceeds f_max .* \(12d\)"):
        check_plan(world, too_fast)
    loud = Plan(d_gen_per_class=plan.d_gen_per_class, f_hz=plan.f_hz, b_hz=plan.b_hz, p_w=world.p_max_w * 2)
    with pytest.raises(InfeasiblePlan, match=r"device 0: transmit power .* exceeds P_max .* \(12f\)"):
        check_plan(world, loud)


def test_updates_carry_the_model_version_they_started_from():
    # synchronous rounds: every update of round r starts from version r, and the round's
    # aggregation makes version r + 1
    world = world_of(scenario_dict())
    trainer = StandInTrainer()
    rows = []
    run(world, fixed_plan(world), trainer, rounds=4, seed=2, on_round=lambda r, d, s: rows.append((r, d, s)))
    assert trainer.versions == [0, 1, 2, 3]
    assert [r.version for r, _, _ in rows] == [1, 2, 3, 4] == [s.version for _, _, s in rows]
    assert all(d.version == r.round for r, devices, _ in rows for d in devices)
