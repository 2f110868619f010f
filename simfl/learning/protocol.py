"""What the engine needs from training, without importing torch.

The SimPy engine calls ``train_round`` once per round with the devices whose update
arrived by the deadline; the torch trainer (``simfl.learning.trainer.TorchTrainer``) is
one implementation, a deterministic stand-in for engine tests is another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RoundMetrics:
    """Test-set metrics of the global model after a round's aggregation."""

    accuracy: float  # fraction correct, in [0, 1]
    loss: float  # mean cross-entropy, nats per sample


@runtime_checkable
class Trainer(Protocol):
    """One federated round: local training of the participants, then aggregation (S3, S4)."""

    def train_round(self, round_index: int, participants: np.ndarray) -> RoundMetrics:
        """Train the devices in ``participants`` (indices of the devices whose update
        arrived by the deadline) from the current global model, aggregate, evaluate."""
        ...


__all__ = ["RoundMetrics", "Trainer"]
