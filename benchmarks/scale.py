"""How simfl's cost grows with the world: scenarios/city.yaml at 10, 100, 1,000 and 10,000
devices (70% mid-range, 30% older phones; K = min(N, --participants) per round, 100 by default).

    python benchmarks/scale.py [--sizes 10 100 1000 10000] [--rounds 5] [--channels block clarke interference]
                               [--participants 100] [--plans fimi tfl fimi-online]
                               [--plan-for all|expected_transmitters|scenario] [--scenario scenarios/city.yaml]

`--scenario scenarios/metro.yaml --plan-for scenario` scales the metro instead (its Markov
availability and batteries, its own plan_for) with the same 70/30 split of its two groups.

Columns, each size measured in a fresh process (so its peak memory is its own):
- build s: `prepare` (data set, partition, world);
- plan s: each plan of --plans with the exact solver (fimi-online's static plan is FIMI's);
- dynamics s: the network's state built for a run's start (each device's first availability
  period, mobility, fading, battery), which a run pays once;
- engine s/round: rounds played by the SimPy engine with a trainer that trains nothing
  (every device's computation, uplink, energy and records, no PyTorch), through the round
  hooks of the first policy of --plans (fimi-online re-solves the round's resources);
- trainer setup s and train s/round: the PyTorch trainer built over every device, then
  one round of K participants (local SGD, FedAvg, evaluation on task.eval_samples);
- peak MiB: the process's peak resident memory (the trainer's worker processes excluded);
- idle B/device: what a device that is in no job costs, the world's arrays and the
  network's state (availability, mobility, serving cell, fading, battery) over N, as
  tracemalloc counts them (numpy reports its buffers to it).
Then the fitted growth exponent of each column (slope of log cost on log N over the sizes).
`--channels block clarke` measures each size twice: the city as shipped (block fading,
static phones) and with Clarke fading on every cell and every phone walking at 1.5 m/s
(random waypoint, 60 s pauses, anywhere in the city), whose uploads are re-rated every
channel step (a tenth of the coherence time at 1.5 m/s on 2 GHz, 4.2 ms) and hand over
as the phones cross cell borders. `--channels interference` is the city as shipped with
co-channel interference between the uploads of its 7 cells (reuse 1): every start and end
of an upload re-rates the uploads of other cells that overlap it in frequency.
Other jobs on the machine slow every number; run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "scenarios" / "city.yaml"
PLANS = ("fimi", "tfl", "fimi-online")
COLUMNS = [("build_s", "build s"), ("dynamics_s", "dynamics s"), ("plan_fimi_s", "plan fimi s"), ("plan_tfl_s", "plan tfl s"),
           ("plan_fimi-online_s", "plan f-online s"),
           ("engine_s_per_round", "engine s/round"), ("trainer_setup_s", "trainer setup s"),
           ("train_s_per_round", "train s/round"), ("peak_mib", "peak MiB"), ("idle_bytes", "idle B/device")]


class NoTraining:
    """A trainer that trains nothing: the engine's own cost, alone."""

    def __init__(self) -> None:
        self.params: object = 0

    def train(self, jobs):  # type: ignore[no-untyped-def]
        from simfl.learning.protocol import LocalUpdate

        return [LocalUpdate(client=j.client, base_version=j.base_version, samples=1, params=None) for j in jobs]

    def local_updates(self, round_index, devices, version=0):  # type: ignore[no-untyped-def]
        from simfl.learning.protocol import TrainJob

        return self.train([TrainJob(client=int(i), key=round_index, base_version=version) for i in devices])

    def fedavg(self, updates, weights=None):  # type: ignore[no-untyped-def]
        return len(updates)

    def global_params(self):  # type: ignore[no-untyped-def]
        return self.params

    def set_global(self, params):  # type: ignore[no-untyped-def]
        self.params = params

    def evaluate(self):  # type: ignore[no-untyped-def]
        from simfl.learning.protocol import RoundMetrics

        return RoundMetrics(accuracy=0.0, loss=0.0)


CHANNELS = {
    "block": [],
    "clarke": ["cells.hex_grid.path_loss.fading={clarke: {min_doppler_hz: 0}}",
               *(f"devices.{g}.mobility={{random_waypoint: {{speed_mps: 1.5, pause_s: 60, region: all}}}}"
                 for g in (0, 1))],
    "interference": ["network.interference=co_channel"],
}


def city(n: int, channel: str = "block", participants: int = 100, plan_for: str | None = "all",
         scenario: Path = CITY):  # type: ignore[no-untyped-def]
    """The scenario (the city by default) with N devices, 70% in its first group and 30% in
    its second, K = min(N, participants) per round, and `plan_for` (None: the scenario's)."""
    from simfl.scenario import load_scenario

    mid = max(1, round(0.7 * n))
    plan = [] if plan_for is None else [f"optimisation.plan_for={plan_for}"]
    return load_scenario(scenario, overrides=[f"devices.0.count={mid}", f"devices.1.count={n - mid}",
                                              f"task.participants_per_round={min(n, participants)}",
                                              *plan, *CHANNELS[channel]])


def measure(n: int, rounds: int, channel: str = "block", engine_only: bool = False, participants: int = 100,
            plans: tuple[str, ...] = ("fimi", "tfl"), plan_for: str | None = "all",
            scenario_path: Path = CITY) -> dict[str, float]:
    """Every column for one size, in this process (NaN for the trainer's with `engine_only`)."""
    from simfl.engine import run
    from simfl.experiment import make_plan, plan_context, prepare
    from simfl.learning.trainer import TorchTrainer
    from simfl.network import Network
    from simfl.registry import create

    scenario = city(n, channel, participants, plan_for, scenario_path)
    row: dict[str, float] = {"devices": n}
    started = time.perf_counter()
    setup = prepare(scenario)
    row["build_s"] = time.perf_counter() - started
    row["idle_bytes"] = idle_bytes_per_device(scenario, setup.world)
    made = {}
    for name in PLANS:
        row[f"plan_{name}_s"] = float("nan")  # a plan not asked for (--plans)
    for name in plans or ("equal-share",):
        started = time.perf_counter()
        made[name] = make_plan(setup, create(name), "exact")
        if name in PLANS:
            row[f"plan_{name}_s"] = time.perf_counter() - started
    played = (plans or ("equal-share",))[0]
    # what a run pays once before its first round: every device's availability, mobility,
    # fading and battery state (a million phones' first Markov periods), timed on its own
    # and left out of the rounds' cost
    started = time.perf_counter()
    Network(setup.world, scenario.seed)
    row["dynamics_s"] = time.perf_counter() - started
    started = time.perf_counter()
    # the engine plays the first plan through its policy's own round hooks (fimi-online re-solves each round)
    run(setup.world, made[played], NoTraining(), rounds, scenario.seed,  # type: ignore[arg-type]
        context=plan_context(setup, "exact"), policy=create(played))
    row["engine_s_per_round"] = (time.perf_counter() - started - row["dynamics_s"]) / rounds
    if engine_only:
        row.update(trainer_setup_s=float("nan"), train_s_per_round=float("nan"),
                   peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return row
    started = time.perf_counter()
    trainer = TorchTrainer(scenario.task, setup.dataset, setup.device_indices, seed=scenario.seed,
                           threads=scenario.task.threads)
    row["trainer_setup_s"] = time.perf_counter() - started
    participants = np.sort(np.random.default_rng(0).choice(n, min(n, 100), replace=False))
    trainer.train_round(0, participants)  # the first round forks the worker processes
    started = time.perf_counter()
    trainer.train_round(1, participants)
    row["train_s_per_round"] = time.perf_counter() - started
    trainer.close()
    row["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def idle_bytes_per_device(scenario, world) -> float:  # type: ignore[no-untyped-def]
    """Bytes per device of a world and its network state built afresh (the local data's
    class counts, made by the partition, included)."""
    import tracemalloc

    from simfl.network import Network
    from simfl.world import build_world

    tracemalloc.start()
    try:
        again = build_world(scenario, world.constants.model_bits, world.d_loc_per_class.copy())
        network = Network(again, scenario.seed)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del again, network
    return held / world.n_devices


def growth(sizes: np.ndarray, values: np.ndarray) -> float:
    """Slope of log(value) on log(N): cost ~ N^slope."""
    return float(np.polyfit(np.log(sizes), np.log(np.maximum(values, 1e-9)), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--rounds", type=int, default=5, help="engine rounds per size")
    parser.add_argument("--channels", nargs="+", choices=sorted(CHANNELS), default=["block"],
                        help="block: the city as shipped; clarke: Clarke fading, every phone walking (engine columns only)")
    parser.add_argument("--participants", type=int, default=100, help="K, devices per round (at most N)")
    parser.add_argument("--scenario", type=Path, default=CITY, help="the scenario scaled (default: the city)")
    parser.add_argument("--plans", nargs="*", choices=list(PLANS), default=["fimi", "tfl"],
                        help="plans to time; the engine plays the first (none: an equal-share plan)")
    parser.add_argument("--plan-for", choices=["all", "expected_transmitters", "scenario"], default="all",
                        help="optimisation.plan_for: whom a static plan shares each cell's band among "
                             "(scenario: as the scenario says)")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a child's size
    parser.add_argument("--channel", default="block", help=argparse.SUPPRESS)  # a child's channel
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.rounds, args.channel, engine_only=args.channel != "block",
                                 participants=args.participants, plans=tuple(args.plans),
                                 plan_for=None if args.plan_for == "scenario" else args.plan_for,
                                 scenario_path=args.scenario)))
        return
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs",
          flush=True)
    for channel in args.channels:
        table(channel, args.sizes, args.rounds, ["--participants", str(args.participants), "--plan-for", args.plan_for,
                                                 "--scenario", str(args.scenario), "--plans", *args.plans])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def table(channel: str, sizes: list[int], rounds: int, options: list[str]) -> None:
    """Measure every size on one channel, each in a fresh process, and print its table."""
    rows = []
    for n in sizes:
        child = subprocess.run([sys.executable, __file__, "--one", str(n), "--rounds", str(rounds),
                                "--channel", channel, *options], capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"size {n} ({channel}) failed:\n{child.stderr}")
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"measured {n} devices ({channel})", file=sys.stderr, flush=True)
    print(f"\nchannel: {channel}")
    header = f"{'devices':>8} " + " ".join(f"{title:>15}" for _, title in COLUMNS)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{int(row['devices']):>8} " + " ".join(f"{row[key]:>15.3f}" for key, _ in COLUMNS))
    if len(rows) > 1 and channel == "block":
        sizes = np.array([r["devices"] for r in rows], float)
        print(f"{'growth':>8} " + " ".join(f"{'N^' + format(growth(sizes, np.array([r[k] for r in rows])), '.2f'):>15}"
                                          for k, _ in COLUMNS))


if __name__ == "__main__":
    main()
