"""Results as they are produced: rows appended to CSV files (pandas), so an interrupted
run keeps every finished round, and tables and plots are functions of these files alone."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from simfl import runfolder
from simfl.runfolder import EVENTS_FILE, METRICS_FILE, ROUNDS_FILE, SIMILARITY_FILE  # named once, in the run folder's tables

AVAILABILITY_FILE = "availability.csv"  # online intervals of every device (device,start_s,end_s)


class CsvAppender:
    """Appends rows to one CSV file, writing the header only when the file is new; each
    call is one write (simfl.runfolder.append_rows), so a crash never leaves half a row set."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        frame = pd.DataFrame(list(rows))
        if frame.empty:
            return
        runfolder.append_rows(self.path, frame)


class RunRecorder:
    """Writes rounds.csv, events.csv and metrics.csv of one (policy, run) as rounds finish."""

    def __init__(self, out_dir: Path, policy: str) -> None:
        self.policy = policy
        self.out_dir = Path(out_dir)
        self.rounds = CsvAppender(self.out_dir / ROUNDS_FILE)
        self.events = CsvAppender(self.out_dir / EVENTS_FILE)
        self.metrics = CsvAppender(self.out_dir / METRICS_FILE)
        events = runfolder.read_table(self.out_dir, EVENTS_FILE)
        self.events_rows = int((events["policy"] == policy).sum()) if not events.empty else 0

    def record_metrics(self, round_index: int, metrics: dict[str, float]) -> None:
        """metrics.csv rows of what the policy reported about a round (before its rounds.csv
        row: a finished round has its metrics on disk)."""
        self.metrics.append({"policy": self.policy, "round": round_index, "metric": name, "value": float(value)}
                            for name, value in metrics.items())

    def __call__(self, record: Any, devices: list[Any]) -> None:
        # events first: a round is only "finished" once its rounds.csv row exists; the
        # manifest notes the events in between, so a resume can tell lost rows from a crash
        self.events.append({"policy": self.policy, **asdict(d)} for d in devices)
        self.events_rows += len(devices)
        runfolder.record_round(self.out_dir, self.policy, record.round, self.events_rows)
        self.rounds.append([{"policy": self.policy, **asdict(record)}])


def run_finished(rows: pd.DataFrame, rounds: int, max_time_s: float | None) -> bool:
    """Whether a run's rows (one policy's) are complete: `rounds` of them, or the last
    ending at or after the scenario's simulated-time budget."""
    if len(rows) >= rounds:
        return True
    return max_time_s is not None and not rows.empty and float(rows["end_s"].max()) >= max_time_s


def read_rounds(out_dir: Path) -> pd.DataFrame:
    """rounds.csv as a DataFrame (empty when absent); RunFolderError naming the file when
    it is torn, unreadable or holds a value that is not a number, never a silently wrong
    table."""
    return runfolder.read_table(Path(out_dir), ROUNDS_FILE)


__all__ = ["AVAILABILITY_FILE", "EVENTS_FILE", "ROUNDS_FILE", "SIMILARITY_FILE", "CsvAppender", "RunRecorder",
           "read_rounds", "run_finished"]
