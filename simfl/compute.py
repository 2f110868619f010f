"""Device-side computation model, Section III-C1 of the paper."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def compute_energy_j(tau: ArrayLike, eps: ArrayLike, omega_cycles: float, d_mix: ArrayLike, f_hz: ArrayLike) -> np.ndarray:
    """Energy of one round of local training, eq. (5): E = tau eps omega (D_loc + D_gen) f^2, in J."""
    return np.asarray(tau, float) * np.asarray(eps, float) * omega_cycles * np.asarray(d_mix, float) * np.asarray(f_hz, float) ** 2


def compute_latency_s(tau: ArrayLike, omega_cycles: float, d_mix: ArrayLike, f_hz: ArrayLike) -> np.ndarray:
    """Latency of one round of local training, eq. (6): T = tau omega (D_loc + D_gen) / f, in s."""
    return np.asarray(tau, float) * omega_cycles * np.asarray(d_mix, float) / np.asarray(f_hz, float)


def frequency_for_latency_hz(tau: float, omega_cycles: float, d_mix: ArrayLike, t_cmp_s: ArrayLike) -> np.ndarray:
    """The CPU frequency that finishes local training in exactly t_cmp_s, eq. (6) solved for f."""
    return tau * omega_cycles * np.asarray(d_mix, float) / np.asarray(t_cmp_s, float)
