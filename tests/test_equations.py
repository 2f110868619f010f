"""Each equation of Section III-C against a number computed by hand.

Reference link: a device 100 m from its base station, P = 23 dBm, b = 1 MHz,
N0 = -174 dBm/Hz, S = 32 x 3,491,530 bits (VGG-9):
  PL = 128.1 + 37.6 log10(0.1) = 128.1 - 37.6 = 90.5 dB
  g = 10^-9.05 = 8.9125e-10
  N0 = 10^(-20.4) = 3.98107e-21 W/Hz, P = 10^-0.7 = 0.199526 W
  SNR = g P / (N0 b) = 1.77828e-10 / 3.98107e-15 = 44,668.4
  r = 1e6 log2(44,669.4) = 15.447 Mbit/s
  T = S / r = 111,728,960 / 15,446,998 = 7.2331 s,  E = P T = 1.44318 J
"""

import math

import numpy as np
import pytest

from simfl.compute import compute_energy_j, compute_latency_s, frequency_for_latency_hz
from simfl.radio import (gain_from_path_loss, mean_gain, path_loss_db, power_for_latency_w, uplink_energy_j,
                         uplink_latency_s, uplink_rate_bps)
from simfl.units import dbm_to_w

S_VGG9 = 32 * 3_491_530
N0 = 3.981071705534986e-21
P23 = 0.19952623149688797
G100 = 8.912509381337441e-10


def test_dbm_conversions():
    assert dbm_to_w(30) == pytest.approx(1.0)
    assert dbm_to_w(23) == pytest.approx(0.199526, rel=1e-5)
    assert dbm_to_w(-174) == pytest.approx(3.98107e-21, rel=1e-5)
    assert dbm_to_w(0) == pytest.approx(0.001)


def test_mean_gain_is_path_loss_with_the_devices_shadowing_draw():
    # 100 m: PL = 90.5 dB; a draw z = 1 in a cell of sigma = 8 dB adds 8 dB of gain: 82.5 dB of loss
    assert mean_gain(100.0, 128.1, 37.6, 1.0, 8.0) == pytest.approx(10 ** -8.25, rel=1e-12)
    # per-device cells: each device its own intercept, slope, draw and sigma
    got = mean_gain([100.0, 1000.0], [128.1, 120.0], [37.6, 30.0], [0.0, -0.5], [4.0, 6.0])
    assert got == pytest.approx([10 ** -9.05, 10 ** (-(120.0 + 3.0) / 10)], rel=1e-12)


def test_path_loss_128_1_plus_37_6_log10_km():
    assert path_loss_db(100.0) == pytest.approx(90.5)
    assert path_loss_db(1000.0) == pytest.approx(128.1)
    assert path_loss_db(400.0) == pytest.approx(128.1 + 37.6 * math.log10(0.4))
    assert gain_from_path_loss(90.5) == pytest.approx(8.9125e-10, rel=1e-4)


def test_eq7_fdma_shannon_rate():
    r = uplink_rate_bps(1e6, G100, P23, N0)
    assert r == pytest.approx(15.447e6, rel=1e-4)


def test_eq8_uplink_latency():
    assert uplink_latency_s(S_VGG9, 15_446_997.94) == pytest.approx(7.2331, rel=1e-4)


def test_eq9_uplink_energy():
    assert uplink_energy_j(S_VGG9, P23, 15_446_997.94) == pytest.approx(1.44318, rel=1e-4)


def test_eq30_power_for_latency_inverts_eq7_and_eq8():
    # the power that sends S bits in 7.2331 s on 1 MHz is the 23 dBm we started from
    p = power_for_latency_w(1e6, G100, N0, S_VGG9, 7.233053337793004)
    assert p == pytest.approx(P23, rel=1e-9)


def test_eq5_compute_energy():
    # tau=1, eps=5e-27, omega=5e6, D=1250, f=1.5 GHz: 5e-27 * 5e6 * 1250 * 2.25e18 = 70.3125 J
    assert compute_energy_j(1, 5e-27, 5e6, 1250, 1.5e9) == pytest.approx(70.3125)


def test_eq6_compute_latency_and_its_inverse():
    # 5e6 * 1250 / 1.5e9 = 4.1667 s; two local epochs double it
    assert compute_latency_s(1, 5e6, 1250, 1.5e9) == pytest.approx(4.1666667)
    assert compute_latency_s(2, 5e6, 1250, 1.5e9) == pytest.approx(8.3333333)
    assert frequency_for_latency_hz(1, 5e6, 1250, 4.1666667) == pytest.approx(1.5e9)


def test_equations_are_vectorised_over_devices():
    b = np.array([1e6, 2e6])
    r = uplink_rate_bps(b, np.array([G100, G100]), np.array([P23, P23]), N0)
    assert r.shape == (2,)
    assert r[1] > r[0]
