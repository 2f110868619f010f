"""End-to-end through the command line on a seconds-long scenario: real training,
determinism, resuming, the comparison's files, and errors without tracebacks."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.yaml")


def simfl(*args):
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=ROOT)


def test_run_writes_rounds_and_events_and_is_bit_for_bit_repeatable(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    first = simfl("run", TINY, "--policy", "tfl", "--out", str(a))
    assert first.returncode == 0, first.stderr
    assert "[tfl] round 3/3" in first.stderr
    assert simfl("run", TINY, "--policy", "tfl", "--out", str(b)).returncode == 0
    assert (a / "rounds.csv").read_bytes() == (b / "rounds.csv").read_bytes()
    assert (a / "events.csv").read_bytes() == (b / "events.csv").read_bytes()
    rounds = pd.read_csv(a / "rounds.csv")
    events = pd.read_csv(a / "events.csv")
    assert list(rounds["round"]) == [0, 1, 2]
    assert len(events) == 3 * 3
    # the round's energy is the sum of its devices' energies
    per_round = events.groupby("round")[["e_cmp_j", "e_com_j"]].sum().sum(axis=1)
    assert rounds["energy_j"].to_numpy() == pytest.approx(per_round.to_numpy(), rel=1e-12)
    assert rounds["accuracy"].between(0, 1).all()
    # a different seed trains differently
    c = tmp_path / "c"
    assert simfl("run", TINY, "--policy", "tfl", "--out", str(c), "--seed", "6").returncode == 0
    assert not pd.read_csv(c / "rounds.csv")["accuracy"].equals(rounds["accuracy"])


def test_resume_continues_where_it_stopped_and_matches_an_uninterrupted_run(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert simfl("run", TINY, "--policy", "tfl", "--out", str(whole), "--set", "task.rounds=4").returncode == 0
    assert simfl("run", TINY, "--policy", "tfl", "--out", str(part), "--set", "task.rounds=2").returncode == 0
    again = simfl("run", TINY, "--policy", "tfl", "--out", str(part), "--set", "task.rounds=2")
    assert again.returncode == 2 and "use --resume" in again.stderr
    resumed = simfl("run", TINY, "--policy", "tfl", "--out", str(part), "--set", "task.rounds=4", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after round 1" in resumed.stderr
    assert "round 3/4" in resumed.stderr and "round 1/4" not in resumed.stderr
    assert (whole / "rounds.csv").read_bytes() == (part / "rounds.csv").read_bytes()
    assert (whole / "events.csv").read_bytes() == (part / "events.csv").read_bytes()


def test_compare_writes_table_one_and_figures(tmp_path):
    out = tmp_path / "cmp"
    result = simfl("compare", TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Energy@30 (J)" in result.stdout and "Best acc. (%)" in result.stdout
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == ["tfl", "equal-share"]
    assert summary.loc[0, "energy_j@30_ratio"] == 1.0 or pd.isna(summary.loc[0, "energy_j@30"])
    assert summary["energy_j@99"].isna().all()  # 99% is out of reach in 3 rounds: N/A
    assert (out / "accuracy.png").stat().st_size > 0
    # Fig. 5(h): neither policy adds data and both start from the same model, so each
    # device's gradient, and its similarity to the IID device, is the same under both
    similarity = pd.read_csv(out / "similarity.csv")
    assert len(similarity) == 2 * 3 and similarity["similarity"].between(0, 1).all()
    by_policy = similarity.pivot(index="device", columns="policy", values="similarity")
    assert (by_policy["tfl"] == by_policy["equal-share"]).all()
    assert (out / "similarity.png").stat().st_size > 0
    # equal-share burns f_max and P_max: it cannot spend less per round than the optimised tfl
    rounds = pd.read_csv(out / "rounds.csv")
    per_round = rounds.groupby("policy")["energy_j"].mean()
    assert per_round["tfl"] < per_round["equal-share"]
    # a finished comparison resumes to nothing new
    resumed = simfl("compare", TINY, "--out", str(out), "--resume")
    assert resumed.returncode == 0 and "3 rounds already done" in resumed.stderr


def test_compare_over_seeds_writes_each_seed_and_the_aggregate(tmp_path):
    out = tmp_path / "seeds"
    result = simfl("compare", TINY, "--out", str(out), "--seeds", "1,2", "--set", "task.rounds=2")
    assert result.returncode == 0, result.stderr
    assert "over seeds 1, 2" in result.stdout
    per_seed = pd.read_csv(out / "seeds.csv")
    assert sorted(per_seed["seed"].unique()) == [1, 2] and len(per_seed) == 4
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == ["tfl", "equal-share"]
    assert set(summary["reached@30"]) <= {0, 1, 2}
    assert (out / "accuracy.png").stat().st_size > 0
    # seed 1 of the sweep is the plain comparison at seed 1 on the scenario's public split (seed 5)
    alone = tmp_path / "alone"
    assert simfl("compare", TINY, "--out", str(alone), "--seed", "1", "--set", "task.rounds=2",
                 "--set", "task.public_split_seed=5").returncode == 0
    assert (alone / "rounds.csv").read_bytes() == (out / "seed-1" / "rounds.csv").read_bytes()


def test_errors_are_one_paragraph_without_traceback(tmp_path):
    result = simfl("run", TINY, "--policy", "fimy", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("simfl: error: unknown policy 'fimy'; did you mean 'fimi'?")
    assert "Traceback" not in result.stderr
    result = simfl("plan", TINY, "--set", "task.dataset=mnist")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mnist" in result.stderr and "data_dir" in result.stderr


def test_policies_with_synthetic_data_run_end_to_end_with_a_tiny_generator(tmp_path):
    """FIMI (device-side data), SST (server trains too), CLSD (server alone) and SEMI
    (unlabelled device data): the tiny generator is trained on first use, the plan's
    downlink is 784 bytes per image."""
    cache = tmp_path / "cache"
    common = ["--set", "generator.config=tiny", "--set", f"generator.cache_dir={cache}", "--set", "task.rounds=2",
              "--set", "optimisation.zeta=0.5", "--set", "generator.sampling_steps=2"]
    out = tmp_path / "out"
    result = simfl("compare", TINY, "--out", str(out), "--policies", "fimi,sst,clsd,semi", *common)
    assert result.returncode == 0, result.stderr
    assert "the diffusion generator is not trained yet: training it now" in result.stderr
    fimi = pd.read_csv(out / "plans" / "fimi.csv")
    assert fimi["d_gen"].sum() > 0
    assert (fimi["downlink_bytes"] == fimi["d_gen"] * 28 * 28).all()
    assert (pd.read_csv(out / "plans" / "sst.csv")["downlink_bytes"] == 0).all()
    rounds = pd.read_csv(out / "rounds.csv")
    clsd = rounds[rounds["policy"] == "clsd"]
    assert (clsd["energy_j"] == 0).all() and (clsd["uplink_bits"] == 0).all()
    assert clsd["accuracy"].between(0, 1).all()
    sst = rounds[rounds["policy"] == "sst"]
    assert (sst["participants"] == 3).all() and (sst["energy_j"] > 0).all()
    semi = pd.read_csv(out / "plans" / "semi.csv")
    assert semi["d_gen"].tolist() == fimi["d_gen"].tolist()
    assert rounds[rounds["policy"] == "semi"]["accuracy"].between(0, 1).all()


def test_sweep_runs_each_value_on_the_same_world_and_tabulates_them(tmp_path):
    out = tmp_path / "sweep"
    result = simfl("sweep", TINY, "--policy", "tfl", "--vary", "optimisation.t_max_s=10,20", "--out", str(out),
                   "--set", "task.rounds=2")
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == ["t_max_s=10", "t_max_s=20"]
    first, second = (pd.read_csv(out / label / "rounds.csv") for label in ("t_max_s=10", "t_max_s=20"))
    # the same devices and data: the plan spreads the same work over twice the time, so
    # each round lasts T_max, and the accuracy (which does not depend on T_max) is the same
    assert first["duration_s"].to_numpy() == pytest.approx([10, 10])
    assert second["duration_s"].to_numpy() == pytest.approx([20, 20])
    assert first["accuracy"].tolist() == second["accuracy"].tolist()
    # a longer deadline lets the devices run slower: less energy per round
    assert (second["energy_j"] < first["energy_j"]).all()
    # run as a plain `simfl run`, the first value gives the same file
    alone = tmp_path / "alone"
    assert simfl("run", TINY, "--policy", "tfl", "--out", str(alone), "--set", "task.rounds=2",
                 "--set", "optimisation.t_max_s=10").returncode == 0
    assert (alone / "rounds.csv").read_bytes() == (out / "t_max_s=10" / "rounds.csv").read_bytes()
    bad = simfl("sweep", TINY, "--vary", "optimisation.t_max_s=10,-1", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "t_max_s" in bad.stderr and "Traceback" not in bad.stderr


def test_seeds_table_finds_a_policy_given_by_path(tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text("from simfl.policies.equal_share import EqualShare\n\n\n"
                    "class Mine(EqualShare):\n    name = 'mine'\n")
    out = tmp_path / "seeds"
    result = simfl("compare", TINY, "--out", str(out), "--seeds", "1,2", "--set", "task.rounds=1",
                   "--policies", f"tfl,{mine}:Mine")
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == ["tfl", "mine"]
    assert (summary["seeds"] == 2).all()


def test_report_redraws_table_one_for_other_targets_without_training(tmp_path):
    out = tmp_path / "cmp"
    assert simfl("compare", TINY, "--out", str(out), "--set", "task.rounds=2").returncode == 0
    rounds_before = (out / "rounds.csv").read_bytes()
    result = simfl("report", TINY, "--out", str(out), "--set", "task.target_accuracies=[0.2]")
    assert result.returncode == 0, result.stderr
    assert "Energy@20 (J)" in result.stdout and "round" not in result.stderr
    summary = pd.read_csv(out / "summary.csv")
    rounds = pd.read_csv(out / "rounds.csv")
    # by hand from rounds.csv: the cumulative energy of each policy's first round at >= 20%
    for policy, mine in rounds.groupby("policy"):
        hit = mine[mine["accuracy"] >= 0.2]
        expected = hit["cum_energy_j"].iloc[0] if len(hit) else float("nan")
        got = summary.loc[summary["policy"] == policy, "energy_j@20"].iloc[0]
        assert got == pytest.approx(expected, nan_ok=True)
    assert (out / "rounds.csv").read_bytes() == rounds_before
    seeds = tmp_path / "seeds"
    assert simfl("compare", TINY, "--out", str(seeds), "--seeds", "1,2", "--set", "task.rounds=1").returncode == 0
    again = simfl("report", TINY, "--out", str(seeds), "--set", "task.target_accuracies=[0.15]")
    assert again.returncode == 0, again.stderr
    assert "reached@15" in pd.read_csv(seeds / "summary.csv").columns
    empty = simfl("report", TINY, "--out", str(tmp_path / "nothing"))
    assert empty.returncode == 2 and "run `simfl compare`" in empty.stderr


TINY_DYNAMIC = str(ROOT / "tests" / "data" / "tiny-dynamic.yaml")


HELD_AT_ROUND_3 = """
import os, time
from simfl.policies.tfl import Tfl


class HeldTfl(Tfl):
    \"\"\"TFL that waits at round 3 while the test's gate file is missing, so a kill lands there.\"\"\"
    name = "tfl"

    def plan_round(self, world, state, context):
        while state.round == 3 and not os.path.exists(os.environ["SIMFL_TEST_GATE"]):
            time.sleep(0.02)
        return super().plan_round(world, state, context)
"""


def test_a_dynamic_run_killed_mid_way_resumes_byte_identical(tmp_path):
    # Every dynamic at once (availability, batteries, mobility, correlated fading, downlink,
    # partial participation), real training, SIGKILL inside round 3 (its first three rounds
    # written), then --resume.
    import os
    import signal

    policy = tmp_path / "held.py"
    policy.write_text(HELD_AT_ROUND_3)
    gate = tmp_path / "gate"
    env = {**os.environ, "SIMFL_TEST_GATE": str(gate)}
    args = [sys.executable, "-m", "simfl", "run", TINY_DYNAMIC, "--policy", f"{policy}:HeldTfl", "--out"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    gate.touch()
    assert subprocess.run([*args, str(whole)], capture_output=True, text=True, cwd=ROOT, env=env).returncode == 0
    gate.unlink()
    proc = subprocess.Popen([*args, str(part)], stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "round 3/6" in line:  # the third round's row is written; the fourth waits at the gate
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(pd.read_csv(part / "rounds.csv")) == 3
    gate.touch()
    resumed = subprocess.run([*args, str(part), "--resume"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("rounds.csv", "events.csv"):
        assert (whole / name).read_bytes() == (part / name).read_bytes(), name
    rounds = pd.read_csv(whole / "rounds.csv")
    assert rounds["dropouts"].sum() > 0 and rounds["depleted"].sum() > 0 and (rounds["selected"] <= 4).all()
    assert (whole / "availability.csv").exists()
    # every run draws the dynamic world's figures
    assert (whole / "timeline-tfl.png").stat().st_size > 0 and (whole / "participation.png").stat().st_size > 0


def test_a_run_that_ends_early_says_so_and_a_resume_leaves_it_alone(tmp_path):
    # batteries of 1 mJ: every device empties in its first job, so the run ends for good
    out = tmp_path / "drained"
    args = ("compare", TINY_DYNAMIC, "--out", str(out), "--policies", "tfl", "--set", "devices.battery_j=0.001")
    first = simfl(*args)
    assert first.returncode == 0, first.stderr
    assert "[tfl] the run ended after" in first.stderr and "no device can take part any more" in first.stderr
    played = pd.read_csv(out / "rounds.csv")
    assert 0 < len(played) < 6 and played["depleted"].sum() == 6
    again = simfl(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert "(it ended early: no device could take part any more)" in again.stderr
    assert pd.read_csv(out / "rounds.csv").equals(played)


FEDBUFF = ["--set", "aggregation.mode=fedbuff", "--set", "aggregation.buffer_size=2"]


def test_a_fedbuff_run_resumes_byte_identical_with_jobs_in_flight(tmp_path):
    # stopped after 3 aggregations with jobs in flight and an older model still needed
    # (the checkpoint holds them), then continued to 6
    whole, part = tmp_path / "whole", tmp_path / "part"
    args = ["run", TINY, "--policy", "tfl", *FEDBUFF]
    assert simfl(*args, "--out", str(whole), "--set", "task.rounds=6").returncode == 0
    assert simfl(*args, "--out", str(part), "--set", "task.rounds=3").returncode == 0
    resumed = simfl(*args, "--out", str(part), "--set", "task.rounds=6", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("rounds.csv", "events.csv"):
        assert (whole / name).read_bytes() == (part / name).read_bytes(), name
    events = pd.read_csv(whole / "events.csv")
    assert (events["staleness"] > 0).any()  # the devices differ in speed: some updates are stale
    assert (pd.read_csv(whole / "rounds.csv")["participants"] == 2).all()  # K = 2 updates per aggregation


def test_compare_runs_a_policy_in_several_modes_and_draws_their_staleness(tmp_path):
    out = tmp_path / "modes"
    result = simfl("compare", TINY, "--policies", "tfl,tfl@fedbuff,tfl@fedasync", "--out", str(out),
                   "--set", "aggregation.buffer_size=2", "--set", "task.max_time_s=30", "--set", "task.rounds=40")
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == ["tfl", "tfl@fedbuff", "tfl@fedasync"]
    rounds = pd.read_csv(out / "rounds.csv")
    for name, mine in rounds.groupby("policy", sort=False):
        ends = mine["end_s"].to_numpy()  # every run stops at its first row ending at or after the 30 s budget
        assert ends[-1] >= 30 and (ends[:-1] < 30).all(), name
    assert rounds.groupby("policy")["participants"].max().to_dict() == {"tfl": 3, "tfl@fedbuff": 2, "tfl@fedasync": 1}
    assert (out / "staleness.png").stat().st_size > 0
    assert "spent after" in result.stderr  # the budget, not a lack of devices, ended the runs


def test_sweep_over_aggregation_modes(tmp_path):
    out = tmp_path / "sweep"
    result = simfl("sweep", TINY, "--policy", "tfl", "--vary", "aggregation.mode=sync,fedasync", "--out", str(out),
                   "--set", "task.rounds=4")
    assert result.returncode == 0, result.stderr
    assert list(pd.read_csv(out / "summary.csv")["policy"]) == ["mode=sync", "mode=fedasync"]
    assert (pd.read_csv(out / "mode=fedasync" / "rounds.csv")["participants"] == 1).all()


@pytest.mark.parametrize("values, says", [
    ("0.05,0.05", "--vary task.learning_rate: the value 0.05 is given twice"),
    ("0.05,0.1,5e-2", "--vary task.learning_rate: the value 5e-2 is 0.05 again (the same value once parsed)"),
])
def test_sweep_refuses_a_repeated_value_before_any_work(tmp_path, values, says):
    # before, the first value trained and the repeat then found its folder "already holds a run"
    out = tmp_path / "sweep"
    result = simfl("sweep", TINY, "--policy", "tfl", "--vary", f"task.learning_rate={values}", "--out", str(out))
    message = result.stderr.strip()
    assert result.returncode == 2 and message.startswith(f"simfl: error: {says}; each value is one run"), message
    assert "\n" not in message and not out.exists()


def test_the_sweep_library_call_refuses_a_repeated_value_too(tmp_path):
    from simfl.errors import SimflError
    from simfl.scenario import load_scenario
    from simfl.sweep import sweep

    runs = [(f"learning_rate={v}", load_scenario(TINY, [f"task.learning_rate={v}"])) for v in ("0.05", "5e-2")]
    with pytest.raises(SimflError, match=r"^--vary learning_rate: the value 5e-2 is 0\.05 again"):
        sweep(runs, "tfl", tmp_path / "sweep", progress=None)
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("command", [
    ["validate"], ["plan", "--policy", "tfl"], ["run", "--policy", "tfl", "--out", "{out}"],
    ["compare", "--out", "{out}"], ["report", "--out", "{out}"], ["fit-curve", "--out", "{out}"],
    ["sweep", "--policy", "tfl", "--vary", "task.rounds=1,2", "--out", "{out}"],
    ["generator", "sample", "--out", "{out}.npz"],
])
def test_every_command_refuses_bad_policy_settings_before_any_work(tmp_path, command):
    # the policies' checks sit above the scenario layer: each command runs them right after loading
    out = tmp_path / "out"
    args = [part.replace("{out}", str(out)) for part in command]
    sub = 2 if args[0] == "generator" else 1
    result = simfl(*args[:sub], TINY, *args[sub:], "--set", "policy_settings.fedprox.mu=-1",
                   "--set", "policies=[tfl, fimy]")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3 and lines[0] == f"simfl: error: {TINY}: 2 problems"
    assert lines[1].startswith("  - policies[1]: unknown policy 'fimy'; did you mean 'fimi'? known: ")
    assert lines[2] == "  - policy_settings.fedprox.mu: must be >= 0, got -1"
    assert not list(tmp_path.iterdir())  # nothing written


def test_plan_names_an_out_of_range_power_not_the_learning_target():
    # a user's report: this passed validation, then TFL's plan blamed "the learning target (12a)"
    result = simfl("plan", TINY, "--policy", "tfl", "--set", "devices.p_max_dbm=1e6")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"simfl: error: {TINY}: devices.p_max_dbm: every value must be in [-50, 50] dBm "
                                     "(10 nW to 100 W), got 1e+06")
