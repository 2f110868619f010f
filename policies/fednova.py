"""FedNova (Wang et al., "Tackling the Objective Inconsistency Problem in Heterogeneous
Federated Optimization", NeurIPS 2020), for local SGD without momentum.

Devices take different numbers of local steps tau_i = epochs x ceil(D_i / batch) (more
data, or synthetic data added to some devices only, means more steps), and plain FedAvg
then weighs the devices that stepped more by more than their data share: its solution
drifts towards them. FedNova averages the normalised changes d_i = (x - y_i) / tau_i and
steps by the effective number of steps tau_eff = sum_i p_i tau_i:

    x <- x - tau_eff sum_i p_i d_i,    p_i = D_i / sum_j D_j.

It is computed as the mix x + s (A - x) of x towards the average A of the models weighted
by p_i tau_min / tau_i, with s = tau_eff sum_i (p_i tau_min / tau_i) / tau_min; s and the
weights are exact rationals, so with equal local steps (s = 1, weights D_i) this is FedAvg
bit for bit. The devices report tau_i with their update (LocalUpdate.extras).

No settings. Synchronous rounds only. Data side: TFL's.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import torch

from simfl.learning.local_rule import LocalRule
from simfl.learning.protocol import LocalUpdate, Server
from simfl.network import RoundState
from simfl.policies.tfl import Tfl
from simfl.training_side import TrainingAlgorithm

LOCAL_STEPS = "local_steps"  # LocalUpdate.extras key: tau_i


class StepCount(LocalRule):
    """Plain SGD; reports the number of local steps taken."""

    def finish(self, params: Sequence[torch.Tensor], steps: int, learning_rate: float) -> dict[str, Any]:
        return {LOCAL_STEPS: int(steps)}


def normalised_weights(samples: Sequence[int], steps: Sequence[int]) -> tuple[list[float], float]:
    """FedNova as a mix: the averaging weights D_i tau_min / tau_i and the step s of
    x + s (A - x) (see the module's docstring), from exact rationals."""
    least = min(steps)
    weights = [Fraction(n * least, t) for n, t in zip(samples, steps)]
    total = sum(samples)
    tau_eff = Fraction(sum(n * t for n, t in zip(samples, steps)), total)
    scale = tau_eff * sum(weights) / (total * least)
    return [float(w) for w in weights], float(scale)


class FedNova(TrainingAlgorithm, Tfl):
    """Normalised averaging: each device's change counts per local step."""

    name = "fednova"

    def local_rule(self, client: int) -> LocalRule:
        return StepCount()

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        if not updates:
            return None
        weights, scale = normalised_weights([u.samples for u in updates], [u.extras[LOCAL_STEPS] for u in updates])
        average = server.fedavg(updates, weights)
        return None if average is None else server.mix(server.global_params(), average, scale)
