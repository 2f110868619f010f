"""Non-IID partitions of the private training data over devices (Section V-A2).

Each device draws class proportions p_i ~ Dir(z 1_C); a larger z gives a more even
(less non-IID) split. Device i then receives exactly ``samples_per_device`` samples,
per-class counts from p_i by largest-remainder rounding, by one of two rules:

- while the private pool holds N x samples_per_device images (every scenario the paper
  and the shipped files describe), without replacement from per-class pools shared by
  all devices, so no sample sits on two devices (`dirichlet_partition`, one sequential
  draw from the "partition" stream);
- beyond that (a million phones on 50,000 images), each device draws its own images
  from the class pools: with replacement across devices (an image may sit on several),
  never twice on one device (`dirichlet_draws`). Its draws are counter-based, keyed by
  (seed, device) on the "local_images" stream, so device i's images are the same
  whatever the number of devices and whichever devices are asked, and a million
  devices need no sequential state.

`local_data` picks the rule. Both give a `LocalData`: every device's indices in one
compressed-row pair of arrays, about 4 bytes an image and 8 a device.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from simfl.errors import ScenarioError
from simfl.streams import keyed_uniform

# The keyed draws' purposes: the first key of every `keyed_uniform` call of `dirichlet_draws`.
_GAMMA_NORMAL, _GAMMA_ACCEPT, _GAMMA_BOOST, _PICK = 0, 1, 2, 3
# Devices drawn at a time: bounds the temporary arrays (a few hundred bytes per device
# and class) whatever the number of devices; the draws do not depend on it.
DRAW_CHUNK = 1 << 16


@dataclass(frozen=True, eq=False)
class LocalData:
    """Every device's local samples (D_loc) as indices, in one compressed-row pair:
    device i holds ``indices[offsets[i]:offsets[i + 1]]``.

    A list of N numpy arrays costs about 100 bytes of object per device besides the
    indices; this costs 8 bytes per device (its offset) and 4 per index (int32, int64
    only where an index does not fit), so a million phones of 5 images take 28 MB.
    ``local[i]`` is a read-only view; iterating gives every device's in turn.
    """

    offsets: np.ndarray  # (N + 1,) int64, non-decreasing, from 0
    indices: np.ndarray  # (offsets[-1],) int32 or int64

    def __post_init__(self) -> None:
        self.offsets.flags.writeable = False
        self.indices.flags.writeable = False

    @classmethod
    def of(cls, parts: Sequence[np.ndarray] | LocalData) -> LocalData:
        """The compact form of one index array per device (a `LocalData` as it is)."""
        if isinstance(parts, LocalData):
            return parts
        arrays = [np.asarray(part).reshape(-1) for part in parts]
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in arrays], out=offsets[1:])
        flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls(offsets, _compact(flat.astype(np.int64, copy=False)))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, device: int) -> np.ndarray:
        if not -len(self) <= device < len(self):
            raise IndexError(f"device {device} of {len(self)}")
        device %= len(self)
        return self.indices[self.offsets[device]: self.offsets[device + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def sizes(self) -> np.ndarray:
        """(N,) int64: each device's number of samples."""
        return np.diff(self.offsets)

    def remap(self, table: np.ndarray) -> LocalData:
        """The same partition with every index i replaced by ``table[i]`` (positions in
        the private split as indices into the training split)."""
        return LocalData(self.offsets, _compact(np.asarray(table)[self.indices]))

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.indices.nbytes)


def _compact(indices: np.ndarray) -> np.ndarray:
    """int32 where every index fits, else int64."""
    return indices.astype(np.int32) if not indices.size or indices.max() < 2**31 else indices.astype(np.int64)


def local_data(labels: np.ndarray, n_devices: int, samples_per_device: int, z: float, rng: np.random.Generator,
               seed: int) -> LocalData:
    """Every device's local samples, positions in `labels` (the private split): without
    replacement (`dirichlet_partition`, drawing from `rng`) while the pool holds
    ``n_devices * samples_per_device`` samples, else with replacement across devices
    (`dirichlet_draws`, keyed by `seed`; `rng` is not drawn from)."""
    if n_devices * samples_per_device <= np.asarray(labels).size:
        return LocalData.of(dirichlet_partition(labels, n_devices, samples_per_device, z, rng))
    return dirichlet_draws(labels, n_devices, samples_per_device, z, seed)


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
        warnings.warn(f"dirichlet_partition: some class pools ran out (z={z}); samples moved to other "
                      f"classes to keep {samples_per_device} per device ({_moved(moved)})", stacklevel=2)
    return parts


def _moved(moved: list[tuple[int, int]]) -> str:
    shown = 10  # a city's warning names a few devices, not hundreds
    detail = ", ".join(f"device {i}: {k}" for i, k in moved[:shown])
    if len(moved) > shown:
        detail += f", ... {len(moved)} devices, {sum(k for _, k in moved)} samples in all"
    return detail


def dirichlet_draws(labels: np.ndarray, devices: int | np.ndarray, samples_per_device: int, z: float,
                    seed: int) -> LocalData:
    """Each device's local samples drawn on its own from the class pools by its Dirichlet
    mixture: with replacement across devices, never one sample twice on a device.

    Parameters
    ----------
    labels
        (P,) class of every sample of the pool (the private split).
    devices
        The number of devices N (devices 0..N-1), or which devices, in this order.
    samples_per_device
        S, every device's number of samples; at most P.
    z
        Dirichlet concentration, the same for every class.
    seed
        The scenario seed: the draws are keyed on its "local_images" stream.

    Returns
    -------
    LocalData of positions in `labels`, each device's in increasing order.

    Notes
    -----
    The rule, for device i (every random number a `simfl.streams.keyed_uniform` of
    (seed, "local_images") and a key that holds i, so nothing but (seed, i) decides i's
    images):

    1. Proportions p_i ~ Dir(z 1_C) (`keyed_dirichlet`).
    2. Class counts: largest-remainder rounding of S p_i (`largest_remainder`), then
       capped by each class's pool size with the excess spread over the classes with
       room in proportion to p_i, as `dirichlet_partition` does when a pool runs dry
       (caps bite only where S exceeds a class's pool; a ``UserWarning`` names them).
    3. The k_c samples of class c: a uniformly random k_c-subset of the class's n_c
       samples by Floyd's algorithm (Bentley and Floyd, "A sample of brilliance",
       CACM 1987): for j = n_c - k_c, ..., n_c - 1, t = floor(u (j + 1)) with u the
       uniform of key (i, c, step), and j itself where t is taken already. So no
       sample twice on a device, while devices draw independently of each other.

    Its cost is O(S^2) per device at worst (Floyd's membership check), vectorised over
    devices in chunks of `DRAW_CHUNK`.
    """
    labels = np.asarray(labels)
    if samples_per_device > labels.size:
        raise ScenarioError(f"task.samples_per_device: a device holds {samples_per_device} distinct samples, "
                            f"but the private split holds only {labels.size}; lower task.samples_per_device "
                            f"or task.public_samples")
    ids = np.arange(int(devices), dtype=np.int64) if np.ndim(devices) == 0 else np.asarray(devices, dtype=np.int64)
    n_classes = int(labels.max()) + 1 if labels.size else 0
    pool = np.bincount(labels, minlength=n_classes).astype(np.int64)
    by_class = np.argsort(labels, kind="stable")  # the class pools one after another, each in index order
    pool_start = np.concatenate([[0], np.cumsum(pool)[:-1]]).astype(np.int64)
    index_type = np.int32 if labels.size <= 2**31 else np.int64
    parts, moved = [], []
    for lo in range(0, len(ids), DRAW_CHUNK):
        chunk = ids[lo: lo + DRAW_CHUNK]
        proportions = keyed_dirichlet(seed, chunk, n_classes, z)
        want = largest_counts(proportions, samples_per_device)
        counts = _cap(want, proportions, pool)
        for r in np.flatnonzero((counts != want).any(axis=1)):
            moved.append((int(chunk[r]), int(np.maximum(want[r] - counts[r], 0).sum())))
        picks, classes = _floyd(seed, chunk, counts, pool)
        rows = np.repeat(np.arange(len(chunk), dtype=np.int64), samples_per_device)
        chosen = by_class[pool_start[classes] + picks]
        # each device's samples in increasing order, as `dirichlet_partition` gives them
        parts.append((np.sort(rows * labels.size + chosen) - rows * labels.size).astype(index_type))
    if moved:
        warnings.warn(f"dirichlet_draws: some devices want more samples of a class than its pool holds "
                      f"(z={z}); samples moved to other classes to keep {samples_per_device} per device "
                      f"({_moved(moved)})", stacklevel=2)
    offsets = np.arange(len(ids) + 1, dtype=np.int64) * samples_per_device
    return LocalData(offsets, np.concatenate(parts) if parts else np.zeros(0, dtype=index_type))


def keyed_dirichlet(seed: int, devices: np.ndarray, n_classes: int, z: float) -> np.ndarray:
    """(len(devices), C) proportions p_i ~ Dir(z 1_C), each row from (seed, device) alone.

    Gamma(z) variates normalised: G(z) = G(z + 1) U^(1/z) (the boost that makes any
    z > 0 a shape >= 1), G(z + 1) by Marsaglia and Tsang's method ("A simple method for
    generating gamma variables", ACM TOMS 2000) with a normal from the inverse normal
    CDF of a keyed uniform; a rejected (device, class) tries again with the next
    attempt's key. In logarithms, so that a tiny z (whose G(z) underflow to 0) still
    gives proportions summing to 1.
    """
    devices = np.asarray(devices, dtype=np.int64)
    shape = (len(devices), n_classes)
    dev = np.broadcast_to(devices[:, None], shape).ravel()
    cls = np.broadcast_to(np.arange(n_classes, dtype=np.int64)[None, :], shape).ravel()
    d = z + 1.0 - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    log_g = np.empty(dev.size)
    pending = np.arange(dev.size)
    attempt = 0
    while pending.size:
        x = ndtri(keyed_uniform(seed, "local_images", _GAMMA_NORMAL, dev[pending], cls[pending], attempt))
        u = keyed_uniform(seed, "local_images", _GAMMA_ACCEPT, dev[pending], cls[pending], attempt)
        v = (1.0 + c * x) ** 3
        positive = v > 0
        log_v = np.log(np.where(positive, v, 1.0))
        ok = positive & (np.log(u) < 0.5 * x * x + d - d * v + d * log_v)
        log_g[pending[ok]] = np.log(d) + log_v[ok]
        pending = pending[~ok]
        attempt += 1
    log_g += np.log(keyed_uniform(seed, "local_images", _GAMMA_BOOST, dev, cls)) / z
    log_g = log_g.reshape(shape)
    g = np.exp(log_g - log_g.max(axis=1, keepdims=True))
    return g / g.sum(axis=1, keepdims=True)


def largest_counts(proportions: np.ndarray, total: int) -> np.ndarray:
    """`largest_remainder` of every row of `proportions`, vectorised (the same integers)."""
    p = np.asarray(proportions, dtype=float)
    raw = p / p.sum(axis=1, keepdims=True) * total
    base = np.floor(raw).astype(np.int64)
    short = total - base.sum(axis=1)
    order = np.argsort(-(raw - base), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(p.shape[1])[None, :].repeat(len(p), axis=0), axis=1)
    return base + (rank < short[:, None])


def mixture_counts(proportions: np.ndarray, total: int, pool: np.ndarray) -> np.ndarray:
    """(n, C) class counts of devices drawing `total` samples each with replacement across
    devices: `largest_counts`, capped by the class pools' sizes `pool` (the excess
    spread over classes with room in proportion to the row, as `_fit_to_supply` does)."""
    return _cap(largest_counts(proportions, total), proportions, pool)


def _cap(want: np.ndarray, proportions: np.ndarray, pool: np.ndarray) -> np.ndarray:
    counts = want.copy()
    for r in np.flatnonzero((want > pool).any(axis=1)):
        counts[r] = _fit_to_supply(want[r], proportions[r], pool)
    return counts


def _floyd(seed: int, devices: np.ndarray, counts: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions within the class pools (and their classes) of every device's samples,
    laid out device by device, class by class: Floyd's algorithm (see `dirichlet_draws`)
    for all (device, class) pairs at once, one step at a time."""
    rows, classes = np.nonzero(counts)
    k = counts[rows, classes]
    start = np.concatenate([[0], np.cumsum(k)[:-1]]).astype(np.int64)
    picks = np.empty(int(k.sum()), dtype=np.int64)
    by_k = np.argsort(-k, kind="stable")  # the pairs still drawing at step m: a prefix
    k_sorted = k[by_k]
    n = pool[classes]
    for m in range(int(k.max()) if k.size else 0):
        active = by_k[: int(np.searchsorted(-k_sorted, -m, side="left"))]
        j = n[active] - k[active] + m
        u = keyed_uniform(seed, "local_images", _PICK, devices[rows[active]], classes[active], m)
        t = np.minimum(np.floor(u * (j + 1)).astype(np.int64), j)
        taken = picks[start[active, None] + np.arange(m)[None, :]]
        picks[start[active] + m] = np.where((taken == t[:, None]).any(axis=1), j, t)
    return picks, np.repeat(classes, k)


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


def class_counts(indices: Sequence[np.ndarray] | LocalData, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(I, C) number of samples of each class on each device (d_loc per class)."""
    local = LocalData.of(indices)
    rows = np.repeat(np.arange(len(local), dtype=np.int64), local.sizes())
    flat = rows * n_classes + np.asarray(labels)[local.indices]
    return np.bincount(flat, minlength=len(local) * n_classes).astype(np.int64).reshape(len(local), n_classes)


__all__ = ["DRAW_CHUNK", "LocalData", "class_counts", "dirichlet_draws", "dirichlet_partition", "keyed_dirichlet",
           "largest_counts", "largest_remainder", "local_data", "mixture_counts"]
