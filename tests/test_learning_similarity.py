"""Eq. (52) against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from simfl.learning.similarity import (by_module, class_uniform_indices, gradient_similarity, loss_gradient,
                                       similarity_to_iid, trainer_similarities)


def test_eq52_hand_example() -> None:
    # layer 1: (1,0) vs (0,1), cos 0; layer 2: (1,1) vs (2,2), cos 1
    # Sim = ((0 + 1) + (1 + 1)) / (2 * 2) = 0.75
    g0 = [torch.tensor([1.0, 0.0]), torch.tensor([[1.0], [1.0]])]
    gi = [torch.tensor([0.0, 1.0]), torch.tensor([[2.0], [2.0]])]
    assert gradient_similarity(g0, gi) == pytest.approx(0.75)


def test_eq52_opposite_and_oblique() -> None:
    # opposite directions: cos -1 -> 0; (3,4) vs (4,3): cos 24/25 -> (24/25 + 1)/2 = 0.98
    assert gradient_similarity([torch.tensor([1.0, 2.0])], [torch.tensor([-2.0, -4.0])]) == pytest.approx(0.0)
    assert gradient_similarity([torch.tensor([3.0, 4.0])], [torch.tensor([4.0, 3.0])]) == pytest.approx(0.98)


def test_loss_gradient_matches_softmax_formula() -> None:
    # For logits = W x + b and mean cross-entropy, dL/dW = (softmax - onehot)^T X / n.
    torch.manual_seed(0)  # only to fill the test's layer; simfl code never uses it
    layer = nn.Linear(3, 4)
    x = torch.randn(7, 3)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    gw, gb = loss_gradient(layer, x, y, chunk=3)  # chunks of 3, 3, 1
    with torch.no_grad():
        p = torch.softmax(layer(x), dim=1).numpy().astype(np.float64)
    err = p - np.eye(4)[y.numpy()]
    np.testing.assert_allclose(gw.numpy(), err.T @ x.numpy() / 7, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gb.numpy(), err.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_by_module_concatenates_weight_and_bias() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    grads = [torch.full_like(p, float(k)) for k, p in enumerate(model.parameters())]
    groups = by_module(model, grads)
    assert [g.numel() for g in groups] == [6 + 3, 3 + 1]
    assert groups[0].tolist() == [0.0] * 6 + [1.0] * 3


def test_device_holding_the_iid_set_has_similarity_one() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 1, 2, 2, generator=g)
    y = torch.arange(30) % 3
    skewed = (x[y == 0], y[y == 0])
    sims = similarity_to_iid(model, [(x, y), skewed], x, y)
    assert sims[0] == pytest.approx(1.0)
    assert 0.0 <= sims[1] < 1.0


def test_class_uniform_indices() -> None:
    labels = np.repeat(np.arange(3), [5, 7, 9])
    idx = class_uniform_indices(labels, 4, np.random.default_rng(0))
    assert np.bincount(labels[idx]).tolist() == [4, 4, 4]
    assert len(np.unique(idx)) == 12


def test_trainer_similarities_rank_a_balanced_device_above_a_one_class_device() -> None:
    from simfl.learning.data import load_dataset
    from simfl.learning.trainer import TorchTrainer
    from simfl.scenario import Task

    try:
        ds = load_dataset("fashion-mnist")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Fashion-MNIST unavailable: {exc}")
    labels = ds.train_labels
    iid = class_uniform_indices(labels[:2000], 20, np.random.default_rng(0))
    one_class = np.flatnonzero(labels == 3)[:200]
    trainer = TorchTrainer(Task(eval_samples=10), ds, [iid, one_class], seed=0, workers=1)
    sims = trainer_similarities(trainer, iid)
    # device 0 holds exactly the virtual IID set: cosine 1 in every layer
    assert sims[0] == pytest.approx(1.0)
    assert sims[1] < sims[0]
