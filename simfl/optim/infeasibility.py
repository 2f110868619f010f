"""Checks that (P1) has a plan at all, run before any search. Each failure raises
InfeasiblePlan naming the device (or cell) and the constraint, with the numbers."""

from __future__ import annotations

import numpy as np

from simfl.errors import InfeasiblePlan
from simfl.optim.communication import b_min_hz
from simfl.optim.learning_curve import error_sum_target, global_error, local_error
from simfl.radio import uplink_rate_bps
from simfl.world import World


def _g(x: float) -> str:
    return f"{x:.4g}"


def time_split_bounds(world: World, d_mix: np.ndarray, b_hz: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[eta_min, eta_max] per device, eqs. (17)(18), for the least data each device must
    train (`d_mix`: D_loc, or a fixed D_loc + D_gen) and the widest band it may get
    (its cell's B, or a fixed sub-band). Raises InfeasiblePlan when a device cannot
    train and upload within T_max even at f_max, P_max and that band."""
    k = world.constants
    band = world.device_bandwidth_hz if b_hz is None else np.asarray(b_hz, float)
    check_finite_inputs(world, band)
    t_cmp_min = k.tau * k.omega_cycles * d_mix / world.f_max_hz  # eq. (6) at f_max
    rate = uplink_rate_bps(band, world.gain, world.p_max_w, world.device_noise_w_per_hz)
    t_com_min = k.model_bits / rate  # eq. (8) at P_max over the band
    band_name = "its cell's whole band" if b_hz is None else "its fixed sub-band"
    slow_cpu = np.flatnonzero(t_cmp_min >= k.t_max_s)
    if slow_cpu.size:
        i = int(slow_cpu[0])
        raise InfeasiblePlan(
            f"device {i}: f_max = {_g(world.f_max_hz[i])} Hz trains its {_g(d_mix[i])} samples in "
            f"{_g(t_cmp_min[i])} s, not within T_max = {_g(k.t_max_s)} s (constraints (12b), (12d))")
    slow_link = np.flatnonzero(t_com_min >= k.t_max_s)
    if slow_link.size:
        i = int(slow_link[0])
        raise InfeasiblePlan(
            f"device {i} (cell {world.cell_names[world.cell_of[i]]}, {_g(world.distance_m[i])} m): uploading "
            f"S = {_g(k.model_bits)} bits at P_max = {_g(world.p_max_w[i])} W over {band_name} "
            f"b = {_g(band[i])} Hz takes {_g(t_com_min[i])} s, not within T_max = {_g(k.t_max_s)} s "
            f"(eta_max = {_g(1 - t_com_min[i] / k.t_max_s)} <= 0; constraints (12b), (12e), (12f))")
    both = np.flatnonzero(t_cmp_min + t_com_min >= k.t_max_s)
    if both.size:
        i = int(both[0])
        raise InfeasiblePlan(
            f"device {i}: training {_g(d_mix[i])} samples at f_max takes {_g(t_cmp_min[i])} s and uploading at "
            f"P_max over {band_name} takes {_g(t_com_min[i])} s, {_g(t_cmp_min[i] + t_com_min[i])} s together, "
            f"more than T_max = {_g(k.t_max_s)} s (eta_min = {_g(t_cmp_min[i] / k.t_max_s)} >= eta_max = "
            f"{_g(1 - t_com_min[i] / k.t_max_s)}; constraint (12b))")
    if b_hz is None:
        b_need = b_min_hz(k.model_bits, k.t_max_s - t_cmp_min, world.gain, world.p_max_w, world.device_noise_w_per_hz)
        for c in range(world.n_cells):
            members = world.cell_of == c
            need = float(b_need[members].sum())
            if need > world.bandwidth_hz[c] * (1 + 1e-9):
                worst = int(np.flatnonzero(members)[np.argmax(b_need[members])])
                raise InfeasiblePlan(
                    f"cell {world.cell_names[c]}: its {int(members.sum())} devices need at least {_g(need)} Hz "
                    f"together to upload at P_max in the time left after training at f_max, more than the "
                    f"cell's band B = {_g(world.bandwidth_hz[c])} Hz (constraint (12e); device {worst} alone "
                    f"needs {_g(b_need[worst])} Hz)")
    return t_cmp_min / k.t_max_s, 1.0 - t_com_min / k.t_max_s


def check_finite_inputs(world: World, band_hz: np.ndarray) -> None:
    """Every number a device's plan is computed from is finite: f_max, eps, P_max, the gain
    g, N0, the band b and the signal-to-noise ratio g P_max / (N0 b) of eq. (7). Raises
    InfeasiblePlan naming the device and the number otherwise: an infinite power or gain
    makes every rate and energy NaN, and the search would then end blaming a constraint
    that has nothing to do with it."""
    with np.errstate(all="ignore"):
        snr = world.gain * world.p_max_w / (world.device_noise_w_per_hz * band_hz)
    numbers = (("f_max", world.f_max_hz, " Hz"), ("eps", world.eps, ""), ("P_max", world.p_max_w, " W"),
               ("the gain g", world.gain, ""), ("N0", world.device_noise_w_per_hz, " W/Hz"), ("b", band_hz, " Hz"),
               ("the signal-to-noise ratio g P_max / (N0 b)", snr, ""))
    for label, values, unit in numbers:
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise InfeasiblePlan(
                f"device {i} (cell {world.cell_names[world.cell_of[i]]}, {_g(world.distance_m[i])} m): {label} is "
                f"{_g(values[i])}{unit}, not a finite number (P_max = {_g(world.p_max_w[i])} W, g = "
                f"{_g(world.gain[i])}, N0 = {_g(world.device_noise_w_per_hz[i])} W/Hz, b = {_g(band_hz[i])} Hz), so "
                f"no rate (7) or energy (5), (9) can be computed; check devices.p_max_dbm, f_max_hz, eps and the "
                f"cell's path_loss, noise_dbm_per_hz and bandwidth_hz")


def check_learning_target(world: World, eta_hi: np.ndarray) -> float:
    """The right-hand side of (21a), after checking that some synthetic amounts reach it:
    with D_max samples on every device (12c), and with what each CPU can train within
    its largest computation time eta_max T_max at f_max (12d)."""
    k = world.constants
    target = error_sum_target(world.n_devices, k)
    d_loc = world.d_loc.astype(float)
    most = d_loc + k.dgen_max
    least_error_sum = float(local_error(most, k.alpha, k.beta, k.gamma).sum())
    if least_error_sum > target:
        raise InfeasiblePlan(
            f"the learning target Delta_max = {_g(k.err_max)} is out of reach: even with D_max = {k.dgen_max} "
            f"synthetic samples on every device the global error (4) after N = {k.rounds} rounds is "
            f"{_g(global_error(most, k))} (sum of local errors {_g(least_error_sum)} > {_g(target)}; "
            f"constraints (12a), (12c))")
    cpu = np.minimum(most, world.f_max_hz * eta_hi * k.t_max_s / (k.tau * k.omega_cycles))
    if local_error(cpu, k.alpha, k.beta, k.gamma).sum() > target:
        short = np.flatnonzero(cpu < most)
        i = int(short[np.argmin(cpu[short] - d_loc[short])]) if short.size else 0
        raise InfeasiblePlan(
            f"the learning target Delta_max = {_g(k.err_max)} is out of reach within T_max = {_g(k.t_max_s)} s: "
            f"at f_max the devices can train at most {_g(cpu.sum())} samples per round in all (device {i}: "
            f"{_g(cpu[i])} samples at f_max = {_g(world.f_max_hz[i])} Hz), giving a global error of "
            f"{_g(global_error(cpu, k))} > {_g(k.err_max)} (constraints (12a), (12b), (12d))")
    return target
