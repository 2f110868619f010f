"""FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020):
each device minimises its loss plus the proximal term (mu / 2) ||w - w_t||^2, which
keeps its local model near the global model w_t it started from, so devices with skewed
data drift less. The local step is plain SGD on that objective,

    w <- w - lr (g(w) + mu (w - w_t)),

and aggregation is the mode's own rule (FedAvg in synchronous rounds), so FedProx also
runs under FedBuff and FedAsync. mu = 0 is FedAvg exactly.

Settings (`policy_settings.fedprox`): mu >= 0 (default 0.01). Data side: TFL's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

from simfl.learning.local_rule import LocalRule
from simfl.policies.tfl import Tfl
from simfl.policy_settings import Setting
from simfl.training_side import TrainingAlgorithm

if TYPE_CHECKING:
    import torch


class ProximalRule(LocalRule):
    """g + mu (w - w_t), with w_t the base model the job started from."""

    def __init__(self, mu: float) -> None:
        self.mu = float(mu)
        self._base: list[torch.Tensor] = []

    def start(self, params: Sequence[torch.Tensor]) -> None:
        self._base = [p.detach().clone() for p in params]

    def direction(self, grads: list[torch.Tensor], params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

        torch._foreach_add_(grads, torch._foreach_sub(list(params), self._base), alpha=self.mu)
        return grads


class FedProx(TrainingAlgorithm, Tfl):
    """Local SGD on the loss plus a proximal term; the mode's own aggregation."""

    name = "fedprox"
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting("mu", 0.01, "weight of the proximal term (mu / 2) ||w - w_t||^2", minimum=0.0),
    )
    synchronous_only = False
    mu: float

    def local_rule(self, client: int) -> LocalRule:
        return ProximalRule(self.mu)
