"""One writer per run folder: `.simfl.lock` holds the owner's pid, and an advisory `flock`
on it that the kernel drops when the owner dies, so a lock left by a killed run is
recognised as stale and taken over, while a second live run is refused with a message
naming the first's pid."""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from simfl.errors import RunFolderError

LOCK_FILE = ".simfl.lock"

_held: dict[Path, int] = {}  # folder -> fd of its lock, for the folders this process owns


def claim(out_dir: Path) -> None:
    """Own `out_dir` for the rest of this process (or until `release`); RunFolderError
    naming the owner when another live process holds it. A lock whose owner died is
    stale: the kernel dropped its flock, and it is taken over."""
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
    """Give up `out_dir` (remove its lock file, drop the flock); nothing if not owned."""
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


__all__ = ["LOCK_FILE", "claim", "release", "release_all"]
