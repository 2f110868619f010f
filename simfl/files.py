"""Two file helpers that run folders (`simfl.runfolder`) and generator checkpoints
(`simfl.generative`) share, so both check and replace files the same way: a SHA-256 of a
file's bytes, and a write that a crash leaves either undone or whole."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file at `path` as 64 hex digits, read in 1 MiB blocks (a
    checkpoint may be larger than is worth holding in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` by `data` in one step: written to a temporary file beside it (named
    by the pid, so two processes never share one), then renamed over it, so a reader or a
    crash sees the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


__all__ = ["sha256_file", "write_atomically"]
