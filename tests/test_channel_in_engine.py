"""Uploads on a channel that changes while they run, in the engine: the rate follows the
fading and the walk at every channel step, the upload ends when its bits are sent (a
brute-force integration here), and every policy meets the same gain at the same instant."""

import math

import numpy as np
import pytest

from simfl.dynamics.channel_time import ChannelInTime
from simfl.engine import run
from simfl.plan import Plan
from simfl.radio import mean_gain, uplink_rate_bps
from simfl.scenario import scenario_from_dict
from simfl.world import build_world

from conftest import StandInTrainer, scenario_dict
from test_async import VectorTrainer

S_BITS = 32 * 50_000


def world_of(fading=None, step=None, mobility=None, aggregation=None, count=5):
    raw = scenario_dict()
    raw["devices"]["count"] = count
    if fading is not None:
        raw["cells"][0]["path_loss"] = {"fading": fading}
    if step is not None:
        raw["network"] = {"channel_step_s": step}
    if mobility is not None:
        raw["devices"]["mobility"] = mobility
    if aggregation is not None:
        raw["aggregation"] = aggregation
    return build_world(scenario_from_dict(raw), model_bits=S_BITS)


def slow_plan(world, p_fraction=1e-3):
    """Equal shares at a low power, so that uploads last seconds (many channel steps)."""
    share = world.bandwidth_hz[world.cell_of] / np.bincount(world.cell_of)[world.cell_of]
    return Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz * 0.8, b_hz=share,
                p_w=world.p_max_w * p_fraction)


def events(world, plan, rounds=2, seed=3):
    rows = []
    trainer = VectorTrainer(world.n_devices) if world.constants.aggregation.asynchronous else StandInTrainer()
    run(world, plan, trainer, rounds=rounds, seed=seed, on_round=lambda r, d, s: rows.extend(d))
    return rows


def clarke_factor(world, seed, device, times, speed=0.0, walked=None):
    channel = ChannelInTime.for_world(world, seed)
    times = np.asarray(times, float)
    walked = np.zeros_like(times) if walked is None else walked
    return channel.power_factors(times, device, 0, walked, speed)


def test_a_static_device_under_clarke_sends_until_the_integral_of_its_rate_reaches_s():
    world = world_of(fading={"clarke": {"min_doppler_hz": 5.0}})
    plan = slow_plan(world)
    step = 0.1 * 0.423 / 5.0  # the default: a tenth of the coherence time at 5 Hz
    for d in events(world, plan):
        i = d.device
        # brute force: the rate on [t_k, t_k+1) from the gain at t_k, t_k the upload start and the grid k x step
        t, sent, instants = d.upload_start_s, 0.0, []
        k = math.floor(t / step) + 1
        while sent < S_BITS:
            nxt = k * step
            gain = world.gain[i] * clarke_factor(world, 3, i, [t])[0]
            rate = float(uplink_rate_bps(plan.b_hz[i], gain, plan.p_w[i], world.noise_w_per_hz[0]))
            if sent + rate * (nxt - t) >= S_BITS:
                end = t + (S_BITS - sent) / rate
                break
            sent += rate * (nxt - t)
            instants.append(t)
            t, k = nxt, k + 1
        assert d.outcome == "ok"
        assert d.upload_end_s == pytest.approx(end, rel=1e-9)
        assert len(instants) >= 10  # the rate changed many times
        assert d.gain == pytest.approx(world.gain[i] * clarke_factor(world, 3, i, [d.upload_start_s])[0], rel=1e-12)
        assert d.rate_bps == pytest.approx(S_BITS / (d.upload_end_s - d.upload_start_s), rel=1e-12)
        assert d.e_com_j == pytest.approx(plan.p_w[i] * (d.upload_end_s - d.upload_start_s), rel=1e-12)


def test_a_channel_step_on_a_still_channel_changes_nothing():
    plain = events(world_of(), slow_plan(world_of()))
    stepped = events(world_of(step=0.01), slow_plan(world_of()))
    for a, b in zip(plain, stepped):
        assert b.upload_end_s == pytest.approx(a.upload_end_s, rel=1e-12)
        assert b.bits_sent == a.bits_sent and b.outcome == a.outcome


def test_a_device_walking_away_during_its_upload_sends_slower_than_its_start_rate():
    world = world_of(step=0.05, mobility={"random_waypoint": {"speed_mps": 30.0, "pause_s": 0}})
    plan = slow_plan(world, p_fraction=1e-4)
    rows = events(world, plan, rounds=3)
    start_rates = [float(uplink_rate_bps(plan.b_hz[d.device], d.gain, plan.p_w[d.device], world.noise_w_per_hz[0]))
                   for d in rows]
    moved = [abs(d.rate_bps - r) / r for d, r in zip(rows, start_rates)]
    assert max(moved) > 1e-3  # the mean rate is not eq. (7) at the start gain: the device moved


@pytest.mark.parametrize("mode", ["fedbuff", "fedasync"])
def test_asynchronous_policies_meet_the_same_gain_at_the_same_instant(mode):
    fading = {"clarke": {"min_doppler_hz": 2.0}}
    world = world_of(fading=fading, aggregation={"mode": mode, "buffer_size": 2, "max_concurrency": 3})
    plan = slow_plan(world)
    rows = events(world, plan, rounds=4)
    for d in rows:  # each recorded gain is the channel's at that instant, whatever was asked before
        assert d.gain == pytest.approx(world.gain[d.device] * clarke_factor(world, 3, d.device, [d.upload_start_s])[0],
                                       rel=1e-12)


def test_two_asynchronous_modes_record_identical_gains_where_their_uploads_start_together():
    fading = {"rayleigh": {"coherence_s": 0.5}}
    a = events(world_of(fading=fading, aggregation={"mode": "fedbuff", "buffer_size": 2, "max_concurrency": 5}),
               slow_plan(world_of()), rounds=3)
    b = events(world_of(fading=fading, aggregation={"mode": "fedasync", "max_concurrency": 5}),
               slow_plan(world_of()), rounds=3)
    common = {(d.device, d.upload_start_s): d.gain for d in a}.items() & {(d.device, d.upload_start_s): d.gain
                                                                            for d in b}.items()
    starts_a = {(d.device, d.upload_start_s) for d in a}
    starts_b = {(d.device, d.upload_start_s) for d in b}
    assert starts_a & starts_b  # the first jobs start together
    assert {key for key, _ in common} == starts_a & starts_b


def test_a_walker_s_mean_gain_follows_its_position_during_the_upload():
    world = world_of(step=0.05, mobility={"random_waypoint": {"speed_mps": 30.0, "pause_s": 0}}, count=1)
    plan = slow_plan(world, p_fraction=1e-4)
    d = events(world, plan, rounds=1)[0]
    # the gain at the upload's start: the path loss at the walker's position then
    from simfl.network import Network

    network = Network(world, 3)
    position = network.mobility.positions(d.upload_start_s)[0]
    expected = mean_gain(max(float(np.linalg.norm(position)), 1.0), 128.1, 37.6, world.shadowing_z[0], 0.0)
    assert d.gain == pytest.approx(float(expected), rel=1e-12)


def border_world(hysteresis_db=3.0, interruption_s=0.5, step_s=1.0):
    """Two cells 1000 m apart on the x axis, one walker at 10 m/s, one upload that lasts
    about a minute; the walker's leg is set by hand: from x = 100 m at t = 0 to x = 900 m."""
    raw = scenario_dict()
    raw["cells"] = [{"name": "west", "position_m": [0, 0], "radius_m": 600, "bandwidth_hz": 1e6, "noise_dbm_per_hz": -174},
                    {"name": "east", "position_m": [1000, 0], "radius_m": 600, "bandwidth_hz": 1e6,
                     "noise_dbm_per_hz": -174}]
    raw["devices"] = {"count": 1, "cell": "west", "position_m": [100, 0], "f_max_hz": 2e9, "eps": 5e-27,
                      "p_max_dbm": 20, "mobility": {"random_waypoint": {"speed_mps": 10.0, "pause_s": 1e6}}}
    raw["optimisation"] = {"t_max_s": 1000}
    raw["network"] = {"channel_step_s": step_s, "handover": {"hysteresis_db": hysteresis_db,
                                                             "interruption_s": interruption_s}}
    return build_world(scenario_from_dict(raw), model_bits=S_BITS)


def walk_east(world, seed):
    """The engine state at t = 0 with the walker's first leg replaced by the straight one."""
    from simfl.engine import EngineState
    from simfl.network import Network

    network = Network(world, seed)
    m = network.mobility
    m.origin[0], m.target[0], m.depart_s[0], m.arrive_s[0] = [100.0, 0.0], [900.0, 0.0], 0.0, 80.0
    return EngineState(network=network.state_dict())


def test_a_walker_crossing_the_border_hands_over_once_at_the_hand_computed_instant_and_pauses():
    world = border_world()
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz, b_hz=np.array([5e5]),
                p_w=np.array([1e-7]))
    rows = []
    run(world, plan, StandInTrainer(), rounds=1, seed=3, state=walk_east(world, 3),
        on_round=lambda r, d, s: rows.extend(d))
    (d,) = rows
    ratio = 10 ** (3.0 / 37.6)  # 37.6 log10(d_west / d_east) = 3 dB on the line between the stations
    x_h = 1000.0 * ratio / (1.0 + ratio)
    t_h = (x_h - 100.0) / 10.0  # about 44.6 s: not on the 1 s grid
    assert d.cell == 0 and d.handovers == 1 and d.outcome == "ok"
    assert d.upload_start_s < t_h < d.upload_end_s

    def rate(t, cell):
        x = 100.0 + 10.0 * min(t, 80.0)  # it stands at x = 900 m from t = 80 s
        distance = abs(x - (0.0 if cell == 0 else 1000.0))
        gain = mean_gain(distance, 128.1, 37.6, world.shadowing_z[0], 0.0)
        return float(uplink_rate_bps(5e5, gain, 1e-7, world.noise_w_per_hz[0]))

    # brute force: the rate sampled at the upload's start and at each whole second, in the
    # west cell until t_h, nothing for 0.5 s, then in the east cell from t_h + 0.5
    sent, t, cell = 0.0, d.upload_start_s, 0
    while True:
        nxt = math.floor(t) + 1.0
        if cell == 0 and nxt >= t_h:
            sent += rate(t, 0) * (t_h - t)
            t, cell = t_h + 0.5, 1
            continue
        r = rate(t, cell)
        if sent + r * (nxt - t) >= S_BITS:
            end = t + (S_BITS - sent) / r
            break
        sent, t = sent + r * (nxt - t), nxt
    assert d.upload_end_s == pytest.approx(end, rel=1e-9)
    assert d.e_com_j == pytest.approx(1e-7 * (d.upload_end_s - d.upload_start_s - 0.5), rel=1e-9)


def test_without_hysteresis_the_walker_hands_over_at_the_midpoint():
    world = border_world(hysteresis_db=0.0, interruption_s=0.0)
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz, b_hz=np.array([5e5]),
                p_w=np.array([1e-7]))
    rows = []
    run(world, plan, StandInTrainer(), rounds=2, seed=3, state=walk_east(world, 3),
        on_round=lambda r, d, s: rows.extend(d))
    assert rows[0].handovers == 1 and rows[0].cell == 0
    assert rows[1].cell == 1 and rows[1].handovers == 0  # it keeps the east cell between its jobs


def test_a_walker_handed_over_into_a_full_cell_sends_nothing_until_band_frees():
    """The east cell's whole band is held by a device whose job ends at a known instant; the
    walker's upload hands over into it at t_h, sends nothing (and draws no power) until the
    first channel step after that job ends, then goes on at its planned share."""
    raw = scenario_dict()
    raw["cells"] = [{"name": "west", "position_m": [0, 0], "radius_m": 600, "bandwidth_hz": 1e6, "noise_dbm_per_hz": -174},
                    {"name": "east", "position_m": [1000, 0], "radius_m": 600, "bandwidth_hz": 1e6,
                     "noise_dbm_per_hz": -174}]
    raw["devices"] = [{"count": 1, "cell": "west", "position_m": [100, 0], "f_max_hz": 2e9, "eps": 5e-27,
                       "p_max_dbm": 20, "mobility": {"random_waypoint": {"speed_mps": 10.0, "pause_s": 1e6}}},
                      {"count": 1, "cell": "east", "position_m": [1100, 0], "f_max_hz": 2e9, "eps": 5e-27,
                       "p_max_dbm": 20}]
    raw["optimisation"] = {"t_max_s": 1000}
    raw["network"] = {"channel_step_s": 1.0, "handover": {"hysteresis_db": 3.0}}
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    # the east device computes slowly (f chosen so it computes for 70 s) and holds all of east's band
    k = world.constants
    f_east = k.tau * k.omega_cycles * world.d_loc[1] / 70.0
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=np.array([world.f_max_hz[0], f_east]),
                b_hz=np.array([5e5, 1e6]), p_w=np.array([1e-7, 0.1]))
    rows = []
    run(world, plan, StandInTrainer(), rounds=1, seed=3, state=walk_east(world, 3),
        on_round=lambda r, d, s: rows.extend(d))
    walker, holder = sorted(rows, key=lambda d: d.device)
    ratio = 10 ** (3.0 / 37.6)
    t_h = (1000.0 * ratio / (1.0 + ratio) - 100.0) / 10.0
    assert walker.handovers == 1 and walker.handover_s == pytest.approx(t_h, rel=1e-12)
    assert holder.upload_end_s > t_h  # the east band is taken when the walker arrives
    resumed = math.floor(holder.upload_end_s) + 1.0  # the first channel step after the holder is done
    assert walker.paused_s == pytest.approx(resumed - t_h, rel=1e-9)
    assert walker.outcome == "ok" and walker.upload_end_s > resumed
    assert walker.e_com_j == pytest.approx(1e-7 * (walker.upload_end_s - walker.upload_start_s - walker.paused_s),
                                           rel=1e-9)


def test_a_walker_under_tr38901_meets_its_links_own_gain_and_hands_over_where_its_margin_reaches_the_hysteresis():
    """Two UMi cells 200 m apart; the walker goes from x = 20 m to x = 180 m at 2 m/s. Its
    upload's gain at the start is its link's (LOS state and shadowing of the period it has
    walked into), and it hands over at the first instant the east link's gain exceeds the
    west one's by the 3 dB hysteresis, found through the steps of renewed draws."""
    from simfl.handover import margins_db
    from simfl.network import serving_link

    raw = scenario_dict()
    raw["cells"] = [{"name": n, "position_m": [x, 0], "radius_m": 150, "bandwidth_hz": 1e6, "noise_dbm_per_hz": -174,
                     "carrier_hz": 3.5e9, "path_loss": {"model": "umi"}} for n, x in (("west", 0), ("east", 200))]
    raw["devices"] = {"count": 1, "cell": "west", "position_m": [20, 0], "f_max_hz": 2e9, "eps": 5e-27,
                      "p_max_dbm": 20, "mobility": {"random_waypoint": {"speed_mps": 2.0, "pause_s": 1e6}}}
    raw["optimisation"] = {"t_max_s": 1000}
    raw["network"] = {"channel_step_s": 1.0, "handover": {"hysteresis_db": 3.0}}
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    from simfl.engine import EngineState
    from simfl.network import Network

    network = Network(world, 3)
    m = network.mobility
    m.origin[0], m.target[0], m.depart_s[0], m.arrive_s[0] = [20.0, 0.0], [180.0, 0.0], 0.0, 80.0
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz, b_hz=np.array([5e5]),
                p_w=np.array([1e-12]))
    rows = []
    run(world, plan, StandInTrainer(), rounds=1, seed=3, state=EngineState(network=network.state_dict()),
        on_round=lambda r, d, s: rows.extend(d))
    (d,) = rows
    start = d.upload_start_s
    where = np.array([[20.0 + 2.0 * start, 0.0]])
    assert d.cell == 0
    assert d.gain == pytest.approx(float(serving_link(world, where, np.array([0]), 0, 2.0 * start)[1][0]), rel=1e-12)
    links = world.links.of(0)
    assert d.gain == pytest.approx(10 ** (links.gains_db(where, 2.0 * start)[0, 0] / 10), rel=1e-12)
    # the handover: at t_h the margin is at least 3 dB; on a fine grid from the upload's start to t_h it was below
    assert d.handovers >= 1 and start < d.handover_s < 80.0
    t_h = d.handover_s
    assert margins_db(np.array([[20.0 + 2.0 * t_h, 0.0]]), 0, links, 2.0 * t_h)[0, 1] >= 3.0 - 1e-9
    before = np.linspace(0.0, t_h, 20_000, endpoint=False)
    ahead = margins_db(np.column_stack([20.0 + 2.0 * before, np.zeros_like(before)]), 0, links, 2.0 * before)[:, 1]
    assert (ahead <= 3.0 + 1e-9).all()
