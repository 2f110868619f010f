"""Results as they are produced: rows appended to CSV files (pandas), so an interrupted
run keeps every finished round, and tables and plots are functions of these files alone."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

ROUNDS_FILE = "rounds.csv"
EVENTS_FILE = "events.csv"
SIMILARITY_FILE = "similarity.csv"
AVAILABILITY_FILE = "availability.csv"  # online intervals of every device (device,start_s,end_s)


class CsvAppender:
    """Appends rows to one CSV file, writing the header only when the file is new."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        frame = pd.DataFrame(list(rows))
        if frame.empty:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(self.path, mode="a", header=new, index=False)


class RunRecorder:
    """Writes rounds.csv and events.csv of one (policy, run) as rounds finish."""

    def __init__(self, out_dir: Path, policy: str) -> None:
        self.policy = policy
        self.rounds = CsvAppender(Path(out_dir) / ROUNDS_FILE)
        self.events = CsvAppender(Path(out_dir) / EVENTS_FILE)

    def __call__(self, record: Any, devices: list[Any]) -> None:
        # events first: a round is only "finished" once its rounds.csv row exists
        self.events.append({"policy": self.policy, **asdict(d)} for d in devices)
        self.rounds.append([{"policy": self.policy, **asdict(record)}])


def read_rounds(out_dir: Path) -> pd.DataFrame:
    path = Path(out_dir) / ROUNDS_FILE
    return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()


def truncate_events(out_dir: Path, policy: str, keep_rounds: int) -> None:
    """Drop event rows of `policy` from rounds >= keep_rounds (left by an interrupted round)."""
    path = Path(out_dir) / EVENTS_FILE
    if not path.exists() or not path.stat().st_size:
        return
    events = pd.read_csv(path)
    stale = (events["policy"] == policy) & (events["round"] >= keep_rounds)
    if stale.any():
        events[~stale].to_csv(path, index=False)
