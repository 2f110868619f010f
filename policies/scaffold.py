"""SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated
Learning", ICML 2020), with the control-variate update of their option II.

The server keeps a control variate c, each device i its own c_i (both start at 0). A
device trains from the global model x with the corrected step

    y <- y - lr (g(y) + c - c_i),

which removes the drift its skewed data would cause, and after K local steps computes

    c_i+ = c_i - c + (x - y) / (K lr),

then uploads its model y and its variate's change c_i+ - c_i: two model-sized tensors,
so `uplink_models = 2` and the experiment plans, times and charges the uplink for twice
the model's bits (eqs. 7-9). The server sets

    x <- x + eta_g (FedAvg(y) - x),    c <- c + (1/N) sum_i (c_i+ - c_i),

with N the number of devices (the paper's |S|/N times the mean over the participants)
and the models averaged as FedAvg weighs them (by samples). Stragglers' variates are
not updated. c and every c_i are saved in each round's checkpoint (`tensor_state`).

Settings (`policy_settings.scaffold`): server_lr eta_g > 0 (default 1: FedAvg of the
corrected models). Synchronous rounds only. Data side: TFL's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from simfl.learning.local_rule import LocalRule, as_arrays
from simfl.learning.protocol import LocalUpdate, Server
from simfl.network import RoundState
from simfl.policies.tfl import Tfl
from simfl.policy_settings import Setting
from simfl.training_side import TrainingAlgorithm

if TYPE_CHECKING:
    import torch

CONTROL_DELTA = "control_delta"  # LocalUpdate.extras key: c_i+ - c_i


class ControlVariateRule(LocalRule):
    """Steps along g + c - c_i; returns c_i+ - c_i = (x - y) / (K lr) - c. Variates are
    numpy arrays (None: zero, as before a device's first update)."""

    def __init__(self, server: list[np.ndarray] | None, client: list[np.ndarray] | None) -> None:
        self.server, self.client = server, client
        self._base: list[torch.Tensor] = []
        self._correction: list[torch.Tensor] | None = None

    def start(self, params: Sequence[torch.Tensor]) -> None:
        import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

        self._base = [p.detach().clone() for p in params]
        zero = [torch.zeros_like(p) for p in self._base]
        c = zero if self.server is None else _on(self.server, self._base)
        c_i = zero if self.client is None else _on(self.client, self._base)
        self._correction = None if self.server is None and self.client is None else list(torch._foreach_sub(c, c_i))

    def direction(self, grads: list[torch.Tensor], params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

        if self._correction is not None:
            torch._foreach_add_(grads, self._correction)
        return grads

    def finish(self, params: Sequence[torch.Tensor], steps: int, learning_rate: float) -> dict[str, Any]:
        import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

        delta = list(torch._foreach_sub(self._base, [p.detach() for p in params]))
        torch._foreach_div_(delta, float(steps) * learning_rate)
        if self.server is not None:
            torch._foreach_sub_(delta, _on(self.server, self._base))
        return {CONTROL_DELTA: delta}


def _on(arrays: list[np.ndarray], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A variate's arrays as tensors on the device of the model's (`like`; on the CPU: the arrays' own memory)."""
    import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

    return [torch.from_numpy(a).to(t.device) for a, t in zip(arrays, like)]


class Scaffold(TrainingAlgorithm, Tfl):
    """Control variates correct each device's drift; the uplink carries them too."""

    name = "scaffold"
    uplink_models = 2  # the model and the control variate's change
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting("server_lr", 1.0, "global step size eta_g towards the average model", above=0.0),
    )
    server_lr: float

    def __init__(self) -> None:
        super().__init__()
        self.server_variate: list[torch.Tensor] | None = None  # c
        self.client_variates: dict[int, list[torch.Tensor]] = {}  # c_i

    def local_rule(self, client: int) -> LocalRule:
        c, c_i = self.server_variate, self.client_variates.get(client)
        return ControlVariateRule(None if c is None else as_arrays(c), None if c_i is None else as_arrays(c_i))

    def aggregate(self, updates: Sequence[LocalUpdate], server: Server, state: RoundState) -> Any:
        """x + eta_g (FedAvg - x) (exactly FedAvg at eta_g = 1); then the variates."""
        import torch  # deferred: validating a scenario that names this policy imports it; torch loads only to train

        if not updates:
            return None
        average = server.fedavg(updates)
        if average is None:
            return None
        change: list[torch.Tensor] | None = None
        for update in updates:
            delta = update.extras[CONTROL_DELTA]
            own = self.client_variates.get(update.client)
            self.client_variates[update.client] = [d.clone() for d in delta] if own is None else list(torch._foreach_add(own, delta))
            change = [d.clone() for d in delta] if change is None else list(torch._foreach_add(change, delta))
        assert change is not None
        torch._foreach_div_(change, float(state.n_devices))
        c = self.server_variate
        self.server_variate = change if c is None else list(torch._foreach_add(c, change))
        return server.mix(server.global_params(), average, self.server_lr)

    def tensor_state(self) -> dict[str, Any]:
        return {"server": list(self.server_variate or []),
                "clients": {str(i): list(c) for i, c in sorted(self.client_variates.items())}}

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        self.server_variate = list(state["server"]) if state.get("server") else None
        self.client_variates = {int(i): list(c) for i, c in state.get("clients", {}).items()}
