"""simfl: a discrete-event simulator for generative-AI-assisted federated learning
over heterogeneous wireless edge devices (Li et al., IEEE TMC 2024, "FIMI")."""

import os

# OpenMP threads that wait for work sleep instead of spinning. Beside another CPU-heavy
# job (a user's, a Ray worker, a second seed) spinning threads hold the very cores that the
# threads they wait for need: a diffusion training step slowed 3.9x under libgomp's
# default and 26x under ACTIVE, against 1.3x under PASSIVE, which costs about 1.4x alone
# on an idle machine (benchmarks/thread_sharing.py; local training runs one thread per
# process and is unaffected). Set before torch is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from simfl.errors import DataNotFound, InfeasiblePlan, PolicyNotFound, ScenarioError, SimflError

__version__ = "0.1.0"

__all__ = [
    "DataNotFound",
    "InfeasiblePlan",
    "PolicyNotFound",
    "ScenarioError",
    "SimflError",
    "__version__",
]
