"""How a training job slows down when a second one shares the machine, under the settings of
OpenMP's thread waits.

    python benchmarks/thread_sharing.py [--steps 30] [--threads 2]

The job is what simfl runs longest on its own threads: training steps of the quick
diffusion model's U-Net (batch 64, 32x32, random data; the data do not change the time).
Each setting is measured three times: the job alone, two copies at once, and the job
beside one that waits in libgomp's default way (a user's own PyTorch job). A thread that
waits at a barrier either spins (keeps its core busy, so when two jobs share the cores
each spins while the thread it waits for cannot run) or sleeps (gives the core away, but
pays a wake-up at every one of the step's many small parallel regions). The slowdown is
the shared step time over the alone one: 2.0 is a fair share of the cores.
Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from simfl.sharing import SPIN_COUNT, USER_SETTINGS, polite_environment


def job(steps: int, threads: int) -> float:
    """Median seconds per training step of the quick diffusion U-Net."""
    import statistics

    import torch  # first: OpenMP reads its settings when torch loads it

    from simfl.generative.train import training_config
    from simfl.generative.unet import UNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = training_config("diffusion", "quick", 1)
    model = UNet(cfg.unet, 10)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(cfg.batch_size, 1, cfg.resolution, cfg.resolution)
    t = torch.randint(0, cfg.n_timesteps, (cfg.batch_size,))
    y = torch.randint(0, 10, (cfg.batch_size,))
    times = []
    for step in range(steps + 2):
        started = time.perf_counter()
        loss = (model(x, t, y) - x).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step >= 2:  # the first steps allocate
            times.append(time.perf_counter() - started)
    return statistics.median(times)


# (label, OpenMP environment): libgomp's default spins about 300,000 times before it
# sleeps; ACTIVE spins on; PASSIVE sleeps at once; short spin counts sit between; simfl's
# own processes use simfl.sharing's (the job imports torch before anything else, so
# OpenMP reads exactly this environment)
SETTINGS = [("default", {}), ("ACTIVE", {"OMP_WAIT_POLICY": "ACTIVE"}), ("PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
            ("spin 1000", {"GOMP_SPINCOUNT": "1000"}), ("spin 10000", {"GOMP_SPINCOUNT": "10000"}),
            (f"simfl ({SPIN_COUNT})", polite_environment({}))]


def run_jobs(settings: list[dict[str, str]], steps: int, threads: int) -> list[float]:
    """Seconds per step of one job per setting, all started at once."""
    children = []
    for setting in settings:
        env = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
        env.update(setting)
        children.append(subprocess.Popen([sys.executable, __file__, "--job", "--steps", str(steps), "--threads",
                                          str(threads)], stdout=subprocess.PIPE, text=True, env=env))
    return [float(child.communicate()[0].strip().splitlines()[-1]) for child in children]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(job(args.steps, args.threads))
        return
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"{args.threads} threads per job")
    header = (f"{'wait policy':>14} {'alone ms/step':>14} {'two copies':>11} {'slowdown':>9} "
              f"{'beside default':>15} {'slowdown':>9} {'vs default alone':>17}")
    print(header)
    print("-" * len(header))
    baseline = None
    for label, setting in SETTINGS:
        alone = run_jobs([setting], args.steps, args.threads)[0]
        baseline = alone if baseline is None else baseline
        copies = run_jobs([setting, setting], args.steps, args.threads)
        shared = sum(copies) / len(copies)
        beside = run_jobs([setting, {}], args.steps, args.threads)[0]
        print(f"{label:>14} {1000 * alone:>14.0f} {1000 * shared:>11.0f} {shared / alone:>8.2f}x "
              f"{1000 * beside:>15.0f} {beside / alone:>8.2f}x {max(shared, beside) / baseline:>16.2f}x", flush=True)
    print("(slowdown: against the same setting alone; a fair share of 2 cores is 2.0x. 'beside default': this "
          "setting's job next to one with libgomp's default wait; 'vs default alone': the worse of the two shared "
          "times against the default alone, what a user sees)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
