"""Problem (P7), Theorem 2 and Algorithm 2 (eqs. (18), (30)-(40)), b_min via Lambert W (31)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq, minimize
from scipy.special import lambertw

from simfl.optim.communication import (_solve_h, b_min_hz, b_of_multiplier, bandwidth_search, eta_max, kappa_s,
                                       q_function, solve_p7)
from simfl.radio import power_for_latency_w, uplink_rate_bps

S = 32.0 * 3_491_530
N0 = 10 ** ((-174 - 30) / 10)  # -174 dBm/Hz in W/Hz


def gain_at(distance_m):
    return 10 ** (-(128.1 + 37.6 * np.log10(np.asarray(distance_m, float) / 1000)) / 10)


def upload_energy(b, t, g):
    return power_for_latency_w(b, g, N0, S, t) * t  # P T_com with P from (30)


def test_eta_max_eq18_by_hand():
    # device at 300 m, P_max = 0.2 W, B = 20 MHz: rate = B log2(1 + g P / (N0 B))
    g = gain_at(300)
    rate = 20e6 * np.log2(1 + g * 0.2 / (N0 * 20e6))
    expected = 1 - S / (60 * rate)
    assert eta_max(S, 60.0, np.array([20e6]), np.array([g]), np.array([0.2]), np.array([N0]))[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("distance_m, t_com_s, p_max_w", [(50, 5.0, 0.1), (250, 12.0, 0.15), (400, 20.0, 0.1),
                                                         (399, 1.5, 0.2), (10, 0.3, 0.1)])
def test_b_min_by_lambert_w_equals_numeric_root_of_p_equals_p_max(distance_m, t_com_s, p_max_w):
    g = gain_at(distance_m)
    b = b_min_hz(S, np.array([t_com_s]), np.array([g]), np.array([p_max_w]), np.array([N0]))[0]
    # P(b) is decreasing in b: bracket the crossing with P_max and solve it directly
    smallest = S * np.log(2) / (t_com_s * 700)  # 2^(S/(bT)) stays finite above this band
    root = brentq(lambda x: power_for_latency_w(x, g, N0, S, t_com_s) - p_max_w, smallest, 1e12, xtol=1e-6, rtol=1e-14)
    assert b == pytest.approx(root, rel=1e-9)
    assert power_for_latency_w(b, g, N0, S, t_com_s) == pytest.approx(p_max_w, rel=1e-9)


def test_b_min_is_infinite_when_no_band_is_fast_enough():
    g, p = gain_at(400), 0.1
    kappa = kappa_s(S, np.array([g]), np.array([p]), np.array([N0]))[0]
    assert np.isinf(b_min_hz(S, np.array([0.99 * kappa]), np.array([g]), np.array([p]), np.array([N0]))[0])
    assert np.isfinite(b_min_hz(S, np.array([1.01 * kappa]), np.array([g]), np.array([p]), np.array([N0]))[0])


def test_solve_h_is_lambert_w0():
    r = np.geomspace(1e-4, 1e8, 400)
    assert _solve_h(r) == pytest.approx(1 + lambertw((r - 1) / np.e).real, rel=1e-12)


def test_closed_form_b_of_varpi_solves_q_plus_varpi_and_matches_inner_bisection():
    g = gain_at(np.array([80.0, 200.0, 390.0]))
    t = np.array([10.0, 15.0, 25.0])
    varpi = np.array([1e-7, 3e-7, 2e-6])
    b = b_of_multiplier(varpi, t, g, N0, S)
    assert q_function(b, t, g, N0, S) + varpi == pytest.approx(np.zeros(3), abs=1e-12 * varpi.max())
    by_bisection = bandwidth_search(varpi, t, g, N0, S, np.full(3, 1.0), np.full(3, 1e9), tol_hz=1e-4)
    assert b == pytest.approx(by_bisection, rel=1e-9)


def test_q_is_the_derivative_of_the_upload_energy():
    g, t, b = gain_at(300.0), 12.0, 2e6
    h = 1.0
    numeric = (upload_energy(b + h, t, g) - upload_energy(b - h, t, g)) / (2 * h)
    assert q_function(b, t, g, N0, S) == pytest.approx(numeric, rel=1e-6)


def small_cell_problem(seed: int, n: int = 6, cells: int = 1, m: int = 1):
    rng = np.random.default_rng(seed)
    distance = rng.uniform(30, 400, n)
    g = gain_at(distance)
    p_max = 10 ** ((rng.uniform(20, 23, n) - 30) / 10)
    t = rng.uniform(8, 25, (m, n))
    cell_of = np.arange(n) % cells
    band = np.full(cells, 20e6 * n / 20 * 2)
    return t, cell_of, band, g, p_max


@pytest.mark.parametrize("seed, cells", [(0, 1), (1, 1), (2, 2), (3, 3)])
def test_algorithm2_meets_the_kkt_conditions_35(seed, cells):
    t, cell_of, band, g, p_max = small_cell_problem(seed, n=9, cells=cells, m=3)
    n0 = np.full(len(g), N0)
    st = solve_p7(t, cell_of, band, g, n0, p_max, S)
    assert st.feasible.all()
    b_min = b_min_hz(S, t, g, p_max, n0)
    for k in range(cells):
        members = cell_of == k
        assert st.b_hz[:, members].sum(axis=1) == pytest.approx(np.full(3, band[k]), rel=1e-10)  # (32a)
        q = q_function(st.b_hz[:, members], t[:, members], g[members], N0, S)
        varpi = st.varpi[:, k][:, None] * np.ones_like(q)
        free = st.b_hz[:, members] > b_min[:, members] * (1 + 1e-9)
        assert free.any()
        assert -q[free] == pytest.approx(varpi[free], rel=1e-7)  # (35b) with phi_i = 0
        assert (q[~free] + varpi[~free] >= -1e-9 * varpi[~free]).all()  # phi_i = Q + varpi >= 0 (35a)
    assert (st.p_w <= p_max * (1 + 1e-12)).all()
    # the upload takes exactly T_com (15a)
    rate = uplink_rate_bps(st.b_hz, g, st.p_w, N0)
    assert S / rate == pytest.approx(t, rel=1e-9)


@pytest.mark.parametrize("seed", [4, 5])
def test_algorithm2_matches_brute_force_slsqp(seed):
    t, cell_of, band, g, p_max = small_cell_problem(seed, n=4)
    n0 = np.full(4, N0)
    st = solve_p7(t, cell_of, band, g, n0, p_max, S)
    b_min = b_min_hz(S, t[0], g, p_max, n0)
    scale = 1e6  # optimise in MHz

    def energy(x):
        return upload_energy(x * scale, t[0], g).sum()

    best = np.inf
    for w in np.random.default_rng(seed).dirichlet(np.ones(4), 4):
        x0 = b_min / scale + w * (band[0] - b_min.sum()) / scale
        res = minimize(energy, x0, method="SLSQP", bounds=[(lo / scale, band[0] / scale) for lo in b_min],
                       constraints=[{"type": "eq", "fun": lambda x: x.sum() - band[0] / scale}],
                       options={"ftol": 1e-15, "maxiter": 1000})
        if abs(res.x.sum() * scale - band[0]) < 1e-3 and (res.x * scale >= b_min * (1 - 1e-9)).all():
            best = min(best, energy(res.x))
    assert st.energy_j[0].sum() == pytest.approx(best, rel=1e-7)
    assert st.energy_j[0].sum() <= best * (1 + 1e-9)


def test_bisection_and_newton_give_the_same_bands():
    t, cell_of, band, g, p_max = small_cell_problem(6, n=10, cells=2, m=4)
    n0 = np.full(10, N0)
    a = solve_p7(t, cell_of, band, g, n0, p_max, S, method="bisection")
    b = solve_p7(t, cell_of, band, g, n0, p_max, S, method="newton")
    assert a.b_hz == pytest.approx(b.b_hz, rel=1e-9)


def test_cell_whose_b_min_exceed_its_band_is_infeasible_not_nan():
    t, cell_of, band, g, p_max = small_cell_problem(7, n=6)
    n0 = np.full(6, N0)
    st = solve_p7(np.full((1, 6), 0.8), cell_of, np.array([2e6]), g, n0, p_max, S)
    assert not st.feasible[0]
    assert not np.isnan(st.b_hz).any()
