"""How the low bits of simfl's arithmetic are decided: `fast` or `portable`.

torch, MKL, oneDNN, numpy and OpenBLAS each pick their kernels by the CPU they run on:
its vector instructions (AVX2, AVX-512, AMX), its vendor (MKL takes other paths on AMD
than on Intel), its cache sizes (oneDNN's blocking) and its core count (the default
thread count). Each kernel is deterministic, but two CPUs may add the same numbers in
another order, so a run's last bits, and over rounds its accuracy, depend on the CPU.

- ``fast`` (the default) lets every library use the best kernels of this CPU. A run is
  reproducible bit for bit on the same kind of CPU, not on another.
- ``portable`` pins every choice that depends on the CPU, so a run gives the same bits
  on every x86-64 CPU with AVX2 (Intel or AMD, with or without AVX-512), with the same
  software (torch, numpy, scipy, glibc):
  - MKL's conditional numerical reproducibility on its COMPATIBLE branch, the one code
    path Intel documents as the same on Intel and compatible processors;
  - oneDNN and NNPACK off: convolutions run as torch's own im2col and MKL's GEMM
    (oneDNN's blocking follows the CPU's cache sizes, and it has no mode that does not);
  - torch's own kernels at the AVX2 capability (the same compiled code on every AVX2 CPU);
  - numpy's SIMD loops at its baseline, OpenBLAS (numpy's and scipy's) on its Haswell
    kernels with one thread;
  - torch's default thread count fixed at ``PORTABLE_THREADS`` whatever the machine's cores
    (training and evaluation use ``task.threads`` in either mode).
  It costs local training about 5-7x (``benchmarks/train_throughput.py`` measures it):
  the tests' golden references are written in it.

The libraries read these settings once, when they load, so the mode is chosen per
process before numpy or torch is imported: ``simfl --numerics portable ...``, the
environment variable ``SIMFL_NUMERICS``, or ``configure("portable")`` first thing in a
script. Child processes (the trainer's forked workers, Ray tasks) inherit it.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from simfl.errors import SimflError

MODES = ("fast", "portable")
DEFAULT_MODE = "fast"
ENV_VAR = "SIMFL_NUMERICS"
PORTABLE_THREADS = 2
# x86 instruction sets that decide which kernels the libraries take (recorded in manifests)
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
             "amx_tile", "amx_bf16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # bfloat16 arithmetic in hardware


def _numpy_dispatch_targets() -> str:
    """numpy's SIMD targets above its baseline, by the names of the installed numpy (read
    from its metadata: numpy itself must not load before the setting is made)."""
    try:
        major, minor = (int(p) for p in metadata.version("numpy").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        major, minor = 2, 4
    if (major, minor) >= (2, 4):  # targets grouped by x86-64 micro-architecture level
        return "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
    return ("SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2 AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX "
            "AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR")


def portable_environment() -> dict[str, str]:
    """The environment variables of portable mode (the module docstring says why each)."""
    return {
        "MKL_CBWR": "COMPATIBLE",
        "ATEN_CPU_CAPABILITY": "avx2",
        "NPY_DISABLE_CPU_FEATURES": _numpy_dispatch_targets(),
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": str(PORTABLE_THREADS),
        "MKL_NUM_THREADS": str(PORTABLE_THREADS),
    }


# which library reads each variable when it loads
_READ_BY = {"MKL_CBWR": "torch", "ATEN_CPU_CAPABILITY": "torch", "OMP_NUM_THREADS": "torch",
            "MKL_NUM_THREADS": "torch", "NPY_DISABLE_CPU_FEATURES": "numpy", "OPENBLAS_CORETYPE": "numpy",
            "OPENBLAS_NUM_THREADS": "numpy"}


def _from_environment() -> str:
    """What ``SIMFL_NUMERICS`` asks for (``fast`` when unset), not yet checked."""
    return os.environ.get(ENV_VAR, "").strip() or DEFAULT_MODE


def mode() -> str:
    """The numerics mode of this process (from ``SIMFL_NUMERICS``; ``fast`` when unset)."""
    value = _from_environment()
    return value if value in MODES else DEFAULT_MODE


def configure(requested: str | None = None, *, where: str = "--numerics") -> str:
    """Choose this process's numerics mode (None: ``SIMFL_NUMERICS``, else ``fast``) and set
    the environment that makes it, for this process and its children. Returns the mode.

    Raises SimflError when the value is not a mode, or when numpy or torch already loaded
    with other settings (the libraries would not see them): the message says how to choose
    the mode in time."""
    if requested is None:
        requested, where = _from_environment(), ENV_VAR
    if requested not in MODES:
        raise SimflError(f"{where}: {requested!r} is not a numerics mode; choose one of {', '.join(MODES)} "
                         "(portable: the same bits on every x86-64 CPU with AVX2; fast: this CPU's best kernels)")
    if requested == "portable":
        changes: dict[str, str | None] = {k: v for k, v in portable_environment().items() if os.environ.get(k) != v}
    else:  # take back the settings of an earlier portable choice in this process
        changes = {k: None for k, v in portable_environment().items() if mode() == "portable" and os.environ.get(k) == v}
    late = sorted({_READ_BY[k] for k in changes if _READ_BY[k] in sys.modules})
    if late:
        libraries, one = " and ".join(late), len(late) == 1
        raise SimflError(f"{where}: numerics {requested!r} must be chosen before {libraries} "
                         f"{'is' if one else 'are'} loaded, and this process loaded {'it' if one else 'them'} without "
                         f"its settings; run `simfl --numerics {requested} ...`, set {ENV_VAR}={requested} in the "
                         f"environment, or call simfl.numerics.configure({requested!r}) before importing numpy or torch")
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    os.environ[ENV_VAR] = requested
    return requested


def apply_environment() -> None:
    """Make the mode ``SIMFL_NUMERICS`` names (when it names portable) before numpy or torch
    loads; an unknown value is reported by the command that reads it (`configure`)."""
    if _from_environment() == "portable":
        configure("portable", where=ENV_VAR)


def add_option(parser: Any) -> None:
    """`--numerics fast|portable` on a command's argparse parser."""
    parser.add_argument("--numerics", choices=MODES, default=None,
                        help=f"fast: this CPU's best kernels; portable: the same bits on every x86-64 CPU with AVX2, "
                             f"about 5-7x slower training (default: ${ENV_VAR}, else {DEFAULT_MODE})")


def child_environment() -> dict[str, str]:
    """What a process started elsewhere (a Ray worker) needs to compute in this mode."""
    current = mode()
    return {ENV_VAR: current, **(portable_environment() if current == "portable" else {})}


_PINNED = False


def pin_torch() -> None:
    """In portable mode, turn off torch's CPU-dependent backends (oneDNN, NNPACK) and check
    that its kernels run at the AVX2 capability; nothing in fast mode. Called wherever simfl
    builds a model, before its first step; cheap and idempotent."""
    global _PINNED
    if _PINNED or mode() != "portable":
        return
    import torch  # deferred: this module chooses the numerics before torch loads

    torch.backends.mkldnn.set_flags(False)
    torch.backends.nnpack.set_flags(False)
    capability = str(torch.backends.cpu.get_cpu_capability())
    if capability != "AVX2":
        why = "this CPU has no AVX2" if "avx2" not in cpu()["flags"] else "torch was loaded before the mode was chosen"
        raise SimflError(f"numerics 'portable' runs torch's kernels at the AVX2 capability, but here they run at "
                         f"{capability} ({why}); portable results are defined for x86-64 CPUs with AVX2: "
                         "use --numerics fast here")
    _PINNED = True


def precision(requested: str) -> str:
    """What `task.precision` trains in here: ``auto`` is bfloat16 mixed precision in fast
    mode on a CPU with bfloat16 units and float32 otherwise; portable mode trains in float32
    only (bfloat16 kernels are chosen by the CPU like oneDNN's), so ``bfloat16`` there is an
    error that says so."""
    if requested == "auto":
        return "bfloat16" if mode() == "fast" and has_bf16_units() else "float32"
    if requested == "bfloat16" and mode() == "portable":
        raise SimflError("task.precision: 'bfloat16' trains with this CPU's bfloat16 kernels, which are not the same on "
                         "every CPU, and numerics 'portable' promises the same bits everywhere; choose float32 or auto "
                         "(float32 in portable mode), or run with --numerics fast")
    return requested


def cpu() -> dict[str, Any]:
    """This CPU: vendor, model name, family/model numbers and the instruction sets of
    ``CPU_FLAGS`` it has (from /proc/cpuinfo on Linux, `platform` elsewhere)."""
    info: dict[str, Any] = {"vendor": "", "model": platform.processor() or platform.machine(), "family_model": "",
                            "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    first = text.split("\n\n", 1)[0]
    fields = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in first.splitlines()) if k)
    flags = set(fields.get("flags", "").split())
    info.update(vendor=fields.get("vendor_id", ""), model=re.sub(r"\s+", " ", fields.get("model name", info["model"])),
                family_model=f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}",
                flags=[f for f in CPU_FLAGS if f in flags])
    return info


def has_bf16_units() -> bool:
    """True where the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), read from
    the CPU's flags, not guessed from its name."""
    return any(f in cpu()["flags"] for f in BF16_FLAGS)


def software() -> dict[str, str]:
    """Versions that decide the bits besides the CPU and the mode."""
    versions = {"python": platform.python_version(), "glibc": "-".join(platform.libc_ver()) or "none"}
    for package in ("torch", "numpy", "scipy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def record() -> dict[str, Any]:
    """What a run folder's manifest keeps of how its numbers were computed."""
    return {"numerics": mode(), "cpu": cpu(), "software": software()}


def differences(recorded: dict[str, Any], current: dict[str, Any] | None = None) -> list[str]:
    """What differs between a folder's `record()` and this process's in a way that changes
    the bits (empty when nothing does, or when the folder recorded nothing): the mode;
    software versions; and in fast mode the CPU (vendor, model, instruction sets)."""
    if "numerics" not in recorded:
        return []
    current = current or record()
    found = []
    if recorded["numerics"] != current["numerics"]:
        found.append(f"numerics {recorded['numerics']!r} there, {current['numerics']!r} here")
    theirs, mine = recorded.get("software", {}), current["software"]
    found += [f"{k} {theirs.get(k)} there, {mine.get(k)} here" for k in sorted(mine) if theirs.get(k) != mine.get(k)]
    if recorded["numerics"] == current["numerics"] == "fast":
        a, b = recorded.get("cpu", {}), current["cpu"]
        for key in ("vendor", "model", "family_model", "flags"):
            if a.get(key) != b.get(key):
                found.append(f"CPU {key} {a.get(key)!r} there, {b.get(key)!r} here")
    return found


__all__ = ["BF16_FLAGS", "CPU_FLAGS", "DEFAULT_MODE", "ENV_VAR", "MODES", "PORTABLE_THREADS", "add_option",
           "apply_environment", "child_environment", "configure", "cpu", "differences", "has_bf16_units", "mode",
           "pin_torch", "portable_environment", "precision", "record", "software"]
