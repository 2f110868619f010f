"""The policy interface: a policy sees the world and returns a plan (Section III-A, S1).

A new baseline is one class in one file under `policies/` (or anywhere importable):

    class EqualShare(Policy):
        name = "equal-share"
        def plan(self, world, context):
            return Plan.no_synthesis(world, f_hz=world.f_max_hz, b_hz=..., p_w=world.p_max_w)

A policy never reaches into the engine: everything it decides is in the Plan.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from simfl.plan import Plan
from simfl.scenario import Scenario
from simfl.world import World


@dataclass(frozen=True)
class PlanContext:
    """What a policy may use besides the world: the scenario (for its settings) and a
    random generator of its own stream."""

    scenario: Scenario
    rng: np.random.Generator
    solver: str = "ce"


class Policy(ABC):
    """Decides synthetic amounts and resources before training.

    Attributes
    ----------
    name:
        The id users type (`--policy fimi`).
    server_trains:
        True when the server trains on `plan.server_synthetic_per_class` every round and
        adds its update to the aggregation (SST).
    devices_train:
        False when no device takes part and the server trains alone on its synthetic set
        (CLSD): devices then spend no energy and send nothing; the server's own cost is
        not modelled, as in the paper.
    pseudo_label_threshold:
        None, or a confidence in (0, 1) when devices receive their synthetic samples
        without labels (SEMI): each round a device labels them with the global model
        and trains on the ones labelled at least this confidently.
    """

    name: ClassVar[str]
    server_trains: ClassVar[bool] = False
    devices_train: ClassVar[bool] = True
    pseudo_label_threshold: ClassVar[float | None] = None

    @abstractmethod
    def plan(self, world: World, context: PlanContext) -> Plan:
        """Return the plan for `world`."""

    def __repr__(self) -> str:
        return f"<policy {self.name}>"
