"""The server making synthetic images in simulated time (scenario `server.synthesis_images_per_s`).

The server makes a device's images before the device first trains on them, one image
after another at the given rate: before its first job (so, when every device takes part
in the first round, all of them before round 0; with K of N or asynchronous aggregation,
before the round or the dispatch that first selects the device, delaying it). The
server's own synthetic set (policies that train on the server) is made before the first
round. Where a downlink is modelled, every device's images are sent at the run's start
(as in the paper), so they are all made before that. At the default rate (infinite) none
of this takes time: the paper's assumption.
"""

from __future__ import annotations

import math

import numpy as np

from simfl.plan import Plan


class Synthesis:
    """Which devices' images the server has made, and how long the next ones take."""

    def __init__(self, plan: Plan | None, images_per_s: float, made: list[int]) -> None:
        self.rate = images_per_s
        self.d_gen = np.zeros(0, np.int64) if plan is None else plan.d_gen.astype(np.int64)
        server = None if plan is None else plan.server_synthetic_per_class
        self.server_images = 0 if server is None else int(np.sum(server))
        self.made = np.zeros(len(self.d_gen), dtype=bool)
        self.made[np.asarray(made, dtype=np.int64)] = True
        self.server_made = False  # within this run; a resumed run is past its first round

    def wait_s(self, devices: np.ndarray, first: bool = False) -> float:
        """The time to make the images of `devices` not made yet (and the server's own set
        before the `first` round); they count as made from now on."""
        if not math.isfinite(self.rate):
            return 0.0
        new = np.asarray(devices, dtype=np.int64)
        new = new[~self.made[new]] if len(self.d_gen) else new[:0]
        images = int(self.d_gen[new].sum()) + (self.server_images if first and not self.server_made else 0)
        self.server_made = self.server_made or first
        if len(new):
            self.made[new] = True
        return images / self.rate

    def state(self) -> list[int]:
        return np.flatnonzero(self.made).tolist()
