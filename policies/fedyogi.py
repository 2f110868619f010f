"""FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2): as
FedAdam (policies/fedadam.py), with Yogi's second moment, which grows or shrinks by at
most (1 - beta2) Delta^2 per round instead of forgetting geometrically:

    v_t = v_{t-1} - (1 - beta2) Delta_t^2 sign(v_{t-1} - Delta_t^2).

Settings (`policy_settings.fedyogi`): as FedAdam's. Synchronous rounds only. Data side: TFL's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simfl.policies.fedadam import FedAdam

if TYPE_CHECKING:
    import torch


class FedYogi(FedAdam):
    """Yogi on the server over the rounds' pseudo-gradients."""

    name = "fedyogi"

    def second_moment(self, v: list[torch.Tensor], squared: list[torch.Tensor]) -> list[torch.Tensor]:
        import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

        return [a - (1.0 - self.beta2) * s * torch.sign(a - s) for a, s in zip(v, squared)]
