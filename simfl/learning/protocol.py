"""What the engine needs from training, without importing torch.

Training is split as the federated round is: local updates of devices from the model
version they received (S3), then an aggregation into the next global model (S4), which
the policy's `aggregate` hook decides through the `Server` interface (one FedAvg
implementation). The torch trainer (``simfl.learning.trainer.TorchTrainer``) implements
both; engine tests use a deterministic stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

SERVER = -1  # the client id of the server's own update (SST, CLSD)
PRECISIONS = ("float32", "bfloat16", "auto")  # task.precision: what a trainer computes in (simfl.numerics.precision)
DEVICES = ("cpu", "cuda", "auto")  # task.device: where a trainer computes (simfl.learning.trainer.training_device)


@dataclass(frozen=True)
class RoundMetrics:
    """Test-set metrics of the global model after a round's aggregation."""

    accuracy: float  # fraction correct, in [0, 1]
    loss: float  # mean cross-entropy, nats per sample


@dataclass(frozen=True)
class LocalUpdate:
    """One client's model after local training. `params` is the trainer's own
    representation (opaque to the engine); `samples` weighs it in FedAvg."""

    client: int  # device index, or SERVER
    base_version: int  # the global model version it started from
    samples: int
    params: Any
    loss: float | None = None  # mean training loss of its last local epoch (client selection uses it)
    base: Any = None  # the global model's params it started from (what its delta is measured against)
    # What a training-side algorithm's local rule returns besides the params (SCAFFOLD's
    # control-variate change, FedNova's local step count); empty for plain local SGD.
    extras: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TrainJob:
    """One local training to run: `client` from the model `base` (params as `global_params`
    returns them; None: the current global model), whose version is `base_version`,
    seeded by (`key`, client, `repeat`): in synchronous rounds the round, in asynchronous
    modes the base version, with `repeat` counting the device's earlier jobs from that
    same version (so FedBuff with no staleness trains exactly what synchronous rounds do)."""

    client: int
    key: int
    base_version: int = 0
    base: Any = None
    repeat: int = 0


@dataclass(frozen=True)
class TrainingData:
    """A device's data for one round, handed to the policy's `training_set` hook with the
    global model loaded in `model`: inputs `x` and labels `y`, the first `n_local` rows
    real, the rest synthetic; `autocast` is the trainer's precision context."""

    device: int
    x: Any
    y: Any
    n_local: int
    model: Any
    autocast: Any


@runtime_checkable
class Server(Protocol):
    """What a policy's `aggregate` hook may ask of the server."""

    def fedavg(self, updates: Sequence[LocalUpdate], weights: Sequence[float] | None = None) -> Any:
        """sum_k w_k theta_k / sum_k w_k over `updates` in the given order; weights default
        to each update's samples."""
        ...

    def server_update(self, round_index: int, version: int = 0) -> LocalUpdate:
        """The global model trained on the server's own synthetic set (SST, CLSD)."""
        ...

    def global_params(self) -> Any:
        """The current global model (do not modify it: ``set_global`` replaces it)."""
        ...

    def average_delta(self, updates: Sequence[LocalUpdate], weights: Sequence[float] | None = None) -> Any:
        """sum_k w_k (theta_k - base_k) / sum_k w_k: the updates' pseudo-gradient, each
        measured against the model it started from; None when the weights sum to 0."""
        ...

    def step(self, params: Any, delta: Any, scale: float) -> Any:
        """params + scale * delta (a server step along a pseudo-gradient)."""
        ...

    def mix(self, start: Any, end: Any, weight: float) -> Any:
        """(1 - weight) start + weight end, exactly ``end`` at weight 1 (torch.lerp)."""
        ...


@runtime_checkable
class Trainer(Server, Protocol):
    """Local updates, aggregation and evaluation of the global model."""

    def local_updates(self, round_index: int, devices: np.ndarray, version: int = 0) -> list[LocalUpdate]:
        """Each device in ``devices`` trained from the current global model (whose version
        is ``version``), in index order."""
        ...

    def train(self, jobs: Sequence[TrainJob]) -> list[LocalUpdate]:
        """Each job's local update, in the jobs' order (a device with no data gives none)."""
        ...

    def set_global(self, params: Any) -> None:
        """Make ``params`` (what ``fedavg`` returned) the global model."""
        ...

    def evaluate(self) -> RoundMetrics:
        """Test-set metrics of the current global model."""
        ...


__all__ = ["DEVICES", "PRECISIONS", "SERVER", "LocalUpdate", "RoundMetrics", "Server", "TrainJob", "Trainer", "TrainingData"]
