"""FedAvgM (Hsu, Qi and Brown, "Measuring the Effects of Non-Identical Data Distribution
for Federated Visual Classification", 2019): FedAvg with server momentum. Each round's
pseudo-gradient Delta_t = sum_k p_k (y_k - x_t) (the FedAvg model's change) feeds a
velocity, and the server steps along it:

    v_t = beta v_{t-1} + Delta_t,    x_{t+1} = x_t + eta v_t.

Computed as x_t + eta (FedAvg - x_t) + eta beta v_{t-1} (a mix, then a step), so with
momentum 0 and eta = 1 it is FedAvg bit for bit. The velocity is saved in each round's
checkpoint (`tensor_state`).

Settings (`policy_settings.fedavgm`): server_lr eta > 0 (default 1), momentum beta in
[0, 1) (default 0.9). Synchronous rounds only. Data side: TFL's.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from simfl.learning.protocol import LocalUpdate, Server
from simfl.network import RoundState
from simfl.policies.tfl import Tfl
from simfl.policy_settings import Setting
from simfl.training_side import TrainingAlgorithm


class FedAvgM(TrainingAlgorithm, Tfl):
    """FedAvg with a server velocity over the rounds' pseudo-gradients."""

    name = "fedavgm"
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting("server_lr", 1.0, "server step size eta", above=0.0),
        Setting("momentum", 0.9, "server momentum beta", minimum=0.0, below=1.0),
    )
    server_lr: float
    momentum: float

    def __init__(self) -> None:
        super().__init__()
        self.velocity: Any = None  # v_{t-1}, laid out like the model (None before the first round)

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        if not updates:
            return None
        average, delta = server.fedavg(updates), server.average_delta(updates)
        if average is None or delta is None:
            return None
        new = server.mix(server.global_params(), average, self.server_lr)
        if self.velocity is not None:
            new = server.step(new, self.velocity, self.server_lr * self.momentum)
            delta = server.step(delta, self.velocity, self.momentum)
        self.velocity = delta
        return new

    def tensor_state(self) -> dict[str, Any]:
        return {"velocity": list(self.velocity or [])}

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        self.velocity = list(state["velocity"]) if state.get("velocity") else None
