"""A corpus of bad inputs and damaged run folders, run through the real `simfl` command,
and a table of what became of them (issue #12).

    python benchmarks/bad_inputs.py                  # the code of this checkout
    python benchmarks/bad_inputs.py --repo /tmp/old  # another checkout (e.g. an older commit)

Each case is classified as
- clear: exit status 2 with one message (`simfl: error: ...` or argparse's usage error),
  no traceback, no blank line;
- repaired: a damaged folder that the command repaired: exit 0 and rounds.csv/events.csv
  byte-identical to an uninterrupted run (or, for `| head -1`, a quiet end);
- traceback: a Python traceback on stderr, or an exit status other than 0 and 2;
- misleading: a clear-looking error that is not the whole truth: its advice, followed,
  fails (`report` advising a `--resume` that is then refused), or the refused command
  changed the folder first;
- silent: accepted (exit 0, or still running at the time limit) although the input is
  nonsense or the result is wrong.
Every command runs with SIMFL_CACHE pointing at a temporary directory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parents[1]
CLASSES = ("bad --set values", "bad seeds", "bad files", "bad policies", "bad arguments", "damaged folders")


@dataclass
class Outcome:
    kind: str  # clear | repaired | traceback | misleading | silent
    case: str
    detail: str = ""


@dataclass
class Probe:
    repo: Path
    work: Path
    timeout_s: float
    outcomes: dict[str, list[Outcome]] = field(default_factory=lambda: {c: [] for c in CLASSES})

    def simfl(self, *args: str, timeout_s: float | None = None) -> subprocess.CompletedProcess | None:
        env = {**os.environ, "PYTHONPATH": str(self.repo), "SIMFL_CACHE": str(self.work / "cache")}
        try:
            return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], cwd=self.repo, env=env,
                                  capture_output=True, text=True, timeout=timeout_s or self.timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def record(self, klass: str, case: str, result: subprocess.CompletedProcess | None,
               correct: Callable[[], bool] | None = None,
               misleads: Callable[[subprocess.CompletedProcess], str] | None = None) -> None:
        """Classify one bad input's result. `correct`: for damage that may be repaired, whether
        an exit 0 left the right files. `misleads`: for a clear error, what makes it
        misleading ("" when nothing does)."""
        kind, detail = classify(result)
        if kind == "silent" and correct is not None and result is not None and correct():
            kind = "repaired"
        if kind == "clear" and misleads is not None and result is not None:
            why = misleads(result)
            if why:
                kind, detail = "misleading", why
        self.outcomes[klass].append(Outcome(kind, case, detail))
        print(f"  {kind:9s} {klass}: {case[:90]}", file=sys.stderr, flush=True)


def classify(result: subprocess.CompletedProcess | None) -> tuple[str, str]:
    if result is None:
        return "silent", "still running at the time limit"
    err = result.stderr.strip()
    if "Traceback (most recent call last)" in err:
        return "traceback", err.splitlines()[-1] if err else ""
    if result.returncode == 0:
        return "silent", ""
    if result.returncode == 2 and (err.startswith("simfl: error:") or "error:" in err.splitlines()[-1]) \
            and "\n\n" not in err:
        return "clear", err.splitlines()[0][:120]
    return "traceback", f"exit {result.returncode}: {err[-200:]}"


# --------------------------------------------------------------------------- the corpus

TINY = "tests/data/tiny.yaml"

INTEGER_FIELDS = ("task.rounds", "task.batch_size", "task.local_epochs", "task.samples_per_device",
                  "task.public_samples", "task.eval_samples", "optimisation.dgen_max", "generator.sampling_steps",
                  "devices.count", "optimisation.cross_entropy.iterations")
FLOAT_FIELDS = ("task.learning_rate", "task.dirichlet_z", "optimisation.t_max_s", "optimisation.zeta",
                "optimisation.omega_cycles_per_sample", "cells.0.bandwidth_hz", "cells.0.radius_m",
                "cells.0.path_loss.slope_db", "generator.guidance")


def set_values() -> list[str]:
    cases = []
    for name in INTEGER_FIELDS:
        cases += [f"{name}=1e300", f"{name}={'9' * 40}", f"{name}=.inf"]
    for name in FLOAT_FIELDS:
        cases += [f"{name}=.inf", f"{name}=.nan", f"{name}=1e999"]
    cases += [
        "devices.f_max_hz={uniform: [1e9, .inf]}", "devices.eps={values: [4e-27, .nan, 5e-27]}",
        "devices.p_max_dbm=.inf", "devices.p_max_dbm={uniform: [-.inf, 20]}", "devices.distance_m={linspace: [1, .inf]}",
        "cells.0.position_m=[0, .nan]", "task.target_accuracies=[.nan]", "task.model=vgg9", "task.eval_samples=20000",
        "task.public_samples=60000", "optimisation.cross_entropy.samples=1e300", "task={rounds: 2, rounds: 3}",
        # the aggregation modes and the training-side algorithms' settings
        "aggregation.mode=fedsgd", "aggregation.buffer_size=0", "aggregation.max_concurrency=4",
        "aggregation.staleness={polynomial: -1}", "aggregation.staleness=hinge", "aggregation.mixing=1.5",
        "aggregation.eval_every_s=-2", "aggregation={eval_every: 2, eval_every_s: 1}", "task.max_time_s=0",
        "policy_settings.fedprox.mu=-1", "policy_settings.fedadam.beta1=1", "policy_settings.nosuch.x=1",
        # finite but unphysical: they passed validation, then made infinite powers and gains
        # (or uploads of inf s) that failed later, blaming another cause
        "devices.p_max_dbm=1e6", "devices.p_max_dbm={uniform: [20, 1e4]}", "cells.0.path_loss.intercept_db=-1e6",
        "cells.0.path_loss.slope_db=1e6", "cells.0.path_loss.shadowing_std_db=1e3", "cells.0.bandwidth_hz=1e308",
        "cells.0.noise_dbm_per_hz=-1e6", "cells.0.radius_m=1e300", "cells.0.position_m=[0, 1e300]",
        "devices.f_max_hz=1e300", "devices.eps=1e300", "devices.distance_m={linspace: [1, 1e300]}",
        "optimisation.omega_cycles_per_sample=1e300", "cells.0.downlink={bandwidth_hz: 1e7, power_dbm: 1e6}",
        "optimisation.t_max_s=1e12", "optimisation.t_max_s=1e300",
        "cells={hex_grid: {rings: 1000000, spacing_m: 1000, radius_m: 500, bandwidth_hz: 1e7}}",
        # the dynamics' fields: a walk at 1e300 m/s, periods and batteries that never end
        "devices.mobility={random_waypoint: {speed_mps: 1e300}}", "devices.availability={markov: {mean_on_s: 1e300, "
        "mean_off_s: 300}}", "devices.mobility={random_waypoint: {speed_mps: 1.5, pause_s: 1e300}}",
        "devices.battery_j=1e300",
        # the network's rules (the channel in time, handover, interference and reuse, the carrier)
        "network.channel_step_s=0", "network.handover.hysteresis_db=-3", "network.handover={ttt: 1}",
        "network.interference=full", "network.allocator=random", "cells.0.carrier_hz=2e12", "cells.0.carrier_hz=0",
        "cells={hex_grid: {rings: 1, spacing_m: 1000, radius_m: 577, bandwidth_hz: 1e7, reuse: 4}}",
        "cells.0.path_loss.fading={clarke: {min_doppler_hz: -1}}",
    ]
    return cases


POLICY_FILE = '''
import sys
from simfl.policy import Policy
from simfl.policies.tfl import Tfl


class ReturnsNone(Policy):
    name = "returns-none"
    def plan(self, world, context):
        return None


class ReturnsList(Policy):
    name = "returns-list"
    def plan(self, world, context):
        return [1, 2]


class ReturnsDict(Policy):
    name = "returns-dict"
    def plan(self, world, context):
        return {"f_hz": 1}


class Raises(Policy):
    name = "raises"
    def plan(self, world, context):
        raise ValueError("no plan")


class RaisesKeyError(Policy):
    name = "raises-keyerror"
    def plan(self, world, context):
        return {}["x"]


class Exits(Policy):
    name = "exits"
    def plan(self, world, context):
        sys.exit(0)


class Abstract(Policy):
    name = "abstract"


class Slashed(Tfl):
    name = "a/b"


class Unnamed(Tfl):
    name = ""


class BadSelect(Tfl):
    name = "bad-select"
    def select(self, state, context):
        raise ValueError("nobody today")


class BadInit(Tfl):
    name = "bad-init"
    def __init__(self):
        raise RuntimeError("cannot start")


class Malformed(Tfl):
    name = "malformed"
    def plan(self, world, context):
        plan = super().plan(world, context)
        object.__setattr__(plan, "f_hz", "fast")
        return plan


class Twin(Tfl):
    name = "tfl"
'''

BROKEN_MODULES = {"syntax.py": "def plan(:\n", "imports.py": "import no_such_module_anywhere\n",
                  "raises.py": "raise KeyError('at import')\n", "exits.py": "import sys\nsys.exit(0)\n"}


def run_value_cases(p: Probe) -> None:
    for item in set_values():
        p.record("bad --set values", f"plan --set {item}", p.simfl("plan", TINY, "--policy", "tfl", "--set", item))
    afile = p.work / "a-file"
    afile.write_text("x")
    p.record("bad --set values", "generator.cache_dir=<a file> (fimi run)",
             p.simfl("run", TINY, "--policy", "fimi", "--out", p.work / "cd", "--set", f"generator.cache_dir={afile}",
                     "--set", "generator.config=tiny", "--set", "task.rounds=1"))


def run_seed_cases(p: Probe) -> None:
    for seed in (str(2**80), str(2**64), str(2**63), "-1", "1e3"):
        p.record("bad seeds", f"plan --seed {seed}", p.simfl("plan", TINY, "--policy", "tfl", "--seed", seed))
    for value in (".inf", "1e300", "-5", "[1]"):
        p.record("bad seeds", f"plan --set seed={value}", p.simfl("plan", TINY, "--policy", "tfl", "--set", f"seed={value}"))
    p.record("bad seeds", "plan --set task.public_split_seed=1e30",
             p.simfl("plan", TINY, "--policy", "tfl", "--set", "task.public_split_seed=1e30"))
    for seeds in ("1-100000000", f"1,{2**70}", "3,-1"):
        p.record("bad seeds", f"compare --seeds {seeds}",
                 p.simfl("compare", TINY, "--policies", "tfl", "--seeds", seeds, "--out", p.work / "seeds",
                         timeout_s=60))


def run_file_cases(p: Probe) -> None:
    base = (p.repo / TINY).read_text()
    files = {
        "latin-1.yaml": base.replace("name: tiny", "name: caf\xe9").encode("latin-1"),
        "utf-16.yaml": base.encode("utf-16"),
        "binary.yaml": bytes(range(256)) * 4,
        "empty.yaml": b"",
        "list.yaml": b"- 1\n- 2\n",
        "dup-top.yaml": (base + "task:\n  rounds: 7\n").encode(),
        "dup-nested.yaml": base.replace("  rounds: 3\n", "  rounds: 3\n  rounds: 1000000\n").encode(),
        "dup-cell-key.yaml": base.replace("radius_m: 300,", "radius_m: 300, radius_m: 5,").encode(),
        "deep.yaml": ("a: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
        "python-tag.yaml": b"name: !!python/object/apply:os.system ['true']\n",
        "nul.yaml": base.encode() + b"\x00\n",
        "huge.yaml": b"# " + b"x" * 30_000_000 + b"\n",
    }
    for name, data in files.items():
        path = p.work / name
        path.write_bytes(data)
        p.record("bad files", f"validate {name}", p.simfl("validate", path))
    p.record("bad files", "validate a directory", p.simfl("validate", p.work))
    p.record("bad files", "validate a missing file", p.simfl("validate", p.work / "missing.yaml"))


def run_policy_cases(p: Probe) -> None:
    path = p.work / "mine.py"
    path.write_text(POLICY_FILE)
    for cls in ("ReturnsNone", "ReturnsList", "ReturnsDict", "Raises", "RaisesKeyError", "Exits", "Abstract",
                "Slashed", "Unnamed", "BadInit", "Malformed", "Missing"):
        p.record("bad policies", f"plan --policy mine.py:{cls}", p.simfl("plan", TINY, "--policy", f"{path}:{cls}"))
    for name, source in BROKEN_MODULES.items():
        module = p.work / name
        module.write_text(source)
        p.record("bad policies", f"plan --policy {name}:X", p.simfl("plan", TINY, "--policy", f"{module}:X"))
    out = p.work / "cmp-raise"
    result = p.simfl("compare", TINY, "--policies", f"tfl,{path}:Raises", "--out", out)
    # a clear error after tfl already trained still wasted the run: count it as what it is
    p.record("bad policies", "compare tfl,<raises in plan()>", result)
    p.record("bad policies", "compare tfl,<another policy named tfl>",
             p.simfl("compare", TINY, "--policies", f"tfl,{path}:Twin", "--out", p.work / "cmp-twin"))
    p.record("bad policies", "compare --policies ,,", p.simfl("compare", TINY, "--policies", ",,", "--out", p.work / "c"))
    for name in ("tfl@fedsgd", "scaffold@fedbuff", "fimi+tfl", "fedprox+scaffold", "fimi+fedprox+scaffold",
                 "fimi+nosuch"):
        p.record("bad policies", f"plan --policy {name}", p.simfl("plan", TINY, "--policy", name))
    p.record("bad policies", "run with a select() hook that raises",
             p.simfl("run", TINY, "--policy", f"{path}:BadSelect", "--out", p.work / "sel"))


def run_argument_cases(p: Probe) -> None:
    afile = p.work / "out-file"
    afile.write_text("x")
    p.record("bad arguments", "run --out <a file>", p.simfl("run", TINY, "--policy", "tfl", "--out", afile))
    p.record("bad arguments", "run --out <below a file>",
             p.simfl("run", TINY, "--policy", "tfl", "--out", afile / "x"))
    p.record("bad arguments", "run --out /proc/forbidden", p.simfl("run", TINY, "--policy", "tfl", "--out", "/proc/x/y"))
    for sizes in ("10,abc", "0,5,10", "10"):
        p.record("bad arguments", f"fit-curve --sizes {sizes}",
                 p.simfl("fit-curve", TINY, "--sizes", sizes, "--out", p.work / "fc", "--epochs", "1", timeout_s=60))
    p.record("bad arguments", "fit-curve --epochs -3",
             p.simfl("fit-curve", TINY, "--epochs", "-3", "--out", p.work / "fc2", timeout_s=60))
    p.record("bad arguments", "sweep --vary task.rounds=", p.simfl("sweep", TINY, "--vary", "task.rounds=",
                                                                   "--out", p.work / "sw"))
    # a value given twice (or twice once parsed): the second run would land in the first's folder
    for index, values in enumerate(("0.05,0.05", "0.05,5e-2")):
        p.record("bad arguments", f"sweep --vary task.learning_rate={values}",
                 p.simfl("sweep", TINY, "--policy", "tfl", "--vary", f"task.learning_rate={values}",
                         "--out", p.work / f"sw-twice-{index}"))
    p.record("bad arguments", "report on an empty folder", p.simfl("report", TINY, "--out", p.work / "nothing"))
    p.record("bad arguments", "generator sample --classes 1,abc",
             p.simfl("generator", "sample", TINY, "--classes", "1,abc", "--out", p.work / "s.npz"))
    for mode in ("exact", ""):
        p.record("bad arguments", f"--numerics {mode!r}", p.simfl("validate", TINY, "--numerics", mode))
    env = {**os.environ, "PYTHONPATH": str(p.repo), "SIMFL_CACHE": str(p.work / "cache")}
    pipe = subprocess.run(f"{sys.executable} -m simfl plan {TINY} --policy tfl | head -1", shell=True,
                          cwd=p.repo, env=env, capture_output=True, text=True)
    kind = "traceback" if "Traceback" in pipe.stderr else "repaired"
    p.outcomes["bad arguments"].append(Outcome(kind, "plan ... | head -1"))
    print(f"  {kind:9s} bad arguments: plan | head -1", file=sys.stderr)


def run_folder_cases(p: Probe) -> None:
    run = ("run", TINY, "--policy", "tfl")
    whole, part = p.work / "whole", p.work / "part"
    for folder, rounds in ((whole, 3), (part, 2)):
        result = p.simfl(*run, "--out", folder, "--set", f"task.rounds={rounds}")
        assert result is not None and result.returncode == 0, result and result.stderr
    other = p.work / "other-seed"
    p.simfl(*run, "--out", other, "--set", "task.rounds=2", "--seed", "6")

    def same(folder: Path) -> Callable[[], bool]:
        return lambda: all((folder / n).exists() and (folder / n).read_bytes() == (whole / n).read_bytes()
                           for n in ("rounds.csv", "events.csv"))

    def lines(path: Path) -> list[bytes]:
        return path.read_bytes().splitlines(keepends=True)

    def crash_in_round(f: Path) -> None:
        with open(f / "events.csv", "ab") as out:
            out.writelines(line for line in lines(whole / "events.csv") if line.startswith(b"tfl,2,"))
        with open(f / "rounds.csv", "ab") as out:
            out.write(lines(whole / "rounds.csv")[-1][:20])

    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def set_field(path: Path, line: int, column: str, value: str) -> None:
        """`value` into `column` of line `line` (0: the header)."""
        rows = path.read_text().splitlines(keepends=True)
        fields = rows[line].rstrip("\n").split(",")
        fields[rows[0].rstrip("\n").split(",").index(column)] = value
        rows[line] = ",".join(fields) + "\n"
        path.write_text("".join(rows))

    def sums(folder: Path) -> dict[str, str]:
        return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(folder.rglob("*")) if f.is_file()}

    damage: dict[str, Callable[[Path], object]] = {
        "torn last line of rounds.csv": lambda f: open(f / "rounds.csv", "ab").write(b"tfl,2,30.0,4"),
        "torn last line of events.csv": lambda f: open(f / "events.csv", "ab").write(b"tfl,2,1,30"),
        "killed between events and rounds row": crash_in_round,
        "emptied rounds.csv": lambda f: (f / "rounds.csv").write_bytes(b""),
        "rounds.csv lost its last row": lambda f: (f / "rounds.csv").write_bytes(b"".join(lines(f / "rounds.csv")[:-1])),
        "events.csv lost a row": lambda f: (f / "events.csv").write_bytes(b"".join(lines(f / "events.csv")[:-2]
                                                                                  + lines(f / "events.csv")[-1:])),
        "rounds.csv row doubled": lambda f: open(f / "rounds.csv", "ab").write(lines(f / "rounds.csv")[-1]),
        "rounds.csv replaced by garbage": lambda f: (f / "rounds.csv").write_bytes(b"\x00\x01garbage\n"),
        "checkpoint bit flip": lambda f: flip(f / "checkpoints" / "tfl-round1.pt"),
        "checkpoint of another seed": lambda f: shutil.copy(other / "checkpoints" / "tfl-round1.pt",
                                                            f / "checkpoints" / "tfl-round1.pt"),
        "checkpoint deleted": lambda f: (f / "checkpoints" / "tfl-round1.pt").unlink(),
        "stale lock of a dead run": lambda f: (f / ".simfl.lock").write_text('{"pid": 999999, "host": "h", "since": "x"}'),
        "a non-number in rounds.csv's cum_energy_j": lambda f: set_field(f / "rounds.csv", 2, "cum_energy_j", "abc"),
        "a non-number in events.csv's e_cmp_j": lambda f: set_field(f / "events.csv", 6, "e_cmp_j", "n/a"),
    }
    for name, hurt in damage.items():
        folder = p.work / f"d-{len(p.outcomes['damaged folders'])}"
        shutil.copytree(part, folder)
        hurt(folder)
        p.record("damaged folders", f"--resume after {name}",
                 p.simfl(*run, "--out", folder, "--set", "task.rounds=3", "--resume"), same(folder))
    for label, extra in (("another --seed", ("--seed", "6")), ("another learning rate", ("--set", "task.learning_rate=0.1"))):
        folder = p.work / f"d-{len(p.outcomes['damaged folders'])}"
        shutil.copytree(part, folder)
        p.record("damaged folders", f"--resume with {label}",
                 p.simfl(*run, "--out", folder, "--set", "task.rounds=3", "--resume", *extra))
    # a refused run must leave the plan files as they were
    folder = p.work / "d-plans"
    shutil.copytree(part, folder)
    plan = (folder / "plans" / "tfl.csv").read_bytes()
    result = p.simfl(*run, "--out", folder, "--seed", "6")
    kind, detail = classify(result)
    if kind == "clear" and (folder / "plans" / "tfl.csv").read_bytes() != plan:
        kind, detail = "silent", "refused, but the plan files were overwritten"
    p.outcomes["damaged folders"].append(Outcome(kind, "run without --resume, another seed: plan files", detail))
    print(f"  {kind:9s} damaged folders: refused run keeps plan files", file=sys.stderr)

    # report on a torn rounds.csv: its advice followed
    def advice_fails(folder: Path) -> Callable[[subprocess.CompletedProcess], str]:
        def misleads(result: subprocess.CompletedProcess) -> str:
            if "--resume" not in result.stderr or "cannot repair" in result.stderr:
                return ""
            resumed = p.simfl(*run, "--out", folder, "--set", "task.rounds=3", "--resume")
            if resumed is None or resumed.returncode != 0:
                said = resumed.stderr.strip().splitlines()[-1][:120] if resumed and resumed.stderr.strip() else "hangs"
                return f"advises --resume, which then fails: {said}"
            return "" if same(folder)() else "advises --resume, which then writes other rows"
        return misleads

    for name, source, hurt in (("after the run", whole, lambda f: (f / "rounds.csv").write_bytes(
                                   (f / "rounds.csv").read_bytes()[:-4])),
                               ("by a crash", part, crash_in_round)):
        folder = p.work / f"d-{len(p.outcomes['damaged folders'])}"
        shutil.copytree(source, folder)
        hurt(folder)
        p.record("damaged folders", f"report on a rounds.csv torn {name}, its advice followed",
                 p.simfl("report", TINY, "--out", folder), misleads=advice_fails(folder))
    # report on a value that is not a number, with the default targets and one the damaged row reaches
    for targets in ("[0.3, 0.99]", "[0.25]"):
        folder = p.work / f"d-{len(p.outcomes['damaged folders'])}"
        shutil.copytree(whole, folder)
        set_field(folder / "rounds.csv", 2, "cum_energy_j", "abc")
        p.record("damaged folders", f"report on a non-number in rounds.csv, targets {targets}",
                 p.simfl("report", TINY, "--out", folder, "--set", f"task.target_accuracies={targets}"))

    # a refused resume must leave the folder as it was, byte for byte
    def changes(folder: Path) -> Callable[[subprocess.CompletedProcess], str]:
        before = sums(folder)
        return lambda result: "" if sums(folder) == before else "refused, but changed the folder first"

    def torn_and_flipped(f: Path) -> None:
        with open(f / "rounds.csv", "ab") as out:
            out.write(b"tfl,2,30.0,4")
        flip(f / "checkpoints" / "tfl-round1.pt")

    refusals: dict[str, tuple[Callable[[Path], object], tuple[str, ...]]] = {
        "--resume refused after a torn line and a bit flip": (torn_and_flipped, run),
        "--resume refused without manifest.json": (lambda f: (f / "manifest.json").unlink(), run),
        "compare --resume refused after a torn line and a bit flip": (
            torn_and_flipped, ("compare", TINY, "--policies", "tfl")),
    }
    for name, (hurt, command) in refusals.items():
        folder = p.work / f"d-{len(p.outcomes['damaged folders'])}"
        shutil.copytree(part, folder)
        hurt(folder)
        misleads = changes(folder)
        p.record("damaged folders", f"{name}: folder unchanged",
                 p.simfl(*command, "--out", folder, "--set", "task.rounds=3", "--resume"), misleads=misleads)
    # a generator checkpoint with a flipped byte and its .sha256 deleted
    gan = ("--kind", "gan", "--set", "generator.config=tiny")
    trained = p.simfl("generator", "train", TINY, *gan)
    assert trained is not None and trained.returncode == 0, trained and trained.stderr
    checkpoint = Path(trained.stdout.strip().split(": ", 1)[1])
    flip(checkpoint)
    checkpoint.with_name(checkpoint.name + ".sha256").unlink()
    p.record("damaged folders", "generator checkpoint: a bit flip, its .sha256 deleted",
             p.simfl("generator", "sample", TINY, *gan, "--out", p.work / "grid.png"))
    # two comparisons into one folder at once
    folder = p.work / "d-concurrent"
    env = {**os.environ, "PYTHONPATH": str(p.repo), "SIMFL_CACHE": str(p.work / "cache")}
    args = [sys.executable, "-m", "simfl", "compare", TINY, "--policies", "tfl", "--out", str(folder),
            "--set", "task.rounds=12"]
    first = subprocess.Popen(args, cwd=p.repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.run(args, cwd=p.repo, env=env, capture_output=True, text=True, timeout=600)
    first.communicate(timeout=600)
    rows = len(lines(folder / "rounds.csv")) - 1 if (folder / "rounds.csv").exists() else 0
    kind, detail = classify(second)
    if rows != 12:
        kind, detail = "silent", f"rounds.csv holds {rows} rows for 12 rounds"
    p.outcomes["damaged folders"].append(Outcome(kind, "two compares into one folder at once", detail))
    print(f"  {kind:9s} damaged folders: two compares at once ({detail})", file=sys.stderr)


def table(outcomes: dict[str, list[Outcome]]) -> str:
    kinds = ("clear", "repaired", "traceback", "misleading", "silent")
    rows = [("class", "tried", "clear errors", "repaired", "tracebacks", "misleading", "silently accepted")]
    totals = [0] * 6
    for klass, items in outcomes.items():
        counts = [len(items)] + [sum(o.kind == k for o in items) for k in kinds]
        totals = [a + b for a, b in zip(totals, counts)]
        rows.append((klass, *map(str, counts)))
    rows.append(("total", *map(str, totals)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout whose simfl is probed (default: this one)")
    parser.add_argument("--timeout", type=float, default=90, help="seconds before a command counts as running on")
    parser.add_argument("--only", choices=CLASSES, action="append", help="run only these classes")
    parser.add_argument("--details", action="store_true", help="also list every case that was not a clear error")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="simfl-bad-inputs-"))
    probe = Probe(args.repo.resolve(), work, args.timeout)
    runners = dict(zip(CLASSES, (run_value_cases, run_seed_cases, run_file_cases, run_policy_cases,
                                 run_argument_cases, run_folder_cases)))
    started = time.monotonic()
    try:
        for klass, runner in runners.items():
            if not args.only or klass in args.only:
                print(f"== {klass}", file=sys.stderr, flush=True)
                runner(probe)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"simfl at {probe.repo}  ({time.monotonic() - started:.0f} s)\n")
    print(table({k: v for k, v in probe.outcomes.items() if v}))
    if args.details:
        print()
        for klass, items in probe.outcomes.items():
            for o in items:
                if o.kind not in ("clear", "repaired"):
                    print(f"{o.kind:9s} {klass}: {o.case}  {o.detail[:150]}")


if __name__ == "__main__":
    main()
