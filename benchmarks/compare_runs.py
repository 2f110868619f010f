"""What the benchmarks that compare policies across variants of a scenario share: a
resumable `simfl compare` into a folder, and each policy's totals over the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd


def compare_into(scenario: Path, folder: Path, policies: str, fields: list[str], label: str) -> Path:
    """`simfl compare scenario --policies ... --out folder --set field ...`, resumed where
    the folder already holds a run; returns the folder."""
    command = [sys.executable, "-m", "simfl", "compare", str(scenario), "--policies", policies, "--out", str(folder)]
    if (folder / "manifest.json").exists() or any(folder.glob("*/manifest.json")):
        command.append("--resume")
    for field in fields:
        command += ["--set", field]
    print(f"[{label}] {' '.join(command[3:])}", file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    return folder


def run_totals(folder: Path) -> pd.DataFrame:
    """Per policy of a comparison's folder: the devices selected and cut at the deadline
    (stragglers) over the run, its energy, and its Table I row (summary.csv)."""
    rounds = pd.read_csv(folder / "rounds.csv")
    per = rounds.groupby("policy").agg(selected=("selected", "sum"), stragglers=("stragglers", "sum"),
                                       energy_j=("energy_j", "sum")).reset_index()
    return per.merge(pd.read_csv(folder / "summary.csv"), on="policy", how="left")
