"""Problem (P6), Theorem 1 and Algorithm 1 (eqs. (19)-(29), gamma kept per the erratum)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from simfl.optim.computation import computation_stage, eta_min, solve_p6
from simfl.optim.learning_curve import error_sum_target, local_error
from paper_setup import paper_world

BETA, GAMMA = 0.3, 0.1


def random_p6(seed: int, n: int, m: int = 1):
    rng = np.random.default_rng(seed)
    rho = rng.uniform(0.5, 2.0, (m, n)) * 1e-2
    d_hi = rng.uniform(1300, 2500, (m, n))
    delta_min = local_error(d_hi, 5.0, BETA, GAMMA)
    delta_max = local_error(np.full(n, 1250.0), 5.0, BETA, GAMMA)
    target = 0.5 * (delta_min.sum(axis=1).max() + delta_max.sum())
    return rho, delta_min, delta_max, target


def objective(rho, delta):
    return (rho * (GAMMA + delta) ** (-3.0 / BETA)).sum(axis=-1)


def test_eta_min_eq17_by_hand():
    # tau omega D_loc / (T f_max) = 1 * 5e6 * 1250 / (60 * 1.5e9) = 0.0694444
    assert eta_min(1, 5e6, np.array([1250.0]), 60.0, np.array([1.5e9]))[0] == pytest.approx(0.0694444, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_algorithm1_meets_the_kkt_conditions_26(seed):
    rho, lo, hi, target = random_p6(seed, 12, m=4)
    sol = solve_p6(rho, lo, hi, target, BETA, GAMMA)
    assert sol.feasible.all()
    assert sol.delta.sum(axis=1) == pytest.approx(np.full(4, target), rel=1e-10)  # (21a)
    marginal = 3 * rho / BETA * (sol.delta + GAMMA) ** (-(BETA + 3) / BETA)  # nu of (26c)
    nu = sol.nu[:, None] * np.ones_like(rho)
    inner = (sol.delta > lo + 1e-12) & (sol.delta < hi - 1e-12)
    at_lo = sol.delta <= lo + 1e-12
    at_hi = sol.delta >= hi - 1e-12
    assert inner.any()
    assert marginal[inner] == pytest.approx(nu[inner], rel=1e-8)
    assert (nu[at_lo] >= marginal[at_lo] * (1 - 1e-9)).all()  # lambda_i >= 0 (26a)
    assert (nu[at_hi] <= marginal[at_hi] * (1 + 1e-9)).all()  # psi_i >= 0 (26b)


@pytest.mark.parametrize("seed", [3, 4])
def test_algorithm1_matches_brute_force_slsqp(seed):
    rho, lo, hi, target = random_p6(seed, 5)
    sol = solve_p6(rho, lo, hi, target, BETA, GAMMA)
    best = np.inf
    for start in np.linspace(0.1, 0.9, 5):
        x0 = lo[0] + start * (hi - lo[0])
        res = minimize(lambda d: objective(rho[0], d) * 1e-2, x0, method="SLSQP",
                       bounds=list(zip(lo[0], hi)), constraints=[{"type": "eq", "fun": lambda d: d.sum() - target}],
                       options={"ftol": 1e-14, "maxiter": 500})
        # SLSQP may stop with "positive directional derivative" at the optimum: judge the point
        if abs(res.x.sum() - target) < 1e-9 and (res.x >= lo[0] - 1e-12).all() and (res.x <= hi + 1e-12).all():
            best = min(best, objective(rho[0], res.x))
    assert objective(rho[0], sol.delta[0]) == pytest.approx(best, rel=1e-7)
    assert objective(rho[0], sol.delta[0]) <= best * (1 + 1e-9)


def test_bisection_and_newton_give_the_same_answer():
    rho, lo, hi, target = random_p6(5, 30, m=3)
    a = solve_p6(rho, lo, hi, target, BETA, GAMMA, method="bisection")
    b = solve_p6(rho, lo, hi, target, BETA, GAMMA, method="newton")
    c = solve_p6(rho, lo, hi, target, BETA, GAMMA, method="illinois")
    assert a.delta == pytest.approx(b.delta, rel=1e-9)
    assert c.delta == pytest.approx(b.delta, rel=1e-9)


def test_slack_target_means_no_synthesis_and_nu_zero():
    rho, lo, hi, _ = random_p6(6, 8)
    sol = solve_p6(rho, lo, hi, hi.sum() + 1.0, BETA, GAMMA)
    assert sol.feasible.all() and sol.nu[0] == 0.0
    assert sol.delta[0] == pytest.approx(hi)


def test_unreachable_target_is_flagged_not_nan():
    rho, lo, hi, _ = random_p6(7, 8)
    sol = solve_p6(rho, lo, hi, lo.sum() - 0.1, BETA, GAMMA)
    assert not sol.feasible[0]
    assert np.isfinite(sol.delta).all()


def test_computation_stage_uses_eq19_eq20_and_eq5():
    world = paper_world(1)
    k = world.constants
    t_cmp = np.full((1, 20), 40.0)
    st = computation_stage(t_cmp, world.d_loc.astype(float), world.f_max_hz, world.eps, k,
                           error_sum_target(20, k))
    f_expected = k.tau * k.omega_cycles * st.d_mix / t_cmp  # (20)
    assert st.f_hz == pytest.approx(f_expected, rel=1e-12)
    assert st.energy_j == pytest.approx(k.tau * world.eps * k.omega_cycles * st.d_mix * st.f_hz**2, rel=1e-12)
    assert local_error(st.d_mix, k.alpha, k.beta, k.gamma).sum() == pytest.approx(error_sum_target(20, k), rel=1e-10)
    assert (st.f_hz <= world.f_max_hz * (1 + 1e-12)).all() and (st.d_mix >= world.d_loc).all()
