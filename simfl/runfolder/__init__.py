"""A run folder (`--out`) and what keeps it whole: one owner, one scenario, no torn rows.

- **Lock** (`locks`). A folder is written by one process at a time; a lock left by a
  killed run is taken over, a second live run refused with a message naming the first.
- **Manifest** (`manifest`). `manifest.json` records the scenario and seed the folder
  belongs to, how far each policy's run got and the SHA-256 of each model checkpoint:
  a run of another world is refused, and lost rows are found and named.
- **Checkpoints** (`checkpoints`). Where each round's model is saved, written atomically
  with its sum recorded first; a damaged or foreign checkpoint is refused.
- **Tables** (`tables`). rounds.csv, events.csv and similarity.csv are appended one row
  set per write, so a crash tears at most the last line; a reader refuses a value that is
  not what simfl writes, naming file, line and column.
- **Opening** (`folder`). Every check first, then the changes (a new folder's manifest,
  torn lines dropped): a refused run leaves the folder as it was. `open_run` does this at
  the start of a run, before the plan files are written.
- **Staged runs** (`adopt`). A Ray worker's run moved into its comparison folder.
"""

from __future__ import annotations

from simfl.errors import RunFolderError
from simfl.files import sha256_file, write_atomically
from simfl.runfolder.adopt import adopt_run
from simfl.runfolder.checkpoints import (CHECKPOINTS_DIR, load_checkpoint, round_checkpoint, save_checkpoint,
                                         verify_checkpoint)
from simfl.runfolder.folder import (Opening, check_run, commit, inspect_folder, make_dir, open_folder, open_run,
                                    read_table, resume_advice)
from simfl.runfolder.locks import LOCK_FILE, claim, release, release_all
from simfl.runfolder.manifest import (MANIFEST_FILE, check_manifest, ended, fingerprint, manifest_for, mark_ended,
                                      read_manifest, record_round)
from simfl.runfolder.tables import (CSV_FILES, EVENTS_FILE, METRICS_FILE, ROUNDS_FILE, SIMILARITY_FILE, TornLine, append_rows,
                                    check_csv, read_csv, repair_torn_line, truncate_events, write_csv_atomically)

__all__ = ["CHECKPOINTS_DIR", "CSV_FILES", "EVENTS_FILE", "LOCK_FILE", "MANIFEST_FILE", "METRICS_FILE", "Opening", "ROUNDS_FILE",
           "RunFolderError", "SIMILARITY_FILE", "TornLine", "adopt_run", "append_rows", "check_csv", "check_manifest",
           "check_run", "claim", "commit", "ended", "fingerprint", "inspect_folder", "load_checkpoint", "make_dir",
           "manifest_for", "mark_ended", "open_folder", "open_run", "read_csv", "read_manifest", "read_table",
           "record_round", "release", "release_all", "repair_torn_line", "resume_advice", "round_checkpoint",
           "save_checkpoint", "sha256_file", "truncate_events", "verify_checkpoint", "write_atomically",
           "write_csv_atomically"]
