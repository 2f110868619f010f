"""`simfl compare`: every policy on the same world, data partition and seed; then Table I
(summary.csv) and the figures. And `simfl run`'s one policy with its figures (`run_one`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence, TextIO

import pandas as pd

from simfl import runfolder
from simfl.errors import SimflError
from simfl.experiment import check_plan_unchanged, make_plan, prepare, run_policy
from simfl.metrics import format_table, summary_table
from simfl.plots import (accuracy_curves, ce_convergence, participation, similarity_boxes, sinr_against_distance,
                         staleness_histogram, synthetic_allocation, timeline)
from simfl.records import AVAILABILITY_FILE, EVENTS_FILE, SIMILARITY_FILE, read_rounds, run_finished
from simfl.policy import Policy
from simfl.registry import PolicyLike, as_policy, check_policies, policy_label
from simfl.scenario import Scenario

SUMMARY_FILE = "summary.csv"


def compare(scenario: Scenario, out_dir: Path, policies: Sequence[PolicyLike] | None = None, *, resume: bool = False,
            solver: str | None = None, progress: TextIO | None = sys.stderr) -> pd.DataFrame:
    """Run each policy (default: the scenario's list) and write summary.csv and plots.
    With `resume`, finished policies are skipped and an interrupted one continues.
    A policy is a reference (`fimi`, `file.py:Class`) or a Policy subclass or instance
    (`simfl.registry.as_policy`); its `name` keys its rows."""
    scenario = check_policies(scenario)  # before the run folder is opened
    given = list(policies or scenario.policies)
    if not given:
        raise SimflError(f"{scenario.source}: policies: no policies to compare; list them in the "
                         "scenario's `policies` or pass --policies a,b,c")
    instances = [as_policy(p) for p in given]  # fail on a bad name before any training
    check_unique(instances, [policy_label(p) for p in given])
    out_dir = Path(out_dir)
    # owned, of this scenario and seed, readable; changed (torn lines dropped, ...) only
    # once every run to continue has been checked and every policy has planned
    opening = runfolder.inspect_folder(out_dir, scenario)
    existing = opening.rounds
    if not existing.empty and not resume:
        raise SimflError(f"{out_dir}: already holds a comparison; pass --resume to continue it or choose another --out")
    setup = prepare(scenario, progress)
    rounds = scenario.task.rounds
    over = runfolder.ended(out_dir)  # runs that ended early for good: nothing to resume
    todo = [p for p in instances if p.name not in over
            and not run_finished(existing[existing["policy"] == p.name] if not existing.empty else existing, rounds,
                                 scenario.task.max_time_s)]
    for policy in todo:
        opening = runfolder.check_run(opening, policy.name, resume=resume)
    # every policy plans before any trains: a policy whose plan fails (a user's file) is
    # named now, not after the others have trained for an hour
    plans = {p.name: make_plan(setup, p, solver, progress) for p in todo}
    if resume:
        for policy in todo:
            check_plan_unchanged(out_dir, policy.name, plans[policy.name], opening.rounds)
    runfolder.commit(opening)
    del opening  # it holds events.csv, which may be large, and the runs read the folder anew
    for index, policy in enumerate(instances):
        if policy not in todo:
            if progress:
                done = int((existing["policy"] == policy.name).sum())
                why = " (it ended early: no device could take part any more)" if policy.name in over else ""
                print(f"[{policy.name}] {done} rounds already done{why}", file=progress)
            continue
        if progress:
            print(f"== policy {index + 1}/{len(instances)}: {policy.name}", file=progress)
        run_policy(setup, policy, out_dir, resume=resume, solver=solver, progress=progress, plan=plans[policy.name])
    return write_report(out_dir, scenario, [p.name for p in instances], sys.stdout if progress else None)


def run_one(scenario: Scenario, policy: Policy, out_dir: Path, *, resume: bool = False, solver: str | None = None,
            progress: TextIO | None = sys.stderr) -> pd.DataFrame:
    """`simfl run`: train `policy` alone on the scenario into out_dir (rounds.csv,
    events.csv, its plan; `run_policy`), then draw the folder's participation and
    timeline figures. Returns the folder's rounds.csv."""
    frame = run_policy(prepare(scenario, progress), policy, Path(out_dir), resume=resume, solver=solver, progress=progress)
    dynamics_figures(Path(out_dir), scenario.name)  # the folder's participation.png and timeline-<policy>.png
    return frame


def check_unique(instances: Sequence[object], names: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for policy, reference in zip(instances, names):
        name = policy.name  # type: ignore[attr-defined]
        if name in seen:
            raise SimflError(f"policies {seen[name]!r} and {reference!r} are both named {name!r}: their rows would "
                             "mix in rounds.csv; give each policy its own name")
        seen[name] = reference


def dynamics_figures(out_dir: Path, title: str, names: Sequence[str] | None = None,
                     rounds: pd.DataFrame | None = None, events: pd.DataFrame | None = None) -> None:
    """participation.png, timeline-<policy>.png and sinr-<policy>.png (each upload's SINR
    against its distance to the base station) of the policies `names` (default: every
    policy in the folder), from `rounds` and `events` (default: the folder's files).
    Folders written before the engine recorded participation (no `selected` column) have
    none."""
    rounds = read_rounds(out_dir) if rounds is None else rounds
    if rounds.empty or "selected" not in rounds.columns:
        return
    names = list(rounds["policy"].unique()) if names is None else list(names)
    mine = rounds[rounds["policy"].isin(names)]
    if mine.empty:
        return
    participation(mine, out_dir / "participation.png", f"who took part in each round, {title}")
    availability_path = out_dir / AVAILABILITY_FILE
    events = runfolder.read_table(out_dir, EVENTS_FILE) if events is None else events
    staleness_figure(events[events["policy"].isin(names)] if not events.empty else events,
                     out_dir / "staleness.png", title)
    availability = (pd.read_csv(availability_path)
                    if availability_path.exists() and availability_path.stat().st_size else None)
    for name in names:
        jobs = events[events["policy"] == name] if not events.empty else events
        played = mine[mine["policy"] == name]
        if not jobs.empty and not played.empty:
            timeline(jobs, played, out_dir / f"timeline-{name}.png", f"{name} on {title}", availability=availability)
            sinr_against_distance(jobs, out_dir / f"sinr-{name}.png", f"uplink SINR of {name} on {title}")


def run_length(scenario: Scenario) -> str:
    """How long each run is: "30 rounds", or "5000 rounds or 300 s simulated"."""
    budget = f" or {scenario.task.max_time_s:g} s simulated" if scenario.task.max_time_s else ""
    return f"{scenario.task.rounds} rounds{budget}"


def staleness_figure(events: pd.DataFrame, path: Path, title: str) -> None:
    """staleness.png when any update was aggregated stale (an asynchronous mode ran)."""
    if "staleness" in events.columns and (events["staleness"] > 0).any():
        staleness_histogram(events, path, f"staleness of the aggregated updates, {title}")


def write_report(out_dir: Path, scenario: Scenario, names: Sequence[str], stream: TextIO | None = sys.stdout) -> pd.DataFrame:
    """summary.csv, the printed Table I and the PNG figures, from the files in out_dir
    (every one read, and so checked, before anything is written)."""
    rounds = read_rounds(out_dir)
    events = runfolder.read_table(out_dir, EVENTS_FILE)
    similarity = runfolder.read_table(out_dir, SIMILARITY_FILE, required=("policy",))
    targets = scenario.task.target_accuracies
    table = summary_table(rounds, targets, names)
    table.to_csv(out_dir / SUMMARY_FILE, index=False, na_rep="N/A")
    if stream:
        print(f"\nTable I on {scenario.name} (seed {scenario.seed}, {run_length(scenario)}):\n", file=stream)
        print(format_table(table, targets), file=stream)
    accuracy_curves(rounds[rounds["policy"].isin(names)], out_dir / "accuracy.png", scenario.name)
    if not similarity.empty:
        similarity = similarity[similarity["policy"].isin(names)]
        if not similarity.empty:
            similarity_boxes(similarity, out_dir / "similarity.png",
                             f"gradient similarity to an IID device at the initial model, {scenario.name}")
    plans = out_dir / "plans"
    for name in names:
        plan_csv = plans / f"{name}.csv"
        if plan_csv.exists():
            plan = pd.read_csv(plan_csv)
            if plan["d_gen"].sum() > 0:
                synthetic_allocation(plan, out_dir / f"synthetic-{name}.png", f"{name} on {scenario.name}")
        info = plans / f"{name}.json"
        if info.exists():
            ce_convergence(info, out_dir / f"ce-{name}.png", f"CE search of {name}")
    dynamics_figures(out_dir, scenario.name, names, rounds, events)
    return table
