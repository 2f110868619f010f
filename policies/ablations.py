"""The remaining ablations of Fig. 5(e): FIMI without bandwidth allocation (w/o BA) and
without optimal augmentation (w/o OA). (w/o DA is `fimi-no-da` in tfl.py, w/o DM is
`fimi-no-dm` in gan.py.)"""

from __future__ import annotations

import numpy as np

from simfl.policies.fimi import Fimi
from simfl.world import World


class FimiNoBa(Fimi):
    """w/o BA: every device gets an equal share of its cell's band; amounts, CPU
    frequency and power are still optimised for that band."""

    name = "fimi-no-ba"
    equal_bandwidth = True


class FimiNoOa(Fimi):
    """w/o OA: each device's synthetic amount spread evenly over all classes instead of
    water-filling the missing ones (remainders to the lowest class indices)."""

    name = "fimi-no-oa"

    def spread(self, world: World, d_gen: np.ndarray) -> np.ndarray:
        c = world.n_classes
        d_gen = np.asarray(d_gen, dtype=np.int64)
        per_class = np.repeat((d_gen // c)[:, None], c, axis=1)
        per_class[np.arange(c)[None, :] < (d_gen % c)[:, None]] += 1
        return per_class
