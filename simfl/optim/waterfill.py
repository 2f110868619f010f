"""Category-wise synthesis, Problem (P8) and Theorem 3: spread each device's synthetic
amount over the classes so the mixed data's entropy (45) is as high as it can be."""

from __future__ import annotations

import numpy as np

from simfl.optim.roots import bracketed_root


def data_entropy_bits(d_loc_per_class: np.ndarray, d_gen_per_class: np.ndarray) -> np.ndarray:
    """Entropy of each device's mixed data over the classes, eq. (45), in bits."""
    counts = np.asarray(d_loc_per_class, float) + np.asarray(d_gen_per_class, float)
    p = counts / counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=-1)


def water_level(d_loc_per_class: np.ndarray, d_gen: np.ndarray) -> np.ndarray:
    """pi_i of eq. (47): the level with sum_c clip(pi - d_loc_c, 0, D_gen) = D_gen, by a
    bracketed bisection over all devices at once (the sum is increasing in pi)."""
    d = np.asarray(d_loc_per_class, float)
    total = np.asarray(d_gen, float)

    def excess(level: np.ndarray) -> np.ndarray:
        return np.clip(level[:, None] - d, 0.0, total[:, None]).sum(axis=1) - total

    lo = d.min(axis=1)  # nothing added: sum = 0 <= D_gen
    hi = d.min(axis=1) + total  # the emptiest class alone already takes D_gen
    return bracketed_root(excess, lo, hi, xtol=1e-9, ftol=1e-9 * np.maximum(total, 1.0))


def waterfill(d_loc_per_class: np.ndarray, d_gen: np.ndarray) -> np.ndarray:
    """Theorem 3 in whole samples: (I, C) synthetic counts with d_c = clip(pi - d_loc_c, 0,
    D_gen) (47) rounded by largest remainder so each row sums exactly to D_gen.

    Ties among remainders (every filled class has the same fractional part, frac(pi))
    go to the class with fewer local samples, then the lower class index, so the result is
    deterministic; any choice among tied classes gives the same entropy.
    """
    d = np.asarray(d_loc_per_class, dtype=np.int64)
    total = np.asarray(d_gen, dtype=np.int64)
    if (total < 0).any():
        i = int(np.flatnonzero(total < 0)[0])
        raise ValueError(f"device {i}: negative synthetic amount {total[i]}")
    level = water_level(d, total)
    share = np.clip(level[:, None] - d, 0.0, total[:, None].astype(float))
    whole = np.floor(share + 1e-9).astype(np.int64)
    whole = np.minimum(whole, total[:, None])
    # remainders rounded to 1e-6 so float noise cannot break the ties the maths makes exact
    remainder = np.round(share - whole, 6)
    missing = np.maximum(total - whole.sum(axis=1), 0)
    n_classes = d.shape[1]
    # rank classes per device: larger remainder first, then fewer local samples, then index
    keys = np.stack([-remainder, d.astype(float), np.broadcast_to(np.arange(n_classes, dtype=float), d.shape)], axis=0)
    order = np.lexsort(keys[::-1], axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_classes)[None, :].repeat(len(d), 0), axis=1)
    whole += (rank < missing[:, None]).astype(np.int64)
    return whole
