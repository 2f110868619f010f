"""Numerics modes (simfl.numerics): what portable mode pins, when it can be chosen, what a
run folder records of it, and the precision `auto` resolves to. The bits portable mode
gives on other code paths are checked by test_golden.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simfl import numerics
from simfl.errors import SimflError

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.yaml")


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != numerics.ENV_VAR}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**environment, **env})


def simfl(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != numerics.ENV_VAR}
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**environment, **env})


PROBE = """
import json, os
import simfl
import numpy, torch
from simfl import numerics
from simfl.learning.models import build_model
build_model("cnn", (1, 28, 28), 10, 0)
features = numpy._core._multiarray_umath.__cpu_features__
print(json.dumps({"mode": numerics.mode(), "capability": str(torch.backends.cpu.get_cpu_capability()),
                  "mkldnn": torch.backends.mkldnn.enabled, "nnpack": torch._C._get_nnpack_enabled(),
                  "threads": torch.get_num_threads(), "cbwr": os.environ.get("MKL_CBWR"),
                  "numpy_v3": features.get("X86_V3"), "numpy_v4": features.get("X86_V4")}))
"""


def test_portable_mode_pins_every_library_before_it_loads():
    got = json.loads(python(PROBE, SIMFL_NUMERICS="portable").stdout)
    assert got == {"mode": "portable", "capability": "AVX2", "mkldnn": False, "nnpack": False,
                   "threads": numerics.PORTABLE_THREADS, "cbwr": "COMPATIBLE", "numpy_v3": False, "numpy_v4": False}


def test_fast_mode_leaves_the_libraries_to_the_cpu():
    got = json.loads(python(PROBE, SIMFL_NUMERICS="fast").stdout)
    assert got["mode"] == "fast" and got["mkldnn"] is True and got["nnpack"] is True and got["cbwr"] is None


def test_a_mode_chosen_after_numpy_loaded_is_refused_with_the_way_to_choose_it_in_time(monkeypatch):
    monkeypatch.delenv(numerics.ENV_VAR, raising=False)
    assert "numpy" in sys.modules  # pytest's process: too late for portable
    with pytest.raises(SimflError, match=r"must be chosen before numpy.* loaded, and this process loaded .*--numerics portable"):
        numerics.configure("portable")
    assert numerics.configure("fast") == "fast"  # nothing to change: fine


def test_an_unknown_mode_is_one_line_naming_where_it_came_from():
    flag = simfl("validate", TINY, "--numerics", "exact")
    assert flag.returncode == 2 and "invalid choice: 'exact'" in flag.stderr and "Traceback" not in flag.stderr
    env = simfl("validate", TINY, SIMFL_NUMERICS="exact")
    assert env.returncode == 2 and "Traceback" not in env.stderr
    assert "SIMFL_NUMERICS: 'exact' is not a numerics mode; choose one of fast, portable" in env.stderr


def test_the_flag_wins_over_the_environment():
    code = "import sys; from simfl.__main__ import requested_mode; print(requested_mode(sys.argv[1:]))"
    assert subprocess.run([sys.executable, "-c", code, "run", "x", "--numerics=portable"], capture_output=True,
                          text=True).stdout.strip() == "portable"
    # `--numerics fast` in an environment that says portable: nothing pinned
    done = simfl("validate", TINY, "--numerics", "fast", SIMFL_NUMERICS="portable")
    assert done.returncode == 0, done.stderr


def test_a_run_folder_records_how_it_was_computed_and_a_resume_elsewhere_warns(tmp_path):
    out = tmp_path / "run"
    first = simfl("run", TINY, "--policy", "tfl", "--out", str(out), "--set", "task.rounds=1")
    assert first.returncode == 0, first.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["numerics"] == "fast"
    assert manifest["cpu"] == numerics.cpu() and manifest["software"]["torch"].startswith("2.13.0")
    same = simfl("run", TINY, "--policy", "tfl", "--out", str(out), "--set", "task.rounds=2", "--resume")
    assert same.returncode == 0 and "computed elsewhere" not in same.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    # as if the first rounds ran on another kind of CPU than this one
    there = "GenuineIntel" if numerics.cpu()["vendor"] == "AuthenticAMD" else "AuthenticAMD"
    manifest["cpu"]["vendor"] = there
    (out / "manifest.json").write_text(json.dumps(manifest))
    other = simfl("run", TINY, "--policy", "tfl", "--out", str(out), "--set", "task.rounds=3", "--resume")
    assert other.returncode == 0, other.stderr
    assert other.stderr.count("computed elsewhere") == 1
    assert f"CPU vendor '{there}' there, '{numerics.cpu()['vendor']}' here" in other.stderr


def test_what_changes_the_bits_is_named_and_nothing_else():
    here = {"numerics": "portable", "cpu": {"vendor": "GenuineIntel", "model": "Xeon", "family_model": "6/207",
                                            "flags": ["avx2", "avx512f"]},
            "software": {"torch": "2.13.0+cpu", "numpy": "2.4.6"}}
    amd = {**here, "cpu": {"vendor": "AuthenticAMD", "model": "EPYC", "family_model": "25/17", "flags": ["avx2"]}}
    assert numerics.differences(amd, here) == []  # portable: the same bits on either CPU
    fast_here, fast_amd = {**here, "numerics": "fast"}, {**amd, "numerics": "fast"}
    assert numerics.differences(fast_amd, fast_here) == [
        "CPU vendor 'AuthenticAMD' there, 'GenuineIntel' here", "CPU model 'EPYC' there, 'Xeon' here",
        "CPU family_model '25/17' there, '6/207' here", "CPU flags ['avx2'] there, ['avx2', 'avx512f'] here"]
    assert numerics.differences(fast_here, here) == ["numerics 'fast' there, 'portable' here"]
    newer = {**here, "software": {"torch": "2.14.1+cpu", "numpy": "2.4.6"}}
    assert numerics.differences(newer, here) == ["torch 2.14.1+cpu there, 2.13.0+cpu here"]
    assert numerics.differences({"format": 1}, here) == []  # a folder from before the record


def test_the_cpu_record_is_what_proc_cpuinfo_says():
    text = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
    info = numerics.cpu()
    assert info["flags"] == [f for f in numerics.CPU_FLAGS if f in flags]
    assert info["vendor"] in text and numerics.has_bf16_units() == bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("flags, mode, want", [
    (["avx2", "avx512_bf16"], "fast", "bfloat16"),
    (["avx2", "amx_bf16"], "fast", "bfloat16"),
    (["avx2", "avx512f"], "fast", "float32"),  # AVX-512 without BF16: bf16 would be emulated, 0.09x
    (["avx2", "avx512_bf16"], "portable", "float32"),
])
def test_auto_precision_is_bfloat16_only_with_bfloat16_units_in_fast_mode(flags, mode, want, monkeypatch):
    # another CPU's flags (this machine has one kind): the rule, not the hardware, is under test
    monkeypatch.setattr(numerics, "cpu", lambda: {"vendor": "", "model": "", "family_model": "", "flags": flags})
    monkeypatch.setenv(numerics.ENV_VAR, mode)
    assert numerics.precision("auto") == want
    assert numerics.precision("float32") == "float32"


def test_portable_mode_refuses_bfloat16_before_any_work(tmp_path):
    done = simfl("run", TINY, "--policy", "tfl", "--out", str(tmp_path / "r"), "--numerics", "portable",
                 "--set", "task.precision=bfloat16")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "task.precision: 'bfloat16'" in done.stderr and "--numerics fast" in done.stderr
    assert not (tmp_path / "r" / "rounds.csv").exists()


def test_generators_of_the_two_modes_are_cached_under_their_own_names(monkeypatch):
    from simfl.generative.checkpoint import checkpoint_stem

    monkeypatch.setenv(numerics.ENV_VAR, "fast")
    assert checkpoint_stem("gan", "quick", "fashion-mnist", 10000, 1) == "gan-quick-fashion-mnist-pub10000-seed1"
    monkeypatch.setenv(numerics.ENV_VAR, "portable")
    assert checkpoint_stem("gan", "quick", "fashion-mnist", 10000, 1) == "gan-quick-fashion-mnist-pub10000-seed1-portable"
