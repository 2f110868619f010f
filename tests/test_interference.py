"""Co-channel interference between concurrent uplinks (`network.interference: co_channel`):
flow end times computed by hand piecewise, no interference where blocks or times do not
overlap, reuse patterns, the allocator, and the SINR of many flows at one instant against
a brute-force computation from positions, powers, blocks and gains."""

import math

import numpy as np
import pytest
import simpy

from simfl.engine import run
from simfl.engine.interference import InterferenceMedium
from simfl.engine.job import UPLOAD, Job
from simfl.network import Network
from simfl.plan import Plan
from simfl.errors import ScenarioError
from simfl.scenario import scenario_from_dict
from simfl.spectrum import LowestFree, free_pieces, overlap_hz, reuse_colour
from simfl.world import build_world

from conftest import StandInTrainer, scenario_dict

S_BITS = 1.6e6
N0 = 10 ** (-174 / 10) / 1000  # W/Hz
B = 1e6


def gain_at(d_m):
    """The default path loss 128.1 + 37.6 log10(d_km), no shadowing, as a power ratio."""
    return 10 ** (-(128.1 + 37.6 * math.log10(d_m / 1000)) / 10)


def rate(p, g, interference=0.0, b=B):
    return b * math.log2(1 + p * g / (b * N0 + interference))


def two_cell_world(interference="co_channel", second_carrier=None, f=(1e9, 1.5e9), allocator="lowest_free"):
    cells = [{"name": "a", "position_m": [0, 0], "radius_m": 600, "bandwidth_hz": B},
             {"name": "b", "position_m": [1000, 0], "radius_m": 600, "bandwidth_hz": B}]
    if second_carrier is not None:
        cells[1]["carrier_hz"] = second_carrier
    devices = [{"position_m": [x, 0], "f_max_hz": fx, "eps": 5e-27, "p_max_dbm": 20} for x, fx in zip((300, 700), f)]
    raw = scenario_dict(cells=cells, devices=devices, network={"interference": interference, "allocator": allocator})
    return build_world(scenario_from_dict(raw), model_bits=S_BITS)


def play(world, p=(1e-3, 1e-3), b=(B, B), rounds=1):
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz.copy(),
                b_hz=np.array(b, float), p_w=np.array(p, float))
    rows = []
    run(world, plan, StandInTrainer(), rounds=rounds, seed=3, on_round=lambda r, d, s: rows.extend(d))
    return {d.device: d for d in rows}


def test_two_flows_of_neighbouring_cells_end_where_a_piecewise_hand_computation_says():
    rows = play(two_cell_world())
    a, b = rows[0], rows[1]
    # device 1 computes faster (1.5 GHz): it starts first, alone; device 0 joins at its start
    t1, t0 = b.upload_start_s, a.upload_start_s
    assert t1 < t0
    p = 1e-3
    g00, g11 = gain_at(300), gain_at(300)  # each to its own base station
    g01, g10 = gain_at(700), gain_at(700)  # to the other base station (all of each block overlaps)
    alone1, both1, both0, alone0 = rate(p, g11), rate(p, g11, p * g01), rate(p, g00, p * g10), rate(p, g00)
    sent1 = alone1 * (t0 - t1)
    end1, end0 = t0 + (S_BITS - sent1) / both1, t0 + S_BITS / both0
    if end1 < end0:  # device 1 ends first, device 0 sends the rest alone
        end0 = end1 + (S_BITS - both0 * (end1 - t0)) / alone0
    else:
        end1 = end0 + (S_BITS - sent1 - both1 * (end0 - t0)) / alone1
    assert b.upload_end_s == pytest.approx(end1, rel=1e-9)
    assert a.upload_end_s == pytest.approx(end0, rel=1e-9)
    assert a.outcome == b.outcome == "ok"
    assert a.distance_m == pytest.approx(300.0) and b.distance_m == pytest.approx(300.0)
    # what events.csv says of them: mean interference power over each upload
    if end1 < end0:
        mean0 = p * g10 * (end1 - t0) / (end0 - t0)
        assert a.interference_w == pytest.approx(mean0, rel=1e-9)
    # interference slowed both: each ends later than on noise alone
    assert a.upload_end_s > t0 + S_BITS / alone0 and b.upload_end_s > t1 + S_BITS / alone1


def test_without_interference_or_on_other_carriers_the_flows_keep_eq_7():
    for world in (two_cell_world("none"), two_cell_world(second_carrier=2e9 + B)):
        rows = play(world)
        for d in rows.values():
            assert d.upload_end_s == pytest.approx(d.upload_start_s + S_BITS / rate(1e-3, gain_at(300)), rel=1e-12)
            assert d.interference_w == 0.0
            assert d.sinr_db == pytest.approx(10 * math.log10(1e-3 * gain_at(300) / (B * N0)), rel=1e-9)


def test_blocks_that_do_not_overlap_in_frequency_do_not_interfere():
    # each device takes half of its cell's band; both are placed lowest first, so
    # shifting cell b's band by half a band leaves their blocks side by side
    world = two_cell_world(second_carrier=2e9 + B / 2)
    rows = play(world, b=(B / 2, B / 2))
    for d in rows.values():
        alone = rate(1e-3, gain_at(300), b=B / 2)
        assert d.upload_end_s == pytest.approx(d.upload_start_s + S_BITS / alone, rel=1e-12)


def test_transmissions_that_do_not_overlap_in_time_do_not_interfere():
    # device 1 computes 50 times faster: done sending long before device 0 starts
    rows = play(two_cell_world(f=(1e8, 5e9)))
    assert rows[1].upload_end_s < rows[0].upload_start_s
    for d in rows.values():
        assert d.upload_end_s == pytest.approx(d.upload_start_s + S_BITS / rate(1e-3, gain_at(300)), rel=1e-12)
        assert d.interference_w == 0.0


def test_reuse_3_puts_adjacent_cells_on_different_carriers_and_reuse_7_every_cell_of_a_cluster():
    def carriers(reuse, rings=2):
        raw = scenario_dict(cells={"hex_grid": {"rings": rings, "spacing_m": 1000, "radius_m": 577,
                                                "bandwidth_hz": 10e6, "reuse": reuse}})
        scenario = scenario_from_dict(raw)
        return np.array([c.position_m for c in scenario.cells]), np.array([c.carrier_hz for c in scenario.cells])

    for reuse in (3, 7):
        sites, carrier = carriers(reuse)
        assert set(np.round((carrier - 2e9) / 10e6).astype(int)) == set(range(reuse))
        distance = np.linalg.norm(sites[:, None] - sites[None], axis=2)
        adjacent = np.isclose(distance, 1000.0)
        assert adjacent.sum() > 0
        assert not (adjacent & (carrier[:, None] == carrier[None])).any()
    # reuse 7: the centre and its six neighbours all differ; co-channel cells are sqrt(21) km apart
    sites, carrier = carriers(7, rings=3)
    assert len(set(carrier[:7])) == 7
    same = (carrier[:, None] == carrier[None]) & ~np.eye(len(carrier), dtype=bool)
    assert np.min(np.linalg.norm(sites[:, None] - sites[None], axis=2)[same]) == pytest.approx(1000 * math.sqrt(7))
    assert reuse_colour(0, 0, 1) == 0 and carriers(1)[1].tolist() == [2e9] * 19


def test_bad_reuse_and_interference_values_are_refused_naming_the_field():
    raw = scenario_dict(cells={"hex_grid": {"rings": 1, "spacing_m": 1000, "radius_m": 577, "bandwidth_hz": 1e6,
                                            "reuse": 4}})
    with pytest.raises(ScenarioError, match=r"cells\.hex_grid\.reuse.*1, 3, 7"):
        scenario_from_dict(raw)
    with pytest.raises(ScenarioError, match=r"network\.interference: must be one of none, co_channel; got 'full'"):
        scenario_from_dict(scenario_dict(network={"interference": "full"}))
    with pytest.raises(ScenarioError, match=r"network\.allocator.*lowest_free"):
        scenario_from_dict(scenario_dict(network={"allocator": "lowest"}))
    with pytest.raises(ScenarioError, match=r"carrier_hz"):
        scenario_from_dict(scenario_dict(cells=[{"name": "a", "position_m": [0, 0], "radius_m": 600,
                                                 "bandwidth_hz": B, "carrier_hz": 2e12}]))


def test_the_lowest_free_allocator_places_contiguous_blocks_lowest_first_and_fills_holes():
    band = (0.0, 10.0)
    place = LowestFree().place
    assert place(band, [], 3.0, 0) == [(0.0, 3.0)]
    assert place(band, [[(0.0, 3.0)]], 3.0, 0) == [(3.0, 6.0)]
    # a hole of 2 at [3, 5) is too small for 3: the first gap that holds it, [6, 10)
    assert place(band, [[(0.0, 3.0)], [(5.0, 6.0)]], 3.0, 0) == [(6.0, 9.0)]
    # nothing holds 5 whole: the lowest pieces in turn
    assert place(band, [[(0.0, 3.0)], [(5.0, 6.0)], [(8.0, 9.0)]], 5.0, 0) == [(3.0, 5.0), (6.0, 8.0), (9.0, 10.0)]
    assert free_pieces(band, [[(2.0, 4.0)], [(3.0, 5.0)]]) == [(0.0, 2.0), (5.0, 10.0)]
    assert overlap_hz([(0.0, 2.0), (5.0, 7.0)], [(1.0, 6.0)]) == 2.0


def test_the_sinr_of_every_flow_at_one_instant_equals_a_brute_force_computation():
    raw = scenario_dict(cells={"hex_grid": {"rings": 1, "spacing_m": 1000, "radius_m": 577, "bandwidth_hz": 1e6,
                                            "path_loss": {"shadowing_std_db": 8}}},
                        devices={"count": 70, "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20},
                        network={"interference": "co_channel"})
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    rng = np.random.default_rng(0)
    env = simpy.Environment()
    medium = InterferenceMedium(env, world, Network(world, 1), seed=1)
    jobs = []
    for i in range(world.n_devices):  # random widths and powers; each cell's widths fit its band
        share = world.bandwidth_hz[world.cell_of[i]] / np.bincount(world.cell_of)[world.cell_of[i]]
        job = Job(job=i, device=i, base_version=0, repeat=0, cell=int(world.cell_of[i]), gain=float(world.gain[i]),
                  round_fading=1.0, f_hz=1e9, b_hz=float(share * rng.uniform(0.3, 1.0)),
                  p_w=float(rng.uniform(1e-4, 0.2)), rate_bps=math.nan, model_bits=S_BITS, computing_w=1.0,
                  download_s=0.0, compute_s=0.0, battery_j=math.inf, online_until_s=math.inf, dispatch_s=0.0,
                  deadline_s=100.0, phase=UPLOAD)
        jobs.append(job)
        medium.chunk(job, 1.0)  # it starts sending: placed lowest-free in its cell
    rates = np.array([medium.chunk(job, 1.0)[1][0] for job in jobs])  # every flow with all the others on
    # brute force: blocks from the medium's placement, gains from positions and the shadowing draws
    lo = np.array([j.pieces[0][0] for j in jobs])
    assert all(len(j.pieces) == 1 for j in jobs)  # nothing fragmented here
    hi = lo + np.array([j.b_hz for j in jobs])
    p, b, cell = np.array([j.p_w for j in jobs]), np.array([j.b_hz for j in jobs]), world.cell_of
    d_km = np.linalg.norm(world.position_m[:, None] - world.bs_position_m[None], axis=2) / 1000
    gain = 10 ** ((-(128.1 + 37.6 * np.log10(np.maximum(d_km, 1e-3))) + 8 * world.shadowing_z[:, None]) / 10)
    overlap = np.clip(np.minimum(hi[:, None], hi[None]) - np.maximum(lo[:, None], lo[None]), 0, None)
    other_cell = cell[:, None] != cell[None]
    # I_i = sum_j (p_j / b_j) overlap_ij g_j,cell(i)
    interference = ((other_cell * overlap) * (p / b)[None] * gain[:, cell].T).sum(axis=1)
    expected = p * gain[np.arange(len(cell)), cell] / (b * N0 + interference)
    assert (interference > 0).sum() > 50
    np.testing.assert_allclose(2 ** (rates / b) - 1, expected, rtol=1e-9)


def test_round_hooks_see_the_interference_each_device_met_over_its_last_upload():
    from simfl.engine import run as run_engine
    from simfl.policy import FixedPlan

    world = two_cell_world()
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz.copy(),
                b_hz=np.full(2, B), p_w=np.full(2, 1e-3))
    seen, rows = [], []

    class Watching(FixedPlan):
        def select(self, state, context):
            seen.append(None if state.interference_w_per_hz is None else state.interference_w_per_hz.copy())
            return super().select(state, context)

    run_engine(world, plan, StandInTrainer(), rounds=2, seed=3, policy=Watching(plan),
               on_round=lambda r, d, s: rows.extend(d))
    assert np.isnan(seen[0]).all()  # nothing measured before the first upload
    first = {d.device: d for d in rows if d.round == 0}
    np.testing.assert_array_equal(seen[1], [first[0].interference_w / B, first[1].interference_w / B])
    assert (seen[1] > 0).all()


def test_planning_on_measured_interference_is_eq_7_with_the_noise_raised_by_it():
    from simfl.network import RoundState
    from simfl.radio import uplink_rate_bps

    n0, i_psd, g, p, b = N0, 3e-21, 1e-11, 0.01, 1e6
    state = RoundState(round=0, time_s=0.0, version=0, available=np.ones(1, bool), online_until_s=np.full(1, np.inf),
                       position_m=np.zeros((1, 2)), cell_of=np.zeros(1, int), distance_m=np.ones(1),
                       mean_gain=np.full(1, g), gain=np.full(1, g), battery_j=np.full(1, np.inf),
                       interference_w_per_hz=np.full(1, i_psd))
    planned = state.planning_gain(np.full(1, n0))
    assert planned[0] == pytest.approx(g * n0 / (n0 + i_psd), rel=1e-15)
    assert uplink_rate_bps(b, planned, p, n0)[0] == pytest.approx(rate(p, g, i_psd * b, b=b), rel=1e-12)
    unheard = RoundState(**{**state.__dict__, "interference_w_per_hz": None})
    assert unheard.planning_gain(np.full(1, n0)) is unheard.gain


def test_planning_takes_each_devices_interference_or_for_an_outage_the_quantile_of_its_cell():
    from simfl.network import RoundState

    measured = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 10.0, 20.0]) * 1e-21  # cell 0: four; cell 1: one unmeasured
    cell = np.array([0, 0, 0, 0, 1, 1, 1])
    n = len(cell)
    state = RoundState(round=0, time_s=0.0, version=0, available=np.ones(n, bool), online_until_s=np.full(n, np.inf),
                       position_m=np.zeros((n, 2)), cell_of=cell, distance_m=np.ones(n), mean_gain=np.ones(n),
                       gain=np.ones(n), battery_j=np.full(n, np.inf), interference_w_per_hz=measured)
    noise = np.full(n, N0)
    planned = state.planning_gain(noise, outage=0.25)
    # the 75th percentile (numpy's linear rule) of {1, 2, 3, 4} is 3.25; of cell 1's measured {10, 20}, 17.5
    expected = np.array([3.25] * 4 + [17.5] * 3) * 1e-21
    np.testing.assert_allclose(planned, N0 / (N0 + expected), rtol=1e-12)
    # without an outage: each device's own, and the median of its cell's where it has none (15)
    own = np.array([1.0, 2.0, 3.0, 4.0, 15.0, 10.0, 20.0]) * 1e-21
    np.testing.assert_allclose(state.planning_gain(noise), N0 / (N0 + own), rtol=1e-12)


def test_fimi_online_leaves_out_a_device_whose_measured_interference_makes_t_max_unreachable():
    from dataclasses import replace

    from simfl.policies.fimi_online import deadline_keepers

    world = two_cell_world()
    state = Network(world, 1).observe(0.0, 0, 0)
    everyone, d_gen = np.arange(2), np.zeros(2)
    assert deadline_keepers(world, state, everyone, d_gen).tolist() == [0, 1]
    # device 1's last upload met interference a million times the noise: at P_max over its
    # whole band it would need rate * 1e6 more band than it has
    loud = replace(state, interference_w_per_hz=np.array([0.0, 1e6 * N0]))
    assert deadline_keepers(world, loud, everyone, d_gen).tolist() == [0]


def test_downlinks_of_other_cells_on_the_same_carrier_slow_a_download_as_computed_by_hand():
    from simfl.engine.dispatch import downlink_time_s

    for interference in ("none", "co_channel"):
        cells = [{"name": n, "position_m": [x, 0], "radius_m": 600, "bandwidth_hz": B,
                  "downlink": {"bandwidth_hz": 2e6, "power_dbm": 30}} for n, x in (("a", 0), ("b", 1000))]
        devices = [{"position_m": [x, 0], "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20} for x in (300, 700)]
        world = build_world(scenario_from_dict(scenario_dict(cells=cells, devices=devices,
                                                             network={"interference": interference})),
                            model_bits=S_BITS)
        view = Network(world, 1).observe(0.0, 0, 0)
        heard = 1.0 * gain_at(700) if interference == "co_channel" else 0.0  # 30 dBm over all 2 MHz of it
        expected = S_BITS / rate(1.0, gain_at(300), heard, b=2e6)
        np.testing.assert_allclose(downlink_time_s(world, view, np.full(2, S_BITS)), [expected] * 2, rtol=1e-9)


@pytest.mark.parametrize("aggregation", [None, {"mode": "fedbuff", "buffer_size": 2, "max_concurrency": 2}])
def test_on_a_channel_in_time_interference_only_delays_the_same_uploads(aggregation):
    from test_async import VectorTrainer

    def world(interference):
        cells = [{"name": n, "position_m": [x, 0], "radius_m": 600, "bandwidth_hz": B,
                  "path_loss": {"fading": {"clarke": {"min_doppler_hz": 5.0}}}} for n, x in (("a", 0), ("b", 1000))]
        devices = [{"position_m": [x, 0], "f_max_hz": f, "eps": 5e-27, "p_max_dbm": 20}
                   for x, f in ((300, 1e9), (700, 1.5e9))]
        raw = scenario_dict(cells=cells, devices=devices, network={"interference": interference})
        if aggregation is not None:
            raw["aggregation"] = aggregation
        return build_world(scenario_from_dict(raw), model_bits=S_BITS)

    def uploads(w):
        plan = Plan(d_gen_per_class=np.zeros_like(w.d_loc_per_class), f_hz=w.f_max_hz.copy(), b_hz=np.full(2, B),
                    p_w=np.full(2, 1e-3))
        rows = []
        trainer = VectorTrainer(2) if aggregation else StandInTrainer()
        run(w, plan, trainer, rounds=2, seed=3, on_round=lambda r, d, s: rows.extend(d))
        return {(d.device, d.upload_start_s): d for d in rows}

    quiet, loud = uploads(world("none")), uploads(world("co_channel"))
    first = min(quiet)  # the first upload starts at the same instant in both runs
    assert first in loud
    assert loud[first].gain == quiet[first].gain  # the serving link's channel is the same
    assert loud[first].upload_end_s > quiet[first].upload_end_s
    assert all(d.outcome == "ok" and d.bits_sent == S_BITS for d in loud.values())
    assert all(d.interference_w > 0 for d in loud.values())


def test_an_asynchronous_run_with_interference_resumes_bit_for_bit_with_uploads_in_flight():
    from simfl.engine import EngineState
    from test_async import VectorTrainer, play

    cells = [{"name": n, "position_m": [x, 0], "radius_m": 600, "bandwidth_hz": B} for n, x in (("a", 0), ("b", 1000))]
    devices = {"count": 6, "f_max_hz": {"uniform": [1e9, 3e9]}, "eps": 5e-27, "p_max_dbm": 20}
    raw = scenario_dict(cells=cells, devices=devices, network={"interference": "co_channel"},
                        aggregation={"mode": "fedbuff", "buffer_size": 2, "max_concurrency": 4}, task={"rounds": 12})
    world = build_world(scenario_from_dict(raw), model_bits=S_BITS)
    plan = Plan(d_gen_per_class=np.zeros_like(world.d_loc_per_class), f_hz=world.f_max_hz.copy(),
                b_hz=np.full(6, B / 3), p_w=np.full(6, 3e-4))
    whole_trainer = VectorTrainer(6)
    whole, _ = play(world, plan, whole_trainer, rounds=12)
    first_trainer = VectorTrainer(6)
    first, middle = play(world, plan, first_trainer, rounds=6)
    flights = middle.asynchronous["flights"]
    assert any(f["phase"] == "upload" and f["pieces"] for f in flights), "the test needs uploads in flight"
    restored = EngineState.from_json(middle.to_json(), {v: m.copy() for v, m in middle.models.items()})
    second_trainer = VectorTrainer(6)
    second_trainer.g = first_trainer.g.copy()
    rest, _ = play(world, plan, second_trainer, rounds=12, state=restored)
    assert [(r, d) for r, d, _ in whole] == [(r, d) for r, d, _ in first + rest]
    assert any(d.interference_w > 0 for _, events, _ in whole for d in events)


def test_an_allocator_is_one_registered_class_that_a_scenario_names():
    from simfl.spectrum import ALLOCATORS, register_allocator

    @register_allocator
    class HighestFirst:
        """Blocks from the top of the band down (what a policy-aware allocator would replace)."""

        kind = "highest_first"

        def place(self, band, held, b_hz, device):
            top = min([band[1]] + [lo for pieces in held for lo, _ in pieces])
            return [(top - b_hz, top)]

    try:
        world = two_cell_world(allocator="highest_first")
        medium = InterferenceMedium(simpy.Environment(), world, Network(world, 1), seed=1)
        job = Job(job=0, device=0, base_version=0, repeat=0, cell=0, gain=float(world.gain[0]), round_fading=1.0,
                  f_hz=1e9, b_hz=B / 4, p_w=1e-3, rate_bps=math.nan, model_bits=S_BITS, computing_w=1.0,
                  download_s=0.0, compute_s=0.0, battery_j=math.inf, online_until_s=math.inf, dispatch_s=0.0,
                  deadline_s=100.0, phase=UPLOAD)
        medium.chunk(job, 0.0)
        assert job.pieces == [[2e9 + B / 4, 2e9 + B / 2]]  # the top quarter of [2 GHz - B/2, 2 GHz + B/2)
    finally:
        del ALLOCATORS["highest_first"]
