"""The shipped scenarios' golden runs: each case is a `simfl run` whose rounds.csv and
events.csv are stored under tests/golden/<case>/ and compared by test_golden.py. The
static scenarios' files were written by the code before the run-long engine (issue "One
simulation per run"; SST's and CLSD's moved on purpose there, see the commits), the
dynamic scenario's by that engine.

Rounds and test images are cut so the whole set runs in about a minute; everything
else is the scenario as shipped. The "tiny" generator (trained in seconds into a
temporary cache) stands in for the diffusion model where a policy synthesises.
Regenerate only when an issue changes results on purpose, and say so in its note:
    python tests/golden/cases.py

Training (accuracy, loss) depends on the CPU's vector instructions: torch dispatches its
kernels by the CPU capability (AVX2, AVX512, ...), which changes the last bits of a step
and, over rounds, the accuracy. rounds.csv and events.csv were written on a CPU with
AVX-512; a machine of another capability keeps its training columns in
`training-<capability>.csv` beside them, written by
    python tests/golden/cases.py --training
on such a machine (by the same code as the main files, so a change of results shows on
every machine). Everything else the simulator computes does not depend on training.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FILES = ("rounds.csv", "events.csv")
TRAINING_COLUMNS = ("accuracy", "loss")
MAIN_CAPABILITY = "AVX512"  # the CPU capability torch used when rounds.csv/events.csv were written
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
}


def run_case(name: str, out: Path, cache: Path) -> Path:
    """Run one case with the CLI into `out`; the generator cache is `cache`."""
    import os

    from simfl.cli import main

    os.environ["SIMFL_CACHE"] = str(cache)  # the synthesis pools too, not only the generators
    scenario, policy, overrides = CASES[name]
    args = ["run", str(ROOT / "scenarios" / scenario), "--policy", policy, "--out", str(out)]
    for item in [*overrides, f"generator.cache_dir={cache}"]:
        args += ["--set", item]
    code = main(args)
    if code != 0:
        raise RuntimeError(f"golden case {name}: simfl run exited {code}")
    return out


def cpu_capability() -> str:
    """The vector instruction set torch's kernels run with here (AVX2, AVX512, ...)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def training_file(name: str, capability: str) -> Path:
    """Where a case keeps the training columns of a CPU capability other than the main one."""
    return HERE / name / f"training-{capability}.csv"


if __name__ == "__main__":
    import pandas as pd

    training_only = "--training" in sys.argv
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(CASES)
    capability = cpu_capability()
    if not training_only and capability != MAIN_CAPABILITY:
        sys.exit(f"this CPU runs torch with {capability}, the main golden files were written with {MAIN_CAPABILITY}: "
                 "write its training columns with --training, or change MAIN_CAPABILITY on purpose")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = run_case(name, Path(tmp) / name, Path(tmp) / "cache")
            target = HERE / name
            target.mkdir(exist_ok=True)
            if training_only:
                rounds = pd.read_csv(out / "rounds.csv", dtype=str, keep_default_na=False)
                rounds[["round", *TRAINING_COLUMNS]].to_csv(training_file(name, capability), index=False)
                print(f"wrote {training_file(name, capability)}")
                continue
            for file in FILES:
                if (out / file).exists():  # CLSD: no device, so no events.csv
                    shutil.copyfile(out / file, target / file)
            print(f"wrote {target}")
