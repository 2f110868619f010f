"""Plan time of the FIMI optimiser for 20, 100 and 1,000 devices, both solvers (the
cross-entropy search only up to simfl.optim.fimi.CE_MAX_DEVICES: measured here before that
limit, it ended 44% above the optimum at 1,000 devices).

    python benchmarks/plan_speed.py [--repeats 1] [--sizes 20 100 1000]

20 devices is the Section V-A cell; larger sizes tile that cell (20 devices, 20 MHz each)
on a grid, so every cell stays as loaded as the paper's. Prints wall time per solve, the
round energy, the total synthetic amount, the CE gap to the exact optimum, the exact
solver's duality gap, and the machine's load average (other jobs slow every number;
"cpu s" is this process's CPU time, less sensitive to them than the wall time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from simfl.optim.fimi import CE_MAX_DEVICES, solve
from simfl.world import World, rng

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the paper's set-up, shared with the tests
from paper_setup import multicell_world, paper_world  # noqa: E402


def world_of(n_devices: int, seed: int) -> World:
    if n_devices == 20:
        return paper_world(seed)
    return multicell_world(n_devices // 20, per_cell=20, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 1000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    header = f"{'devices':>7} {'solver':>6} {'time s':>8} {'cpu s':>7} {'energy J':>10} {'D_gen':>8} {'vs exact':>9} {'dual gap':>9}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        world = world_of(n, args.seed)
        results = {}
        for solver in ("exact", "ce") if n <= CE_MAX_DEVICES else ("exact",):
            times, cpu = [], []
            for r in range(args.repeats):
                started, started_cpu = time.perf_counter(), time.process_time()
                sol = solve(world, solver, rng(args.seed + r, "policy"))
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            results[solver] = sol
            gap = "" if solver == "exact" else f"{sol.round_energy_j / results['exact'].round_energy_j - 1:+.2%}"
            dual = f"{sol.info['duality_gap']:.1e}" if solver == "exact" else ""
            print(f"{n:>7} {solver:>6} {np.median(times):>8.2f} {np.median(cpu):>7.2f} {sol.round_energy_j:>10.2f} {sol.d_gen.sum():>8.0f} "
                  f"{gap:>9} {dual:>9}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
