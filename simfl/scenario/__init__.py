"""Scenario files: the YAML schema, its validation, and command-line overrides.

A scenario is checked once, on load, into frozen dataclasses. Every problem found is
collected and reported in one ScenarioError naming the file, the field path and what is
allowed; inside simfl nothing is re-checked. One module per job:

- `schema`: the dataclasses (Scenario, Cell, DeviceGroup, Task, ...);
- `loader`: reading the file, `load_scenario` and `scenario_from_dict`;
- `strict_yaml`: YAML without duplicate keys (`parse_yaml`);
- `overrides`: the `--set a.b[0].c=value` language (`apply_override`);
- `checks`: the Checker that collects problems, and the number helpers;
- `rules`: what each field may hold (bounds, choices, the file format's own defaults);
- `sections`: building each section (cells, devices, task, ...) from its mapping.

The policies a scenario names and their `policy_settings` need the policy classes, which
sit above this layer: simfl.registry.check_policies checks them.
"""

from simfl.geometry import hex_grid_positions
from simfl.scenario.loader import MAX_FILE_BYTES, load_scenario, scenario_from_dict
from simfl.scenario.overrides import apply_override
from simfl.scenario.schema import (Cell, DeviceGroup, Distribution, Downlink, Generator, Handover, HexGrid,
                                   NetworkSettings, Optimisation, PathLoss, Scenario, Server, Task)
from simfl.scenario.strict_yaml import parse_yaml

__all__ = ["MAX_FILE_BYTES", "Cell", "DeviceGroup", "Distribution", "Downlink", "Generator", "Handover", "HexGrid",
           "NetworkSettings", "Optimisation", "PathLoss", "Scenario", "Server", "Task", "apply_override",
           "hex_grid_positions", "load_scenario", "parse_yaml", "scenario_from_dict"]
