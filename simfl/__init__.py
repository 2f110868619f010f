"""simfl: a discrete-event simulator for generative-AI-assisted federated learning
over heterogeneous wireless edge devices (Li et al., IEEE TMC 2024, "FIMI")."""

import os

# OpenMP threads that wait for work sleep instead of spinning. Beside other CPU-heavy jobs
# (a user's, Ray workers, several seeds at once) spinning threads hold the very cores that
# the threads they wait for need, and training slowed 23x for a 3x share of the cores
# (benchmarks/thread_sharing.py). Set before torch is imported; a user's own setting wins.
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
