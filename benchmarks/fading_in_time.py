"""How much the paper's block-fading assumption flatters or hurts each policy: the shipped
`dynamic.yaml` and `city.yaml` against the same worlds with Clarke fading whose rate
follows the channel during every upload, at walking and at vehicle speed.

    python benchmarks/fading_in_time.py [--scenarios dynamic city] [--variants block walking vehicle]
                                        [--policies tfl,fimi,fimi-online] [--out runs/fading] [--set F=V ...]

Variants (each a `simfl compare` of the policies into --out/<scenario>-<variant>, resumable):
- block: the scenario as shipped (dynamic: Gauss-Markov per round, phones walking at
  1.5 m/s; city: no fading, static phones): the channel of a round's start holds to the
  end of every upload.
- walking: Clarke fading on every cell (Doppler v f_c / c at 2 GHz) and every phone
  walking at 1.5 m/s (random waypoint, 60 s pauses, in its home cell), the rate
  re-evaluated every channel step (a tenth of the coherence time at the fastest speed)
  and handovers as they happen.
- vehicle: the same at 15 m/s (54 km/h).
Columns per (scenario, variant, policy): the devices selected and cut at the deadline
(stragglers) over the run, its energy, and Table I (energy, latency and uplink to each
target accuracy, best accuracy), from the run folders' rounds.csv and summary.csv.
FIMI's images come from the conditional GAN (`generator.kind=gan`, `config=quick`), as
the city's do, so the dynamic world's runs take minutes instead of an hour of diffusion
sampling; the figures compare fading models, not generators.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from compare_runs import compare_into, run_totals

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {"dynamic": ROOT / "scenarios" / "dynamic.yaml", "city": ROOT / "scenarios" / "city.yaml"}
CELLS = {"dynamic": ["cells.0.path_loss.fading", "cells.1.path_loss.fading"],
         "city": ["cells.hex_grid.path_loss.fading"]}
GROUPS = {"dynamic": ["devices.mobility"], "city": ["devices.0.mobility", "devices.1.mobility"]}
SPEEDS = {"walking": 1.5, "vehicle": 15.0}
GENERATOR = ["generator.kind=gan", "generator.config=quick"]


def overrides(scenario: str, variant: str) -> list[str]:
    """The --set fields that turn the shipped scenario into the variant."""
    if variant == "block":
        return list(GENERATOR)
    speed = SPEEDS[variant]
    return [*GENERATOR, *(f"{cell}={{clarke: {{min_doppler_hz: 0}}}}" for cell in CELLS[scenario]),
            *(f"{group}={{random_waypoint: {{speed_mps: {speed}, pause_s: 60}}}}" for group in GROUPS[scenario])]


def run_variant(scenario: str, variant: str, policies: str, out: Path, extra: list[str]) -> Path:
    return compare_into(SCENARIOS[scenario], out / f"{scenario}-{variant}", policies,
                        [*overrides(scenario, variant), *extra], f"{scenario}/{variant}")


def rows(scenario: str, variant: str, folder: Path) -> pd.DataFrame:
    table = run_totals(folder)
    table.insert(0, "variant", variant)
    table.insert(0, "scenario", scenario)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=["dynamic", "city"])
    parser.add_argument("--variants", nargs="+", choices=["block", *SPEEDS], default=["block", *SPEEDS])
    parser.add_argument("--policies", default="tfl,fimi,fimi-online")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "fading")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    tables = [rows(s, v, run_variant(s, v, args.policies, args.out, args.extra))
              for s in args.scenarios for v in args.variants]
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.out / "fading_in_time.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
