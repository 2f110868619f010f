"""`--workers N` / `--ray-address ADDR`: the independent runs of a comparison or a sweep,
one Ray task per (seed, policy) or per swept value.

What stays in this process (the driver): every check a sequential run makes before it
trains (the folders' locks and manifests, the policies' names and plans), training the
generators and filling the synthetic-image pools (so the workers only read the cache, and
the images are the ones a sequential run would generate), the reports. What a task does:
`run_policy` of one policy on one scenario, into a folder of its own, with one core (the
trainer's client processes are off: a task is one process; `task.threads` as always).

A comparison folder holds several policies, so a task writes into `<folder>/.parts/<policy>`
and the driver adopts the finished run into the folder in the policies' order
(`runfolder.adopt_run`): rounds.csv, events.csv and summary.csv come out byte-identical to
the sequential command's. A sweep's values have a folder each, and a task writes there
directly. A run whose worker process dies under it (SIGKILL, out of memory, its node
lost) is run again, from the last round checkpoint in its folder, up to `ATTEMPTS` times
in all. A run that fails is named with its error while the others finish; `--resume`
continues the unfinished runs (a staged one from its own checkpoint). A policy that a
sequential command left half-run in the folder is continued here, in this process, after
the others, since its rows are already in the shared files.

On a cluster, `--out`, the data and the generator cache must be on a file system every
node sees (the tasks write there); scenario and policy files are read by the driver.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence, TextIO, cast

from simfl import numerics, runfolder
from simfl.compare import check_unique, write_report
from simfl.errors import SimflError
from simfl.experiment import check_plan_unchanged, make_plan, prefill_synthesis, prepare, run_policy
from simfl.records import run_finished
from simfl.registry import check_policies, create
from simfl.scenario import Scenario
from simfl.sharing import wait_settings
from simfl.sweep import check_distinct, open_value_folder, write_sweep_report

STAGE_DIR = ".parts"
INSTALL_HINT = "pip install 'simfl[ray]'"
# Ray's errors for a task whose process died under it (SIGKILL, the kernel's or Ray's OOM
# killer, a node lost), not for an error the run raised: only these are retried, since the
# run did nothing wrong and its folder holds its rounds up to its last checkpoint
LOST_WORKER = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
ATTEMPTS = 3


def require_ray() -> ModuleType:
    """The `ray` module, or a SimflError saying how to install it."""
    try:
        import ray  # deferred: Ray is optional (simfl[ray]); require_ray says how to install it
    except ImportError:
        raise SimflError(f"--workers and --ray-address run the comparison on Ray, which is not installed here; "
                         f"install it with `{INSTALL_HINT}` (or `pip install ray`), or run without them") from None
    return ray


@dataclass
class Cluster:
    """Where tasks run: a local Ray with `workers` CPUs, or the cluster at `address`."""

    workers: int | None = None
    address: str | None = None
    attempts: int = ATTEMPTS  # in all, per run, when its worker is lost (LOST_WORKER)
    _ray: Any = field(default=None, repr=False)

    def __enter__(self) -> "Cluster":
        ray = require_ray()
        # one core per task: a run trains with task.threads (1 by default) in one process, and
        # nothing else in it may start a thread pool per core of the machine; portable
        # numerics pin the libraries (and their thread count) in the tasks as in the driver
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **wait_settings(), **numerics.child_environment()}
        options: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": True,
                                   "configure_logging": False}
        # Ray starts its workers at nice 15, where any other busy process on the machine
        # starves them (importing torch took 59 s instead of 4 beside one training job):
        # a comparison's runs are the user's main work, so they run at the driver's priority
        os.environ.setdefault("RAY_worker_niceness", "0")
        try:
            if self.address:
                ray.init(address=self.address, **options)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, **options)
        except ConnectionError as exc:
            raise SimflError(f"--ray-address {self.address}: no Ray cluster answers there ({exc}); start one with "
                             "`ray start --head` or check the address") from None
        self._ray = ray
        return self

    def __exit__(self, *exc: object) -> None:
        self._ray.shutdown()

    def run(self, units: Sequence["Unit"], on_done: Any, progress: TextIO | None) -> list[tuple["Unit", str]]:
        """Run every unit as a task; call `on_done(unit)` as each finishes (in completion
        order); return the (unit, error) of those that failed, after all have ended.

        A task whose worker process dies under it (killed, out of memory, its node lost)
        is run again, continuing from the last round checkpoint in its folder, up to
        `attempts` times in all; an error the run itself raises is not retried (it would
        raise it again)."""
        ray = self._ray
        # max_retries=0: Ray's own retry would start the run again with the arguments of
        # the first attempt; here a retry is told to resume, and is bounded and reported
        remote = ray.remote(num_cpus=1, max_retries=0)(run_unit)
        # (an older Ray may lack one of them: it cannot raise it either)
        lost = tuple(getattr(ray.exceptions, name) for name in LOST_WORKER if hasattr(ray.exceptions, name))
        shared = _share_scenarios(ray, units)
        pending: dict[Any, tuple[Unit, int]] = {}

        def submit(unit: Unit, attempt: int) -> None:
            scenarios, index = shared[id(unit.scenario)]
            pending[remote.remote(scenarios, index, unit.policy, str(unit.folder), unit.resume, unit.solver,
                                  unit.label, os.getcwd(), list(sys.path))] = (unit, attempt)

        for unit in units:
            submit(unit, 1)
        failures: list[tuple[Unit, str]] = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            unit, attempt = pending.pop(ready[0])
            try:
                ray.get(ready[0])
            except lost as exc:
                where = _resume_point(unit.folder)
                if attempt < self.attempts:
                    if progress:
                        print(f"[{unit.label}] its worker was lost ({_one_line(exc)}); the run resumes {where} "
                              f"(attempt {attempt + 1} of {self.attempts})", file=progress, flush=True)
                    submit(replace(unit, resume=True), attempt + 1)
                    continue
                why = (f"its worker was lost {attempt} times (the last time: {_one_line(exc).rstrip('.')}); "
                       f"its finished rounds are kept, and --resume continues it {where}")
                failures.append((unit, why))
                if progress:
                    print(f"[{unit.label}] failed: {why}", file=progress, flush=True)
                continue
            except Exception as exc:  # a task's error, whatever it was: the others go on
                cause = getattr(exc, "cause", None) or exc
                failures.append((unit, _one_line(cause)))
                if progress:
                    print(f"[{unit.label}] failed: {_one_line(cause)}", file=progress, flush=True)
                continue
            on_done(unit)
        return failures


def _share_scenarios(ray: Any, units: Sequence["Unit"]) -> dict[int, tuple[Any, int]]:
    """id(scenario) -> (object ref, index): each unit's scenario put into Ray's object
    store once for all the tasks that run it, rather than pickled into each task's
    arguments. A scenario is small unless it holds per-device data: with an availability
    trace it pickles to about 200 bytes a device (2 MB for 10,000 devices, 10 periods
    each), which each task would otherwise store again. The scenarios that share their
    device groups (a comparison's seeds) go into one object, so pickling stores the
    groups once; a task unpickles the few scenarios of its object and runs one."""
    groups: dict[int, list[Scenario]] = {}
    for unit in units:
        group = groups.setdefault(id(unit.scenario.devices), [])
        if not any(s is unit.scenario for s in group):
            group.append(unit.scenario)
    where = {}
    for group in groups.values():
        ref = ray.put(tuple(group))
        where.update({id(s): (ref, index) for index, s in enumerate(group)})
    return where


def _resume_point(folder: Path) -> str:
    """Where a run continues in `folder` (its own: one policy's rows), as words: after
    its last round in rounds.csv, whose checkpoint is on disk (it is saved before the
    row), or from the start."""
    try:
        rounds = runfolder.read_csv(Path(folder) / runfolder.ROUNDS_FILE, torn_ok=True)
    except SimflError:
        return "from where its folder allows"  # damaged: the retry's own checks name the problem
    if rounds.empty:
        return "from its first round (none had finished)"
    return f"after round {int(rounds['round'].max())}"


@dataclass(frozen=True)
class Unit:
    """One run: `policy` (a name as given to --policies) on `scenario` into `folder`."""

    scenario: Scenario
    policy: str
    folder: Path
    resume: bool
    solver: str | None
    label: str


def run_unit(scenarios: tuple[Scenario, ...], index: int, policy: str, folder: str, resume: bool,
             solver: str | None, label: str, cwd: str, path: list[str]) -> None:
    """A Ray task: `run_policy` of `scenarios[index]` into `folder`, its progress lines
    prefixed by `label`."""
    os.chdir(cwd)  # relative paths in the scenario (data_dir, a policy file) mean what they meant to the driver
    sys.path[:0] = [p for p in path if p not in sys.path]
    stream = cast(TextIO, _Prefixed(sys.stderr, label))
    try:
        run_policy(prepare(scenarios[index], stream), create(policy), Path(folder), resume=resume, solver=solver,
                   progress=stream, train_workers=1)
    except SimflError as exc:
        raise RuntimeError(str(exc)) from None  # the message is the story; Ray adds the traceback otherwise
    finally:
        runfolder.release_all()


class _Prefixed(io.TextIOBase):
    """A text stream that prefixes each line with `(label)`, for the driver's console."""

    def __init__(self, stream: TextIO, label: str) -> None:
        super().__init__()
        self.stream, self.label, self.fresh = stream, label, True

    def write(self, text: str) -> int:  # type: ignore[override]
        out = []
        for piece in text.splitlines(keepends=True):
            if self.fresh:
                out.append(f"({self.label}) ")
            out.append(piece)
            self.fresh = piece.endswith("\n")
        self.stream.write("".join(out))
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


# --------------------------------------------------------------------------- comparisons


def staged_folder(folder: Path, policy_name: str) -> Path:
    return Path(folder) / STAGE_DIR / policy_name


def compare_parallel(runs: Sequence[tuple[Scenario, Path]], policies: Sequence[str] | None, cluster: Cluster, *,
                     resume: bool = False, solver: str | None = None,
                     progress: TextIO | None = sys.stderr) -> None:
    """`compare` of each (scenario, folder) in `runs` (one per seed), every unfinished
    policy a task; the folders then hold what the sequential command writes, reports
    included. Raises SimflError naming the failed runs after the others finished."""
    runs = [(check_policies(scenario), folder) for scenario, folder in runs]  # before any folder is opened
    names = list(policies or runs[0][0].policies)
    if not names:
        raise SimflError(f"{runs[0][0].source}: policies: no policies to compare; list them in the "
                         "scenario's `policies` or pass --policies a,b,c")
    order: dict[Path, list[str]] = {}
    units: list[Unit] = []
    local: list[tuple[Scenario, Path, str]] = []
    for scenario, folder in runs:
        order[folder], mine, here = _stage_seed(scenario, folder, names, resume=resume, solver=solver,
                                                progress=progress, labelled=len(runs) > 1)
        units.extend(mine)
        local.extend((scenario, folder, spec) for spec in here)
    adopted: dict[Path, int] = {folder: 0 for folder in order}
    finished: set[Path] = set()
    queued = {u.folder for u in units}

    def adopt_ready(folder: Path) -> None:
        """Adopt the folder's finished staged runs that have every earlier policy in place
        (a failed or unfinished one stops the line: rows keep the policies' order)."""
        names_here = order[folder]
        while adopted[folder] < len(names_here):
            stage = staged_folder(folder, names_here[adopted[folder]])
            if stage in queued:
                if stage not in finished:
                    return
                runfolder.adopt_run(stage, folder, names_here[adopted[folder]])
            adopted[folder] += 1

    def on_done(unit: Unit) -> None:
        finished.add(unit.folder)
        if progress:
            print(f"[{unit.label}] done", file=progress, flush=True)
        adopt_ready(unit.folder.parent.parent)

    if progress:
        print(f"running {len(units)} run(s) on Ray ({cluster.address or f'{cluster.workers} local workers'})",
              file=progress, flush=True)
    failures = cluster.run(units, on_done, progress) if units else []
    for folder in order:
        adopt_ready(folder)
    failed = {u.folder.parent.parent for u, _ in failures}
    for scenario, folder, spec in local:
        if folder not in failed:
            run_policy(prepare(scenario, progress), create(spec), folder, resume=True, solver=solver, progress=progress)
    for scenario, folder in runs:
        if folder not in failed:
            write_report(folder, scenario, order[folder], sys.stdout if progress else None)
    _raise_failures(failures)


def _stage_seed(scenario: Scenario, folder: Path, names: Sequence[str], *, resume: bool, solver: str | None,
                progress: TextIO | None, labelled: bool) -> tuple[list[str], list[Unit], list[str]]:
    """Check one seed's comparison folder and plan its unfinished runs (filling the
    synthetic-image pools they will read): the policies' names in order, the units to
    run on Ray (into staged folders), and the specs of the runs to continue here (a
    sequential command left them half-run in the folder). A function of its own so that
    its world, data and plans are freed on return, not held while the tasks run (each
    task builds its own)."""
    instances = [create(name) for name in names]
    check_unique(instances, names)
    # owned, of this scenario and seed, readable; changed (torn lines dropped, ...) only
    # once its runs to continue are checked and its policies have planned
    opening = runfolder.inspect_folder(folder, scenario)
    existing = opening.rounds
    staged = [staged_folder(folder, p.name) for p in instances]
    if not resume and (not existing.empty or any(s.exists() for s in staged)):
        raise SimflError(f"{folder}: already holds a comparison; pass --resume to continue it or choose another --out")
    over = runfolder.ended(folder)
    setup = prepare(scenario, progress)
    units: list[Unit] = []
    local: list[str] = []
    for spec, policy, stage in zip(names, instances, staged):
        mine = existing[existing["policy"] == policy.name] if not existing.empty else existing
        if policy.name in over or run_finished(mine, scenario.task.rounds, scenario.task.max_time_s):
            if stage.exists():  # adopted, and the driver stopped before it could delete the copy
                shutil.rmtree(stage)
            continue
        plan = make_plan(setup, policy, solver, progress)  # a bad plan is named before anything trains
        if not mine.empty:  # continued here, in the folder: checked before it changes
            opening = runfolder.check_run(opening, policy.name, resume=True)
            check_plan_unchanged(folder, policy.name, plan, opening.rounds)
        prefill_synthesis(setup, policy, plan, progress)
        label = f"seed {scenario.seed}/{policy.name}" if labelled else policy.name
        if not mine.empty:
            local.append(spec)
        else:
            units.append(Unit(scenario, spec, stage, resume, solver, label))
    runfolder.commit(opening)
    return [p.name for p in instances], units, local


def sweep_parallel(runs: Sequence[tuple[str, Scenario]], policy_name: str, out_dir: Path, cluster: Cluster, *,
                   resume: bool = False, solver: str | None = None, progress: TextIO | None = sys.stderr) -> None:
    """`sweep` with each value a task writing its own run folder; then the sweep's report."""
    runs = [(label, check_policies(scenario)) for label, scenario in runs]  # before any folder is opened
    check_distinct(runs)
    name = create(policy_name).name  # what its rows are written as
    units = []
    for label, scenario in runs:
        folder, done = open_value_folder(out_dir, label, scenario, resume, name)
        runfolder.release(folder)  # checked here, then left to the task
        if run_finished(done, scenario.task.rounds, scenario.task.max_time_s):
            continue
        _plan_and_prefill(scenario, policy_name, solver, progress)
        units.append(Unit(scenario, policy_name, folder, resume, solver, label))
    failures = cluster.run(units, lambda unit: progress and print(f"[{unit.label}] done", file=progress, flush=True),
                           progress) if units else []
    if not failures:
        write_sweep_report(Path(out_dir), runs, create(policy_name).name, sys.stdout if progress else None)
    _raise_failures(failures)


def _plan_and_prefill(scenario: Scenario, spec: str, solver: str | None, progress: TextIO | None) -> None:
    """Plan `spec` on the scenario (a bad plan is named before anything trains) and fill
    the pools its run will read; its world is freed on return, not held while the tasks
    run."""
    setup, policy = prepare(scenario, progress), create(spec)
    prefill_synthesis(setup, policy, make_plan(setup, policy, solver, progress), progress)


def _raise_failures(failures: Sequence[tuple[Unit, str]]) -> None:
    if failures:
        listed = "; ".join(f"{u.label} ({u.folder}): {why.rstrip('.')}" for u, why in failures)
        raise SimflError(f"{len(failures)} run(s) failed, the others finished: {listed}. Fix the cause and "
                         "continue with --resume (finished runs are kept)")
