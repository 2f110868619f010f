"""The trainer's worker processes: forked after the data are in memory (shared
copy-on-write), one thread each, ending with their parent; they train clients and
evaluate test chunks with the parent trainer's own code, so a result is bit for bit the
one the parent would compute. They exist on the CPU only: a trainer on cuda (task.device)
trains in its own process, since CUDA does not survive a fork."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from simfl.learning.images import LabelledImages
from simfl.learning.local_rule import LocalRule, extras_to_arrays

if TYPE_CHECKING:
    from simfl.learning.trainer import TorchTrainer


_WORKER: TorchTrainer | None = None  # the trainer a forked worker inherited


def _worker_init(parent_pid: int) -> None:
    _exit_with_parent(parent_pid)
    trainer = _WORKER
    assert trainer is not None, "simfl training workers must be forked by TorchTrainer"
    trainer._pool = None  # a worker never forks workers of its own
    trainer._finalizer = None
    torch.set_num_threads(trainer.threads)


def _exit_with_parent(parent_pid: int) -> None:
    """A worker whose parent is killed ends at once (Linux: SIGKILL on the parent's death),
    instead of living on to fail on the broken pipe to it with a BrokenPipeError traceback."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: orphans end when they next touch the pipe, as before
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def start_pool(trainer: TorchTrainer) -> Any:
    """A pool of `trainer.workers` forked workers, each inheriting `trainer`. They inherit
    it through a module global rather than the pool's initargs, so the pool holds no
    reference to the trainer and dies with it."""
    global _WORKER
    _WORKER = trainer
    try:
        return multiprocessing.get_context("fork").Pool(trainer.workers, initializer=_worker_init,
                                                        initargs=(os.getpid(),))
    finally:
        _WORKER = None


def train_job(job: tuple[int, int, int, list[np.ndarray], LocalRule | None, LabelledImages | None]
                  ) -> tuple[list[np.ndarray], float, dict[str, Any]]:
    """Local training of one client in a worker: the same steps, seeds, thread count and
    local rule as in the parent, so the result is bit for bit the one the parent would get."""
    key, client, repeat, base_arrays, rule, synthetic = job
    trainer = _WORKER
    assert trainer is not None
    if synthetic is not None:
        trainer._synthetic[client] = synthetic
    try:
        trainer._load([torch.from_numpy(a) for a in base_arrays])
        x, y = trainer._training_set(client)
        loss, extras = trainer._train_loaded(x, y, key, client, repeat, rule)
        return [p.detach().numpy() for p in trainer._params], loss, extras_to_arrays(extras)
    finally:
        if synthetic is not None:
            # for this job only: the parent sends a lazily made set with each of its jobs,
            # and a worker that kept them would hold half of a run's synthetic images
            del trainer._synthetic[client]


def eval_job(job: tuple[list[np.ndarray], int, int]) -> tuple[float, int]:
    """One test chunk of ``TorchTrainer.evaluate`` in a worker."""
    global_arrays, start, stop = job
    trainer = _WORKER
    assert trainer is not None
    trainer._load([torch.from_numpy(a) for a in global_arrays])
    return trainer._eval_chunk(start, stop)


__all__ = ["eval_job", "start_pool", "train_job"]
