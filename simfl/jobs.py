"""One device's job in one round: what it costs (eqs. (5)-(11)).

The equations themselves are simfl.compute (5, 6) and simfl.radio (7-9); this module is
the one place they are put together, for the planner (`plan.plan_costs`), the optimisers'
solutions and the engine's jobs (simfl.engine.job, which runs them in time) alike:

- `device_costs`: every device's latency and energy of a round from its D_loc + D_gen,
  f, b, P and gain, with the totals of eqs. (10) and (11);
- `spent_j`: what a job spent by the time it stopped, power times the time each phase
  ran (a finished job's equals eqs. (5) and (9)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from simfl.compute import compute_energy_j, compute_latency_s
from simfl.radio import uplink_energy_j, uplink_latency_s, uplink_rate_bps

OK, STRAGGLER, OFFLINE, BATTERY = "ok", "straggler", "offline", "battery"


class RoundTotals:
    """Eqs. (10) and (11) over per-device latencies and energies (a mixin for the
    dataclasses that hold `t_cmp_s`, `t_com_s`, `e_cmp_j` and `e_com_j`)."""

    t_cmp_s: np.ndarray
    t_com_s: np.ndarray
    e_cmp_j: np.ndarray
    e_com_j: np.ndarray

    @property
    def energy_j(self) -> np.ndarray:
        """Per-device energy of one round, eq. (5) + eq. (9)."""
        return self.e_cmp_j + self.e_com_j

    @property
    def round_energy_j(self) -> float:
        """Eq. (10)."""
        return float(self.energy_j.sum())

    @property
    def round_latency_s(self) -> float:
        """Eq. (11)."""
        return float((self.t_cmp_s + self.t_com_s).max())


@dataclass(frozen=True)
class DeviceCosts(RoundTotals):
    """Per-device latency and energy of one round, eqs. (5)-(9), and the uplink rate."""

    t_cmp_s: np.ndarray
    t_com_s: np.ndarray
    e_cmp_j: np.ndarray
    e_com_j: np.ndarray
    rate_bps: np.ndarray


def device_costs(tau: ArrayLike, omega_cycles: float, model_bits: float, eps: ArrayLike, d_mix: ArrayLike,
                 f_hz: ArrayLike, b_hz: ArrayLike, p_w: ArrayLike, gain: ArrayLike,
                 noise_w_per_hz: ArrayLike) -> DeviceCosts:
    """Each device's round: computing D_mix = D_loc + D_gen samples tau times at f
    (eqs. 5-6), then sending S bits on its sub-band b at power P over gain g (eqs. 7-9).
    `tau`: the local epochs, one for all or one per device."""
    rate = uplink_rate_bps(b_hz, gain, p_w, noise_w_per_hz)
    return DeviceCosts(
        t_cmp_s=compute_latency_s(tau, omega_cycles, d_mix, f_hz),
        t_com_s=uplink_latency_s(model_bits, rate),
        e_cmp_j=compute_energy_j(tau, eps, omega_cycles, d_mix, f_hz),
        e_com_j=uplink_energy_j(model_bits, p_w, rate),
        rate_bps=rate,
    )


def computing_power_w(eps: ArrayLike, f_hz: ArrayLike) -> np.ndarray:
    """Power drawn while computing, eps f^3: eq. (5) over eq. (6)."""
    return np.asarray(eps, float) * np.asarray(f_hz, float) ** 3


def spent_j(eps: float, f_hz: float, p_w: float, compute_s: float, upload_s: float) -> tuple[float, float]:
    """Compute and upload energy of a job that computed for `compute_s` and sent for
    `upload_s` seconds: power times time, which for a job that finishes equals eqs. (5)
    and (9)."""
    return float(eps * f_hz ** 3 * compute_s), float(p_w * upload_s)
