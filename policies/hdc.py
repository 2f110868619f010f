"""Heuristic data compensation (Section V-B): each device gets synthetic data only for its
rarest class; the amount comes from FIMI's optimiser (as the paper does for HDC)."""

from __future__ import annotations

import numpy as np

from simfl.policies.fimi import Fimi
from simfl.world import World


class Hdc(Fimi):
    """FIMI's amounts and resources, all synthetic samples in the rarest local class
    (the lowest class index among ties)."""

    name = "hdc"

    def spread(self, world: World, d_gen: np.ndarray) -> np.ndarray:
        per_class = np.zeros(world.d_loc_per_class.shape, dtype=np.int64)
        rarest = np.argmin(world.d_loc_per_class, axis=1)
        per_class[np.arange(world.n_devices), rarest] = d_gen
        return per_class
