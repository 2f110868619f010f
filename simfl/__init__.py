"""simfl: a discrete-event simulator for generative-AI-assisted federated learning
over heterogeneous wireless edge devices (Li et al., IEEE TMC 2024, "FIMI")."""

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
