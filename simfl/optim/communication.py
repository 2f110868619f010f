"""Problem (P4)/(P7): sub-bands and transmit powers for given upload times, Theorem 2 and
Algorithm 2, eqs. (18), (30)-(40). Each cell shares its own band, so (P7) separates per
cell; all cells (and all cross-entropy samples) are solved together.

Writing y = S ln2 / (b T_com) (nats per Hz-second of the upload), the paper's functions
become one-variable ones:
    P(b)  = N0 b / g (e^y - 1)                      eq. (30)
    Q(b)  = dE_com/db = N0 T_com / g (e^y (1 - y) - 1)   eq. (34)/(37), always < 0
so Q(b) + varpi = 0 reads e^y (y - 1) + 1 = varpi g / (N0 T_com): solved below by a
monotone Newton iteration (it is Lambert's W0 in disguise, y = 1 + W0((r - 1)/e)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from simfl.optim.roots import bracketed_root
from simfl.radio import power_for_latency_w, uplink_energy_j, uplink_rate_bps

LN2 = float(np.log(2.0))
# Relative tolerance on a cell's band sum (32a) for the search, and the looser one with
# which a problem counts as feasible (so a solution found to BAND_RTOL is never rejected).
BAND_RTOL = 1e-12
FEASIBLE_RTOL = 1e-9


def eta_max(model_bits: float, t_max_s: float, bandwidth_hz: np.ndarray, gain: np.ndarray,
            p_max_w: np.ndarray, n0_w_per_hz: np.ndarray) -> np.ndarray:
    """Largest time-split factor, eq. (18): uploading at P_max over the whole band B of the
    device's own cell takes (1 - eta_max) T_max."""
    rate = uplink_rate_bps(bandwidth_hz, gain, p_max_w, n0_w_per_hz)
    return 1.0 - model_bits / (t_max_s * rate)


def kappa_s(model_bits: float, gain: np.ndarray, p_max_w: np.ndarray, n0_w_per_hz: np.ndarray) -> np.ndarray:
    """kappa_i = N0 S ln2 / (g P_max) of (31): the upload time with unlimited bandwidth at
    P_max; no band makes an upload faster."""
    return n0_w_per_hz * model_bits * LN2 / (gain * p_max_w)


def b_min_hz(model_bits: float, t_com_s: np.ndarray, gain: np.ndarray, p_max_w: np.ndarray,
             n0_w_per_hz: np.ndarray) -> np.ndarray:
    """Smallest band that uploads S bits in t_com_s at P_max, eq. (31), via Lambert W.

    P(b) = P_max with y = S ln2 / (b T) reads (e^y - 1)/y = 1/a with a = kappa / T. Its
    positive root is y = -W_{-1}(-a e^-a) - a (the principal branch gives the trivial
    y = 0), so b_min = S ln2 / (T (-W_{-1}(-a e^-a) - a)); the paper's (31) prints the
    signs of the denominator the other way. No band suffices when a >= 1 (T <= kappa):
    b_min = +inf there.
    """
    t = np.asarray(t_com_s, float)
    a = kappa_s(model_bits, gain, p_max_w, n0_w_per_hz) / t
    ok = a < 1.0
    a_ok = np.where(ok, a, 0.5)
    y = -lambertw(-a_ok * np.exp(-a_ok), k=-1).real - a_ok
    with np.errstate(divide="ignore"):
        return np.where(ok & (y > 0), model_bits * LN2 / (t * y), np.inf)


def q_function(b_hz: np.ndarray, t_com_s: np.ndarray, gain: np.ndarray, n0_w_per_hz: np.ndarray,
               model_bits: float) -> np.ndarray:
    """Q(b) of eq. (34)/(37): the derivative of the upload energy P T_com in b (negative)."""
    y = model_bits * LN2 / (b_hz * t_com_s)
    return n0_w_per_hz * t_com_s / gain * (np.exp(y) * (1.0 - y) - 1.0)


def _solve_h(r: np.ndarray) -> np.ndarray:
    """The y > 0 with h(y) = e^y (y - 1) + 1 = r, for r >= 0; this is y = 1 + W0((r-1)/e).

    Written in y rather than through scipy's complex lambertw because it sits in the
    innermost loop of Algorithm 2 and because r (= e x + 1 for W's argument x) is known
    exactly, which keeps full precision near the branch point. Start: the branch-point
    series of W0 in p = sqrt(2 r) for small r, Winitzki's approximation otherwise (both
    within about 1%); then three Halley steps (cubic convergence) reach round-off.
    """
    r = np.maximum(np.asarray(r, float), 0.0)
    p = np.sqrt(2.0 * r)
    near = p * (1.0 + p * (-1.0 / 3.0 + p * 11.0 / 72.0))
    x = np.maximum((r - 1.0) / np.e, 0.0)
    lx = np.log1p(x)
    far = 1.0 + lx * (1.0 - np.log1p(lx) / (2.0 + lx))
    y = np.where(r < 0.6, near, np.maximum(far, 1e-3))
    for _ in range(3):
        ey = np.exp(y)
        f = y * ey - np.expm1(y) - r  # h(y) - r, with expm1 for precision at small y
        d1 = y * ey
        d2 = (y + 1.0) * ey
        y = y - 2.0 * f * d1 / (2.0 * d1 * d1 - f * d2)
    return y


def b_of_multiplier(varpi: np.ndarray, t_com_s: np.ndarray, gain: np.ndarray, n0_w_per_hz: np.ndarray,
                    model_bits: float) -> np.ndarray:
    """b_i(varpi): the root of Q(b) + varpi = 0 (Theorem 2), in closed form through the
    substitution above; Algorithm 2's inner bisection (`bandwidth_search`) finds the same
    number step by step."""
    y = _solve_h(varpi * gain / (n0_w_per_hz * t_com_s))
    with np.errstate(divide="ignore"):
        return model_bits * LN2 / (t_com_s * y)


def bandwidth_search(varpi: np.ndarray, t_com_s: np.ndarray, gain: np.ndarray, n0_w_per_hz: np.ndarray,
                     model_bits: float, b_lo_hz: np.ndarray, b_hi_hz: np.ndarray, tol_hz: float = 1e-6) -> np.ndarray:
    """BandWidSearch of Algorithm 2 (lines 9-19): bisection on b in [b_lo, b_hi] for
    Q(b) + varpi = 0, all devices in parallel; Q increases in b (39)."""
    lo = np.array(b_lo_hz, float, copy=True)
    hi = np.array(b_hi_hz, float, copy=True)
    while np.any(hi - lo > tol_hz):
        b = 0.5 * (lo + hi)
        positive = q_function(b, t_com_s, gain, n0_w_per_hz, model_bits) + varpi > 0
        hi = np.where(positive, b, hi)
        lo = np.where(positive, lo, b)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class CommunicationStage:
    """Per problem and device: sub-band, power and upload energy; `varpi` per problem and
    cell (the multiplier of (32a)); `feasible` per problem and `violation` how far an
    infeasible one is from feasibility (0 when feasible)."""

    b_hz: np.ndarray
    p_w: np.ndarray
    energy_j: np.ndarray
    varpi: np.ndarray
    feasible: np.ndarray
    violation: np.ndarray


def solve_p7(t_com_s: np.ndarray, cell_of: np.ndarray, bandwidth_hz: np.ndarray, gain: np.ndarray,
             n0_w_per_hz: np.ndarray, p_max_w: np.ndarray, model_bits: float,
             method: str = "newton") -> CommunicationStage:
    """Theorem 2 / Algorithm 2 for every cell: minimise sum_i P_i T_com_i over sub-bands
    with sum_{i in cell k} b_i = B_k (32a) and b_i >= b_min_i (32b).

    b_i = clip(b_i(varpi_k), b_min_i, B_k) (33); varpi_k is found by the outer search of
    Algorithm 2 on log varpi within (40): at varpi = min_i -Q_i(B_k) some device wants the
    whole band (sum >= B_k), at varpi = max_i -Q_i(b_min_i) every device sits at b_min
    (sum <= B_k). `method="bisection"` runs the paper's hierarchical bisection (outer on
    varpi, inner BandWidSearch on each b_i); "newton" (default) solves the inner problem
    in closed form (`b_of_multiplier`) and steps the outer one with the derivative of
    the band sum, d b_i / d varpi = -1 / Q'(b_i) from (39), inside the same bracket:
    the same answer for about a fifth of the outer steps and none of the inner ones.
    A problem is infeasible when a device cannot upload in its T_com at all or the
    cell's b_min add up to more than B_k.
    """
    t = np.asarray(t_com_s, float)
    lead = t.shape[:-1]
    n_cells = len(bandwidth_hz)
    band = np.asarray(bandwidth_hz, float)[cell_of]  # (I,) each device's own B_k
    sums = CellSums(cell_of, n_cells)
    band_k = band_k_of(bandwidth_hz, lead)
    b_min = b_min_hz(model_bits, t, gain, p_max_w, n0_w_per_hz)
    finite = np.isfinite(b_min).all(axis=-1)
    used_min = sums(np.where(np.isfinite(b_min), b_min, 0.0))
    feasible = np.asarray(finite & (b_min <= band * (1 + FEASIBLE_RTOL)).all(axis=-1)
                          & (used_min <= band_k * (1 + FEASIBLE_RTOL)).all(axis=-1))
    b_min_safe = np.where(np.isfinite(b_min), np.minimum(b_min, band), band)
    # relative band overflow per cell, and one full band for each device that no band serves
    overflow = np.maximum(used_min / band_k - 1.0, 0.0).sum(axis=-1) + (~np.isfinite(b_min)).sum(axis=-1)
    violation = np.where(feasible, 0.0, overflow)

    # (40), per problem and cell, on a log scale since varpi spans many decades
    w_lo = sums.min(-q_function(band, t, gain, n0_w_per_hz, model_bits))
    w_hi = np.maximum(sums.max(-q_function(b_min_safe, t, gain, n0_w_per_hz, model_bits)), w_lo)
    # an infeasible problem gets an empty bracket: nothing to search, its energy is +inf anyway
    w_hi = np.where(feasible[..., None], w_hi, w_lo)

    def bands(log_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w_dev = np.exp(log_w)[..., cell_of]
        if method == "bisection":
            # the paper's hierarchy to the letter: BandWidSearch inside [b_min, B]
            free = bandwidth_search(w_dev, t, gain, n0_w_per_hz, model_bits, b_min_safe, band,
                                    tol_hz=1e-12 * float(np.max(band)))
        else:
            free = b_of_multiplier(w_dev, t, gain, n0_w_per_hz, model_bits)
        b = np.clip(free, b_min_safe, band)
        # d b / d log varpi = -varpi / Q'(b), Q'(b) = N0 T y^2 e^y / (g b) by (39)
        y = model_bits * LN2 / (b * t)
        inside = (free > b_min_safe) & (free < band)
        slope = np.where(inside, -w_dev * gain * b / (n0_w_per_hz * t * y * y * np.exp(y)), 0.0)
        return b, slope

    def excess(log_w: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        b, slope = bands(log_w)
        if method == "newton":
            return sums(b) - band_k, sums(slope)
        return sums(b) - band_k

    log_w = bracketed_root(excess, np.log(w_lo), np.log(w_hi), xtol=1e-13,
                           ftol=BAND_RTOL * band_k, method=method)
    b = bands(log_w)[0]
    p = power_for_latency_w(b, gain, n0_w_per_hz, model_bits, t)  # eq. (30)
    p = np.minimum(p, p_max_w)  # round-off only: b >= b_min means P <= P_max
    rate = uplink_rate_bps(b, gain, p, n0_w_per_hz)
    energy = uplink_energy_j(model_bits, p, rate)  # eq. (9)
    return CommunicationStage(b_hz=b, p_w=p, energy_j=energy, varpi=np.exp(log_w), feasible=feasible,
                              violation=violation)


class CellSums:
    """Sums, minima and maxima over each cell's devices along the last axis, (..., I) ->
    (..., K), by one sort of the devices by cell (no per-cell loop, no dense matmul)."""

    def __init__(self, cell_of: np.ndarray, n_cells: int) -> None:
        self.order = np.argsort(cell_of, kind="stable")
        counts = np.bincount(cell_of, minlength=n_cells)
        self.present = counts > 0
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[self.present]
        self.n_cells = n_cells

    def _reduce(self, ufunc: np.ufunc, x: np.ndarray, empty: float) -> np.ndarray:
        x = np.asarray(x, float)
        out = np.full(x.shape[:-1] + (self.n_cells,), empty)
        out[..., self.present] = ufunc.reduceat(x[..., self.order], self.starts, axis=-1)
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._reduce(np.add, x, 0.0)

    def min(self, x: np.ndarray) -> np.ndarray:
        return self._reduce(np.minimum, x, 1.0)

    def max(self, x: np.ndarray) -> np.ndarray:
        return self._reduce(np.maximum, x, 1.0)


def band_k_of(bandwidth_hz: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    """Each cell's band B_k broadcast over the leading (sample) axes."""
    return np.broadcast_to(np.asarray(bandwidth_hz, float), (*lead, len(bandwidth_hz)))


def fixed_band_stage(t_com_s: np.ndarray, b_hz: np.ndarray, gain: np.ndarray, n0_w_per_hz: np.ndarray,
                     p_max_w: np.ndarray, model_bits: float) -> CommunicationStage:
    """Upload with given sub-bands (the equal split of `fimi-no-ba`): P from (30), feasible
    where P <= P_max."""
    t = np.asarray(t_com_s, float)
    b = np.broadcast_to(np.asarray(b_hz, float), t.shape)
    p = power_for_latency_w(b, gain, n0_w_per_hz, model_bits, t)
    feasible = np.asarray((p <= p_max_w * (1 + 1e-9)).all(axis=-1))
    violation = np.where(feasible, 0.0, np.maximum(p / p_max_w - 1.0, 0.0).sum(axis=-1))
    p = np.minimum(p, p_max_w)
    rate = uplink_rate_bps(b, gain, p, n0_w_per_hz)
    energy = uplink_energy_j(model_bits, p, rate)
    return CommunicationStage(b_hz=b, p_w=p, energy_j=energy, varpi=np.zeros(t.shape[:-1] + (0,)), feasible=feasible,
                              violation=violation)
