"""Staged runs: a run that a Ray worker wrote in a folder of its own, moved into the
comparison folder so that it ends up as a sequential comparison would have left it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from simfl.runfolder.checkpoints import CHECKPOINTS_DIR
from simfl.runfolder.manifest import read_manifest, write_manifest
from simfl.runfolder.tables import (EVENTS_FILE, METRICS_FILE, ROUNDS_FILE, SIMILARITY_FILE, append_table,
                                    write_csv_atomically)


def adopt_run(stage: Path, dest: Path, policy: str) -> None:
    """Move `policy`'s finished run from its own folder `stage` (where a Ray worker wrote it)
    into the comparison folder `dest` (owned by this process), so that `dest` ends up as a
    sequential run of its policies in this order would have left it: its rows of events.csv,
    metrics.csv, similarity.csv and rounds.csv appended after the earlier policies'
    (similarity.csv rewritten without `policy`'s old rows first, as `_record_similarity`
    does), its plan files and last checkpoint moved, and its progress, early end and
    checkpoint sums recorded in `dest`'s manifest. Then `stage` is deleted."""
    stage, dest = Path(stage), Path(dest)
    # rounds.csv last: a run's rows there mean it is in place, so an adoption cut short
    # (rows of `policy` in events.csv, metrics.csv or similarity.csv but not in rounds.csv)
    # is redone from the start by --resume, its partial rows dropped first
    for name in (EVENTS_FILE, METRICS_FILE, SIMILARITY_FILE):
        target = dest / name
        if target.exists() and target.stat().st_size:
            kept = pd.read_csv(target)
            if name == SIMILARITY_FILE or (kept["policy"] == policy).any():
                write_csv_atomically(target, kept[kept["policy"] != policy])
        append_table(stage / name, target)
    theirs_manifest, mine = read_manifest(stage), read_manifest(dest)
    for kind in ("plans", CHECKPOINTS_DIR):
        folder = stage / kind
        if folder.is_dir():
            (dest / kind).mkdir(exist_ok=True)
            for path in sorted(folder.iterdir()):
                path.replace(dest / kind / path.name)
                if kind == CHECKPOINTS_DIR and path.name in theirs_manifest.get("checkpoints", {}):
                    mine.setdefault("checkpoints", {})[path.name] = theirs_manifest["checkpoints"][path.name]
    for key in ("rows", "ended"):
        if policy in theirs_manifest.get(key, {}):
            mine.setdefault(key, {})[policy] = theirs_manifest[key][policy]
    write_manifest(dest, mine)
    append_table(stage / ROUNDS_FILE, dest / ROUNDS_FILE)
    shutil.rmtree(stage)
    if not any(stage.parent.iterdir()):
        stage.parent.rmdir()


__all__ = ["adopt_run"]
