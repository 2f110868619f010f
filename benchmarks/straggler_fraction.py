"""How many selected devices miss the deadline under fading, by policy and outage setting.

On `scenarios/two-cells.yaml` (Rayleigh fading, a new draw every round) the engine plays
the scenario's rounds for each policy's plan with a stand-in trainer (the straggler
count does not depend on training), and prints the fraction of selected devices cut at
T_max per round, and the energy per round. TFL plans every device to finish exactly at
T_max on the mean channel, so about 1 - 1/e = 63% miss; `optimisation.outage: q` plans on
the gain's q-quantile (about q miss); fimi-online re-plans each round on the realised gains.

    python benchmarks/straggler_fraction.py [SCENARIO]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import StandInTrainer  # noqa: E402

from simfl.engine import run  # noqa: E402
from simfl.experiment import plan_context  # noqa: E402
from simfl.learning.models import build_model, model_bits  # noqa: E402
from simfl.registry import create  # noqa: E402
from simfl.scenario import load_scenario  # noqa: E402
from simfl.world import build_world  # noqa: E402


class _Setup:  # what plan_context reads
    def __init__(self, scenario):
        self.scenario = scenario


def measure(path: str, policy_name: str, outage: float) -> tuple[float, float, int]:
    scenario = load_scenario(path, overrides=[f"optimisation.outage={outage}"])
    bits = model_bits(build_model(scenario.task.model, (1, 28, 28), 10, seed=0))
    world = build_world(scenario, bits)
    policy = create(policy_name)
    context = plan_context(_Setup(scenario))
    plan = policy.plan(world.for_planning(), context)
    rows = []
    run(world, plan, StandInTrainer(), scenario.task.rounds, scenario.seed, policy=policy, context=context,
        on_round=lambda r, d, s: rows.append(r))
    selected = sum(r.selected for r in rows)
    late = sum(r.stragglers for r in rows)
    return late / selected, float(np.mean([r.energy_j for r in rows])), selected


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "scenarios" / "two-cells.yaml")
    print(f"{path}: selected devices cut at T_max, over the scenario's rounds\n")
    print(f"{'policy':<12} {'outage q':>8} {'stragglers':>11} {'device-rounds':>14} {'energy/round (J)':>17}")
    for name, q in (("tfl", 0.0), ("tfl", 0.05), ("tfl", 0.1), ("fimi", 0.0), ("fimi", 0.1), ("fimi-online", 0.0)):
        late, energy, n = measure(path, name, q)
        print(f"{name:<12} {q:>8.2f} {100 * late:>10.1f}% {n:>14} {energy:>17.3f}")


if __name__ == "__main__":
    main()
