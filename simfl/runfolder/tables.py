"""The CSV files of a run folder (rounds.csv, events.csv, similarity.csv, metrics.csv): appended so that
a crash tears at most the last line, read back only when every value is what simfl
writes, and replaced in one step.

Rows are appended in one write per row set (`append_rows`), so a crash leaves at most a
partial last line; a reader finds it (`torn_bytes`) and either refuses the file or, when
a run is continued, drops it (it was never a finished row) before anything is appended
after it. A value that is not a number where simfl writes numbers is named with its file,
line and column when the file is read, not met later as a crash in a format string.
"""

from __future__ import annotations

import os
from io import BytesIO, StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from simfl.errors import RunFolderError
from simfl.files import write_atomically

ROUNDS_FILE = "rounds.csv"
EVENTS_FILE = "events.csv"
SIMILARITY_FILE = "similarity.csv"
METRICS_FILE = "metrics.csv"  # what a policy reports per round besides simfl's columns (a Flower strategy's metrics)
CSV_FILES = (ROUNDS_FILE, EVENTS_FILE, SIMILARITY_FILE, METRICS_FILE)

# The columns of the results files that hold text or True/False (the str and bool fields
# of simfl.engine's RoundRecord and DeviceRecord, and the policy's name); every other
# column is a number.
TEXT_COLUMNS = frozenset({"policy", "outcome", "metric"})
FLAG_COLUMNS = frozenset({"straggler"})

_DAMAGED = ("the file is damaged (edited, or written by something other than simfl). Restore it from a copy, "
            "or choose another --out (or delete the folder) and run again")


class TornLine(RunFolderError):
    """A results file whose last line has no newline: a row cut short."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: the last line is incomplete (a run stopped while writing it, or the file "
                         "was damaged)")
        self.path = path


def append_rows(path: Path, frame: pd.DataFrame) -> None:
    """Append `frame` to a CSV file (its header too when the file is new) in one write:
    a crash leaves the rows whole or absent, except at worst a partial last line, which
    `repair_torn_line` drops."""
    new = not path.exists() or path.stat().st_size == 0
    data = frame.to_csv(index=False, header=new).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def torn_bytes(path: Path) -> int:
    """How many bytes follow the last newline of `path` (0 when it ends with one, is empty
    or absent): every row is written with its newline in the same write, so they are a
    partial row."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # find the last newline, reading backwards in blocks (events.csv may be large)
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            cut = f.read(end - start).rfind(b"\n")
            if cut >= 0:
                return size - (start + cut + 1)
            end = start
    return size


def repair_torn_line(path: Path) -> int:
    """Drop a last line without its newline (a partial row); returns the bytes dropped."""
    dropped = torn_bytes(path)
    if dropped:
        os.truncate(path, path.stat().st_size - dropped)
    return dropped


def check_csv(path: Path) -> None:
    """TornLine naming `path` when its last line is incomplete (for readers that must not
    repair it; `runfolder.read_table` adds whether `--resume` repairs it)."""
    if torn_bytes(path):
        raise TornLine(path)


def read_csv(path: Path, required: tuple[str, ...] = ("policy", "round"), *, torn_ok: bool = False) -> pd.DataFrame:
    """A results CSV (empty when absent), or RunFolderError naming the file when it is
    unreadable, lacks a `required` column, or holds a value that is not what simfl writes
    there (naming the line and column). An incomplete last line is TornLine, or, with
    `torn_ok`, left out: the file as it will be once that line is dropped."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    tail = torn_bytes(path)
    if not torn_ok:
        check_csv(path)
    data = path.read_bytes()[:-tail] if tail else None
    if data == b"":
        return pd.DataFrame()
    try:
        # an empty cell is the only missing value simfl writes (pandas' NaN): "NA", "n/a" or
        # "null" in a number's place is damage, and a policy named "None" stays a name
        frame = pd.read_csv(path if data is None else BytesIO(data), keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path}: damaged, cannot be read ({str(exc).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{path}: not a simfl results file (no column {', '.join(missing)})")
    if len(frame) and "round" in required and not pd.api.types.is_integer_dtype(frame["round"]):
        raise RunFolderError(f"{path}: damaged (the round column holds something other than whole numbers)")
    if len(frame):  # a header alone has no values (and pandas types its columns as text)
        _check_values(path, frame)
    return frame


def _check_values(path: Path, frame: pd.DataFrame) -> None:
    """RunFolderError naming the first line and column whose value is not a number (not
    True or False in a flag column): such a value would otherwise surface far from here,
    as a crash in a format string or a wrong table."""
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            continue
        values = frame[column]
        if column in FLAG_COLUMNS:
            if pd.api.types.is_bool_dtype(values):
                continue
            bad = ~values.isin([True, False, "True", "False"])
            expected = "True or False"
        elif pd.api.types.is_bool_dtype(values):  # a column of True/False where numbers belong
            bad = values.notna()
            expected = "a number"
        elif pd.api.types.is_numeric_dtype(values):
            continue
        else:
            bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
            expected = "a number"
        rows = np.flatnonzero(bad.to_numpy())
        row = int(rows[0]) if len(rows) else 0
        which = ""
        if "policy" in frame.columns and "round" in frame.columns and pd.api.types.is_integer_dtype(frame["round"]):
            which = f" (round {int(frame['round'].iloc[row])} of policy {frame['policy'].iloc[row]!r})"
        raise RunFolderError(f"{path}: line {row + 2}{which}, column {column}: {values.iloc[row]!r} is not "
                             f"{expected}; {_DAMAGED}")


def write_csv_atomically(path: Path, frame: pd.DataFrame) -> None:
    """Replace a CSV file in one step (a crash leaves the old file or the new one)."""
    buffer = StringIO()
    frame.to_csv(buffer, index=False)
    write_atomically(path, buffer.getvalue().encode())


def append_table(source: Path, target: Path) -> None:
    """Append the rows of CSV file `source` to `target` (with the header when `target` is
    new), byte for byte as the recorder wrote them."""
    if not source.exists() or source.stat().st_size == 0:
        return
    data = source.read_bytes()
    if target.exists() and target.stat().st_size:
        header, _, body = data.partition(b"\n")
        with open(target, "rb") as f:
            theirs = f.readline().rstrip(b"\n")
        if header != theirs:
            raise RunFolderError(f"{source}: its columns differ from those of {target}; the two cannot be "
                                 "one table. Choose another --out and run again")
        data = body
    with open(target, "ab") as f:
        f.write(data)


def truncate_events(out_dir: Path, policy: str, keep_rounds: int) -> None:
    """Drop the event and metric rows of `policy` from rounds >= keep_rounds (left by an
    interrupted round)."""
    for name in (EVENTS_FILE, METRICS_FILE):
        path = Path(out_dir) / name
        rows = read_csv(path)
        if rows.empty:
            continue
        stale = (rows["policy"] == policy) & (rows["round"] >= keep_rounds)
        if stale.any():
            write_csv_atomically(path, rows[~stale])


__all__ = ["CSV_FILES", "EVENTS_FILE", "FLAG_COLUMNS", "METRICS_FILE", "ROUNDS_FILE", "SIMILARITY_FILE", "TEXT_COLUMNS", "TornLine",
           "append_rows", "append_table", "check_csv", "read_csv", "repair_torn_line", "torn_bytes", "truncate_events",
           "write_csv_atomically"]
