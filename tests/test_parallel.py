"""`--workers`: a comparison's runs as Ray tasks, with results byte-identical to the
sequential command's, failures named while the others finish, and a clear message
without Ray."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.yaml")

ray = pytest.importorskip("ray")


def simfl(*args, env=None):
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env)


def test_two_ray_workers_give_the_sequential_comparison_byte_for_byte(tmp_path):
    common = ["compare", TINY, "--seeds", "1-2", "--set", "task.rounds=2", "--policies", "tfl,equal-share,fedadam"]
    sequential = simfl(*common, "--out", str(tmp_path / "seq"))
    assert sequential.returncode == 0, sequential.stderr
    parallel = simfl(*common, "--out", str(tmp_path / "ray"), "--workers", "2")
    assert parallel.returncode == 0, parallel.stderr
    # each run's progress reaches the console, labelled with its seed and policy
    assert "(seed 2/fedadam) [fedadam] round 2/2" in parallel.stderr
    for name in ["summary.csv", "seeds.csv", *(f"seed-{s}/{f}" for s in (1, 2)
                                               for f in ("rounds.csv", "events.csv", "similarity.csv", "summary.csv"))]:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "seq" / name).read_bytes(), name
    assert not any((tmp_path / "ray" / f"seed-{s}" / ".parts").exists() for s in (1, 2))  # every staged run adopted
    # the adopted checkpoints are recorded: resuming to more rounds continues them
    more = simfl(*common[:-4], "--set", "task.rounds=3", "--policies", "tfl", "--out", str(tmp_path / "ray"),
                 "--workers", "2", "--resume")
    assert more.returncode == 0, more.stderr
    rounds = pd.read_csv(tmp_path / "ray" / "seed-1" / "rounds.csv")
    assert list(rounds[rounds["policy"] == "tfl"]["round"]) == [0, 1, 2]


FAILS_ON_SEED_2 = """
from simfl.policies.tfl import Tfl


class Fragile(Tfl):
    name = "fragile"

    def configure(self, scenario):
        self.seed = scenario.seed
        return super().configure(scenario)

    def aggregate(self, updates, server, state):
        if self.seed == 2:
            raise RuntimeError("the aggregation broke on purpose")
        return super().aggregate(updates, server, state)
"""


def test_a_failing_run_is_named_and_the_others_finish(tmp_path):
    fragile = tmp_path / "fragile.py"
    fragile.write_text(FAILS_ON_SEED_2)
    out = tmp_path / "ray"
    result = simfl("compare", TINY, "--seeds", "1,2", "--set", "task.rounds=1", "--policies", f"tfl,{fragile}:Fragile",
                   "--out", str(out), "--workers", "2")
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("simfl: error: 1 run(s) failed, the others finished: seed 2/fragile")
    assert "the aggregation broke on purpose" in message and "Traceback" not in message
    assert set(pd.read_csv(out / "seed-1" / "rounds.csv")["policy"]) == {"tfl", "fragile"}
    assert (out / "seed-1" / "summary.csv").exists()
    assert list(pd.read_csv(out / "seed-2" / "rounds.csv")["policy"]) == ["tfl"]  # adopted before the failed one


def test_without_ray_workers_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from simfl.cli import main; "
            f"sys.exit(main(['compare', {TINY!r}, '--out', {str(tmp_path / 'x')!r}, '--workers', '2']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "pip install 'simfl[ray]'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()  # nothing started


def test_a_sweep_on_two_ray_workers_writes_what_the_sequential_sweep_writes(tmp_path):
    common = ["sweep", TINY, "--policy", "tfl", "--vary", "optimisation.t_max_s=10,20", "--set", "task.rounds=2"]
    assert simfl(*common, "--out", str(tmp_path / "seq")).returncode == 0
    parallel = simfl(*common, "--out", str(tmp_path / "ray"), "--workers", "2")
    assert parallel.returncode == 0, parallel.stderr
    for name in ("summary.csv", "t_max_s=10/rounds.csv", "t_max_s=20/rounds.csv", "t_max_s=20/events.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "seq" / name).read_bytes(), name
