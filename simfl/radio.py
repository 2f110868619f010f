"""Wireless uplink model, Section III-C2 of the paper, plus the channel (path loss,
shadowing, fading) that produces the gains g_i."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def path_loss_db(distance_m: ArrayLike, intercept_db: ArrayLike = 128.1, slope_db: ArrayLike = 37.6) -> np.ndarray:
    """Path loss PL = 128.1 + 37.6 log10(R_km) dB (Section V-A1, after Yang et al. [31])."""
    return np.asarray(intercept_db, float) + np.asarray(slope_db, float) * np.log10(np.asarray(distance_m, float) / 1000.0)


def gain_from_path_loss(pl_db: ArrayLike) -> np.ndarray:
    """Linear channel power gain g = 10^(-PL/10)."""
    return 10.0 ** (-np.asarray(pl_db, float) / 10.0)


def mean_gain(distance_m: ArrayLike, intercept_db: ArrayLike, slope_db: ArrayLike, shadowing_z: ArrayLike,
              shadowing_std_db: ArrayLike) -> np.ndarray:
    """A link's mean channel gain: path loss and log-normal shadowing (a device's standard
    normal draw z times the cell's sigma in dB), g = 10^(-PL/10) 10^(z sigma / 10)."""
    return gain_from_path_loss(path_loss_db(distance_m, intercept_db, slope_db)) * 10.0 ** (
        np.asarray(shadowing_z, float) * np.asarray(shadowing_std_db, float) / 10.0)


def mean_gain_db(distance_m: ArrayLike, intercept_db: ArrayLike, slope_db: ArrayLike, shadowing_z: ArrayLike,
                 shadowing_std_db: ArrayLike) -> np.ndarray:
    """The same mean gain in dB, -PL + z sigma: 10 log10 of `mean_gain`, without the round trip."""
    return -path_loss_db(distance_m, intercept_db, slope_db) + np.asarray(shadowing_z, float) * np.asarray(
        shadowing_std_db, float)


def uplink_rate_bps(b_hz: ArrayLike, gain: ArrayLike, p_w: ArrayLike, n0_w_per_hz: ArrayLike) -> np.ndarray:
    """FDMA Shannon rate, eq. (7): r = b log2(1 + g P / (N0 b)), in bit/s."""
    b = np.asarray(b_hz, float)
    return b * np.log2(1.0 + np.asarray(gain, float) * np.asarray(p_w, float) / (np.asarray(n0_w_per_hz, float) * b))


def uplink_latency_s(model_bits: float, rate_bps: ArrayLike) -> np.ndarray:
    """Latency of one model upload, eq. (8): T = S / r, in s."""
    return model_bits / np.asarray(rate_bps, float)


def uplink_energy_j(model_bits: float, p_w: ArrayLike, rate_bps: ArrayLike) -> np.ndarray:
    """Energy of one model upload, eq. (9): E = P S / r, in J."""
    return np.asarray(p_w, float) * model_bits / np.asarray(rate_bps, float)


def power_for_latency_w(b_hz: ArrayLike, gain: ArrayLike, n0_w_per_hz: ArrayLike, model_bits: float, t_com_s: ArrayLike) -> np.ndarray:
    """The transmit power that uploads S bits in exactly t_com_s on band b, eq. (30):
    P = (N0 b / g) (2^(S / (b T)) - 1)."""
    b = np.asarray(b_hz, float)
    return np.asarray(n0_w_per_hz, float) * b / np.asarray(gain, float) * np.expm1(
        np.log(2.0) * model_bits / (b * np.asarray(t_com_s, float))
    )


def rayleigh_power_gain(rng: np.random.Generator, size: int) -> np.ndarray:
    """Small-scale Rayleigh fading: |h|^2 ~ Exp(1), so the mean gain is unchanged."""
    return rng.exponential(1.0, size=size)


def rayleigh_complex_gain(rng: np.random.Generator, size: int) -> np.ndarray:
    """Rayleigh fading's complex gain h ~ CN(0, 1): real and imaginary parts N(0, 1/2), so
    |h|^2 ~ Exp(1)."""
    return (rng.normal(size=size) + 1j * rng.normal(size=size)) / math.sqrt(2.0)


SPEED_OF_LIGHT_MPS = 299_792_458.0
DEFAULT_CARRIER_HZ = 2e9  # a mid-band LTE/5G carrier: the default of a cell's carrier_hz


def doppler_hz(speed_mps: ArrayLike, carrier_hz: ArrayLike) -> np.ndarray:
    """The maximum Doppler shift of a device moving at `speed_mps` on carrier f_c:
    f_d = v f_c / c (Rappaport, Wireless Communications, 2nd ed., eq. 5.2 at angle 0)."""
    return np.asarray(speed_mps, float) * np.asarray(carrier_hz, float) / SPEED_OF_LIGHT_MPS


def coherence_time_s(f_d_hz: ArrayLike) -> np.ndarray:
    """Coherence time T_c = 0.423 / f_d (Rappaport, Wireless Communications, 2nd ed.,
    eq. 5.40c: the geometric mean of 9 / (16 pi f_d) and 1 / f_d); inf without Doppler."""
    f = np.asarray(f_d_hz, float)
    with np.errstate(divide="ignore"):
        return np.where(f > 0, 0.423 / f, np.inf)
