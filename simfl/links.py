"""Every device's link to every base station, not only to the one serving it: the mean
gain (path loss with each cell's own intercept and slope, and the device's one shadowing
draw z times each cell's sigma), and attachment to the strongest of them.

Arrays are (I, n_cells): 10,000 devices and 19 cells make 1.5 MB of float64 per array
(3 MB more, briefly, for the coordinate differences), so the whole matrix is kept.
"""

from __future__ import annotations

import numpy as np

from simfl.geometry import MIN_DISTANCE_M, site_distances_m
from simfl.radio import mean_gain, mean_gain_db

# A cell other than the nearest serves a device only if its mean gain is stronger by more
# than float rounding. Cells with the same path-loss parameters are then served by the
# nearest, bit for bit as the nearest-base-station rule did: mathematically the nearest is
# never the weaker, but log10 and pow are not guaranteed monotone to the last bit, so a
# strict comparison could let a farther cell win by one ulp. 1e-9 relative is 4e-9 dB,
# a million times below any physical difference and ~1e4 times above the rounding (~1e-13).
TIE_RELATIVE = 1e-9


def _columns(path_loss_params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intercept, slope and shadowing sigma of each cell, as (1, n_cells) rows."""
    params = np.asarray(path_loss_params, float)
    return params[None, :, 0], params[None, :, 1], params[None, :, 2]


def link_distances_m(position_m: np.ndarray, bs_position_m: np.ndarray) -> np.ndarray:
    """(I, n_cells) distance of each device to each base station, floored at 1 m as the
    serving distance is (simfl.geometry.MIN_DISTANCE_M)."""
    return np.maximum(site_distances_m(np.asarray(position_m, float), np.asarray(bs_position_m, float)), MIN_DISTANCE_M)


def link_gains(position_m: np.ndarray, bs_position_m: np.ndarray, path_loss_params: np.ndarray,
               shadowing_z: np.ndarray) -> np.ndarray:
    """(I, n_cells) mean linear gain of every device to every base station: each cell's
    path loss PL = intercept + slope log10(d_km), and the device's shadowing draw z (the
    same on every link) times the cell's sigma (simfl.radio.mean_gain, elementwise, so
    the serving link's entry is the serving gain bit for bit)."""
    intercept, slope, std = _columns(path_loss_params)
    z = np.asarray(shadowing_z, float)[:, None]
    return mean_gain(link_distances_m(position_m, bs_position_m), intercept, slope, z, std)


def link_gains_db(position_m: np.ndarray, bs_position_m: np.ndarray, path_loss_params: np.ndarray,
                  shadowing_z: np.ndarray) -> np.ndarray:
    """(I, n_cells) the same mean gains in dB, -PL + z sigma: what handover compares."""
    intercept, slope, std = _columns(path_loss_params)
    z = np.asarray(shadowing_z, float)[:, None]
    return mean_gain_db(link_distances_m(position_m, bs_position_m), intercept, slope, z, std)


def strongest_site(gain: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    """(I,) index of each device's strongest link (mean gain, no fast fading) in the
    (I, n_cells) `gain`; the nearest (smallest `distance_m`, the first on a tie) unless
    another is stronger by more than TIE_RELATIVE."""
    rows = np.arange(len(gain))
    nearest = np.argmin(distance_m, axis=1)
    strongest = np.argmax(gain, axis=1)
    wins = gain[rows, strongest] > gain[rows, nearest] * (1.0 + TIE_RELATIVE)
    return np.where(wins, strongest, nearest)


__all__ = ["TIE_RELATIVE", "link_distances_m", "link_gains", "link_gains_db", "strongest_site"]
