"""Infeasible set-ups: each raises InfeasiblePlan naming the device (or cell) and the
constraint with the numbers; infeasible search candidates cost +inf, never NaN."""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import numpy as np
import pytest

from simfl.errors import InfeasiblePlan
from simfl.optim.fimi import _assemble, _Setup, solve
from simfl.optim.infeasibility import check_learning_target, time_split_bounds
from paper_setup import PAPER_SCENARIO, paper_world
from simfl.world import rng

DEVICE = {"f_max_hz": 1.5e9, "eps": 5e-27, "p_max_dbm": 21.0}


def world_with_far_device(distance_m: float):
    raw = copy.deepcopy(PAPER_SCENARIO)
    raw["devices"] = [{"count": 2, "distance_m": {"values": [100.0, 200.0]}, **DEVICE},
                      {"position_m": [distance_m, 0.0], **DEVICE}]
    return paper_world(1, raw=raw)


@pytest.mark.parametrize("solver", ["ce", "exact"])
def test_device_too_far_to_upload_in_t_max(solver):
    world = world_with_far_device(20_000.0)
    with pytest.raises(InfeasiblePlan) as err:
        solve(world, solver, rng(1, "policy"))
    message = str(err.value)
    assert message.startswith("device 2 ")
    assert "(12b), (12e), (12f)" in message and "eta_max" in message
    assert "2e+04 m" in message  # the distance, with its number


def test_learning_target_no_synthetic_amount_reaches():
    world = paper_world(1, overrides=["optimisation.err_max=0.01", "optimisation.dgen_max=2000"])
    with pytest.raises(InfeasiblePlan, match=r"Delta_max = 0\.01 is out of reach.*D_max = 2000.*\(12a\), \(12c\)"):
        solve(world, "exact")


def test_cpu_too_slow_for_its_local_data():
    world = paper_world(1, overrides=["devices.f_max_hz=1e8"])
    # 5e6 cycles x 1250 samples / 1e8 Hz = 62.5 s > 60 s
    with pytest.raises(InfeasiblePlan, match=r"device 0: f_max = 1e\+08 Hz trains its 1250 samples in 62\.5 s.*\(12b\), \(12d\)"):
        solve(world, "ce", rng(1, "policy"))


def test_learning_target_out_of_reach_within_t_max_at_f_max():
    # 0.125 GHz trains 1250 samples in 50 s; within eta_max T_max (a wide band leaves
    # eta_max ~ 0.99) it trains at most ~1,485 < the ~1,540 per device the target needs
    world = paper_world(1, overrides=["devices.f_max_hz=1.25e8", "cells.0.bandwidth_hz=1e8"])
    with pytest.raises(InfeasiblePlan, match=r"out of reach within T_max = 60 s.*device \d+.*\(12a\), \(12b\), \(12d\)"):
        solve(world, "exact")


def test_cell_band_too_small_for_all_its_devices():
    world = paper_world(1, overrides=["cells.0.bandwidth_hz=1e6"])
    with pytest.raises(InfeasiblePlan, match=r"cell bs0: its 20 devices need at least .* Hz .* B = 1e\+06 Hz \(constraint \(12e\)"):
        solve(world, "exact")


def test_device_whose_training_and_upload_do_not_fit_together():
    raw = copy.deepcopy(PAPER_SCENARIO)
    # training alone fits (52 s at 0.12 GHz), uploading alone fits (16 s over 1 MHz), not both
    raw["devices"] = [{"count": 1, "distance_m": {"values": [399.0]}, "f_max_hz": 1.2e8, "eps": 5e-27, "p_max_dbm": 20.0}]
    raw["cells"][0]["bandwidth_hz"] = 1e6
    world = paper_world(1, raw=raw)
    with pytest.raises(InfeasiblePlan, match=r"device 0: training 1250 samples at f_max takes 52\.08 s .*constraint \(12b\)"):
        solve(world, "exact")


def test_infeasible_candidates_cost_infinity_not_nan():
    world = paper_world(1)
    lo, hi = time_split_bounds(world, world.d_loc.astype(float))
    setup = _Setup(world, lo, hi, check_learning_target(world, hi), None, None, "newton")
    eta = np.vstack([
        0.5 * (lo + hi),  # feasible
        hi,  # every device needs the whole band: the cell cannot carry them (P7)
        np.where(np.arange(20) < 19, lo, 0.5 * (lo + hi)),  # 19 devices train only D_loc: target missed (P6)
        np.full(20, 0.5) * 0 + lo * 0.5,  # below eta_min: D_loc cannot be trained
    ])
    energy = setup.energy(eta)
    assert np.isfinite(energy[0]) and energy[0] > 0
    assert np.isinf(energy[1:]).all()
    assert not np.isnan(energy).any()


def test_feasible_solutions_contain_no_nan():
    world = paper_world(2)
    for sol in (solve(world, "exact"), solve(world, "ce", rng(2, "policy"))):
        for name in ("eta", "d_gen", "f_hz", "b_hz", "p_w", "t_cmp_s", "t_com_s", "e_cmp_j", "e_com_j"):
            assert np.isfinite(getattr(sol, name)).all(), name


@pytest.mark.parametrize("field, value, named", [
    ("p_max_w", np.inf, r"P_max is inf W"),  # what p_max_dbm: 1e6 made before the scenario's ranges
    ("gain", np.inf, r"the gain g is inf"),  # intercept_db: -1e6
    ("gain", 1e300, r"the signal-to-noise ratio g P_max / \(N0 b\) is inf"),  # finite numbers whose ratio overflows
])
@pytest.mark.parametrize("solver", ["ce", "exact"])
def test_tfl_with_an_infinite_link_names_the_number_not_the_learning_target(field, value, named, solver):
    # TFL has no learning target; before, such a world ended in "the learning target (12a)
    # and the cells' bands (12e) cannot both be met" after numpy RuntimeWarnings
    world = paper_world(1)
    column = getattr(world, field).copy()
    column[3] = value
    with pytest.raises(InfeasiblePlan) as err, np.errstate(all="raise"):
        solve(replace(world, **{field: column}), solver, rng(1, "policy"), synthesis=False)
    message = str(err.value)
    assert message.startswith("device 3 (cell bs0, ")
    assert re.search(named, message) and "not a finite number" in message and "(12a)" not in message


def test_an_infeasible_stage_is_named_with_its_own_constraints():
    world = paper_world(1)
    d_loc = world.d_loc.astype(float)
    lo, hi = time_split_bounds(world, d_loc)
    without_target = _Setup(world, lo, hi, None, d_loc, None, "newton")  # TFL: D_mix fixed, no (12a)
    with pytest.raises(InfeasiblePlan, match=r"\(P6\), the computation stage: a device cannot train .*\(12b\), "
                                             r"\(12d\)$") as err:
        _assemble(without_target, 0.5 * lo, "exact", None, {})  # less time than training D_loc takes
    assert "(12a)" not in str(err.value)
    with_target = _Setup(world, lo, hi, check_learning_target(world, hi), None, None, "newton")
    with pytest.raises(InfeasiblePlan, match=r"\(P6\), the computation stage: the learning target \(12a\)"):
        _assemble(with_target, np.where(np.arange(20) < 19, lo, 0.5 * (lo + hi)), "exact", None, {})
    with pytest.raises(InfeasiblePlan, match=r"\(P7\), the upload stage: the cells' bands \(12e\)"):
        _assemble(without_target, hi, "exact", None, {})  # every device needs the whole band at once
