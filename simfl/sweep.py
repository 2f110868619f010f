"""`simfl sweep`: one policy over several values of one scenario field (Fig. 5c: learning
rate; Fig. 5f-g: Delta_max and T_max), each value in its own run directory, then Table I
with one row per value and the accuracy curves.

Every value runs on the same seed, so on the same devices and data partition (unless
the field itself changes them, as `devices.count` does)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence, TextIO

import pandas as pd

from simfl import runfolder
from simfl.compare import SUMMARY_FILE, staleness_figure
from simfl.errors import SimflError
from simfl.experiment import prepare, run_policy
from simfl.metrics import format_table, summary_table
from simfl.plots import accuracy_curves
from simfl.records import EVENTS_FILE, read_rounds, run_finished
from simfl.registry import check_policies, create
from simfl.scenario import Scenario, load_scenario


def sweep_runs(path: str | Path, vary: str, overrides: Sequence[str] = (), seed: int | None = None
               ) -> list[tuple[str, Scenario]]:
    """`--vary FIELD=V1,V2,...`: (label, scenario) for each value, each value validated
    like any `--set` and the values told apart, so that a bad or repeated value fails
    before anything runs."""
    field, _, values = vary.partition("=")
    texts = [v.strip() for v in values.split(",") if v.strip()]
    if not field or not texts:
        raise SimflError(f"--vary {vary!r}: give FIELD=V1,V2,..., e.g. --vary optimisation.err_max=0.15,0.2,0.25")
    runs = []
    for text in texts:
        scenario = load_scenario(path, overrides=[*overrides, f"{field}={text}"], seed=seed)
        runs.append((run_label(field, text), check_policies(scenario)))
    check_distinct(runs, field)
    return runs


def check_distinct(runs: Sequence[tuple[str, Scenario]], field: str | None = None) -> None:
    """Each value of a sweep once: two values that validate to the same scenario (one
    given twice, or `0.05` and `5e-2`) would run one experiment twice, the second into the
    first's folder when their labels match. `field` names the swept field in the message
    (default: the name in the labels)."""
    for index, (label, scenario) in enumerate(runs):
        for first_label, first in runs[:index]:
            if first == scenario:
                name, _, value = label.partition("=")
                first_value = first_label.partition("=")[2]
                same = ("is given twice" if value == first_value
                        else f"is {first_value} again (the same value once parsed)")
                raise SimflError(f"--vary {field or name}: the value {value} {same}; each value is one run in its own "
                                 "folder, so give each value once")


def run_label(field: str, value: str) -> str:
    """`optimisation.err_max`, `0.15` -> `err_max=0.15`: the run's directory and row name."""
    return f"{field.rsplit('.', 1)[-1]}={value}"


def check_label(label: str) -> None:
    """A value's label names its run directory: no '/' and not '.' or '..'."""
    if "/" in label or label in (".", ".."):
        raise SimflError(f"--vary: the value in {label!r} names a directory of the sweep; it cannot contain '/'")


def open_value_folder(out_dir: Path, label: str, scenario: Scenario, resume: bool,
                      policy: str) -> tuple[Path, pd.DataFrame]:
    """The run folder of one swept value, taken (owned, same scenario and seed) and
    checked for `policy`'s run, and its finished rounds (a torn last line left out). It
    changes nothing: `run_policy` repairs the folder once its own checks (the plan's
    included) have passed, so a refusal leaves the folder as it was."""
    check_label(label)
    run_dir = Path(out_dir) / label
    opening = runfolder.check_run(runfolder.inspect_folder(run_dir, scenario), policy, resume=resume)
    return run_dir, opening.rounds


def sweep(runs: Sequence[tuple[str, Scenario]], policy_name: str, out_dir: Path, *, resume: bool = False,
          solver: str | None = None, progress: TextIO | None = sys.stderr) -> pd.DataFrame:
    """Run `policy_name` on each (label, scenario) into out_dir/<label>, then write
    out_dir/summary.csv (one row per label; ratios to the first) and accuracy.png."""
    if not runs:
        raise SimflError("sweep: no values to run")
    runs = [(label, check_policies(scenario)) for label, scenario in runs]  # before any folder is opened
    check_distinct(runs)
    policy = create(policy_name)
    out_dir = Path(out_dir)
    for index, (label, scenario) in enumerate(runs):
        run_dir, done = open_value_folder(out_dir, label, scenario, resume, policy.name)
        if run_finished(done, scenario.task.rounds, scenario.task.max_time_s):
            if progress:
                print(f"[{label}] {len(done)} rounds already done", file=progress)
            continue
        if progress:
            print(f"== {index + 1}/{len(runs)}: {policy.name} with {label}", file=progress)
        run_policy(prepare(scenario, progress), policy, run_dir, resume=resume, solver=solver, progress=progress)
    return write_sweep_report(out_dir, runs, policy.name, sys.stdout if progress else None)


def write_sweep_report(out_dir: Path, runs: Sequence[tuple[str, Scenario]], policy: str,
                       stream: TextIO | None = sys.stdout) -> pd.DataFrame:
    """Table I over the sweep's values, from the run directories' rounds.csv."""
    frames = []
    for label, _ in runs:
        rounds = read_rounds(Path(out_dir) / label)
        if rounds.empty:
            raise SimflError(f"{Path(out_dir) / label}: no rounds; run the sweep first")
        frames.append(rounds.assign(policy=label))
    rounds = pd.concat(frames, ignore_index=True)
    labels = [label for label, _ in runs]
    targets = runs[0][1].task.target_accuracies
    table = summary_table(rounds, targets, labels)
    table.to_csv(Path(out_dir) / SUMMARY_FILE, index=False, na_rep="N/A")
    if stream:
        print(f"\nTable I of {policy} on {runs[0][1].name} over {', '.join(labels)}:\n", file=stream)
        print(format_table(table, targets), file=stream)
    accuracy_curves(rounds, Path(out_dir) / "accuracy.png", f"{policy} on {runs[0][1].name}")
    events = [pd.read_csv(path).assign(policy=label) for label, _ in runs
              if (path := Path(out_dir) / label / EVENTS_FILE).exists() and path.stat().st_size]
    if events:
        staleness_figure(pd.concat(events, ignore_index=True), Path(out_dir) / "staleness.png",
                         f"{policy} on {runs[0][1].name}")
    return table
