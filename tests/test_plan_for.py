"""`optimisation.plan_for: expected_transmitters`: a static plan for K of N devices shares
each cell's band among the devices expected to transmit in a round (World.planning_band_hz),
and the K-of-N rule shares the real band among the actual participants."""

from __future__ import annotations

import numpy as np
import pytest

from simfl.engine import run
from simfl.errors import InfeasiblePlan, ScenarioError
from simfl.experiment import make_plan, plan_context, prepare
from simfl.plan import check_plan, shared_among_selected
from simfl.registry import create
from simfl.runfolder import fingerprint
from simfl.scenario import scenario_from_dict
from simfl.world import build_world

from conftest import StandInTrainer, scenario_dict

TWO_CELLS = [{"name": "a", "position_m": [0, 0], "radius_m": 300, "bandwidth_hz": 1e6},
             {"name": "b", "position_m": [5000, 0], "radius_m": 300, "bandwidth_hz": 2e6}]


def two_cells(k: int | None, plan_for: str = "expected_transmitters", per_device_samples: int = 100):
    return scenario_from_dict(scenario_dict(
        cells=TWO_CELLS,
        devices=[{"count": 30, "cell": "a", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20},
                 {"count": 10, "cell": "b", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20}],
        task={"participants_per_round": k, "samples_per_device": per_device_samples},
        optimisation={"t_max_s": 60, "plan_for": plan_for}))


def test_the_planning_band_is_the_band_over_the_expected_transmitters_by_hand():
    # K = 8 of N = 40: cell a expects 8 x 30 / 40 = 6 of its 30, cell b 8 x 10 / 40 = 2 of its 10
    world = build_world(two_cells(8), 1e6)
    assert np.allclose(world.planning_band_hz, [1e6 * 30 / 6, 2e6 * 10 / 2])
    # K = 1: fewer than one expected per cell counts as one transmitter
    assert np.allclose(build_world(two_cells(1), 1e6).planning_band_hz, [1e6 * 30, 2e6 * 10])
    # the paper's problem, and no K: the band itself
    for world in (build_world(two_cells(8, "all"), 1e6), build_world(two_cells(None), 1e6)):
        assert world.planning_band_hz is world.bandwidth_hz
        assert world.with_planning_band() is world


def test_a_static_plan_shares_the_band_among_the_expected_transmitters_and_the_round_among_the_actual():
    setup = prepare(two_cells(8))
    plan = make_plan(setup, create("equal-share"))
    world = setup.world
    # equal-share plans on the world it is given (World.for_planning): B_c N_c / E_c over N_c
    assert np.allclose(plan.b_hz[world.cell_of == 0], 1e6 / 6)
    assert np.allclose(plan.b_hz[world.cell_of == 1], 2e6 / 2)
    check_plan(world, plan)  # within the planning band, which the real band could not hold
    with pytest.raises(InfeasiblePlan, match="12e"):
        check_plan(build_world(two_cells(8, "all"), 1e6), plan)
    # a round of the actual participants: each cell's real band shared among those in it
    selected = np.array([0, 1, 2, 30])
    round_plan = shared_among_selected(world, plan, world.cell_of, selected)
    assert round_plan.b_hz[[0, 1, 2]].sum() == pytest.approx(1e6)
    assert round_plan.b_hz[30] == pytest.approx(2e6)
    final = run(world, plan, StandInTrainer(), 2, 7, context=plan_context(setup))
    assert final.next_round == 2


def test_tfl_plans_where_a_plan_for_all_devices_is_infeasible():
    """Many devices with little band: TFL's plan for all of them cannot meet T_max (each
    gets a sliver), but planned for the expected transmitters it can."""
    crowded = dict(count=2000, f_max_hz=1e9, eps=5e-27, p_max_dbm=20)
    raw = scenario_dict(cells=[{**TWO_CELLS[0], "bandwidth_hz": 2e5}], devices=crowded,
                        task={"participants_per_round": 5, "samples_per_device": 5},
                        optimisation={"t_max_s": 10, "plan_for": "all", "solver": "exact"})
    with pytest.raises(InfeasiblePlan):
        make_plan(prepare(scenario_from_dict(raw)), create("tfl"), "exact")
    raw["optimisation"]["plan_for"] = "expected_transmitters"
    setup = prepare(scenario_from_dict(raw))
    plan = make_plan(setup, create("tfl"), "exact")
    assert plan.b_hz.sum() <= setup.world.planning_band_hz[0] * (1 + 1e-6)


def test_plan_for_is_checked_and_leaves_old_fingerprints_alone():
    with pytest.raises(ScenarioError, match="optimisation.plan_for: must be one of all, expected_transmitters"):
        two_cells(8, "some")
    assert fingerprint(two_cells(8, "all"))[0] != fingerprint(two_cells(8))[0]
    default = scenario_dict(cells=TWO_CELLS)
    explicit = scenario_dict(cells=TWO_CELLS, optimisation={"plan_for": "all"})
    assert fingerprint(scenario_from_dict(default))[0] == fingerprint(scenario_from_dict(explicit))[0]


def test_fimi_planned_for_the_expected_transmitters_gives_equal_shares_and_meets_the_learning_target():
    """FIMI's static plan for K of N gives each device its cell's band over the cell's
    expected transmitters, B_c / E_c (so the cells decouple and only the learning target's
    multiplier ties the devices), and its amounts still meet Delta <= Delta_max, eq. (4)."""
    raw = scenario_dict(
        cells=TWO_CELLS,
        devices=[{"count": 30, "cell": "a", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20},
                 {"count": 10, "cell": "b", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20}],
        task={"participants_per_round": 8, "samples_per_device": 100, "rounds": 30},
        optimisation={"t_max_s": 60, "plan_for": "expected_transmitters", "zeta": 7, "solver": "exact"})
    setup = prepare(scenario_from_dict(raw))
    world, k = setup.world, setup.world.constants
    plan = make_plan(setup, create("fimi"), "exact")
    # E_a = 8 x 30 / 40 = 6 of cell a's 30 devices, E_b = 8 x 10 / 40 = 2 of cell b's 10
    assert np.allclose(plan.b_hz[world.cell_of == 0], 1e6 / 6, rtol=1e-12)
    assert np.allclose(plan.b_hz[world.cell_of == 1], 2e6 / 2, rtol=1e-12)
    assert plan.d_gen.sum() > 0  # the target needs synthetic data here
    mixed = world.d_loc + plan.d_gen
    delta = k.alpha * mixed.astype(float) ** -k.beta - k.gamma  # eq. (1)
    assert np.exp(k.rounds * (delta.mean() - 1.0) / k.zeta) <= k.err_max * (1 + 1e-9)  # eqs. (2), (4)
    raw["optimisation"]["plan_for"] = "all"  # planned for all N, the sub-bands are optimised and unequal
    everyone = make_plan(prepare(scenario_from_dict(raw)), create("fimi"), "exact")
    assert np.ptp(everyone.b_hz[world.cell_of == 0]) > 0


def test_with_an_outage_the_band_is_shared_among_a_quantile_of_the_transmitters():
    """A cell's transmitters are Binomial(K, N_c / N); with outage q the planning band uses
    their (1 - q)-quantile: K = 8 of 40, cell a (30 devices) Binomial(8, 0.75), cell b
    Binomial(8, 0.25). By hand: P(X_a <= 7) = 1 - 0.75^8 = 0.8999 < 0.95 <= P(X_a <= 8) = 1,
    so E_a = 8; P(X_b <= 3) = 0.8862 < 0.95 <= P(X_b <= 4) = 0.9727, so E_b = 4."""
    raw = scenario_dict(
        cells=TWO_CELLS,
        devices=[{"count": 30, "cell": "a", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20},
                 {"count": 10, "cell": "b", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20}],
        task={"participants_per_round": 8, "samples_per_device": 100},
        optimisation={"t_max_s": 60, "plan_for": "expected_transmitters", "outage": 0.05})
    world = build_world(scenario_from_dict(raw), 1e6)
    assert np.allclose(world.planning_band_hz, [1e6 * 30 / 8, 2e6 * 10 / 4])
