"""A run folder (`--out`) and what keeps it whole: one owner, one scenario, no torn rows.

- **Lock.** A folder is written by one process at a time: `.simfl.lock` holds the owner's
  pid, and an advisory `flock` on it that the kernel drops when the owner dies, so a lock
  left by a killed run is recognised as stale and taken over, while a second live run is
  refused with a message naming the first's pid.
- **Manifest.** `manifest.json` records the scenario (a fingerprint of every field that
  changes results) and seed the folder belongs to; a later run or `--resume` with another
  scenario or seed is refused instead of mixing two worlds. It also records, per policy,
  the last round whose events were written and how many event rows that makes, and the
  SHA-256 of each model checkpoint: rows lost from rounds.csv or events.csv, and a
  damaged or foreign checkpoint, are found and named rather than silently used.
- **Torn lines.** Rows are appended in one write per row set (`append_rows`), so a crash
  leaves at most a partial last line; opening the folder drops it (it was never a
  finished row) before anything is appended after it.

`open_run` does all of this at the start of a run, before the plan files are written.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import os
import socket
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd

from simfl import numerics
from simfl.errors import SimflError

LOCK_FILE = ".simfl.lock"
MANIFEST_FILE = "manifest.json"
ROUNDS_FILE = "rounds.csv"  # simfl.records names the same files
EVENTS_FILE = "events.csv"
SIMILARITY_FILE = "similarity.csv"
CSV_FILES = (ROUNDS_FILE, EVENTS_FILE, SIMILARITY_FILE)
MANIFEST_FORMAT = 1

# Fields that may change between the runs of one folder without changing what a round
# computes: how many rounds (resume to more), the report's targets, names, the policy list
# and where data and generators are cached.
_NOT_FINGERPRINTED = {("name",), ("source",), ("raw",), ("policies",), ("seed",), ("task", "rounds"), ("task", "max_time_s"),
                      ("task", "target_accuracies"), ("task", "data_dir"), ("generator", "cache_dir")}

# Fields added after folders were written, left out of the fingerprint at their default so
# that those folders (whose results used the default) stay resumable.
_OMITTED_AT_DEFAULT: dict[tuple[str, ...], Any] = {("task", "threads"): 1}

_held: dict[Path, int] = {}  # folder -> fd of its lock, for the folders this process owns


class RunFolderError(SimflError):
    """A run folder that is busy, belongs to another scenario or seed, or is damaged."""


# --------------------------------------------------------------------------- opening


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
    mine = rounds[rounds["policy"] == policy] if not rounds.empty else rounds
    finished = sorted(int(r) for r in mine["round"]) if not mine.empty else []
    last = finished[-1] if finished else -1
    where = out_dir / ROUNDS_FILE
    if finished != list(range(last + 1)):
        raise RunFolderError(f"{where}: the rounds of policy {policy!r} are not 0..{last} once each "
                             f"(found {len(finished)} rows); the file is damaged or two runs wrote it. "
                             "Choose another --out (or delete the folder) and run again")
    progress = _manifest(out_dir).get("rows", {}).get(policy)
    events = read_csv(out_dir / EVENTS_FILE)
    my_events = events[events["policy"] == policy] if not events.empty else events
    if progress is not None:
        # progress["round"] is recorded after a round's events and before its rounds.csv
        # row, so rounds.csv ends at that round or the one before it
        if not progress["round"] - 1 <= last <= progress["round"]:
            raise RunFolderError(f"{where}: holds {last + 1} finished rounds of policy {policy!r}, but "
                                 f"{out_dir / MANIFEST_FILE} records {progress['round'] + 1}; rounds.csv lost "
                                 "rows (or was replaced). Choose another --out (or delete the folder) and run again")
        written = int((my_events["round"] <= progress["round"]).sum()) if not my_events.empty else 0
        if written != progress["events"]:
            raise RunFolderError(f"{out_dir / EVENTS_FILE}: holds {written} event rows of policy {policy!r} up to "
                                 f"round {progress['round']}, but {progress['events']} were written; the file is "
                                 "damaged. Choose another --out (or delete the folder) and run again")
    elif not my_events.empty and int(my_events["round"].max()) > last + 1:
        # no record (a folder from before manifests): events of a round after the next
        # unfinished one mean rounds.csv lost rows
        raise RunFolderError(f"{where}: holds {last + 1} finished rounds of policy {policy!r} but events.csv has "
                             f"rows of round {int(my_events['round'].max())}; rounds.csv lost rows. Choose another "
                             "--out (or delete the folder) and run again")
    if finished and not resume:
        raise RunFolderError(f"{out_dir}: already holds rounds of policy {policy!r}; "
                             "use --resume to continue them or choose another --out")
    if finished:
        from simfl.experiment import _checkpoint  # the one place checkpoint names are made

        path = _checkpoint(out_dir / "checkpoints", policy, last)
        if not path.exists() and _checkpoint(out_dir / "checkpoints", policy, last + 1).exists():
            raise RunFolderError(f"{where}: ends at round {last} of policy {policy!r}, but the model of round "
                                 f"{last + 1} was saved and round {last}'s was dropped after its row was written: "
                                 "rounds.csv lost its last row. Choose another --out (or delete the folder) and run again")
        if not path.exists():
            raise RunFolderError(f"{path}: missing, so round {last} of policy {policy!r} cannot be continued "
                                 "(the checkpoint was deleted, or rounds.csv damaged). Choose another --out "
                                 "(or delete the folder) and run again")
        verify_checkpoint(path)
    elif not my_events.empty:
        # a run that stopped inside its first round: its partial events go, round 0 runs again
        from simfl.records import truncate_events

        truncate_events(out_dir, policy, 0)


def make_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"--out {out_dir}: is a file, not a directory; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"--out {out_dir}: cannot create the directory ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise RunFolderError(f"--out {out_dir}: the directory is not writable")


# --------------------------------------------------------------------------- lock


def claim(out_dir: Path) -> None:
    """Own `out_dir` for the rest of this process (or until `release`); RunFolderError
    naming the owner when another live process holds it. A lock whose owner died is
    stale: the kernel dropped its flock, and it is taken over."""
    import fcntl

    key = Path(out_dir).resolve()
    if key in _held:
        return
    path = key / LOCK_FILE
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            raise RunFolderError(f"{out_dir}: in use by another simfl run ({owner}); wait for it to finish "
                                 "or choose another --out") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous owner removed the file between our open and flock: try again
            os.close(fd)
            continue
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        _held[key] = fd
        if len(_held) == 1:
            atexit.register(release_all)
        return
    raise RunFolderError(f"{out_dir}: could not take the lock {path}; another run keeps replacing it")


def release(out_dir: Path) -> None:
    key = Path(out_dir).resolve()
    fd = _held.pop(key, None)
    if fd is None:
        return
    try:
        (key / LOCK_FILE).unlink(missing_ok=True)
    finally:
        os.close(fd)  # drops the flock


def release_all() -> None:
    """Release every folder this process owns (the CLI does it on exit)."""
    for key in list(_held):
        release(key)


def _drop_inherited() -> None:
    """In a forked child (training workers): close the inherited lock descriptors, so the
    lock is held by the owning process alone and ends with it, not with its children."""
    for fd in _held.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_drop_inherited)


def _owner(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {record['pid']} on {record['host']}, since {record['since']}"
    except (ValueError, KeyError, OSError):
        return "a process that has not yet written its pid"


# --------------------------------------------------------------------------- manifest


def fingerprint(scenario: Any) -> tuple[str, dict[str, Any]]:
    """SHA-256 (hex, 16 digits) of every scenario field that changes what a round
    computes, and those fields as a flat {path: value} dict."""
    flat: dict[str, Any] = {}

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if path in _NOT_FINGERPRINTED:
            return
        if path in _OMITTED_AT_DEFAULT and value == _OMITTED_AT_DEFAULT[path]:
            return
        if path == ("task", "precision"):
            value = numerics.precision(value)  # what the rounds compute in: "auto" resolved on this CPU and mode
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name), (*path, f.name))
        elif isinstance(value, (list, tuple)) and any(dataclasses.is_dataclass(v) for v in value):
            for i, v in enumerate(value):
                walk(v, (*path, str(i)))
        else:
            flat[".".join(path)] = _plain(value)

    walk(scenario, ())
    text = json.dumps(flat, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16], flat


def check_manifest(out_dir: Path, scenario: Any) -> None:
    """Write the manifest of a new folder; refuse a folder of another scenario or seed."""
    path = Path(out_dir) / MANIFEST_FILE
    digest, fields = fingerprint(scenario)
    if not path.exists():
        _write_manifest(out_dir, {"format": MANIFEST_FORMAT, "seed": int(scenario.seed), "fingerprint": digest,
                                  "scenario": fields, "source": str(scenario.source), "rows": {}, "checkpoints": {},
                                  **numerics.record()})
        return
    manifest = _manifest(out_dir)
    if manifest.get("seed") == int(scenario.seed) and manifest.get("fingerprint") == digest:
        _warn_other_numerics(Path(out_dir), manifest)
        return
    what = []
    if manifest.get("seed") != int(scenario.seed):
        what.append(f"seed {manifest.get('seed')} there, {scenario.seed} here")
    theirs = manifest.get("scenario", {})
    changed = sorted(k for k in set(theirs) | set(fields) if theirs.get(k) != fields.get(k))
    if changed:
        shown = ", ".join(f"{k} ({theirs.get(k)!r} there, {fields.get(k)!r} here)" for k in changed[:3])
        what.append(f"{len(changed)} scenario field(s) differ: {shown}{', ...' if len(changed) > 3 else ''}")
    raise RunFolderError(f"{out_dir}: holds a run of another scenario or seed (from {manifest.get('source')}; "
                         f"{'; '.join(what)}); results of two worlds must not mix. Choose another --out, or "
                         "run with the folder's scenario and seed")


_WARNED: set[Path] = set()


def _warn_other_numerics(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Say once per folder and process when its rows were computed in another numerics
    mode, on another kind of CPU (fast mode) or with other software: rows added here may
    then differ in their last bits from those an uninterrupted run there would give."""
    if out_dir.resolve() in _WARNED:
        return
    differ = numerics.differences(manifest)
    if differ:
        _WARNED.add(out_dir.resolve())
        print(f"simfl: warning: {out_dir} was computed elsewhere ({'; '.join(differ)}); rows added here may differ "
              "in their last bits, and so in accuracy, from what an uninterrupted run there would give "
              "(--numerics portable gives the same bits on every CPU with AVX2)", file=sys.stderr)


def record_round(out_dir: Path, policy: str, round_index: int, events_rows: int) -> None:
    """After a round's events are written and before its rounds.csv row: the round and
    how many event rows of `policy` exist up to it."""
    manifest = _manifest(out_dir)
    if not manifest:
        return  # rows written outside a run folder (a test's recorder): nothing to keep whole
    manifest.setdefault("rows", {})[policy] = {"round": int(round_index), "events": int(events_rows)}
    _write_manifest(out_dir, manifest)


def mark_ended(out_dir: Path, policy: str, rounds_played: int) -> None:
    """Record that `policy`'s run ended for good after `rounds_played` rounds, before the
    scenario's count (no device could take part any more): a resume has nothing to add."""
    manifest = _manifest(out_dir)
    if not manifest:
        return
    manifest.setdefault("ended", {})[policy] = int(rounds_played)
    _write_manifest(out_dir, manifest)


def ended(out_dir: Path) -> dict[str, int]:
    """policy -> rounds played, for the runs of the folder that ended early for good."""
    return {str(k): int(v) for k, v in _manifest(out_dir).get("ended", {}).items()}


def _manifest(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a simfl manifest")
        return manifest
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path}: damaged ({exc}); the folder's scenario and seed are unknown. Choose "
                             "another --out (or delete the folder) and run again") from None


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    write_atomically(Path(out_dir) / MANIFEST_FILE, json.dumps(manifest, indent=1, sort_keys=True).encode())


# --------------------------------------------------------------------------- staged runs


def adopt_run(stage: Path, dest: Path, policy: str) -> None:
    """Move `policy`'s finished run from its own folder `stage` (where a Ray worker wrote it)
    into the comparison folder `dest` (owned by this process), so that `dest` ends up as a
    sequential run of its policies in this order would have left it: rows appended after
    the earlier policies' (similarity.csv rewritten without `policy`'s old rows first, as
    `_record_similarity` does), its plan files and last checkpoint moved, and its progress,
    early end and checkpoint sums recorded in `dest`'s manifest. Then `stage` is deleted."""
    import shutil

    stage, dest = Path(stage), Path(dest)
    # rounds.csv last: a run's rows there mean it is in place, so an adoption cut short
    # (rows of `policy` in events.csv or similarity.csv but not in rounds.csv) is redone
    # from the start by --resume, its partial rows dropped first
    for name in (EVENTS_FILE, SIMILARITY_FILE):
        target = dest / name
        if target.exists() and target.stat().st_size:
            kept = pd.read_csv(target)
            if name == SIMILARITY_FILE or (kept["policy"] == policy).any():
                write_csv_atomically(target, kept[kept["policy"] != policy])
        _append_table(stage / name, target)
    theirs_manifest, mine = _manifest(stage), _manifest(dest)
    for kind in ("plans", "checkpoints"):
        folder = stage / kind
        if folder.is_dir():
            (dest / kind).mkdir(exist_ok=True)
            for path in sorted(folder.iterdir()):
                path.replace(dest / kind / path.name)
                if kind == "checkpoints" and path.name in theirs_manifest.get("checkpoints", {}):
                    mine.setdefault("checkpoints", {})[path.name] = theirs_manifest["checkpoints"][path.name]
    for key in ("rows", "ended"):
        if policy in theirs_manifest.get(key, {}):
            mine.setdefault(key, {})[policy] = theirs_manifest[key][policy]
    _write_manifest(dest, mine)
    _append_table(stage / ROUNDS_FILE, dest / ROUNDS_FILE)
    shutil.rmtree(stage)
    if not any(stage.parent.iterdir()):
        stage.parent.rmdir()


def _append_table(source: Path, target: Path) -> None:
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


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(state: dict, path: Path) -> None:
    """torch.save `state` to `path` atomically and record its SHA-256 in the folder's
    manifest (the folder is path's grandparent: <out>/checkpoints/<file>)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    torch.save(state, partial)
    out_dir = path.parent.parent
    manifest = _manifest(out_dir)
    if not manifest:
        partial.replace(path)  # outside a run folder: nothing records it
        return
    sums = {name: s for name, s in manifest.get("checkpoints", {}).items() if (path.parent / name).exists()}
    sums[path.name] = sha256_file(partial)
    manifest["checkpoints"] = sums
    # the sum first: a checkpoint on disk always has its sum recorded
    _write_manifest(out_dir, manifest)
    partial.replace(path)


def verify_checkpoint(path: Path) -> None:
    """RunFolderError naming `path` unless its SHA-256 is the one recorded when it was saved."""
    expected = _manifest(path.parent.parent).get("checkpoints", {}).get(path.name)
    if expected is None:
        raise RunFolderError(f"{path}: no checksum recorded for it in {path.parent.parent / MANIFEST_FILE} (a file "
                             "from elsewhere, or a folder from an older simfl); it is not used. Choose another "
                             "--out (or delete the folder) and run again")
    if sha256_file(path) != expected:
        raise RunFolderError(f"{path}: damaged (its SHA-256 differs from the one recorded when it was saved); "
                             "it is not used. Choose another --out (or delete the folder) and run again")


def load_checkpoint(path: Path) -> dict:
    """The state saved by `save_checkpoint`, after checking its SHA-256."""
    import torch

    verify_checkpoint(path)
    return torch.load(path, weights_only=True)


# --------------------------------------------------------------------------- files


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


def repair_torn_line(path: Path) -> int:
    """Drop a last line without its newline (every row is written with its newline in the
    same write, so such a line is a partial row); returns the bytes dropped."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb") as f:
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return 0
        # find the last newline, reading backwards in blocks
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
    os.truncate(path, keep)
    return size - keep


def check_csv(path: Path) -> None:
    """RunFolderError naming `path` when its last line is incomplete (for readers that
    must not repair, like `simfl report`)."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                raise RunFolderError(f"{path}: the last line is incomplete (a run stopped while writing it, or "
                                     "the file was damaged); `--resume` the run to repair it")


def read_csv(path: Path, required: tuple[str, ...] = ("policy", "round")) -> pd.DataFrame:
    """A results CSV, or RunFolderError naming the file when it is torn or unreadable."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    check_csv(path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path}: damaged, cannot be read ({str(exc).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{path}: not a simfl results file (no column {', '.join(missing)})")
    if "round" in required and len(frame) and not pd.api.types.is_integer_dtype(frame["round"]):
        raise RunFolderError(f"{path}: damaged (the round column holds something other than whole numbers)")
    return frame


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_csv_atomically(path: Path, frame: pd.DataFrame) -> None:
    """Replace a CSV file in one step (a crash leaves the old file or the new one)."""
    buffer = StringIO()
    frame.to_csv(buffer, index=False)
    write_atomically(path, buffer.getvalue().encode())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """A JSON value for a scenario field (tuples as lists, floats as repr-exact)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


__all__ = ["LOCK_FILE", "MANIFEST_FILE", "RunFolderError", "adopt_run", "append_rows", "check_csv", "check_manifest", "claim",
           "ended", "fingerprint", "load_checkpoint", "make_dir", "mark_ended", "open_folder", "open_run",
           "read_csv", "record_round", "release", "release_all", "repair_torn_line", "save_checkpoint",
           "sha256_file", "verify_checkpoint", "write_atomically", "write_csv_atomically"]
