"""simfl: a discrete-event simulator for generative-AI-assisted federated learning
over heterogeneous wireless edge devices (Li et al., IEEE TMC 2024, "FIMI")."""

from simfl import numerics
from simfl.errors import DataNotFound, InfeasiblePlan, PolicyNotFound, ScenarioError, SimflError

# SIMFL_NUMERICS=portable in the environment pins the libraries' kernels, which must happen
# before numpy or torch loads (simfl.numerics); a script that imports simfl first gets it
numerics.apply_environment()

__version__ = "0.1.0"

__all__ = [
    "DataNotFound",
    "InfeasiblePlan",
    "PolicyNotFound",
    "ScenarioError",
    "SimflError",
    "__version__",
]
