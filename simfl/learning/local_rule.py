"""What a training-side algorithm changes in a device's local SGD: a `LocalRule`.

The trainer's plain local SGD takes steps theta <- theta - lr * g on the mini-batch
gradient g. FedProx adds a proximal term to g, SCAFFOLD a control-variate correction,
FedNova needs the number of steps taken; each is a LocalRule the policy hands the trainer
per job (`Policy.local_rule(client)`), made in the parent process from what the policy
knows at dispatch (SCAFFOLD's variates) and run where the job trains: in the parent, or
pickled into a worker process. So a rule holds its data as numpy arrays (they pickle
without shared-memory handles) and does its arithmetic in torch on the model's tensors.

Without a rule the trainer runs its plain path untouched (the golden files pin it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch  # deferred: the rules' data is numpy until a worker trains; scenario checks never load torch


class LocalRule:
    """The identity rule: plain SGD, nothing returned besides the params. Subclasses
    override what they change. `direction` runs inside ``torch.no_grad``, the other
    hooks outside any autograd graph.

    `learning_rate` and `local_epochs`, where set, replace the task's for this job (a
    Flower strategy's `lr` and `local-epochs`); None keeps the task's."""

    learning_rate: float | None = None
    local_epochs: int | None = None

    def start(self, params: Sequence[torch.Tensor]) -> None:
        """Called once per job with the model's parameters holding the base model, before
        the first step."""

    def direction(self, grads: list[torch.Tensor], params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The step direction from the mini-batch gradient ``grads`` at ``params``: the
        trainer steps params <- params - lr * direction. Default: ``grads`` as they are."""
        return grads

    def finish(self, params: Sequence[torch.Tensor], steps: int, learning_rate: float) -> dict[str, Any]:
        """What the device sends besides its model, after ``steps`` local steps at
        ``learning_rate`` (values: numbers or lists of tensors; the trainer carries them
        across processes). Default: nothing."""
        return {}


def local_steps(samples: int, batch_size: int, epochs: int) -> int:
    """The SGD steps of a local training: ceil(samples / batch_size) mini-batches per epoch."""
    return epochs * math.ceil(samples / batch_size) if samples > 0 else 0


def as_arrays(tensors: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Tensors as numpy arrays (copies), for a rule's data or extras to cross processes."""
    return [t.detach().numpy().copy() for t in tensors]


def extras_to_arrays(extras: dict[str, Any]) -> dict[str, Any]:
    """A rule's extras with every list of tensors as numpy arrays (a worker's answer)."""
    import torch  # deferred: the rules' data is numpy until a worker trains; scenario checks never load torch

    return {key: as_arrays(value) if _tensor_list(value, torch.Tensor) else value for key, value in extras.items()}


def extras_to_tensors(extras: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `extras_to_arrays`, in the parent."""
    import torch  # deferred: the rules' data is numpy until a worker trains; scenario checks never load torch

    return {key: [torch.from_numpy(a) for a in value] if _tensor_list(value, np.ndarray) else value
            for key, value in extras.items()}


def _tensor_list(value: Any, kind: type) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, kind) for v in value)


__all__ = ["LocalRule", "as_arrays", "extras_to_arrays", "extras_to_tensors", "local_steps"]
