"""Each link's own LOS state and shadowing under a TR 38.901 model, and its mean gain.

A link (device i, cell k) draws a uniform u and compares it with the LOS probability at
its distance, LOS where u < Pr_LOS(d_2D) (the procedure of TR 38.901 Section 7.6.3.3,
with u held over the LOS-state correlation distance), and a standard normal z, its
shadowing in units of sigma_SF of that state. Both come from keyed draws
(simfl.streams.keyed_uniform: stream `path_loss`, keys (purpose, device, cell, period)),
so they do not depend on who asks first. A moving device renews them as it walks: u in
periods of the LOS-state correlation distance (Table 7.6.3.1-2: UMa 50 m, UMi 50 m,
RMa 60 m), z in periods of the shadow-fading decorrelation distance of its state
(Table 7.5-6: UMa 37 / 50 m, UMi 10 / 13 m, RMa 37 / 120 m, LOS / NLOS), the period being
floor(walked distance / correlation distance). This is a piecewise-constant stand-in for
the exponential correlation of Section 7.4.4: neighbouring periods are independent. So a
link's gain is a function of (device, cell, position, walked distance) alone; it steps
where the walked distance crosses a multiple of a correlation distance, and where the
distance to the cell crosses the LOS radius `los_distance_m(u)` of the period's draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri

from simfl.pathloss.models import Tr38901Model
from simfl.streams import keyed_uniform

STREAM = "path_loss"
# the purpose key of each draw of a link
LOS_DRAW, SHADOWING_LOS_DRAW, SHADOWING_NLOS_DRAW = 0, 1, 2


@dataclass(frozen=True)
class LinkState:
    """The LOS state and shadowing draw z ~ N(0, 1) of links (arrays of one shape)."""

    los: np.ndarray
    z: np.ndarray


def period(walked_m: ArrayLike, correlation_m: ArrayLike) -> np.ndarray:
    """Which period of `correlation_m` metres a device has walked into: floor(walked / correlation)."""
    return np.floor(np.asarray(walked_m, float) / np.asarray(correlation_m, float)).astype(np.int64)


def los_draw(model: Tr38901Model, seed: int, device: ArrayLike, cell: ArrayLike, walked_m: ArrayLike) -> np.ndarray:
    """The uniform u a link compares with Pr_LOS, for the period its device has walked into."""
    return keyed_uniform(seed, STREAM, LOS_DRAW, device, cell, period(walked_m, model.LOS_CORRELATION_M))


@lru_cache(maxsize=1 << 16)
def los_radius_m(model: Tr38901Model, seed: int, device: int, cell: int, los_period: int) -> float:
    """The distance to `cell` within which the link of `device` is in LOS while its
    device walks through LOS-state period `los_period` (`Tr38901Model.los_distance_m` of
    that period's draw). Cached: a handover search asks for the same link's periods again
    at every stretch of the same walk."""
    walked = (los_period + 0.5) * model.LOS_CORRELATION_M  # inside the period, away from float ties at its ends
    return model.los_distance_m(float(los_draw(model, seed, device, cell, walked)))


def link_state(model: Tr38901Model, seed: int, device: ArrayLike, cell: ArrayLike, d2d_m: ArrayLike,
               walked_m: ArrayLike) -> LinkState:
    """LOS where the link's draw u < Pr_LOS(d_2D), and its shadowing draw for that state
    and the shadow-fading period its device has walked into (broadcast arrays)."""
    los = los_draw(model, seed, device, cell, walked_m) < model.los_probability(d2d_m)
    purpose = np.where(los, SHADOWING_LOS_DRAW, SHADOWING_NLOS_DRAW)
    z = ndtri(keyed_uniform(seed, STREAM, purpose, device, cell, period(walked_m, model.sf_correlation_m(los))))
    return LinkState(los=los, z=z)


def gain_db(model: Tr38901Model, carrier_hz: float, d2d_m: ArrayLike, state: LinkState) -> np.ndarray:
    """A link's mean gain in dB, -PL + sigma_SF z, in the given state: continuous in the
    distance except at the model's `jump_distances_m`."""
    d = np.asarray(d2d_m, float)
    return -model.path_loss_db(d, state.los, carrier_hz) + model.sigma_db(d, state.los, carrier_hz) * state.z


__all__ = ["LinkState", "gain_db", "link_state", "los_draw", "los_radius_m", "period"]
