"""Scenario files: every class of bad input gets one message naming the file, the field
path and what is allowed; overrides and seeds work; worlds are built as described."""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from simfl.errors import ScenarioError
from simfl.registry import check_policies
from simfl.scenario import load_scenario, scenario_from_dict
from simfl.world import build_world

from conftest import scenario_dict

ROOT = Path(__file__).resolve().parents[1]


def problems(raw, overrides=None):
    """The message of what a command does with `raw`: load it, then check its policies."""
    with pytest.raises(ScenarioError) as info:
        check_policies(scenario_from_dict(raw, "x.yaml", overrides=overrides))
    return str(info.value)


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r.pop("cells"), "x.yaml: cells: missing required field"),
    (lambda r: r["cells"][0].pop("bandwidth_hz"), "x.yaml: cells[0].bandwidth_hz: missing required field"),
    (lambda r: r["cells"][0].update(bandwidth_hz=-2e7), "x.yaml: cells[0].bandwidth_hz: must be > 0, got -2e+07"),
    (lambda r: r["cells"][0].update(radius_m=0), "x.yaml: cells[0].radius_m: must be > 0, got 0"),
    (lambda r: r["cells"][0].update(radius_m="far"), "x.yaml: cells[0].radius_m: must be a number, got str 'far'"),
    (lambda r: r["devices"].update(p_max_dbm={"uniform": [23, 20]}), "x.yaml: devices.p_max_dbm.uniform: low 23 > high 20"),
    (lambda r: r["devices"].update(count=2.5), "x.yaml: devices.count: must be an integer, got 2.5"),
    (lambda r: r["devices"].update(eps={"gauss": [1, 2]}), "x.yaml: devices.eps: must be a number, {uniform: [low, high]}"),
    (lambda r: r["devices"].update(f_max_hz=0), "x.yaml: devices.f_max_hz: every value must be > 0, got 0"),
    (lambda r: r["task"].update(dataset="imagenet"), "x.yaml: task.dataset: must be one of fashion-mnist, mnist, cifar10, gtsrb; got 'imagenet'"),
    (lambda r: r["task"].update(model="resnet"), "x.yaml: task.model: must be one of cnn, vgg9; got 'resnet'"),
    (lambda r: r["task"].update(target_accuracies=[70]), "x.yaml: task.target_accuracies: must be a list of accuracies in (0, 1]"),
    (lambda r: r["optimisation"].update(err_max=1.5), "x.yaml: optimisation.err_max: must be < 1, got 1.5"),
    (lambda r: r.update(policies=["fimy"]), "x.yaml: policies[0]: unknown policy 'fimy'"),
    (lambda r: r.update(colour="blue"), "x.yaml: colour: unknown field; allowed:"),
    (lambda r: r["devices"].update(cell="north"), "x.yaml: devices.cell: unknown cell 'north'; known: bs0"),
])
def test_each_class_of_bad_input_names_file_field_and_what_is_allowed(mutate, expected):
    raw = scenario_dict()
    mutate(raw)
    message = problems(raw)
    assert message.startswith(expected), message
    assert "Traceback" not in message


def test_all_problems_are_reported_at_once():
    raw = scenario_dict()
    raw["cells"][0]["bandwidth_hz"] = -1
    raw["task"]["rounds"] = 0
    message = problems(raw)
    assert message.startswith("x.yaml: 2 problems")
    assert "- cells[0].bandwidth_hz: must be > 0" in message
    assert "- task.rounds: must be >= 1, got 0" in message


def test_malformed_yaml_and_non_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncells: [\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: malformed YAML at line 3, column 1"):
        load_scenario(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ScenarioError, match=r"list.yaml: the file must be a YAML mapping"):
        load_scenario(listing)
    with pytest.raises(ScenarioError, match=r"cannot read the scenario file"):
        load_scenario(tmp_path / "missing.yaml")


def test_overrides_and_seed():
    raw = scenario_dict()
    s = scenario_from_dict(raw, overrides=["task.rounds=9", "cells[0].bandwidth_hz=1e6", "optimisation.cross_entropy.samples=30"], seed=99)
    assert s.task.rounds == 9
    assert s.cells[0].bandwidth_hz == 1e6
    assert s.optimisation.cross_entropy.samples == 30
    assert s.seed == 99
    assert raw["task"]["rounds"] == 3  # the caller's dict is untouched
    message = problems(raw, overrides=["cells.3.radius_m=1"])
    assert "--set 'cells.3.radius_m=1': index 3 out of range (0..0)" in message
    assert "expected FIELD=VALUE" in problems(raw, overrides=["task.rounds"])
    assert "cells[0].radius_m: must be > 0, got -5" in problems(raw, overrides=["cells.0.radius_m=-5"])


def test_devices_are_placed_in_their_disk_and_drawn_from_their_distributions():
    raw = scenario_dict(devices={"count": 400})
    world = build_world(scenario_from_dict(raw), model_bits=1e6)
    assert world.n_devices == 400
    assert (world.distance_m <= 400).all()
    # uniform in the disk: P(R <= r) = (r/400)^2, so the median distance is 400/sqrt(2)
    assert np.median(world.distance_m) == pytest.approx(400 / math.sqrt(2), rel=0.08)
    assert world.f_max_hz.min() >= 1e9 and world.f_max_hz.max() <= 2e9
    assert world.p_max_w.min() >= 0.1 - 1e-12 and world.p_max_w.max() <= 0.19953
    # gain from the path loss of the placed distance
    pl = 128.1 + 37.6 * np.log10(world.distance_m / 1000)
    assert np.allclose(world.gain, 10 ** (-pl / 10))


def test_same_seed_same_world_other_seed_other_world():
    a = build_world(scenario_from_dict(scenario_dict()), 1e6)
    b = build_world(scenario_from_dict(scenario_dict()), 1e6)
    c = build_world(scenario_from_dict(scenario_dict(seed=8)), 1e6)
    assert np.array_equal(a.position_m, b.position_m) and np.array_equal(a.eps, b.eps)
    assert not np.array_equal(a.position_m, c.position_m)


def test_linspace_distances_and_explicit_devices():
    raw = scenario_dict(devices=[
        {"count": 5, "distance_m": {"linspace": [50, 250]}, "f_max_hz": 1e9, "eps": {"linspace": [4e-27, 6e-27]}, "p_max_dbm": 20},
        {"position_m": [30, 40], "f_max_hz": 2e9, "eps": 5e-27, "p_max_dbm": 23},
    ])
    world = build_world(scenario_from_dict(raw), 1e6)
    assert world.distance_m[:5] == pytest.approx([50, 100, 150, 200, 250])
    assert world.eps[:5] == pytest.approx([4e-27, 4.5e-27, 5e-27, 5.5e-27, 6e-27])
    assert world.distance_m[5] == pytest.approx(50.0)  # 3-4-5 triangle


def test_devices_associate_with_the_nearest_base_station_and_the_graph_shows_it():
    raw = scenario_dict(
        cells=[{"name": "a", "position_m": [0, 0], "radius_m": 500, "bandwidth_hz": 1e7},
               {"name": "b", "position_m": [600, 0], "radius_m": 500, "bandwidth_hz": 2e7}],
        devices=[{"position_m": [250, 0], "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20},
                 {"position_m": [350, 10], "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20},
                 {"count": 30, "cell": "a", "f_max_hz": 1e9, "eps": 5e-27, "p_max_dbm": 20}],
    )
    world = build_world(scenario_from_dict(raw), 1e6)
    bs = np.array([[0, 0], [600, 0]])
    nearest = np.argmin(np.linalg.norm(world.position_m[:, None] - bs[None], axis=2), axis=1)
    assert np.array_equal(world.cell_of, nearest)
    assert list(world.cell_of[:2]) == [0, 1]
    assert world.device_bandwidth_hz[1] == 2e7
    g = world.graph
    assert g.number_of_nodes() == 2 + world.n_devices
    assert g.has_edge(("device", 1), ("cell", 1))
    assert g.edges[("device", 0), ("cell", 0)]["distance_m"] == pytest.approx(250)


def test_shadowing_changes_gains_by_a_lognormal_factor():
    raw = scenario_dict(devices={"count": 2000})
    plain = build_world(scenario_from_dict(raw), 1e6)
    raw["cells"][0]["path_loss"] = {"shadowing_std_db": 6}
    shadowed = build_world(scenario_from_dict(raw), 1e6)
    db = 10 * np.log10(shadowed.gain / plain.gain)
    assert np.std(db) == pytest.approx(6, rel=0.06)
    assert abs(np.mean(db)) < 0.4


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=ROOT)


def test_validate_passes_on_every_shipped_scenario():
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        result = run_cli("validate", str(path))
        assert result.returncode == 0, result.stderr
        assert ": ok (" in result.stdout


def test_validate_fails_on_a_malformed_copy_with_one_paragraph_and_no_traceback(tmp_path):
    raw = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    raw["cells"][0]["radius_m"] = 0
    bad = tmp_path / "quickstart-bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"simfl: error: {bad}: cells[0].radius_m: must be > 0, got 0"
    assert "Traceback" not in result.stderr


def test_a_hex_grid_of_cells_puts_neighbours_one_spacing_apart():
    from simfl.scenario import hex_grid_positions

    raw = scenario_dict(cells={"hex_grid": {"rings": 1, "spacing_m": 1000, "radius_m": 577, "bandwidth_hz": 10e6,
                                            "path_loss": {"shadowing_std_db": 4}}})
    cells = scenario_from_dict(raw).cells
    assert [c.name for c in cells] == [f"cell{i}" for i in range(7)]
    assert all(c.bandwidth_hz == 10e6 and c.radius_m == 577 and c.path_loss.shadowing_std_db == 4 for c in cells)
    centre, ring = np.array(cells[0].position_m), np.array([c.position_m for c in cells[1:]])
    assert np.allclose(centre, 0.0)
    # the first ring: 6 sites 1000 m from the centre, 60 degrees apart from the east, each
    # 1000 m from its two ring neighbours
    assert np.allclose(np.hypot(*ring.T), 1000.0)
    assert np.allclose(np.degrees(np.arctan2(ring[:, 1], ring[:, 0])) % 360, [0, 60, 120, 180, 240, 300])
    assert np.allclose(np.hypot(*(ring - np.roll(ring, 1, axis=0)).T), 1000.0)
    # rings R hold 1 + 3R(R + 1) sites, no two closer than the spacing
    assert hex_grid_positions(0, 500.0) == [(0.0, 0.0)]
    for rings, count in ((2, 19), (3, 37)):
        sites = np.array(hex_grid_positions(rings, 500.0))
        assert len(sites) == count
        gaps = np.hypot(*(sites[:, None, :] - sites[None, :, :]).transpose(2, 0, 1))
        assert gaps[~np.eye(count, dtype=bool)].min() == pytest.approx(500.0)


@pytest.mark.parametrize("grid, field, says", [
    ({"rings": -1, "spacing_m": 1000, "radius_m": 500, "bandwidth_hz": 1e7}, "cells.hex_grid.rings", ">= 0"),
    ({"rings": 1, "radius_m": 500, "bandwidth_hz": 1e7}, "cells.hex_grid.spacing_m", "missing required field"),
    ({"rings": 1, "spacing_m": 1000, "radius_m": 500, "bandwidth_hz": 1e7, "position_m": [0, 0]},
     "cells.hex_grid.position_m", "unknown"),
    ({"rings": 1, "spacing_m": 1000, "radius_m": 500}, "cells.hex_grid.bandwidth_hz", "missing required field"),
    # 1e6 rings would be 3e12 base stations: refused, not enumerated until killed
    ({"rings": 10**6, "spacing_m": 1000, "radius_m": 500, "bandwidth_hz": 1e7}, "cells.hex_grid.rings",
     "must be an integer in [0, 50], got 1e+06"),
    ({"rings": 2, "spacing_m": 1e7, "radius_m": 500, "bandwidth_hz": 1e7}, "cells.hex_grid.spacing_m",
     "puts the outer ring 2 x 1e+07 = 2e+07 m from the centre; base stations must be within 1e+07 m of it"),
    ({"rings": 1, "spacing_m": 1000, "radius_m": 500, "bandwidth_hz": 1e13}, "cells.hex_grid.bandwidth_hz",
     "must be in (0, 1e12] Hz, got 1e+13"),
])
def test_bad_hex_grids_name_the_field(grid, field, says):
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(scenario_dict(cells={"hex_grid": grid}), source="s.yaml")
    assert field in str(error.value) and says in str(error.value)



# A user's report: p_max_dbm 1e6 and intercept_db -1e6 passed validation, then a plan failed
# blaming the learning target after numpy warnings; bandwidth_hz 1e308 made uploads take inf s.
@pytest.mark.parametrize("override, expected", [
    ("devices.p_max_dbm=1e6", "devices.p_max_dbm: every value must be in [-50, 50] dBm (10 nW to 100 W), got 1e+06"),
    ("devices.p_max_dbm={uniform: [20, 60]}", "devices.p_max_dbm: every value must be in [-50, 50] dBm (10 nW to 100 W), "
                                              "got 60"),
    ("cells.0.path_loss.intercept_db=-1e6", "cells[0].path_loss.intercept_db: must be in [0, 300] dB, got -1e+06"),
    ("cells.0.path_loss.slope_db=1000", "cells[0].path_loss.slope_db: must be in (0, 100] dB per decade, got 1000"),
    ("cells.0.path_loss.shadowing_std_db=60", "cells[0].path_loss.shadowing_std_db: must be in [0, 50] dB, got 60"),
    ("cells.0.bandwidth_hz=1e308", "cells[0].bandwidth_hz: must be in (0, 1e12] Hz, got 1e+308"),
    ("cells.0.noise_dbm_per_hz=-50", "cells[0].noise_dbm_per_hz: must be in [-250, -100] dBm/Hz, got -50"),
    ("cells.0.noise_dbm_per_hz=-1e6", "cells[0].noise_dbm_per_hz: must be in [-250, -100] dBm/Hz, got -1e+06"),
    ("cells.0.radius_m=1e8", "cells[0].radius_m: must be in (0, 1e7] m, got 1e+08"),
    ("cells.0.position_m=[0, -2e7]", "cells[0].position_m: every value must be in [-1e7, 1e7] m (each coordinate), "
                                     "got -2e+07"),
    ("devices.distance_m={linspace: [10, 1e9]}", "devices.distance_m: every value must be in (0, 1e7] m, got 1e+09"),
    ("devices.f_max_hz=1e13", "devices.f_max_hz: every value must be in (0, 1e12] Hz, got 1e+13"),
    ("devices.eps={values: [5e-27, 5e-27, 5e-27, 5e-27, 1e-3]}", "devices.eps: every value must be in (0, 1e-15], "
                                                                 "got 0.001"),
    # from about 1e12 s, TFL's plan came out at 4e10 J per round instead of 2.6e-4 J
    ("optimisation.t_max_s=1e12", "optimisation.t_max_s: must be in (0, 1e7] s, got 1e+12"),
    ("optimisation.omega_cycles_per_sample=1e20", "optimisation.omega_cycles_per_sample: must be in (0, 1e15] cycles, "
                                                  "got 1e+20"),
    ("cells.0.downlink={bandwidth_hz: 1e7, power_dbm: 90}", "cells[0].downlink.power_dbm: must be in [-50, 80] dBm "
                                                            "(10 nW to 100 kW), got 90"),
])
def test_physical_fields_have_physical_ranges(override, expected):
    assert problems(scenario_dict(), [override]) == f"x.yaml: {expected}"


def test_the_physical_ranges_keep_their_lower_bounds_messages_and_hold_every_shipped_value():
    # the bounds each field had before keep their messages; the range comes after them
    assert problems(scenario_dict(), ["cells.0.bandwidth_hz=0"]) == "x.yaml: cells[0].bandwidth_hz: must be > 0, got 0"
    # the extremes of each range are accepted, explicit devices included
    edge = ["cells.0.bandwidth_hz=1e12", "cells.0.noise_dbm_per_hz=-250", "cells.0.path_loss={intercept_db: 0, "
            "slope_db: 100, shadowing_std_db: 50}", "devices.p_max_dbm={uniform: [-50, 50]}", "devices.eps=1e-15",
            "cells.0.radius_m=1e7", "cells.0.position_m=[-1e7, 1e7]", "devices.f_max_hz=1e12"]
    scenario_from_dict(scenario_dict(), overrides=edge)
    scenario_from_dict(scenario_dict(devices=[{"position_m": [1e7, -1e7], "f_max_hz": 1e9, "eps": 5e-27,
                                               "p_max_dbm": -50}]))


@pytest.mark.parametrize("override, fragment", [
    ("devices.mobility={random_waypoint: {speed_mps: 1e300}}", "speed_mps: must be <= 1000"),
    ("devices.mobility={random_waypoint: {speed_mps: 1.5, pause_s: 1e300}}", "pause_s: must be <= 1e+09"),
    ("devices.availability={markov: {mean_on_s: 1e300, mean_off_s: 300}}", "mean_on_s: must be <= 1e+09"),
    ("devices.battery_j=1e300", "battery_j: every value must be in (0, 1e9] J"),
])
def test_the_dynamics_fields_have_physical_ranges_too(override, fragment):
    with pytest.raises(ScenarioError, match=re.escape(fragment)):
        load_scenario(ROOT / "tests" / "data" / "tiny.yaml", overrides=[override])


def test_the_annotated_scenario_states_every_physical_range():
    from simfl.limits import PHYSICAL_RANGES

    lines = (ROOT / "docs" / "scenarios.md").read_text().splitlines()
    for name, limits in PHYSICAL_RANGES.items():  # the annotated scenario names each range on the field's line
        assert any(name in line and f"in {limits}" in line for line in lines), (name, str(limits))


def test_random_waypoint_region_is_home_by_default_or_all():
    from simfl.dynamics.mobility import RandomWaypoint

    walking = {"random_waypoint": {"speed_mps": 1.5, "pause_s": 60}}
    home = scenario_from_dict(scenario_dict(devices={**scenario_dict()["devices"], "mobility": walking}))
    assert home.devices[0].mobility == RandomWaypoint(1.5, 60.0, "home")
    roaming = {"random_waypoint": {**walking["random_waypoint"], "region": "all"}}
    everywhere = scenario_from_dict(scenario_dict(devices={**scenario_dict()["devices"], "mobility": roaming}))
    assert everywhere.devices[0].mobility == RandomWaypoint(1.5, 60.0, "all")


@pytest.mark.parametrize("region", ["city", 3, None])
def test_an_unknown_region_names_the_field_and_both_choices(region):
    mobility = {"random_waypoint": {"speed_mps": 1.5, "region": region}}
    message = problems(scenario_dict(devices={**scenario_dict()["devices"], "mobility": mobility}))
    assert message == ("x.yaml: devices.mobility.random_waypoint.region: must be home (the disk of the cell the device "
                       f"was placed in) or all (anywhere in the union of every cell's disk), got {region!r}")


def test_fields_at_their_defaults_leave_the_run_folder_fingerprint_as_it_was():
    # folders written before `region` and `network` existed used their defaults, and stay resumable
    from simfl.runfolder import fingerprint

    walking = {"random_waypoint": {"speed_mps": 1.5, "pause_s": 60}}
    plain = scenario_from_dict(scenario_dict(devices={**scenario_dict()["devices"], "mobility": walking}))
    _, fields = fingerprint(plain)
    assert "devices.0.mobility.speed_mps" in fields
    assert not [name for name in fields if "region" in name or name.startswith("network")]
    walking["random_waypoint"]["region"] = "all"
    roaming = scenario_from_dict(scenario_dict(devices={**scenario_dict()["devices"], "mobility": walking}))
    assert fingerprint(roaming)[1]["devices.0.mobility.region"] == "all"
    slow = scenario_from_dict(scenario_dict(network={"handover": {"time_to_trigger_s": 0.5}}))
    assert fingerprint(slow)[1]["network.handover.time_to_trigger_s"] == 0.5


def test_network_handover_defaults_to_zero_and_reads_its_three_fields():
    from simfl.scenario import Handover

    assert scenario_from_dict(scenario_dict()).network.handover == Handover(0.0, 0.0, 0.0)
    given = {"handover": {"hysteresis_db": 3, "time_to_trigger_s": 0.32, "interruption_s": 0.05}}
    assert scenario_from_dict(scenario_dict(network=given)).network.handover == Handover(3.0, 0.32, 0.05)
    overridden = scenario_from_dict(scenario_dict(), overrides=["network.handover.hysteresis_db=2"])
    assert overridden.network.handover.hysteresis_db == 2.0


@pytest.mark.parametrize("network, expected", [
    ({"handover": {"hysteresis_db": -3}}, "network.handover.hysteresis_db: must be >= 0, got -3"),
    ({"handover": {"hysteresis_db": 150}}, "network.handover.hysteresis_db: must be in [0, 100] dB, got 150"),
    ({"handover": {"time_to_trigger_s": -0.1}}, "network.handover.time_to_trigger_s: must be >= 0, got -0.1"),
    ({"handover": {"time_to_trigger_s": 1e12}}, "network.handover.time_to_trigger_s: must be in [0, 1e9] s, got 1e+12"),
    ({"handover": {"interruption_s": "soon"}}, "network.handover.interruption_s: must be a number, got str 'soon'"),
    ({"handover": {"hysteresis": 3}}, "network.handover.hysteresis: unknown field; allowed: hysteresis_db, "
                                      "interruption_s, time_to_trigger_s"),
    ({"handoff": {}}, "network.handoff: unknown field; allowed: allocator, channel_step_s, handover, interference"),
    ({"channel_step_s": 0}, "network.channel_step_s: must be > 0, got 0"),
    ({"channel_step_s": 1e-9}, "network.channel_step_s: must be in [1e-6, 86400] s, got 1e-09"),
    ({"handover": 3}, "network.handover: must be a mapping, got int 3"),
])
def test_bad_handover_settings_name_the_field_and_what_is_allowed(network, expected):
    assert problems(scenario_dict(network=network)) == f"x.yaml: {expected}"


def test_every_handover_problem_is_reported_at_once():
    message = problems(scenario_dict(network={"handover": {"hysteresis_db": -1, "interruption_s": -2}}))
    assert message.startswith("x.yaml: 2 problems")
    assert "network.handover.hysteresis_db: must be >= 0" in message
    assert "network.handover.interruption_s: must be >= 0" in message


def with_path_loss(path_loss, devices_at=None, **cell):
    raw = scenario_dict()
    raw["cells"][0]["path_loss"] = path_loss
    raw["cells"][0].update(cell)
    if devices_at is not None:
        raw["devices"]["distance_m"] = devices_at
    return raw


def test_a_cell_names_a_tr38901_model_with_its_fields_or_their_defaults():
    from simfl.pathloss import RMa, UMa, UMi

    assert scenario_from_dict(with_path_loss({"model": "uma"})).cells[0].path_loss.model == UMa(h_ut_m=1.5)
    assert scenario_from_dict(with_path_loss({"model": "umi", "h_ut_m": 22.5})).cells[0].path_loss.model == UMi(22.5)
    rural = {"model": "rma", "h_bs_m": 150, "h_ut_m": 1, "building_height_m": 50, "street_width_m": 5,
             "fading": "rayleigh"}
    path_loss = scenario_from_dict(with_path_loss(rural, carrier_hz=30e9, radius_m=10_000)).cells[0].path_loss
    assert path_loss.model == RMa(h_ut_m=1.0, h_bs_m=150.0, building_height_m=50.0, street_width_m=5.0)
    assert path_loss.fading.kind == "rayleigh"
    assert RMa() == RMa(h_ut_m=1.5, h_bs_m=35.0, building_height_m=5.0, street_width_m=20.0)  # the table's defaults
    grid = scenario_dict(cells={"hex_grid": {"rings": 1, "spacing_m": 200, "radius_m": 115, "bandwidth_hz": 1e7,
                                             "carrier_hz": 28e9, "path_loss": {"model": "umi"}}})
    assert {c.path_loss.model for c in scenario_from_dict(grid).cells} == {UMi()}


@pytest.mark.parametrize("path_loss, cell, expected", [
    ({"model": "umx"}, {}, "cells[0].path_loss.model: unknown path-loss model 'umx' (did you mean 'umi'?); allowed: "
                           "uma, umi, rma (TR 38.901), or no model for the log-distance model "
                           "{intercept_db, slope_db, shadowing_std_db}"),
    ({"model": 3}, {}, "cells[0].path_loss.model: unknown path-loss model 3; allowed: uma, umi, rma"),
    ({"model": "uma", "h_ut_m": 20}, {}, "cells[0].path_loss.h_ut_m: must be in [1.5, 13] m for model uma "
                                         "(TR 38.901 Table 7.4.1-1, Note 1: h_E = 1 m for terminals up to 13 m; "
                                         "simfl does not draw h_E for taller ones), got 20"),
    ({"model": "umi", "h_ut_m": 1}, {}, "cells[0].path_loss.h_ut_m: must be in [1.5, 22.5] m for model umi "
                                        "(TR 38.901 Table 7.4.1-1: 1.5 m <= h_UT <= 22.5 m), got 1"),
    ({"model": "rma", "h_bs_m": 200}, {}, "cells[0].path_loss.h_bs_m: must be in [10, 150] m for model rma "
                                          "(TR 38.901 Table 7.4.1-1, RMa: 10 m <= h_BS <= 150 m), got 200"),
    ({"model": "rma", "building_height_m": 60}, {}, "cells[0].path_loss.building_height_m: must be in [5, 50] m "
                                                    "for model rma (TR 38.901 Table 7.4.1-1, RMa: 5 m <= h <= 50 m), "
                                                    "got 60"),
    ({"model": "rma", "street_width_m": 2}, {}, "cells[0].path_loss.street_width_m: must be in [5, 50] m for model "
                                                "rma (TR 38.901 Table 7.4.1-1, RMa: 5 m <= W <= 50 m), got 2"),
    ({"model": "rma", "h_ut_m": "tall"}, {}, "cells[0].path_loss.h_ut_m: must be a number, got str 'tall'"),
    ({"model": "uma", "h_bs_m": 30}, {}, "cells[0].path_loss.h_bs_m: unknown field; allowed with model uma: fading, "
                                         "h_ut_m, model"),
    ({"model": "umi", "slope_db": 30}, {}, "cells[0].path_loss.slope_db: belongs to the log-distance model "
                                           "(no `model`), not to model umi; allowed with umi: fading, h_ut_m, model"),
    ({"model": "uma"}, {"carrier_hz": 2e11}, "cells[0].carrier_hz: must be in [0.5, 100] GHz for path_loss model "
                                             "uma (TR 38.901 Section 7.4.1), got 200 GHz"),
    ({"model": "umi"}, {"carrier_hz": 0.4e9}, "cells[0].carrier_hz: must be in [0.5, 100] GHz for path_loss model "
                                              "umi (TR 38.901 Section 7.4.1), got 0.4 GHz"),
    ({"model": "rma"}, {"carrier_hz": 40e9}, "cells[0].carrier_hz: must be in [0.5, 30] GHz for path_loss model rma "
                                             "(TR 38.901 Section 7.4.1), got 40 GHz"),
    ({"model": "uma"}, {"radius_m": 6000}, "cells[0].radius_m: must be <= 5000 m for path_loss model uma: TR 38.901 "
                                           "Table 7.4.1-1 holds to d_2D = 5000 m, got 6000"),
    ({"model": "uma"}, {"devices_at": {"linspace": [100, 6000]}}, "devices.distance_m: every value must be <= 5000 m "
                                                                  "from cell bs0, whose path_loss model uma holds to "
                                                                  "d_2D = 5000 m (TR 38.901 Table 7.4.1-1), got 6000"),
    ({"intercept_db": 120, "model": None, "h_ut_m": 2}, {}, "cells[0].path_loss.h_ut_m: unknown field; allowed: "
                                                            "fading, intercept_db, model, shadowing_std_db, slope_db"),
])
def test_bad_path_loss_models_name_the_field_and_what_is_allowed(path_loss, cell, expected):
    message = problems(with_path_loss(path_loss, **cell))
    assert message.startswith(f"x.yaml: {expected}"), message
    assert "Traceback" not in message


def test_every_path_loss_problem_is_reported_at_once_also_in_a_hex_grid():
    grid = {"hex_grid": {"rings": 1, "spacing_m": 1000, "radius_m": 8000, "bandwidth_hz": 1e7, "carrier_hz": 2e11,
                         "path_loss": {"model": "uma", "h_ut_m": 0.5, "colour": "red"}}}
    message = problems(scenario_dict(cells=grid))
    assert message.startswith("x.yaml: 4 problems")
    for line in ("- cells.hex_grid.path_loss.colour: unknown field", "- cells.hex_grid.path_loss.h_ut_m: must be in",
                 "- cells.hex_grid.carrier_hz: must be in [0.5, 100] GHz", "- cells.hex_grid.radius_m: must be <= 5000"):
        assert line in message, message


DEFAULT_FINGERPRINT = "f49b98a1a4748c3d"


def test_the_default_path_loss_leaves_the_fingerprint_as_it_was_and_a_model_enters_it_with_its_name():
    from simfl.runfolder import fingerprint

    # the digest of BASE (tests/conftest.py) before path-loss models existed, at commit 0781ef4, taken on
    # a CPU with bfloat16 units, where the default precision `auto` is bfloat16: said here, so that every
    # CPU computes that digest (on one without such units auto is float32, another fingerprint)
    digest, fields = fingerprint(scenario_from_dict(scenario_dict(task={"precision": "bfloat16"})))
    assert digest == DEFAULT_FINGERPRINT
    assert not [name for name in fields if name.startswith("cells") and "model" in name]
    _, uma = fingerprint(scenario_from_dict(with_path_loss({"model": "uma", "h_ut_m": 2})))
    _, umi = fingerprint(scenario_from_dict(with_path_loss({"model": "umi", "h_ut_m": 2})))
    assert (uma["cells.0.path_loss.model.kind"], uma["cells.0.path_loss.model.h_ut_m"]) == ("uma", 2.0)
    assert umi["cells.0.path_loss.model.kind"] == "umi"


def test_components_without_fields_are_told_apart_by_their_kind():
    from simfl.runfolder import fingerprint

    def fading(kind):
        raw = scenario_dict()
        raw["cells"][0]["path_loss"] = {"fading": kind}
        return fingerprint(scenario_from_dict(raw))

    (none, _), (rayleigh, fields) = fading("none"), fading("rayleigh")
    assert none == fingerprint(scenario_from_dict(scenario_dict()))[0]  # none is the default: as it was
    assert rayleigh != none and fields["cells.0.path_loss.fading"] == "rayleigh"
    assert fading({"gauss_markov": {"rho": 0.5}})[0] not in (none, rayleigh)


def test_task_device_is_a_choice_left_out_of_the_fingerprint_at_cpu():
    from simfl.runfolder.manifest import fingerprint

    assert scenario_from_dict(scenario_dict(), "x.yaml").task.device == "cpu"
    assert scenario_from_dict(scenario_dict(task={"device": "auto"}), "x.yaml").task.device == "auto"
    assert "task.device: must be one of cpu, cuda, auto; got 'gpu'" in problems(scenario_dict(task={"device": "gpu"}))
    # validation does not know the machine that trains: cuda loads anywhere, the run refuses it
    cuda = scenario_from_dict(scenario_dict(task={"device": "cuda"}), "x.yaml")
    default = scenario_from_dict(scenario_dict(), "x.yaml")
    assert "task.device" not in fingerprint(default)[1] and fingerprint(cuda)[1]["task.device"] == "cuda"
    assert fingerprint(scenario_from_dict(scenario_dict(task={"device": "cpu"}), "x.yaml")) == fingerprint(default)
    # auto is fingerprinted as what it trains on here, as task.precision: auto is
    auto = fingerprint(scenario_from_dict(scenario_dict(task={"device": "auto"}), "x.yaml"))
    import torch

    assert (auto == fingerprint(default)) == (not torch.cuda.is_available())
