"""The Python API (`simfl.load_scenario`, `run`, `compare`, `open_run`) against the
command line: the same files byte for byte, the same scenario for the same overrides, the
same messages for the same mistakes; and what only Python can do, a policy class written
where it is used."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simfl
from simfl.cli import _load, build_parser
from simfl.errors import DataNotFound, PolicyError, PolicyNotFound, RunFolderError, ScenarioError, SimflError
from simfl.plan import Plan
from simfl.policy import Policy
from simfl.runfolder import LOCK_FILE, fingerprint

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.yaml")


def simfl_command(*args):
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=ROOT)


class HalfBand(Policy):
    """A policy as a notebook would define it: every device at f_max and P_max, and half
    of an equal share of its cell's band (the other half left unused)."""

    name = "half-band"

    def __init__(self, share: float = 0.5) -> None:
        self.share = share
        self.plans = 0

    def plan(self, world, context):
        self.plans += 1
        per_cell = np.bincount(world.cell_of, minlength=world.n_cells)
        b_hz = self.share * world.bandwidth_hz[world.cell_of] / per_cell[world.cell_of]
        return Plan.no_synthesis(world, f_hz=world.f_max_hz, b_hz=b_hz, p_w=world.p_max_w)


@pytest.fixture(scope="module")
def command_comparison(tmp_path_factory):
    """`simfl compare` of the tiny scenario's two policies over 2 rounds."""
    out = tmp_path_factory.mktemp("command") / "cmp"
    result = simfl_command("compare", TINY, "--out", str(out), "--set", "task.rounds=2")
    assert result.returncode == 0, result.stderr
    return out


def test_import_simfl_loads_no_heavy_library_and_lists_the_api():
    code = ("import simfl, sys\n"
            "heavy = sorted({'torch', 'pandas', 'numpy', 'matplotlib'} & set(sys.modules))\n"
            "assert not heavy, heavy\n"
            "names = {'load_scenario', 'run', 'compare', 'open_run', 'Result', 'Policy', 'Plan'}\n"
            "assert names <= set(dir(simfl)) and names <= set(simfl.__all__)\n"
            # simfl's own code imports the submodule simfl.compare: the name stays the function
            "from simfl.compare import write_report\n"
            "import simfl.report\n"
            "assert callable(simfl.compare) and simfl.compare.__module__ == 'simfl.api', simfl.compare\n"
            "from simfl import compare, Policy\n"
            "assert compare is simfl.compare and Policy.__module__ == 'simfl.policy'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_compare_writes_what_the_command_writes(command_comparison, tmp_path):
    scenario = simfl.load_scenario(TINY, overrides={"task.rounds": 2})
    result = simfl.compare(scenario, out=tmp_path / "cmp", progress=False)
    for name in ("summary.csv", "rounds.csv", "events.csv", "similarity.csv", "plans/tfl.csv"):
        assert (tmp_path / "cmp" / name).read_bytes() == (command_comparison / name).read_bytes(), name
    assert result.policies == ("tfl", "equal-share")
    pd.testing.assert_frame_equal(result.summary, pd.read_csv(command_comparison / "summary.csv"))
    assert set(result.figures) == {p.stem for p in command_comparison.glob("*.png")}
    assert not (tmp_path / "cmp" / LOCK_FILE).exists(), "the folder is released for a later run or the command"


def test_open_run_reads_back_a_folder_the_command_wrote(command_comparison):
    result = simfl.open_run(command_comparison)
    rounds = pd.read_csv(command_comparison / "rounds.csv")
    pd.testing.assert_frame_equal(result.rounds, rounds)
    pd.testing.assert_frame_equal(result.events, pd.read_csv(command_comparison / "events.csv"))
    summary = result.summary
    assert list(summary["policy"]) == ["tfl", "equal-share"]
    # best accuracy by hand from rounds.csv
    assert summary.set_index("policy")["best_accuracy"].to_dict() == rounds.groupby("policy")["accuracy"].max().to_dict()
    assert result.figures["accuracy"] == command_comparison / "accuracy.png"
    image = result.show("accuracy")
    assert Path(getattr(image, "filename", image)) == command_comparison / "accuracy.png"
    with pytest.raises(DataNotFound, match="no figure 'accuracyy'; did you mean 'accuracy'"):
        result.show("accuracyy")
    assert "Table I" in result._repr_html_() and "equal-share" in result._repr_html_()


def test_run_is_the_run_command_and_its_table_one_is_computed_at_the_scenarios_targets(tmp_path):
    command = tmp_path / "command"
    done = simfl_command("run", TINY, "--policy", "tfl", "--out", str(command), "--set", "task.rounds=2")
    assert done.returncode == 0, done.stderr
    result = simfl.run(simfl.load_scenario(TINY, ["task.rounds=2"]), "tfl", out=tmp_path / "api",
                       progress=False)
    for name in ("rounds.csv", "events.csv", "plans/tfl.csv"):
        assert (tmp_path / "api" / name).read_bytes() == (command / name).read_bytes(), name
    assert set(result.figures) == {p.stem for p in command.glob("*.png")} and "participation" in result.figures
    assert not (command / "summary.csv").exists() and not (tmp_path / "api" / "summary.csv").exists()
    rounds = pd.read_csv(command / "rounds.csv")
    summary = result.summary
    # tiny.yaml's targets 30% and 99%: each cost is the cumulative one of the first round
    # reaching the target, by hand from rounds.csv
    for target, tag in ((0.3, "30"), (0.99, "99")):
        hit = rounds[rounds["accuracy"] >= target]
        expected = hit["cum_energy_j"].iloc[0] if len(hit) else np.nan
        assert summary.loc[0, f"energy_j@{tag}"] == pytest.approx(expected, nan_ok=True)
    assert summary.loc[0, "best_accuracy"] == rounds["accuracy"].max() and summary.loc[0, "rounds"] == 2
    with pytest.raises(DataNotFound, match="give the scenario"):
        simfl.open_run(command).summary
    pd.testing.assert_frame_equal(simfl.open_run(command, TINY).summary.drop(columns="rounds"),
                                  simfl.open_run(command, simfl.load_scenario(TINY)).summary.drop(columns="rounds"))


def test_overrides_as_a_mapping_or_strings_are_the_commands_set():
    changes = {"task.rounds": 5, "cells[0].bandwidth_hz": 1e7, "devices.p_max_dbm": {"uniform": [18, 21]},
               "policies": ["tfl", "fimi"]}
    strings = ["task.rounds=5", "cells[0].bandwidth_hz=1e7", "devices.p_max_dbm={uniform: [18, 21]}",
               "policies=[tfl, fimi]"]
    args = build_parser().parse_args(["validate", TINY, "--seed", "9", *[x for s in strings for x in ("--set", s)]])
    command = _load(args, TINY)
    for overrides in (changes, strings, tuple(strings)):
        scenario = simfl.load_scenario(TINY, overrides=overrides, seed=9)
        assert fingerprint(scenario) == fingerprint(command)
        assert scenario.task.rounds == 5 and scenario.seed == 9 and scenario.policies == ("tfl", "fimi")
        assert scenario.cells[0].bandwidth_hz == 1e7
    assert fingerprint(simfl.load_scenario(TINY)) != fingerprint(command)


def test_mistakes_raise_simfls_errors_with_the_commands_messages(tmp_path):
    def message(*args):
        result = simfl_command(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        return result.stderr.removeprefix("simfl: error: ").strip()

    missing = str(tmp_path / "nowhere.yaml")
    with pytest.raises(ScenarioError) as caught:
        simfl.load_scenario(missing)
    assert str(caught.value) == message("validate", missing)
    with pytest.raises(PolicyNotFound) as caught:
        simfl.run(TINY, "fimy", out=tmp_path / "x", progress=False)
    assert str(caught.value) == message("run", TINY, "--policy", "fimy", "--out", str(tmp_path / "y"))
    assert str(caught.value).startswith("unknown policy 'fimy'; did you mean 'fimi'?")
    with pytest.raises(ScenarioError) as caught:
        simfl.load_scenario(TINY, overrides=["task.rounds=-1"])
    assert str(caught.value) == message("validate", TINY, "--set", "task.rounds=-1")
    with pytest.raises(ScenarioError, match="task.rounds"):
        simfl.load_scenario(TINY, overrides={"task.rounds": -1})
    with pytest.raises(ScenarioError, match="expected FIELD=VALUE"):
        simfl.load_scenario(TINY, overrides="task.rounds")
    with pytest.raises(ScenarioError, match=r"overrides\['cells.7.radius_m'\]: index 7 out of range"):
        simfl.load_scenario(TINY, overrides={"cells.7.radius_m": 1})
    with pytest.raises(PolicyNotFound, match="a simfl.Policy subclass or an instance"):
        simfl.compare(TINY, ["tfl", 42], out=tmp_path / "z", progress=False)
    with pytest.raises(DataNotFound, match="not a simfl run folder"):
        simfl.open_run(tmp_path)

    class Nameless(HalfBand):
        name = "no spaces allowed"

    with pytest.raises(PolicyError, match="`name` must be a string"):
        simfl.compare(TINY, ["tfl", Nameless], out=tmp_path / "z", progress=False)
    assert not (tmp_path / "z").exists(), "refused before the folder is made"
    assert all(issubclass(e, SimflError) for e in (ScenarioError, PolicyNotFound, PolicyError, RunFolderError))


def test_a_policy_class_written_here_runs_and_resumes_under_its_name(tmp_path):
    out = tmp_path / "mine"
    scenario = simfl.load_scenario(TINY, overrides={"task.rounds": 1})
    mine = HalfBand(0.25)
    result = simfl.compare(scenario, ["tfl", HalfBand, "equal-share"], out=out, progress=False)
    assert result.policies == ("tfl", "half-band", "equal-share")
    rounds = result.rounds
    assert rounds.groupby("policy").size().to_dict() == {"tfl": 1, "half-band": 1, "equal-share": 1}
    plan = pd.read_csv(out / "plans" / "half-band.csv")
    equal = pd.read_csv(out / "plans" / "equal-share.csv")
    assert plan["b_hz"].to_numpy() == pytest.approx(0.5 * equal["b_hz"].to_numpy())
    # half the band: each upload takes longer than equal-share's at the same power
    events = result.events
    upload = events.groupby("policy")["rate_bps"].mean()
    assert upload["half-band"] < upload["equal-share"]
    with pytest.raises(SimflError, match="already holds a comparison; pass --resume"):
        simfl.compare(scenario, ["tfl", HalfBand], out=out, progress=False)
    # two more rounds of the same comparison, the class given as an instance this time
    longer = simfl.load_scenario(TINY, overrides={"task.rounds": 3})
    resumed = simfl.compare(longer, ["tfl", HalfBand(), "equal-share"], out=out, resume=True, progress=False)
    assert resumed.rounds.groupby("policy")["round"].apply(list).to_dict() == {
        "tfl": [0, 1, 2], "half-band": [0, 1, 2], "equal-share": [0, 1, 2]}
    # a run copies an instance: the caller's object keeps its state
    simfl.run(scenario, mine, out=tmp_path / "quarter", progress=False)
    assert mine.plans == 0
    assert pd.read_csv(tmp_path / "quarter" / "plans" / "half-band.csv")["b_hz"].to_numpy() == pytest.approx(
        0.25 * equal["b_hz"].to_numpy())


def test_compare_over_seeds_is_the_commands_compare_seeds(tmp_path):
    command = tmp_path / "command"
    done = simfl_command("compare", TINY, "--out", str(command), "--seeds", "1,2", "--set", "task.rounds=1")
    assert done.returncode == 0, done.stderr
    result = simfl.compare(simfl.load_scenario(TINY, {"task.rounds": 1}), out=tmp_path / "api",
                           seeds=[1, 2], progress=False)
    for name in ("summary.csv", "seeds.csv", "seed-1/rounds.csv", "seed-2/events.csv"):
        assert (tmp_path / "api" / name).read_bytes() == (command / name).read_bytes(), name
    assert result.seeds == (1, 2) and list(result.summary["seeds"]) == [2, 2]
    assert sorted(result.rounds["seed"].unique()) == [1, 2] and len(result.rounds) == 2 * 2
    again = simfl.open_run(command)
    assert again.seeds == (1, 2) and "seed-2/accuracy" in again.figures
    pd.testing.assert_frame_equal(again.seed(2).rounds, pd.read_csv(command / "seed-2" / "rounds.csv"))
    with pytest.raises(DataNotFound, match="no comparison of seed 3"):
        again.seed(3)
