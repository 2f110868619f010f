"""Sane ranges of the scenario's integer fields, and what the built-in data sets hold.

`validate` checks every integer field against a range: the one named here for its field
path, else `DEFAULT_INT_RANGE`. The ranges are far above any useful value and far below
what overflows numpy, torch or a day of simulation: `task.rounds: 1e300` is a typo, not an
experiment, and must fail on load rather than train until it is killed. A new integer
field gets the default range without any change here; give it its own entry when the
default does not fit.
"""

from __future__ import annotations

import re

# numpy's SeedSequence takes any size, but torch.manual_seed stops at 2**64 - 1 and seeds
# are printed and typed by people: 32 bits is plenty.
SEED_RANGE = (0, 2**32 - 1)
DEFAULT_INT_RANGE = (-(2**31), 2**31 - 1)

# field path (list indices written [*]) -> inclusive (low, high)
INT_RANGES: dict[str, tuple[int, int]] = {
    "seed": SEED_RANGE,
    "task.public_split_seed": SEED_RANGE,
    "task.rounds": (1, 100_000),
    "task.samples_per_device": (1, 10_000_000),
    "task.public_samples": (1, 10_000_000),
    "task.batch_size": (1, 1_000_000),
    "task.local_epochs": (1, 10_000),
    "task.eval_samples": (1, 10_000_000),
    "devices.count": (1, 100_000),
    "devices[*].count": (1, 100_000),
    "optimisation.dgen_max": (0, 10_000_000),
    "optimisation.cross_entropy.samples": (2, 1_000_000),
    "optimisation.cross_entropy.elite": (1, 1_000_000),
    "optimisation.cross_entropy.iterations": (1, 100_000),
    # DDIM steps; at or above the model's T (300 at most in simfl's configurations) it is
    # ancestral DDPM over T steps, so more than this is never useful
    "generator.sampling_steps": (1, 10_000),
    "aggregation.buffer_size": (1, 1_000_000),
    "aggregation.eval_every": (1, 100_000),
}

MAX_SEEDS = 1_000  # `compare --seeds`: a range like 1-1000000000 is a typo

_INDEX = re.compile(r"\[\d+\]")


def int_range(path: str) -> tuple[int, int]:
    """The inclusive range allowed for the integer field at `path` (e.g. `devices[2].count`)."""
    return INT_RANGES.get(_INDEX.sub("[*]", path), DEFAULT_INT_RANGE)


__all__ = ["DEFAULT_INT_RANGE", "INT_RANGES", "MAX_SEEDS", "SEED_RANGE", "int_range"]
