"""The channel in simulated time, against independent facts: Clarke's autocorrelation
J0(2 pi f_d tau) (Zheng and Xiao's exact result), the Rayleigh envelope, the Doppler
v f_c / c worked out by hand, a paused walker's frozen and continuous gain, Rayleigh blocks
and Gauss-Markov steps that every policy meets alike (the AR(1) correlation rho^k), the
instants blocks begin, bit-for-bit resume, and the scenario fields that configure it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from simfl.dynamics.channel_time import SINUSOIDS, ChannelInTime
from simfl.dynamics.fading import (Clarke, FadingProcess, GaussMarkov, GaussMarkovSteps, NoFading, Rayleigh,
                                   RayleighBlocks)
from simfl.engine.records import EngineState
from simfl.errors import ScenarioError
from simfl.radio import doppler_hz
from simfl.runfolder import fingerprint
from simfl.scenario import load_scenario, scenario_from_dict
from simfl.world import build_world

from conftest import scenario_dict

WALK_HZ = 10.006922855944561  # 1.5 m/s on 2 GHz: 1.5 x 2e9 / 299,792,458 = 3e9 / 299,792,458


def clarke(n, seed=1, min_doppler_hz=0.0, carrier_hz=2e9):
    return ChannelInTime([Clarke(min_doppler_hz)], [carrier_hz], n, seed)


def everyone(n, speed_mps=1.5, cell=0):
    return np.arange(n), np.full(n, cell), np.full(n, speed_mps)


def ratio_and_se(a, b):
    """sum(a) / sum(b) over independent devices and its standard error (delta method)."""
    r = a.sum() / b.sum()
    return r, np.std(a - r * b, ddof=1) / (b.mean() * math.sqrt(len(a)))


# ------------------------------------------------------------------ Clarke


def test_doppler_is_speed_times_carrier_over_c():
    assert doppler_hz(1.5, 2e9) == pytest.approx(WALK_HZ, rel=1e-15)
    assert doppler_hz(30.0, 3.5e9) == pytest.approx(350.2423, abs=1e-4)  # 108 km/h at 3.5 GHz


def test_clarke_complex_gain_has_autocorrelation_j0_of_2_pi_fd_tau():
    # Zheng and Xiao: E[h(t + tau) h*(t)] = J0(w_d tau) exactly, for any number of
    # sinusoids, and real (the quadratures are uncorrelated). Over n independent devices
    # the estimate's standard error is ~sqrt((1 - J0^2) / 2n); the test allows 5.
    n = 20_000
    channel = clarke(n)
    d, cells, speed = everyone(n)
    h0 = channel.gains_at(0.0, d, cells, speed)
    for x in (0.5, 1.5, 2.405, 3.832, 7.0):  # 2 pi f_d tau: near J0's first zero, its minimum, ...
        h = channel.gains_at(x / (2 * math.pi * WALK_HZ), d, cells, speed)
        products = h * np.conj(h0)
        power = np.abs(h0) ** 2
        real, se_real = ratio_and_se(products.real, power)
        imag, se_imag = ratio_and_se(products.imag, power)
        assert se_real < 0.006
        assert real == pytest.approx(special.j0(x), abs=5 * se_real), x
        assert imag == pytest.approx(0.0, abs=5 * se_imag), x


def test_clarke_power_has_mean_one_and_the_envelope_is_rayleigh():
    n = 4000
    channel = clarke(n, seed=3)
    d, cells, speed = everyone(n)
    for t in (0.0, 3.0):  # at the start (each device at a random point of its phase) and later
        h = channel.gains_at(t, d, cells, speed)
        power = np.abs(h) ** 2
        assert power.mean() == pytest.approx(1.0, abs=5 * power.std() / math.sqrt(n))  # Exp(1): sd 1
        # |h| ~ Rayleigh with E|h|^2 = 1: scale sqrt(1/2)
        assert stats.kstest(np.abs(h), stats.rayleigh(scale=math.sqrt(0.5)).cdf).pvalue > 0.01
    assert channel.power_gains_at(3.0, d, cells, speed) == pytest.approx(power, rel=1e-12)  # |h|^2, again at 3 s


def test_a_walker_who_pauses_keeps_his_gain_and_walks_on_where_he_stopped():
    n, dt = 50, 1e-4
    walker, twin = clarke(n, seed=5), clarke(n, seed=5)  # the twin never stops
    d, cells, walking = everyone(n)
    still = np.zeros(n)
    # |dh/dt| <= sqrt(2/M) sum_n |d/dt cos(.)| <= sqrt(2M) 2 pi f_d; 2e-6 covers float32 cosines
    bound = math.sqrt(2 * SINUSOIDS) * 2 * math.pi * WALK_HZ * dt + 2e-6
    walker.gains_at(0.0, d, cells, walking)
    before = walker.gains_at(2.0 - dt, d, cells, walking)
    stop = walker.gains_at(2.0, d, cells, walking)  # walked until 2 s (speed held since the last query)
    paused = [walker.gains_at(t, d, cells, still) for t in (2.0 + dt, 3.0, 5.0)]  # stood still since 2 s
    after = walker.gains_at(5.0 + dt, d, cells, walking)
    later = walker.gains_at(7.0, d, cells, walking)
    assert np.abs(stop - before).max() <= bound  # continuous as he stops
    for h in paused:
        assert np.array_equal(h, stop)  # frozen: min_doppler_hz = 0 and no speed
    assert 0 < np.abs(after - stop).max() <= bound  # continuous as he walks on
    assert np.abs(later - stop).max() > 0.1  # and the channel moves again
    # walking on, he meets what his twin met 3 s earlier: the phase resumed where it stopped
    twin.gains_at(0.0, d, cells, walking)
    assert np.abs(twin.gains_at(4.0, d, cells, walking) - later).max() < 1e-5


def test_min_doppler_hz_is_a_floor_under_the_speeds_doppler():
    n = 30
    d, cells, _ = everyone(n)
    slow = np.full(n, 0.3)  # 2.0 Hz < 5 Hz: the floor holds
    five_hz = np.full(n, 5.0 * 299_792_458 / 2e9)  # the speed whose Doppler is 5 Hz
    floored, moving = clarke(n, seed=2, min_doppler_hz=5.0), clarke(n, seed=2)
    for t in (0.0, 0.7, 2.0):
        assert np.abs(floored.gains_at(t, d, cells, slow) - moving.gains_at(t, d, cells, five_hz)).max() < 1e-5
    walking = np.full(n, 1.5)  # 10 Hz > 5 Hz: the speed's Doppler, as without a floor
    floored, plain = clarke(n, seed=2, min_doppler_hz=5.0), clarke(n, seed=2)
    for t in (0.0, 0.7, 2.0):
        assert np.array_equal(floored.gains_at(t, d, cells, walking), plain.gains_at(t, d, cells, walking))


# ------------------------------------------------------------------ Rayleigh blocks


def test_rayleigh_blocks_hold_within_a_block_and_change_at_the_next():
    n = 2000
    channel = ChannelInTime([RayleighBlocks(0.5)], [2e9], n, seed=4)
    d, cells, speed = everyone(n)
    first = [channel.power_gains_at(t, d, cells, speed) for t in (0.0, 0.1, 0.499)]
    second = [channel.power_gains_at(t, d, cells, speed) for t in (0.5, 0.9)]
    assert all(np.array_equal(g, first[0]) for g in first)
    assert np.array_equal(second[0], second[1])
    # independent blocks: Exp(1) draws with correlation 0 (sd of the sample correlation ~ 1/sqrt(n))
    assert np.corrcoef(first[0], second[0])[0, 1] == pytest.approx(0.0, abs=5 / math.sqrt(n))
    blocks = np.array([channel.power_gains_at(0.5 * k + 0.25, d, cells, speed) for k in range(2, 12)])
    assert blocks.mean() == pytest.approx(1.0, abs=5 / math.sqrt(blocks.size))


def test_every_policy_meets_the_same_rayleigh_block_whatever_it_asked_before():
    n = 40
    a = ChannelInTime([RayleighBlocks(0.3), NoFading()], [2e9, 2e9], n, seed=8)
    b = ChannelInTime([RayleighBlocks(0.3), NoFading()], [2e9, 2e9], n, seed=8)
    d, cells, speed = everyone(n)
    for t in (0.05, 0.2, 0.31, 0.95):  # policy a asks often, policy b only late, in another order
        a.power_gains_at(t, d, cells, speed)
    order = d[::-1]
    for t in (1.25, 2.0):
        assert np.array_equal(a.power_gains_at(t, d, cells, speed), b.power_gains_at(t, order, cells, speed)[::-1])


# ------------------------------------------------------------------ Gauss-Markov steps


def test_gauss_markov_steps_correlate_rho_to_the_k():
    # h_k = rho h_{k-1} + sqrt(1 - rho^2) w_k, so E[h_k h_0*] = rho^k and E|h|^2 = 1
    n, rho, step = 20_000, 0.8, 0.1
    channel = ChannelInTime([GaussMarkovSteps(rho, step)], [2e9], n, seed=6)
    d, cells, speed = everyone(n)
    h0 = channel.gains_at(0.05, d, cells, speed)  # mid-step instants: no rounding at the edges
    for k in (1, 2, 5):
        h = channel.gains_at((k + 0.5) * step, d, cells, speed)
        r, se = ratio_and_se((h * np.conj(h0)).real, np.abs(h0) ** 2)
        assert se < 0.006
        assert r == pytest.approx(rho**k, abs=5 * se), k
        assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=5 / math.sqrt(n))


def test_every_policy_meets_the_same_gauss_markov_gain_whatever_it_asked_before():
    n = 25
    a = ChannelInTime([GaussMarkovSteps(0.9, 0.2)], [2e9], n, seed=2)
    b = ChannelInTime([GaussMarkovSteps(0.9, 0.2)], [2e9], n, seed=2)
    d, cells, speed = everyone(n)
    for t in np.arange(0.0, 3.0, 0.07):  # a steps at every query, b jumps 15 steps at once
        a.power_gains_at(float(t), d, cells, speed)
    b.power_gains_at(0.0, d[:10], cells[:10], speed[:10])
    for t in (3.0, 3.33):
        assert np.array_equal(a.power_gains_at(t, d, cells, speed), b.power_gains_at(t, d, cells, speed))


# ------------------------------------------------------------------ what the engine calls


def test_next_change_is_the_first_instant_of_the_next_block():
    channel = ChannelInTime([RayleighBlocks(0.3), GaussMarkovSteps(0.5, 0.5), Clarke()], [2e9] * 3, 1, seed=0)
    assert channel.next_change_s(0.0) == pytest.approx(0.3)
    assert channel.next_change_s(0.3) == 0.5
    assert channel.next_change_s(0.55) == pytest.approx(0.6)
    # at every instant: later, in the next block of its grid, and the instant before it is not
    only = ChannelInTime([RayleighBlocks(0.1)], [2e9], 1, seed=0)
    for t in [0.7, 0.3, 1e5 + 0.1, *np.random.default_rng(0).uniform(0, 100, 200)]:
        nxt = only.next_change_s(float(t))
        assert nxt > t and math.floor(nxt / 0.1) == math.floor(t / 0.1) + 1
        assert math.floor(math.nextafter(nxt, -math.inf) / 0.1) == math.floor(t / 0.1)
    assert clarke(1).next_change_s(5.0) == math.inf


def test_default_step_is_a_tenth_of_the_shortest_coherence_time():
    mixed = ChannelInTime([RayleighBlocks(0.3), Clarke()], [2e9, 2e9], 1, seed=0)
    # Clarke at 1.5 m/s on 2 GHz: T_c = 0.423 / 10.007 Hz = 42.27 ms < 0.3 s
    assert mixed.default_step_s(1.5) == pytest.approx(0.423 / WALK_HZ / 10)
    assert mixed.default_step_s(0.0) == pytest.approx(0.03)  # a frozen Clarke channel: the blocks
    assert clarke(1).default_step_s(0.0) is None
    assert clarke(1, min_doppler_hz=20.0).default_step_s(0.0) == pytest.approx(0.423 / 20 / 10)
    assert clarke(1, carrier_hz=28e9).default_step_s(1.5) == pytest.approx(0.423 / (WALK_HZ * 14) / 10)
    assert ChannelInTime([NoFading(), Rayleigh(), GaussMarkov(0.9)], [2e9] * 3, 1, seed=0).default_step_s(30.0) is None


def test_per_round_and_time_based_kinds_are_drawn_by_one_process_each():
    cells = [NoFading(), Rayleigh(), GaussMarkov(0.7), RayleighBlocks(1.0), GaussMarkovSteps(0.7, 1.0), Clarke()]
    n = 60
    cell_of = np.arange(n) % len(cells)
    in_time = ChannelInTime(cells, [2e9] * len(cells), n, seed=1)
    per_round = FadingProcess(cells, n, seed=1)
    timed = in_time.time_based(cell_of)
    assert timed.tolist() == [c >= 3 for c in cell_of]
    gains = in_time.power_gains_at(0.4, np.arange(n), cell_of, np.full(n, 1.5))
    assert (gains[~timed] == 1).all() and (gains[timed] != 1).all()
    factors = per_round.power_gains(0, cell_of)
    assert (factors[timed | (cell_of == 0)] == 1).all() and (factors[~timed & (cell_of > 0)] != 1).all()


def test_a_resumed_channel_continues_bit_for_bit():
    cells = [Clarke(1.0), GaussMarkovSteps(0.9, 0.25), RayleighBlocks(0.4), NoFading()]
    n = 12
    rng = np.random.default_rng(3)
    plan = [(t, rng.integers(0, 4, n), rng.choice([0.0, 1.5, 12.0], n)) for t in np.cumsum(rng.uniform(0, 0.6, 40))]

    def play(channel, steps):
        return [channel.gains_at(float(t), np.arange(n), c, v) for t, c, v in steps]

    whole = ChannelInTime(cells, [2e9, 3.5e9, 2e9, 2e9], n, seed=9)
    expected = play(whole, plan)
    first = ChannelInTime(cells, [2e9, 3.5e9, 2e9, 2e9], n, seed=9)
    got = play(first, plan[:17])
    resumed = ChannelInTime(cells, [2e9, 3.5e9, 2e9, 2e9], n, seed=9)
    # through a snapshot file's format: the state's arrays become JSON lists there
    snapshot = EngineState(network={"channel_time": first.state_dict()}).to_json()
    resumed.load_state_dict(json.loads(snapshot)["network"]["channel_time"])
    got += play(resumed, plan[17:])
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_time_runs_forward_per_device():
    channel = clarke(4)
    d, cells, speed = everyone(4)
    channel.power_gains_at(2.0, d[:3], cells[:3], speed[:3])
    channel.power_gains_at(1.0, d[3:], cells[3:], speed[3:])  # device 3's own first query: fine
    with pytest.raises(ValueError, match="device 1 was queried at 2.0 s, then at the earlier 1.5 s"):
        channel.power_gains_at(1.5, d[1:], cells[1:], speed[1:])


# ------------------------------------------------------------------ scenario fields


def world_of(**cell):
    raw = scenario_dict()
    raw["cells"][0].update(cell)
    return build_world(scenario_from_dict(raw), model_bits=32_000)


def test_carrier_hz_defaults_to_2_ghz_and_reaches_the_world():
    assert world_of().carrier_hz.tolist() == [2e9]
    assert world_of(carrier_hz=3.5e9).carrier_hz.tolist() == [3.5e9]
    raw = scenario_dict(cells={"hex_grid": {"rings": 1, "spacing_m": 500, "radius_m": 300, "bandwidth_hz": 1e7,
                                            "carrier_hz": 28e9}})
    assert build_world(scenario_from_dict(raw), model_bits=32_000).carrier_hz.tolist() == [28e9] * 7


def test_a_world_built_without_carriers_has_the_default():
    world = world_of()
    older = type(world)(**{k: v for k, v in world.__dict__.items() if k != "carrier_hz"})
    assert older.carrier_hz.tolist() == [2e9]
    assert ChannelInTime.for_world(older, seed=0).default_step_s(1.5) is None  # no time-based fading here


def test_folders_written_before_carrier_hz_keep_their_fingerprint():
    tiny = Path(__file__).parent / "data" / "tiny.yaml"
    # computed before cells had a carrier_hz; float32 so that the digest is the same on every CPU
    assert fingerprint(load_scenario(tiny, overrides=["task.precision=float32"]))[0] == "56f9d9fd707a7c4f"
    other = fingerprint(load_scenario(tiny, overrides=["task.precision=float32", "cells.0.carrier_hz=3.5e9"]))
    assert other[1]["cells.0.carrier_hz"] == 3.5e9


@pytest.mark.parametrize("fading, expected", [
    ({"rayleigh": {"coherence_s": 0.5}}, RayleighBlocks(0.5)),
    ({"gauss_markov": {"rho": 0.7, "step_s": 0.1}}, GaussMarkovSteps(0.7, 0.1)),
    ({"clarke": {"min_doppler_hz": 2}}, Clarke(2.0)),
    ("clarke", Clarke(0.0)),
    # the forms that existed before keep their per-round classes, exactly
    ("rayleigh", Rayleigh()),
    ({"gauss_markov": {"rho": 0.7}}, GaussMarkov(0.7)),
    ("none", NoFading()),
    (None, NoFading()),
])
def test_each_fading_form_parses_to_its_component(fading, expected):
    parsed = world_of(path_loss={} if fading is None else {"fading": fading}).fading[0]
    assert type(parsed) is type(expected) and parsed == expected


@pytest.mark.parametrize("cell, expected", [
    ({"path_loss": {"fading": {"rayleigh": {"coherence_s": -1}}}},
     "cells[0].path_loss.fading.rayleigh.coherence_s: must be >= 1e-06, got -1"),
    ({"path_loss": {"fading": {"rayleigh": {"coherence_s": 1e10}}}},
     "cells[0].path_loss.fading.rayleigh.coherence_s: must be <= 1e+09, got 1e+10"),
    ({"path_loss": {"fading": {"gauss_markov": {"rho": 1.0, "step_s": 0.1}}}},
     "cells[0].path_loss.fading.gauss_markov.rho: must be < 1, got 1"),
    ({"path_loss": {"fading": {"gauss_markov": {"rho": 0.5, "step_s": 0}}}},
     "cells[0].path_loss.fading.gauss_markov.step_s: must be >= 1e-06, got 0"),
    ({"path_loss": {"fading": {"clarke": {"min_doppler_hz": -3}}}},
     "cells[0].path_loss.fading.clarke.min_doppler_hz: must be >= 0, got -3"),
    ({"path_loss": {"fading": {"clarke": {"min_doppler_hz": 1, "speed_mps": 2}}}},
     "cells[0].path_loss.fading.clarke.speed_mps: unknown field; allowed: min_doppler_hz"),
    ({"path_loss": {"fading": {"gauss_markov": {"rho": 0.5, "step": 2}}}},
     "cells[0].path_loss.fading.gauss_markov.step: unknown field; allowed: rho, step_s"),
    ({"path_loss": {"fading": {"rayleigh": 0.5}}},
     "cells[0].path_loss.fading.rayleigh: must be a mapping with field 'coherence_s', got 0.5"),
    ({"path_loss": {"fading": "jakes"}},
     "cells[0].path_loss.fading: unknown kind 'jakes'; allowed: clarke | {clarke: {min_doppler_hz}} | "
     "{gauss_markov: {rho}} | {gauss_markov: {rho, step_s}} | none | rayleigh | {rayleigh: {coherence_s}}"),
    ({"carrier_hz": 0}, "cells[0].carrier_hz: must be > 0, got 0"),
    ({"carrier_hz": 1e13}, "cells[0].carrier_hz: must be in [1e8, 3e11] Hz (100 MHz to 300 GHz), got 1e+13"),
    ({"carrier_hz": 5e7}, "cells[0].carrier_hz: must be in [1e8, 3e11] Hz (100 MHz to 300 GHz), got 5e+07"),
    ({"carrier_hz": "2.4 GHz"}, "cells[0].carrier_hz: must be a number, got str '2.4 GHz'"),
])
def test_bad_channel_fields_give_one_paragraph_naming_the_field(cell, expected):
    raw = scenario_dict()
    raw["cells"][0].update(cell)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(raw, "x.yaml")
    message = str(error.value)
    assert message == f"x.yaml: {expected}"
    assert "\n" not in message and "Traceback" not in message
