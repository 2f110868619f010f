"""The handover rule against hand computation: with equal path loss PL = 128.1 + 37.6
log10(d_km) in two cells, the gain difference is 37.6 log10(d_s / d_o), so it exceeds the
hysteresis h where d_s / d_o > r = 10^(h / 37.6). On the line through both base stations,
1000 m apart, d_s = x and d_o = 1000 - x, so the crossing is at x = 1000 r / (1 + r); off
that line it is where the leg meets the Apollonius circle d_s = r d_o."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simfl.handover import (condition_intervals, handover_instant, handover_instant_paused, held_since_at_end,
                            margins_db)
from simfl.links import Links

EQUAL = np.array([[128.1, 37.6, 4.0], [128.1, 37.6, 4.0]])  # the same sigma: z sigma cancels too
TWO = np.array([[0.0, 0.0], [1000.0, 0.0]])
Z = 0.7
SPEED = 10.0


def links(bs, params, z):
    """One device's links to the stations `bs` with the log-distance `params` and shadowing draw `z`."""
    return Links(np.asarray(bs, float), np.asarray(params, float), np.array([z])).of(0)


TWO_LINKS = links(TWO, EQUAL, Z)


def crossing_x(h_db):
    r = 10.0 ** (h_db / 37.6)
    return 1000.0 * r / (1.0 + r)


def along_the_axis(t_to, hysteresis_db, ttt, start_x=100.0, end_x=900.0, **kwargs):
    """A device leaving (start_x, 0) at t = 0 towards (end_x, 0) at 10 m/s, served by the west station."""
    return handover_instant(np.array([start_x, 0.0]), np.array([end_x, 0.0]), 0.0, SPEED, 0.0, t_to, 0, TWO_LINKS,
                            hysteresis_db, ttt, **kwargs)


def test_the_handover_is_where_the_path_loss_difference_reaches_the_hysteresis():
    # r = 10^(3/37.6) = 1.2017, x = 545.8 m, reached after (x - 100) / 10 = 44.58 s
    t, target = along_the_axis(80.0, 3.0, 0.0)
    assert t == pytest.approx((crossing_x(3.0) - 100.0) / SPEED, abs=1e-9)
    assert target == 1


def test_the_time_to_trigger_adds_to_the_crossing():
    t, target = along_the_axis(80.0, 3.0, 2.5)
    assert t == pytest.approx((crossing_x(3.0) - 100.0) / SPEED + 2.5, abs=1e-9)
    assert target == 1


def test_zero_hysteresis_hands_over_at_the_midpoint():
    t, target = along_the_axis(80.0, 0.0, 0.0)
    assert t == pytest.approx(40.0, abs=1e-9) and target == 1  # x = 500 m after 400 m at 10 m/s


def test_a_leg_that_stays_inside_the_hysteresis_does_not_hand_over():
    assert along_the_axis(80.0, 3.0, 0.0, end_x=540.0) is None  # the leg ends 5.8 m short of 545.8 m
    assert along_the_axis(44.0, 3.0, 0.0) is None  # the window ends 0.58 s before the crossing
    assert along_the_axis(45.0, 3.0, 0.5) is None  # it crosses, but the time to trigger runs past the window


def test_the_time_to_trigger_runs_on_while_the_device_stands_at_its_waypoint():
    # the leg ends at x = 600 m at 50 s, beyond the crossing at 44.58 s; the count goes on in the pause
    t, target = along_the_axis(80.0, 3.0, 10.0, end_x=600.0)
    assert t == pytest.approx((crossing_x(3.0) - 100.0) / SPEED + 10.0, abs=1e-9) and target == 1


def apollonius_half_chord(c, h_db):
    """On the line x = c, d_s / d_o > r where c^2 + y^2 > r^2 ((1000 - c)^2 + y^2), i.e.
    |y| < sqrt((c^2 - r^2 (1000 - c)^2) / (r^2 - 1))."""
    r2 = 10.0 ** (2 * h_db / 37.6)
    return math.sqrt((c**2 - r2 * (1000.0 - c) ** 2) / (r2 - 1.0))


def test_a_leg_that_dips_across_for_less_than_the_time_to_trigger_does_not_hand_over():
    # walking north along x = 560 from y = -1000: beyond the hysteresis for |y| < 277.0 m, 55.4 s
    y = apollonius_half_chord(560.0, 3.0)
    origin, target = np.array([560.0, -1000.0]), np.array([560.0, 1000.0])
    onset, end = (1000.0 - y) / SPEED, (1000.0 + y) / SPEED
    (start, stop), = condition_intervals(origin, target, 0.0, SPEED, 0.0, 200.0, 0, TWO_LINKS, 3.0)
    assert (start, stop) == pytest.approx((onset, end), abs=1e-9)
    assert handover_instant(origin, target, 0.0, SPEED, 0.0, 200.0, 0, TWO_LINKS, 3.0, end - onset + 0.01) is None
    t, cell = handover_instant(origin, target, 0.0, SPEED, 0.0, 200.0, 0, TWO_LINKS, 3.0, 50.0)
    assert t == pytest.approx(onset + 50.0, abs=1e-9) and cell == 1


THREE = np.array([[-1000.0, 0.0], [0.0, 0.0], [1000.0, 0.0]])
EQUAL3 = np.array([[128.1, 37.6, 0.0]] * 3)


def test_a_break_in_the_condition_restarts_the_count():
    # served by the middle station, walking east from x = -900 at 10 m/s: the west station is
    # 3 dB stronger until x = -545.8 (35.4 s), the east one from x = +545.8 (144.6 s), where
    # the walk passes through the east station at x = 1000 (the 1 m floor) and goes on
    x = crossing_x(3.0)
    origin, target = np.array([-900.0, 0.0]), np.array([1400.0, 0.0])
    intervals = condition_intervals(origin, target, 0.0, SPEED, 0.0, 200.0, 1, links(THREE, EQUAL3, 0.0), 3.0)
    assert np.array(intervals) == pytest.approx(np.array([[0.0, (900 - x) / SPEED], [(900 + x) / SPEED, 200.0]]),
                                                abs=1e-9)
    t, cell = handover_instant(origin, target, 0.0, SPEED, 0.0, 200.0, 1, links(THREE, EQUAL3, 0.0), 3.0, 20.0)
    assert (t, cell) == (20.0, 0)  # the condition held from the window's start
    t, cell = handover_instant(origin, target, 0.0, SPEED, 0.0, 200.0, 1, links(THREE, EQUAL3, 0.0), 3.0, 36.0)
    assert t == pytest.approx((900 + x) / SPEED + 36.0, abs=1e-9) and cell == 2


def test_the_count_carries_over_from_one_segment_to_the_next():
    crossing = (crossing_x(3.0) - 100.0) / SPEED
    split = crossing + 2.0
    intervals = condition_intervals(np.array([100.0, 0.0]), np.array([900.0, 0.0]), 0.0, SPEED, 0.0, split, 0, TWO_LINKS,
                                    3.0)
    assert along_the_axis(split, 3.0, 5.0) is None
    held = held_since_at_end(intervals, 0.0, split)
    assert held == pytest.approx(crossing, abs=1e-9)
    t, cell = handover_instant(np.array([100.0, 0.0]), np.array([900.0, 0.0]), 0.0, SPEED, split, 80.0, 0, TWO_LINKS,
                               3.0, 5.0, held_since_s=held)
    assert t == pytest.approx(crossing + 5.0, abs=1e-9) and cell == 1
    assert held_since_at_end([(split, 80.0)], split, 80.0, held) == held  # still the same count at the end


def test_a_paused_device_hands_over_only_where_the_condition_already_holds():
    beyond, short = np.array([600.0, 0.0]), np.array([540.0, 0.0])  # either side of x = 545.8
    assert handover_instant_paused(beyond, 10.0, 50.0, 0, TWO_LINKS, 3.0, 4.0) == (14.0, 1)
    assert handover_instant_paused(beyond, 10.0, 50.0, 0, TWO_LINKS, 3.0, 4.0, held_since_s=8.0) == (12.0, 1)
    assert handover_instant_paused(beyond, 10.0, 12.0, 0, TWO_LINKS, 3.0, 4.0) is None
    assert handover_instant_paused(short, 10.0, 1e6, 0, TWO_LINKS, 3.0, 0.0) is None
    # a leg of length 0 is a pause
    assert handover_instant(beyond, beyond, 0.0, SPEED, 10.0, 50.0, 0, TWO_LINKS, 3.0, 4.0) == (14.0, 1)


def test_the_target_is_the_strongest_cell_at_the_handover():
    # served by a far station, the device is inside both other cells' thresholds; the nearer is the target
    bs = np.array([[-5000.0, 0.0], [0.0, 0.0], [300.0, 0.0]])
    t, cell = handover_instant(np.array([100.0, 0.0]), np.array([200.0, 0.0]), 0.0, 1.0, 0.0, 50.0, 0,
                               links(bs, EQUAL3, 0.0),
                               3.0, 1.0)
    assert (t, cell) == (1.0, 1)  # at x = 101 the station at 0 is 101 m away, the one at 300 is 199 m away


def test_with_unequal_slopes_the_instant_is_the_first_exact_crossing():
    # no closed form: the facts checked are that the margin equals the hysteresis at the
    # instant and stays below it before, on a grid 100 times finer than the leg's metre
    params = np.array([[120.0, 40.0, 6.0], [131.0, 30.0, 3.0]])
    bs = np.array([[0.0, 0.0], [800.0, 300.0]])
    origin, target, z, h = np.array([-200.0, 400.0]), np.array([1200.0, -100.0]), -0.8, 2.0
    t, cell = handover_instant(origin, target, 5.0, 3.0, 5.0, 600.0, 0, links(bs, params, z), h, 0.0)
    unit = (target - origin) / np.linalg.norm(target - origin)
    where = lambda s: origin + np.multiply.outer(3.0 * (np.asarray(s) - 5.0), unit)  # noqa: E731
    assert margins_db(where([t]), 0, links(bs, params, z))[0, 1] == pytest.approx(h, abs=1e-9)
    before = np.linspace(5.0, t, 50_000, endpoint=False)
    assert (margins_db(where(before), 0, links(bs, params, z))[:, 1] <= h).all()
    assert cell == 1


def test_a_short_dip_near_the_serving_station_is_found_exactly():
    # the other station, 50 m north, has an intercept 28.1 dB lower, so with h = 0 it is the
    # stronger wherever d_s > r d_o, r = 10^(-28.1 / 37.6) = 0.179; along the x axis
    # (d_s = |x|, d_o^2 = x^2 + 2500) that is |x| > x0 = 50 r / sqrt(1 - r^2) = 9.10 m. At 30 m/s
    # the serving station wins for 0.61 s around t = 10 s (a 1 s time step could step over
    # it), and the walk passes over the station itself (the 1 m floor)
    params = np.array([[128.1, 37.6, 0.0], [100.0, 37.6, 0.0]])
    bs = np.array([[0.0, 0.0], [0.0, 50.0]])
    r = 10.0 ** (-28.1 / 37.6)
    x0 = 50.0 * r / math.sqrt(1.0 - r**2)
    intervals = condition_intervals(np.array([-300.0, 0.0]), np.array([300.0, 0.0]), 0.0, 30.0, 0.0, 20.0, 0,
                                    links(bs, params, 0.0), 0.0)
    expected = np.array([[0.0, (300.0 - x0) / 30.0], [(300.0 + x0) / 30.0, 20.0]])
    assert np.array(intervals) == pytest.approx(expected, abs=1e-9)


def test_the_intervals_agree_with_a_dense_grid_on_random_legs_among_unlike_cells():
    # the exact intervals against brute force: on 20,000 instants per leg, every instant
    # clearly inside an interval meets the condition and every one clearly outside does not
    draw = np.random.default_rng(12)
    bs = draw.uniform(-1500.0, 1500.0, size=(5, 2))
    params = np.column_stack([draw.uniform(110, 140, 5), draw.uniform(20, 45, 5), draw.uniform(0, 8, 5)])
    for _ in range(30):
        origin, target = draw.uniform(-2000.0, 2000.0, size=(2, 2))
        speed, z, h = draw.uniform(1.0, 30.0), draw.normal(), draw.uniform(0.0, 6.0)
        serving = int(draw.integers(5))
        t_to = float(np.linalg.norm(target - origin)) / speed + 20.0
        intervals = condition_intervals(origin, target, 3.0, speed, 0.0, t_to, serving, links(bs, params, z), h)
        t = np.linspace(0.0, t_to, 20_000)
        walked = np.clip(t - 3.0, 0.0, np.linalg.norm(target - origin) / speed) * speed
        where = origin + np.multiply.outer(walked, (target - origin) / np.linalg.norm(target - origin))
        excess = margins_db(where, serving, links(bs, params, z)).max(axis=1) - h
        inside = np.zeros(len(t), dtype=bool)
        for start, end in intervals:
            inside |= (t >= start) & (t <= end)
        clear = np.abs(excess) > 1e-9
        assert (inside[clear] == (excess[clear] > 0)).all()


# TR 38.901 links: gains step where a link's draws are renewed (every 10 / 13 m of walk in
# UMi's LOS / NLOS shadowing, 50 m for its LOS state) and where a link's distance crosses
# the LOS radius of its draw; the search splits the leg there (simfl.links.DeviceLinks.breaks_along)
def umi_links(bs, seed=4):
    from simfl.pathloss import UMi

    n = len(bs)
    return Links(np.asarray(bs, float), np.full((n, 3), np.nan), np.zeros(200), (UMi(),) * n, np.full(n, 3.5e9),
                 seed=seed)


def dense_check(links, origin, target, depart_s, speed, t_to, serving, h, walked_m, intervals, samples=20_000):
    """Every instant of a fine grid clearly inside an interval meets the condition, every one clearly outside does
    not. An interval is closed, also where it ends at a step; the instant of the step itself has the value after it."""
    length = np.linalg.norm(target - origin)
    t = np.linspace(0.0, t_to, samples)
    walked = np.clip(t - depart_s, 0.0, length / speed) * speed
    where = origin + np.multiply.outer(walked, (target - origin) / length)
    excess = margins_db(where, serving, links, walked_m + walked).max(axis=1) - h
    inside = np.zeros(len(t), dtype=bool)
    for start, end in intervals:
        inside |= (t >= start) & (t <= end)
    clear = (np.abs(excess) > 1e-9) & ~np.isin(t, [end for _, end in intervals])
    assert (inside[clear] == (excess[clear] > 0)).all()


def test_with_tr38901_links_the_intervals_agree_with_a_dense_grid_on_random_legs():
    draw = np.random.default_rng(5)
    bs = np.array([[0.0, 0.0], [200.0, 0.0], [100.0, 170.0], [-150.0, 120.0]])
    links = umi_links(bs)
    for _ in range(12):
        origin, target = draw.uniform(-250.0, 350.0, size=(2, 2))
        speed, h, walked_m = draw.uniform(0.5, 15.0), draw.uniform(0.0, 4.0), draw.uniform(0.0, 300.0)
        serving, device = int(draw.integers(4)), int(draw.integers(200))
        t_to = float(np.linalg.norm(target - origin)) / speed + 10.0
        intervals = condition_intervals(origin, target, 2.0, speed, 0.0, t_to, serving, links.of(device), h,
                                        walked_m=walked_m)
        dense_check(links.of(device), origin, target, 2.0, speed, t_to, serving, h, walked_m, intervals)


def test_with_tr38901_links_a_step_across_the_threshold_is_an_interval_end_exactly_at_the_step():
    # walking 1 m/s from x = 40 to x = 160 between two UMi stations 200 m apart, with no
    # hysteresis: the margin is near 0 there, so renewed shadowing often moves it across
    # 0 at a step. Every end of an interval inside the window is either a crossing of a
    # continuous margin (the margin is 0 there) or exactly a renewal instant (a multiple of
    # 10, 13 or 50 m walked, here an instant in s) or a LOS-radius crossing, where it steps
    bs = np.array([[0.0, 0.0], [200.0, 0.0]])
    origin, target = np.array([40.0, 0.0]), np.array([160.0, 0.0])
    steps_at_renewals = 0
    for device in range(40):
        links = umi_links(bs).of(device)
        intervals = condition_intervals(origin, target, 0.0, 1.0, 0.0, 120.0, 0, links, 0.0)
        breaks = links.breaks_along(origin, np.array([1.0, 0.0]), 120.0, 0.0)  # walked = t here
        for end in [e for pair in intervals for e in pair if 0.0 < e < 120.0]:
            before, after = (margins_db(np.array([[40.0 + t, 0.0]]), 0, links, t)[0, 1]
                             for t in (end - 1e-7, end + 1e-7))
            if abs(after - before) > 1e-3:  # a step: exactly at a break, across 0
                assert np.min(np.abs(breaks - end)) < 1e-9 and before * after < 0
                periods = np.array([10.0, 13.0, 50.0])
                steps_at_renewals += np.min(np.abs(end - periods * np.round(end / periods))) < 1e-9
            else:  # a crossing of a continuous margin
                assert abs(margins_db(np.array([[40.0 + end, 0.0]]), 0, links, end)[0, 1]) < 1e-7
        dense_check(links, origin, target, 0.0, 1.0, 120.0, 0, 0.0, 0.0, intervals, samples=12_001)
    assert steps_at_renewals >= 3


def test_with_tr38901_links_a_paused_device_keeps_the_draws_of_where_its_walk_ended():
    links = umi_links(np.array([[0.0, 0.0], [200.0, 0.0]])).of(7)
    spot = np.array([100.0, 0.0])
    margins = [margins_db(spot[None], 0, links, w)[0, 1] for w in (0.0, 9.0, 10.0, 130.0)]
    assert margins[0] == margins[1] and margins[1] != margins[2] != margins[3]  # renewed at 10 m walked, not in time
    holds = margins[3] > 0.0
    assert (handover_instant_paused(spot, 5.0, 50.0, 0, links, 0.0, 1.0, walked_m=130.0) is not None) == holds


def test_the_bisection_search_finds_what_the_exact_search_finds_on_log_distance_cells():
    # the search for TR 38.901 links (simfl.crossings) runs whenever one cell has such a
    # model: with one UMi station 1000 km away, which never matters, the other five cells'
    # log-distance margins are searched by bisection, and must give the exact search's intervals
    from simfl.pathloss import UMi

    draw = np.random.default_rng(12)
    bs = np.vstack([draw.uniform(-1500.0, 1500.0, size=(5, 2)), [[1e6, 0.0]]])
    params = np.column_stack([draw.uniform(110, 140, 5), draw.uniform(20, 45, 5), draw.uniform(0, 8, 5)])
    far = np.vstack([params, [[300.0, 40.0, 0.0]]])
    for _ in range(15):
        origin, target = draw.uniform(-2000.0, 2000.0, size=(2, 2))
        speed, z, h = draw.uniform(1.0, 30.0), draw.normal(), draw.uniform(0.0, 6.0)
        serving = int(draw.integers(5))
        t_to = float(np.linalg.norm(target - origin)) / speed + 20.0
        exact = condition_intervals(origin, target, 3.0, speed, 0.0, t_to, serving, links(bs, far, z), h)
        mixed = Links(bs, np.vstack([params, [[np.nan] * 3]]), np.array([z]), (None,) * 5 + (UMi(),),
                      np.full(6, 3.5e9)).of(0)
        found = condition_intervals(origin, target, 3.0, speed, 0.0, t_to, serving, mixed, h)
        assert np.array(found).reshape(-1, 2) == pytest.approx(np.array(exact).reshape(-1, 2), abs=1e-9)
