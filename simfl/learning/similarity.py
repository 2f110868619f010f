"""Gradient similarity to a virtual IID device, eq. (52) (Section V-C3, Fig. 5h).

A virtual device holds a class-uniform ("IID") set; g_0 is the gradient of the global
model's loss on it, g_i the gradient on device i's mixed set. Their similarity is the
mean over layers of the cosine, shifted into [0, 1]:

    Sim(g_0, g_i) = 1/(2L) sum_l ( <g_0[l], g_i[l]> / (|g_0[l]| |g_i[l]|) + 1 ).

A "layer" here is one parameter tensor (a weight or a bias), the granularity at which
the model is shared; ``by_module`` groups a module's weight and bias into one layer
for the other reading of the paper's text.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simfl.learning.threads import intra_op_threads

if TYPE_CHECKING:
    from simfl.learning.trainer import TorchTrainer


def gradient_similarity(g0: Sequence[torch.Tensor], gi: Sequence[torch.Tensor]) -> float:
    """Eq. (52) over matching layers of two gradients.

    A layer where either gradient is exactly zero has no direction; it counts as
    cosine 0 (similarity 1/2), the value of two unrelated directions.
    """
    if len(g0) != len(gi) or not g0:
        raise ValueError(f"need the same, non-zero number of layers, got {len(g0)} and {len(gi)}")
    total = 0.0
    for a, b in zip(g0, gi):
        a64, b64 = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
        if a64.shape != b64.shape:
            raise ValueError(f"layer shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
        denom = float(a64.norm() * b64.norm())
        cos = float(a64 @ b64) / denom if denom > 0 else 0.0
        total += cos + 1.0
    return total / (2 * len(g0))


def loss_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  chunk: int = 1000) -> list[torch.Tensor]:
    """Gradient of the mean cross-entropy over the whole set, one tensor per parameter.

    Computed in chunks (summed losses, divided once) so memory stays bounded.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    n = len(labels)
    if n == 0:
        raise ValueError("cannot take the gradient over an empty set")
    for s in range(0, n, chunk):
        loss = F.cross_entropy(model(images[s: s + chunk]), labels[s: s + chunk], reduction="sum") / n
        for acc, g in zip(total, torch.autograd.grad(loss, params)):
            acc.add_(g)
    return total


def by_module(model: nn.Module, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Regroup per-parameter gradients into one flat vector per module (weight + bias)."""
    groups: dict[str, list[torch.Tensor]] = {}
    for (name, _), g in zip(model.named_parameters(), grads):
        groups.setdefault(name.rsplit(".", 1)[0], []).append(g.reshape(-1))
    return [torch.cat(parts) for parts in groups.values()]


def class_uniform_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """A virtual IID set: ``per_class`` samples of every class, drawn without replacement."""
    labels = np.asarray(labels)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} samples, fewer than per_class={per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def similarity_to_iid(model: nn.Module, device_sets: Sequence[tuple[torch.Tensor, torch.Tensor]],
                      iid_images: torch.Tensor, iid_labels: torch.Tensor, per_module: bool = False) -> np.ndarray:
    """Eq. (52) between the gradient on each device's set and on the virtual IID set.

    Parameters
    ----------
    model
        The global model (e.g. ``TorchTrainer.global_model()``); it is not changed.
    device_sets
        (images, labels) per device, as the model takes them (``TorchTrainer.training_data``).
    iid_images, iid_labels
        The virtual device's class-uniform set, same preprocessing.

    Returns
    -------
    (I,) similarities in [0, 1].
    """
    def grad(x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        g = loss_gradient(model, x, y)
        return by_module(model, g) if per_module else g

    was_training = model.training
    model.eval()  # no dropout or batch norm in simfl's models, but keep it so for any model
    try:
        g0 = grad(iid_images, iid_labels)
        out = np.array([gradient_similarity(g0, grad(x, y)) for x, y in device_sets])
    finally:
        model.train(was_training)
    return out


def trainer_similarities(trainer: TorchTrainer, iid_indices: np.ndarray, per_module: bool = False,
                         devices: Sequence[int] | None = None) -> np.ndarray:
    """Fig. 5(h): eq. (52) for every device of a trainer, against the virtual IID device.

    Parameters
    ----------
    trainer
        Its current global model gives the gradients; each device's set is the one it
        trains on next (D_loc u D_gen, or its pseudo-labelled part for SEMI).
    iid_indices
        The virtual device's samples, indices into the training split (e.g. from
        ``class_uniform_indices`` over the public split).
    devices
        Which devices (default: all), in this order.
    """
    dataset = trainer.dataset
    x = trainer.to_tensor(np.asarray(dataset.train_images[iid_indices]))
    y = torch.from_numpy(np.asarray(dataset.train_labels[iid_indices], dtype=np.int64)).to(x.device)
    # a private copy: the trainer reuses its model object for every client
    model = copy.deepcopy(trainer.global_model())
    which = range(trainer.n_devices) if devices is None else devices
    sets = [trainer.training_data(int(i)) for i in which]
    with intra_op_threads(trainer.threads):  # the run's thread count: its low bits depend on it
        return similarity_to_iid(model, sets, x, y, per_module=per_module)


__all__ = ["by_module", "class_uniform_indices", "gradient_similarity", "loss_gradient", "similarity_to_iid",
           "trainer_similarities"]
