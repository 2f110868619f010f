"""The Section V-A set-up as a World, for the optimiser's tests and benchmark.

S is the paper's VGG-9 upload, 32 bits x 3,491,530 parameters (= 111.7 Mb, Section V-A2).
Runs of the simulator compute S from the model they train; this module only fixes it so
the optimiser can be checked against the paper's numbers without building a model.
"""

from __future__ import annotations

import copy
from typing import Any

from simfl.scenario import scenario_from_dict
from simfl.world import World, build_world

VGG9_PARAMETERS = 3_491_530
PAPER_MODEL_BITS = 32.0 * VGG9_PARAMETERS

_DEVICE = {"f_max_hz": {"uniform": [1e9, 2e9]}, "eps": {"uniform": [4e-27, 6e-27]},
           "p_max_dbm": {"uniform": [20, 23]}}

PAPER_SCENARIO: dict[str, Any] = {
    "name": "paper-v-a",
    "seed": 1,
    # N0 = -174 dBm/Hz: the paper prints dBm/MHz, see DESIGN.md
    "cells": [{"name": "bs0", "position_m": [0, 0], "radius_m": 400, "bandwidth_hz": 20e6,
               "noise_dbm_per_hz": -174}],
    "devices": {"count": 20, **_DEVICE},
    "task": {"samples_per_device": 1250, "rounds": 200, "local_epochs": 1},
    # dgen_max large enough not to bind (the paper gives no D_max)
    "optimisation": {"t_max_s": 60, "err_max": 0.2, "dgen_max": 5000, "omega_cycles_per_sample": 5e6,
                     "alpha": 5.0, "beta": 0.3, "gamma": 0.1, "zeta": 68.0},
}


def paper_world(seed: int = 1, overrides: list[str] | None = None, raw: dict[str, Any] | None = None) -> World:
    """The Section V-A world (20 devices in a 400 m cell), optionally with `--set` style
    overrides or a modified scenario mapping."""
    scenario = copy.deepcopy(raw if raw is not None else PAPER_SCENARIO)
    return build_world(scenario_from_dict(scenario, overrides=overrides, seed=seed), model_bits=PAPER_MODEL_BITS)


def multicell_world(n_cells: int, per_cell: int = 20, seed: int = 1, bandwidth_hz: float = 20e6) -> World:
    """n_cells copies of the Section V-A cell on a grid 800 m apart, per_cell devices each."""
    side = max(1, int(round(n_cells**0.5)))
    raw = copy.deepcopy(PAPER_SCENARIO)
    raw["cells"] = [{"name": f"bs{k}", "position_m": [800.0 * (k % side), 800.0 * (k // side)], "radius_m": 400,
                     "bandwidth_hz": bandwidth_hz, "noise_dbm_per_hz": -174} for k in range(n_cells)]
    raw["devices"] = [{"count": per_cell, "cell": f"bs{k}", **copy.deepcopy(_DEVICE)} for k in range(n_cells)]
    return paper_world(seed, raw=raw)
