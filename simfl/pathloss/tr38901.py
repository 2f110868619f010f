"""Path loss and LOS probability of 3GPP TR 38.901 V17.0.0, Section 7.4: Table 7.4.1-1
(path loss, shadow-fading standard deviation) and Table 7.4.2-1 (LOS probability) for
UMa, UMi-Street Canyon and RMa, as pure functions of the 2D distance, the heights and the
carrier. Distances and heights in metres, carriers in Hz: the table writes f_c in GHz in
its formulas (converted here) and in Hz in the breakpoint distances (Notes 1 and 5).

The functions evaluate the formulas wherever they are asked; where the table holds
(10 m <= d_2D <= 5 km or 10 km, the heights and carriers of its notes) is the callers'
business (simfl.pathloss.models floors d_2D at 10 m; the scenario checks the rest on load).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from simfl.radio import SPEED_OF_LIGHT_MPS

# Table 7.4.1-1: the base-station heights the UMa and UMi formulas are written for
UMA_H_BS_M = 25.0
UMI_H_BS_M = 10.0
# Note 1: the effective environment height. For UMi it is 1 m; for UMa it is 1 m with
# probability 1 / (1 + C(d_2D, h_UT)), and C = 0 for h_UT < 13 m, so 1 m for terminals up
# to 13 m (simfl.pathloss.models.UMa restricts h_UT to them rather than drawing h_E).
H_E_M = 1.0

# Table 7.4.1-1, shadow fading std sigma_SF in dB
UMA_SIGMA_LOS_DB, UMA_SIGMA_NLOS_DB = 4.0, 6.0
UMI_SIGMA_LOS_DB, UMI_SIGMA_NLOS_DB = 4.0, 7.82
RMA_SIGMA_LOS_BEFORE_BP_DB, RMA_SIGMA_LOS_AFTER_BP_DB, RMA_SIGMA_NLOS_DB = 4.0, 6.0, 8.0


def _ghz(carrier_hz: ArrayLike) -> np.ndarray:
    return np.asarray(carrier_hz, float) / 1e9


def distance_3d_m(d2d_m: ArrayLike, h_bs_m: ArrayLike, h_ut_m: ArrayLike) -> np.ndarray:
    """d_3D = sqrt(d_2D^2 + (h_BS - h_UT)^2) (Figure 7.4.1-1)."""
    return np.hypot(np.asarray(d2d_m, float), np.asarray(h_bs_m, float) - np.asarray(h_ut_m, float))


def breakpoint_uma_umi_m(h_bs_m: ArrayLike, h_ut_m: ArrayLike, carrier_hz: ArrayLike) -> np.ndarray:
    """d'_BP = 4 h'_BS h'_UT f_c / c with h' = h - h_E, h_E = 1 m (Note 1 of Table 7.4.1-1)."""
    return 4.0 * (np.asarray(h_bs_m, float) - H_E_M) * (np.asarray(h_ut_m, float) - H_E_M) * np.asarray(
        carrier_hz, float) / SPEED_OF_LIGHT_MPS


def breakpoint_rma_m(h_bs_m: ArrayLike, h_ut_m: ArrayLike, carrier_hz: ArrayLike) -> np.ndarray:
    """d_BP = 2 pi h_BS h_UT f_c / c (Note 5 of Table 7.4.1-1)."""
    return 2.0 * np.pi * np.asarray(h_bs_m, float) * np.asarray(h_ut_m, float) * np.asarray(
        carrier_hz, float) / SPEED_OF_LIGHT_MPS


def uma_los_db(d2d_m: ArrayLike, h_ut_m: float, carrier_hz: float) -> np.ndarray:
    """PL_UMa-LOS: PL1 = 28 + 22 log10(d_3D) + 20 log10(f_c) up to d'_BP, then
    PL2 = 28 + 40 log10(d_3D) + 20 log10(f_c) - 9 log10(d'_BP^2 + (h_BS - h_UT)^2)."""
    d2d = np.asarray(d2d_m, float)
    d3d = distance_3d_m(d2d, UMA_H_BS_M, h_ut_m)
    bp = breakpoint_uma_umi_m(UMA_H_BS_M, h_ut_m, carrier_hz)
    fc = 20.0 * np.log10(_ghz(carrier_hz))
    pl1 = 28.0 + 22.0 * np.log10(d3d) + fc
    pl2 = 28.0 + 40.0 * np.log10(d3d) + fc - 9.0 * np.log10(bp**2 + (UMA_H_BS_M - h_ut_m) ** 2)
    return np.where(d2d <= bp, pl1, pl2)


def uma_nlos_db(d2d_m: ArrayLike, h_ut_m: float, carrier_hz: float) -> np.ndarray:
    """PL_UMa-NLOS = max(PL_UMa-LOS, PL'_UMa-NLOS),
    PL'_UMa-NLOS = 13.54 + 39.08 log10(d_3D) + 20 log10(f_c) - 0.6 (h_UT - 1.5)."""
    d3d = distance_3d_m(d2d_m, UMA_H_BS_M, h_ut_m)
    nlos = 13.54 + 39.08 * np.log10(d3d) + 20.0 * np.log10(_ghz(carrier_hz)) - 0.6 * (h_ut_m - 1.5)
    return np.maximum(uma_los_db(d2d_m, h_ut_m, carrier_hz), nlos)


def umi_los_db(d2d_m: ArrayLike, h_ut_m: float, carrier_hz: float) -> np.ndarray:
    """PL_UMi-LOS: PL1 = 32.4 + 21 log10(d_3D) + 20 log10(f_c) up to d'_BP, then
    PL2 = 32.4 + 40 log10(d_3D) + 20 log10(f_c) - 9.5 log10(d'_BP^2 + (h_BS - h_UT)^2)."""
    d2d = np.asarray(d2d_m, float)
    d3d = distance_3d_m(d2d, UMI_H_BS_M, h_ut_m)
    bp = breakpoint_uma_umi_m(UMI_H_BS_M, h_ut_m, carrier_hz)
    fc = 20.0 * np.log10(_ghz(carrier_hz))
    pl1 = 32.4 + 21.0 * np.log10(d3d) + fc
    pl2 = 32.4 + 40.0 * np.log10(d3d) + fc - 9.5 * np.log10(bp**2 + (UMI_H_BS_M - h_ut_m) ** 2)
    return np.where(d2d <= bp, pl1, pl2)


def umi_nlos_db(d2d_m: ArrayLike, h_ut_m: float, carrier_hz: float) -> np.ndarray:
    """PL_UMi-NLOS = max(PL_UMi-LOS, PL'_UMi-NLOS),
    PL'_UMi-NLOS = 35.3 log10(d_3D) + 22.4 + 21.3 log10(f_c) - 0.3 (h_UT - 1.5)."""
    d3d = distance_3d_m(d2d_m, UMI_H_BS_M, h_ut_m)
    nlos = 35.3 * np.log10(d3d) + 22.4 + 21.3 * np.log10(_ghz(carrier_hz)) - 0.3 * (h_ut_m - 1.5)
    return np.maximum(umi_los_db(d2d_m, h_ut_m, carrier_hz), nlos)


def _rma_pl1_db(d3d_m: ArrayLike, carrier_hz: float, building_height_m: float) -> np.ndarray:
    """PL1 = 20 log10(40 pi d_3D f_c / 3) + min(0.03 h^1.72, 10) log10(d_3D)
    - min(0.044 h^1.72, 14.77) + 0.002 log10(h) d_3D."""
    h, d3d_m = building_height_m, np.asarray(d3d_m, float)
    return (20.0 * np.log10(40.0 * np.pi * d3d_m * _ghz(carrier_hz) / 3.0) + min(0.03 * h**1.72, 10.0) * np.log10(d3d_m)
            - min(0.044 * h**1.72, 14.77) + 0.002 * np.log10(h) * d3d_m)


def rma_los_db(d2d_m: ArrayLike, h_bs_m: float, h_ut_m: float, carrier_hz: float,
               building_height_m: float) -> np.ndarray:
    """PL_RMa-LOS: PL1 up to d_BP, then PL2 = PL1(d_BP) + 40 log10(d_3D / d_BP).
    PL1(d_BP) is PL1 at d_3D = d_BP, as ns-3 and Sionna read the table, so the curve
    steps by a few hundredths of a dB at d_2D = d_BP (where sigma_SF steps from 4 to 6 dB
    anyway)."""
    d2d = np.asarray(d2d_m, float)
    d3d = distance_3d_m(d2d, h_bs_m, h_ut_m)
    bp = float(breakpoint_rma_m(h_bs_m, h_ut_m, carrier_hz))
    pl1 = _rma_pl1_db(d3d, carrier_hz, building_height_m)
    pl2 = _rma_pl1_db(bp, carrier_hz, building_height_m) + 40.0 * np.log10(d3d / bp)
    return np.where(d2d <= bp, pl1, pl2)


def rma_nlos_db(d2d_m: ArrayLike, h_bs_m: float, h_ut_m: float, carrier_hz: float, building_height_m: float,
                street_width_m: float) -> np.ndarray:
    """PL_RMa-NLOS = max(PL_RMa-LOS, PL'_RMa-NLOS), PL'_RMa-NLOS = 161.04 - 7.1 log10(W)
    + 7.5 log10(h) - (24.37 - 3.7 (h / h_BS)^2) log10(h_BS) + (43.42 - 3.1 log10(h_BS))
    (log10(d_3D) - 3) + 20 log10(f_c) - (3.2 (log10(11.75 h_UT))^2 - 4.97)."""
    h, w = building_height_m, street_width_m
    d3d = distance_3d_m(d2d_m, h_bs_m, h_ut_m)
    nlos = (161.04 - 7.1 * np.log10(w) + 7.5 * np.log10(h) - (24.37 - 3.7 * (h / h_bs_m) ** 2) * np.log10(h_bs_m)
            + (43.42 - 3.1 * np.log10(h_bs_m)) * (np.log10(d3d) - 3.0) + 20.0 * np.log10(_ghz(carrier_hz))
            - (3.2 * np.log10(11.75 * h_ut_m) ** 2 - 4.97))
    return np.maximum(rma_los_db(d2d_m, h_bs_m, h_ut_m, carrier_hz, building_height_m), nlos)


def rma_los_sigma_db(d2d_m: ArrayLike, h_bs_m: float, h_ut_m: float, carrier_hz: float) -> np.ndarray:
    """sigma_SF of RMa LOS: 4 dB with PL1 (d_2D up to d_BP), 6 dB with PL2."""
    bp = breakpoint_rma_m(h_bs_m, h_ut_m, carrier_hz)
    return np.where(np.asarray(d2d_m, float) <= bp, RMA_SIGMA_LOS_BEFORE_BP_DB, RMA_SIGMA_LOS_AFTER_BP_DB)


def los_probability_uma(d2d_m: ArrayLike, h_ut_m: float) -> np.ndarray:
    """Pr_LOS of UMa (Table 7.4.2-1): 1 up to 18 m, then
    [18 / d + exp(-d / 63) (1 - 18 / d)] (1 + C'(h_UT) 5/4 (d / 100)^3 exp(-d / 150)),
    C'(h_UT) = 0 up to 13 m, ((h_UT - 13) / 10)^1.5 from 13 to 23 m."""
    d = np.maximum(np.asarray(d2d_m, float), 18.0)
    c = 0.0 if h_ut_m <= 13.0 else ((h_ut_m - 13.0) / 10.0) ** 1.5
    p = (18.0 / d + np.exp(-d / 63.0) * (1.0 - 18.0 / d)) * (1.0 + c * 1.25 * (d / 100.0) ** 3 * np.exp(-d / 150.0))
    return np.where(np.asarray(d2d_m, float) <= 18.0, 1.0, p)


def los_probability_umi(d2d_m: ArrayLike) -> np.ndarray:
    """Pr_LOS of UMi-Street Canyon (Table 7.4.2-1): 1 up to 18 m, then
    18 / d + exp(-d / 36) (1 - 18 / d)."""
    d = np.maximum(np.asarray(d2d_m, float), 18.0)
    return np.where(np.asarray(d2d_m, float) <= 18.0, 1.0, 18.0 / d + np.exp(-d / 36.0) * (1.0 - 18.0 / d))


def los_probability_rma(d2d_m: ArrayLike) -> np.ndarray:
    """Pr_LOS of RMa (Table 7.4.2-1): 1 up to 10 m, then exp(-(d - 10) / 1000)."""
    d = np.asarray(d2d_m, float)
    return np.where(d <= 10.0, 1.0, np.exp(-(np.maximum(d, 10.0) - 10.0) / 1000.0))


__all__ = ["H_E_M", "RMA_SIGMA_LOS_AFTER_BP_DB", "RMA_SIGMA_LOS_BEFORE_BP_DB", "RMA_SIGMA_NLOS_DB", "UMA_H_BS_M",
           "UMA_SIGMA_LOS_DB", "UMA_SIGMA_NLOS_DB", "UMI_H_BS_M", "UMI_SIGMA_LOS_DB", "UMI_SIGMA_NLOS_DB",
           "breakpoint_rma_m", "breakpoint_uma_umi_m", "distance_3d_m", "los_probability_rma", "los_probability_uma",
           "los_probability_umi", "rma_los_db", "rma_los_sigma_db", "rma_nlos_db", "uma_los_db", "uma_nlos_db",
           "umi_los_db", "umi_nlos_db"]
