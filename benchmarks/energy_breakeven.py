"""How much faster must FIMI converge to save energy? Per-round device energy of FIMI's
plan against TFL's (the same resources optimiser with no synthetic data) on the paper's
Section V-A cell, for the paper's VGG-9 upload and the compact CNN's, over five Dir(0.4)
label draws. FIMI spends less energy to a target than TFL exactly when it needs fewer
than (TFL J/round) / (FIMI J/round) of TFL's rounds: the last column.

    python benchmarks/energy_breakeven.py
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np

from simfl.optim.fimi import solve
from simfl.scenario import scenario_from_dict
from simfl.world import build_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the paper's set-up, shared with the tests
from paper_setup import PAPER_MODEL_BITS, PAPER_SCENARIO  # noqa: E402

CNN_MODEL_BITS = 32.0 * 114_314
SEEDS = range(1, 6)


def main() -> None:
    print(f"{'upload S':<18} {'FIMI J/round':>12} {'TFL J/round':>11} {'FIMI/TFL':>8} "
          f"{'compute share FIMI/TFL':>22} {'D_gen':>6} {'break-even rounds':>17}")
    for bits, label in ((PAPER_MODEL_BITS, "VGG-9 (111.7 Mb)"), (CNN_MODEL_BITS, "CNN (3.66 Mb)")):
        rows = []
        for seed in SEEDS:
            draw = np.random.default_rng(seed)
            counts = np.array([draw.multinomial(1250, draw.dirichlet(0.4 * np.ones(10))) for _ in range(20)])
            world = build_world(scenario_from_dict(copy.deepcopy(PAPER_SCENARIO), seed=seed), model_bits=bits,
                                d_loc_per_class=counts)
            fimi = solve(world, solver="exact")
            tfl = solve(world, solver="exact", d_gen=np.zeros(world.n_devices, dtype=np.int64))
            rows.append((fimi.round_energy_j, tfl.round_energy_j, fimi.e_cmp_j.sum() / fimi.round_energy_j,
                         tfl.e_cmp_j.sum() / tfl.round_energy_j, fimi.d_gen.sum()))
        r = np.array(rows)
        ratio = r[:, 0] / r[:, 1]
        print(f"{label:<18} {r[:, 0].mean():>12.2f} {r[:, 1].mean():>11.2f} {ratio.mean():>8.2f} "
              f"{r[:, 2].mean():>10.2f} / {r[:, 3].mean():<9.2f} {r[:, 4].mean():>6.0f} {(1 / ratio).mean():>17.2f}")


if __name__ == "__main__":
    main()
