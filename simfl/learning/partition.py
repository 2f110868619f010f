"""Non-IID partitions of the private training data over devices (Section V-A2).

Each device draws class proportions p_i ~ Dir(z 1_C); a larger z gives a more even
(less non-IID) split. Device i then receives exactly ``samples_per_device`` samples,
per-class counts from p_i by largest-remainder rounding, taken without replacement
from per-class pools shared by all devices, so no sample sits on two devices.
"""

from __future__ import annotations

import warnings

import numpy as np

from simfl.errors import ScenarioError


def dirichlet_partition(labels: np.ndarray, n_devices: int, samples_per_device: int, z: float,
                        rng: np.random.Generator) -> list[np.ndarray]:
    """Split sample indices over devices with Dirichlet(z) class proportions.

    Parameters
    ----------
    labels
        (N,) class of every sample in the pool (the private split).
    n_devices, samples_per_device
        Every device gets exactly ``samples_per_device`` distinct samples.
    z
        Dirichlet concentration, the same for every class.
    rng
        The "partition" stream. Draw order (documented so it can be reproduced): first
        all proportions ``rng.dirichlet(z * ones(C), size=n_devices)``, then one
        ``rng.permutation`` per class pool, class 0 first.

    Returns
    -------
    list of (samples_per_device,) int64 arrays of positions in ``labels``, one per device.

    Notes
    -----
    Devices take their samples in index order. When a class pool runs dry (possible at
    small z, where one device may want most of a class), the device's shortfall is moved
    to the classes that still have samples, in proportion to its own p_i over them
    (in proportion to what is left if p_i puts no mass there), so its size stays exact
    and its skew is kept as far as the data allow. A ``UserWarning`` says how many
    samples of which devices were moved.
    """
    labels = np.asarray(labels)
    n_classes = int(labels.max()) + 1 if labels.size else 0
    needed = n_devices * samples_per_device
    if needed > labels.size:
        raise ScenarioError(f"task: {n_devices} devices x samples_per_device {samples_per_device} = {needed} "
                            f"samples, but the private split holds only {labels.size}; lower "
                            f"task.samples_per_device or task.public_samples")
    proportions = rng.dirichlet(np.full(n_classes, float(z)), size=n_devices)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in range(n_classes)]
    taken = np.zeros(n_classes, dtype=np.int64)  # how far into each pool we are
    moved: list[tuple[int, int]] = []
    parts = []
    for i in range(n_devices):
        left = np.array([len(pools[c]) for c in range(n_classes)]) - taken
        want = largest_remainder(proportions[i], samples_per_device)
        counts = _fit_to_supply(want, proportions[i], left)
        if (counts != want).any():
            moved.append((i, int(np.maximum(want - counts, 0).sum())))
        chosen = [pools[c][taken[c]: taken[c] + counts[c]] for c in range(n_classes)]
        taken += counts
        parts.append(np.sort(np.concatenate(chosen)).astype(np.int64))
    if moved:
        shown = 10  # a city's warning names a few devices, not hundreds
        detail = ", ".join(f"device {i}: {k}" for i, k in moved[:shown])
        if len(moved) > shown:
            detail += f", ... {len(moved)} devices, {sum(k for _, k in moved)} samples in all"
        warnings.warn(f"dirichlet_partition: some class pools ran out (z={z}); samples moved to other "
                      f"classes to keep {samples_per_device} per device ({detail})", stacklevel=2)
    return parts


def largest_remainder(proportions: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers proportional to `proportions` summing exactly to `total`
    (Hamilton's method; ties go to the lower index)."""
    p = np.asarray(proportions, dtype=float)
    raw = p / p.sum() * total
    base = np.floor(raw).astype(np.int64)
    short = total - int(base.sum())
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:short]] += 1
    return base


def _fit_to_supply(want: np.ndarray, p: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Cap `want` by `left` and re-spread the excess over classes with room (see Notes above)."""
    counts = np.minimum(want, left)
    short = int(want.sum() - counts.sum())
    while short > 0:
        room = left - counts
        open_ = room > 0
        weight = np.where(open_, p, 0.0)
        if weight.sum() <= 0:
            weight = room.astype(float)
        extra = np.minimum(largest_remainder(weight, short), room)
        if extra.sum() == 0:  # rounding put everything on full classes: take one from the roomiest
            extra[np.argmax(room)] = 1
        counts += extra
        short -= int(extra.sum())
    return counts


def class_counts(indices: list[np.ndarray], labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(I, C) number of samples of each class on each device (d_loc per class)."""
    labels = np.asarray(labels)
    return np.stack([np.bincount(labels[idx], minlength=n_classes) for idx in indices]).astype(np.int64) \
        if indices else np.zeros((0, n_classes), dtype=np.int64)


__all__ = ["class_counts", "dirichlet_partition", "largest_remainder"]
