"""Local-training throughput: simfl's trainer against a plain per-client PyTorch loop.

For the compact CNN (Fashion-MNIST, 10 devices x 1,250 samples, one FL round) and VGG-9
(random 3x32x32 images, fewer samples) it prints samples/s of
- simfl: ``TorchTrainer.train_round`` (training and FedAvg; evaluation excluded);
- plain: the loop most FL code starts from: per client a fresh model with
  ``load_state_dict``, ``torch.optim.SGD``, a shuffling ``DataLoader`` over a
  ``TensorDataset``, default thread count; then FedAvg of the state dicts;
their ratio, and achieved GFLOP/s (training ~ 3x the analytic forward FLOPs) against
the machine's float32 peak, measured with a large matmul in the same run.

Other jobs may share the CPU, so the loops are interleaved and each is reported as its
best (least disturbed) and median rate over repeats; the ratio is what to read.

simfl runs in three configurations: its default (2 worker processes x 1 thread,
float32), one process with 2 threads (float32), and the default in bfloat16 mixed
precision. "w x t" = worker processes x threads each.

A second table prices the numerics modes (simfl.numerics): simfl's default
configuration in fast and in portable mode, each in processes of its own (a mode is
chosen before torch loads), alternated over the repeats; the ratio is portable's rate
over fast's. ``--numerics-only`` prints just that table.

Run: ``python benchmarks/train_throughput.py [--repeats 3] [--plain-threads 2] [--only cnn] [--numerics-only]``
"""

from __future__ import annotations

import simfl  # noqa: F401 -- first: SIMFL_NUMERICS=portable must pin numpy and torch before they load

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from simfl.learning.data import ImageDataset, load_dataset
from simfl.learning.models import build_model, forward_flops
from simfl.learning.partition import dirichlet_partition
from simfl.learning.protocol import PRECISIONS
from simfl.learning.trainer import TorchTrainer
from simfl.scenario import Task
from simfl.world import rng

PLAIN_THREADS = torch.get_num_threads()  # the plain loop runs with torch's default


def peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best-of float32 matmul throughput, 2 n^3 FLOPs per product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def plain_round(task: Task, dataset: ImageDataset, tensors: list[TensorDataset],
                global_state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """One FedAvg round written the ordinary way."""
    torch.set_num_threads(PLAIN_THREADS)
    states, weights = [], []
    for k, data in enumerate(tensors):
        model = build_model(task.model, dataset.image_shape, dataset.n_classes, seed)
        model.load_state_dict(global_state)
        opt = torch.optim.SGD(model.parameters(), lr=task.learning_rate)
        loader = DataLoader(data, batch_size=task.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed + k))
        for _ in range(task.local_epochs):
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
        states.append(model.state_dict())
        weights.append(len(data))
    total = float(sum(weights))  # the plain weighted average of the state dicts
    return {name: sum(state[name] * (w / total) for state, w in zip(states, weights)) for name in states[0]}


CONFIGS = {  # label: (precision, threads, workers)
    "simfl fp32 2w x 1t": ("float32", 1, 2),  # the trainer's default
    "simfl fp32 1w x 2t": ("float32", 2, 1),
    "simfl bf16 2w x 1t": ("bfloat16", 1, 2),
}


def measure(label: str, task: Task, dataset: ImageDataset, parts: list[np.ndarray], repeats: int,
            peak: float) -> list[str]:
    """Rows of the table for one workload: simfl's configurations and the plain loop."""
    trainers = {name: TorchTrainer(task, dataset, parts, seed=0, precision=precision, threads=threads, workers=workers)
                for name, (precision, threads, workers) in CONFIGS.items()}
    n = int(sum(len(p) for p in parts))
    tensors = []
    for p in parts:
        x = torch.from_numpy(dataset.train_images[p].astype(np.float32) / 255.0)
        tensors.append(TensorDataset((x - 0.5) / 0.5, torch.from_numpy(dataset.train_labels[p])))
    state = next(iter(trainers.values())).global_state()
    everyone = np.arange(len(parts))
    rates: dict[str, list[float]] = {name: [] for name in (*CONFIGS, "plain")}
    # warm up every loop (and fork the workers), then interleave them so background load hits all alike
    for name, trainer in trainers.items():
        torch.set_num_threads(trainer.threads)
        _train_only(trainer, 10**6, everyone[:2])
    plain_round(task, dataset, tensors[:1], state, 0)
    for r in range(repeats):
        for name, trainer in trainers.items():
            torch.set_num_threads(trainer.threads)
            t = time.perf_counter()
            _train_only(trainer, r, everyone)
            rates[name].append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        plain_round(task, dataset, tensors, state, r)
        rates["plain"].append(n / (time.perf_counter() - t))
    flops = 3 * forward_flops(next(iter(trainers.values())).model, dataset.image_shape)
    for trainer in trainers.values():
        trainer.close()
    plain = max(rates["plain"])
    rows = []
    for k, (name, values) in enumerate(rates.items()):
        best = max(values)
        rows.append(f"{label if k == 0 else '':<24} {name:<19} {best:>8.0f} {statistics.median(values):>9.0f} "
                    f"{best * flops / 1e9:>8.1f} {100 * best * flops / 1e9 / peak:>6.1f}% {best / plain:>7.2f}x")
    return rows


def _train_only(trainer: TorchTrainer, round_index: int, participants: np.ndarray) -> None:
    """train_round without its evaluation, which the plain loop does not do either."""
    evaluate = trainer.evaluate
    trainer.evaluate = lambda: None  # type: ignore[assignment,method-assign]
    try:
        trainer.train_round(round_index, participants)
    finally:
        trainer.evaluate = evaluate  # type: ignore[method-assign]


def random_rgb(n_train: int, seed: int) -> ImageDataset:
    """A CIFAR-shaped stand-in (no RGB set installs offline); speed does not depend on content."""
    g = np.random.default_rng(seed)
    return ImageDataset("random-rgb", g.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8),
                        g.integers(0, 10, n_train).astype(np.int64),
                        g.integers(0, 256, (100, 3, 32, 32), dtype=np.uint8),
                        g.integers(0, 10, 100).astype(np.int64), tuple(str(c) for c in range(10)))


def workload(name: str, cnn_devices: int = 10, vgg_devices: int = 2,
             vgg_samples: int = 128) -> tuple[Task, ImageDataset, list[np.ndarray]]:
    """The task, data and devices' index arrays of a workload: "cnn" (Fashion-MNIST at
    Dir(z)) or "vgg9" (random 3x32x32 images, equal shares)."""
    task = Task(eval_samples=100)
    if name == "cnn":
        dataset = load_dataset("fashion-mnist")
        return task, dataset, dirichlet_partition(dataset.train_labels, cnn_devices, task.samples_per_device,
                                                  task.dirichlet_z, rng(0, "partition"))
    rgb = random_rgb(vgg_devices * vgg_samples, 0)
    return replace(task, model="vgg9"), rgb, list(np.arange(len(rgb.train_labels)).reshape(vgg_devices, -1))


def default_rate(name: str, repeats: int) -> float:
    """Best samples/s of simfl's default configuration (2 workers x 1 thread, float32) on
    the workload `name`, in this process's numerics mode."""
    task, dataset, parts = workload(name)
    trainer = TorchTrainer(task, dataset, parts, seed=0, threads=1, workers=2, precision="float32")
    everyone, n = np.arange(len(parts)), int(sum(len(p) for p in parts))
    _train_only(trainer, 10**6, everyone[:2])
    rates = []
    for r in range(repeats):
        t = time.perf_counter()
        _train_only(trainer, r, everyone)
        rates.append(n / (time.perf_counter() - t))
    trainer.close()
    return max(rates)


def numerics_cost(workloads: list[str], repeats: int) -> None:
    """Fast against portable numerics, each mode in fresh processes, alternated."""
    print(f"\n{'workload':<8} {'fast best/s':>12} {'portable best/s':>16} {'portable/fast':>14}")
    for workload in workloads:
        best: dict[str, float] = {"fast": 0.0, "portable": 0.0}
        for _ in range(repeats):
            for mode in best:
                done = subprocess.run([sys.executable, __file__, "--rate-of", workload], check=True, text=True,
                                      capture_output=True, env={**os.environ, "SIMFL_NUMERICS": mode})
                best[mode] = max(best[mode], float(done.stdout.split()[-1]))
        print(f"{workload:<8} {best['fast']:>12.0f} {best['portable']:>16.0f} {best['portable'] / best['fast']:>13.2f}x")
    print("simfl's default configuration (2 workers x 1 thread, float32), best of the repeats; each repeat a new "
          "process per mode, alternating")


def main() -> None:
    global PLAIN_THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-threads", type=int, default=2, help="threads of the peak matmul")
    parser.add_argument("--cnn-devices", type=int, default=10)
    parser.add_argument("--vgg-devices", type=int, default=2)
    parser.add_argument("--vgg-samples", type=int, default=128)
    parser.add_argument("--plain-threads", type=int, default=None,
                        help=f"threads of the plain loop (default: torch's default, here {PLAIN_THREADS})")
    parser.add_argument("--only", choices=("cnn", "vgg9"), default=None)
    parser.add_argument("--numerics-only", action="store_true", help="only the fast-vs-portable table")
    parser.add_argument("--rate-of", choices=("cnn", "vgg9"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workloads = [args.only] if args.only else ["cnn", "vgg9"]
    if args.rate_of:  # a child of numerics_cost: one rate, in the mode SIMFL_NUMERICS chose
        print(default_rate(args.rate_of, 3))
        return
    if args.numerics_only:
        numerics_cost(workloads, args.repeats)
        return
    if args.plain_threads is not None:
        PLAIN_THREADS = args.plain_threads

    torch.set_num_threads(args.peak_threads)
    peak = peak_gflops()
    task, fmnist, cnn_parts = workload("cnn", cnn_devices=args.cnn_devices)
    vgg_task, rgb, vgg_parts = workload("vgg9", vgg_devices=args.vgg_devices, vgg_samples=args.vgg_samples)

    load = os.getloadavg()[0]
    print(f"float32 matmul peak {peak:.1f} GFLOP/s with {args.peak_threads} threads; load average {load:.1f} on "
          f"{os.cpu_count()} CPUs; plain loop threads {PLAIN_THREADS}; "
          f"{args.repeats} interleaved repeats")
    print(f"{'workload':<24} {'loop':<19} {'best/s':>8} {'median/s':>9} {'GFLOP/s':>8} {'%peak':>7} {'vs plain':>8}")
    rows = []
    if args.only in (None, "cnn"):
        rows += measure(f"cnn {args.cnn_devices}x{task.samples_per_device} fmnist", task, fmnist, cnn_parts,
                        args.repeats, peak)
    if args.only in (None, "vgg9"):
        rows += measure(f"vgg9 {args.vgg_devices}x{args.vgg_samples} 3x32x32", vgg_task, rgb,
                        vgg_parts, args.repeats, peak)
    print("\n".join(rows))
    print("samples/s of local training (one FL round incl. FedAvg, no evaluation); GFLOP/s = 3 x forward "
          "FLOPs x best samples/s; 'vs plain' compares best rates")
    numerics_cost(workloads, args.repeats)


if __name__ == "__main__":
    main()
