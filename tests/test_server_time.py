"""The server's own work in simulated time (scenario `server`): aggregations that take
time, and synthetic images made at a rate before the devices that need them train."""

from dataclasses import replace

import numpy as np
import pytest

from simfl.compute import compute_latency_s
from simfl.engine import run
from simfl.engine.synthesis import Synthesis
from simfl.errors import ScenarioError
from simfl.plan import Plan
from simfl.radio import uplink_latency_s, uplink_rate_bps
from simfl.scenario import scenario_from_dict
from simfl.world import build_world

from conftest import StandInTrainer, scenario_dict

S_BITS = 32 * 50_000


def world_of(**server):
    raw = scenario_dict()
    if server:
        raw["server"] = server
    return build_world(scenario_from_dict(raw), model_bits=S_BITS)


def plan_for(world, images_per_device):
    share = world.bandwidth_hz[world.cell_of] / np.bincount(world.cell_of)[world.cell_of]
    d_gen = np.zeros_like(world.d_loc_per_class)
    d_gen[:, 0] = images_per_device
    return Plan(d_gen_per_class=d_gen, f_hz=world.f_max_hz * 0.8, b_hz=share, p_w=world.p_max_w)


def round_time_s(world, plan):
    k = world.constants
    rate = uplink_rate_bps(plan.b_hz, world.gain, plan.p_w, world.device_noise_w_per_hz)
    return float((compute_latency_s(k.tau, k.omega_cycles, world.d_loc + plan.d_gen, plan.f_hz)
                  + uplink_latency_s(k.model_bits, rate)).max())


def play(world, plan, rounds=2):
    rows = []
    run(world, plan, StandInTrainer(), rounds=rounds, seed=0, on_round=lambda r, d, s: rows.append((r, d)))
    return rows


def test_an_aggregation_that_takes_time_ends_each_round_that_much_later():
    plain = world_of()
    slow = world_of(aggregation_delay_s=2.5)
    plan = plan_for(plain, 0)
    t = round_time_s(plain, plan)
    rows = play(slow, plan, rounds=3)
    for index, (record, devices) in enumerate(rows):
        assert record.start_s == pytest.approx(index * (t + 2.5), rel=1e-12)
        assert record.duration_s == pytest.approx(t + 2.5, rel=1e-12)
        assert min(d.download_start_s for d in devices) == pytest.approx(record.start_s, rel=1e-12)
    # the devices are idle while the server aggregates: the energy is the delay-free run's
    assert [r.energy_j for r, _ in rows] == pytest.approx([r.energy_j for r, _ in play(plain, plan, rounds=3)], rel=1e-12)


@pytest.mark.parametrize("rate", [50.0, 100.0])
def test_the_first_round_starts_when_its_images_are_made_and_twice_the_rate_halves_the_wait(rate):
    world = world_of(synthesis_images_per_s=rate)
    images = np.arange(world.n_devices) * 7  # unequal requests
    plan = plan_for(world, images)
    (first, devices), (second, later) = play(world, plan)
    wait = images.sum() / rate  # every device trains in round 0: all images first
    assert all(d.download_start_s == pytest.approx(wait, rel=1e-12) for d in devices)
    assert first.duration_s == pytest.approx(wait + round_time_s(world, plan), rel=1e-12)
    assert all(d.download_start_s == pytest.approx(second.start_s, rel=1e-12) for d in later)  # made once


def test_with_k_of_n_each_round_waits_only_for_the_images_of_devices_new_to_it():
    raw = scenario_dict(server={"synthesis_images_per_s": 10.0})
    raw["task"]["participants_per_round"] = 2
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    images = np.arange(1, world.n_devices + 1) * 10
    plan = plan_for(world, images)
    rows = play(world, plan, rounds=6)
    seen: set[int] = set()
    for record, devices in rows:
        new = {d.device for d in devices} - seen
        seen |= new
        wait = sum(images[i] for i in new) / 10.0
        assert all(d.download_start_s == pytest.approx(record.start_s + wait, rel=1e-12, abs=1e-12) for d in devices)
    assert len(seen) > 2  # the draw reached devices after round 0


@pytest.mark.parametrize("field, value", [("aggregation_delay_s", -1), ("synthesis_images_per_s", 0),
                                          ("aggregation_delay_s", 1e6), ("rate", 3)])
def test_bad_server_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ScenarioError, match=f"server.{field}"):
        scenario_from_dict(scenario_dict(server={field: value}))


def test_the_servers_own_set_is_made_once_before_the_first_round():
    world = world_of()
    plan = plan_for(world, np.arange(world.n_devices) * 3)
    server = np.zeros(world.n_classes, dtype=np.int64)
    server[:2] = [40, 60]  # 100 images of the server's own (SST, CLSD)
    made = Synthesis(replace(plan, server_synthetic_per_class=server), images_per_s=10.0, made=[])
    everyone = np.arange(world.n_devices)
    assert made.wait_s(everyone, first=True) == pytest.approx((3 * sum(range(world.n_devices)) + 100) / 10.0)
    assert made.wait_s(everyone, first=True) == 0.0  # before a modelled downlink, then again at round 0: once
