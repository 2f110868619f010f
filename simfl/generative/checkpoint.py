"""Where trained generators live on disk, and how they are written.

One checkpoint per (kind, config, dataset, public split size, seed): two scenarios that
train on the same public split with the same seed share it; any difference in the
training data or the seed gives another file. Files are written atomically (a temporary
file, then a rename), so an interrupted save never leaves a corrupt checkpoint behind.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import torch

from simfl import numerics
from simfl.errors import DataNotFound, SimflError
from simfl.files import sha256_file, write_atomically


def default_cache_dir() -> Path:
    """`$SIMFL_CACHE`, else `~/.cache/simfl`."""
    env = os.environ.get("SIMFL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "simfl"


def resolve_cache_dir(cache_dir: str | Path | None, scenario_cache_dir: str | None = None) -> Path:
    """An explicit argument wins, then the scenario's generator.cache_dir, then the default."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if scenario_cache_dir is not None:
        return Path(scenario_cache_dir).expanduser()
    return default_cache_dir()


def checkpoint_stem(kind: str, config: str, dataset: str, public_samples: int, seed: int) -> str:
    """e.g. `diffusion-default-fashion-mnist-pub10000-seed1`, with `-portable` when trained
    in portable numerics (its weights, and so its images, differ from the fast mode's)."""
    suffix = "-portable" if numerics.mode() == "portable" else ""
    return f"{kind}-{config}-{dataset}-pub{public_samples}-seed{seed}{suffix}"


def checkpoint_path(cache_dir: Path, stem: str) -> Path:
    return cache_dir / "generators" / f"{stem}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` atomically to `path`, with its SHA-256 beside it (`<path>.sha256`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    # the sum first: a checkpoint on disk always has its sum
    write_atomically(_sum_path(path), (sha256_file(tmp) + "\n").encode())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; DataNotFound when absent or
    unreadable, DamagedCheckpoint when its SHA-256 is not the one recorded beside it, or
    none is: `save_checkpoint` writes the sum before the checkpoint, so a checkpoint
    without one had it deleted or was put there by hand, and damage cannot be ruled out.
    (Checkpoints of simfl versions before checksums have none: the message says how to
    record the sum of one the user trusts, rather than train it again.)"""
    if not path.exists():
        raise DataNotFound(f"no generator checkpoint at {path}")
    sums = _sum_path(path)
    if not sums.exists():
        raise DamagedCheckpoint(f"{path}: no checksum beside it ({sums.name} is missing), so damage cannot be "
                                "ruled out; it is not used. A checkpoint saved by a simfl before checksums has "
                                f"none: if you trust it, record its sum with `sha256sum {shlex.quote(str(path))} | "
                                f"cut -d' ' -f1 > {shlex.quote(str(sums))}`. Otherwise delete it and train the "
                                "generator again")
    if sums.read_bytes().decode("ascii", "replace").strip() != sha256_file(path):
        raise DamagedCheckpoint(f"{path}: damaged (its SHA-256 differs from {sums.name}, recorded when it was "
                                "saved); it is not used. Delete it and train the generator again")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which and how to recover
        raise DataNotFound(f"cannot read the generator checkpoint {path} ({exc}); delete it and train again") from None


class DamagedCheckpoint(SimflError):
    """A checkpoint whose checksum does not match: refused, not retrained over silently."""


def _sum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


__all__ = ["DamagedCheckpoint", "checkpoint_path", "checkpoint_stem", "default_cache_dir", "load_checkpoint",
           "resolve_cache_dir", "save_checkpoint"]
