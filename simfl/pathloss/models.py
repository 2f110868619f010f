"""The path-loss models a cell may name in its scenario (`path_loss: {model: uma, ...}`),
one class each, registered by that name: TR 38.901's UMa, UMi-Street Canyon and RMa.

A model is plain data (its fields, as the scenario gave them) with the table's equations
(simfl.pathloss.tr38901) behind four questions a link asks: its path loss and shadowing
sigma in LOS or NLOS, its LOS probability, and over what walked distance its LOS state
and shadowing stay the same. It declares its fields and their ranges (`FIELDS`), the
carriers (`CARRIER_RANGE_HZ`) and the largest 2D distance (`MAX_DISTANCE_M`) its table
holds for; the scenario loader checks them, so a new model is one class here.

Every device is outdoors (no O2I penetration loss, Section 7.4.3), and d_2D is floored at
the table's 10 m: nearer devices get the path loss of 10 m, as the log-distance model
floors at 1 m. Beyond MAX_DISTANCE_M (links to far cells) the formulas are extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from simfl.pathloss import tr38901 as t

MODELS: dict[str, type[Tr38901Model]] = {}

# Table 7.4.1-1 starts at d_2D = 10 m for every model here
MIN_DISTANCE_M = 10.0
LOS_DISTANCE_MAX_M = 1e9  # beyond the largest scenario (positions within 1e7 m of the origin)


@dataclass(frozen=True)
class FieldRange:
    """A model field's inclusive range and default, and why the range is what it is."""

    low: float
    high: float
    default: float
    why: str
    unit: str = "m"


def register(cls: type[Tr38901Model]) -> type[Tr38901Model]:
    """Class decorator: add a model under its `kind`; a name used twice is an error."""
    if cls.kind in MODELS and MODELS[cls.kind] is not cls:
        raise ValueError(f"path-loss model {cls.kind!r} is registered twice")
    MODELS[cls.kind] = cls
    return cls


@dataclass(frozen=True)
class Tr38901Model:
    """What every TR 38.901 model answers; subclasses give the numbers.

    `kind`, the name a scenario writes, is a dataclass field (fixed per class, not an
    argument) so that it takes part in equality and in a run folder's fingerprint, which
    walks a scenario's fields: UMa and UMi with the same h_ut_m are different worlds."""

    kind: str = field(default="", init=False)
    h_bs_m: ClassVar[float]  # the base station's height (a field of the models that let it vary)
    FIELDS: ClassVar[dict[str, FieldRange]] = {}
    CARRIER_RANGE_HZ: ClassVar[tuple[float, float]] = (0.5e9, 100e9)
    MAX_DISTANCE_M: ClassVar[float] = 5000.0
    # shadow-fading decorrelation distance (LOS, NLOS), Table 7.5-6, and LOS-state
    # correlation distance, Table 7.6.3.1-2, in m
    SF_CORRELATION_M: ClassVar[tuple[float, float]] = (0.0, 0.0)
    LOS_CORRELATION_M: ClassVar[float] = 0.0

    def los_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        raise NotImplementedError

    def nlos_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        raise NotImplementedError

    def los_sigma_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        raise NotImplementedError

    NLOS_SIGMA_DB: ClassVar[float] = 0.0

    def los_probability(self, d2d_m: ArrayLike) -> np.ndarray:
        raise NotImplementedError

    def jump_distances_m(self, carrier_hz: float) -> tuple[float, ...]:
        """The 2D distances at which a link's gain steps for a fixed LOS state and
        shadowing draw (none: its path loss is continuous in the distance)."""
        return ()

    def path_loss_db(self, d2d_m: ArrayLike, los: ArrayLike, carrier_hz: float) -> np.ndarray:
        """PL in dB at `d2d_m` (floored at 10 m) in LOS where `los`, NLOS elsewhere."""
        d = np.maximum(np.asarray(d2d_m, float), MIN_DISTANCE_M)
        return np.where(los, self.los_path_loss_db(d, carrier_hz), self.nlos_path_loss_db(d, carrier_hz))

    def sigma_db(self, d2d_m: ArrayLike, los: ArrayLike, carrier_hz: float) -> np.ndarray:
        """sigma_SF in dB at `d2d_m` in LOS where `los`, NLOS elsewhere."""
        d = np.maximum(np.asarray(d2d_m, float), MIN_DISTANCE_M)
        return np.where(los, self.los_sigma_db(d, carrier_hz), self.NLOS_SIGMA_DB)

    def sf_correlation_m(self, los: ArrayLike) -> np.ndarray:
        """The walked distance over which a link keeps its shadowing draw, per LOS state."""
        return np.where(los, self.SF_CORRELATION_M[0], self.SF_CORRELATION_M[1])

    def los_distance_m(self, u: float) -> float:
        """The 2D distance r at which Pr_LOS(r) = u, for u in (0, 1): a link whose LOS
        draw is u is in LOS nearer than r and in NLOS beyond (Pr_LOS falls with the
        distance). Brent's method on [10 m, 1e9 m] to float precision; 1e9 m for a draw
        below Pr_LOS there (a link in LOS at any distance a scenario can hold)."""
        def excess(r: float) -> float:
            return float(self.los_probability(r)) - u

        if excess(LOS_DISTANCE_MAX_M) >= 0.0:
            return LOS_DISTANCE_MAX_M
        return float(brentq(excess, MIN_DISTANCE_M, LOS_DISTANCE_MAX_M, xtol=1e-9, rtol=4 * np.finfo(float).eps,
                            maxiter=200))

    def problems(self, carrier_hz: float, radius_m: float) -> list[tuple[str, str]]:
        """(field, message) for each way the cell's carrier and radius leave the table."""
        found = []
        low, high = self.CARRIER_RANGE_HZ
        if not low <= carrier_hz <= high:
            found.append(("carrier_hz", f"must be in [{low / 1e9:g}, {high / 1e9:g}] GHz for path_loss model "
                                        f"{self.kind} (TR 38.901 Section 7.4.1), got {carrier_hz / 1e9:g} GHz"))
        if radius_m > self.MAX_DISTANCE_M:
            found.append(("radius_m", f"must be <= {self.MAX_DISTANCE_M:g} m for path_loss model {self.kind}: "
                                      f"TR 38.901 Table 7.4.1-1 holds to d_2D = {self.MAX_DISTANCE_M:g} m, "
                                      f"got {radius_m:g}"))
        return found


H_UT_NOTE = "TR 38.901 Table 7.4.1-1: 1.5 m <= h_UT <= 22.5 m"


@register
@dataclass(frozen=True)
class UMa(Tr38901Model):
    """Urban macro: base stations at 25 m (Table 7.4.1-1)."""

    h_ut_m: float = 1.5
    kind: str = field(default="uma", init=False)
    h_bs_m: ClassVar[float] = t.UMA_H_BS_M
    FIELDS: ClassVar[dict[str, FieldRange]] = {
        "h_ut_m": FieldRange(1.5, 13.0, 1.5, "TR 38.901 Table 7.4.1-1, Note 1: h_E = 1 m for terminals up to "
                                             "13 m; simfl does not draw h_E for taller ones")}
    SF_CORRELATION_M = (37.0, 50.0)  # Table 7.5-6 Part-1, UMa SF correlation distance
    LOS_CORRELATION_M = 50.0  # Table 7.6.3.1-2, UMa LOS/NLOS state
    NLOS_SIGMA_DB = t.UMA_SIGMA_NLOS_DB

    def los_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return t.uma_los_db(d2d_m, self.h_ut_m, carrier_hz)

    def nlos_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return t.uma_nlos_db(d2d_m, self.h_ut_m, carrier_hz)

    def los_sigma_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return np.full(np.shape(d2d_m), t.UMA_SIGMA_LOS_DB)

    def los_probability(self, d2d_m: ArrayLike) -> np.ndarray:
        return t.los_probability_uma(np.maximum(np.asarray(d2d_m, float), MIN_DISTANCE_M), self.h_ut_m)


@register
@dataclass(frozen=True)
class UMi(Tr38901Model):
    """Urban micro, street canyon: base stations at 10 m (Table 7.4.1-1)."""

    h_ut_m: float = 1.5
    kind: str = field(default="umi", init=False)
    h_bs_m: ClassVar[float] = t.UMI_H_BS_M
    FIELDS: ClassVar[dict[str, FieldRange]] = {"h_ut_m": FieldRange(1.5, 22.5, 1.5, H_UT_NOTE)}
    SF_CORRELATION_M = (10.0, 13.0)  # Table 7.5-6 Part-1, UMi-Street Canyon SF correlation distance
    LOS_CORRELATION_M = 50.0  # Table 7.6.3.1-2, UMi LOS/NLOS state
    NLOS_SIGMA_DB = t.UMI_SIGMA_NLOS_DB

    def los_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return t.umi_los_db(d2d_m, self.h_ut_m, carrier_hz)

    def nlos_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return t.umi_nlos_db(d2d_m, self.h_ut_m, carrier_hz)

    def los_sigma_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return np.full(np.shape(d2d_m), t.UMI_SIGMA_LOS_DB)

    def los_probability(self, d2d_m: ArrayLike) -> np.ndarray:
        return t.los_probability_umi(np.maximum(np.asarray(d2d_m, float), MIN_DISTANCE_M))


@register
@dataclass(frozen=True)
class RMa(Tr38901Model):
    """Rural macro: base stations at `h_bs_m` (10-150 m, default 35 m) among buildings of
    average height `building_height_m` (h) along streets `street_width_m` wide (W)."""

    h_ut_m: float = 1.5
    h_bs_m: float = 35.0  # type: ignore[misc]  # a field here, fixed by the table in UMa and UMi
    building_height_m: float = 5.0
    street_width_m: float = 20.0
    kind: str = field(default="rma", init=False)
    FIELDS: ClassVar[dict[str, FieldRange]] = {
        "h_ut_m": FieldRange(1.0, 10.0, 1.5, "TR 38.901 Table 7.4.1-1, RMa: 1 m <= h_UT <= 10 m"),
        "h_bs_m": FieldRange(10.0, 150.0, 35.0, "TR 38.901 Table 7.4.1-1, RMa: 10 m <= h_BS <= 150 m"),
        "building_height_m": FieldRange(5.0, 50.0, 5.0, "TR 38.901 Table 7.4.1-1, RMa: 5 m <= h <= 50 m"),
        "street_width_m": FieldRange(5.0, 50.0, 20.0, "TR 38.901 Table 7.4.1-1, RMa: 5 m <= W <= 50 m")}
    CARRIER_RANGE_HZ = (0.5e9, 30e9)  # Section 7.4.1: RMa is applicable up to 30 GHz
    MAX_DISTANCE_M = 10_000.0  # LOS to 10 km; NLOS is stated to 5 km and extrapolated beyond
    SF_CORRELATION_M = (37.0, 120.0)  # Table 7.5-6 Part-2, RMa SF correlation distance
    LOS_CORRELATION_M = 60.0  # Table 7.6.3.1-2, RMa LOS/NLOS state
    NLOS_SIGMA_DB = t.RMA_SIGMA_NLOS_DB

    def los_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return t.rma_los_db(d2d_m, self.h_bs_m, self.h_ut_m, carrier_hz, self.building_height_m)

    def nlos_path_loss_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return t.rma_nlos_db(d2d_m, self.h_bs_m, self.h_ut_m, carrier_hz, self.building_height_m,
                             self.street_width_m)

    def los_sigma_db(self, d2d_m: np.ndarray, carrier_hz: float) -> np.ndarray:
        return t.rma_los_sigma_db(d2d_m, self.h_bs_m, self.h_ut_m, carrier_hz)

    def los_probability(self, d2d_m: ArrayLike) -> np.ndarray:
        return t.los_probability_rma(np.maximum(np.asarray(d2d_m, float), MIN_DISTANCE_M))

    def los_distance_m(self, u: float) -> float:
        """Pr_LOS(r) = exp(-(r - 10) / 1000) = u at r = 10 - 1000 ln u."""
        return 10.0 - 1000.0 * math.log(u)

    def jump_distances_m(self, carrier_hz: float) -> tuple[float, ...]:
        """d_BP: sigma_SF steps from 4 to 6 dB in LOS (and PL1 gives way to PL2)."""
        return (float(t.breakpoint_rma_m(self.h_bs_m, self.h_ut_m, carrier_hz)),)


__all__ = ["MIN_DISTANCE_M", "MODELS", "FieldRange", "RMa", "Tr38901Model", "UMa", "UMi", "register"]
