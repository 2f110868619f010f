"""One shallow error hierarchy. The CLI prints the message of any SimflError and exits
non-zero; anything else is a bug and may show a traceback."""


class SimflError(Exception):
    """Base class of every error simfl reports to a user."""


class ScenarioError(SimflError):
    """A scenario file (or an override) is malformed or out of range."""


class PolicyNotFound(SimflError):
    """A policy name, module path or entry point does not resolve."""


class InfeasiblePlan(SimflError):
    """No plan meets the constraints; the message names the device and the constraint."""


class DataNotFound(SimflError):
    """A data set, checkpoint or other input file is missing."""


class PolicyError(SimflError):
    """A policy's own code failed: it raised, exited, or returned something that is not a
    plan. The message names the policy's file, the method and what happened."""


class RunFolderError(SimflError):
    """A run folder (`--out`) that is busy, belongs to another scenario or seed, or is
    damaged; the message names the file and what to do."""
