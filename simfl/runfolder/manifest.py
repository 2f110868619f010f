"""`manifest.json`: what a run folder belongs to and how far its runs got.

It records the scenario (a fingerprint of every field that changes results) and seed the
folder belongs to, so that a later run or `--resume` with another scenario or seed is
refused instead of mixing two worlds; the numerics it was computed in; per policy, the
last round whose events were written and how many event rows that makes (so rows lost
from rounds.csv or events.csv are found); runs that ended early for good; and the
SHA-256 of each model checkpoint (kept up to date by `simfl.runfolder.checkpoints`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from simfl import numerics
from simfl.errors import RunFolderError
from simfl.files import write_atomically
from simfl.radio import DEFAULT_CARRIER_HZ

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1

# Fields that may change between the runs of one folder without changing what a round
# computes: how many rounds (resume to more), the report's targets, names, the policy list
# and where data and generators are cached.
_NOT_FINGERPRINTED = {("name",), ("source",), ("raw",), ("policies",), ("seed",), ("task", "rounds"), ("task", "max_time_s"),
                      ("task", "target_accuracies"), ("task", "data_dir"), ("generator", "cache_dir")}

# Fields added after folders were written, left out of the fingerprint at their default so
# that those folders (whose results used the default) stay resumable. "*" stands for a list
# index (devices[*]).
_OMITTED_AT_DEFAULT: dict[tuple[str, ...], Any] = {
    ("task", "threads"): 1,
    ("task", "device"): "cpu",
    ("cells", "*", "carrier_hz"): DEFAULT_CARRIER_HZ,
    ("cells", "*", "path_loss", "model"): None,
    ("devices", "*", "mobility", "region"): "home",
    ("network", "handover", "hysteresis_db"): 0.0,
    ("network", "handover", "time_to_trigger_s"): 0.0,
    ("network", "handover", "interruption_s"): 0.0,
    ("network", "channel_step_s"): None,
    ("network", "interference"): "none",
    ("network", "allocator"): "lowest_free",
    ("server", "aggregation_delay_s"): 0.0,
    ("server", "synthesis_images_per_s"): math.inf,
    ("flower",): {},
    ("optimisation", "plan_for"): "all",
}

# A component without fields entered the fingerprint by nothing until its kind did; the
# defaults' kinds are still left out, so folders written with them stay resumable (a
# folder of fading `rayleigh` written before is refused, as it should have been).
_FIELDLESS_DEFAULTS = {"none", "always", "static"}
_WARNED: set[Path] = set()  # folders whose numerics this process has warned about


def fingerprint(scenario: Any) -> tuple[str, dict[str, Any]]:
    """SHA-256 (hex, 16 digits) of every scenario field that changes what a round
    computes, and those fields as a flat {path: value} dict."""
    flat: dict[str, Any] = {}

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if path in _NOT_FINGERPRINTED:
            return
        if path == ("task", "device") and value == "auto":
            value = _auto_device()  # where the rounds compute: a folder of auto on a CPU is a folder of cpu
        pattern = tuple("*" if part.isdigit() else part for part in path)
        if pattern in _OMITTED_AT_DEFAULT and value == _OMITTED_AT_DEFAULT[pattern]:
            return
        if path == ("task", "precision"):
            value = numerics.precision(value)  # what the rounds compute in: "auto" resolved on this CPU and mode
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields, kind = dataclasses.fields(value), getattr(value, "kind", None)
            if not fields and kind not in _FIELDLESS_DEFAULTS:
                flat[".".join(path)] = kind  # `rayleigh` against `none`: no field tells them apart
            for f in fields:
                walk(getattr(value, f.name), (*path, f.name))
        elif isinstance(value, (list, tuple)) and any(dataclasses.is_dataclass(v) for v in value):
            for i, v in enumerate(value):
                walk(v, (*path, str(i)))
        else:
            flat[".".join(path)] = _plain(value)

    walk(scenario, ())
    text = json.dumps(flat, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16], flat


def _auto_device() -> str:
    """What task.device: auto trains on here (as simfl.learning.trainer.training_device decides)."""
    import torch  # deferred: only a scenario that sets task.device: auto loads torch to fingerprint it

    return "cuda" if torch.cuda.is_available() else "cpu"


def manifest_for(out_dir: Path, scenario: Any) -> tuple[dict[str, Any], bool]:
    """The manifest of `out_dir` and False when it belongs to `scenario` and its seed, or
    the manifest a new folder gets and True when it has none; RunFolderError for a folder
    of another scenario or seed, or a damaged manifest. Writes nothing: a refusal found
    later must leave the folder as it was."""
    digest, fields = fingerprint(scenario)
    manifest = read_manifest(out_dir)
    if not manifest:
        return {"format": MANIFEST_FORMAT, "seed": int(scenario.seed), "fingerprint": digest, "scenario": fields,
                "source": str(scenario.source), "rows": {}, "checkpoints": {}, **numerics.record()}, True
    if manifest.get("seed") == int(scenario.seed) and manifest.get("fingerprint") == digest:
        _warn_other_numerics(Path(out_dir), manifest)
        return manifest, False
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


def check_manifest(out_dir: Path, scenario: Any) -> None:
    """Write the manifest of a new folder; refuse a folder of another scenario or seed."""
    manifest, new = manifest_for(out_dir, scenario)
    if new:
        write_manifest(out_dir, manifest)


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
    manifest = read_manifest(out_dir)
    if not manifest:
        return  # rows written outside a run folder (a test's recorder): nothing to keep whole
    manifest.setdefault("rows", {})[policy] = {"round": int(round_index), "events": int(events_rows)}
    write_manifest(out_dir, manifest)


def mark_ended(out_dir: Path, policy: str, rounds_played: int) -> None:
    """Record that `policy`'s run ended for good after `rounds_played` rounds, before the
    scenario's count (no device could take part any more): a resume has nothing to add."""
    manifest = read_manifest(out_dir)
    if not manifest:
        return
    manifest.setdefault("ended", {})[policy] = int(rounds_played)
    write_manifest(out_dir, manifest)


def ended(out_dir: Path) -> dict[str, int]:
    """policy -> rounds played, for the runs of the folder that ended early for good."""
    return {str(k): int(v) for k, v in read_manifest(out_dir).get("ended", {}).items()}


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest of `out_dir` ({} when it has none); RunFolderError when damaged."""
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


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest of `out_dir` in one step (a crash leaves the old or the new)."""
    write_atomically(Path(out_dir) / MANIFEST_FILE, json.dumps(manifest, indent=1, sort_keys=True).encode())


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


__all__ = ["MANIFEST_FILE", "check_manifest", "ended", "fingerprint", "manifest_for", "mark_ended", "read_manifest",
           "record_round", "write_manifest"]
