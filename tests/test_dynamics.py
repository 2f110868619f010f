"""A world that changes during a run, against independent facts: the Markov chain's
stationary online fraction, participant sets worked out by hand from a trace, the round a
battery empties in, random-waypoint geometry, the Gauss-Markov correlation rho^2, the
outage quantile's straggler fraction, and bit-for-bit resume of a run with every dynamic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simfl.policies.equal_share import EqualShare
from simfl.policies.tfl import Tfl
from simfl.compute import compute_latency_s
from simfl.dynamics.availability import AvailabilityTimeline, MarkovOnOff, online_intervals
from simfl.dynamics.fading import FadingProcess, GaussMarkov, Rayleigh
from simfl.dynamics.mobility import MobilityTimeline, RandomWaypoint, Static, uniform_in_disks
from simfl.engine import EngineState, run
from simfl.errors import ScenarioError
from simfl.plan import Plan
from simfl.policy import PlanContext
from simfl.radio import uplink_latency_s, uplink_rate_bps
from simfl.scenario import scenario_from_dict
from simfl.streams import rng
from simfl.world import build_world

from conftest import StandInTrainer, scenario_dict

S_BITS = 32_000


def play(world, plan, rounds, seed=1, policy=None, state=EngineState(), scenario=None):
    rows = []
    context = None if scenario is None else PlanContext(scenario=scenario, rng=rng(seed, "policy"))
    final = run(world, plan, StandInTrainer(), rounds=rounds, seed=seed, state=state, policy=policy, context=context,
                on_round=lambda r, d, s: rows.append((r, d, s)))
    return rows, final


# ------------------------------------------------------------------ availability


def test_markov_device_is_online_for_the_stationary_fraction_of_time():
    # Two-state CTMC with mean on a, mean off b: online fraction a / (a + b). The time
    # average over T of one device has variance about 2 a^2 b^2 / ((a + b)^3 T) (the
    # integrated autocovariance p (1 - p) exp(-(1/a + 1/b) tau)); over n independent
    # devices it is n times smaller. The test allows 4 standard deviations.
    a, b, horizon, n = 120.0, 60.0, 50_000.0, 40
    spec = MarkovOnOff(a, b)
    rows = online_intervals([spec] * n, seed=4, until_s=horizon)
    online = sum(min(end, horizon) - start for _, start, end in rows)
    fraction = online / (n * horizon)
    sd = math.sqrt(2 * a**2 * b**2 / ((a + b) ** 3 * horizon) / n)
    assert fraction == pytest.approx(a / (a + b), abs=4 * sd)
    assert sd < 0.01  # the test is sharp enough to mean something


def test_timeline_walked_forward_agrees_with_the_intervals():
    specs = [MarkovOnOff(30.0, 20.0)] * 5
    rows = online_intervals(specs, seed=9, until_s=500.0)
    timeline = AvailabilityTimeline(specs, seed=9)
    for t in np.arange(0.0, 500.0, 3.7):
        timeline.advance(float(t))
        expected = [any(s <= t < e for d, s, e in rows if d == i) for i in range(5)]
        assert timeline.online.tolist() == expected


def test_the_intervals_of_all_devices_at_once_are_each_devices_own_walk_of_its_periods():
    # The reference walks one device at a time through spec.period, period by period (the
    # trace format's definition); the vectorised walk must give the same rows, bit for bit,
    # for a mixed population: two Markov groups, a trace and always-on devices.
    from simfl.dynamics.availability import AlwaysOn, Trace

    trace = Trace("in memory", ((),) * 9 + (((0.0, 12.5), (40.0, 41.0), (300.0, math.inf)),))
    specs = [MarkovOnOff(30.0, 20.0)] * 4 + [AlwaysOn()] * 2 + [MarkovOnOff(5.0, 90.0)] * 3 + [trace]

    def walk(device, spec, until_s):
        online, end = spec.period(3, device, 0, 0.0, False)
        start, k, rows = 0.0, 0, []
        while start < until_s:
            if online:
                rows.append((device, start, end))
            if not math.isfinite(end):
                break
            k += 1
            start = end
            online, end = spec.period(3, device, k, start, online)
        return rows

    for until_s in (0.0, 7.0, 500.0):
        expected = [row for device, spec in enumerate(specs) for row in walk(device, spec, until_s)]
        assert online_intervals(specs, seed=3, until_s=until_s) == expected
    assert len(expected) > 40


def trace_world(tmp_path, trace_text, **task):
    # Three devices computing 10 s exactly (tau omega D / f = 5e8 / 5e7) and uploading
    # S = 32 kbit on 1 MHz in a few ms; T_max = 12 s.
    (tmp_path / "trace.csv").write_text(trace_text)
    raw = scenario_dict(
        cells=[{"name": "bs", "position_m": [0, 0], "radius_m": 300, "bandwidth_hz": 3e6}],
        devices=[{"position_m": [100.0 + 10 * i, 0], "f_max_hz": 5e7, "eps": 8e-26, "p_max_dbm": 20,
                  "availability": {"trace": str(tmp_path / "trace.csv")}} for i in range(3)],
        task={"samples_per_device": 100, "participants_per_round": task.get("k")} if task.get("k") else
        {"samples_per_device": 100},
        optimisation={"t_max_s": 12},
    )
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=np.full(3, 5e7), b_hz=np.full(3, 1e6),
                p_w=world.p_max_w)
    return world, plan


def test_a_hand_written_trace_gives_the_participants_worked_out_by_hand(tmp_path):
    world, plan = trace_world(tmp_path, "device,start_s,end_s\n0,0,1000\n1,0,25\n1,40,1000\n2,15,1000\n")
    k = world.constants
    t_com = uplink_latency_s(k.model_bits, uplink_rate_bps(plan.b_hz, world.gain, plan.p_w, world.device_noise_w_per_hz))
    assert compute_latency_s(k.tau, k.omega_cycles, world.d_loc, plan.f_hz).tolist() == [10.0] * 3
    # a round everybody finishes lasts 10 s + its slowest upload
    c01, c02 = max(t_com[0], t_com[1]), max(t_com[0], t_com[2])
    # Round 0 at 0: devices 0, 1 (2 comes at 15). Round 1 at 10+c01: the same. Round 2 at
    # 20+2c01: all three, but 1 goes offline at 25 while computing: it drops out and the
    # server waits out T_max = 12 s. Round 3 at 32+2c01: 0 and 2. Round 4 at 42+2c01+c02:
    # all three (1 is back at 40).
    rows, _ = play(world, plan, rounds=5)
    selected = [sorted(d.device for d in devices) for _, devices, _ in rows]
    delivered = [sorted(d.device for d in devices if d.outcome == "ok") for _, devices, _ in rows]
    assert selected == [[0, 1], [0, 1], [0, 1, 2], [0, 2], [0, 1, 2]]
    assert delivered == [[0, 1], [0, 1], [0, 2], [0, 2], [0, 1, 2]]
    starts = [r.start_s for r, _, _ in rows]
    assert starts == pytest.approx([0, 10 + c01, 20 + 2 * c01, 32 + 2 * c01, 42 + 2 * c01 + c02], abs=1e-6)
    assert [r.dropouts for r, _, _ in rows] == [0, 0, 1, 0, 0]
    dropped = next(d for d in rows[2][1] if d.device == 1)
    # its energy counts until it went offline: eps f^3 (25 - start), no upload, no bits
    assert dropped.outcome == "offline" and dropped.compute_end_s == pytest.approx(25.0)
    assert dropped.e_cmp_j == pytest.approx(8e-26 * 5e7**3 * (25 - starts[2]), rel=1e-9)
    assert dropped.e_com_j == 0 and dropped.bits_sent == 0


def test_participants_per_round_are_drawn_among_the_available(tmp_path):
    world, plan = trace_world(tmp_path, "device,start_s,end_s\n0,0,1000\n1,0,1000\n2,0,1000\n", k=2)
    rows, _ = play(world, plan, rounds=30, scenario=None)
    counts = np.zeros(3)
    for record, devices, _ in rows:
        assert record.selected == 2 and len(devices) == 2
        for d in devices:
            counts[d.device] += 1
    # uniform without replacement: each device in 2/3 of the rounds (binomial, 30 rounds)
    assert counts == pytest.approx([20, 20, 20], abs=4 * math.sqrt(30 * 2 / 9))


# ------------------------------------------------------------------ battery


def test_the_battery_empties_in_the_round_computed_by_hand(tmp_path):
    world, plan = trace_world(tmp_path, "device,start_s,end_s\n0,0,1e9\n1,0,1e9\n2,0,1e9\n")
    k = world.constants
    rate = uplink_rate_bps(plan.b_hz, world.gain, plan.p_w, world.device_noise_w_per_hz)
    per_round = 8e-26 * 5e7**3 * 10.0 + plan.p_w * uplink_latency_s(k.model_bits, rate)  # eq. (5) + eq. (9)
    battery = 0.35  # J: three rounds of about 0.1005 J each, then it empties while computing
    world = type(world)(**{**world.__dict__, "battery_j": np.array([battery, np.inf, np.inf])})
    assert 3 * per_round[0] < battery < 3 * per_round[0] + 8e-26 * 5e7**3 * 10.0
    rows, _ = play(world, plan, rounds=6)
    outcomes = [next((d.outcome for d in devices if d.device == 0), None) for _, devices, _ in rows]
    assert outcomes == ["ok", "ok", "ok", "battery", None, None]  # then it is gone for good
    left = [next((d.battery_j for d in devices if d.device == 0), None) for _, devices, _ in rows[:4]]
    assert left[:3] == pytest.approx([battery - per_round[0] * (r + 1) for r in range(3)], rel=1e-9)
    assert left[3] == 0.0
    empty = next(d for d in rows[3][1] if d.device == 0)
    # it computed until the remaining energy ran out: t = remaining / (eps f^3)
    assert empty.compute_end_s - empty.compute_start_s == pytest.approx((battery - 3 * per_round[0]) / (8e-26 * 5e7**3))
    assert empty.e_cmp_j + empty.e_com_j == pytest.approx(battery - 3 * per_round[0])
    assert [r.depleted for r, _, _ in rows] == [0, 0, 0, 1, 0, 0]


# ------------------------------------------------------------------ mobility


def test_random_waypoint_stays_in_the_disk_and_moves_at_the_set_speed():
    centre, radius, speed = np.array([[100.0, -50.0]] * 4), np.full(4, 200.0), 3.0
    specs = [RandomWaypoint(speed, 0.0)] * 3 + [RandomWaypoint(speed, 20.0)]
    mobility = MobilityTimeline(specs, centre.copy(), centre, radius, seed=2)
    dt = 0.5
    previous = mobility.positions(0.0)
    steps = []
    for t in np.arange(dt, 3000.0, dt):
        now = mobility.positions(float(t))
        assert (np.linalg.norm(now - centre, axis=1) <= radius + 1e-9).all()
        steps.append(np.linalg.norm(now - previous, axis=1))
        previous = now
    steps = np.array(steps)
    assert steps.max() <= speed * dt * (1 + 1e-9)
    # without pauses a device moves at full speed except in the steps that turn at a waypoint
    assert np.mean(np.isclose(steps[:, :3], speed * dt, rtol=1e-6)) > 0.9
    # with 20 s pauses it stands still part of the time
    assert np.mean(steps[:, 3] == 0) > 0.05
    assert mobility.leg[:3].min() > 5  # it did walk several legs


# Positions the random-waypoint code gave before `region` existed (commit 7de01fe), seed 11,
# at t = 0, 13.7, 50, 123.4, 400, 1000 s: `region: home` must keep them bit for bit.
HOME_CENTRE = np.array([[100.0, -50.0], [100.0, -50.0], [-300.0, 20.0], [0.0, 0.0]])
HOME_RADIUS = np.array([200.0, 200.0, 150.0, 400.0])
HOME_START = HOME_CENTRE + np.array([[10.0, 5.0], [-20.0, 30.0], [0.0, -100.0], [50.0, 50.0]])
HOME_TIMES = [0.0, 13.7, 50.0, 123.4, 400.0, 1000.0]
HOME_POSITIONS = [
    [[110.0, -45.0], [80.0, -20.0], [-300.0, -80.0], [50.0, 50.0]],
    [[83.10243776410674, -76.07621511327028], [112.01733069245732, -17.010590420808605],
     [-289.3069196906559, 13.408607909839365], [50.0, 50.0]],
    [[11.833714467542862, -158.41684347908864], [52.320618952580546, -131.98008441410428],
     [-207.11020743809888, -12.76627263669829], [50.0, 50.0]],
    [[71.9035461800452, -192.56320198643846], [145.28331092025894, -134.12765361612227],
     [-197.98730525477256, 70.01367803316347], [50.0, 50.0]],
    [[-43.087787071307794, -69.35474065354057], [183.69461905107772, -115.46257073560251],
     [-397.94045110328784, -56.216337990833466], [50.0, 50.0]],
    [[240.64899047263816, 33.68104554279607], [117.25477551642683, 23.664007575864225],
     [-210.25368710803355, 14.932149346213016], [50.0, 50.0]],
]


@pytest.mark.parametrize("region", [None, "home"])
def test_region_home_walks_bit_for_bit_as_before_regions_existed(region):
    extra = {} if region is None else {"region": region}
    specs = [RandomWaypoint(3.0, 0.0, **extra), RandomWaypoint(7.0, 12.0, **extra),
             RandomWaypoint(25.0, 5.0, **extra), Static()]
    mobility = MobilityTimeline(specs, HOME_START, HOME_CENTRE, HOME_RADIUS, seed=11,
                                cell_centre_m=np.array([[0.0, 0.0]]), cell_radius_m=np.array([1.0]))
    positions = np.array([mobility.positions(t) for t in HOME_TIMES])
    assert np.array_equal(positions, np.array(HOME_POSITIONS))
    assert mobility.leg.tolist() == [17, 28, 94, 0]


def lens_area(r, d):
    """Area common to two disks of radius r whose centres are d apart (2 r^2 acos(d / 2r)
    - (d / 2) sqrt(4 r^2 - d^2))."""
    return 2 * r**2 * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r**2 - d**2)


def test_waypoints_over_all_cells_are_uniform_over_the_union_of_their_disks():
    # two disks of radius 400 m, 500 m apart (scenarios/dynamic.yaml's cells, moved): the
    # lens is 2 * 160000 * acos(0.625) - 250 * 624.5 = 126,100 m^2 of a union of 879,200
    centre, radius = np.array([[-250.0, 0.0], [250.0, 0.0]]), np.array([400.0, 400.0])
    draw = np.random.default_rng(3)
    points = np.array([uniform_in_disks(draw, centre, radius) for _ in range(20_000)])
    inside = np.linalg.norm(points[:, None, :] - centre[None], axis=2) <= radius
    assert inside.any(axis=1).all()
    p = lens_area(400, 500) / (2 * math.pi * 400**2 - lens_area(400, 500))
    assert inside.all(axis=1).mean() == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 20_000))
    assert (points[:, 0] < 0).mean() == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / 20_000))  # symmetric


def test_a_device_roaming_over_all_cells_reaches_every_cell_and_stays_in_their_disks():
    from simfl.geometry import hex_grid_positions

    bs, radius = np.array(hex_grid_positions(1, 1000.0)), np.full(7, 577.0)
    specs = [RandomWaypoint(10.0, 0.0, "all"), RandomWaypoint(10.0, 0.0, "home")]
    start = bs[[0, 0]]
    mobility = MobilityTimeline(specs, start, bs[[0, 0]], radius[[0, 0]], seed=4, cell_centre_m=bs,
                                cell_radius_m=radius)
    targets = []
    for t in np.arange(0.0, 40_000.0, 50.0):
        mobility.positions(float(t))
        targets.append(mobility.target.copy())
    targets = np.array(targets)
    distance = np.linalg.norm(targets[:, :, None, :] - bs[None, None], axis=3)  # (times, devices, cells)
    assert (distance.min(axis=2) <= 577.0 + 1e-9).all()
    assert set(np.argmin(distance[:, 0], axis=1)) == set(range(7))  # the roaming device visits every cell
    assert (distance[:, 1, 0] <= 577.0 + 1e-9).all()  # the home one stays in cell 0's disk


def test_region_all_without_the_cells_is_refused():
    with pytest.raises(ValueError, match="cell_centre_m"):
        MobilityTimeline([RandomWaypoint(1.0, 0.0, "all")], np.zeros((1, 2)), np.zeros((1, 2)), np.ones(1), seed=1)


def test_a_legs_speed_and_next_change_follow_its_departure_arrival_and_pause():
    mobility = MobilityTimeline([RandomWaypoint(4.0, 30.0), Static()], HOME_START[:2], HOME_CENTRE[:2],
                                HOME_RADIUS[:2], seed=11)
    first = mobility.leg_at(0, 0.0)
    length = float(np.linalg.norm(first.target_m - first.origin_m))
    assert first.depart_s == 0.0 and first.arrive_s == pytest.approx(length / 4.0, rel=1e-15)
    assert first.pause_until_s == first.arrive_s + 30.0
    assert np.array_equal(first.origin_m, HOME_START[0])
    middle = first.arrive_s / 2
    assert mobility.speed_mps(0, middle) == 4.0 and mobility.next_change_s(0, middle) == first.arrive_s
    # halfway along the leg it is halfway between its ends
    assert mobility.positions(middle)[0] == pytest.approx((first.origin_m + first.target_m) / 2, abs=1e-9)
    paused = first.arrive_s + 10.0
    assert mobility.speed_mps(0, paused) == 0.0 and mobility.next_change_s(0, paused) == first.pause_until_s
    second = mobility.leg_at(0, first.pause_until_s)  # the pause's end is the next leg's departure
    assert second.depart_s == first.pause_until_s and np.array_equal(second.origin_m, first.target_m)
    assert mobility.speed_mps(0, first.pause_until_s) == 4.0
    assert mobility.leg_at(1, 5.0) is None and mobility.speed_mps(1, 5.0) == 0.0
    assert mobility.next_change_s(1, 5.0) == math.inf
    with pytest.raises(ValueError, match="forward in time"):
        mobility.leg_at(0, 1.0)


def test_a_mobile_device_hands_over_to_the_nearest_base_station():
    raw = scenario_dict(
        cells=[{"name": "w", "position_m": [-150, 0], "radius_m": 400, "bandwidth_hz": 10e6},
               {"name": "e", "position_m": [150, 0], "radius_m": 400, "bandwidth_hz": 10e6}],
        devices=[{"count": 6, "cell": "w", "f_max_hz": 2e9, "eps": 5e-27, "p_max_dbm": 23,
                  "mobility": {"random_waypoint": {"speed_mps": 20, "pause_s": 0}}}],
    )
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    plan = EqualShare().plan(world, None)
    rows, _ = play(world, plan, rounds=40)
    cells = {d.cell for _, devices, _ in rows for d in devices}
    assert cells == {0, 1}  # wandering in w's disk, they come nearer to e's base station too


# ------------------------------------------------------------------ fading


def test_gauss_markov_power_gain_has_lag_one_correlation_rho_squared():
    rho, n, rounds = 0.8, 300, 200
    fading = FadingProcess([GaussMarkov(rho)], n, seed=6)
    cells = np.zeros(n, dtype=np.int64)
    gains = np.array([fading.power_gains(r, cells) for r in range(rounds)])
    x, y = gains[:-1].ravel(), gains[1:].ravel()
    corr = np.corrcoef(x, y)[0, 1]
    # 59,700 pairs; the sample correlation's standard error is about (1 - r^2) / sqrt(pairs),
    # and neighbouring pairs are dependent, so the tolerance allows a few times more
    assert corr == pytest.approx(rho**2, abs=0.03)
    assert gains.mean() == pytest.approx(1.0, abs=0.03)  # Exp(1) marginal, as Rayleigh


def test_outage_q_gives_a_straggler_fraction_of_q_under_rayleigh_fading():
    # TFL plans every device to meet T_max exactly (Lemma 2). On the mean channel a
    # device misses when |h|^2 < 1: probability 1 - 1/e = 63%; on the q-quantile gain it
    # misses when |h|^2 < F^-1(q): probability q.
    for q, expected in ((0.0, 1 - math.exp(-1)), (0.1, 0.1)):
        raw = scenario_dict(devices={"count": 20}, optimisation={"t_max_s": 30, "outage": q, "solver": "exact"},
                            task={"samples_per_device": 500, "rounds": 40})
        raw["cells"][0]["path_loss"] = {"fading": "rayleigh"}
        scenario = scenario_from_dict(raw)
        world = build_world(scenario, model_bits=32 * 114_314)
        plan = Tfl().plan(world.for_planning(), PlanContext(scenario=scenario, rng=rng(1, "policy"), solver="exact"))
        rows, _ = play(world, plan, rounds=40)
        late = sum(r.stragglers for r, _, _ in rows) / (40 * 20)
        assert late == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / 800))


def test_rayleigh_keeps_the_engines_historical_draws():
    world = build_world(scenario_from_dict(scenario_dict()), model_bits=S_BITS)
    fading = FadingProcess([Rayleigh()], world.n_devices, seed=3)
    from simfl.radio import rayleigh_power_gain
    from simfl.streams import keyed_rng

    for r in (0, 5):
        assert np.array_equal(fading.power_gains(r, np.zeros(world.n_devices, dtype=np.int64)),
                              rayleigh_power_gain(keyed_rng(3, "fading", r), world.n_devices))


# ------------------------------------------------------------------ downlink


def test_the_model_broadcast_delays_computation_by_s_over_the_downlink_rate():
    raw = scenario_dict(cells=[{"name": "bs", "position_m": [0, 0], "radius_m": 300, "bandwidth_hz": 10e6,
                                "downlink": {"bandwidth_hz": 5e6, "power_dbm": 40}}])
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    plan = EqualShare().plan(world, None)
    rows, _ = play(world, plan, rounds=1)
    rate = uplink_rate_bps(5e6, world.gain, 10.0, world.noise_w_per_hz[0])  # 40 dBm = 10 W
    for d in rows[0][1]:
        assert d.download_start_s == 0.0
        assert d.compute_start_s == pytest.approx(S_BITS / rate[d.device], rel=1e-12)


# ------------------------------------------------------------------ resume


def every_dynamic():
    raw = scenario_dict(
        cells=[{"name": "w", "position_m": [-200, 0], "radius_m": 300, "bandwidth_hz": 10e6,
                "path_loss": {"fading": {"gauss_markov": {"rho": 0.7}}, "shadowing_std_db": 3},
                "downlink": {"bandwidth_hz": 10e6, "power_dbm": 43}},
               {"name": "e", "position_m": [200, 0], "radius_m": 300, "bandwidth_hz": 10e6,
                "path_loss": {"fading": "rayleigh"}}],
        devices={"count": 16, "f_max_hz": {"uniform": [1e9, 2e9]}, "eps": {"uniform": [4e-27, 6e-27]},
                 "p_max_dbm": {"uniform": [20, 23]}, "battery_j": {"uniform": [20, 60]},
                 "availability": {"markov": {"mean_on_s": 200, "mean_off_s": 80}},
                 "mobility": {"random_waypoint": {"speed_mps": 4, "pause_s": 15}}},
        task={"samples_per_device": 200, "participants_per_round": 8},
        optimisation={"t_max_s": 20},
    )
    scenario = scenario_from_dict(raw)
    world = build_world(scenario, model_bits=32 * 114_314)
    return scenario, world, EqualShare().plan(world, None)


@pytest.mark.parametrize("arrays_aside", [False, True], ids=["json-lists", "arrays-aside"])
def test_a_run_with_every_dynamic_resumes_bit_for_bit(arrays_aside):
    scenario, world, plan = every_dynamic()
    whole, _ = play(world, plan, rounds=12, scenario=scenario)
    first, state = play(world, plan, rounds=5, scenario=scenario)
    # through the snapshot file's formats: all JSON, or (a checkpoint's) the arrays beside it
    arrays: dict | None = {} if arrays_aside else None
    text = state.to_json(arrays)
    if arrays_aside:
        assert arrays and "[" not in text.split('"network"')[1].split('"policy"')[0], "no array left in the JSON"
        arrays = {key: array.copy() for key, array in arrays.items()}
    state = EngineState.from_json(text, arrays=arrays)
    rest, _ = play(world, plan, rounds=12, state=state, scenario=scenario)
    assert [(r, d) for r, d, _ in first + rest] == [(r, d) for r, d, _ in whole]
    records = [r for r, _, _ in whole]
    assert sum(r.dropouts for r in records) + sum(r.depleted for r in records) > 0, "the dynamics should bite"
    assert any(r.available < 16 for r in records)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("devices, field, says", [
    ({"availability": {"markov": {"mean_on_s": -5, "mean_off_s": 10}}}, "devices.availability.markov.mean_on_s",
     "must be > 0"),
    ({"availability": {"markov": {"mean_on_s": 5}}}, "devices.availability.markov.mean_off_s", "missing"),
    ({"availability": {"poisson": {}}}, "devices.availability", "unknown kind 'poisson'"),
    ({"mobility": {"random_waypoint": {"speed_mps": 0}}}, "devices.mobility.random_waypoint.speed_mps", "must be > 0"),
    ({"battery_j": -3}, "devices.battery_j", "must be > 0"),
])
def test_bad_dynamics_name_the_field(devices, field, says):
    raw = scenario_dict(devices={**scenario_dict()["devices"], **devices})
    with pytest.raises(ScenarioError, match=rf"{field}: .*{says}"):
        scenario_from_dict(raw)


def test_bad_fading_and_participants_name_the_field():
    raw = scenario_dict(task={"participants_per_round": 9})
    raw["cells"][0]["path_loss"] = {"fading": {"gauss_markov": {"rho": 1.0}}}
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(raw)
    message = str(error.value)
    assert "cells[0].path_loss.fading.gauss_markov.rho: must be < 1, got 1" in message
    assert "task.participants_per_round: must be <= the number of devices (5), got 9" in message


@pytest.mark.parametrize("trace, says", [
    ("device,start_s,end_s\n0,0,10\n7,0,10\n", "line 3: device 7 does not exist"),
    ("device,start_s,end_s\n0,0,10\n0,5,20\n", "device 0's intervals 0..10 and 5..20 overlap"),
    ("device,start_s,end_s\n0,10,5\n", "line 2: an interval needs 0 <= start_s < end_s"),
    ("dev,from,to\n0,0,10\n", "the first line must be the header device,start_s,end_s"),
])
def test_bad_traces_name_the_file_line_and_problem(tmp_path, trace, says):
    (tmp_path / "t.csv").write_text(trace)
    raw = scenario_dict(devices={**scenario_dict()["devices"], "availability": {"trace": str(tmp_path / "t.csv")}})
    with pytest.raises(ScenarioError, match=r"devices.availability.trace: .*" + "t.csv.*" + _re(says)):
        scenario_from_dict(raw)


def _re(text: str) -> str:
    import re

    return re.escape(text)
