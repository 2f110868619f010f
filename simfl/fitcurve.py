"""`simfl fit-curve`: measure the local error against the training-data amount on the
public split and fit eq. (1) to it (Section III-B2, Fig. 3). The server can do this
offline: it never touches device data."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np
import pandas as pd

from simfl.errors import SimflError
from simfl.learning.data import load_dataset, public_private_split
from simfl.optim.learning_curve import CurveFit, estimate_zeta, fit_learning_curve, local_error
from simfl.scenario import Scenario
from simfl.streams import rng


def default_sizes(public_samples: int, count: int = 8, smallest: int = 50) -> list[int]:
    """Geometrically spaced subset sizes from `smallest` to the whole public split."""
    top = max(public_samples, smallest + 1)
    return sorted({int(round(s)) for s in np.geomspace(smallest, top, count)})


def measure_learning_curve(scenario: Scenario, sizes: Sequence[int], epochs: int = 5, min_steps: int = 300,
                           progress: TextIO | None = sys.stderr) -> pd.DataFrame:
    """Train the scenario's model from scratch on public subsets of each size and measure
    its error (1 - accuracy) on the held-out test set.

    Each subset trains for `epochs` passes, or more when that would be fewer than
    `min_steps` SGD steps, so small sets are trained to their limit (eq. (1) models the
    achievable error, not an under-trained one). The subsets are nested, class-stratified
    prefixes of one shuffled public split.
    """
    from simfl.learning.trainer import TorchTrainer  # deferred: torch, only when the curve is measured

    task = scenario.task
    dataset = load_dataset(task.dataset, task.data_dir)
    _, public_idx = public_private_split(dataset.train_labels, task.public_samples, rng(scenario.split_seed, "partition"))
    too_big = [s for s in sizes if s > len(public_idx)]
    if too_big:
        raise SimflError(f"{scenario.source}: fit-curve sizes {too_big} exceed the public split "
                         f"(task.public_samples = {len(public_idx)})")
    order = rng(scenario.seed, "policy").permutation(public_idx)
    rows = []
    for size in sizes:
        subset = order[:size]
        passes = max(epochs, math.ceil(min_steps * task.batch_size / size))
        # One client holding the subset: FedAvg of a single model is centralised training.
        trainer = TorchTrainer(replace(task, local_epochs=passes), dataset, [subset], seed=scenario.seed)
        metrics = trainer.train_round(0, np.array([0]))
        rows.append({"samples": size, "epochs": passes, "accuracy": metrics.accuracy, "error": 1.0 - metrics.accuracy})
        if progress:
            print(f"fit-curve: {size:6d} samples, {passes:3d} epochs: error {1.0 - metrics.accuracy:.4f}", file=progress, flush=True)
    return pd.DataFrame(rows)


def fit(frame: pd.DataFrame) -> CurveFit:
    return fit_learning_curve(frame["samples"].to_numpy(), frame["error"].to_numpy())


def zeta_from_run(rounds_csv: Path, policy: str, curve: CurveFit, d_mix: np.ndarray) -> float:
    """zeta of (3)/(4) from an earlier run's accuracy-per-round curve: the global error is
    1 - accuracy, the mean local error is eq. (1) at the devices' data amounts."""
    rounds = pd.read_csv(rounds_csv)
    mine = rounds[rounds["policy"] == policy].sort_values("round")
    if mine.empty:
        known = ", ".join(sorted(rounds["policy"].unique()))
        raise SimflError(f"{rounds_csv}: no rounds of policy {policy!r} (it has: {known})")
    mean_delta = float(np.mean(local_error(d_mix, curve.alpha, curve.beta, curve.gamma)))
    return estimate_zeta(mine["round"].to_numpy() + 1, 1.0 - mine["accuracy"].to_numpy(), mean_delta)
