"""Model checkpoints of a run folder: where they are (`<out>/checkpoints/<policy>-round<r>.pt`,
named here and nowhere else), and how they are written and read back: atomically, with
their SHA-256 recorded in the folder's manifest first, so a damaged or foreign checkpoint
is refused rather than trained on."""

from __future__ import annotations

from pathlib import Path

from simfl.errors import RunFolderError
from simfl.files import sha256_file
from simfl.runfolder.manifest import MANIFEST_FILE, read_manifest, write_manifest

CHECKPOINTS_DIR = "checkpoints"


def round_checkpoint(out_dir: Path, policy: str, round_index: int) -> Path:
    """The checkpoint holding `policy`'s model and snapshot after round `round_index`."""
    return Path(out_dir) / CHECKPOINTS_DIR / f"{policy}-round{round_index}.pt"


def save_checkpoint(state: dict, path: Path) -> None:
    """torch.save `state` to `path` atomically and record its SHA-256 in the folder's
    manifest (the folder is path's grandparent: <out>/checkpoints/<file>)."""
    import torch  # deferred: the folder's other checks run without loading torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    torch.save(state, partial)
    out_dir = path.parent.parent
    manifest = read_manifest(out_dir)
    if not manifest:
        partial.replace(path)  # outside a run folder: nothing records it
        return
    sums = {name: s for name, s in manifest.get("checkpoints", {}).items() if (path.parent / name).exists()}
    sums[path.name] = sha256_file(partial)
    manifest["checkpoints"] = sums
    # the sum first: a checkpoint on disk always has its sum recorded
    write_manifest(out_dir, manifest)
    partial.replace(path)


def verify_checkpoint(path: Path) -> None:
    """RunFolderError naming `path` unless its SHA-256 is the one recorded when it was saved."""
    expected = read_manifest(path.parent.parent).get("checkpoints", {}).get(path.name)
    if expected is None:
        raise RunFolderError(f"{path}: no checksum recorded for it in {path.parent.parent / MANIFEST_FILE} (a file "
                             "from elsewhere, or a folder from an older simfl); it is not used. Choose another "
                             "--out (or delete the folder) and run again")
    if sha256_file(path) != expected:
        raise RunFolderError(f"{path}: damaged (its SHA-256 differs from the one recorded when it was saved); "
                             "it is not used. Choose another --out (or delete the folder) and run again")


def load_checkpoint(path: Path) -> dict:
    """The state saved by `save_checkpoint`, after checking its SHA-256."""
    import torch  # deferred: the folder's other checks run without loading torch

    verify_checkpoint(path)
    return torch.load(path, weights_only=True)


__all__ = ["CHECKPOINTS_DIR", "load_checkpoint", "round_checkpoint", "save_checkpoint", "verify_checkpoint"]
