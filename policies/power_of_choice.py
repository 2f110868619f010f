"""Power-of-choice client selection, the communication-free variant rpow-d: Y. J. Cho,
J. Wang and G. Joshi, "Towards Understanding Biased Client Selection in Federated
Learning", AISTATS 2022 (PMLR 151:10351-10375).

Each round the server draws a candidate set of d devices without replacement and selects
the K of them with the largest local loss. rpow-d spends no extra communication or
computation on the loss: it uses the mean training loss each device reported the last
time it took part (LocalUpdate.loss), however stale. Biasing selection towards high-loss
devices speeds up convergence early, at the price of a bias in the solution that grows
with d (d = K is uniform random selection).

Assumptions and choices where the paper leaves room or simfl differs:
- candidates are drawn uniformly among the devices available this round; the paper
  draws them in proportion to the devices' data fractions p_k, which are equal in simfl
  (every device holds samples_per_device real samples);
- a device never heard from counts as having an infinite loss, so every device is tried
  once before the losses decide; ties go to the lower index;
- a loss that is missing or not finite (a diverged device) leaves the last one in place;
- K = task.participants_per_round; without it every available device takes part and the
  policy is TFL. d = min(candidates_per_participant x K, available devices).

Resources and data are TFL's (no synthetic data; f, b, P optimised once on the mean
channel), so a comparison with tfl isolates the selection.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import numpy as np

from simfl.policies.tfl import Tfl
from simfl.learning.protocol import LocalUpdate, Server
from simfl.network import RoundState
from simfl.policy import PlanContext
from simfl.streams import keyed_rng

# The candidate draw is a keyed draw of the "selection" stream, (round, CANDIDATE_KEY):
# distinct from the default policies' (round,) draw, so the two never coincide by
# construction, and reproducible from the seed and round alone.
CANDIDATE_KEY = 0x706F77  # "pow"


def candidate_set(seed: int, round_index: int, available: np.ndarray, d: int) -> np.ndarray:
    """d devices drawn uniformly without replacement among `available`, sorted."""
    draw = keyed_rng(seed, "selection", round_index, CANDIDATE_KEY)
    return np.sort(draw.choice(available, size=d, replace=False))


def highest_loss(candidates: np.ndarray, loss: dict[int, float], k: int) -> np.ndarray:
    """The k candidates with the largest last-reported loss (unknown: +inf; ties by
    lower index), sorted."""
    values = np.array([loss.get(int(i), math.inf) for i in candidates])
    order = np.lexsort((candidates, -values))  # last key first: loss descending, then index
    return np.sort(candidates[order[:k]])


class PowerOfChoice(Tfl):
    """rpow-d: K of d uniformly drawn candidates, by largest last-reported local loss."""

    name = "power-of-choice"
    candidates_per_participant: ClassVar[int] = 2

    def __init__(self) -> None:
        self._loss: dict[int, float] = {}  # device -> mean training loss of its last update

    def select(self, state: RoundState, context: PlanContext) -> np.ndarray:
        """Draw d candidates among the available devices, keep the K with the largest
        remembered loss."""
        available = np.flatnonzero(state.available)
        k = context.participants_per_round
        if k is None or k >= len(available):
            return available
        d = min(self.candidates_per_participant * k, len(available))
        return highest_loss(candidate_set(context.seed, state.round, available, d), self._loss, k)

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        """Remember each arrived device's reported loss, then FedAvg as usual."""
        for update in updates:
            if update.client >= 0 and update.loss is not None and math.isfinite(update.loss):
                self._loss[update.client] = float(update.loss)
        return super().aggregate(updates, server, state)

    def state_dict(self) -> dict[str, Any]:
        # JSON keys are strings; floats survive json's repr exactly, so a resumed run
        # ranks the devices bit for bit as the uninterrupted one.
        return {"loss": {str(i): v for i, v in sorted(self._loss.items())}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._loss = {int(i): float(v) for i, v in state.get("loss", {}).items()}
