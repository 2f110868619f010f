"""Issue #12: nothing lost, nothing silently wrong. Bad inputs of each class end with one
message and exit status 2 (no traceback); damaged run folders are repaired to exactly the
bytes of an uninterrupted run, or refused with a message naming the damaged file; two
runs never share a folder; nothing is written outside the folders the scenario names."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simfl.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.yaml")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """In-process for quick commands; `run` and `compare` in a subprocess (their progress
    stream is bound at import, which pytest's capture would close under them)."""
    if args[0] in ("run", "compare"):
        result = subprocess_simfl(*args)
        return result.returncode, result.stdout, result.stderr
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clear(code: int, err: str, *fragments: str) -> None:
    """Exit 2, one message starting `simfl: error:`, no traceback, no blank line."""
    assert code == 2, err
    assert err.startswith("simfl: error: "), err
    assert "Traceback" not in err and "\n\n" not in err.strip(), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def subprocess_simfl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, **kwargs)


# --------------------------------------------------------------------------- scenario inputs


@pytest.mark.parametrize("override, fragments", [
    ("devices.f_max_hz={uniform: [1e9, .inf]}", ["devices.f_max_hz.uniform[1]: must be finite, got inf"]),
    ("task.learning_rate=.nan", ["task.learning_rate: must be finite, got nan"]),
    ("cells.0.bandwidth_hz=1e999", ["cells[0].bandwidth_hz: must be finite, got inf"]),
    ("devices.eps={values: [1e-27, .nan, 2e-27]}", ["devices.eps.values[1]: must be finite"]),
    ("task.rounds=1e300", ["task.rounds: must be an integer in [1, 100000], got 1e+300"]),
    ("task.eval_samples=1e9", ["task.eval_samples: must be an integer in [1, 10000000]"]),
    ("task.eval_samples=20000", ["task.eval_samples: must be at most the 10000 test images of fashion-mnist"]),
    ("generator.sampling_steps=1e9", ["generator.sampling_steps: must be an integer in [1, 10000]"]),
    ("optimisation.cross_entropy.iterations=1e12", ["optimisation.cross_entropy.iterations: must be an integer in"]),
    ("task.public_split_seed=-1", ["task.public_split_seed: must be >= 0"]),
    ("task.rounds=" + "9" * 400, ["task.rounds: must be finite, got a 400-digit integer"]),
    ("task.model=vgg9", ["task.model: vgg9 needs an image side divisible by 8", "28x28"]),
    ("task={rounds: 2, rounds: 3}", ["duplicate key 'rounds'"]),
])
def test_bad_field_values_are_one_clear_message_naming_the_field_and_range(capsys, override, fragments):
    code, _, err = cli(capsys, "validate", TINY, "--set", override)
    assert_clear(code, err, "tests/data/tiny.yaml", *fragments)


def test_a_seed_beyond_32_bits_is_refused_with_the_range(capsys):
    code, _, err = cli(capsys, "plan", TINY, "--seed", "1208925819614629174706176")
    assert_clear(code, err, "seed: must be an integer in [0, 4294967295]")
    code, _, err = cli(capsys, "compare", TINY, "--seeds", "1-100000000", "--out", "/nonexistent/x")
    assert_clear(code, err, "--seeds", "at most 1000")


def test_a_duplicated_top_level_block_is_refused_not_merged(tmp_path, capsys):
    text = Path(TINY).read_text() + "task:\n  rounds: 7\n"
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    code, _, err = cli(capsys, "validate", path)
    assert_clear(code, err, str(path), "duplicate key 'task'", "line")


@pytest.mark.parametrize("content, fragment", [
    (b"name: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at line 1)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file"),
    (b"", "the file must be a YAML mapping"),
])
def test_unreadable_scenario_files_are_named(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, _, err = cli(capsys, "validate", path)
    assert_clear(code, err, str(path), fragment)


def test_cache_dir_naming_a_file_fails_on_load_not_after_training(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    code, _, err = cli(capsys, "run", TINY, "--policy", "fimi", "--out", tmp_path / "o",
                       "--set", f"generator.cache_dir={afile}")
    assert_clear(code, err, f"generator.cache_dir: {afile} is a file, not a directory")
    assert not (tmp_path / "o").exists()


def test_bad_command_arguments_are_clear(tmp_path, capsys):
    code, _, err = cli(capsys, "compare", TINY, "--policies", ",,", "--out", tmp_path / "o")
    assert_clear(code, err, "--policies ',,': names no policy")
    code, _, err = cli(capsys, "fit-curve", TINY, "--sizes", "10,abc", "--out", tmp_path / "f")
    assert_clear(code, err, "--sizes '10,abc'")
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = cli(capsys, "run", TINY, "--policy", "tfl", "--out", afile)
    assert_clear(code, err, f"--out {afile}: is a file, not a directory")
    code, _, err = cli(capsys, "run", TINY, "--policy", "tfl", "--out", afile / "below")
    assert_clear(code, err, f"--out {afile / 'below'}: cannot create the directory")


def test_a_closed_pipe_ends_plan_quietly(monkeypatch, capsys):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["plan", TINY, "--policy", "tfl"]) == 141  # as a shell reports a command ended by SIGPIPE
    assert capsys.readouterr().err == ""
    # and through a real pipe (whether it closes before simfl writes depends on timing)
    result = subprocess.run(f"{sys.executable} -m simfl plan {TINY} --policy tfl | head -1", shell=True,
                            capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr


# --------------------------------------------------------------------------- user policies

POLICIES = '''
import sys
from simfl.policy import Policy
from simfl.policies.tfl import Tfl as TFL


class ReturnsNone(Policy):
    name = "returns-none"
    def plan(self, world, context):
        return None


class ReturnsList(Policy):
    name = "returns-list"
    def plan(self, world, context):
        return [1, 2, 3]


class Raises(Policy):
    name = "raises"
    def plan(self, world, context):
        raise ValueError("no plan today")


class Exits(Policy):
    name = "exits"
    def plan(self, world, context):
        sys.exit(0)


class Abstract(Policy):
    name = "abstract"


class Slashed(TFL):
    name = "a/b"


class BadSelect(TFL):
    name = "bad-select"
    def select(self, state, context):
        raise ValueError("nobody today")


class BadRoundPlan(TFL):
    name = "bad-round-plan"
    def plan_round(self, world, state, context):
        return [1, 2]


class BadInit(TFL):
    name = "bad-init"
    def __init__(self):
        raise RuntimeError("cannot start")


class Malformed(TFL):
    name = "malformed"
    def plan(self, world, context):
        plan = super().plan(world, context)
        object.__setattr__(plan, "f_hz", "fast")
        return plan


class Tfl(TFL):
    name = "tfl"
'''


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(POLICIES)
    return path


@pytest.mark.parametrize("cls, fragments", [
    ("ReturnsNone", ["plan() returned None; it must return a Plan"]),
    ("ReturnsList", ["plan() returned a list [1, 2, 3]; it must return a Plan"]),
    ("Raises", ["plan() raised ValueError: no plan today", "line 22"]),
    ("Exits", ["plan() called sys.exit(0)"]),
    ("Abstract", ["is abstract: it does not define plan()"]),
    ("Slashed", ["`name` must be", "'a/b'"]),
    ("BadInit", ["__init__ raised RuntimeError: cannot start"]),
    ("Malformed", ["plan() returned"]),
    ("Missing", ["has no Policy subclass named 'Missing'"]),
])
def test_a_broken_user_policy_is_named_with_its_file_and_method(policy_file, capsys, cls, fragments):
    code, out, err = cli(capsys, "plan", TINY, "--policy", f"{policy_file}:{cls}")
    assert_clear(code, err, str(policy_file), *fragments)
    assert out == ""


@pytest.mark.parametrize("cls, fragments", [
    ("BadSelect", ["select() raised ValueError: nobody today"]),
    ("BadRoundPlan", ["plan_round() returned a list [1, 2]; it must return a RoundPlan"]),
])
def test_a_round_hook_that_fails_mid_run_is_named_with_its_file_and_method(policy_file, tmp_path, capsys, cls,
                                                                            fragments):
    code, _, err = cli(capsys, "run", TINY, "--policy", f"{policy_file}:{cls}", "--out", str(tmp_path / "out"))
    assert_clear(code, err, str(policy_file), *fragments)


@pytest.mark.parametrize("source, fragment", [
    ("def plan(:\n", "syntax error in"),
    ("import no_such_module_anywhere\n", "No module named 'no_such_module_anywhere'"),
    ("raise KeyError('at import')\n", "raised KeyError"),
    ("import sys\nsys.exit(3)\n", "called sys.exit(3)"),
])
def test_a_policy_file_that_does_not_import_is_named(tmp_path, capsys, source, fragment):
    path = tmp_path / "broken.py"
    path.write_text(source)
    code, _, err = cli(capsys, "plan", TINY, "--policy", f"{path}:X")
    assert_clear(code, err, str(path), fragment)


def test_compare_names_a_failing_plan_before_any_policy_trains(policy_file, tmp_path, capsys):
    out = tmp_path / "cmp"
    code, _, err = cli(capsys, "compare", TINY, "--out", out, "--policies", f"tfl,{policy_file}:Raises")
    assert_clear(code, err, "plan() raised ValueError")
    assert not (out / "rounds.csv").exists()  # tfl did not train first
    code, _, err = cli(capsys, "compare", TINY, "--out", tmp_path / "c2", "--policies", f"tfl,{policy_file}:Tfl")
    assert_clear(code, err, "both named 'tfl'")


# --------------------------------------------------------------------------- damaged run folders

RUN = ("--policy", "tfl")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 3-round run, and a 2-round run to resume to 3 after damage."""
    root = tmp_path_factory.mktemp("runs")
    for name, rounds in (("whole", 3), ("part", 2)):
        result = subprocess_simfl("run", TINY, *RUN, "--out", root / name, "--set", f"task.rounds={rounds}")
        assert result.returncode == 0, result.stderr
    return root


def damaged(runs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "part"
    shutil.copytree(runs / "part", folder)
    return folder


def resume(capsys, folder: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "run", TINY, *RUN, "--out", folder, "--set", "task.rounds=3", "--resume", *extra)


def assert_same_as_whole(runs: Path, folder: Path) -> None:
    for name in ("rounds.csv", "events.csv"):
        assert (folder / name).read_bytes() == (runs / "whole" / name).read_bytes(), name


def test_resume_of_an_undamaged_folder_matches_the_uninterrupted_run(runs, tmp_path, capsys):
    folder = damaged(runs, tmp_path)
    code, _, err = resume(capsys, folder)
    assert code == 0, err
    assert_same_as_whole(runs, folder)
    assert not (folder / ".simfl.lock").exists()


@pytest.mark.parametrize("name, tail", [("rounds.csv", b"tfl,2,30.0,45.1"), ("events.csv", b"tfl,2,1,30.0,3")])
def test_a_torn_last_line_is_dropped_and_the_resume_is_byte_identical(runs, tmp_path, capsys, name, tail):
    folder = damaged(runs, tmp_path)
    with open(folder / name, "ab") as f:
        f.write(tail)
    code, _, err = resume(capsys, folder)
    assert code == 0, err
    assert "dropped an incomplete last line" in err
    assert_same_as_whole(runs, folder)


def test_a_crash_inside_a_round_after_its_events_resumes_byte_identical(runs, tmp_path, capsys):
    """What SIGKILL between the events and the rounds row of round 2 leaves: round 2's
    events in full, a partial rounds row."""
    folder = damaged(runs, tmp_path)
    whole_events = (runs / "whole" / "events.csv").read_bytes().splitlines(keepends=True)
    with open(folder / "events.csv", "ab") as f:
        f.writelines(line for line in whole_events if line.startswith(b"tfl,2,"))
    with open(folder / "rounds.csv", "ab") as f:
        f.write((runs / "whole" / "rounds.csv").read_bytes().splitlines(keepends=True)[-1][:20])
    code, _, err = resume(capsys, folder)
    assert code == 0, err
    assert_same_as_whole(runs, folder)


def test_report_refuses_a_torn_rounds_file_instead_of_a_wrong_best_accuracy(runs, tmp_path, capsys):
    folder = damaged(runs, tmp_path)
    data = (folder / "rounds.csv").read_bytes()
    (folder / "rounds.csv").write_bytes(data[:-4])  # the last row's accuracy cut short
    code, _, err = cli(capsys, "report", TINY, "--out", folder)
    assert_clear(code, err, f"{folder / 'rounds.csv'}: the last line is incomplete")


@pytest.mark.parametrize("extra, fragments", [
    (("--seed", "6"), ["another scenario or seed", "seed 5 there, 6 here"]),
    (("--set", "task.learning_rate=0.1"), ["task.learning_rate (0.05 there, 0.1 here)"]),
    (("--set", "devices.count=4"), ["devices.0.count (3 there, 4 here)"]),
])
def test_resume_refuses_a_folder_of_another_seed_or_scenario(runs, tmp_path, capsys, extra, fragments):
    folder = damaged(runs, tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    code, _, err = resume(capsys, folder, *extra)
    assert_clear(code, err, str(folder), *fragments)
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # nothing rewritten, the plan files included


def test_a_refused_run_leaves_the_plan_files_alone(runs, tmp_path, capsys):
    folder = damaged(runs, tmp_path)
    plan = (folder / "plans" / "tfl.csv").read_bytes()
    code, _, err = cli(capsys, "run", TINY, *RUN, "--out", folder, "--set", "task.rounds=3")
    assert_clear(code, err, "already holds rounds of policy 'tfl'", "--resume")
    assert (folder / "plans" / "tfl.csv").read_bytes() == plan


def _truncate_rows(path: Path, keep: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]))


@pytest.mark.parametrize("damage, fragment", [
    (lambda f: (f / "rounds.csv").write_bytes(b""), "rounds.csv: holds 0 finished rounds"),
    (lambda f: _truncate_rows(f / "rounds.csv", 1), "rounds.csv: holds 0 finished rounds"),
    (lambda f: _truncate_rows(f / "rounds.csv", 2), "rounds.csv: ends at round 0 of policy 'tfl'"),
    (lambda f: _truncate_rows(f / "events.csv", 4), "events.csv: holds 3 event rows"),
    (lambda f: (f / "rounds.csv").write_bytes((f / "rounds.csv").read_bytes()
                                              + (f / "rounds.csv").read_bytes().splitlines(keepends=True)[-1]),
     "rounds.csv: the rounds of policy 'tfl' are not 0..1 once each"),
    (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json: damaged"),
    (lambda f: (f / "rounds.csv").write_bytes(b"\x00\x01\x02garbage\n"), "rounds.csv: not a simfl results file"),
])
def test_lost_or_mangled_rows_are_refused_naming_the_file(runs, tmp_path, capsys, damage, fragment):
    folder = damaged(runs, tmp_path)
    damage(folder)
    events = (folder / "events.csv").read_bytes()
    code, _, err = resume(capsys, folder)
    assert_clear(code, err, fragment)
    assert (folder / "events.csv").read_bytes() == events  # never doubled or rewritten


def test_an_emptied_rounds_file_without_a_manifest_is_refused_too(runs, tmp_path, capsys):
    """A folder from before manifests: events of round 1 mean rounds.csv lost rows."""
    folder = damaged(runs, tmp_path)
    (folder / "manifest.json").unlink()
    (folder / "rounds.csv").write_bytes(b"")
    code, _, err = resume(capsys, folder)
    assert_clear(code, err, "rounds.csv: holds 0 finished rounds", "events.csv has rows of round 1")


def test_a_damaged_or_foreign_checkpoint_is_refused(runs, tmp_path, capsys):
    folder = damaged(runs, tmp_path)
    checkpoint = folder / "checkpoints" / "tfl-round1.pt"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    code, _, err = resume(capsys, folder)
    assert_clear(code, err, f"{checkpoint}: damaged")
    # a checkpoint of another seed's run, copied in
    other = tmp_path / "other"
    assert subprocess_simfl("run", TINY, *RUN, "--out", other, "--set", "task.rounds=2", "--seed", "6").returncode == 0
    shutil.copy(other / "checkpoints" / "tfl-round1.pt", checkpoint)
    code, _, err = resume(capsys, folder)
    assert_clear(code, err, f"{checkpoint}: damaged")
    checkpoint.unlink()
    code, _, err = resume(capsys, folder)
    assert_clear(code, err, f"{checkpoint}: missing")


def test_a_stale_lock_of_a_dead_run_is_taken_over(runs, tmp_path, capsys):
    folder = damaged(runs, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / ".simfl.lock").write_text(json.dumps({"pid": int(dead.stdout), "host": "h", "since": "then"}))
    code, _, err = resume(capsys, folder)
    assert code == 0, err
    assert_same_as_whole(runs, folder)


def file_sums(folder: Path) -> dict[str, str]:
    """Every file of `folder` (plots, plans and checkpoints too) -> its SHA-256."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def set_field(path: Path, line: int, column: str, value: str) -> None:
    """Write `value` into `column` of line `line` (0: the header) of a results CSV."""
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[line].rstrip("\n").split(",")
    fields[lines[0].rstrip("\n").split(",").index(column)] = value
    lines[line] = ",".join(fields) + "\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize("name, line, column, value, fragment", [
    ("rounds.csv", 2, "cum_energy_j", "abc", "line 3 (round 1 of policy 'tfl'), column cum_energy_j: 'abc' is not a number"),
    ("rounds.csv", 1, "accuracy", "0.2x", "line 2 (round 0 of policy 'tfl'), column accuracy: '0.2x' is not a number"),
    ("events.csv", 5, "straggler", "Flase", "line 6 (round 1 of policy 'tfl'), column straggler: 'Flase' is not True"),
    # pandas reads "n/a" as a missing value unless told otherwise; simfl writes missing values as ""
    ("events.csv", 6, "e_cmp_j", "n/a", "line 7 (round 1 of policy 'tfl'), column e_cmp_j: 'n/a' is not a number"),
])
def test_a_value_that_is_not_a_number_is_refused_on_resume_naming_file_line_and_column(runs, tmp_path, capsys, name,
                                                                                       line, column, value, fragment):
    """Only `round` was type-checked: a resume appended after the damaged row and ended in
    `ValueError: Unknown format code 'f'`, after training."""
    folder = damaged(runs, tmp_path)
    set_field(folder / name, line, column, value)
    before = file_sums(folder)
    code, _, err = resume(capsys, folder)
    assert_clear(code, err, f"{folder / name}: {fragment}", "Restore it from a copy, or choose another --out")
    assert file_sums(folder) == before


def test_an_empty_value_is_not_refused(runs, tmp_path, capsys):
    """An empty cell reads as NaN, which simfl writes itself (the accuracy of a round that
    was not evaluated, with task.eval_every > 1): only text where a number belongs is damage."""
    folder = damaged(runs, tmp_path)
    set_field(folder / "rounds.csv", 1, "accuracy", "")
    code, _, err = resume(capsys, folder)
    assert code == 0, err


@pytest.mark.parametrize("targets", ["[0.3, 0.99]", "[0.25]"])  # 0.25 is first reached in round 1, the damaged row
def test_report_names_a_value_that_is_not_a_number_and_writes_nothing(runs, tmp_path, targets):
    """`simfl report` exited 0 with a table of N/A, or, with a target hitting the row,
    ended in `could not convert string to float`."""
    folder = tmp_path / "whole"
    shutil.copytree(runs / "whole", folder)
    set_field(folder / "rounds.csv", 2, "cum_energy_j", "abc")
    before = file_sums(folder)
    result = subprocess_simfl("report", TINY, "--out", folder, "--set", f"task.target_accuracies={targets}")
    code, out, err = result.returncode, result.stdout, result.stderr
    assert_clear(code, err, f"{folder / 'rounds.csv'}: line 3 (round 1 of policy 'tfl'), column cum_energy_j: 'abc'")
    assert out == "" and file_sums(folder) == before  # no table, no summary.csv, no figure redrawn


def test_report_on_a_rounds_file_torn_by_a_crash_advises_the_resume_that_repairs_it(runs, tmp_path, capsys):
    """The advice is followed here: the resume runs the torn round again, and the folder
    then holds what the uninterrupted run wrote, byte for byte."""
    folder = damaged(runs, tmp_path)
    whole_events = (runs / "whole" / "events.csv").read_bytes().splitlines(keepends=True)
    with open(folder / "events.csv", "ab") as f:  # killed while writing round 2's row
        f.writelines(line for line in whole_events if line.startswith(b"tfl,2,"))
    with open(folder / "rounds.csv", "ab") as f:
        f.write((runs / "whole" / "rounds.csv").read_bytes().splitlines(keepends=True)[-1][:30])
    code, _, err = cli(capsys, "report", TINY, "--out", folder)
    assert_clear(code, err, f"{folder / 'rounds.csv'}: the last line is incomplete", "continue the run with --resume")
    code, _, err = resume(capsys, folder)
    assert code == 0, err
    assert "dropped an incomplete last line" in err
    assert_same_as_whole(runs, folder)
    result = subprocess_simfl("report", TINY, "--out", folder)  # its table goes to the real stdout
    assert result.returncode == 0, result.stderr


def test_report_on_a_rounds_file_cut_after_the_run_says_why_resume_cannot_repair_it(runs, tmp_path, capsys):
    """A finished run's last row cut short: the model of the round before it was dropped
    once the row was written, so the round cannot be run again. The report used to advise
    `--resume`, which then refused."""
    folder = tmp_path / "whole"
    shutil.copytree(runs / "whole", folder)
    data = (folder / "rounds.csv").read_bytes()
    (folder / "rounds.csv").write_bytes(data[:-4])
    code, _, err = cli(capsys, "report", TINY, "--out", folder)
    assert_clear(code, err, f"{folder / 'rounds.csv'}: the last line is incomplete", "--resume cannot repair it",
                 "rounds.csv lost its last row", "Choose another --out (or delete the folder) and run again")
    assert "continue the run" not in err
    code, _, resumed = resume(capsys, folder)
    assert_clear(code, resumed, "rounds.csv lost its last row")  # the report told the truth


def _torn_and_cut(runs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "whole"
    shutil.copytree(runs / "whole", folder)
    (folder / "rounds.csv").write_bytes((folder / "rounds.csv").read_bytes()[:-4])
    return folder


def _torn_and_flipped(runs: Path, tmp_path: Path) -> Path:
    folder = damaged(runs, tmp_path)
    with open(folder / "rounds.csv", "ab") as f:
        f.write(b"tfl,2,30.0,4")
    checkpoint = folder / "checkpoints" / "tfl-round1.pt"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    return folder


def _without_manifest(runs: Path, tmp_path: Path) -> Path:
    folder = damaged(runs, tmp_path)
    (folder / "manifest.json").unlink()
    return folder


def _torn_and_replanned(runs: Path, tmp_path: Path) -> Path:
    """A torn line, and a plan file that is not the plan the policy makes now."""
    folder = damaged(runs, tmp_path)
    with open(folder / "rounds.csv", "ab") as f:
        f.write(b"tfl,2,30.0,4")
    set_field(folder / "plans" / "tfl.csv", 1, "f_hz", "1000000000.0")
    return folder


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
@pytest.mark.parametrize("damage, fragment", [
    (_torn_and_cut, "rounds.csv lost its last row"),
    (_torn_and_flipped, "tfl-round1.pt: damaged"),
    (_without_manifest, "tfl-round1.pt: no checksum recorded"),
    (_torn_and_replanned, "policy 'tfl' plans differently now"),
])
def test_a_refused_resume_changes_nothing_in_the_folder(runs, tmp_path, capsys, command, damage, fragment):
    """Every check comes before every change: the torn line is not dropped (nor "its round
    is run again" said), the deleted manifest not written again, before the refusal; the
    plan, made before any change, is checked before any change too."""
    folder = damage(runs, tmp_path)
    if command == "sweep":  # the damaged run as the folder of a swept value (the scenario's own learning rate)
        (tmp_path / "swept").mkdir()
        folder = folder.rename(tmp_path / "swept" / "learning_rate=0.05")
    before = file_sums(folder)
    if command == "run":
        code, _, err = resume(capsys, folder)
    elif command == "sweep":
        code, _, err = cli(capsys, "sweep", TINY, *RUN, "--vary", "task.learning_rate=0.05", "--out",
                           tmp_path / "swept", "--set", "task.rounds=3", "--resume")
        err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("== "))  # its progress
    else:
        code, _, err = cli(capsys, "compare", TINY, "--policies", "tfl", "--out", folder, "--set", "task.rounds=3",
                           "--resume")
    assert_clear(code, err, fragment)
    assert "dropped an incomplete last line" not in err
    assert file_sums(folder) == before


def test_the_text_columns_of_the_results_files_are_the_text_fields_of_the_records():
    """Every other column must hold numbers; the list is kept by hand in the run folder's
    tables (it reads files, not the engine), so it is checked against the records here."""
    import dataclasses
    import typing

    from simfl import engine
    from simfl.runfolder.tables import FLAG_COLUMNS, TEXT_COLUMNS

    text, flags = {"policy", "metric"}, set()  # metric: metrics.csv's name column (RunRecorder.record_metrics)
    for record in (engine.RoundRecord, engine.DeviceRecord):
        for name, kind in typing.get_type_hints(record).items():
            if kind is str:
                text.add(name)
            elif kind is bool:
                flags.add(name)
            else:
                assert kind in (int, float), (record.__name__, name, kind)
        assert {f.name for f in dataclasses.fields(record)} >= set(typing.get_type_hints(record))
    assert (TEXT_COLUMNS, FLAG_COLUMNS) == (text, flags)


def test_a_results_file_reads_back_as_it_was_written(tmp_path):
    """Only "" is a missing value (what pandas writes for NaN): a policy named "NA" or
    "None" stays a name, and inf, -inf and NaN stay numbers."""
    import pandas as pd

    from simfl.runfolder import append_rows, read_csv

    frame = pd.DataFrame({"policy": ["NA", "None", "null"], "round": [0, 1, 2],
                          "battery_j": [float("inf"), 1.5, float("-inf")], "accuracy": [float("nan"), 0.5, 0.25],
                          "straggler": [True, False, True], "outcome": ["ok", "straggler", "battery"]})
    append_rows(tmp_path / "events.csv", frame)
    pd.testing.assert_frame_equal(read_csv(tmp_path / "events.csv"), frame)


# --------------------------------------------------------------------------- concurrent runs


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first run never took its folder"
        time.sleep(0.05)


HELD_POLICY = """
import os, time
from simfl.policies.tfl import Tfl


class Held(Tfl):
    \"\"\"TFL that holds each round until the test lets it go: the two runs surely overlap.\"\"\"
    name = "held"

    def plan_round(self, world, state, context):
        gate = os.environ["SIMFL_TEST_GATE"]
        deadline = time.monotonic() + 120
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
        return super().plan_round(world, state, context)
"""


def test_a_second_run_into_a_busy_folder_is_refused_naming_the_first_pid(tmp_path, capsys):
    out, gate = tmp_path / "busy", tmp_path / "gate"
    policy = tmp_path / "held.py"
    policy.write_text(HELD_POLICY)
    args = ["compare", TINY, "--out", str(out), "--policies", f"{policy}:Held", "--set", "task.rounds=5"]
    first = subprocess.Popen([sys.executable, "-m", "simfl", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "SIMFL_TEST_GATE": str(gate)})
    try:
        _wait_for(out / ".simfl.lock", first)
        for extra in ((), ("--resume",)):
            code, _, err = cli(capsys, *args, *extra)
            assert_clear(code, err, f"{out}: in use by another simfl run (pid {first.pid}")
    finally:
        gate.touch()  # let the first run go on
        _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    rounds = (out / "rounds.csv").read_text().splitlines()
    assert len(rounds) == 1 + 5  # header and each round once


def test_after_sigkill_workers_end_quietly_and_resume_is_byte_identical(runs, tmp_path, capsys):
    out = tmp_path / "killed"
    args = ["run", TINY, *RUN, "--set", "task.rounds=3"]
    proc = subprocess.Popen([sys.executable, "-m", "simfl", *args, "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # kill it inside round 2, while its workers train
        seen.append(line)
        if "round 1/3" in line:
            break
    proc.send_signal(signal.SIGKILL)
    # the workers hold the pipe too: its end comes when the last of them has gone
    rest = proc.stderr.read()
    proc.wait()
    assert "Traceback" not in rest and "BrokenPipeError" not in rest, rest
    code, _, err = cli(capsys, *args, "--out", out, "--resume")
    assert code == 0, err
    assert_same_as_whole(runs, out)


# --------------------------------------------------------------------------- generators and pools


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory):
    from simfl.generative.checkpoint import checkpoint_path
    from simfl.generative.train import TrainedGenerator, train_on_arrays

    rs = np.random.default_rng(0)
    labels = rs.integers(0, 3, 90)
    images = (rs.random((90, 1, 12, 12)) * 60 + labels[:, None, None, None] * 80).astype(np.uint8)
    cache = tmp_path_factory.mktemp("cache")
    path = train_on_arrays("gan", "tiny", images, labels, 3, checkpoint_path(cache, "gan-tiny"), seed=2,
                           progress=None, steps=5)
    return cache, TrainedGenerator.from_path(path)


def test_pools_follow_the_generators_cache_and_nothing_goes_elsewhere(tiny_gan, tmp_path, monkeypatch):
    from simfl.generative.pool import SynthesisService

    cache, generator = tiny_gan
    elsewhere = tmp_path / "env-cache"
    monkeypatch.setenv("SIMFL_CACHE", str(elsewhere))
    service = SynthesisService(generator, progress=None)
    service.take(0, 5)
    assert service.dir.is_relative_to(cache / "pools")
    assert (service.dir / "class_000.npy").exists()
    assert not elsewhere.exists()


def test_a_damaged_pool_file_is_named_and_regenerated_identically(tiny_gan, tmp_path):
    from simfl.generative.pool import SynthesisService

    _, generator = tiny_gan
    lines: list[str] = []
    service = SynthesisService(generator, tmp_path, progress=lines.append)
    first = [service.take(c, 40).copy() for c in range(3)]
    pool = service.dir / "class_001.npy"
    # blank images with a valid .npy header
    np.save(pool, np.zeros_like(np.load(pool)))
    lines.clear()
    assert np.array_equal(service.take(1, 40), first[1])
    assert any(f"{pool}: damaged" in line and "SHA-256" in line for line in lines), lines
    # another class's file and its checksum, copied over class 2
    for suffix in (".npy", ".json"):
        shutil.copy(service.dir / f"class_000{suffix}", service.dir / f"class_002{suffix}")
    lines.clear()
    assert np.array_equal(service.take(2, 40), first[2])
    assert any("another generator, sampler or class" in line for line in lines), lines
    # the wrong shape, checksum removed
    np.save(service.dir / "class_000.npy", np.zeros((64, 1, 5, 5), np.uint8))
    (service.dir / "class_000.json").unlink()
    assert np.array_equal(service.take(0, 40), first[0])


def test_a_damaged_generator_checkpoint_is_refused(tiny_gan, tmp_path):
    from simfl.errors import SimflError
    from simfl.generative.checkpoint import load_checkpoint

    cache, generator = tiny_gan
    copy = tmp_path / "generators" / generator.path.name
    copy.parent.mkdir()
    shutil.copy(generator.path, copy)
    shutil.copy(generator.path.with_name(generator.path.name + ".sha256"), copy.with_name(copy.name + ".sha256"))
    load_checkpoint(copy)
    data = bytearray(copy.read_bytes())
    data[-100] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(SimflError, match="damaged"):
        load_checkpoint(copy)


def test_a_generator_checkpoint_without_its_checksum_is_refused(tiny_gan, tmp_path, capsys):
    """Its .sha256 deleted, a checkpoint loaded unchecked, even with a flipped byte. Now it
    is refused with what to do; and the way out the message gives for a checkpoint the
    user trusts (one from a simfl before checksums) works as written."""
    import re

    from simfl.generative.checkpoint import DamagedCheckpoint, load_checkpoint
    from simfl.generative.train import scenario_checkpoint
    from simfl.scenario import load_scenario

    _, generator = tiny_gan
    cache = tmp_path / "cache"
    path = scenario_checkpoint("gan", load_scenario(TINY, overrides=["generator.config=tiny"]), cache)
    path.parent.mkdir(parents=True)
    flipped = bytearray(generator.path.read_bytes())
    flipped[-100] ^= 0x01
    path.write_bytes(bytes(flipped))  # a flipped byte, and no .sha256 beside it
    sums = path.with_name(path.name + ".sha256")
    with pytest.raises(DamagedCheckpoint, match=r"no checksum beside it \(.*\.sha256 is missing\)"):
        load_checkpoint(path)
    code, _, err = cli(capsys, "generator", "sample", TINY, "--kind", "gan", "--cache-dir", cache,
                       "--set", "generator.config=tiny", "--out", tmp_path / "grid.png")
    assert_clear(code, err, f"{path}: no checksum beside it", "damage cannot be ruled out",
                 "delete it and train the generator again with:", "simfl generator train --kind gan")
    assert not sums.exists() and path.read_bytes() == bytes(flipped)  # refused, not retrained over
    # a checkpoint the user trusts, its sum recorded with the message's own command: used again
    path.write_bytes(generator.path.read_bytes())
    command = re.search(r"record its sum with `([^`]+)`", err).group(1)
    subprocess.run(command, shell=True, check=True)
    assert load_checkpoint(path)["meta"]["kind"] == "gan"


def test_no_traceback_reaches_a_user_through_the_real_command(tmp_path):
    """One subprocess per class, so the interpreter's own exit path is exercised too."""
    for args in (["validate", TINY, "--set", "task.rounds=1e300"],
                 ["run", TINY, "--policy", "tfl", "--out", str(tmp_path / "x"), "--seed", str(2**80)],
                 ["plan", TINY, "--policy", str(tmp_path / "none.py") + ":X"]):
        result = subprocess_simfl(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("simfl: error:") == 1
    assert os.environ.get("SIMFL_CACHE")  # the suite's temporary cache (conftest)


def test_an_adoption_cut_short_is_redone_to_the_sequential_rows(tmp_path):
    """A Ray task's run is adopted into its comparison folder (runfolder.adopt_run):
    events first, rounds.csv last. If the driver dies in between, the folder holds the
    run's events but no rounds; adopting again drops them first, and the folder then
    holds what a sequential comparison writes."""
    import pandas as pd

    from simfl import runfolder
    from simfl.compare import compare
    from simfl.experiment import prepare, run_policy
    from simfl.registry import create
    from simfl.scenario import load_scenario

    scenario = load_scenario(TINY, overrides=["task.rounds=2"])
    reference, dest, stage = tmp_path / "sequential", tmp_path / "parallel", tmp_path / "parallel" / ".parts" / "tfl"
    compare(scenario, reference, ["equal-share", "tfl"], progress=None)
    compare(scenario, dest, ["equal-share"], progress=None)
    run_policy(prepare(scenario), create("tfl"), stage, progress=None)
    runfolder.release(stage)
    with open(dest / "events.csv", "ab") as f:  # the cut-short adoption: tfl's events, no rounds
        f.write((stage / "events.csv").read_bytes().partition(b"\n")[2])
    runfolder.adopt_run(stage, dest, "tfl")
    assert (dest / "rounds.csv").read_bytes() == (reference / "rounds.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_csv(dest / "events.csv"), pd.read_csv(reference / "events.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(dest / "similarity.csv"), pd.read_csv(reference / "similarity.csv"))
    assert not stage.parent.exists()
    assert (dest / "checkpoints" / "tfl-round1.pt").exists()
    runfolder.verify_checkpoint(dest / "checkpoints" / "tfl-round1.pt")  # its sum moved into the manifest
