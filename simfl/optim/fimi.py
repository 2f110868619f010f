"""The FIMI optimiser (Section IV): synthetic amounts and resources of every device, by
the paper's cross-entropy search (Algorithm 3 over Algorithms 1 and 2) or by the exact
dual solver; and the bridges to a Plan and to the `simfl plan` JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from simfl.errors import InfeasiblePlan, SimflError
from simfl.jobs import RoundTotals
from simfl.optim.communication import CommunicationStage, fixed_band_stage, solve_p7
from simfl.optim.computation import ComputationStage, computation_stage
from simfl.optim.cross_entropy import DEFAULT_SETTINGS, CEResult, CrossEntropy, cross_entropy_search
from simfl.optim.exact import DeviceProblem, solve_dual
from simfl.optim.infeasibility import check_learning_target, time_split_bounds
from simfl.optim.learning_curve import global_error
from simfl.optim.waterfill import waterfill
from simfl.plan import Plan, plan_costs
from simfl.world import World

# The cross-entropy search samples one time split per device: measured with its default
# settings (benchmarks/plan_speed.py), it ends 0.45% above the exact optimum at 100
# devices and 44% above it at 1,000. Above this size it is refused, not silently poor.
CE_MAX_DEVICES = 200


@dataclass(frozen=True)
class FimiSolution(RoundTotals):
    """A solution of (P1) per device (continuous D_gen, as the paper's (19) gives it).

    Energies are per round in J; `round_energy_j` is eq. (10). `history` is the CE
    trajectory (CEResult.HISTORY_COLUMNS) for Fig. 5a, None for the exact solver.
    `info` holds diagnostics: the multipliers nu and varpi, the dual bound and gap (exact),
    iterations, wall time.
    """

    solver: str
    eta: np.ndarray
    eta_min: np.ndarray
    eta_max: np.ndarray
    d_gen: np.ndarray
    d_mix: np.ndarray
    f_hz: np.ndarray
    b_hz: np.ndarray
    p_w: np.ndarray
    t_cmp_s: np.ndarray
    t_com_s: np.ndarray
    e_cmp_j: np.ndarray
    e_com_j: np.ndarray
    global_error: float
    history: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class _Setup:
    """What the searches need, fixed once per solve."""

    world: World
    lo: np.ndarray
    hi: np.ndarray
    target: float | None
    d_mix_fixed: np.ndarray | None
    b_fixed: np.ndarray | None
    method: str

    def stages(self, eta: np.ndarray) -> tuple[ComputationStage, CommunicationStage]:
        """Algorithms 1 and 2 (or their fixed-data / fixed-band versions) for a batch of eta."""
        w, k = self.world, self.world.constants
        cmp_ = computation_stage(eta * k.t_max_s, w.d_loc.astype(float), w.f_max_hz, w.eps, k, self.target,
                                 d_mix_fixed=self.d_mix_fixed, method=self.method)
        t_com = (1.0 - eta) * k.t_max_s
        if self.b_fixed is not None:
            com = fixed_band_stage(t_com, self.b_fixed, w.gain, w.device_noise_w_per_hz, w.p_max_w, k.model_bits)
        else:
            com = solve_p7(t_com, w.cell_of, w.bandwidth_hz, w.gain, w.device_noise_w_per_hz, w.p_max_w,
                           k.model_bits, method=self.method)
        return cmp_, com

    def scored(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E^round(eta) of (P5) per row, +inf where (P6) or (P7) has no solution, and how
        far such a row is from feasibility (0 for feasible rows)."""
        cmp_, com = self.stages(eta)
        total = cmp_.energy_j.sum(axis=-1) + com.energy_j.sum(axis=-1)
        ok = cmp_.feasible & com.feasible & np.isfinite(total)
        violation = np.where(ok, 0.0, np.maximum(cmp_.violation + com.violation, 1e-300))
        return np.where(ok, total, np.inf), violation

    def energy(self, eta: np.ndarray) -> np.ndarray:
        """E^round(eta) of (P5) per row, +inf where (P6) or (P7) has no solution."""
        return self.scored(eta)[0]


def equal_bandwidth_hz(world: World) -> np.ndarray:
    """b_i = B_k / (devices in cell k): the fixed split of the `w/o BA` ablation."""
    per_cell = np.bincount(world.cell_of, minlength=world.n_cells)
    return world.bandwidth_hz[world.cell_of] / per_cell[world.cell_of]


def solve(world: World, solver: str = "ce", rng: np.random.Generator | None = None, *,
          settings: CrossEntropy | None = None, synthesis: bool = True, d_gen: np.ndarray | None = None,
          equal_bandwidth: bool = False, method: str = "newton") -> FimiSolution:
    """Solve (P1) for `world`.

    solver: "ce" (Algorithm 3 over Algorithms 1 and 2, as in the paper; needs `rng`;
        `settings` are M, K, J, rho, tol, default `DEFAULT_SETTINGS`) or
        "exact" (the dual solver of simfl.optim.exact, with a duality-gap certificate).
    synthesis: False fixes D_gen = 0 and drops the learning constraint (TFL, SST).
    d_gen: fixed synthetic amounts per device (HDC, ablations): the learning constraint is
        dropped and only f, b, P and the time split are optimised.
    equal_bandwidth: b_i = B_k / I_k instead of optimised sub-bands (`fimi-no-ba`).
    method: "newton" (bracketed Newton steps, default), "illinois" (bracketed regula
        falsi) or "bisection" (as the paper) for the outer searches of Algorithms 1 and 2.

    Raises InfeasiblePlan (naming the device or cell and the constraint) when no plan
    meets the constraints. When not one cross-entropy sample is feasible, the exact
    solver decides whether a plan exists (and supplies it, flagged in info["fallback"]).
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; one of {', '.join(SOLVERS)}")
    started = time.perf_counter()
    d_loc = world.d_loc.astype(float)
    learning = synthesis and d_gen is None
    # the least data each device trains: D_loc when D_gen is optimised, else the fixed D_mix
    d_least = d_loc + (0.0 if d_gen is None else np.asarray(d_gen, float))
    d_mix_fixed = None if learning else d_least
    b_fixed = equal_bandwidth_hz(world) if equal_bandwidth else None
    lo, hi = time_split_bounds(world, d_least, b_fixed)
    target = check_learning_target(world, hi) if learning else None
    setup = _Setup(world, lo, hi, target, d_mix_fixed, b_fixed, method)

    info: dict[str, Any] = {}
    eta, history = SOLVERS[solver](setup, _device_problem(world, setup, d_least, learning), rng,
                                   settings or DEFAULT_SETTINGS, info)
    sol = _assemble(setup, eta, solver, history, info)
    if "dual_bound_j" in info:
        info["duality_gap"] = float((sol.round_energy_j - info["dual_bound_j"]) / sol.round_energy_j)
    info["time_s"] = time.perf_counter() - started
    return sol


TimeSplitSearch = Callable[["_Setup", DeviceProblem, "np.random.Generator | None", CrossEntropy, dict[str, Any]],
                           tuple[np.ndarray, "np.ndarray | None"]]


def _cross_entropy_split(setup: _Setup, problem: DeviceProblem, rng: np.random.Generator | None,
                         settings: CrossEntropy, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """The paper's search (Algorithm 3 over Algorithms 1 and 2): each device's time split
    eta and the search's history (Fig. 5a)."""
    world = setup.world
    if world.n_devices > CE_MAX_DEVICES:
        raise SimflError(f"optimisation.solver: the cross-entropy search does not converge for {world.n_devices} "
                         f"devices (it samples a time split per device; measured 0.45% above the optimum at 100 "
                         f"devices, 44% at 1,000), so it is used for at most {CE_MAX_DEVICES}; use the exact solver "
                         "(optimisation.solver: exact or --solver exact), which is optimal with a duality-gap "
                         "certificate and plans 10,000 devices in under a minute")
    if rng is None:
        raise ValueError("the cross-entropy solver needs an rng (e.g. simfl.world.rng(seed, 'policy'))")
    result: CEResult = cross_entropy_search(setup.scored, setup.lo, setup.hi, settings, rng)
    info["iterations"] = result.iterations
    if np.isfinite(result.energy_j):
        return result.eta, result.history
    # No sample was feasible. That alone does not prove the problem infeasible (the
    # feasible set can be a thin sliver far from mu_0 = 0.5), so the exact solver
    # decides: it raises InfeasiblePlan naming the constraint, or finds the plan.
    dual = solve_dual(world, problem, setup.target, world.constants.gamma)
    info["fallback"] = "exact: no cross-entropy sample was feasible"
    return dual.choice.eta, result.history


def _exact_split(setup: _Setup, problem: DeviceProblem, rng: np.random.Generator | None,
                 settings: CrossEntropy, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """The dual solver of simfl.optim.exact: the optimal time splits, with the dual bound
    that certifies them (no history)."""
    dual = solve_dual(setup.world, problem, setup.target, setup.world.constants.gamma)
    info.update(nu=dual.nu, varpi=dual.varpi.tolist(), dual_bound_j=dual.dual_value_j)
    return dual.choice.eta, None


# The solvers by name (`optimisation.solver`, `--solver`): each finds every device's time
# split eta; the rest of the plan follows from it in `_assemble`.
SOLVERS: dict[str, TimeSplitSearch] = {"ce": _cross_entropy_split, "exact": _exact_split}


def solve_resources(world: World, d_gen: np.ndarray, solver: str = "exact", rng: np.random.Generator | None = None,
                    **kwargs: Any) -> FimiSolution:
    """Optimise f, b, P and the time split for FIXED synthetic amounts `d_gen` (I,)
    (TFL with zeros, HDC and the no-OA ablation with FIMI's amounts)."""
    return solve(world, solver, rng, d_gen=np.asarray(d_gen, float), **kwargs)


def _device_problem(world: World, setup: _Setup, d_least: np.ndarray, learning: bool) -> DeviceProblem:
    k = world.constants
    return DeviceProblem(
        a=world.eps * (k.tau * k.omega_cycles) ** 3 / k.t_max_s**2,
        d_lo=d_least,
        d_cap=d_least + k.dgen_max if learning else d_least,
        cpu=world.f_max_hz * k.t_max_s / (k.tau * k.omega_cycles),
        gain=world.gain,
        n0=world.device_noise_w_per_hz,
        p_max=world.p_max_w,
        band=world.device_bandwidth_hz if setup.b_fixed is None else setup.b_fixed,
        eta_lo=setup.lo,
        eta_hi=setup.hi,
        t_max_s=k.t_max_s,
        model_bits=k.model_bits,
        alpha=k.alpha,
        beta=k.beta,
        learning=learning,
        band_fixed=setup.b_fixed is not None,
    )


def _assemble(setup: _Setup, eta: np.ndarray, solver: str, history: np.ndarray | None,
              info: dict[str, Any]) -> FimiSolution:
    """Run Algorithms 1 and 2 once more at the chosen eta and collect every quantity."""
    w, k = setup.world, setup.world.constants
    cmp_, com = setup.stages(eta[None, :])
    if not cmp_.feasible[0]:
        # without a learning target (TFL, fixed synthetic amounts) (P6) only has to fit the
        # training into its time: (12a) is not part of the problem then
        what = ("the learning target (12a) cannot be met at f <= f_max (12d)" if setup.target is not None
                else "a device cannot train its samples within its share of T_max at f_max (12b), (12d)")
        raise InfeasiblePlan(f"the chosen time split is infeasible for (P6), the computation stage: {what}")
    if not com.feasible[0]:
        raise InfeasiblePlan("the chosen time split is infeasible for (P7), the upload stage: the cells' bands (12e) "
                             "cannot carry every upload within the rest of T_max at P_max (12f)")
    info.setdefault("nu_p6", float(cmp_.nu[0]))
    if com.varpi.size:
        info.setdefault("varpi_p7", com.varpi[0].tolist())
    d_mix = cmp_.d_mix[0]
    return FimiSolution(
        solver=solver, eta=eta, eta_min=setup.lo, eta_max=setup.hi,
        d_gen=d_mix - w.d_loc, d_mix=d_mix, f_hz=cmp_.f_hz[0], b_hz=com.b_hz[0], p_w=com.p_w[0],
        t_cmp_s=eta * k.t_max_s, t_com_s=(1.0 - eta) * k.t_max_s,
        e_cmp_j=cmp_.energy_j[0], e_com_j=com.energy_j[0],
        global_error=global_error(d_mix, k), history=history, info=info,
    )


def integer_d_gen(world: World, sol: FimiSolution) -> np.ndarray:
    """Whole synthetic samples per device: rounded up so the learning target still holds,
    except where that would break D_max or f_max within T_cmp (then rounded down)."""
    k = world.constants
    up = np.ceil(sol.d_gen - 1e-6)
    f_up = k.tau * k.omega_cycles * (world.d_loc + up) / sol.t_cmp_s
    ok = (up <= k.dgen_max) & (f_up <= world.f_max_hz * (1 + 1e-9))
    return np.maximum(np.where(ok, up, np.floor(sol.d_gen + 1e-6)), 0).astype(np.int64)


def plan_from_solution(world: World, sol: FimiSolution, generator: str | None = "diffusion",
                       d_gen_per_class: np.ndarray | None = None) -> Plan:
    """The Plan of a solution: whole synthetic samples spread over classes by
    water-filling (P8, Theorem 3) unless the policy gives its own (I, C) split (HDC puts
    everything in the rarest class); f recomputed so training the whole samples still
    takes exactly T_cmp; b and P as solved."""
    k = world.constants
    if d_gen_per_class is None:
        per_class = waterfill(world.d_loc_per_class, integer_d_gen(world, sol))
    else:
        per_class = np.asarray(d_gen_per_class, dtype=np.int64)
        if per_class.shape != world.d_loc_per_class.shape:
            raise ValueError(f"d_gen_per_class has shape {per_class.shape}, expected {world.d_loc_per_class.shape}")
    d_gen = per_class.sum(axis=1)
    f_hz = np.minimum(k.tau * k.omega_cycles * (world.d_loc + d_gen) / sol.t_cmp_s, world.f_max_hz)
    info = {"solver": sol.solver, "round_energy_j": sol.round_energy_j, "global_error": sol.global_error,
            **{key: v for key, v in sol.info.items() if np.isscalar(v)}}
    return Plan(d_gen_per_class=per_class, f_hz=f_hz, b_hz=sol.b_hz.copy(), p_w=sol.p_w.copy(),
                generator=generator if d_gen.sum() > 0 else None, info=info)


def _scalar_or_list(values: np.ndarray) -> float | list[float]:
    return float(values[0]) if len(values) == 1 else [float(v) for v in values]


def plan_json(world: World, plan: Plan, sol: FimiSolution | None, policy: str, solver: str) -> dict[str, Any]:
    """The `simfl plan` JSON: constants and one record per device, SI units, gains linear,
    energies per round in J (from the plan itself, eqs. (5)-(9))."""
    k = world.constants
    costs = plan_costs(world, plan)
    d_gen = plan.d_gen
    out: dict[str, Any] = {
        "policy": policy,
        "solver": solver,
        "energy_j": costs.round_energy_j,
        "latency_s": costs.round_latency_s,
        "global_error": global_error(world.d_loc + d_gen, k),
        "total_d_gen": int(d_gen.sum()),
        "constants": {
            "tau": k.tau, "omega_cycles": k.omega_cycles, "model_bits": k.model_bits,
            "bandwidth_hz": _scalar_or_list(world.bandwidth_hz),
            "noise_w_per_hz": _scalar_or_list(world.noise_w_per_hz),
            "t_max_s": k.t_max_s, "dgen_max": k.dgen_max, "alpha": k.alpha, "beta": k.beta, "gamma": k.gamma,
            "zeta": k.zeta, "rounds": k.rounds, "err_max": k.err_max,
        },
        "devices": [],
    }
    if sol is not None:
        out["continuous_energy_j"] = sol.round_energy_j
        out["solver_info"] = {key: v for key, v in sol.info.items() if np.isscalar(v) or isinstance(v, list)}
        if sol.history is not None:
            out["ce_history"] = [dict(zip(CEResult.HISTORY_COLUMNS, map(float, row))) for row in sol.history]
    for i in range(world.n_devices):
        out["devices"].append({
            "id": i,
            "cell": world.cell_names[world.cell_of[i]],
            "distance_m": float(world.distance_m[i]),
            "gain": float(world.gain[i]),
            "d_loc": int(world.d_loc[i]),
            "d_loc_per_class": [int(x) for x in world.d_loc_per_class[i]],
            "f_max_hz": float(world.f_max_hz[i]),
            "eps": float(world.eps[i]),
            "p_max_w": float(world.p_max_w[i]),
            "d_gen": int(d_gen[i]),
            "d_gen_per_class": [int(x) for x in plan.d_gen_per_class[i]],
            "f_hz": float(plan.f_hz[i]),
            "b_hz": float(plan.b_hz[i]),
            "p_w": float(plan.p_w[i]),
            "t_cmp_s": float(costs.t_cmp_s[i]),
            "t_com_s": float(costs.t_com_s[i]),
            "energy_j": float(costs.energy_j[i]),
            "eta": float(sol.eta[i]) if sol is not None else None,
        })
    return out
