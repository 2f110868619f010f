"""Learning model (1)-(4) and its fit (Section III-B)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simfl.optim.learning_curve import (d_mix_for_error, error_sum_target, estimate_zeta, fit_learning_curve,
                                        global_error, learning_curve_plot, local_error, rounds_needed)
from paper_setup import paper_world


def test_local_error_is_eq1_by_hand():
    # 5 * 1250^-0.3 - 0.1: 1250^-0.3 = exp(-0.3 ln 1250) = exp(-2.139276) = 0.1177408
    assert local_error(1250, 5.0, 0.3, 0.1) == pytest.approx(0.4887040, abs=1e-6)


def test_eq19_inverts_eq1():
    d = np.array([100.0, 1250.0, 7000.0])
    assert d_mix_for_error(local_error(d, 5, 0.3, 0.1), 5, 0.3, 0.1) == pytest.approx(d, rel=1e-12)


def test_global_error_is_eq4_with_eq2():
    # every device at D = 1250: Delta = exp(200 (0.4887040 - 1) / 68) = 0.2222813
    k = paper_world(1).constants
    assert global_error(np.full(20, 1250.0), k) == pytest.approx(0.2222813, rel=1e-6)


def test_learning_target_13a_by_hand():
    # I + zeta I / N ln(Delta_max) = 20 + 68 * 20 / 200 * ln 0.2 = 9.0558222
    assert error_sum_target(20, paper_world(1).constants) == pytest.approx(9.0558222, rel=1e-7)


def test_eq3_and_eq4_agree():
    mean_delta, zeta = 0.45, 68.0
    n = rounds_needed(mean_delta, 0.2, zeta)
    assert np.exp(n * (mean_delta - 1) / zeta) == pytest.approx(0.2, rel=1e-12)


def test_fit_recovers_a_known_power_law():
    rng = np.random.default_rng(0)
    sizes = np.geomspace(100, 50_000, 14)
    errors = local_error(sizes, 5.0, 0.3, 0.1) + rng.normal(0, 0.002, sizes.size)
    fit = fit_learning_curve(sizes, errors)
    assert fit.r2 > 0.999
    assert fit.alpha == pytest.approx(5.0, rel=0.15)
    assert fit.beta == pytest.approx(0.3, rel=0.1)
    assert fit.gamma == pytest.approx(0.1, abs=0.03)
    assert np.abs(fit.predict(sizes) - errors).max() < 0.01


def test_fit_keeps_gamma_non_negative_on_a_pure_power_law():
    sizes = np.geomspace(50, 20_000, 10)
    fit = fit_learning_curve(sizes, 3.0 * sizes**-0.5)
    assert fit.gamma >= 0.0
    assert fit.alpha == pytest.approx(3.0, rel=1e-3) and fit.beta == pytest.approx(0.5, rel=1e-3)


def test_fit_rejects_too_few_points():
    with pytest.raises(ValueError):
        fit_learning_curve([100, 200], [0.5, 0.4])


def test_estimate_zeta_recovers_eq4():
    zeta, mean_delta = 68.0, 0.45
    rounds = np.arange(1, 201)
    curve = np.exp(rounds * (mean_delta - 1) / zeta)
    assert estimate_zeta(rounds, curve, mean_delta) == pytest.approx(zeta, rel=1e-10)


def test_estimate_zeta_with_noise_stays_close():
    rng = np.random.default_rng(1)
    rounds = np.arange(1, 101)
    curve = np.exp(rounds * (0.4 - 1) / 50.0) * np.exp(rng.normal(0, 0.02, rounds.size))
    assert estimate_zeta(rounds, curve, 0.4) == pytest.approx(50.0, rel=0.03)


def test_learning_curve_plot_writes_a_png(tmp_path):
    sizes = np.geomspace(100, 10_000, 6)
    fit = fit_learning_curve(sizes, local_error(sizes, 5, 0.3, 0.1))
    out = learning_curve_plot(sizes, local_error(sizes, 5, 0.3, 0.1), fit, tmp_path / "fig3.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_global_error_grows_with_fewer_rounds():
    k = paper_world(1).constants
    fewer = dataclasses.replace(k, rounds=100)
    d = np.full(20, 1500.0)
    assert global_error(d, fewer) > global_error(d, k)
