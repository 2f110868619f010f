"""Policies that decide every round, against independent facts.

fimi-online re-solves FIMI's resource allocation (P1 with D_gen fixed) each round on the
realised gains: without fading it is FIMI's static plan again; with Rayleigh fading it
meets T_max where the static plan misses it. power-of-choice (rpow-d, Cho, Wang and
Joshi, AISTATS 2022) selects the K highest-loss devices of d uniformly drawn candidates.
"""

import itertools
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from simfl.policies.fimi import Fimi
from simfl.policies.fimi_online import FimiOnline
from simfl.policies.power_of_choice import CANDIDATE_KEY, PowerOfChoice
from simfl.policies.tfl import Tfl
from simfl.aggregation import Aggregation
from simfl.compute import compute_latency_s
from simfl.engine import run
from simfl.learning.protocol import LocalUpdate
from simfl.network import Network
from simfl.plan import RoundPlan, check_round_plan, plan_costs
from simfl.policy import PlanContext, Policy
from simfl.radio import uplink_latency_s, uplink_rate_bps
from simfl.scenario import scenario_from_dict
from simfl.streams import keyed_rng
from simfl.world import build_world, rng

from conftest import StandInTrainer, scenario_dict

SYNC_STATE = SimpleNamespace(version=0, aggregation=Aggregation())  # what aggregate reads of a round's state

S_BITS = 32 * 3_491_530  # the paper's CNN
FIMI_OPT = {"t_max_s": 60, "err_max": 0.2, "dgen_max": 5000, "zeta": 68}


def world_of(raw, seed_counts=3):
    """A world with Dir(0.4) label counts drawn here (no data set loaded), so FIMI has
    something to fill."""
    scenario = scenario_from_dict(raw)
    n = scenario.n_devices
    draw = np.random.default_rng(seed_counts)
    counts = np.array([draw.multinomial(1250, draw.dirichlet(0.4 * np.ones(10))) for _ in range(n)])
    return build_world(scenario, model_bits=S_BITS, d_loc_per_class=counts), scenario


def fimi_world(n=6, fading=False, **task):
    raw = scenario_dict(devices={"count": n}, task={"samples_per_device": 1250, "rounds": 200, **task},
                        optimisation=FIMI_OPT)
    if fading:
        raw["cells"][0]["path_loss"] = {"fading": "rayleigh"}
    return world_of(raw)


def exact_context(scenario, plan=None, world=None):
    return PlanContext(scenario=scenario, rng=rng(scenario.seed, "policy"), solver="exact", seed=scenario.seed,
                       plan=plan, participants_per_round=scenario.task.participants_per_round, world=world)


def round_times_s(world, plan, round_plan, state, devices):
    """T_cmp + T_com of `devices` under this round's gains and cells, eqs. (6)-(8)."""
    k = world.constants
    d_mix = world.d_loc + plan.d_gen
    t_cmp = compute_latency_s(k.tau, k.omega_cycles, d_mix, round_plan.f_hz)
    rate = uplink_rate_bps(round_plan.b_hz, state.gain, round_plan.p_w, world.noise_w_per_hz[state.cell_of])
    return (t_cmp + uplink_latency_s(k.model_bits, rate))[devices]


def planned_round(policy, world, scenario, state):
    """The policy's plan, then select and plan_round on `state`, as the engine calls them."""
    plan = policy.plan(world, exact_context(scenario))
    context = exact_context(scenario, plan, world)
    state = replace(state, selected=np.asarray(policy.select(state, context), dtype=np.int64))
    return plan, state, policy.plan_round(world, state, context)


# ---------------------------------------------------------------------------- fimi-online

def test_without_fading_and_everyone_selected_fimi_online_is_fimis_static_plan():
    world, scenario = fimi_world()
    static = Fimi().plan(world, exact_context(scenario))
    plan, state, round_plan = planned_round(FimiOnline(), world, scenario, Network(world, 0).observe(0.0, 0, 0))
    assert np.array_equal(plan.d_gen_per_class, static.d_gen_per_class)
    assert list(state.selected) == list(range(world.n_devices))
    # FIMI's b and P are solved for the continuous amounts of (19) and only f is re-timed
    # for the whole samples; fimi-online solves for the whole samples. Rounding up moves
    # D_mix by < 1 sample in ~1500 (7e-4): f, b and P move by about that, P (exponential
    # in 1/T_com) by a few times more. Measured: 8.5e-5, 2.9e-4, 1.2e-3.
    for field in ("f_hz", "b_hz", "p_w"):
        assert getattr(round_plan, field) == pytest.approx(getattr(static, field), rel=2e-3), field
    # Both are optimal for these amounts up to that rounding: the static plan is feasible
    # for the re-solved problem, so re-solving can only save energy, and little.
    e_static = plan_costs(world, static).round_energy_j
    e_online = plan_costs(world, replace(static, f_hz=round_plan.f_hz, b_hz=round_plan.b_hz,
                                         p_w=round_plan.p_w)).round_energy_j
    assert e_static * (1 - 1e-4) <= e_online <= e_static * (1 + 1e-9)
    # Lemma 2: every device trains and uploads in exactly T_max
    times = round_times_s(world, plan, round_plan, state, state.selected)
    assert times == pytest.approx(np.full(world.n_devices, world.constants.t_max_s), rel=1e-9)
    check_round_plan(world, round_plan, state.cell_of, state.selected)


def test_a_cells_band_is_shared_among_the_selected_devices_only():
    world, scenario = fimi_world(participants_per_round=3)
    plan, state, round_plan = planned_round(FimiOnline(), world, scenario, Network(world, 0).observe(0.0, 0, 0))
    chosen = state.selected
    assert len(chosen) == 3
    # upload energy falls with the band (Q(b) < 0, eq. 34), so the three use all of B ...
    assert round_plan.b_hz[chosen].sum() == pytest.approx(world.bandwidth_hz[0], rel=1e-9)
    # ... each more than its share among all six in the static plan
    assert (round_plan.b_hz[chosen] > plan.b_hz[chosen]).all()
    assert round_times_s(world, plan, round_plan, state, chosen) == pytest.approx(np.full(3, 60.0), rel=1e-9)
    check_round_plan(world, round_plan, state.cell_of, chosen)


class Checked(FimiOnline):
    """fimi-online that checks each round plan itself and keeps what it decided."""

    def __init__(self):
        super().__init__()
        self.rounds = []

    def plan_round(self, world, state, context):
        round_plan = super().plan_round(world, state, context)
        check_round_plan(world, round_plan, state.cell_of, state.selected)
        self.rounds.append((state, round_plan))
        return round_plan


def stragglers_per_round(world, plan, policy, rounds=20, seed=11):
    records = []
    run(world, plan, StandInTrainer(), rounds=rounds, seed=seed, policy=policy,
        on_round=lambda r, d, s: records.append(r))
    return [r.stragglers for r in records], [r.selected for r in records]


def test_under_rayleigh_fading_fimi_online_meets_the_deadline_where_static_fimi_misses_it():
    world, scenario = fimi_world(fading=True)
    policy = Checked()
    plan = policy.plan(world, exact_context(scenario))
    static, _ = stragglers_per_round(world, plan, None)
    online, selected = stragglers_per_round(world, plan, policy)
    # The static plan meets T_max exactly at the mean gain, so a device is late whenever
    # its |h|^2 < 1 (probability 1 - 1/e = 0.63): 82 of 120 here.
    assert sum(static) >= 0.4 * 20 * world.n_devices
    assert online == [0] * 20
    assert selected == [world.n_devices] * 20  # no fade this deep: nobody left out
    assert len(policy.rounds) == 20
    for state, round_plan in policy.rounds:  # on time by eqs. (6)-(8) too, not only by the engine's clock
        times = round_times_s(world, plan, round_plan, state, state.selected)
        assert (times <= world.constants.t_max_s * (1 + 1e-9)).all()


def test_a_narrow_band_under_fading_leaves_devices_out_of_some_rounds_and_none_is_late():
    raw = scenario_dict(devices={"count": 8}, task={"samples_per_device": 1250, "rounds": 200}, optimisation=FIMI_OPT)
    raw["cells"][0]["path_loss"] = {"fading": "rayleigh"}
    raw["cells"][0]["bandwidth_hz"] = 2e6  # so tight that some fades leave no plan for all eight
    world, scenario = world_of(raw)
    policy = Checked()
    plan = policy.plan(world, exact_context(scenario))
    static, _ = stragglers_per_round(world, plan, None, rounds=30)
    online, selected = stragglers_per_round(world, plan, policy, rounds=30)
    assert sum(static) >= 0.4 * 30 * 8  # measured: 155 of 240
    assert online == [0] * 30
    assert min(selected) < 8 and sum(selected) >= 0.9 * 30 * 8  # measured: 5 devices left out in all


def deep_fade(world, device, factor=1e-6):
    state = Network(world, 0).observe(0.0, 0, 0)
    gain = state.gain.copy()
    gain[device] *= factor
    return replace(state, gain=gain)


def test_a_device_in_a_fade_no_allocation_survives_is_left_out():
    world, scenario = fimi_world()
    state = deep_fade(world, 2)
    k = world.constants
    plan = Fimi().plan(world, exact_context(scenario))
    # even training at f_max and uploading at P_max over the whole band, device 2 is late
    t_cmp = compute_latency_s(k.tau, k.omega_cycles, world.d_loc[2] + plan.d_gen[2], world.f_max_hz[2])
    rate = uplink_rate_bps(world.bandwidth_hz[0], state.gain[2], world.p_max_w[2], world.noise_w_per_hz[0])
    assert t_cmp + k.model_bits / rate > k.t_max_s
    plan, state, round_plan = planned_round(FimiOnline(), world, scenario, state)
    assert list(state.selected) == [0, 1, 3, 4, 5]
    check_round_plan(world, round_plan, state.cell_of, state.selected)
    assert round_times_s(world, plan, round_plan, state, state.selected) == pytest.approx(np.full(5, 60.0), rel=1e-9)


def test_hooks_called_without_the_world_idle_a_hopeless_device_instead_of_crashing():
    world, scenario = fimi_world()
    plan = Fimi().plan(world, exact_context(scenario))
    context = exact_context(scenario, plan)  # no world: select cannot filter
    fresh = FimiOnline()
    state = deep_fade(world, 2)
    state = replace(state, selected=fresh.select(state, context))
    assert list(state.selected) == list(range(6))
    round_plan = fresh.plan_round(world, state, context)
    check_round_plan(world, round_plan, state.cell_of, state.selected)
    others = np.array([0, 1, 3, 4, 5])
    assert (round_times_s(world, plan, round_plan, state, others) <= 60.0 * (1 + 1e-9)).all()
    assert round_plan.f_hz[2] <= world.f_max_hz[2] * 1e-6  # idles: almost no energy spent
    # with the world, as the engine gives it, select leaves the device out
    assert 2 not in fresh.select(replace(state, round=1), replace(context, world=world))


def test_after_a_handover_each_cell_shares_its_own_band():
    cells = [{"name": "a", "position_m": [0, 0], "radius_m": 300, "bandwidth_hz": 10e6, "noise_dbm_per_hz": -174},
             {"name": "b", "position_m": [800, 0], "radius_m": 300, "bandwidth_hz": 15e6, "noise_dbm_per_hz": -174}]
    raw = scenario_dict(cells=cells, devices={"count": 6},
                        task={"samples_per_device": 1250, "rounds": 200}, optimisation=FIMI_OPT)
    world, scenario = world_of(raw)
    state = Network(world, 0).observe(0.0, 0, 0)
    moved = int(np.flatnonzero(world.cell_of == 0)[0])
    cell_of = world.cell_of.copy()
    cell_of[moved] = 1  # handed over to b, with the same gain
    plan, state, round_plan = planned_round(FimiOnline(), world, scenario, replace(state, cell_of=cell_of))
    assert len(state.selected) == 6
    check_round_plan(world, round_plan, state.cell_of, state.selected)
    used = np.bincount(cell_of, weights=round_plan.b_hz, minlength=2)
    assert used == pytest.approx(world.bandwidth_hz, rel=1e-9)
    assert round_times_s(world, plan, round_plan, state, state.selected) == pytest.approx(np.full(6, 60.0), rel=1e-9)


# ------------------------------------------------------------------------ power-of-choice

def small_world(n=10, k=3):
    raw = scenario_dict(devices={"count": n}, task={"participants_per_round": k})
    return world_of(raw)


def poc_context(seed, k):
    return PlanContext(scenario=None, rng=rng(seed, "policy"), seed=seed, participants_per_round=k)


def reported(policy, losses, round_index=0):
    """Feed `policy` the updates of devices with the given losses, as the engine does."""
    updates = [LocalUpdate(client=i, base_version=0, samples=1, params=None, loss=v) for i, v in losses.items()]
    policy.aggregate(updates, StandInTrainer(), SYNC_STATE)


def candidates_in_test(seed, round_index, available, d):
    """The candidate draw, made here: d of the available devices, uniformly, without
    replacement, from the round's keyed draw of the "selection" stream."""
    draw = keyed_rng(seed, "selection", round_index, CANDIDATE_KEY)
    return set(draw.choice(available, size=d, replace=False).tolist())


def test_selection_is_the_brute_force_top_k_of_the_candidate_set():
    world, _ = small_world()
    policy = PowerOfChoice()
    losses = dict(enumerate(np.random.default_rng(1).uniform(0.1, 2.5, size=10).tolist()))
    reported(policy, losses)
    base = Network(world, 0).observe(0.0, 0, 0)
    for r in range(15):
        state = replace(base, round=r)
        cands = candidates_in_test(4, r, np.arange(10), 6)
        best = max(itertools.combinations(sorted(cands), 3), key=lambda s: sum(losses[i] for i in s))
        assert list(policy.select(state, poc_context(4, 3))) == list(best)


def test_never_seen_devices_are_picked_first_and_ties_go_to_the_lower_index():
    world, _ = small_world()
    state = Network(world, 0).observe(0.0, 0, 0)
    cands = sorted(candidates_in_test(4, 0, np.arange(10), 6))
    policy = PowerOfChoice()
    reported(policy, {i: 100.0 for i in cands[1:5]})  # huge losses, but known; cands[0] and cands[5] unseen
    assert list(policy.select(state, poc_context(4, 3))) == [cands[0], cands[1], cands[5]]
    same = PowerOfChoice()
    reported(same, {i: 1.0 for i in range(10)})
    assert list(same.select(state, poc_context(4, 3))) == cands[:3]


def test_the_last_reported_loss_counts_and_a_missing_or_diverged_one_is_ignored():
    policy = PowerOfChoice()
    reported(policy, {0: 1.0, 1: 2.0})
    reported(policy, {0: 3.0, 1: float("nan")})
    policy.aggregate([LocalUpdate(client=1, base_version=0, samples=1, params=None)], StandInTrainer(), SYNC_STATE)
    assert policy.state_dict() == {"loss": {"0": 3.0, "1": 2.0}}


def test_state_dict_round_trips_through_json():
    world, _ = small_world()
    policy = PowerOfChoice()
    reported(policy, {i: 0.1 * i + 1 / 3 for i in range(0, 10, 2)})
    again = PowerOfChoice()
    again.load_state_dict(json.loads(json.dumps(policy.state_dict())))
    assert again.state_dict() == policy.state_dict()
    base = Network(world, 0).observe(0.0, 0, 0)
    for r in range(10):
        state = replace(base, round=r)
        assert list(again.select(state, poc_context(2, 3))) == list(policy.select(state, poc_context(2, 3)))


class LossyTrainer(StandInTrainer):
    """The stand-in trainer, with a loss per (round, device) that looks random."""

    def local_updates(self, round_index, devices, version=0):
        self.calls.append((round_index, np.asarray(devices).copy()))
        return [LocalUpdate(client=int(i), base_version=version, samples=1, params=None,
                            loss=float(keyed_rng(99, "training", round_index, int(i)).uniform(0.1, 3.0)))
                for i in devices]


def test_a_resumed_run_selects_bit_for_bit_as_the_uninterrupted_one():
    world, _ = small_world()
    plan = Tfl().plan(world, PlanContext(scenario=scenario_from_dict(scenario_dict()), rng=rng(0, "policy")))
    whole, part = LossyTrainer(), LossyTrainer()
    run(world, plan, whole, rounds=8, seed=5, policy=PowerOfChoice())
    state = run(world, plan, part, rounds=4, seed=5, policy=PowerOfChoice())
    assert state.policy["loss"]
    run(world, plan, part, rounds=8, seed=5, state=state, policy=PowerOfChoice())
    assert [(r, list(p)) for r, p in part.calls] == [(r, list(p)) for r, p in whole.calls]
    # the remembered losses are what made it so: resumed without them, it selects otherwise
    forgetful = LossyTrainer()
    run(world, plan, forgetful, rounds=8, seed=5, state=replace(state, policy={}), policy=PowerOfChoice())
    assert [list(p) for _, p in forgetful.calls] != [list(p) for _, p in whole.calls[4:]]


def test_selection_never_includes_an_unavailable_device():
    world, _ = small_world()
    policy = PowerOfChoice()
    # the highest losses on devices that will often be offline; some devices never heard from
    reported(policy, {i: 10.0 - i for i in range(0, 10, 3)})
    base = Network(world, 0).observe(0.0, 0, 0)
    masks = np.random.default_rng(8).random((60, 10)) < 0.4
    for r, available in enumerate(masks):
        if not available.any():
            continue
        chosen = policy.select(replace(base, round=r, available=available), poc_context(3, 3))
        assert available[chosen].all()
        assert len(chosen) == min(3, available.sum()) == len(set(chosen.tolist()))


def test_without_k_power_of_choice_takes_every_available_device_as_the_default_does():
    world, _ = small_world()
    state = Network(world, 0).observe(0.0, 0, 0)
    available = np.ones(10, dtype=bool)
    available[[1, 7]] = False
    state = replace(state, available=available)
    policy = PowerOfChoice()
    reported(policy, {0: 5.0})
    assert list(policy.select(state, poc_context(0, None))) == list(Policy.select(policy, state, poc_context(0, None)))
    assert list(policy.select(state, poc_context(0, None))) == [0, 2, 3, 4, 5, 6, 8, 9]


# ---------------------------------------------------------------------------- static plans under K of N

def two_cell_world(k):
    raw = scenario_dict(cells=[{"name": "a", "position_m": [0, 0], "radius_m": 400, "bandwidth_hz": 20e6,
                                "noise_dbm_per_hz": -174},
                               {"name": "b", "position_m": [2000, 0], "radius_m": 400, "bandwidth_hz": 10e6,
                                "noise_dbm_per_hz": -174}],
                        devices=[{"count": 6, "cell": "a", "f_max_hz": 2e9, "eps": 5e-27, "p_max_dbm": 20},
                                 {"count": 4, "cell": "b", "f_max_hz": 2e9, "eps": 5e-27, "p_max_dbm": 20}],
                        task={"samples_per_device": 100, "participants_per_round": k}, optimisation=FIMI_OPT)
    return world_of(raw)


def test_tfls_static_plan_gives_each_cells_whole_band_to_the_devices_drawn():
    world, scenario = two_cell_world(k=4)
    plan, state, round_plan = planned_round(Tfl(), world, scenario, Network(world, 0).observe(0.0, 0, 0))
    chosen = state.selected
    assert plan.b_hz[state.cell_of == 0].sum() == pytest.approx(20e6)  # planned for all ten
    for cell, band in ((0, 20e6), (1, 10e6)):
        mine = chosen[state.cell_of[chosen] == cell]
        if len(mine):  # the drawn share the whole band, in the plan's proportions
            expected = band * plan.b_hz[mine] / plan.b_hz[mine].sum()
            assert round_plan.b_hz[mine] == pytest.approx(expected, rel=1e-12)
            assert round_plan.b_hz[mine].sum() == pytest.approx(band, rel=1e-12)
    assert np.array_equal(round_plan.p_w, plan.p_w) and np.array_equal(round_plan.f_hz, plan.f_hz)


def test_a_static_plans_unequal_shares_keep_their_proportions_among_the_devices_drawn():
    world, scenario = two_cell_world(k=5)
    plan = Tfl().plan(world, exact_context(scenario))
    plan = replace(plan, b_hz=np.arange(1.0, 11.0) * 1e5)  # unequal, as FIMI's: device i has i+1 units
    context = exact_context(scenario, plan, world)
    state = Network(world, 0).observe(0.0, 0, 0)
    state = replace(state, selected=np.array([0, 2, 3, 7, 8]))
    round_plan = Policy.plan_round(Tfl(), world, state, context)
    # cell a: devices 0, 2, 3 with weights 1, 3, 4 -> 20 MHz x (1, 3, 4) / 8; cell b: 7, 8 with 8, 9 -> 10 MHz x (8, 9) / 17
    assert round_plan.b_hz[[0, 2, 3]] == pytest.approx(20e6 * np.array([1, 3, 4]) / 8, rel=1e-12)
    assert round_plan.b_hz[[7, 8]] == pytest.approx(10e6 * np.array([8, 9]) / 17, rel=1e-12)
