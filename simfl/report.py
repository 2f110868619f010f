"""`simfl report`: Table I and the figures again from a finished comparison's files, for
other target accuracies or another policy order, without training anything."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence, TextIO

import pandas as pd

from simfl import runfolder
from simfl.compare import write_report
from simfl.errors import SimflError
from simfl.records import EVENTS_FILE, SIMILARITY_FILE, read_rounds
from simfl.registry import create
from simfl.scenario import Scenario
from simfl.compare_seeds import folder_seeds, seed_dir, seed_scenarios, write_seed_report


def report(scenario: Scenario, out_dir: Path, policies: Sequence[str] | None = None,
           stream: TextIO | None = sys.stdout) -> pd.DataFrame:
    """Rewrite summary.csv (and the figures) of `out_dir`, a `compare` or a
    `compare --seeds` output, for the scenario's targets. Policies: those given, else
    every policy in the files, in the order they ran."""
    out_dir = Path(out_dir)
    seeds = folder_seeds(out_dir)
    if read_rounds(out_dir).empty and not seeds:
        raise SimflError(f"{out_dir}: no rounds.csv and no seed-<s> directories; run `simfl compare` into it first")
    if not seeds:
        return write_report(out_dir, scenario, _names(out_dir, policies), stream)
    for seed in seeds:  # every seed's files checked before any seed's report is rewritten
        folder = seed_dir(out_dir, seed)
        read_rounds(folder)
        runfolder.read_table(folder, EVENTS_FILE)
        runfolder.read_table(folder, SIMILARITY_FILE, required=("policy",))
    names = _names(seed_dir(out_dir, seeds[0]), policies)
    for run in seed_scenarios(scenario, seeds):
        write_report(seed_dir(out_dir, run.seed), run, names, None)
    return write_seed_report(out_dir, scenario, seeds, names, stream)


def _names(run_dir: Path, policies: Sequence[str] | None) -> list[str]:
    if policies:
        return [create(name).name for name in policies]
    return list(dict.fromkeys(read_rounds(run_dir)["policy"]))
