"""Sane ranges of the scenario's integer fields and physical ranges of its measured
quantities.

`validate` checks every integer field against a range: the one named here for its field
path, else `DEFAULT_INT_RANGE`. The ranges are far above any useful value and far below
what overflows numpy, torch or a day of simulation: `task.rounds: 1e300` is a typo, not an
experiment, and must fail on load rather than train until it is killed. A new integer
field gets the default range without any change here; give it its own entry when the
default does not fit.

Physical quantities (powers, bands, noise, path loss, distances, CPU speed) get a
physical range each, by field name wherever the field appears (`bandwidth_hz` of a cell,
of a hexagonal grid and of a downlink): `p_max_dbm: 1e6` is not a phone, and passed on it
makes infinite powers and gains whose failures downstream name the wrong cause. The
ranges hold every real radio and device with orders of magnitude to spare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# numpy's SeedSequence takes any size, but torch.manual_seed stops at 2**64 - 1 and seeds
# are printed and typed by people: 32 bits is plenty.
SEED_RANGE = (0, 2**32 - 1)
DEFAULT_INT_RANGE = (-(2**31), 2**31 - 1)

# field path (list indices written [*]) -> inclusive (low, high)
INT_RANGES: dict[str, tuple[int, int]] = {
    "seed": SEED_RANGE,
    "task.public_split_seed": SEED_RANGE,
    "task.rounds": (1, 100_000),
    "task.samples_per_device": (1, 10_000_000),
    "task.public_samples": (1, 10_000_000),
    "task.batch_size": (1, 1_000_000),
    "task.local_epochs": (1, 10_000),
    "task.eval_samples": (1, 10_000_000),
    "devices.count": (1, 10_000_000),
    "devices[*].count": (1, 10_000_000),
    "optimisation.dgen_max": (0, 10_000_000),
    "optimisation.cross_entropy.samples": (2, 1_000_000),
    "optimisation.cross_entropy.elite": (1, 1_000_000),
    "optimisation.cross_entropy.iterations": (1, 100_000),
    # DDIM steps; at or above the model's T (300 at most in simfl's configurations) it is
    # ancestral DDPM over T steps, so more than this is never useful
    "generator.sampling_steps": (1, 10_000),
    "aggregation.buffer_size": (1, 1_000_000),
    "aggregation.eval_every": (1, 100_000),
    # 1 + 3R(R + 1) base stations: 7,651 at R = 50; a typo like 1e6 would place 3e12
    "cells.hex_grid.rings": (0, 50),
}


@dataclass(frozen=True)
class PhysicalRange:
    """The values a physical field may take: [low, high], or (low, high] when `low_open`."""

    low: float
    high: float
    unit: str
    low_open: bool = False
    note: str = ""  # what the bounds mean, e.g. "up to 100 W"

    def __contains__(self, value: float) -> bool:
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def __str__(self) -> str:
        text = f"{'(' if self.low_open else '['}{compact(self.low)}, {compact(self.high)}]"
        text += f" {self.unit}" if self.unit else ""
        return text + (f" ({self.note})" if self.note else "")


def compact(x: float) -> str:
    """1e+12 -> 1e12, 1e-05 -> 1e-5: how the documentation writes bounds."""
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{x:g}")


@dataclass(frozen=True)
class Bounds:
    """What a number field must be: `>= minimum`, `> above`, `<= maximum`, `< below` (each
    when given), an integer with `integer`, present with `required`. The scenario's checks
    and its reference page read the same `Bounds` (simfl.scenario.rules), so the page
    states what the checks enforce."""

    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    below: float | None = None
    integer: bool = False
    required: bool = False

    def admits(self, value: float) -> bool:
        """Whether `value` meets every bound (not whether it is an integer)."""
        return not ((self.minimum is not None and value < self.minimum)
                    or (self.above is not None and value <= self.above)
                    or (self.maximum is not None and value > self.maximum)
                    or (self.below is not None and value >= self.below))

    def __str__(self) -> str:
        """`> 0`, `>= 1`, `in (0, 1]`, `in [0, 1)`; empty when nothing is bounded."""
        low = (f"[{compact(self.minimum)}" if self.minimum is not None
               else f"({compact(self.above)}" if self.above is not None else None)
        high = (f"{compact(self.maximum)}]" if self.maximum is not None
                else f"{compact(self.below)})" if self.below is not None else None)
        if low is not None and high is not None:
            return f"in {low}, {high}"
        if low is not None:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        if high is not None:
            return ("<= " if high[-1] == "]" else "< ") + high[:-1]
        return ""


MAX_DISTANCE_M = 1e7  # a quarter of the Earth's circumference: no cell is larger

# field name -> its range, wherever the field appears in these sections of a scenario
# (not in policy_settings, whose names are the policies' own)
PHYSICAL_SECTIONS = ("cells", "devices", "optimisation", "network", "server")
PHYSICAL_RANGES: dict[str, PhysicalRange] = {
    # a device's transmit power: -50 dBm is 10 nW, 50 dBm is 100 W (phones send at most ~0.2 W)
    "p_max_dbm": PhysicalRange(-50.0, 50.0, "dBm", note="10 nW to 100 W"),
    # a base station's broadcast power: macro cells send ~20-80 W (43-49 dBm)
    "power_dbm": PhysicalRange(-50.0, 80.0, "dBm", note="10 nW to 100 kW"),
    # a band: 1 THz is above any radio's
    "bandwidth_hz": PhysicalRange(0.0, 1e12, "Hz", low_open=True),
    # a carrier: cellular bands are 0.4-100 GHz (3GPP TR 38.901's models 0.5-100 GHz);
    # 100 MHz to 300 GHz spans VHF to the top of the millimetre waves
    "carrier_hz": PhysicalRange(1e8, 3e11, "Hz", note="100 MHz to 300 GHz"),
    # thermal noise is -174 dBm/Hz at 290 K; -250 is far below any receiver, -100 far above
    "noise_dbm_per_hz": PhysicalRange(-250.0, -100.0, "dBm/Hz"),
    # PL = intercept + slope log10(R in km): 3GPP's macro model is 128.1 + 37.6 log10 R
    "intercept_db": PhysicalRange(0.0, 300.0, "dB"),
    "slope_db": PhysicalRange(0.0, 100.0, "dB per decade", low_open=True),
    "shadowing_std_db": PhysicalRange(0.0, 50.0, "dB"),  # measured values are 4-12 dB
    "radius_m": PhysicalRange(0.0, MAX_DISTANCE_M, "m", low_open=True),
    "spacing_m": PhysicalRange(0.0, MAX_DISTANCE_M, "m", low_open=True),
    "distance_m": PhysicalRange(0.0, MAX_DISTANCE_M, "m", low_open=True),
    "position_m": PhysicalRange(-MAX_DISTANCE_M, MAX_DISTANCE_M, "m", note="each coordinate"),
    # a CPU's clock: 1 THz is 100x any processor's
    "f_max_hz": PhysicalRange(0.0, 1e12, "Hz", low_open=True),
    # the energy coefficient of eq. (5), E = tau eps omega D f^2: phones are ~1e-28 to 1e-26
    "eps": PhysicalRange(0.0, 1e-15, "", low_open=True),
    "omega_cycles_per_sample": PhysicalRange(0.0, 1e15, "cycles", low_open=True),
    # the round deadline T_max: 1e7 s is 116 days; from about 1e12 s the optimiser's
    # numbers are wrong (TFL's plan on tests/data/tiny.yaml: 4e10 J per round, not 2.6e-4)
    "t_max_s": PhysicalRange(0.0, 1e7, "s", low_open=True),
    # what a device gives to FL: a phone's whole battery is ~50 kJ, 1 GJ is a car's 280 kWh
    "battery_j": PhysicalRange(0.0, 1e9, "J", low_open=True),
    # the server: an aggregation of a day is already a broken server; a billion images a
    # second is far beyond any generator (a diffusion model makes tens per second on a GPU)
    "aggregation_delay_s": PhysicalRange(0.0, 86_400.0, "s"),
    "synthesis_images_per_s": PhysicalRange(0.0, 1e9, "images/s", low_open=True),
    # handover (network.handover): 3GPP's A3 hysteresis is at most 15 dB and its time to
    # trigger at most 5.12 s; an interruption is tens of milliseconds
    "hysteresis_db": PhysicalRange(0.0, 100.0, "dB"),
    # a channel step: from a microsecond (a 5G slot is 125 us) to a day
    "channel_step_s": PhysicalRange(1e-6, 86_400.0, "s"),
    "time_to_trigger_s": PhysicalRange(0.0, 1e9, "s"),
    "interruption_s": PhysicalRange(0.0, 1e9, "s"),
}


def physical_range(path: str) -> PhysicalRange | None:
    """The physical range of the field at `path` (e.g. `cells[0].bandwidth_hz`), if it has one."""
    if re.split(r"[.\[]", path, maxsplit=1)[0] not in PHYSICAL_SECTIONS:
        return None
    return PHYSICAL_RANGES.get(path.rsplit(".", 1)[-1])


MAX_SEEDS = 1_000  # `compare --seeds`: a range like 1-1000000000 is a typo

_INDEX = re.compile(r"\[\d+\]")


def int_range(path: str) -> tuple[int, int]:
    """The inclusive range allowed for the integer field at `path` (e.g. `devices[2].count`)."""
    return INT_RANGES.get(_INDEX.sub("[*]", path), DEFAULT_INT_RANGE)


__all__ = ["Bounds", "DEFAULT_INT_RANGE", "compact", "INT_RANGES", "MAX_DISTANCE_M", "MAX_SEEDS", "PHYSICAL_RANGES", "PhysicalRange",
           "SEED_RANGE", "int_range", "physical_range"]
