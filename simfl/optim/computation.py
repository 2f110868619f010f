"""Problem (P3)/(P6): synthetic amounts and CPU frequencies for given computation times,
Theorem 1 and Algorithm 1, eqs. (17), (19)-(29), with the erratum to (25)/(28)/(29).

Every function takes arrays whose last axis is the device; leading axes (the M samples of
the cross-entropy search) are independent problems solved together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simfl.compute import compute_energy_j, frequency_for_latency_hz
from simfl.optim.learning_curve import d_mix_for_error, local_error
from simfl.optim.roots import bracketed_root
from simfl.world import Constants

# Relative tolerance on the sum of local errors (21a): far below anything (4) can notice;
# feasibility is judged with a looser one so a solution found to SUM_RTOL is never rejected.
SUM_RTOL = 1e-12
FEASIBLE_RTOL = 1e-9


def eta_min(tau: float, omega_cycles: float, d_loc: np.ndarray, t_max_s: float, f_max_hz: np.ndarray) -> np.ndarray:
    """Smallest time-split factor, eq. (17): training D_loc at f_max takes eta_min T_max."""
    return tau * omega_cycles * d_loc / (t_max_s * f_max_hz)


def rho_coefficient(eps: np.ndarray, t_cmp_s: np.ndarray, k: Constants) -> np.ndarray:
    """rho_i of eq. (22): E_cmp = rho (gamma + delta)^(-3/beta) once D and f are written
    through delta by (19) and (20)."""
    return eps * (k.tau * k.omega_cycles) ** 3 * k.alpha ** (3.0 / k.beta) / t_cmp_s**2


def d_mix_max(f_max_hz: np.ndarray, t_cmp_s: np.ndarray, d_loc: np.ndarray, k: Constants) -> np.ndarray:
    """Largest mixed-data amount: what f_max trains in T_cmp, capped at D_loc + D_max (23)."""
    return np.minimum(f_max_hz * t_cmp_s / (k.tau * k.omega_cycles), d_loc + k.dgen_max)


@dataclass(frozen=True)
class P6Solution:
    """Alg. 1's answer per problem: local errors, the multiplier nu of (21a), feasibility."""

    delta: np.ndarray  # (..., I)
    nu: np.ndarray  # (...,) 0 where (21a) is slack (no synthesis needed)
    feasible: np.ndarray  # (...,) bool
    violation: np.ndarray  # (...,) by how much (21a) is missed at best, relative; 0 if feasible


def solve_p6(rho: np.ndarray, delta_min: np.ndarray, delta_max: np.ndarray, target: float,
             beta: float, gamma: float, method: str = "newton") -> P6Solution:
    """Theorem 1 / Algorithm 1: minimise sum rho (gamma + delta)^(-3/beta) subject to
    sum delta <= target (21a) and delta_min <= delta <= delta_max (21b).

    From the KKT condition (26c), nu = 3 rho / beta (delta + gamma)^(-(beta+3)/beta), so
    (erratum: (25), (28) and (29) drop the gamma)
        delta(nu) = clip((3 rho / (beta nu))^(beta/(beta+3)) - gamma, delta_min, delta_max).
    Writing t = nu^(-beta/(beta+3)), delta(t) = clip(c t - gamma, ...) is piecewise linear
    and increasing in t, so Algorithm 1's bisection on nu is run on t: `method=
    "bisection"` halves the bracket as the paper does, "newton" (default) steps with the
    slope of the current linear piece inside the same bracket and is exact once it has
    found the right piece. The bracket is (29) with the gamma:
    all devices at delta_min at t_lo, all at delta_max at t_hi.

    (21a) is written as an inequality: when even D_gen = 0 meets the target (sum
    delta_max <= target) the learning constraint is slack, nu = 0 and delta = delta_max.
    Problems with sum delta_min > target are infeasible: `feasible` is False there and
    their delta is delta_min (callers give them energy +inf).
    """
    rho = np.asarray(rho, float)
    lo = np.broadcast_to(np.asarray(delta_min, float), rho.shape)
    hi = np.broadcast_to(np.asarray(delta_max, float), rho.shape)
    expo = beta / (beta + 3.0)
    c = (3.0 * rho / beta) ** expo
    sum_lo, sum_hi = lo.sum(axis=-1), hi.sum(axis=-1)
    scale = np.maximum(np.abs(sum_hi), 1.0)
    feasible = sum_lo <= target + FEASIBLE_RTOL * scale
    slack = sum_hi <= target

    t_lo = ((lo + gamma) / c).min(axis=-1)
    t_hi = ((hi + gamma) / c).max(axis=-1)
    solve = feasible & ~slack
    t = np.where(solve, t_hi, t_lo)
    if solve.any():
        t_lo_s, t_hi_s = t_lo[solve], t_hi[solve]
        c_s, lo_s, hi_s = c[solve], lo[solve], hi[solve]

        def excess_s(ts: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
            raw = c_s * ts[:, None] - gamma
            value = np.clip(raw, lo_s, hi_s).sum(axis=-1) - target
            if method != "newton":
                return value
            # the slope of the piecewise-linear sum: c_i of the devices strictly inside
            return value, np.where((raw > lo_s) & (raw < hi_s), c_s, 0.0).sum(axis=-1)

        t[solve] = bracketed_root(excess_s, t_lo_s, t_hi_s, xtol=1e-15 * float(t_hi_s.max()),
                                  ftol=SUM_RTOL * scale[solve], method=method)
    delta = np.where(feasible[..., None], np.clip(c * t[..., None] - gamma, lo, hi), lo)
    delta = np.where(slack[..., None], hi, delta)
    nu = np.where(solve, t ** (-1.0 / expo), 0.0)
    violation = np.where(feasible, 0.0, (sum_lo - target) / np.maximum(abs(target), 1.0))
    return P6Solution(delta=delta, nu=nu, feasible=feasible, violation=violation)


@dataclass(frozen=True)
class ComputationStage:
    """Per problem and device: mixed-data amount, CPU frequency and compute energy for the
    given computation times; `nu` is (21a)'s multiplier, `feasible` per problem and
    `violation` how far an infeasible one is from feasibility (0 when feasible)."""

    d_mix: np.ndarray
    f_hz: np.ndarray
    energy_j: np.ndarray
    nu: np.ndarray
    feasible: np.ndarray
    violation: np.ndarray


def computation_stage(t_cmp_s: np.ndarray, d_loc: np.ndarray, f_max_hz: np.ndarray, eps: np.ndarray,
                      k: Constants, target: float | None, d_mix_fixed: np.ndarray | None = None,
                      method: str = "newton") -> ComputationStage:
    """Solve (P3) for computation times `t_cmp_s` (..., I).

    With `target` (the right-hand side of (21a)) the synthetic amounts are optimised by
    Algorithm 1 and D and f follow from (19) and (20). With `d_mix_fixed` the data amounts
    are given (TFL, HDC, ablations) and only f = tau omega D / T_cmp follows, eq. (6).
    A problem is infeasible when some device cannot train D_loc (or its fixed amount)
    at f_max within its T_cmp, or when the learning target is out of reach.
    """
    t_cmp_s = np.asarray(t_cmp_s, float)
    if d_mix_fixed is not None:
        d_mix = np.broadcast_to(np.asarray(d_mix_fixed, float), t_cmp_s.shape)
        f_hz = frequency_for_latency_hz(k.tau, k.omega_cycles, d_mix, t_cmp_s)
        feasible = np.asarray((f_hz <= f_max_hz * (1 + 1e-9)).all(axis=-1))
        violation = np.where(feasible, 0.0, np.maximum(f_hz / f_max_hz - 1.0, 0.0).sum(axis=-1))
        nu = np.zeros(t_cmp_s.shape[:-1])
    else:
        assert target is not None
        d_hi = d_mix_max(f_max_hz, t_cmp_s, d_loc, k)
        short = np.maximum(1.0 - d_hi / d_loc, 0.0).sum(axis=-1)
        can_train = short <= 1e-12
        d_hi = np.maximum(d_hi, d_loc)
        delta_min = local_error(d_hi, k.alpha, k.beta, k.gamma)  # eq. (23)
        delta_max = local_error(d_loc, k.alpha, k.beta, k.gamma)  # eq. (24)
        p6 = solve_p6(rho_coefficient(eps, t_cmp_s, k), delta_min, delta_max, target, k.beta, k.gamma, method)
        # eq. (19); the clip only removes round-off at the ends of [D_loc, D_hi]
        d_mix = np.clip(d_mix_for_error(p6.delta, k.alpha, k.beta, k.gamma), d_loc, d_hi)
        f_hz = np.minimum(frequency_for_latency_hz(k.tau, k.omega_cycles, d_mix, t_cmp_s), f_max_hz)  # eq. (20)
        feasible = np.asarray(p6.feasible & can_train)
        violation = np.where(feasible, 0.0, p6.violation + short)
        nu = p6.nu
    energy = compute_energy_j(k.tau, eps, k.omega_cycles, d_mix, f_hz)  # eq. (5)
    return ComputationStage(d_mix=d_mix, f_hz=f_hz, energy_j=energy, nu=nu, feasible=feasible, violation=violation)
