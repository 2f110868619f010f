"""How simfl's processes wait at their thread pools' barriers, so that a machine shared
with other CPU-heavy jobs slows simfl down in proportion instead of collapsing it.

PyTorch's CPU wheels run their parallel regions on GNU OpenMP. A thread that reaches a
barrier first spins there, by default for about 300,000 iterations, before it sleeps.
Alone on the machine that is the fastest way to wait; beside another job the spinning
thread keeps a core busy that the thread it waits for needs, and a training step of the
quick diffusion model took 3.6-3.9x as long beside a second copy of itself (a fair share
of two cores is 2x). A spin count of 3,000 gave up 3-6% alone and 1.9x beside a second
copy: `benchmarks/thread_sharing.py` measures every setting.

OpenMP reads the setting once, when torch loads it, so `wait_politely` must run before
torch is imported; the `simfl` command calls it first thing, and Ray workers get it in
their environment. A user's own `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` always wins. The
setting changes how long threads wait, never what they compute: results are the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

SPIN_COUNT = 3000
USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def polite_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to `environ` (default: this process's) for the polite wait:
    none when the user chose a wait policy or spin count there."""
    environ = os.environ if environ is None else environ
    if any(name in environ for name in USER_SETTINGS):
        return {}
    return {"GOMP_SPINCOUNT": str(SPIN_COUNT)}


def wait_settings() -> dict[str, str]:
    """What a process started elsewhere (a Ray worker) should wait with: the user's own
    setting from this process's environment, else the polite one."""
    mine = {name: os.environ[name] for name in USER_SETTINGS if name in os.environ}
    return mine or polite_environment({})


def wait_politely() -> bool:
    """Set the polite wait for this process and its children, unless the user set one or
    torch is already loaded (then it could no longer take effect). True when it was set."""
    if "torch" in sys.modules:
        return False
    extra = polite_environment()
    os.environ.update(extra)
    return bool(extra)


__all__ = ["SPIN_COUNT", "USER_SETTINGS", "polite_environment", "wait_politely", "wait_settings"]
