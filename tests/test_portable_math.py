"""simfl.learning.portable_math: in portable numerics the functions whose bits torch leaves
to MKL's vector math (and so to the CPU's maker) are computed where IEEE 754 or glibc fix
them; in fast mode they are torch's own. Portable mode is chosen per process, so each
check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from simfl import numerics

ROOT = Path(__file__).resolve().parents[1]

PORTABLE_CHECKS = """
import json
import simfl  # first: it applies SIMFL_NUMERICS before numpy and torch load
import numpy as np, torch
from simfl.learning import portable_math as pm
x = np.random.default_rng(0).random(200_000, dtype=np.float32) * 4 + 1e-3
t = torch.from_numpy(x)
out = {}
# IEEE 754 square root: correctly rounded, one answer on every CPU (numpy's float32 sqrt is an sqrtps)
out["sqrt_exact"] = bool(np.array_equal(pm.sqrt(t).numpy(), np.sqrt(x)))
# exp, sin, cos: glibc's float64 functions rounded to float32
out["exp"] = bool(np.array_equal(pm.exp(t).numpy(), np.exp(x.astype(np.float64)).astype(np.float32)))
out["sin_cos"] = bool(np.array_equal(pm.sin(t).numpy(), np.sin(x.astype(np.float64)).astype(np.float32))
                      and np.array_equal(pm.cos(t).numpy(), np.cos(x.astype(np.float64)).astype(np.float32)))
# tanh as 2 sigmoid(2x) - 1: within float32 rounding of the true tanh, and differentiable
z = torch.linspace(-6, 6, 1001, requires_grad=True)
y = pm.tanh(z)
y.sum().backward()
true = np.tanh(z.detach().numpy().astype(np.float64))
out["tanh_err"] = float(np.max(np.abs(y.detach().numpy() - true)))
out["tanh_grad_err"] = float(np.max(np.abs(z.grad.numpy() - (1 - true**2))))
# Adam's rule by hand in float64, three steps on fixed gradients
w = torch.tensor([0.5, -1.0, 2.0, 0.0])
p = torch.nn.Parameter(w.clone())
opt = pm.adam([p], lr=0.1, betas=(0.9, 0.99))
ref, m, v = w.double().numpy().copy(), np.zeros(4), np.zeros(4)
for k, g in enumerate(([1.0, -2.0, 0.5, 3.0], [0.5, 0.5, -1.0, 1e-3], [2.0, -0.1, 0.0, -4.0]), start=1):
    p.grad = torch.tensor(g)
    opt.step()
    g = np.array(g)
    m = 0.9 * m + 0.1 * g
    v = 0.99 * v + 0.01 * g * g
    ref = ref - 0.1 / (1 - 0.9**k) * m / (np.sqrt(v) / np.sqrt(1 - 0.99**k) + 1e-8)
out["adam_class"] = type(opt).__name__
out["adam_err"] = float(np.max(np.abs(p.detach().numpy() - ref) / np.maximum(np.abs(ref), 1e-3)))
back = torch.optim.Adam([torch.nn.Parameter(w.clone())], lr=0.1)
back.load_state_dict(opt.state_dict())  # a checkpoint of either optimiser resumes in the other
try:
    pm.sqrt(torch.ones(3, requires_grad=True))
    out["refuses_graph"] = False
except ValueError:
    out["refuses_graph"] = True
print(json.dumps(out))
"""

FAST_CHECKS = """
import json
import simfl  # first: it applies SIMFL_NUMERICS before numpy and torch load
import numpy as np, torch
from simfl.learning import portable_math as pm
t = torch.from_numpy(np.random.default_rng(1).random(10_000, dtype=np.float32) + 0.5)
opt = pm.adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
print(json.dumps({"same": all(torch.equal(a, b) for a, b in ((pm.sqrt(t), torch.sqrt(t)), (pm.exp(t), torch.exp(t)),
                  (pm.sin(t), torch.sin(t)), (pm.cos(t), torch.cos(t)), (pm.tanh(t), torch.tanh(t)))),
                  "adam_class": type(opt).__name__}))
"""


def run(code: str, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != numerics.ENV_VAR}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**env, numerics.ENV_VAR: mode}, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_portable_functions_are_correctly_rounded_or_glibcs_and_adam_follows_its_rule():
    got = run(PORTABLE_CHECKS, "portable")
    assert got["sqrt_exact"] and got["exp"] and got["sin_cos"]
    assert got["tanh_err"] < 2.5e-7 and got["tanh_grad_err"] < 1e-6
    assert got["adam_class"] == "PortableAdam" and got["adam_err"] < 1e-6
    assert got["refuses_graph"]


def test_fast_mode_keeps_torchs_own_functions_and_adam():
    got = run(FAST_CHECKS, "fast")
    assert got == {"same": True, "adam_class": "Adam"}
