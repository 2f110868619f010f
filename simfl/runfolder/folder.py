"""Opening a run folder: create it, take its lock, check (or write) its manifest, drop
torn last lines; for a run, check that the policy's rows and checkpoint can be continued.
`open_run` does this at the start of a run, before the plan files are written."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from simfl.errors import RunFolderError
from simfl.runfolder.checkpoints import round_checkpoint, verify_checkpoint
from simfl.runfolder.locks import claim
from simfl.runfolder.manifest import MANIFEST_FILE, check_manifest, read_manifest
from simfl.runfolder.tables import CSV_FILES, EVENTS_FILE, ROUNDS_FILE, read_csv, repair_torn_line, truncate_events

_AGAIN = "Choose another --out (or delete the folder) and run again"


def open_folder(out_dir: Path, scenario: Any) -> None:
    """Create `out_dir` if needed, take its lock, check (or write) its manifest and drop a
    torn last line of its CSV files. Idempotent within a process."""
    out_dir = Path(out_dir)
    make_dir(out_dir)
    claim(out_dir)
    check_manifest(out_dir, scenario)
    for name in CSV_FILES:
        dropped = repair_torn_line(out_dir / name)
        if dropped:
            print(f"simfl: {out_dir / name}: dropped an incomplete last line ({dropped} bytes, left by an "
                  "interrupted write); its round is run again", file=sys.stderr)


def open_run(out_dir: Path, scenario: Any, policy: str, *, resume: bool = False) -> None:
    """`open_folder`, then check that `policy`'s rows and checkpoint can be continued
    (with `resume`) or that there are none (without); drop event rows of a round that
    never finished. Raises RunFolderError naming the damaged file otherwise."""
    out_dir = Path(out_dir)
    open_folder(out_dir, scenario)
    rounds = read_csv(out_dir / ROUNDS_FILE)
    events = read_csv(out_dir / EVENTS_FILE)
    mine = rounds[rounds["policy"] == policy] if not rounds.empty else rounds
    finished = sorted(int(r) for r in mine["round"]) if not mine.empty else []
    last = finished[-1] if finished else -1
    where = out_dir / ROUNDS_FILE
    if finished != list(range(last + 1)):
        raise RunFolderError(f"{where}: the rounds of policy {policy!r} are not 0..{last} once each "
                             f"(found {len(finished)} rows); the file is damaged or two runs wrote it. {_AGAIN}")
    progress = read_manifest(out_dir).get("rows", {}).get(policy)
    my_events = events[events["policy"] == policy] if not events.empty else events
    if progress is not None:
        # progress["round"] is recorded after a round's events and before its rounds.csv
        # row, so rounds.csv ends at that round or the one before it
        if not progress["round"] - 1 <= last <= progress["round"]:
            raise RunFolderError(f"{where}: holds {last + 1} finished rounds of policy {policy!r}, but "
                                 f"{out_dir / MANIFEST_FILE} records {progress['round'] + 1}; rounds.csv lost "
                                 f"rows (or was replaced). {_AGAIN}")
        written = int((my_events["round"] <= progress["round"]).sum()) if not my_events.empty else 0
        if written != progress["events"]:
            raise RunFolderError(f"{out_dir / EVENTS_FILE}: holds {written} event rows of policy {policy!r} up to "
                                 f"round {progress['round']}, but {progress['events']} were written; the file is "
                                 f"damaged. {_AGAIN}")
    elif not my_events.empty and int(my_events["round"].max()) > last + 1:
        # no record (a folder from before manifests): events of a round after the next
        # unfinished one mean rounds.csv lost rows
        raise RunFolderError(f"{where}: holds {last + 1} finished rounds of policy {policy!r} but events.csv has "
                             f"rows of round {int(my_events['round'].max())}; rounds.csv lost rows. {_AGAIN}")
    if finished and not resume:
        raise RunFolderError(f"{out_dir}: already holds rounds of policy {policy!r}; "
                             "use --resume to continue them or choose another --out")
    if finished:
        path = round_checkpoint(out_dir, policy, last)
        if not path.exists() and round_checkpoint(out_dir, policy, last + 1).exists():
            raise RunFolderError(f"{where}: ends at round {last} of policy {policy!r}, but the model of round "
                                 f"{last + 1} was saved and round {last}'s was dropped after its row was written: "
                                 f"rounds.csv lost its last row. {_AGAIN}")
        if not path.exists():
            raise RunFolderError(f"{path}: missing, so round {last} of policy {policy!r} cannot be continued "
                                 f"(the checkpoint was deleted, or rounds.csv damaged). {_AGAIN}")
        verify_checkpoint(path)
    elif not my_events.empty:
        # a run that stopped inside its first round: its partial events go, round 0 runs again
        truncate_events(out_dir, policy, 0)


def make_dir(out_dir: Path) -> None:
    """Create `--out` (and its parents); RunFolderError when it is a file or not writable."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"--out {out_dir}: is a file, not a directory; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"--out {out_dir}: cannot create the directory ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise RunFolderError(f"--out {out_dir}: the directory is not writable")


__all__ = ["make_dir", "open_folder", "open_run"]
