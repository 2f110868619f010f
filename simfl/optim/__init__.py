"""The FIMI optimiser (Section IV of the paper): the learning-curve fit (1)-(4),
Algorithm 1 for (P6), Algorithm 2 for (P7), Algorithm 3 over the time split (P5),
category-wise water-filling (P8), and an exact dual solver of (P1) to measure them by."""

from simfl.optim.communication import b_min_hz, eta_max, solve_p7
from simfl.optim.computation import eta_min, solve_p6
from simfl.optim.cross_entropy import DEFAULT_SETTINGS, CEResult, cross_entropy_search, history_frame
from simfl.optim.fimi import (FimiSolution, equal_bandwidth_hz, integer_d_gen, plan_from_solution, plan_json,
                              solve, solve_resources)
from simfl.optim.learning_curve import (CurveFit, d_mix_for_error, error_sum_target, estimate_zeta,
                                        fit_learning_curve, global_error, learning_curve_plot, local_error,
                                        rounds_needed)
from simfl.optim.waterfill import data_entropy_bits, waterfill

__all__ = [
    "CEResult",
    "CurveFit",
    "DEFAULT_SETTINGS",
    "FimiSolution",
    "b_min_hz",
    "cross_entropy_search",
    "d_mix_for_error",
    "data_entropy_bits",
    "equal_bandwidth_hz",
    "error_sum_target",
    "estimate_zeta",
    "eta_max",
    "eta_min",
    "fit_learning_curve",
    "global_error",
    "history_frame",
    "integer_d_gen",
    "learning_curve_plot",
    "local_error",
    "plan_from_solution",
    "plan_json",
    "rounds_needed",
    "solve",
    "solve_p6",
    "solve_p7",
    "solve_resources",
    "waterfill",
]
