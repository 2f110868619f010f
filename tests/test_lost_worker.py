"""`--workers`: a Ray worker SIGKILLed in the middle of its run. The driver runs the run
again, continuing from the last round checkpoint in its staged folder, and the comparison
ends with the files an undisturbed sequential comparison writes, byte for byte."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.yaml")

pytest.importorskip("ray")

# tfl, except that in its first attempt at round 2 (of 0..2) the process it runs in writes
# its pid to MARKER and waits to be killed: the test, not the worker, sends the SIGKILL, at
# a point where rounds 0 and 1 are on disk. Once the marker exists (the retry, and the
# sequential run after it) it is plain tfl.
KILLABLE = """
import os
import time
from pathlib import Path

from simfl.policies.tfl import Tfl

MARKER = Path({marker!r})


class Killable(Tfl):
    name = "killable"

    def aggregate(self, updates, server, state):
        if state.round == 2 and not MARKER.exists():
            partial = MARKER.with_suffix(".part")
            partial.write_text(str(os.getpid()))
            partial.replace(MARKER)  # whole or absent: the test never reads half a pid
            time.sleep({wait_s})
            raise RuntimeError("waited {wait_s} s for the test to kill this worker")
        self.updates = len(updates)
        return super().aggregate(updates, server, state)

    def round_metrics(self):
        return {{"updates": float(self.updates)}}  # metrics.csv, resumed and adopted like the rest
"""
WAIT_S = 120  # the worker's wait for its SIGKILL: a test that never sends it fails, not hangs
DEADLINE_S = 300  # for the whole Ray comparison


def simfl(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=cwd)


def test_a_worker_killed_mid_run_is_resumed_from_its_checkpoint_to_the_sequential_files(tmp_path):
    marker = tmp_path / "worker.pid"
    policy_file = tmp_path / "killable.py"
    policy_file.write_text(KILLABLE.format(marker=str(marker), wait_s=WAIT_S))
    common = ["compare", TINY, "--set", "task.rounds=3", "--policies", f"equal-share,{policy_file}:Killable"]

    log = tmp_path / "ray.log"
    with open(log, "w") as err:
        driver = subprocess.Popen([sys.executable, "-m", "simfl", *common, "--out", str(tmp_path / "ray"),
                                   "--workers", "2"], stdout=subprocess.DEVNULL, stderr=err, text=True, cwd=ROOT)
        try:
            deadline = time.monotonic() + DEADLINE_S
            while not marker.exists():  # the worker is at round 2, waiting
                assert driver.poll() is None, f"the comparison ended before the kill:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no worker reached round 2:\n{log.read_text()}"
                time.sleep(0.05)
            pid = int(marker.read_text())
            assert pid != driver.pid
            os.kill(pid, signal.SIGKILL)
            code = driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    stderr = log.read_text()
    assert code == 0, stderr
    assert "[killable] its worker was lost (The worker died unexpectedly" in stderr
    assert "the run resumes after round 1 (attempt 2 of 3)" in stderr
    assert "(killable) [killable] resuming after round 1" in stderr  # from its checkpoint, not from round 0

    # the marker now exists: the sequential comparison is undisturbed
    sequential = simfl(*common, "--out", str(tmp_path / "seq"))
    assert sequential.returncode == 0, sequential.stderr
    seq, ray_out = tmp_path / "seq", tmp_path / "ray"
    names = sorted(str(p.relative_to(seq)) for p in seq.rglob("*")
                   if p.is_file() and p.suffix != ".png" and p.name not in ("manifest.json", ".simfl.lock"))
    assert {"rounds.csv", "events.csv", "metrics.csv", "similarity.csv", "summary.csv", "plans/killable.csv",
            "checkpoints/killable-round2.pt", "checkpoints/equal-share-round2.pt"} <= set(names)
    for name in names:
        if name.startswith("plans/") and name.endswith(".json"):
            # a plan's record holds the planner's wall time, which no two runs share
            mine, theirs = (json.loads((folder / name).read_text()) for folder in (ray_out, seq))
            assert mine.pop("time_s") > 0 and theirs.pop("time_s") > 0
            assert mine == theirs, name
        else:
            assert (ray_out / name).read_bytes() == (seq / name).read_bytes(), name
    assert sorted(str(p.relative_to(ray_out)) for p in ray_out.rglob("*") if p.is_file() and p.suffix != ".png"
                  and p.name not in ("manifest.json", ".simfl.lock")) == names  # nothing more (.parts adopted)


class Lost(Exception):
    """Ray's WorkerCrashedError, in the stand-in."""


class Broken(Exception):
    """An error the run itself raised (Ray's RayTaskError), in the stand-in."""


class StandInRay:
    """Just enough of the `ray` module for Cluster.run: tasks run nowhere, and the n-th
    attempt of a run ends as `outcomes[label][n]` says (an exception, or None: done)."""

    def __init__(self, outcomes):
        self.outcomes, self.calls, self.puts = outcomes, [], []
        self.exceptions = type("exceptions", (), {"WorkerCrashedError": Lost, "NodeDiedError": Lost,
                                                  "OutOfMemoryError": Lost})

    def put(self, value):
        self.puts.append(value)
        return f"ref{len(self.puts)}"

    def remote(self, **options):
        assert options["max_retries"] == 0  # the retries are simfl's
        ray = self

        class Remote:
            def remote(self, *args):
                ray.calls.append(args)
                return len(ray.calls) - 1
        return lambda function: Remote()

    def wait(self, refs, num_returns):
        return sorted(refs)[:num_returns], sorted(refs)[num_returns:]

    def get(self, ref):
        label = self.calls[ref][6]
        outcome = self.outcomes[label].pop(0)
        if outcome is not None:
            raise outcome


def test_a_run_whose_worker_is_lost_each_time_fails_after_three_attempts_and_a_failing_run_is_not_retried(tmp_path):
    from simfl.parallel import Cluster, Unit
    from simfl.scenario import load_scenario

    scenario = load_scenario(TINY)
    folder = tmp_path / ".parts" / "tfl"
    folder.mkdir(parents=True)
    (folder / "rounds.csv").write_text("policy,round\ntfl,0\ntfl,1\ntfl,2\ntfl,")  # a torn last line: not a round
    units = [Unit(scenario, "tfl", folder, False, None, "tfl"),
             Unit(scenario, "fedavg", tmp_path / ".parts" / "fedavg", False, None, "fedavg"),
             Unit(scenario, "broken", tmp_path / ".parts" / "broken", False, None, "broken")]
    ray = StandInRay({"tfl": [Lost("The worker died unexpectedly.")] * 3,
                      "fedavg": [Lost("The worker died unexpectedly."), None],
                      "broken": [Broken("the aggregation broke")]})
    cluster = Cluster(workers=2, _ray=ray)
    done, progress = [], io.StringIO()
    failures = cluster.run(units, lambda unit: done.append(unit.label), progress)

    assert done == ["fedavg"]  # lost once, then finished
    assert [(u.label, why) for u, why in failures] == [
        ("broken", "the aggregation broke"),  # an error of the run: once, not retried
        ("tfl", "its worker was lost 3 times (the last time: The worker died unexpectedly); its finished rounds "
                "are kept, and --resume continues it after round 2")]
    attempts = [(args[6], args[4]) for args in ray.calls]  # (label, resume) of every task started
    assert attempts.count(("tfl", True)) == 2 and attempts.count(("fedavg", True)) == 1  # retries resume
    assert ("broken", True) not in attempts
    assert ("[fedavg] its worker was lost (The worker died unexpectedly.); the run resumes from its first round "
            "(none had finished) (attempt 2 of 3)") in progress.getvalue()
    assert len(ray.puts) == 1 and ray.puts[0] == (scenario,)  # the scenario stored once, for every task
    assert {args[:2] for args in ray.calls} == {("ref1", 0)}


def test_the_tasks_of_a_comparisons_seeds_share_one_stored_copy_of_their_scenarios(tmp_path):
    """A scenario is put into Ray's object store once, not pickled into each task's
    arguments (with a per-device availability trace it is about 200 bytes a device); the
    seeds of a comparison share their device groups, and one object holds them all."""
    from simfl.compare_seeds import seed_scenarios
    from simfl.parallel import Cluster, Unit
    from simfl.scenario import load_scenario

    seeds = seed_scenarios(load_scenario(TINY), [1, 2])
    units = [Unit(s, p, tmp_path / f"seed-{s.seed}" / p, False, None, f"seed {s.seed}/{p}")
             for s in seeds for p in ("tfl", "fedavg")]
    swept = [load_scenario(TINY, overrides=[f"optimisation.t_max_s={t}"]) for t in (10, 20)]  # loaded apart
    units += [Unit(s, "tfl", tmp_path / f"t{i}", False, None, f"t{i}") for i, s in enumerate(swept)]
    ray = StandInRay({u.label: [None] for u in units})
    assert Cluster(workers=2, _ray=ray).run(units, lambda unit: None, None) == []
    assert ray.puts == [tuple(seeds), (swept[0],), (swept[1],)]
    assert [args[:2] for args in ray.calls] == [("ref1", 0), ("ref1", 0), ("ref1", 1), ("ref1", 1),
                                                ("ref2", 0), ("ref3", 0)]
