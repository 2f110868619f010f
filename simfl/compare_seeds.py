"""`simfl compare --seeds 1,2,3`: the same comparison over several seeds, and Table I as
mean, standard deviation and how many seeds reached each target.

Each seed draws its own device positions, channels, data partition, model initialisation
and batch order; the public/private split (and so the generators trained on it) stays the
scenario's, so one pair of generators serves every seed. Ratios are paired: each seed's
ratio to the first policy on that seed's world, then averaged, which cancels most of the
world-to-world spread that a ratio of means would keep.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np
import pandas as pd

from simfl.compare import SUMMARY_FILE, compare, run_length
from simfl.errors import SimflError
from simfl.limits import MAX_SEEDS, SEED_RANGE
from simfl.metrics import HEADINGS, QUANTITIES, render, table_header, target_tag
from simfl.plots import accuracy_curves_over_seeds
from simfl.records import read_rounds
from simfl.registry import PolicyLike, as_policy
from simfl.scenario import Scenario

SEEDS_FILE = "seeds.csv"


def parse_seeds(text: str) -> list[int]:
    """`--seeds`: '1,2,3' or an inclusive range '1-5'."""
    try:
        if "-" in text and "," not in text:
            low, high = (int(part) for part in text.split("-"))
            if high - low >= MAX_SEEDS:
                raise SimflError(f"--seeds {text!r}: {high - low + 1} seeds; at most {MAX_SEEDS} in one comparison")
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise SimflError(f"--seeds {text!r}: give seeds as 1,2,3 or a range 1-5")
    if len(seeds) > MAX_SEEDS:
        raise SimflError(f"--seeds {text!r}: {len(seeds)} seeds; at most {MAX_SEEDS} in one comparison")
    return seeds


def seed_scenarios(scenario: Scenario, seeds: Sequence[int]) -> list[Scenario]:
    """The scenario once per seed, all with the scenario's own public split."""
    low, high = SEED_RANGE
    if not seeds or len(set(seeds)) != len(seeds) or any(not low <= s <= high for s in seeds):
        raise SimflError(f"--seeds: give distinct integers in [{low}, {high}], e.g. 1,2,3; got {list(seeds)}")
    task = replace(scenario.task, public_split_seed=scenario.split_seed)
    return [replace(scenario, seed=int(s), task=task) for s in seeds]


def seed_dir(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / f"seed-{seed}"


def folder_seeds(out_dir: Path) -> list[int]:
    """The seeds whose comparisons a `compare --seeds` folder holds (its seed-<s>
    directories), in increasing order; [] for any other folder."""
    return sorted(int(p.name.removeprefix("seed-")) for p in Path(out_dir).glob("seed-*")
                  if p.is_dir() and p.name.removeprefix("seed-").isdigit())


def compare_seeds(scenario: Scenario, seeds: Sequence[int], out_dir: Path, policies: Sequence[PolicyLike] | None = None,
                  *, resume: bool = False, solver: str | None = None,
                  progress: TextIO | None = sys.stderr) -> pd.DataFrame:
    """`compare` into out_dir/seed-<s> for each seed, then the aggregate Table I
    (summary.csv), every seed's rows (seeds.csv) and the mean accuracy curves."""
    runs = seed_scenarios(scenario, seeds)
    for index, run in enumerate(runs):
        if progress:
            print(f"==== seed {run.seed} ({index + 1}/{len(runs)})", file=progress)
        compare(run, seed_dir(out_dir, run.seed), policies, resume=resume, solver=solver, progress=progress)
    # by the names policies give themselves (a policy named by path, `file.py:Class`, has another)
    names = [as_policy(p).name for p in (policies or scenario.policies)]
    return write_seed_report(Path(out_dir), scenario, [r.seed for r in runs], names,
                             sys.stdout if progress else None)


def write_seed_report(out_dir: Path, scenario: Scenario, seeds: Sequence[int], names: Sequence[str],
                      stream: TextIO | None = sys.stdout) -> pd.DataFrame:
    """Aggregate the per-seed summary.csv files already in out_dir/seed-<s>."""
    frames, rounds = [], []
    for seed in seeds:
        directory = seed_dir(out_dir, seed)
        summary = directory / SUMMARY_FILE
        if not summary.exists():
            raise SimflError(f"{summary}: missing; run the comparison of seed {seed} first")
        frames.append(pd.read_csv(summary, na_values=["N/A"]).assign(seed=seed))
        rounds.append(read_rounds(directory).assign(seed=seed))
    per_seed = pd.concat(frames, ignore_index=True)
    per_seed.to_csv(out_dir / SEEDS_FILE, index=False, na_rep="N/A")
    targets = scenario.task.target_accuracies
    table = seed_summary(per_seed, targets, names)
    table.to_csv(out_dir / SUMMARY_FILE, index=False, na_rep="N/A")
    if stream:
        print(f"\nTable I on {scenario.name} over seeds {', '.join(map(str, seeds))} ({run_length(scenario)}): "
              "mean ± standard deviation over the seeds that reached the target, mean paired ratio, "
              "[seeds that reached it]\n", file=stream)
        print(format_seed_table(table, targets, len(seeds)), file=stream)
    all_rounds = pd.concat(rounds, ignore_index=True)
    accuracy_curves_over_seeds(all_rounds[all_rounds["policy"].isin(names)], out_dir / "accuracy.png",
                               f"{scenario.name}, {len(seeds)} seeds")
    return table


def seed_summary(per_seed: pd.DataFrame, targets: Sequence[float], policies: Sequence[str]) -> pd.DataFrame:
    """One row per policy. For each Table I quantity q at each target: `q_mean` and `q_sd`
    over the seeds that reached the target (sd with n - 1; NaN below two seeds),
    `q_ratio` the mean of the per-seed ratios to the first policy, and `reached@x` the
    number of seeds that reached x; then best accuracy's mean and sd, and `seeds`."""
    rows = []
    for name in policies:
        mine = per_seed[per_seed["policy"] == name]
        row: dict[str, object] = {"policy": name, "seeds": int(len(mine))}
        for x in targets:
            tag = target_tag(x)
            for quantity in QUANTITIES:
                column = f"{quantity}@{tag}"
                values = mine[column].dropna()
                row[f"{column}_mean"] = float(values.mean()) if len(values) else np.nan
                row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
                ratios = mine[f"{column}_ratio"].dropna()
                row[f"{column}_ratio"] = float(ratios.mean()) if len(ratios) else np.nan
            row[f"reached@{tag}"] = int(mine[f"energy_j@{tag}"].notna().sum())
        best = mine["best_accuracy"].dropna()
        row["best_accuracy_mean"] = float(best.mean()) if len(best) else np.nan
        row["best_accuracy_sd"] = float(best.std(ddof=1)) if len(best) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def format_seed_table(table: pd.DataFrame, targets: Sequence[float], n_seeds: int) -> str:
    """The aggregate Table I as text: `mean ± sd (ratio x) [k/n]` cells."""
    cells = [table_header(targets)]
    for _, row in table.iterrows():
        line = [str(row["policy"])]
        for x in targets:
            tag = target_tag(x)
            reached = int(row[f"reached@{tag}"])
            for quantity in QUANTITIES:
                column = f"{quantity}@{tag}"
                if reached == 0:
                    line.append(f"N/A [0/{n_seeds}]")
                    continue
                number = HEADINGS[quantity][2]
                text = number.format(row[f"{column}_mean"])
                if np.isfinite(row[f"{column}_sd"]):
                    text += " ± " + number.format(row[f"{column}_sd"])
                if np.isfinite(row[f"{column}_ratio"]):
                    text += f" ({row[f'{column}_ratio']:.2f}x)"
                line.append(f"{text} [{reached}/{n_seeds}]")
        best = f"{100 * row['best_accuracy_mean']:.2f}"
        if np.isfinite(row["best_accuracy_sd"]):
            best += f" ± {100 * row['best_accuracy_sd']:.2f}"
        line.append(best)
        cells.append(line)
    return render(cells)
