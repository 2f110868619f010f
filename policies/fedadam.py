"""FedAdam (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2): the
server treats each round's pseudo-gradient Delta_t = sum_k p_k (y_k - x_t) (the FedAvg
model's change, weighted by samples) as a gradient for Adam:

    m_t = beta1 m_{t-1} + (1 - beta1) Delta_t
    v_t = beta2 v_{t-1} + (1 - beta2) Delta_t^2
    x_{t+1} = x_t + eta m_t / (sqrt(v_t) + tau)

with m_{-1} = 0 and v_{-1} = tau^2 (the paper's v_{-1} >= tau^2) and, as in the paper,
no bias correction. FedYogi (policies/fedyogi.py) changes only the second moment. m and
v are saved in each round's checkpoint (`tensor_state`).

Settings (`policy_settings.fedadam`, `policy_settings.fedyogi`): server_lr eta > 0
(default 0.01), beta1 in [0, 1) (0.9), beta2 in [0, 1) (0.99), tau > 0 (0.001, the
adaptivity: larger is closer to momentum SGD). Synchronous rounds only. Data side: TFL's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from simfl.learning.portable_math import sqrt
from simfl.learning.protocol import LocalUpdate, Server
from simfl.network import RoundState
from simfl.policies.tfl import Tfl
from simfl.policy_settings import Setting
from simfl.training_side import TrainingAlgorithm

if TYPE_CHECKING:
    import torch

ADAPTIVE_SETTINGS = (
    Setting("server_lr", 0.01, "server step size eta", above=0.0),
    Setting("beta1", 0.9, "first-moment decay", minimum=0.0, below=1.0),
    Setting("beta2", 0.99, "second-moment decay", minimum=0.0, below=1.0),
    Setting("tau", 1e-3, "adaptivity (added to sqrt(v); v starts at tau^2)", above=0.0),
)


class FedAdam(TrainingAlgorithm, Tfl):
    """Adam on the server over the rounds' pseudo-gradients."""

    name = "fedadam"
    settings: ClassVar[tuple[Setting, ...]] = ADAPTIVE_SETTINGS
    server_lr: float
    beta1: float
    beta2: float
    tau: float

    def __init__(self) -> None:
        super().__init__()
        self.first: list[torch.Tensor] | None = None  # m
        self.second: list[torch.Tensor] | None = None  # v

    def second_moment(self, v: list[torch.Tensor], squared: list[torch.Tensor]) -> list[torch.Tensor]:
        """v_t from v_{t-1} and Delta_t^2 (Adam: an exponential average)."""
        return [self.beta2 * a + (1.0 - self.beta2) * s for a, s in zip(v, squared)]

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

        if not updates:
            return None
        delta = server.average_delta(updates)
        if delta is None:
            return None
        m = self.first or [torch.zeros_like(d) for d in delta]
        v = self.second or [torch.full_like(d, self.tau ** 2) for d in delta]
        self.first = [self.beta1 * a + (1.0 - self.beta1) * d for a, d in zip(m, delta)]
        self.second = self.second_moment(v, [d * d for d in delta])
        direction = [a / (sqrt(b) + self.tau) for a, b in zip(self.first, self.second)]
        return server.step(server.global_params(), direction, self.server_lr)

    def tensor_state(self) -> dict[str, Any]:
        return {"first": list(self.first or []), "second": list(self.second or [])}

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        self.first = list(state["first"]) if state.get("first") else None
        self.second = list(state["second"]) if state.get("second") else None
