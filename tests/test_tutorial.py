"""The README's policy tutorial ("A policy", which docs/policies.md includes), step by
step: the policy file exactly as printed there, found by path, planned and compared
through the command line."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.yaml")


def tutorial_source() -> str:
    readme = (ROOT / "README.md").read_text()
    # the markers are pymdownx.snippets' section markers: the site's policies page includes this block
    block = re.search(r"<!-- --8<-- \[start:tutorial-policy\] -->\s*```python\n(.*?)```\s*"
                      r"<!-- --8<-- \[end:tutorial-policy\] -->", readme, re.S)
    assert block, "the README must keep the tutorial policy between its markers"
    return block.group(1)


def test_the_tutorial_policy_plans_and_runs(tmp_path):
    folder = tmp_path / "my_policies"
    folder.mkdir()
    (folder / "uniform_synthesis.py").write_text(tutorial_source())
    reference = f"{folder / 'uniform_synthesis.py'}:UniformSynthesis"

    result = subprocess.run([sys.executable, "-m", "simfl", "plan", TINY, "--policy", reference, "--json",
                             "--set", "task.rounds=200"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["policy"] == "uniform-synthesis"
    d_gen = [d["d_gen"] for d in plan["devices"]]
    assert len(set(d_gen)) == 1 and d_gen[0] > 0, "every device gets the same share"
    for device in plan["devices"]:
        assert sum(device["d_gen_per_class"]) == device["d_gen"]
        assert device["f_hz"] <= device["f_max_hz"] * (1 + 1e-6)
    assert sum(d["b_hz"] for d in plan["devices"]) <= 5e6 * (1 + 1e-6)

    # its plan is what `simfl compare --policies ...` would execute; check the name
    # resolves in a scenario's policy list as well
    valid = subprocess.run([sys.executable, "-m", "simfl", "validate", TINY, "--set", f"policies=[tfl, '{reference}']"],
                           capture_output=True, text=True, cwd=ROOT)
    assert valid.returncode == 0, valid.stderr
    assert np.isfinite(plan["energy_j"])
