"""Links to every base station, against hand computation: each cell's own path loss and the
device's one shadowing draw; attachment to the strongest mean gain, which is the nearest
base station whenever the cells share their path-loss parameters (every shipped scenario)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simfl.geometry import site_distances_m
from simfl.links import link_gains, link_gains_db, strongest_site
from simfl.scenario import load_scenario, scenario_from_dict
from simfl.world import build_world, mean_gains_to_all

from conftest import scenario_dict

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
LOG10_2, LOG10_3 = 0.30102999566398120, 0.47712125471966244

# Three base stations around a device at (300, 400) with shadowing draw z = 0.5:
#   A at (0, 0):          d = 500 m,  PL = 128.1 + 37.6 log10(0.5),  sigma 4 dB -> -PL + 2 dB
#   B at (300, 1400):     d = 1000 m, PL = 120 + 30 log10(1) = 120,  sigma 8 dB -> -120 + 4 = -116 dB
#   C at (-1500, -2000):  d = 3000 m (1800, 2400: 3 x the 3-4-5 triangle), PL = 140 + 40 log10(3), sigma 0
BS = np.array([[0.0, 0.0], [300.0, 1400.0], [-1500.0, -2000.0]])
PARAMS = np.array([[128.1, 37.6, 4.0], [120.0, 30.0, 8.0], [140.0, 40.0, 0.0]])
EXPECTED_DB = [-(128.1 - 37.6 * LOG10_2) + 2.0, -116.0, -(140.0 + 40.0 * LOG10_3)]


def test_gains_to_three_cells_are_each_cells_path_loss_plus_the_one_shadowing_draw():
    position, z = np.array([[300.0, 400.0]]), np.array([0.5])
    assert link_gains_db(position, BS, PARAMS, z)[0] == pytest.approx(EXPECTED_DB, abs=1e-12)
    assert link_gains(position, BS, PARAMS, z)[0] == pytest.approx(10.0 ** (np.array(EXPECTED_DB) / 10.0), rel=1e-12)


def test_a_device_on_top_of_a_base_station_is_one_metre_from_it():
    gain = link_gains_db(np.array([[0.0, 0.0]]), BS, PARAMS, np.array([0.0]))
    assert gain[0, 0] == pytest.approx(-(128.1 + 37.6 * -3.0), abs=1e-12)  # log10(1 m / 1 km) = -3


def two_cell_world(devices, **east_path_loss):
    raw = scenario_dict(cells=[{"name": "w", "position_m": [0, 0], "radius_m": 600, "bandwidth_hz": 10e6},
                               {"name": "e", "position_m": [1000, 0], "radius_m": 600, "bandwidth_hz": 10e6,
                                "path_loss": east_path_loss}],
                        devices=devices)
    return build_world(scenario_from_dict(raw), model_bits=32_000)


def explicit(x, y):
    return {"position_m": [x, y], "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20}


def test_a_device_attaches_to_the_strongest_cell_not_the_nearest():
    # at x = 400 the west station is nearer (400 m against 600 m), but east's intercept is 18.1 dB lower:
    # PL_w = 128.1 + 37.6 log10(0.4) = 113.14 dB, PL_e = 110 + 37.6 log10(0.6) = 101.66 dB
    world = two_cell_world([explicit(400, 0), explicit(100, 0)], intercept_db=110)
    assert world.cell_of.tolist() == [1, 0]
    assert world.distance_m[0] == 600.0
    assert 10 * np.log10(world.gain[0]) == pytest.approx(-(110 + 37.6 * np.log10(0.6)), abs=1e-9)


def test_equal_cells_attach_to_the_nearest_and_on_the_bisector_to_the_first():
    world = two_cell_world([explicit(499.9, 30), explicit(500.1, -30), explicit(500, 7)])
    assert world.cell_of.tolist() == [0, 1, 0]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_keeps_its_serving_gain_bit_for_bit_and_attaches_to_the_nearest(path):
    world = build_world(load_scenario(path), model_bits=32_000)
    rows = np.arange(world.n_devices)
    assert world.link_gain.shape == (world.n_devices, world.n_cells)
    assert np.array_equal(world.link_gain[rows, world.cell_of], world.gain)
    assert np.array_equal(mean_gains_to_all(world, world.position_m), world.link_gain)
    distances = site_distances_m(world.position_m, world.bs_position_m)
    if any(cell.path_loss.model for cell in load_scenario(path).cells):  # TR 38.901: each link its own draws
        assert np.array_equal(world.cell_of, strongest_site(world.link_gain, distances))
        assert not np.array_equal(world.cell_of, np.argmin(distances, axis=1))
    else:
        assert np.array_equal(world.cell_of, np.argmin(distances, axis=1))


def test_strongest_site_breaks_only_real_differences():
    distance = np.array([[100.0, 200.0], [100.0, 200.0], [100.0, 200.0]])
    gain = np.array([[1.0, 1.0 + 1e-12], [1.0, 1.0 + 1e-6], [2.0, 1.0]])
    assert strongest_site(gain, distance).tolist() == [0, 1, 0]


def test_with_tr38901_cells_each_device_attaches_to_its_strongest_link_with_its_own_draws():
    # 7 UMa cells 500 m apart: with per-link LOS states and shadowing, a good part of the
    # devices (27% here) are served by another cell than the nearest; every serving link is the strongest
    raw = scenario_dict(cells={"hex_grid": {"rings": 1, "spacing_m": 500, "radius_m": 289, "bandwidth_hz": 10e6,
                                            "carrier_hz": 3.5e9, "path_loss": {"model": "uma"}}},
                        devices={"count": 3000, "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20})
    world = build_world(scenario_from_dict(raw), model_bits=32_000)
    rows = np.arange(world.n_devices)
    assert np.array_equal(world.link_gain, world.links.gains(world.position_m))
    assert np.array_equal(world.cell_of, np.argmax(world.link_gain, axis=1))
    assert np.array_equal(world.gain, world.link_gain[rows, world.cell_of])
    nearest = np.argmin(site_distances_m(world.position_m, world.bs_position_m), axis=1)
    assert 0.05 < (world.cell_of != nearest).mean() < 0.5
    cell_of, distance, gain = world.serving(world.position_m)  # a moving device's query, at its start
    assert np.array_equal(cell_of, world.cell_of) and np.array_equal(distance, world.distance_m)
    assert gain == pytest.approx(world.gain, rel=1e-12)
    assert np.array_equal(mean_gains_to_all(world, world.position_m), world.link_gain)
