"""How simfl's processes wait at OpenMP barriers (simfl.sharing): the polite spin count
unless the user chose a wait, and never once torch has loaded OpenMP."""

import subprocess
import sys

from simfl.sharing import SPIN_COUNT, polite_environment, wait_settings


def test_the_polite_wait_is_a_short_spin_unless_the_user_chose_one():
    assert polite_environment({}) == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}
    assert polite_environment({"OMP_WAIT_POLICY": "ACTIVE"}) == {}
    assert polite_environment({"GOMP_SPINCOUNT": "0", "PATH": "/bin"}) == {}


def test_ray_workers_get_the_users_wait_or_the_polite_one(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert wait_settings() == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert wait_settings() == {"OMP_WAIT_POLICY": "PASSIVE"}


def _environment_after(code: str, **env: str) -> str:
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    script = f"import os\nfrom simfl.sharing import wait_politely\n{code}\nprint(os.environ.get('GOMP_SPINCOUNT'))"
    return subprocess.run([sys.executable, "-c", script], env={**base, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_wait_is_set_only_before_torch_loads_and_only_when_the_user_set_none():
    assert _environment_after("print(wait_politely())") == f"True\n{SPIN_COUNT}"
    # OpenMP read its settings when torch loaded: setting them now would claim an effect it cannot have
    assert _environment_after("import torch\nprint(wait_politely())") == "False\nNone"
    assert _environment_after("print(wait_politely())", GOMP_SPINCOUNT="7") == "False\n7"
