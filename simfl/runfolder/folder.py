"""Opening a run folder: everything checked first, then the folder changed.

`inspect_folder` takes the folder (creating and locking it) and checks it without
changing anything in it: its manifest belongs to the scenario and seed, its CSV files are
readable (a torn last line left out, as it will be dropped). `check_run` checks that one
policy's rows and checkpoint can be continued. Only then does `commit` make the changes
opening needs: the manifest of a new folder written, torn last lines dropped, event rows
of a round that never finished removed. So a refused run or resume leaves the folder as
it found it, byte for byte. `open_folder` and `open_run` are the two steps in one.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simfl.errors import RunFolderError
from simfl.runfolder.checkpoints import round_checkpoint, verify_checkpoint
from simfl.runfolder.locks import claim
from simfl.runfolder.manifest import MANIFEST_FILE, manifest_for, read_manifest, write_manifest
from simfl.runfolder.tables import (CSV_FILES, EVENTS_FILE, ROUNDS_FILE, TornLine, read_csv, repair_torn_line,
                                    torn_bytes, truncate_events)

_AGAIN = "Choose another --out (or delete the folder) and run again"


@dataclass(frozen=True, eq=False)
class Opening:
    """A run folder as `inspect_folder` found it, and the changes opening it will make
    (applied by `commit`, once every check has passed)."""

    out_dir: Path
    manifest: dict[str, Any]  # as on disk, or the one a new folder gets
    new_manifest: bool  # the folder has none yet: `manifest` is written on commit
    torn: dict[str, int]  # CSV file name -> bytes of its incomplete last line, dropped on commit
    rounds: pd.DataFrame  # rounds.csv as it is once that line is dropped
    events: pd.DataFrame  # events.csv likewise
    stale_events: tuple[tuple[str, int], ...] = ()  # (policy, first round) of event rows removed on commit


def inspect_folder(out_dir: Path, scenario: Any) -> Opening:
    """Create `out_dir` if needed and take its lock (RunFolderError when another live run
    holds it), then check it without changing it: RunFolderError when it belongs to
    another scenario or seed, or a manifest or CSV file is damaged. Torn last lines are
    noted, not yet dropped."""
    out_dir = Path(out_dir)
    make_dir(out_dir)
    claim(out_dir)
    manifest, new = manifest_for(out_dir, scenario)
    return _opening(out_dir, manifest, new)


def _opening(out_dir: Path, manifest: dict[str, Any], new: bool) -> Opening:
    torn = {name: size for name in CSV_FILES if (size := torn_bytes(out_dir / name))}
    return Opening(out_dir, manifest, new, torn, read_csv(out_dir / ROUNDS_FILE, torn_ok=True),
                   read_csv(out_dir / EVENTS_FILE, torn_ok=True))


def check_run(opening: Opening, policy: str, *, resume: bool) -> Opening:
    """RunFolderError naming the damaged file unless `policy`'s rows and checkpoint in the
    opened folder can be continued (with `resume`), or it has none (without). Returns the
    opening with the event rows of a round that never finished marked for removal."""
    out_dir, rounds, events = opening.out_dir, opening.rounds, opening.events
    mine = rounds[rounds["policy"] == policy] if not rounds.empty else rounds
    finished = sorted(int(r) for r in mine["round"]) if not mine.empty else []
    last = finished[-1] if finished else -1
    where = out_dir / ROUNDS_FILE
    if finished != list(range(last + 1)):
        raise RunFolderError(f"{where}: the rounds of policy {policy!r} are not 0..{last} once each "
                             f"(found {len(finished)} rows); the file is damaged or two runs wrote it. {_AGAIN}")
    progress = opening.manifest.get("rows", {}).get(policy)
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
        return opening
    if not my_events.empty:
        # a run that stopped inside its first round: its partial events go, round 0 runs again
        return dataclasses.replace(opening, stale_events=(*opening.stale_events, (policy, 0)))
    return opening


def commit(opening: Opening) -> None:
    """Make the changes that opening the folder needs, once every check has passed: the
    manifest of a new folder, torn last lines dropped, stale event rows removed."""
    out_dir = opening.out_dir
    if opening.new_manifest:
        write_manifest(out_dir, opening.manifest)
    for name in opening.torn:
        dropped = repair_torn_line(out_dir / name)
        if dropped:
            print(f"simfl: {out_dir / name}: dropped an incomplete last line ({dropped} bytes, left by an "
                  "interrupted write); its round is run again", file=sys.stderr)
    for policy, first_round in opening.stale_events:
        truncate_events(out_dir, policy, first_round)


def open_folder(out_dir: Path, scenario: Any) -> None:
    """`inspect_folder`, then `commit`: the folder is ours, of this scenario and seed,
    with its torn lines dropped. Idempotent within a process."""
    commit(inspect_folder(out_dir, scenario))


def open_run(out_dir: Path, scenario: Any, policy: str, *, resume: bool = False) -> None:
    """`inspect_folder` and `check_run` for `policy`, then `commit`; RunFolderError
    naming the damaged file, with the folder unchanged, when the run cannot go on."""
    commit(check_run(inspect_folder(out_dir, scenario), policy, resume=resume))


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


# --------------------------------------------------------------------------- readers


def read_table(out_dir: Path, name: str = ROUNDS_FILE, required: tuple[str, ...] = ("policy", "round")
               ) -> pd.DataFrame:
    """A results file of a run folder, for readers that change nothing (reports, tables,
    plots): RunFolderError naming the file, line and column when it is damaged; for an
    incomplete last line, whether `--resume` repairs it, and what to do when it cannot."""
    try:
        return read_csv(Path(out_dir) / name, required)
    except TornLine as exc:
        raise RunFolderError(f"{exc}; {resume_advice(Path(out_dir))}") from None


def resume_advice(out_dir: Path) -> str:
    """What repairs a folder with an incomplete last line: `--resume` when continuing its
    runs would pass every check (the line dropped and its round run again), else why it
    would be refused. Every policy of the folder is checked: the torn row may be any
    policy's."""
    try:
        manifest = read_manifest(out_dir)
        opening = _opening(out_dir, manifest, not manifest)
        names = [*manifest.get("rows", {})]
        for frame in (opening.rounds, opening.events):
            if not frame.empty:
                names.extend(str(p) for p in frame["policy"])
        for policy in dict.fromkeys(names):
            check_run(opening, policy, resume=True)
    except RunFolderError as exc:
        return f"--resume cannot repair it: {exc}"
    return ("continue the run with --resume (the command that wrote the folder, with its scenario and --out) to "
            "repair it: the line is dropped and its round run again")


__all__ = ["Opening", "check_run", "commit", "inspect_folder", "make_dir", "open_folder", "open_run", "read_table",
           "resume_advice"]
