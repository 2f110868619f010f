"""simfl: a discrete-event simulator for generative-AI-assisted federated learning
over heterogeneous wireless edge devices (Li et al., IEEE TMC 2024, "FIMI").

From Python (a notebook, a script), the commands are functions (simfl.api):
`simfl.load_scenario`, `simfl.run`, `simfl.compare` and `simfl.open_run`; a policy is a
subclass of `simfl.Policy` whose `plan` returns a `simfl.Plan`. They load on first use:
`import simfl` alone loads neither numpy, pandas nor torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from simfl import numerics
from simfl.errors import (DataNotFound, InfeasiblePlan, PolicyError, PolicyNotFound, RunFolderError, ScenarioError,
                          SimflError)

# SIMFL_NUMERICS=portable in the environment pins the libraries' kernels, which must happen
# before numpy or torch loads (simfl.numerics); a script that imports simfl first gets it
numerics.apply_environment()

__version__ = "0.1.0"

# The public names that live in heavier modules, each imported when first used (so that
# numerics.apply_environment above runs before numpy and torch load, and a plain
# `import simfl` stays quick): name -> the module that defines it.
_LAZY = {
    "Result": "simfl.api",
    "compare": "simfl.api",
    "load_scenario": "simfl.api",
    "open_run": "simfl.api",
    "run": "simfl.api",
    "Plan": "simfl.plan",
    "PlanContext": "simfl.policy",
    "Policy": "simfl.policy",
    "RoundPlan": "simfl.plan",
    "Scenario": "simfl.scenario",
    "World": "simfl.world",
}

if TYPE_CHECKING:
    from simfl.api import Result, compare, load_scenario, open_run, run
    from simfl.plan import Plan, RoundPlan
    from simfl.policy import PlanContext, Policy
    from simfl.scenario import Scenario
    from simfl.world import World


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'simfl' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The `simfl` package, whose public names stay what simfl.api defines: importing the
    submodule simfl.compare (simfl's own code does) would otherwise rebind `simfl.compare`
    from the function to that module. The module is still `from simfl.compare import ...`
    (or sys.modules["simfl.compare"]); `import simfl.compare as m` gives the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "DataNotFound",
    "InfeasiblePlan",
    "Plan",
    "PlanContext",
    "Policy",
    "PolicyError",
    "PolicyNotFound",
    "Result",
    "RoundPlan",
    "RunFolderError",
    "Scenario",
    "ScenarioError",
    "SimflError",
    "World",
    "__version__",
    "compare",
    "load_scenario",
    "open_run",
    "run",
]
