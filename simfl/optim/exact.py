"""The global optimum of Problem (P1), by Lagrangian duality, with a certificate.

Why this is exact. In the variables (D_mix, eta, b) of every device, (P2) is convex:
the compute energy eps (tau omega)^3 D^3 / (eta T)^2 is jointly convex (D^3/eta^2 is a
perspective of D^3), the upload energy N0/g * u (2^(S/u) - 1) with u = b (1 - eta) T has
a positive semidefinite Hessian in (b, eta) (its determinant is
-G'(u) (2 u G''(u) + G'(u)) >= 0 because e^y (2y^2 - y + 1) >= 1), the power limit
P(b, T_com) <= P_max is the convex set T_com >= S / (b log2(1 + g P_max / (N0 b))), the
learning constraint sum alpha D^-beta - gamma <= target (13a) is convex, and the rest is
linear. Slater's condition holds whenever the problem is strictly feasible, so the dual
has no gap. Relaxing (13a) with nu >= 0 and each cell's band (12e) with varpi_k >= 0
splits the Lagrangian into one problem per device,

    phi_i(eta) = min_D [eps (tau omega)^3 D^3 / (eta T)^2 + nu alpha D^-beta]
               + min_b [P(b) (1 - eta) T + varpi_k b],   eta in [eta_min_i, eta_max_i],

where the inner minimisers are closed forms (a power of the stationary point of D, and
b_i(varpi) of Theorem 2, each clipped to its bounds) and phi_i is convex in eta (partial
minimisation of a jointly convex function), so its minimiser is the root of the
monotone derivative, found by a bracketed search. varpi_k (per cell, for fixed nu) and
nu are then found by monotone one-dimensional searches on the constraint residuals
(the derivatives of the concave dual function).

The certificate: for any nu, varpi >= 0 the dual value q(nu, varpi) is a lower bound on
every plan's energy (weak duality). The primal plan is rebuilt at the dual solution's
eta with Algorithms 1 and 2 (so it meets every constraint exactly), and the relative
gap (E - q) / E bounds how far it is from the optimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from simfl.errors import InfeasiblePlan
from simfl.optim.communication import LN2, CellSums, b_min_hz, b_of_multiplier
from simfl.optim.roots import bracketed_root
from simfl.world import World

ETA_XTOL = 1e-13
RESIDUAL_RTOL = 1e-11


@dataclass(frozen=True)
class DeviceProblem:
    """The per-device data of the Lagrangian subproblems (arrays over devices)."""

    a: np.ndarray  # eps (tau omega)^3 / T^2: compute energy = a D^3 / eta^2
    d_lo: np.ndarray  # D_loc (or the fixed D_mix)
    d_cap: np.ndarray  # D_loc + D_max (or the fixed D_mix)
    cpu: np.ndarray  # f_max T / (tau omega): samples per unit eta at f_max
    gain: np.ndarray
    n0: np.ndarray
    p_max: np.ndarray
    band: np.ndarray  # B of the device's cell (or the fixed sub-band)
    eta_lo: np.ndarray
    eta_hi: np.ndarray
    t_max_s: float
    model_bits: float
    alpha: float
    beta: float
    learning: bool  # D optimised (nu relaxes (13a)) or fixed
    band_fixed: bool  # b fixed (equal split) or optimised (varpi relaxes (12e))


@dataclass(frozen=True)
class DeviceChoice:
    """Minimisers of the per-device Lagrangian at (nu, varpi) and its value."""

    eta: np.ndarray
    d_mix: np.ndarray
    b_hz: np.ndarray
    value: np.ndarray  # phi_i at the minimiser


def _compute_part(p: DeviceProblem, eta: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """min over D of a D^3/eta^2 + nu alpha D^-beta with D_lo <= D <= min(D_cap, cpu eta):
    the minimiser, the value and its derivative in eta (envelope theorem, plus the
    moving bound's term when the CPU limit binds)."""
    d_cpu = p.cpu * eta
    d_hi = np.maximum(np.minimum(p.d_cap, d_cpu), p.d_lo)
    if p.learning and nu > 0:
        d_free = (nu * p.beta * p.alpha * eta**2 / (3.0 * p.a)) ** (1.0 / (p.beta + 3.0))
        d = np.clip(d_free, p.d_lo, d_hi)
        at_cpu = (d_free > d_hi) & (d_cpu < p.d_cap)
    else:
        d = p.d_lo.copy()
        at_cpu = np.zeros(eta.shape, bool)
    value = p.a * d**3 / eta**2 + (nu * p.alpha * d ** (-p.beta) if p.learning else 0.0)
    slope = -2.0 * p.a * d**3 / eta**3
    marginal = 3.0 * p.a * d**2 / eta**2 - (nu * p.beta * p.alpha * d ** (-p.beta - 1.0) if p.learning else 0.0)
    slope = slope + np.where(at_cpu, marginal * p.cpu, 0.0)
    return d, value, slope


def _upload_part(p: DeviceProblem, eta: np.ndarray, varpi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """min over b in [b_min(T_com), B] of P(b) T_com + varpi b: the minimiser, the value
    and its derivative in eta (T_com = (1 - eta) T)."""
    t_com = (1.0 - eta) * p.t_max_s
    k = p.model_bits * LN2
    if p.band_fixed:
        b = p.band
        at_min = np.zeros(eta.shape, bool)
        b_low = b
    else:
        b_low = np.minimum(b_min_hz(p.model_bits, t_com, p.gain, p.p_max, p.n0), p.band)
        b_free = b_of_multiplier(varpi, t_com, p.gain, p.n0, p.model_bits)
        b = np.clip(b_free, b_low, p.band)
        at_min = b_free < b_low
    y = k / (b * t_com)
    ey = np.exp(y)
    energy = p.n0 * b * t_com / p.gain * np.expm1(y)  # P T_com with P from (30)
    value = energy + (0.0 if p.band_fixed else varpi * b)
    d_energy_dt = p.n0 * b / p.gain * (ey * (1.0 - y) - 1.0)
    if not p.band_fixed:
        q_plus = p.n0 * t_com / p.gain * (ey * (1.0 - y) - 1.0) + varpi  # Q(b) + varpi, eq. (34)
        # b_min moves with T_com: d b_min / d T_com from P(b_min, T_com) = P_max
        db_dt = (b * y * ey / t_com) / (ey - 1.0 - y * ey)
        d_energy_dt = d_energy_dt + np.where(at_min, q_plus * db_dt, 0.0)
    return b, value, -p.t_max_s * d_energy_dt


def device_choice(p: DeviceProblem, nu: float, varpi: np.ndarray) -> DeviceChoice:
    """Each device's minimiser of its Lagrangian term phi_i over eta (convex in eta)."""

    def slope(part: DeviceProblem, eta: np.ndarray, w: np.ndarray) -> np.ndarray:
        return _compute_part(part, eta, nu)[2] + _upload_part(part, eta, w)[2]

    s_lo, s_hi = slope(p, p.eta_lo, varpi), slope(p, p.eta_hi, varpi)
    eta = np.where(s_lo >= 0, p.eta_lo, p.eta_hi)
    inner = (s_lo < 0) & (s_hi > 0)
    if inner.any():
        sub = _subset(p, inner)
        vw = varpi[inner]
        eta[inner] = bracketed_root(lambda e: slope(sub, e, vw), sub.eta_lo, sub.eta_hi, xtol=ETA_XTOL,
                                    method="secant", f_lo=s_lo[inner], f_hi=s_hi[inner],
                                    fun_at=lambda e, idx: slope(_subset(sub, idx), e, vw[idx]))
    d, vc, _ = _compute_part(p, eta, nu)
    b, vu, _ = _upload_part(p, eta, varpi)
    return DeviceChoice(eta=eta, d_mix=d, b_hz=b, value=vc + vu)


def _subset(p: DeviceProblem, mask: np.ndarray) -> DeviceProblem:
    fields = {name: getattr(p, name) for name in p.__dataclass_fields__}
    for name, value in fields.items():
        if isinstance(value, np.ndarray):
            fields[name] = value[mask]
    return DeviceProblem(**fields)


@dataclass(frozen=True)
class DualSolution:
    """The dual optimum: multipliers, the per-device choice there, and the dual bound."""

    nu: float
    varpi: np.ndarray  # (K,)
    choice: DeviceChoice
    dual_value_j: float


def solve_dual(world: World, p: DeviceProblem, target: float | None, gamma: float) -> DualSolution:
    """Maximise the dual function over nu >= 0 (13a) and varpi_k >= 0 (12e)."""
    cell_of, n_cells = world.cell_of, world.n_cells
    band_k = world.bandwidth_hz.astype(float)
    sums = CellSums(cell_of, n_cells)
    # a cell without devices has nothing to share: its varpi is 0 and it is not searched
    present = np.bincount(cell_of, minlength=n_cells) > 0
    state: dict[str, np.ndarray | None] = {"log_w": None}

    def choose(nu: float) -> tuple[np.ndarray, DeviceChoice]:
        """For fixed nu the cells decouple: varpi_k makes cell k's sub-bands fill B_k."""
        if p.band_fixed:
            return np.zeros(0), device_choice(p, nu, np.zeros(world.n_devices))

        def full(log_w_present: np.ndarray) -> np.ndarray:
            varpi = np.zeros(n_cells)
            varpi[present] = np.exp(log_w_present)
            return varpi

        def excess(log_w_present: np.ndarray) -> np.ndarray:
            choice = device_choice(p, nu, full(log_w_present)[cell_of])
            return (sums(choice.b_hz) - band_k)[present]

        previous = state["log_w"]
        center = previous if previous is not None else _varpi_guess(p, cell_of, n_cells)[present]
        lo, hi = _expand_bracket(excess, center - 0.5, center + 0.5,
                                 what="the cells' bands (12e)")
        log_w = bracketed_root(excess, lo[0], hi[0], xtol=1e-13, ftol=RESIDUAL_RTOL * band_k[present],
                               method="secant", f_lo=lo[1], f_hi=hi[1])
        state["log_w"] = log_w
        varpi = full(log_w)
        return varpi, device_choice(p, nu, varpi[cell_of])

    def error_excess(nu: float, choice: DeviceChoice) -> float:
        return float((p.alpha * choice.d_mix ** (-p.beta) - gamma).sum() - target)

    if not p.learning or target is None:
        nu = 0.0
        varpi, choice = choose(nu)
    else:
        varpi, choice = choose(0.0)
        if error_excess(0.0, choice) <= 0:
            nu = 0.0  # no synthetic data needed: (13a) is slack
        else:
            def residual(log_nu: np.ndarray) -> np.ndarray:
                return np.array([error_excess(float(np.exp(x)), choose(float(np.exp(x)))[1]) for x in np.ravel(log_nu)])

            center = np.array([_nu_guess(p)])
            lo, hi = _expand_bracket(residual, center - 1.0, center + 1.0,
                                     what="the learning target (12a)")
            log_nu = bracketed_root(residual, lo[0], hi[0], xtol=1e-13, ftol=RESIDUAL_RTOL * max(abs(target), 1.0),
                                    method="secant", f_lo=lo[1], f_hi=hi[1])
            nu = float(np.exp(log_nu[0]))
            varpi, choice = choose(nu)
    dual = float(choice.value.sum())
    if p.learning and target is not None:
        dual -= nu * (target + gamma * world.n_devices)
    if not p.band_fixed:
        dual -= float(varpi @ band_k)
    return DualSolution(nu=nu, varpi=varpi, choice=choice, dual_value_j=dual)


Bracket = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _expand_bracket(fun: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, *, what: str,
                    step: float = 2.3, max_steps: int = 80) -> Bracket:
    """Widen [lo, hi] (log scale) until fun(lo) >= 0 >= fun(hi), fun decreasing; a
    residual that never changes sign means the relaxed constraint cannot be met."""
    lo, hi = np.array(lo, float), np.array(hi, float)
    f_lo, f_hi = fun(lo), fun(hi)
    for _ in range(max_steps):
        bad_lo, bad_hi = f_lo < 0, f_hi > 0
        if not (bad_lo.any() or bad_hi.any()):
            return (lo, f_lo), (hi, f_hi)
        if bad_lo.any():
            lo = np.where(bad_lo, lo - step, lo)
            f_lo = fun(lo)
        if bad_hi.any():
            hi = np.where(bad_hi, hi + step, hi)
            f_hi = fun(hi)
        step *= 1.5
    raise InfeasiblePlan(f"no plan meets {what} together with the other constraints of (P1): the dual search "
                         "diverged (the constraints are jointly infeasible)")


def _varpi_guess(p: DeviceProblem, cell_of: np.ndarray, n_cells: int) -> np.ndarray:
    """A starting log varpi per cell: -Q at an equal share of the band at mid eta."""
    share = p.band / np.bincount(cell_of, minlength=n_cells)[cell_of]
    t_com = (1.0 - 0.5 * (p.eta_lo + p.eta_hi)) * p.t_max_s
    y = p.model_bits * LN2 / (share * t_com)
    minus_q = p.n0 * t_com / p.gain * (1.0 - np.exp(y) * (1.0 - y))
    return np.array([np.log(np.median(minus_q[cell_of == k])) if (cell_of == k).any() else 0.0
                     for k in range(n_cells)])


def _nu_guess(p: DeviceProblem) -> float:
    """A starting log nu: the stationary point of D at 1.2 D_lo and mid eta."""
    eta = 0.5 * (p.eta_lo + p.eta_hi)
    d = 1.2 * p.d_lo
    return float(np.log(np.median(3.0 * p.a * d ** (p.beta + 3.0) / (p.beta * p.alpha * eta**2))))
