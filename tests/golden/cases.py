"""The shipped scenarios' golden runs: each case is a `simfl run` whose rounds.csv and
events.csv are stored under tests/golden/<case>/ and compared, every column, by
test_golden.py. The static scenarios' results were made by the code before the run-long
engine (issue "One simulation per run"; SST's and CLSD's moved on purpose there, see the
commits), the dynamic scenario's by that engine; every file was written whole at 64fc7b1
(issue "The house in order", before its refactors), which added the columns the older
files lacked and the cases of the asynchronous modes, the per-round policies and the
training-side algorithms.

Every case runs in portable numerics (`simfl --numerics portable`, simfl.numerics), in a
process of its own, so its training columns (accuracy, loss) are the same bits on every
x86-64 CPU with AVX2 (issue "The tests pass on every CPU").

Rounds and test images are cut so the whole set runs in a few minutes; everything
else is the scenario as shipped. The "tiny" generator (trained in seconds into a
temporary cache) stands in for the diffusion model where a policy synthesises.
Regenerate only when an issue changes results on purpose, and say so in its note:
    python tests/golden/cases.py [CASE ...]                # whole files
    python tests/golden/cases.py --training [CASE ...]     # only the training columns
    python tests/golden/cases.py --new-columns [CASE ...]  # columns the engine gained, once
                                                           # every stored column matches
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Callable

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FILES = ("rounds.csv", "events.csv")
TRAINING_COLUMNS = ("accuracy", "loss")
TINY_GENERATOR = ["generator.config=tiny", "generator.sampling_steps=5"]

# name -> (scenario, policy, overrides)
CASES: dict[str, tuple[str, str, list[str]]] = {
    "quickstart-tfl": ("quickstart.yaml", "tfl", ["task.rounds=4", "task.eval_samples=500"]),
    # N/zeta as shipped (30/7), so the learning constraint (12c) and the plans are the shipped ones
    "quickstart-fimi": ("quickstart.yaml", "fimi", ["task.rounds=3", "optimisation.zeta=0.7", "task.eval_samples=500",
                                                    *TINY_GENERATOR]),
    "quickstart-sst": ("quickstart.yaml", "sst", ["task.rounds=3", "optimisation.zeta=0.7", "task.eval_samples=500",
                                                  *TINY_GENERATOR]),
    "quickstart-semi": ("quickstart.yaml", "semi", ["task.rounds=3", "optimisation.zeta=0.7", "task.eval_samples=500",
                                                    *TINY_GENERATOR]),
    "quickstart-clsd": ("quickstart.yaml", "clsd", ["task.rounds=3", "optimisation.zeta=0.7", "task.eval_samples=500",
                                                    *TINY_GENERATOR]),
    "two-cells-tfl": ("two-cells.yaml", "tfl", ["task.rounds=8", "optimisation.zeta=2", "task.eval_samples=500"]),
    "two-cells-equal-share": ("two-cells.yaml", "equal-share", ["task.rounds=3", "task.eval_samples=500"]),
    "two-cells-fimi": ("two-cells.yaml", "fimi", ["task.rounds=4", "optimisation.zeta=1", "task.eval_samples=500",
                                                  *TINY_GENERATOR]),
    # written by the run-long engine itself (the first with dynamics), so later engines keep it
    "dynamic-tfl": ("dynamic.yaml", "tfl", ["task.rounds=5", "optimisation.zeta=1.125", "task.eval_samples=500"]),
    "paper-fmnist-tfl": ("paper-fmnist.yaml", "tfl", ["task.rounds=2", "optimisation.zeta=0.68", "task.eval_samples=500"]),
    # written at 64fc7b1 (issue "The house in order"), before its refactors, as the safety net of the engine issues:
    # the asynchronous modes (K = 4 of 10 arrivals, so updates go stale), the per-round policies on the changing
    # world, the training-side algorithms and a combination
    "quickstart-tfl-fedbuff": ("quickstart.yaml", "tfl", ["aggregation.mode=fedbuff", "aggregation.buffer_size=4",
                                                          "task.rounds=6", "task.eval_samples=500"]),
    "quickstart-tfl-fedasync": ("quickstart.yaml", "tfl", ["aggregation.mode=fedasync", "task.rounds=14",
                                                           "aggregation.eval_every=5", "task.eval_samples=500"]),
    "dynamic-fimi-online": ("dynamic.yaml", "fimi-online", ["task.rounds=5", "optimisation.zeta=1.125",
                                                             "task.eval_samples=500", *TINY_GENERATOR]),
    "dynamic-power-of-choice": ("dynamic.yaml", "power-of-choice", ["task.rounds=5", "optimisation.zeta=1.125",
                                                                     "task.eval_samples=500"]),
    "quickstart-scaffold": ("quickstart.yaml", "scaffold", ["task.rounds=3", "task.eval_samples=500"]),
    "quickstart-fedadam": ("quickstart.yaml", "fedadam", ["task.rounds=3", "task.eval_samples=500"]),
    "quickstart-fimi+scaffold": ("quickstart.yaml", "fimi+scaffold", ["task.rounds=3", "optimisation.zeta=0.7",
                                                                      "task.eval_samples=500", *TINY_GENERATOR]),
}


def run_case(name: str, out: Path, cache: Path, env: dict[str, str] | None = None,
             cpus: set[int] | None = None, nice: int = 0,
             on_start: Callable[[subprocess.Popen], None] | None = None) -> Path:
    """Run one case with `simfl --numerics portable run` in a new process into `out`; the
    generator cache is `cache`. `env` adds environment variables, `cpus` restricts the
    process to those CPUs (to force other code paths of the libraries) and `nice` lowers
    its priority (portable numerics give the same bits however it is scheduled);
    `on_start` is handed the process once it runs."""

    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if nice:
            os.nice(nice)

    scenario, policy, overrides = CASES[name]
    args = [sys.executable, "-m", "simfl", "run", str(ROOT / "scenarios" / scenario), "--policy", policy,
            "--out", str(out), "--numerics", "portable"]
    for item in [*overrides, f"generator.cache_dir={cache}"]:
        args += ["--set", item]
    # the synthesis pools live in the cache too, not only the generators
    environment = {**os.environ, "SIMFL_CACHE": str(cache), **(env or {})}
    with subprocess.Popen(args, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                          preexec_fn=setup if cpus or nice else None) as process:
        if on_start is not None:
            on_start(process)
        _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"golden case {name}: simfl run exited {process.returncode}:\n{stderr[-3000:]}")
    return out


# A case's process keeps about one core busy (planning, synthesis and evaluation are
# single-threaded), so the cases run in two lanes, from the start of a test session that
# includes them, beside the other tests and below their priority: they use what the other
# tests leave of the two cores. Each lane has a generator cache of its own and holds the
# cases of the scenarios whose generator it trains, so no generator is trained twice or
# by two processes at once.
FORCED = "quickstart-fimi (other code paths)"
# oneDNN and MKL capped at AVX2 (an AVX2-only CPU's kernels) and one CPU instead of two
FORCED_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
LANES = ([*(n for n in sorted(CASES) if CASES[n][0] in ("quickstart.yaml", "paper-fmnist.yaml")), FORCED],
         [n for n in sorted(CASES) if CASES[n][0] not in ("quickstart.yaml", "paper-fmnist.yaml")])


class GoldenRuns:
    """Every case (and the forced-paths run of quickstart-fimi) played in its lane into
    `root`; `result(key)` waits for one and returns its folder, or raises its error."""

    def __init__(self, root: Path, nice: int = 10) -> None:
        self.runs: dict[str, Future] = {key: Future() for lane in LANES for key in lane}
        self.running: dict[int, subprocess.Popen] = {}  # lane -> its case's process
        self.stopped = False
        self.threads = [threading.Thread(target=self._play, args=(i, lane, root, root / f"cache-{i}", nice), daemon=True)
                        for i, lane in enumerate(LANES)]
        for thread in self.threads:
            thread.start()

    def _play(self, index: int, lane: list[str], root: Path, cache: Path, nice: int) -> None:
        def started(process: subprocess.Popen) -> None:
            self.running[index] = process
            if self.stopped:
                process.kill()

        for key in lane:
            try:
                if self.stopped:
                    raise RuntimeError("the test session ended before this golden case ran")
                if key == FORCED:  # its own cache, so the generator is trained on the forced paths too
                    out = run_case("quickstart-fimi", root / "forced", root / "forced-cache", env=FORCED_ENV,
                                   cpus={0}, nice=nice, on_start=started)
                else:
                    out = run_case(key, root / key, cache, nice=nice, on_start=started)
            except BaseException as exc:  # noqa: BLE001 (handed to the test that waits for it)
                self.runs[key].set_exception(exc)
            else:
                self.runs[key].set_result(out)

    def result(self, key: str) -> Path:
        return self.runs[key].result()

    def stop(self) -> None:
        """End the cases still running or waiting (a session that ran only some of the
        golden tests leaves no process behind)."""
        self.stopped = True
        for process in list(self.running.values()):
            if process.poll() is None:
                process.kill()
        for thread in self.threads:
            thread.join()


def write_training_columns(name: str, out: Path) -> None:
    """Replace the training columns of the stored rounds.csv with those of the run in `out`,
    keeping every other column as stored (after checking the run matches them)."""
    stored = pd.read_csv(HERE / name / "rounds.csv", dtype=str, keep_default_na=False)
    fresh = pd.read_csv(out / "rounds.csv", dtype=str, keep_default_na=False)
    assert len(fresh) == len(stored), f"{name}: {len(fresh)} rounds, stored {len(stored)}"
    for column in TRAINING_COLUMNS:
        stored[column] = fresh[column]
    stored.to_csv(HERE / name / "rounds.csv", index=False)


def add_new_columns(stored_path: Path, fresh_path: Path) -> None:
    """Give the stored file the fresh run's columns it lacks, in the fresh run's order,
    keeping every stored column's text as it was."""
    stored = pd.read_csv(stored_path, dtype=str, keep_default_na=False)
    fresh = pd.read_csv(fresh_path, dtype=str, keep_default_na=False)
    merged = pd.DataFrame({column: stored[column] if column in stored.columns else fresh[column]
                           for column in fresh.columns})
    merged.to_csv(stored_path, index=False)


if __name__ == "__main__":
    training_only = "--training" in sys.argv
    new_columns = "--new-columns" in sys.argv
    if new_columns:
        sys.path.insert(0, str(HERE.parent))
        from test_golden import assert_matches_golden  # the test's own comparison
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(CASES)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = run_case(name, Path(tmp) / name, Path(tmp) / "cache")
            target = HERE / name
            target.mkdir(exist_ok=True)
            if training_only:
                write_training_columns(name, out)
                print(f"wrote the training columns of {target / 'rounds.csv'}")
                continue
            if new_columns:
                assert_matches_golden(name, out, new_columns=True)
                for file in FILES:
                    if (out / file).exists():
                        add_new_columns(target / file, out / file)
                print(f"added the new columns to {target}")
                continue
            for file in FILES:
                if (out / file).exists():  # CLSD: no device, so no events.csv
                    shutil.copyfile(out / file, target / file)
            print(f"wrote {target}")
