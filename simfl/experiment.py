"""One experiment top to bottom: scenario -> data partition -> world -> plan ->
synthesis -> engine rounds with real training -> rounds.csv / events.csv.

Every policy of a comparison runs on the same world, partition and seed: `prepare` is
done once and shared.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

import numpy as np
import pandas as pd

from simfl import guard, numerics, runfolder
from simfl.dynamics.availability import AlwaysOn, online_interval_arrays
from simfl.engine import DeviceRecord, EngineState, RoundRecord, run
from simfl.errors import DataNotFound, SimflError
from simfl.learning.data import ImageDataset, load_dataset, public_private_split
from simfl.learning.models import build_model, model_bits
from simfl.learning.partition import LocalData, class_counts, local_data
from simfl.plan import Plan, check_plan, plan_costs
from simfl.policy import Policy, PlanContext
from simfl.progress import Heartbeat
from simfl.records import AVAILABILITY_FILE, SIMILARITY_FILE, CsvAppender, RunRecorder, read_rounds
from simfl.registry import check_policies
from simfl.runfolder import round_checkpoint, truncate_events
from simfl.scenario import Scenario
from simfl.streams import rng
from simfl.training_side import uplink_world
from simfl.world import World, build_world

if TYPE_CHECKING:  # torch-heavy modules, imported where they are used
    from simfl.generative.pool import LazySynthesis
    from simfl.generative.train import TrainedGenerator
    from simfl.learning.trainer import SyntheticData, TorchTrainer


@dataclass(frozen=True)
class Setup:
    """What every policy of a comparison shares."""

    scenario: Scenario
    dataset: ImageDataset
    device_indices: LocalData  # every device's D_loc, indices into the training split
    world: World
    public_idx: np.ndarray  # the server's public images, indices into the training split


def prepare(scenario: Scenario, progress: TextIO | None = None) -> Setup:
    """Load the data, split public/private, partition the private part over the devices
    with Dir(z) (with replacement across devices where N x samples_per_device exceeds
    it: simfl.learning.partition.local_data), and build the world with the real model's
    uplink size. A scenario whose policies or policy settings are wrong is refused first
    (simfl.registry.check_policies). Building a large world says so on `progress`."""

    scenario = check_policies(scenario)
    with Heartbeat(progress, f"building {scenario.name}: {scenario.n_devices:,} devices' data and links"):
        return _build(scenario)


def _build(scenario: Scenario) -> Setup:
    task = scenario.task
    numerics.precision(task.precision)  # a precision this numerics mode refuses fails before any work
    dataset = load_dataset(task.dataset, task.data_dir)
    partition_rng = rng(scenario.seed, "partition")
    private_idx, public_idx = public_private_split(dataset.train_labels, task.public_samples, partition_rng)
    if scenario.split_seed != scenario.seed:
        # The seed's own split was drawn all the same, so the partition below makes the same
        # random draws whatever the split seed (over another private pool).
        private_idx, public_idx = public_private_split(dataset.train_labels, task.public_samples,
                                                       rng(scenario.split_seed, "partition"))
    n_devices = scenario.n_devices
    if task.samples_per_device > len(private_idx):
        raise SimflError(
            f"{scenario.source}: task.samples_per_device: {task.samples_per_device} distinct samples per device "
            f"exceed the {len(private_idx)} private training samples of {task.dataset} (after "
            f"{task.public_samples} public ones); lower samples_per_device or public_samples")
    # without replacement while the private pool holds every device's samples, else with
    # replacement across devices (simfl.learning.partition.local_data)
    local = local_data(dataset.train_labels[private_idx], n_devices, task.samples_per_device, task.dirichlet_z,
                       partition_rng, scenario.seed)
    device_indices = local.remap(private_idx)
    counts = class_counts(device_indices, dataset.train_labels, dataset.n_classes)
    model = build_model(task.model, dataset.image_shape, dataset.n_classes, seed=scenario.seed)
    world = build_world(scenario, model_bits(model), counts, n_classes=dataset.n_classes)
    return Setup(scenario, dataset, device_indices, world, np.asarray(public_idx))


def plan_context(setup: Setup, solver: str | None = None) -> PlanContext:
    scenario = setup.scenario
    return PlanContext(scenario=scenario, rng=rng(scenario.seed, "policy"),
                       solver=solver or scenario.optimisation.solver, seed=scenario.seed)


def in_mode(setup: Setup, policy: Policy) -> Setup:
    """The setup with the scenario and the world in the policy's own aggregation mode
    (`tfl@fedbuff`), or unchanged when the policy runs the scenario's."""
    mode = policy.aggregation_mode
    k = setup.world.constants
    if mode is None or mode == k.aggregation.mode:
        return setup
    aggregation = replace(k.aggregation, mode=mode)
    world = replace(setup.world, constants=replace(k, aggregation=aggregation))
    return replace(setup, scenario=replace(setup.scenario, aggregation=aggregation), world=world)


def make_plan(setup: Setup, policy: Policy, solver: str | None = None, progress: TextIO | None = None) -> Plan:
    """The policy's plan, made on the world as planners see it (`World.for_planning`:
    the mean channel, or its outage quantile) and checked against the world's limits.
    The policy's code is called through simfl.guard, which names it when it fails. The
    world is in the policy's aggregation mode (`in_mode`) and its uplink payload is what
    the policy's devices send (`uplink_world`). A plan that takes long says so on
    `progress` while it is made."""
    setup = in_mode(setup, policy)
    guard.call(policy, "configure", setup.scenario)
    world = uplink_world(setup.world, policy)
    with Heartbeat(progress, f"[{policy.name}] planning for {world.n_devices:,} devices"):
        plan = guard.call(policy, "plan", world.for_planning(), plan_context(setup, solver), expect=Plan)
    guard.check_result(policy, "plan", check_plan, world, plan)
    return plan


def run_policy(setup: Setup, policy: Policy, out_dir: Path, *, resume: bool = False,
               solver: str | None = None, progress: TextIO | None = sys.stderr,
               plan: Plan | None = None, train_workers: int = 2) -> pd.DataFrame:
    """Plan, synthesise and train `policy` for the scenario's rounds, appending to
    `out_dir`/rounds.csv and events.csv as rounds finish. With `resume`, rounds already
    in rounds.csv are kept and training continues from the last saved global model.
    `train_workers`: processes that train clients side by side (results do not depend on
    it; a Ray worker, which has one core, uses 1)."""
    from simfl.learning.threads import intra_op_threads  # deferred: torch, only when a run trains
    from simfl.learning.trainer import training_device  # deferred: torch, only when a run trains

    # task.device: cuda is checked against this machine, the one that trains, before any work
    training_device(setup.scenario.task.device, setup.scenario.source)
    out_dir = Path(out_dir)
    # before anything is written: the folder is ours, of this scenario and seed, undamaged
    # (the scenario as given: a policy's own `@mode` is part of its name, not of the folder);
    # it changes (torn lines dropped, ...) only once the plan is known to be the run's too
    opening = runfolder.check_run(runfolder.inspect_folder(out_dir, setup.scenario), policy.name, resume=resume)
    setup = in_mode(setup, policy)
    guard.call(policy, "configure", setup.scenario)
    scenario, world = setup.scenario, uplink_world(setup.world, policy)
    plan = plan if plan is not None else make_plan(setup, policy, solver, progress)
    if resume:
        check_plan_unchanged(out_dir, policy.name, plan, opening.rounds)
    runfolder.commit(opening)
    del opening  # it holds events.csv, which may be large, and training reads the folder anew
    synthetic, server_set, downlink = _synthesise(setup, policy, plan, progress)
    _write_plan(out_dir, policy.name, world, plan, downlink)
    # everything below computes with the run's thread count (task.threads), whichever
    # process runs it: a result's low bits depend on it
    with intra_op_threads(scenario.task.threads):
        return _train(setup, world, policy, out_dir, plan, synthetic, server_set, downlink, resume=resume,
                      solver=solver, progress=progress, train_workers=train_workers)


def _train(setup: Setup, world: World, policy: Policy, out_dir: Path, plan: Plan, synthetic: list | LazySynthesis,
           server_set: SyntheticData, downlink: np.ndarray, *, resume: bool, solver: str | None,
           progress: TextIO | None, train_workers: int) -> pd.DataFrame:
    """The rounds of `run_policy`, on `world` (the policy's uplink world)."""
    import torch  # deferred: only when a run trains

    from simfl.generative.pool import LazySynthesis  # deferred: torch, only when a run synthesises
    from simfl.learning.trainer import TorchTrainer  # deferred: torch, only when a run trains

    scenario = setup.scenario
    hooks = cast(Policy, guard.GuardedHooks(policy))  # the policy's round hooks, called through the guard
    trainer = TorchTrainer(
        task=scenario.task,
        dataset=setup.dataset,
        device_indices=setup.device_indices,
        synthetic=synthetic,
        server_synthetic=server_set,
        seed=scenario.seed,
        threads=scenario.task.threads,
        workers=train_workers,
        training_set=hooks.training_set,
        local_rule=hooks.local_rule,
    )

    state = EngineState()
    done = _finished_rounds(read_rounds(out_dir), policy.name)
    checkpoint = None if done is None else round_checkpoint(out_dir, policy.name, int(done.iloc[-1]["round"]))
    if resume and done is not None and checkpoint is not None and checkpoint.exists():
        saved = runfolder.load_checkpoint(checkpoint)
        if isinstance(synthetic, LazySynthesis):
            # the devices' pool positions as the interrupted run handed them out (a folder
            # from before positions were handed out on first use: device order)
            synthetic.assign(saved.get(SYNTHESIS_KEY, range(len(synthetic))))
        if ENGINE_KEY in saved:
            trainer.load_global_state(saved[MODEL_KEY])
            hooks.load_tensor_state(saved.get(POLICY_KEY, {}))
            arrays = {key: tensor.numpy() for key, tensor in saved.get(ARRAYS_KEY, {}).items()}
            state = EngineState.from_json(saved[ENGINE_KEY], saved.get(BASES_KEY), arrays)
        else:  # a folder written before snapshots existed: its runs had no dynamics to restore
            trainer.load_global_state(saved)
            last = done.iloc[-1]
            state = EngineState(next_round=int(last["round"]) + 1, time_s=float(last["end_s"]),
                                cum_energy_j=float(last["cum_energy_j"]),
                                cum_uplink_bits=float(last["cum_uplink_bits"]), version=int(last["round"]) + 1)
        truncate_events(out_dir, policy.name, state.next_round)
        if progress:
            print(f"[{policy.name}] resuming after round {state.next_round - 1}", file=progress)
    elif done is not None:
        raise SimflError(f"{out_dir}: already holds rounds of policy {policy.name!r}; "
                         "use --resume to continue them or choose another --out")

    if state.next_round == 0:
        _record_similarity(setup, policy.name, trainer, plan, out_dir)
    recorder = RunRecorder(out_dir, policy.name)
    rounds = scenario.task.rounds
    show = _Progress(progress, policy.name, rounds, world.constants.max_time_s, state) if progress else None

    def on_round(record: RoundRecord, devices: list[DeviceRecord], snapshot: EngineState) -> None:
        # The checkpoint (model and snapshot) first, then the row: a round in rounds.csv
        # always has it on disk, and the previous one is dropped only once the new row is written.
        arrays: dict[str, np.ndarray] = {}
        saved = {MODEL_KEY: trainer.global_state(), ENGINE_KEY: snapshot.to_json(arrays),
                 BASES_KEY: dict(snapshot.models), POLICY_KEY: hooks.tensor_state(),
                 ARRAYS_KEY: {key: torch.from_numpy(array.copy()) for key, array in arrays.items()}}
        if isinstance(synthetic, LazySynthesis):
            saved[SYNTHESIS_KEY] = list(synthetic.order)
        runfolder.save_checkpoint(saved, round_checkpoint(out_dir, policy.name, record.round))  # atomic, with its sum
        recorder.record_metrics(record.round, hooks.round_metrics())
        recorder(record, devices)
        round_checkpoint(out_dir, policy.name, record.round - 1).unlink(missing_ok=True)
        if show is not None:
            show(record)

    try:
        final = run(world, plan, trainer, rounds, scenario.seed, state=state, on_round=on_round,
                    policy=hooks, context=plan_context(setup, solver),
                    synthetic_bits=8.0 * downlink)
    finally:
        trainer.close()  # its worker processes
    if isinstance(synthetic, LazySynthesis) and progress:
        stats = synthetic.service.stats
        print(f"[{policy.name}] synthetic images made on demand: {synthetic.devices_served} of "
              f"{int(np.count_nonzero(synthetic.counts()))} devices' sets ({stats.served_images} images; "
              f"{stats.generated_images} newly generated in {stats.generation_s:.0f} s)", file=progress)
    if final.next_round < rounds and final.time_s >= world.constants.max_time_s:
        if progress:
            print(f"[{policy.name}] the simulated-time budget task.max_time_s = {world.constants.max_time_s:g} s is "
                  f"spent after {final.next_round} rounds", file=progress)
    elif final.next_round < rounds:
        runfolder.mark_ended(out_dir, policy.name, final.next_round)
        if progress:
            print(f"[{policy.name}] the run ended after {final.next_round} of {rounds} rounds: no device can take "
                  "part any more (every one is offline for good or out of battery)", file=progress)
    frame = read_rounds(out_dir)
    _write_availability(setup, out_dir, float(frame["end_s"].max()) if not frame.empty else 0.0)
    return frame


def _write_availability(setup: Setup, out_dir: Path, until_s: float) -> None:
    """availability.csv: every device's online intervals up to the latest round end of the
    folder's runs (the same world for every policy), in the trace format."""

    specs = setup.world.availability
    if all(isinstance(spec, AlwaysOn) for spec in specs):
        return
    device, start_s, end_s = online_interval_arrays(specs, setup.scenario.seed, until_s)
    pd.DataFrame({"device": device, "start_s": start_s, "end_s": end_s}).to_csv(out_dir / AVAILABILITY_FILE, index=False)


SIMILARITY_PER_CLASS = 100  # images per class of the virtual IID device of Fig. 5(h)
# Fig. 5(h)'s boxes need a sample of the devices, not all of a city's 10,000 (one
# gradient each); worlds up to this size record every device
SIMILARITY_MAX_DEVICES = 500


def _record_similarity(setup: Setup, policy: str, trainer: TorchTrainer, plan: Plan, out_dir: Path) -> None:
    """Fig. 5(h): eq. (52) between each device's gradient on what it trains on and a
    virtual IID device's (class-uniform public images), both at the initial global
    model, which every policy of a comparison shares: the differences come from the
    data alone. Appended to similarity.csv (replacing an earlier run's rows)."""
    from simfl.learning.similarity import class_uniform_indices, trainer_similarities  # deferred: torch, only when a run trains

    labels = setup.dataset.train_labels[setup.public_idx]
    per_class = min(SIMILARITY_PER_CLASS, int(np.bincount(labels, minlength=setup.world.n_classes).min()))
    if per_class == 0:
        return  # a class without public images: no IID reference
    iid = setup.public_idx[class_uniform_indices(labels, per_class, rng(setup.scenario.seed, "similarity"))]
    n = setup.world.n_devices
    devices = (np.arange(n) if n <= SIMILARITY_MAX_DEVICES else
               np.sort(rng(setup.scenario.seed, "similarity_devices").choice(n, SIMILARITY_MAX_DEVICES, replace=False)))
    values = trainer_similarities(trainer, iid, devices=devices.tolist())
    path = out_dir / SIMILARITY_FILE
    if path.exists():
        kept = pd.read_csv(path)
        kept[kept["policy"] != policy].to_csv(path, index=False)
    CsvAppender(path).append({"policy": policy, "device": int(i), "d_loc": int(setup.world.d_loc[i]),
                              "d_gen": int(plan.d_gen[i]), "similarity": float(v)} for i, v in zip(devices, values))


# A round's checkpoint holds the global model, the engine's snapshot (EngineState as JSON)
# and, in the asynchronous modes, the older global models that jobs in flight and
# buffered updates started from (by version), together under one checksum.
MODEL_KEY, ENGINE_KEY, BASES_KEY = "simfl_global_model", "simfl_engine_state", "simfl_base_models"
# ... and the snapshot's per-device arrays, as tensors (bit for bit; the JSON names them)
ARRAYS_KEY = "simfl_engine_arrays"
# ... and the policy's tensors (Policy.tensor_state: server momentum, Adam moments,
# control variates), saved with torch.save like the model so they resume bit for bit.
POLICY_KEY = "simfl_policy_tensors"
# ... and, when devices' synthetic images are made on first use, the order their pool
# positions were handed out in (`LazySynthesis.order`), so a resumed run gives every
# device the images the uninterrupted run gives it.
SYNTHESIS_KEY = "simfl_synthesis_order"


def _finished_rounds(rounds: pd.DataFrame, policy: str) -> pd.DataFrame | None:
    """`policy`'s rows of `rounds` (a folder's rounds.csv) by round, None when it has none."""
    if rounds.empty:
        return None
    mine = rounds[rounds["policy"] == policy]
    return None if mine.empty else mine.sort_values("round")


def _synthesise(setup: Setup, policy: Policy, plan: Plan, progress: TextIO | None, *, eager: bool = False
                ) -> tuple[list | LazySynthesis, SyntheticData, np.ndarray]:
    """Images for each device's request and the server's own set (step S2), and the
    downlink bytes each device receives (the server's own set never leaves it).

    When not every device trains in the first round (participants_per_round below the
    devices, or asynchronous aggregation), the devices' images are a lazy source, made when
    a device is first used, in that order (`LazySynthesis`); `eager` fills the pools now
    with every image the request could use (a Ray driver, before its fan-out, so that its
    tasks only read them). The downlink is accounted as in the paper either way: every
    device receives its request."""
    shape = setup.dataset.image_shape
    empty = (np.zeros((0, *shape), np.uint8), np.zeros(0, np.int64))
    wants_devices = int(plan.d_gen.sum()) > 0
    server_counts = np.zeros(0, np.int64) if plan.server_synthetic_per_class is None else plan.server_synthetic_per_class
    wants_server = int(server_counts.sum()) > 0
    no_downlink = np.zeros(setup.world.n_devices, dtype=np.int64)
    if not (wants_devices or wants_server):
        return [empty] * setup.world.n_devices, None, no_downlink
    from simfl.generative.pool import SynthesisService  # deferred: torch, only when a run synthesises

    if plan.generator is None:
        raise SimflError(f"policy {policy.name!r} asks for synthetic data but names no generator")
    generator = ensure_generator(plan.generator, setup.scenario, progress)
    service = SynthesisService(generator)
    lazy = wants_devices and not eager and not _everyone_trains_first(setup)
    if progress:
        print(f"[{policy.name}] synthesising {int(plan.d_gen.sum())} device samples"
              + (" (each device's when the run first uses it)" if lazy else "")
              + (f" and {int(np.sum(server_counts))} server samples" if wants_server else "")
              + f" with the {plan.generator} model", file=progress)
    synthetic: list | LazySynthesis = [empty] * setup.world.n_devices
    if wants_devices:
        synthetic = service.lazy(plan.d_gen_per_class) if lazy else service.synthesize(plan.d_gen_per_class)
    server_set = service.server_set(np.asarray(server_counts, dtype=np.int64)) if wants_server else None
    downlink = service.downlink_bytes(plan.d_gen_per_class) if wants_devices else no_downlink
    return synthetic, server_set, downlink


def prefill_synthesis(setup: Setup, policy: Policy, plan: Plan, progress: TextIO | None = sys.stderr) -> None:
    """Generate into the on-disk pools the images a run of `policy` with `plan` will ask
    for (training the generator first if needed), so that runs started in other processes
    (Ray tasks) only read the cache: no two of them generate into one pool, and the images
    are those this process, and so a sequential run, would make."""
    _synthesise(in_mode(setup, policy), policy, plan, progress, eager=True)


def _everyone_trains_first(setup: Setup) -> bool:
    """Whether every device trains in the first round, so that all their synthetic images
    are needed at once: synchronous rounds without a participants_per_round below the
    devices."""
    k = setup.scenario.task.participants_per_round
    return setup.scenario.aggregation.mode == "sync" and (k is None or k >= setup.world.n_devices)


def ensure_generator(kind: str, scenario: Scenario, progress: TextIO | None = sys.stderr) -> TrainedGenerator:
    """The scenario's trained generator; trained first (on the public split, cached,
    resumable) when this is its first use."""
    from simfl.generative.train import load_generator, scenario_checkpoint, train_generator  # deferred: torch, only when a run needs a generator

    try:
        return load_generator(kind, scenario)
    except DataNotFound:
        if progress:
            print(f"the {kind} generator is not trained yet: training it now (once; cached at "
                  f"{scenario_checkpoint(kind, scenario)})", file=progress, flush=True)
        train_generator(kind, scenario, progress=(lambda line: print(line, file=progress, flush=True)) if progress else None)
        return load_generator(kind, scenario)


def check_plan_unchanged(out_dir: Path, policy: str, plan: Plan, rounds: pd.DataFrame) -> None:
    """A resumed run goes on with the plan its rounds were played with, or not at all. A
    setting the folder's fingerprint leaves free can change a plan: FIMI's learning-curve
    target (12a) is for task.rounds rounds, so its plan for 5 rounds is not its plan for
    2, and a run extended from 2 to 5 rounds would mix the two. `rounds`: the folder's
    rounds.csv as opening it found it (a torn last line left out)."""
    path = out_dir / "plans" / f"{policy}.csv"
    if not path.exists() or _finished_rounds(rounds, policy) is None:
        return
    # read as text and parsed by Python's float, which rounds exactly: the plan was written
    # with the shortest repr, so an unchanged plan compares equal bit for bit
    saved = pd.read_csv(path, dtype=str, keep_default_na=False)
    same = len(saved) == len(plan.f_hz) and all(
        np.array_equal(np.array([float(v) for v in saved[name]]), getattr(plan, name), equal_nan=True)
        for name in ("f_hz", "b_hz", "p_w"))
    if same:
        same = np.array_equal(np.array([json.loads(row) for row in saved["d_gen_per_class"]]).reshape(
            plan.d_gen_per_class.shape), plan.d_gen_per_class)
    if same:
        return
    raise SimflError(f"{out_dir}: policy {policy!r} plans differently now than when its rounds were played "
                     f"({path} holds that plan): a setting the folder's fingerprint leaves free changed since "
                     "(task.rounds: FIMI's learning-curve target (12a) is for task.rounds rounds; or --solver), or "
                     "the policy's code did. Resuming would play the rest of the run on another plan; "
                     "resume with the settings the run started with, or choose another --out for a new run")


def _write_plan(out_dir: Path, policy: str, world: World, plan: Plan, downlink_bytes: np.ndarray) -> None:
    costs = plan_costs(world, plan)
    frame = pd.DataFrame({
        "policy": policy,
        "device": np.arange(world.n_devices),
        "cell": world.cell_of,
        "distance_m": world.distance_m,
        "gain": world.gain,
        "eps": world.eps,
        "d_loc": world.d_loc,
        "d_gen": plan.d_gen,
        "f_hz": plan.f_hz,
        "b_hz": plan.b_hz,
        "p_w": plan.p_w,
        "t_cmp_s": costs.t_cmp_s,
        "t_com_s": costs.t_com_s,
        "energy_j": costs.energy_j,
        "downlink_bytes": downlink_bytes,
        # str of a list of ints is its JSON ("[0, 3, 1]"), three times faster than json.dumps per row
        "d_gen_per_class": list(map(str, np.asarray(plan.d_gen_per_class, dtype=np.int64).tolist())),
    })
    plans = out_dir / "plans"
    plans.mkdir(exist_ok=True)
    frame.to_csv(plans / f"{policy}.csv", index=False)
    if plan.info:
        (plans / f"{policy}.json").write_text(json.dumps(plan.info, default=jsonable, indent=1))


def jsonable(value: object) -> object:
    """json.dumps' `default`: numpy arrays and scalars as plain lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


class _Progress:
    """One line per round on `stream`: simulated time, energy, accuracy and the wall time
    left, estimated from the share of the run done (by rounds, or by the simulated-time
    budget when that ends it first). Rows without an accuracy (asynchronous modes between
    evaluations) are printed only every PROGRESS_QUIET_S of wall time."""

    def __init__(self, stream: TextIO, name: str, rounds: int, max_time_s: float, state: EngineState) -> None:
        self.stream, self.name, self.rounds, self.max_time_s = stream, name, rounds, max_time_s
        self.started = self.last = time.monotonic()
        self.done_at_start = self._done(state.next_round, state.time_s)

    def _done(self, rows: int, time_s: float) -> float:
        by_time = time_s / self.max_time_s if math.isfinite(self.max_time_s) else 0.0
        return min(max(rows / self.rounds, by_time), 1.0)

    def __call__(self, record: RoundRecord) -> None:
        now = time.monotonic()
        if math.isnan(record.accuracy) and now - self.last < PROGRESS_QUIET_S:
            return
        self.last = now
        wall_s = now - self.started
        done = self._done(record.round + 1, record.end_s)
        eta = wall_s / (done - self.done_at_start) * (1.0 - done) if done > self.done_at_start else 0.0
        late = f"  stragglers {record.stragglers}" if record.stragglers else ""
        accuracy = "   -  " if math.isnan(record.accuracy) else f"{record.accuracy:.4f}"
        print(f"[{self.name}] round {record.round + 1}/{self.rounds}  sim {record.end_s / 60:7.2f} min  "
              f"energy {record.cum_energy_j:9.1f} J  acc {accuracy}{late}  "
              f"(wall {wall_s:5.0f} s, ~{eta:4.0f} s left)", file=self.stream, flush=True)


PROGRESS_QUIET_S = 10.0

