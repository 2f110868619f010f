"""What each field of a scenario may hold, section by section: the bounds of its numbers,
the names a choice takes, and the defaults that only the file format has.

The section builders (simfl.scenario.sections) check every value against these tables,
and the documentation's scenario reference prints them beside the schema's types,
defaults and field docstrings (simfl.scenario.schema), so the page cannot state a range
the checks do not enforce. Sections are keyed by their path in the file, list indices
left out (`cells`, `cells.path_loss`, `optimisation.cross_entropy`); the top level is "".
On top of these, every integer field has a sane range and every physical field a
physical range by its name (simfl.limits), and the reference prints those too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from simfl.aggregation import MODES
from simfl.generative import CONFIG_NAMES, KINDS as GENERATOR_KINDS
from simfl.learning.data import DATASETS
from simfl.learning.models import MODELS
from simfl.learning.protocol import DEVICES, PRECISIONS
from simfl.limits import Bounds
from simfl.optim.fimi import SOLVERS
from simfl.spectrum import ALLOCATORS, INTERFERENCE_MODELS, REUSE_FACTORS
from simfl.world import PLAN_FOR

POSITIVE = Bounds(above=0)
POSITIVE_REQUIRED = Bounds(above=0, required=True)
COUNT = Bounds(minimum=1, integer=True)  # a count of something: 1 or more
NON_NEGATIVE = Bounds(minimum=0)
FRACTION = Bounds(minimum=0, below=1)  # a probability that must leave room: [0, 1)

NUMBERS: dict[str, dict[str, Bounds]] = {
    "": {"seed": Bounds(minimum=0, integer=True)},
    "cells": {"radius_m": POSITIVE_REQUIRED, "bandwidth_hz": POSITIVE_REQUIRED, "noise_dbm_per_hz": Bounds(maximum=0),
              "carrier_hz": POSITIVE},
    "cells.hex_grid": {"rings": Bounds(minimum=0, integer=True, required=True), "spacing_m": POSITIVE_REQUIRED},
    "cells.path_loss": {"intercept_db": Bounds(), "slope_db": POSITIVE, "shadowing_std_db": NON_NEGATIVE},
    "cells.downlink": {"bandwidth_hz": POSITIVE_REQUIRED, "power_dbm": Bounds(required=True)},
    # the distributions' bounds hold for every value they give
    "devices": {"count": Bounds(minimum=1, integer=True, required=True), "f_max_hz": POSITIVE_REQUIRED,
                "eps": POSITIVE_REQUIRED, "p_max_dbm": Bounds(required=True), "distance_m": POSITIVE,
                "battery_j": POSITIVE},
    "task": {"dirichlet_z": POSITIVE, "samples_per_device": COUNT, "public_samples": COUNT,
             "public_split_seed": Bounds(minimum=0, integer=True), "learning_rate": POSITIVE, "batch_size": COUNT,
             "local_epochs": COUNT, "rounds": COUNT, "max_time_s": POSITIVE, "participants_per_round": COUNT,
             "target_accuracies": Bounds(above=0, maximum=1),  # each accuracy of the list
             "eval_samples": COUNT, "threads": COUNT},
    "optimisation": {"t_max_s": POSITIVE, "err_max": Bounds(above=0, below=1),
                     "dgen_max": Bounds(minimum=0, integer=True), "omega_cycles_per_sample": POSITIVE,
                     "alpha": POSITIVE, "beta": POSITIVE, "gamma": NON_NEGATIVE, "zeta": POSITIVE, "outage": FRACTION},
    "optimisation.cross_entropy": {"samples": Bounds(minimum=2, integer=True), "elite": COUNT, "iterations": COUNT,
                                   "smoothing": Bounds(above=0, maximum=1), "tol": POSITIVE},
    "generator": {"guidance": NON_NEGATIVE, "sampling_steps": COUNT},
    "aggregation": {"buffer_size": COUNT, "max_concurrency": COUNT,
                    "staleness": NON_NEGATIVE,  # the exponent a of {polynomial: a}
                    "server_lr": POSITIVE, "mixing": Bounds(above=0, maximum=1), "eval_every": COUNT,
                    "eval_every_s": POSITIVE},
    "server": {"aggregation_delay_s": NON_NEGATIVE, "synthesis_images_per_s": POSITIVE},
    "network": {"channel_step_s": POSITIVE},
    "network.handover": {"hysteresis_db": NON_NEGATIVE, "time_to_trigger_s": NON_NEGATIVE,
                         "interruption_s": NON_NEGATIVE},
}

# Each is read when a scenario is checked, not when this module loads: data sets, models
# and allocators are registries that grow as a user's code registers more.
CHOICES: dict[str, dict[str, Callable[[], tuple[Any, ...]]]] = {
    "cells.hex_grid": {"reuse": lambda: REUSE_FACTORS},
    "task": {"dataset": lambda: tuple(DATASETS), "model": lambda: tuple(sorted(MODELS)),
             "precision": lambda: PRECISIONS, "device": lambda: DEVICES},
    "optimisation": {"solver": lambda: tuple(SOLVERS), "plan_for": lambda: PLAN_FOR},
    "generator": {"kind": lambda: GENERATOR_KINDS, "config": lambda: CONFIG_NAMES},
    "aggregation": {"mode": lambda: tuple(MODES)},
    "network": {"interference": lambda: INTERFERENCE_MODELS, "allocator": lambda: tuple(ALLOCATORS)},
}



@dataclass(frozen=True)
class Derived:
    """A default the loader computes from the rest of the file, in the reference's words."""

    text: str


# Defaults of fields whose dataclass field has none (the loader fills them in); every
# other field's default is its dataclass default.
DEFAULTS: dict[str, dict[str, Any]] = {
    "": {"name": Derived("the file's name"), "seed": 0, "policies": ()},
    "cells": {"name": Derived("cell0, cell1, ... in list order"), "position_m": (0.0, 0.0),
              "noise_dbm_per_hz": -174.0},
}


def options(section: str, key: str) -> tuple[Any, ...]:
    """The values the choice `key` of `section` takes now."""
    return CHOICES[section][key]()


__all__ = ["CHOICES", "DEFAULTS", "NUMBERS", "Derived", "options"]
