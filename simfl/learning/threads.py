"""How many threads torch computes with, set for a block and restored after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads, then restore the caller's setting, so the
    trainer does not change how the rest of the process (e.g. a generator) runs."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


__all__ = ["intra_op_threads"]
