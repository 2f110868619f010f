"""The learning model of Section III-B: local error versus data amount (1), its fit on a
public proxy task (Section III-B2, Fig. 3), and the global error after N rounds (2)-(4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import curve_fit

from simfl.world import Constants


def local_error(d_mix: ArrayLike, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Local learning error, eq. (1): delta = alpha D_mix^-beta - gamma."""
    return alpha * np.asarray(d_mix, float) ** (-beta) - gamma


def d_mix_for_error(delta: ArrayLike, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Eq. (1) solved for the data amount, the D_loc + D_gen of eq. (19):
    D_mix = ((gamma + delta) / alpha)^(-1/beta)."""
    return ((gamma + np.asarray(delta, float)) / alpha) ** (-1.0 / beta)


def global_error(d_mix: ArrayLike, constants: Constants) -> float:
    """Global error after N rounds, eq. (4) with the mean local error (2):
    Delta = exp(N (mean delta - 1) / zeta)."""
    k = constants
    mean_delta = float(np.mean(local_error(d_mix, k.alpha, k.beta, k.gamma)))  # eq. (2)
    return float(np.exp(k.rounds * (mean_delta - 1.0) / k.zeta))


def rounds_needed(mean_delta: float, err: float, zeta: float) -> float:
    """Rounds to reach global error `err`, eq. (3): N = zeta ln(1/Delta) / (1 - mean delta)."""
    return zeta * np.log(1.0 / err) / (1.0 - mean_delta)


def error_sum_target(n_devices: int, constants: Constants) -> float:
    """Right-hand side of the learning constraint (13a)/(21a): the largest sum of local
    errors that still meets Delta <= Delta_max, I + zeta I / N ln(Delta_max)."""
    k = constants
    return n_devices + k.zeta * n_devices / k.rounds * np.log(k.err_max)


@dataclass(frozen=True)
class CurveFit:
    """Fitted parameters of eq. (1) and the coefficient of determination of the fit."""

    alpha: float
    beta: float
    gamma: float
    r2: float

    def predict(self, sizes: ArrayLike) -> np.ndarray:
        return local_error(sizes, self.alpha, self.beta, self.gamma)


def fit_learning_curve(sizes: ArrayLike, errors: ArrayLike) -> CurveFit:
    """Least-squares fit of eq. (1), delta = alpha D^-beta - gamma, to measured
    (training-set size, error) pairs, with alpha, beta > 0 and gamma >= 0.

    The initial guess comes from a straight line in log-log space (gamma = 0), which is
    the exact answer when the error floor is zero and close to it otherwise; without it
    curve_fit often stalls in the flat region of large alpha and beta.
    """
    d = np.asarray(sizes, float)
    e = np.asarray(errors, float)
    if d.shape != e.shape or d.size < 3:
        raise ValueError(f"need at least 3 (size, error) pairs of equal length, got {d.size} sizes and {e.size} errors")
    if (d <= 0).any():
        raise ValueError("training-set sizes must be > 0")
    positive = e > 0
    if positive.sum() >= 2:
        slope, intercept = np.polyfit(np.log(d[positive]), np.log(e[positive]), 1)
        beta0 = float(np.clip(-slope, 1e-3, 5.0))
        alpha0 = float(np.exp(intercept))
    else:
        beta0, alpha0 = 0.3, float(max(e.max(), 1e-3) * d.min() ** 0.3)

    def model(x: np.ndarray, alpha: float, beta: float, gamma: float) -> np.ndarray:
        return alpha * x ** (-beta) - gamma

    params, _ = curve_fit(model, d, e, p0=[alpha0, beta0, 0.0 + 1e-6],
                          bounds=([1e-12, 1e-6, 0.0], [np.inf, 10.0, np.inf]), maxfev=20000)
    alpha, beta, gamma = (float(p) for p in params)
    residual = e - model(d, alpha, beta, gamma)
    total = float(((e - e.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    return CurveFit(alpha=alpha, beta=beta, gamma=gamma, r2=r2)


def estimate_zeta(rounds: ArrayLike, global_errors: ArrayLike, mean_local_error: float) -> float:
    """Estimate zeta of eqs. (3)/(4) from an error-versus-round curve.

    Eq. (4) says ln(1/Delta_n) = n (1 - mean delta) / zeta: a line through the origin in
    n with slope (1 - mean delta)/zeta. The slope is the least-squares fit through the
    origin, slope = sum(n y) / sum(n^2) with y = ln(1/Delta_n), so zeta = (1 - mean delta) / slope.
    """
    n = np.asarray(rounds, float)
    err = np.asarray(global_errors, float)
    keep = (err > 0) & (err < 1) & (n > 0)
    if keep.sum() < 1:
        raise ValueError("need at least one round with a global error in (0, 1)")
    y = np.log(1.0 / err[keep])
    slope = float((n[keep] * y).sum() / (n[keep] ** 2).sum())
    if not 0 < mean_local_error < 1:
        raise ValueError(f"mean local error must be in (0, 1), got {mean_local_error}")
    return (1.0 - mean_local_error) / slope


def learning_curve_plot(sizes: ArrayLike, errors: ArrayLike, fit: CurveFit, path: str | Path,
                        title: str = "Local error versus training-data amount") -> Path:
    """Fig. 3: measured local errors and the fitted power law (1), written to `path`."""
    import matplotlib.pyplot as plt  # deferred: matplotlib, only for Fig. 3

    d = np.asarray(sizes, float)
    grid = np.geomspace(d.min(), d.max(), 200)
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    ax.plot(d, errors, "o", label="measured")
    ax.plot(grid, fit.predict(grid), "-",
            label=f"fit: {fit.alpha:.3g} D^-{fit.beta:.3g} - {fit.gamma:.3g} (R² = {fit.r2:.3f})")
    ax.set_xlabel("training samples D")
    ax.set_ylabel("local error δ")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
